//! The real binary stopped by signals: SIGTERM mid-run lets tasks in flight finish, releases
//! the rest and exits 0; a second signal exits at once; either way the next run completes a
//! faithful clone from the state file left behind.

mod common;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use portal_migrate::commands;
use portal_migrate::sim::{Faults, SimServer};
use portal_migrate::store::{OpenOptions, Store};

fn binary(config: &Path, once: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portal-migrate"));
    command.arg("run");
    if once {
        command.arg("--once");
    }
    command
        .arg("--config")
        .arg(config)
        .env(common::SOURCE_PASSWORD_ENV, common::ADMIN_PASSWORD)
        .env(common::TARGET_PASSWORD_ENV, common::ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn send(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {}", child.id());
}

/// Waits until at least `done` tasks are done, while the run still has work left.
async fn wait_until_done(state: &Path, done: u64, child: &mut Child) {
    let started = Instant::now();
    loop {
        if let Ok(status) = commands::status(state) {
            if status.total("done") >= done {
                assert!(
                    status.total("pending") + status.total("running") > 0,
                    "the run finished before the signal could land mid-run:\n{status}"
                );
                return;
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no progress within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_exit(child: &mut Child, limit: Duration) -> (ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            return (status, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "the process did not exit within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stderr_of(child: &mut Child) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    text
}

/// The state file as the next process finds it: sound, nothing left running.
fn assert_consistent(state: &Path) {
    let store = Store::open(state, &OpenOptions::default()).expect("the lock was released");
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let running: u64 = store
        .progress()
        .unwrap()
        .iter()
        .filter(|row| row.state == "running")
        .map(|row| row.count)
        .sum();
    assert_eq!(running, 0, "no task left running");
}

async fn resume_to_a_faithful_clone(config: &Path, target: &SimServer) {
    let output = binary(config, true)
        .output()
        .expect("the second run starts");
    assert!(
        output.status.success(),
        "the second run completes: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let snapshot = target.snapshot();
    assert!(common::duplicate_report(&snapshot).is_empty());
    common::assert_faithful_sample_clone(&snapshot);
}

const SERVICE_ON_ANY_PORT: &str = "[service]\nlisten = \"127.0.0.1:0\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_mid_run_finishes_in_flight_tasks_and_exits_0() {
    let (source, target) = common::sample_pair(Faults {
        latency_ms: 15,
        ..Faults::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[workers]\ncount = 4\nshutdown_grace_secs = 20\n\n{SERVICE_ON_ANY_PORT}");
    let config = common::write_config(dir.path(), &source, &target, &extra);
    let state = dir.path().join("state.db");

    let mut child = binary(&config, false).spawn().expect("the binary starts");
    wait_until_done(&state, 25, &mut child).await;
    send(&child, "TERM");
    let (status, _) = wait_for_exit(&mut child, Duration::from_secs(30)).await;
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), Some(0), "a graceful stop exits 0: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");

    assert_consistent(&state);
    let store = Store::open_readonly(&state).unwrap();
    let last = store.runs().unwrap().pop().expect("the run is recorded");
    assert_eq!(last.outcome.as_deref(), Some("interrupted"));
    assert!(
        store.outstanding().unwrap() > 0,
        "the signal landed mid-run"
    );
    drop(store);

    resume_to_a_faithful_clone(&config, &target).await;
    drop(source);

    // The operator commands on the finished migration.
    let report = cli(&["report", "--format", "json"], &config);
    let report: serde_json::Value =
        serde_json::from_str(&report).expect("report --format json is JSON");
    let items = report["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "item")
        .expect("items in the report");
    assert_eq!(items["created"], 49, "{items}");
    assert_eq!(items["failed"], 0);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        2,
        "the interrupted run and the one that finished"
    );
    assert_eq!(runs[0]["outcome"], "interrupted");
    let markdown = cli(&["report"], &config);
    assert!(markdown.contains("| item | 49 | 49 |"), "{markdown}");
    assert!(cli(&["report", "--format", "html"], &config).contains("<tr data-kind=\"item\">"));

    cli(&["pause"], &config);
    assert!(cli(&["status"], &config).contains("paused:"));
    cli(&["resume"], &config);
    assert!(!cli(&["status"], &config).contains("paused:"));
}

/// Runs `portal-migrate <args> --config <config>` and returns its standard output.
fn cli(args: &[&str], config: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_portal-migrate"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env(common::SOURCE_PASSWORD_ENV, common::ADMIN_PASSWORD)
        .env(common::TARGET_PASSWORD_ENV, common::ADMIN_PASSWORD)
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "portal-migrate {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_signal_exits_at_once_and_the_next_run_still_completes() {
    // Slow requests keep tasks in flight for a long time; the grace period is longer still.
    let slow = Faults {
        latency_ms: 250,
        ..Faults::default()
    };
    let (source, target) = common::sample_pair(slow).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[workers]\ncount = 8\nshutdown_grace_secs = 120\n\n{SERVICE_ON_ANY_PORT}");
    let config = common::write_config(dir.path(), &source, &target, &extra);
    let state = dir.path().join("state.db");

    let mut child = binary(&config, false).spawn().expect("the binary starts");
    wait_until_done(&state, 3, &mut child).await;
    send(&child, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first signal waits for tasks in flight"
    );
    send(&child, "INT");
    let (status, took) = wait_for_exit(&mut child, Duration::from_secs(10)).await;
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        took < Duration::from_secs(3),
        "exited at once, not after the grace period ({took:?})"
    );

    let store = Store::open(&state, &OpenOptions::default()).expect("the lock was released");
    assert_eq!(store.integrity_check().unwrap(), "ok");
    drop(store);
    source.set_faults(Faults::default());
    target.set_faults(Faults::default());
    resume_to_a_faithful_clone(&config, &target).await;
}
