//! `portal-migrate demo`: two simulated portals seeded with the sample organisation, a full
//! migration between them with a live progress line, and a report. Needs no files and no
//! network beyond loopback; leaves the state file behind for `sqlite3 -readonly`.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::commands;
use crate::engine::{self, RunError};
use crate::fixture::{sample_org, Fixture};
use crate::settings::Settings;
use crate::sim::{Faults, SimOptions, SimServer};

pub struct DemoOptions {
    /// Where the state file and credentials file go.
    pub dir: PathBuf,
    /// Simulated latency of every portal request, to make the demo look like a real network.
    pub latency_ms: u64,
    pub workers: usize,
}

/// Counts in a portal's state, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub users: usize,
    pub groups: usize,
    pub folders: usize,
    pub items: usize,
    pub relationships: usize,
}

impl Totals {
    pub fn of(fixture: &Fixture) -> Totals {
        Totals {
            users: fixture.users.len(),
            groups: fixture.groups.len(),
            folders: fixture.users.iter().map(|u| u.folders.len()).sum(),
            items: fixture.items.len(),
            relationships: fixture.relationships.len(),
        }
    }
}

pub struct DemoReport {
    pub target: Totals,
    pub expected: Totals,
    pub elapsed: Duration,
    pub state_path: PathBuf,
    pub failures: usize,
    /// `verify` found every object equal.
    pub verified: bool,
}

/// The sample organisation's expected target after a faithful clone (its README).
pub const EXPECTED: Totals = Totals {
    users: 19,
    groups: 10,
    folders: 17,
    items: 49,
    relationships: 10,
};

pub async fn run(
    options: DemoOptions,
    out: &mut (dyn Write + Send),
) -> Result<DemoReport, RunError> {
    let fatal = |what: &str, e: &dyn std::fmt::Display| RunError::Fatal(format!("{what}: {e}"));
    let faults = Faults {
        latency_ms: options.latency_ms,
        ..Faults::default()
    };
    let source = SimServer::start(
        sample_org::source(),
        SimOptions {
            faults: faults.clone(),
            ..SimOptions::default()
        },
    )
    .await
    .map_err(|e| fatal("cannot start the source simulator", &e))?;
    let target = SimServer::start(
        sample_org::target(),
        SimOptions {
            faults,
            ..SimOptions::default()
        },
    )
    .await
    .map_err(|e| fatal("cannot start the target simulator", &e))?;
    std::fs::create_dir_all(&options.dir)
        .map_err(|e| fatal(&format!("cannot create {}", options.dir.display()), &e))?;
    let state_path = options.dir.join("state.db");
    // Each demo starts new simulators on new ports: an old state file belongs to another pair.
    for leftover in [
        "state.db",
        "state.db-wal",
        "state.db-shm",
        "state.credentials.csv",
    ] {
        let _ = std::fs::remove_file(options.dir.join(leftover));
    }
    let toml = format!(
        r#"
[source]
url = "{source}"
username = "admin"
password_env = "DEMO_SOURCE_PASSWORD"

[target]
url = "{target}"
username = "admin"
password_env = "DEMO_TARGET_PASSWORD"

[state]
path = "state.db"

[workers]
count = {workers}
"#,
        source = source.url(),
        target = target.url(),
        workers = options.workers,
    );
    let env: HashMap<String, String> = [
        (
            "DEMO_SOURCE_PASSWORD".to_string(),
            "admin-sample-pw".to_string(),
        ),
        (
            "DEMO_TARGET_PASSWORD".to_string(),
            "admin-sample-pw".to_string(),
        ),
    ]
    .into();
    let settings = Settings::from_toml_str(&toml, &options.dir, &env)
        .map_err(|e| fatal("demo settings", &e))?;

    let _ = writeln!(
        out,
        "source portal: {}  (sample org: 11 users, 4 groups, 49 items)",
        source.url()
    );
    let _ = writeln!(
        out,
        "target portal: {}  (8 users, 6 groups, no items)",
        target.url()
    );
    let _ = writeln!(out, "state file:    {}\n", state_path.display());
    let started = Instant::now();
    let migration = tokio::spawn(engine::run(settings.clone(), std::future::pending()));
    // On a terminal one line redraws itself; in a log or pipe, a line per second.
    let live = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut last_line = Instant::now();
    while !migration.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !live && last_line.elapsed() < Duration::from_secs(1) {
            continue;
        }
        if let Ok(status) = commands::status(&state_path) {
            let done = status.total("done") + status.total("skipped");
            let all: u64 = status.progress.iter().map(|r| r.count).sum();
            let line = format!(
                "{:>5.1}s  {done}/{all} tasks done, {} running, {} failed",
                started.elapsed().as_secs_f64(),
                status.total("running"),
                status.total("failed")
            );
            let _ = if live {
                write!(out, "\r{line}   ")
            } else {
                writeln!(out, "{line}")
            };
            let _ = out.flush();
            last_line = Instant::now();
        }
    }
    let summary = migration
        .await
        .map_err(|e| fatal("the migration task stopped", &e))??;
    let elapsed = started.elapsed();
    let status = commands::status(&state_path)?;
    let _ = writeln!(out, "\n\n{status}");
    let target_totals = Totals::of(&target.snapshot());
    let _ = writeln!(
        out,
        "target portal after the migration (expected in parentheses):"
    );
    let rows = [
        ("users", target_totals.users, EXPECTED.users),
        ("groups", target_totals.groups, EXPECTED.groups),
        ("folders", target_totals.folders, EXPECTED.folders),
        ("items", target_totals.items, EXPECTED.items),
        (
            "relationships",
            target_totals.relationships,
            EXPECTED.relationships,
        ),
    ];
    for (what, got, want) in rows {
        let mark = if got == want { "ok" } else { "DIFFERENT" };
        let _ = writeln!(out, "  {what:<14}{got:>5}  ({want})  {mark}");
    }
    // Check what arrived object by object, as an administrator would with `verify`.
    let verified = crate::verify::verify(settings)
        .await
        .map_err(|e| fatal("verify", &e))?;
    let _ = writeln!(
        out,
        "\nverify (source and target compared object by object):"
    );
    for line in verified.to_string().lines().skip(3) {
        let _ = if line.is_empty() {
            writeln!(out)
        } else {
            writeln!(out, "  {line}")
        };
    }
    let _ = writeln!(
        out,
        "\nmigrated in {:.1}s ({} tasks, {} retries, {} failed) with {} ms simulated latency per request.",
        elapsed.as_secs_f64(),
        summary.completed,
        summary.retried,
        summary.failed,
        options.latency_ms
    );
    let _ = writeln!(
        out,
        "Inspect it: sqlite3 -readonly {} 'select * from progress'",
        state_path.display()
    );
    source.shutdown().await;
    target.shutdown().await;
    Ok(DemoReport {
        target: target_totals,
        expected: EXPECTED,
        elapsed,
        state_path,
        failures: status.failures.len(),
        verified: verified.is_ok(),
    })
}
