//! The real binary as a child process, watched through `/proc`: its peak RSS, its CPU time,
//! and when its log says a task is done.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{io, password_env, BenchError};

/// A running `portal-migrate run`.
pub(crate) struct Daemon {
    child: Child,
    started: Instant,
    /// "done:" log lines seen so far.
    done: Arc<AtomicU64>,
    /// Microseconds after start of the first "done:" line (0 = none yet).
    first_done_us: Arc<AtomicU64>,
}

/// How a daemon run ended.
pub(crate) struct Finished {
    pub elapsed: Duration,
    pub peak_rss_kib: u64,
    pub cpu: Duration,
    pub success: bool,
    pub done: u64,
}

impl Daemon {
    pub fn start(binary: &Path, config: &Path) -> Result<Daemon, BenchError> {
        let mut command = Command::new(binary);
        command
            .args(["run", "--once", "--config"])
            .arg(config)
            // Info level so that every finished task logs its "done:" line.
            .env("RUST_LOG", "portal_migrate=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in password_env() {
            command.env(key, value);
        }
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(io(format!("starting {}", binary.display())))?;
        let done = Arc::new(AtomicU64::new(0));
        let first_done_us = Arc::new(AtomicU64::new(0));
        if let Some(stderr) = child.stderr.take() {
            let (done, first) = (done.clone(), first_done_us.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("done: ") {
                        if done.fetch_add(1, Ordering::Relaxed) == 0 {
                            let us = started.elapsed().as_micros().max(1) as u64;
                            first.store(us, Ordering::Relaxed);
                        }
                    } else if line.contains("ERROR") {
                        eprintln!("daemon: {line}");
                    }
                }
            });
        }
        Ok(Daemon {
            child,
            started,
            done,
            first_done_us,
        })
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Time from the start of the process to its first finished task.
    pub fn first_done(&self) -> Option<Duration> {
        match self.first_done_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    pub fn kill(mut self) -> Result<(), BenchError> {
        self.child.kill().map_err(io("killing the daemon"))?;
        self.child.wait().map_err(io("reaping the daemon"))?;
        Ok(())
    }

    /// Waits for the process to exit, sampling its peak RSS every few milliseconds, and
    /// reads its CPU time once it has exited but before it is reaped (a zombie's `/proc`
    /// entry still holds its final times).
    pub async fn wait(mut self, timeout: Duration) -> Result<Finished, BenchError> {
        let pid = self.child.id().to_string();
        let mut peak_rss_kib = 0;
        let mut cpu = Duration::ZERO;
        loop {
            if let Some(hwm) = status_field(&pid, "VmHWM:") {
                peak_rss_kib = peak_rss_kib.max(hwm);
            }
            if let Some(time) = cpu_time_of(&pid) {
                cpu = cpu.max(time);
            }
            if process_state(&pid) == Some('Z') {
                break;
            }
            if self.started.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(BenchError::Daemon(format!(
                    "did not finish within {} s",
                    timeout.as_secs()
                )));
            }
            if self
                .child
                .try_wait()
                .map_err(io("polling the daemon"))?
                .is_some()
            {
                // Reaped before we saw the zombie: the last sample stands.
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let status = self.child.wait().map_err(io("reaping the daemon"))?;
        // Let the log reader see the last lines.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(Finished {
            elapsed: self.started.elapsed(),
            peak_rss_kib,
            cpu,
            success: status.success(),
            done: self.done(),
        })
    }
}

/// A `kB` field of `/proc/<pid>/status`.
fn status_field(pid: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|line| line.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces).
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_string).collect())
}

fn process_state(pid: &str) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// User + system CPU time of a process (`"self"` for this one).
pub(crate) fn cpu_time_of(pid: &str) -> Option<Duration> {
    let fields = stat_fields(pid)?;
    // After the name: state is field 3 of stat(5), utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux the project runs on.
    Some(Duration::from_millis((utime + stime) * 10))
}
