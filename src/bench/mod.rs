//! `portal-migrate bench`: the six figures of issue 7, measured against simulated portals on
//! loopback, each printed as a ratio or a rate as soon as it is known.
//!
//! 1. `saturation`: how close the target's request rate comes to its rate limit.
//! 2. `latency`: throughput per worker count at 100 ms latency (latency hiding).
//! 3. `overhead`: queue operations per second (store alone, and the pool with a no-op
//!    executor) and the share of the daemon's CPU that is not HTTP.
//! 4. `memory`: peak RSS of the real binary copying a 100 MiB and a 1 GiB file.
//! 5. `scale`: discovery of 100,000 items, state file size, claim latency, resume time.
//! 6. `notebook`: our daemon against one-request-at-a-time on the sample org.
//!
//! Simulators run in this process; where a figure is about the daemon's own process (memory,
//! CPU, resume after a kill) the real binary runs as a child. `--quick` runs each benchmark
//! at a tiny size, for the smoke test: its figures prove the plumbing, not the performance.

// `BenchError` carries a whole `RunError` (and so a `PortalError`) to show the failure as it
// was; errors end a benchmark, so moving a larger `Err` costs nothing.
#![allow(clippy::result_large_err)]

mod daemon;
mod latency;
mod memory;
mod notebook;
mod overhead;
mod saturation;
mod scale;

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::engine::{self, Context, RunError};
use crate::fixture::Fixture;
use crate::settings::{Settings, SettingsError};
use crate::sim::generate::{self, GenerateSpec};
use crate::sim::{Faults, SimError, SimOptions, SimServer};
use crate::store::{StoreError, TaskId};

/// The benchmarks, in the order they run.
pub const NAMES: &[&str] = &[
    "saturation",
    "latency",
    "overhead",
    "memory",
    "scale",
    "notebook",
];

const SOURCE_PASSWORD_ENV: &str = "PORTAL_MIGRATE_BENCH_SOURCE_PASSWORD";
const TARGET_PASSWORD_ENV: &str = "PORTAL_MIGRATE_BENCH_TARGET_PASSWORD";
/// The admin password of the generated orgs and of the sample org.
const ADMIN_PASSWORD: &str = "admin-sample-pw";

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Run only the benchmark of this name (see [`NAMES`]).
    pub only: Option<String>,
    /// Tiny sizes: seconds in all, for the smoke test.
    pub quick: bool,
    /// The `portal-migrate` binary, run as a child where the daemon's own process is measured.
    pub daemon: PathBuf,
}

/// One measured figure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figure {
    pub bench: &'static str,
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    /// What the issue asks for, e.g. `>= 0.95`.
    pub goal: Option<String>,
    /// Whether the goal is met, when there is one.
    pub met: Option<bool>,
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.value.abs() >= 100.0 || self.value == self.value.trunc() {
            format!("{:.0}", self.value)
        } else if self.value.abs() >= 1.0 {
            format!("{:.2}", self.value)
        } else {
            format!("{:.3}", self.value)
        };
        write!(
            f,
            "{:<11}{:<58}{:>12} {:<12}",
            self.bench, self.name, value, self.unit
        )?;
        if let (Some(goal), Some(met)) = (&self.goal, self.met) {
            write!(f, " goal {goal}: {}", if met { "met" } else { "NOT MET" })?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("unknown benchmark '{0}'; the benchmarks are: {names}", names = NAMES.join(", "))]
    UnknownBench(String),
    #[error("simulator: {0}")]
    Sim(#[from] SimError),
    #[error("migration: {0}")]
    Run(#[from] RunError),
    #[error("state file: {0}")]
    Store(#[from] StoreError),
    #[error("bench settings: {0}")]
    Settings(#[from] SettingsError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("the daemon process: {0}")]
    Daemon(String),
    /// A benchmark's own check failed (e.g. the copied file differs): its figure would lie.
    #[error("{0}")]
    Check(String),
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let context = context.into();
    move |source| BenchError::Io { context, source }
}

/// Collects figures and prints each as it arrives.
pub(crate) struct Report<'a> {
    out: &'a mut (dyn Write + Send),
    figures: Vec<Figure>,
}

impl Report<'_> {
    pub fn note(&mut self, text: impl fmt::Display) {
        let _ = writeln!(self.out, "           {text}");
        let _ = self.out.flush();
    }

    pub fn figure(
        &mut self,
        bench: &'static str,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        goal: Option<(&str, bool)>,
    ) {
        let figure = Figure {
            bench,
            name: name.into(),
            value,
            unit,
            goal: goal.map(|(text, _)| text.to_string()),
            met: goal.map(|(_, met)| met),
        };
        let _ = writeln!(self.out, "{figure}");
        let _ = self.out.flush();
        self.figures.push(figure);
    }
}

/// Runs the chosen benchmarks and returns every figure (also printed to `out` as measured).
pub async fn run(
    options: BenchOptions,
    out: &mut (dyn Write + Send),
) -> Result<Vec<Figure>, BenchError> {
    let chosen: Vec<&'static str> = match &options.only {
        Some(name) => vec![NAMES
            .iter()
            .copied()
            .find(|n| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| BenchError::UnknownBench(name.clone()))?],
        None => NAMES.to_vec(),
    };
    let mut report = Report {
        out,
        figures: Vec::new(),
    };
    let started = Instant::now();
    for name in chosen {
        let bench_started = Instant::now();
        let _ = writeln!(report.out, "== {name}");
        match name {
            "saturation" => saturation::run(&options, &mut report).await?,
            "latency" => latency::run(&options, &mut report).await?,
            "overhead" => overhead::run(&options, &mut report).await?,
            "memory" => memory::run(&options, &mut report).await?,
            "scale" => scale::run(&options, &mut report).await?,
            "notebook" => notebook::run(&options, &mut report).await?,
            _ => return Err(BenchError::UnknownBench(name.to_string())),
        }
        report.note(format!(
            "({name} took {:.1} s)",
            bench_started.elapsed().as_secs_f64()
        ));
    }
    report.note(format!(
        "all benchmarks took {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(report.figures)
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing

/// The generated org closest above `objects` objects (users, groups, folders, items,
/// memberships, shares, relationships), growing the number of users.
pub(crate) fn org_of_about(objects: usize) -> (GenerateSpec, usize) {
    let mut spec = GenerateSpec {
        seed: 7,
        users: 2,
        groups: 1,
        folders_per_user: 1,
        items_per_folder: 10,
        file_bytes: 512,
        members_per_group: 4,
        ..GenerateSpec::default()
    };
    loop {
        spec.groups = (spec.users / 5).max(1);
        let count = generate::estimated_objects(&spec);
        if count >= objects || spec.users >= 10_000 {
            return (spec, count);
        }
        spec.users += 1;
    }
}

pub(crate) fn faults(latency_ms: u64, rate_limit_rps: Option<f64>) -> Faults {
    Faults {
        latency_ms,
        rate_limit_rps,
        ..Faults::default()
    }
}

/// A source and a target simulator.
pub(crate) struct Pair {
    pub source: SimServer,
    pub target: SimServer,
}

impl Pair {
    pub async fn start(
        source: Fixture,
        target: Fixture,
        faults: Faults,
        target_listen: Option<std::net::SocketAddr>,
    ) -> Result<Pair, BenchError> {
        let source = SimServer::start(
            source,
            SimOptions {
                faults: faults.clone(),
                ..SimOptions::default()
            },
        )
        .await?;
        let mut target_options = SimOptions {
            faults,
            ..SimOptions::default()
        };
        if let Some(listen) = target_listen {
            target_options.listen = listen;
        }
        let target = SimServer::start(target, target_options).await?;
        Ok(Pair { source, target })
    }

    pub fn generated(spec: &GenerateSpec) -> (Fixture, Fixture) {
        (generate::generate(spec), generate::generate_target(spec))
    }

    pub async fn shutdown(self) {
        self.source.shutdown().await;
        self.target.shutdown().await;
    }
}

/// The configuration file text for a migration between the pair.
pub(crate) fn config_toml(
    source: &SimServer,
    target: &SimServer,
    state: &Path,
    workers: usize,
    target_rps: u32,
) -> String {
    format!(
        r#"
[source]
url = "{source}"
username = "admin"
password_env = "{SOURCE_PASSWORD_ENV}"

[target]
url = "{target}"
username = "admin"
password_env = "{TARGET_PASSWORD_ENV}"

[state]
path = "{state}"

[workers]
count = {workers}
shutdown_grace_secs = 2

[rate_limit]
target_rps = {target_rps}

[retry]
initial_backoff_ms = 50
max_backoff_secs = 2

[service]
enabled = false

[log]
level = "warn"
"#,
        source = source.url(),
        target = target.url(),
        state = state.display(),
    )
}

pub(crate) fn password_env() -> HashMap<String, String> {
    [
        (SOURCE_PASSWORD_ENV.to_string(), ADMIN_PASSWORD.to_string()),
        (TARGET_PASSWORD_ENV.to_string(), ADMIN_PASSWORD.to_string()),
    ]
    .into()
}

pub(crate) fn settings(
    pair: &Pair,
    dir: &Path,
    workers: usize,
    target_rps: u32,
) -> Result<Settings, BenchError> {
    settings_for(&pair.source, &pair.target, dir, workers, target_rps)
}

pub(crate) fn settings_for(
    source: &SimServer,
    target: &SimServer,
    dir: &Path,
    workers: usize,
    target_rps: u32,
) -> Result<Settings, BenchError> {
    let toml = config_toml(source, target, &dir.join("state.db"), workers, target_rps);
    Ok(Settings::from_toml_str(&toml, dir, &password_env())?)
}

pub(crate) fn temp_dir() -> Result<tempfile::TempDir, BenchError> {
    tempfile::Builder::new()
        .prefix("portal-migrate-bench-")
        .tempdir()
        .map_err(io("creating a scratch directory"))
}

/// Whether a task kind is part of discovery rather than an object to copy.
fn is_discovery(kind: &str) -> bool {
    matches!(
        kind,
        "discover" | "discover_user" | "discover_group" | "link"
    )
}

/// Runs discovery only (discover, discover_user, discover_group, link), `concurrency` tasks
/// at a time, and leaves every object task pending: a state file ready for the copy phase.
/// Object tasks that a claim hands out early are released without spending an attempt.
pub(crate) async fn discover_only(ctx: &Context, concurrency: usize) -> Result<u64, BenchError> {
    use crate::store::{ClaimRequest, TaskOutcome};
    crate::plan::enqueue_discovery(ctx).await?;
    let lease_ms = ctx.settings.workers.lease.as_millis() as i64;
    let mut inflight: tokio::task::JoinSet<(
        TaskId,
        String,
        Result<crate::store::Completion, String>,
    )> = tokio::task::JoinSet::new();
    let mut finished: Vec<(TaskId, TaskOutcome)> = Vec::new();
    let mut done = 0u64;
    loop {
        let free = concurrency.saturating_sub(inflight.len());
        let outcomes = std::mem::take(&mut finished);
        let recorded = ctx
            .store
            .call(move |s| {
                s.record_and_claim(
                    &outcomes,
                    Some(ClaimRequest {
                        now_ms: crate::store::now_ms(),
                        limit: free,
                        lease_ms,
                    }),
                )
            })
            .await?;
        for result in recorded.outcomes {
            result?;
            done += 1;
        }
        let mut objects = Vec::new();
        for task in recorded.claimed {
            if !is_discovery(&task.kind) {
                objects.push(task.id);
                continue;
            }
            let ctx = ctx.clone();
            inflight.spawn(async move {
                let result = crate::clone::execute(&ctx, &task)
                    .await
                    .map_err(|e| e.to_string());
                (task.id, task.title, result)
            });
        }
        if !objects.is_empty() {
            ctx.store.call(move |s| s.release(&objects)).await?;
        }
        let Some(joined) = inflight.join_next().await else {
            break;
        };
        let (task, title, result) =
            joined.map_err(|e| BenchError::Check(format!("a discovery task panicked: {e}")))?;
        let completion =
            result.map_err(|e| BenchError::Check(format!("discovery task {title} failed: {e}")))?;
        finished.push((task, TaskOutcome::Complete(completion)));
        while let Some(joined) = inflight.try_join_next() {
            let (task, title, result) =
                joined.map_err(|e| BenchError::Check(format!("a discovery task panicked: {e}")))?;
            let completion = result
                .map_err(|e| BenchError::Check(format!("discovery task {title} failed: {e}")))?;
            finished.push((task, TaskOutcome::Complete(completion)));
        }
    }
    Ok(done)
}

/// Runs a migration in this process, stopping after `limit` if the queue has not drained.
pub(crate) async fn migrate(
    settings: Settings,
    limit: Option<Duration>,
) -> Result<(crate::work::Summary, Duration), BenchError> {
    let started = Instant::now();
    let summary = match limit {
        Some(limit) => engine::run(settings, tokio::time::sleep(limit)).await?,
        None => engine::run(settings, std::future::pending()).await?,
    };
    Ok((summary, started.elapsed()))
}

/// User + system CPU time of this process so far.
pub(crate) fn own_cpu_time() -> Option<Duration> {
    daemon::cpu_time_of("self")
}

/// The median of some durations, in milliseconds.
pub(crate) fn median_ms(samples: &mut [Duration]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

pub(crate) fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
