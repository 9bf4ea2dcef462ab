//! The real binary killed with SIGKILL at several moments of a migration and restarted each
//! time ends in the same target as an uninterrupted run: nothing duplicated, nothing lost,
//! and a sound state file.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portal_migrate::sim::Faults;
use portal_migrate::store::{OpenOptions, Store};

fn migrate_command(config: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portal-migrate"));
    command
        .args(["run", "--once", "--config"])
        .arg(config)
        .env(common::SOURCE_PASSWORD_ENV, common::ADMIN_PASSWORD)
        .env(common::TARGET_PASSWORD_ENV, common::ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_at_several_points_and_restarted_ends_in_a_faithful_clone() {
    // Latency stretches the run so that kills land in discovery, item creation and sharing.
    let faults = Faults {
        latency_ms: 15,
        ..Faults::default()
    };
    let (source, target) = common::sample_pair(faults).await;
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &source, &target, "[workers]\ncount = 6\n");

    // Deterministic kill moments (ms after start), spread over the run.
    let kill_after_ms = [150u64, 400, 250, 700, 350, 900, 500, 600];
    let mut kills = 0;
    let mut progress_at_kills = Vec::new();
    for delay in kill_after_ms {
        let mut child = migrate_command(&config).spawn().expect("binary starts");
        let started = Instant::now();
        loop {
            if child.try_wait().expect("poll child").is_some() {
                break;
            }
            if started.elapsed() >= Duration::from_millis(delay) {
                child.kill().expect("SIGKILL");
                child.wait().expect("reap");
                kills += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let duplicates = common::duplicate_report(&target.snapshot());
        assert!(
            duplicates.is_empty(),
            "duplicates after kill {kills}: {duplicates:?}"
        );
        if let Ok(status) = portal_migrate::commands::status(&dir.path().join("state.db")) {
            let all: u64 = status.progress.iter().map(|row| row.count).sum();
            progress_at_kills.push((status.total("done"), all));
        }
    }
    let mid_run = progress_at_kills
        .iter()
        .filter(|(done, all)| *done > 0 && done < all)
        .count();
    assert!(
        kills >= 4 && mid_run >= 3,
        "most runs must have been killed mid-way (killed {kills}; done/all at each kill: {progress_at_kills:?})"
    );
    println!("done/all tasks at each kill: {progress_at_kills:?}");

    let output = migrate_command(&config).output().expect("final run");
    assert!(
        output.status.success(),
        "the final run completes: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let snapshot = target.snapshot();
    assert!(common::duplicate_report(&snapshot).is_empty());
    common::assert_faithful_sample_clone(&snapshot);

    let store = Store::open(&dir.path().join("state.db"), &OpenOptions::default()).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert_eq!(store.outstanding().unwrap(), 0, "every task terminal");
    assert!(store.failures().unwrap().is_empty());
}
