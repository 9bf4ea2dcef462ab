//! The commands around `run`: the `plan` dry run, and `status` from another shell while or
//! after a migration runs.

mod common;

use std::process::Command;

use portal_migrate::sim::Faults;
use portal_migrate::{commands, engine};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plan_counts_what_would_be_created_and_writes_nothing() {
    let (source, target) = common::sample_pair(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(dir.path(), &source, &target, "");
    let before = target.snapshot();

    let plan = commands::plan(settings.clone()).await.expect("dry run");
    let counts = |kind: &str| plan.kinds.get(kind).map(|c| (c.create, c.adopt));
    assert_eq!(counts("user"), Some((11, 0)));
    assert_eq!(counts("group"), Some((4, 0)));
    assert_eq!(counts("folder"), Some((17, 0)));
    assert_eq!(counts("item"), Some((49, 0)));
    assert_eq!(counts("relationship"), Some((10, 0)));
    assert_eq!(counts("share"), Some((13, 0)));
    assert!(plan.to_string().contains("dry run"));

    assert_eq!(
        target.snapshot(),
        before,
        "a dry run writes nothing to the target"
    );
    assert!(!settings.state.path.exists(), "nor to the state file");
    let writes: u64 = target
        .stats()
        .by_endpoint
        .iter()
        .filter(|(endpoint, _)| {
            [
                "addItem",
                "createFolder",
                "createGroup",
                "createUser",
                "addUsers",
                "share",
                "update",
            ]
            .iter()
            .any(|w| endpoint.contains(w))
        })
        .flat_map(|(_, outcomes)| outcomes.values())
        .sum();
    assert_eq!(writes, 0, "no write request reached the target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_reads_the_state_file_from_a_shell_without_passwords() {
    let (source, target) = common::sample_pair(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &source, &target, "");
    let settings = common::settings(dir.path(), &source, &target, "");
    engine::run(settings.clone(), std::future::pending())
        .await
        .expect("migration");

    let output = Command::new(env!("CARGO_BIN_EXE_portal-migrate"))
        .args(["status", "--json", "--config"])
        .arg(&config)
        .env_remove(common::SOURCE_PASSWORD_ENV)
        .env_remove(common::TARGET_PASSWORD_ENV)
        .output()
        .expect("status runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON status");

    // What `status --json` says is exactly what the `progress` view says.
    let connection = rusqlite::Connection::open_with_flags(
        &settings.state.path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut statement = connection
        .prepare("SELECT kind, state, count FROM progress ORDER BY kind, state")
        .unwrap();
    let from_view: Vec<(String, String, u64)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut from_status: Vec<(String, String, u64)> = json["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["kind"].as_str().unwrap().to_string(),
                row["state"].as_str().unwrap().to_string(),
                row["count"].as_u64().unwrap(),
            )
        })
        .collect();
    from_status.sort();
    assert_eq!(from_status, from_view);
    assert!(from_view.contains(&("item".to_string(), "done".to_string(), 49)));

    let table = Command::new(env!("CARGO_BIN_EXE_portal-migrate"))
        .args(["status", "--config"])
        .arg(&config)
        .env_remove(common::SOURCE_PASSWORD_ENV)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    let item_row = text
        .lines()
        .find(|l| l.starts_with("item "))
        .expect("an item row");
    let numbers: Vec<&str> = item_row.split_whitespace().collect();
    assert_eq!(
        numbers,
        ["item", "0", "0", "49", "0", "0", "0", "49"],
        "{text}"
    );
}

#[test]
fn the_demo_migrates_the_sample_org_and_reports_it_verified() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_portal-migrate"))
        .args(["demo", "--latency-ms", "0", "--dir"])
        .arg(dir.path().join("demo"))
        .output()
        .expect("demo runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "users            19  (19)  ok",
        "items            49  (49)  ok",
        "relationships    10  (10)  ok",
        "ok: all 81 objects are equal",
        "no failures",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        dir.path().join("demo/state.db").exists(),
        "the state file is left for inspection"
    );
}
