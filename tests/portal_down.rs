//! A portal that stops answering mid-run: the daemon pauses the whole run instead of
//! failing task after task, says so in `status` and in its log, probes the portal, and
//! carries on when it answers again, with its queue intact and its retry budgets unspent.

mod common;

use std::time::{Duration, Instant};

use portal_migrate::commands;
use portal_migrate::sim::generate::GenerateSpec;
use portal_migrate::sim::Faults;
use portal_migrate::store::Store;

/// How long the target stays unreachable.
const OUTAGE: Duration = Duration::from_secs(5);

fn finished_fraction(state: &std::path::Path) -> f64 {
    let Ok(status) = commands::status(state) else {
        return 0.0;
    };
    let all: u64 = status.progress.iter().map(|r| r.count).sum();
    let linked = status.count("link", "done") > 0;
    if !linked || all == 0 {
        return 0.0;
    }
    (status.total("done") + status.total("skipped")) as f64 / all as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_portal_that_stops_answering_pauses_the_run_which_then_completes() {
    let spec: GenerateSpec =
        "seed=3,users=8,groups=3,folders-per-user=1,items-per-folder=4,members-per-group=4,file-bytes=1024"
            .parse()
            .unwrap();
    // Latency keeps the run going long enough to take the portal away in the middle of it.
    let (source, target, source_fixture, before) = common::generated_pair(
        &spec,
        None,
        Faults {
            latency_ms: 10,
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &source, &target, "[workers]\ncount = 8\n");
    let state = dir.path().join("state.db");

    let mut command = common::migrate_command(&config);
    command
        .env("PORTAL_MIGRATE__RETRY__PORTAL_DOWN_PAUSE_SECS", "1")
        .env("RUST_LOG", "info");
    let child = command.spawn().expect("binary starts");

    let started = Instant::now();
    while finished_fraction(&state) < 0.3 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run makes progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before_outage = commands::status(&state).unwrap();
    target.set_faults(Faults {
        latency_ms: 10,
        down: true,
        ..Faults::default()
    });
    let outage_started = Instant::now();
    let mut notice = None;
    while outage_started.elapsed() < OUTAGE {
        if let Some(text) = commands::status(&state).unwrap().portal_down {
            notice.get_or_insert(text);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // `status` as a person runs it, while the portal is still away.
    let status_text = commands::status(&state).unwrap().to_string();
    target.set_faults(Faults {
        latency_ms: 10,
        ..Faults::default()
    });

    let output = child.wait_with_output().expect("the run ends");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the run completes after the outage:\n{log}"
    );

    let notice = notice.expect("status showed the pause while the target was down");
    assert!(
        notice.contains("target portal")
            && notice.contains(target.url())
            && notice.contains("paused"),
        "the notice names the portal and says work is paused: {notice}"
    );
    assert!(
        status_text.contains("PAUSED"),
        "status prints the pause:\n{status_text}"
    );
    assert!(
        log.contains("has not answered since"),
        "the log says the portal is down:\n{log}"
    );
    assert!(
        log.contains("answers again"),
        "the log says when it is back:\n{log}"
    );
    let status = commands::status(&state).unwrap();
    assert!(
        status.portal_down.is_none(),
        "the notice is gone once the portal answers"
    );

    // The queue was kept and nothing was lost or duplicated.
    let after = target.snapshot();
    assert!(common::duplicate_report(&after).is_empty());
    let ids = common::assert_faithful_clone(&source_fixture, &before, &after);
    common::assert_state_complete(&state, &source_fixture, &ids);

    // A run-wide pause, not a failure per task: the outage cost hardly any attempts.
    let store = Store::open_readonly(&state).unwrap();
    let mut tasks = 0u64;
    let mut extra_attempts = 0u64;
    for kind in portal_migrate::clone::TaskKind::ALL {
        for row in store.tasks_of_kind(kind.as_str()).unwrap() {
            tasks += 1;
            extra_attempts += u64::from(row.attempt.saturating_sub(1));
        }
    }
    let events = events(&state);
    let paused_tasks = events
        .iter()
        .filter(|(_, message)| message.contains("paused while the portal does not answer"))
        .count();
    println!(
        "portal down for {} s at {}/{} tasks: {paused_tasks} tasks paused without spending an attempt, \
         {extra_attempts} extra attempts over {tasks} tasks",
        OUTAGE.as_secs(),
        before_outage.total("done"),
        before_outage.progress.iter().map(|r| r.count).sum::<u64>(),
    );
    assert!(paused_tasks > 0, "tasks that met the outage were paused");
    assert!(
        extra_attempts <= 16,
        "at most a few attempts (those before the outage was recognised) were spent: {extra_attempts}"
    );
    assert!(
        events
            .iter()
            .any(|(level, message)| level == "warn" && message.contains("has not answered since")),
        "an event records the outage: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(level, message)| level == "info" && message.contains("answers again")),
        "an event records the recovery: {events:?}"
    );
}

fn events(state: &std::path::Path) -> Vec<(String, String)> {
    let db =
        rusqlite::Connection::open_with_flags(state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut statement = db
        .prepare("SELECT level, message FROM events ORDER BY id")
        .unwrap();
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}
