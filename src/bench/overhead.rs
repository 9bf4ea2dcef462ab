//! Figure 3: the daemon's own overhead, with no latency and no limit. Queue operations per
//! second (claim + complete + id map row) measured on the store alone, one transaction per
//! operation and group-committed, and in the worker pool with an executor that does no I/O;
//! then the share of the real daemon's CPU time that is queue work rather than HTTP.

use std::time::{Duration, Instant};

use serde_json::json;

use super::daemon::Daemon;
use super::{
    config_toml, faults, io, org_of_about, own_cpu_time, settings_for, temp_dir, BenchError,
    BenchOptions, Pair, Report,
};
use crate::engine;
use crate::fixture::sample_org;
use crate::store::{ClaimRequest, Completion, NewTask, OpenOptions, Store, TaskOutcome};

const BENCH: &str = "overhead";

/// A task the size of a real item task: its payload is an item as a folder listing shows it.
fn bench_task(n: usize) -> NewTask {
    NewTask {
        kind: "bench".into(),
        source_key: format!("{n:08}"),
        title: format!("item 'Bench item {n}' (CSV) of user{}", n % 100),
        payload: json!({
            "item": {
                "id": format!("{n:032x}"), "owner": format!("user{}", n % 100),
                "title": format!("Bench item {n}"), "type": "CSV",
                "typeKeywords": ["CSV", "Data"], "tags": ["bench", "queue"],
                "snippet": "A task as large as a real item task", "access": "private",
                "extent": [[-94.6, 33.0], [-89.6, 36.5]], "name": "bench.csv",
            },
            "folder_id": null, "folder_title": null,
        }),
        depends_on: vec![],
        priority: 40,
        max_attempts: 6,
    }
}

/// What a no-op task records: done, with one id map row, like a created object.
fn noop_completion(source_key: &str) -> Completion {
    Completion {
        outcome: "created".into(),
        target_id: Some(format!("t{source_key}")),
        id_map: vec![(
            "bench".into(),
            source_key.to_string(),
            format!("t{source_key}"),
        )],
        ..Completion::default()
    }
}

pub(crate) async fn run(options: &BenchOptions, report: &mut Report<'_>) -> Result<(), BenchError> {
    let tasks = if options.quick { 300 } else { 20_000 };
    report.note(format!(
        "{tasks} tasks, synchronous = FULL (the default), state file in {}",
        std::env::temp_dir().display()
    ));
    store_alone(tasks, report)?;
    let queue_cpu_per_task = pool(options, tasks, report).await?;
    daemon_share(options, queue_cpu_per_task, report).await?;
    Ok(())
}

/// Claim + complete on the store itself: one transaction each (two fsyncs per task), then
/// group commit (the outcomes of a batch and the next claim in one transaction).
fn store_alone(tasks: usize, report: &mut Report<'_>) -> Result<(), BenchError> {
    for batch in [1usize, 64] {
        let dir = temp_dir()?;
        let store = Store::open(&dir.path().join("state.db"), &OpenOptions::default())?;
        let all: Vec<NewTask> = (0..tasks).map(bench_task).collect();
        store.enqueue(&all)?;
        let started = Instant::now();
        let mut completed = 0usize;
        if batch == 1 {
            loop {
                let claimed = store.claim(crate::store::now_ms(), 1, 300_000)?;
                let Some(task) = claimed.first() else { break };
                store.complete(task.id, &noop_completion(&task.source_key))?;
                completed += 1;
            }
        } else {
            let mut outcomes: Vec<(crate::store::TaskId, TaskOutcome)> = Vec::new();
            loop {
                let recorded = store.record_and_claim(
                    &outcomes,
                    Some(ClaimRequest {
                        now_ms: crate::store::now_ms(),
                        limit: batch,
                        lease_ms: 300_000,
                    }),
                )?;
                for result in recorded.outcomes {
                    result?;
                    completed += 1;
                }
                if recorded.claimed.is_empty() {
                    break;
                }
                outcomes = recorded
                    .claimed
                    .iter()
                    .map(|t| (t.id, TaskOutcome::Complete(noop_completion(&t.source_key))))
                    .collect();
            }
        }
        let elapsed = started.elapsed();
        if completed != tasks {
            return Err(BenchError::Check(format!(
                "the store completed {completed} of {tasks} tasks"
            )));
        }
        let name = if batch == 1 {
            "store alone: completions/s, one transaction per claim and per completion".to_string()
        } else {
            format!("store alone: completions/s, group commit of {batch}")
        };
        let rate = tasks as f64 / elapsed.as_secs_f64();
        let goal = (batch > 1).then_some((">= 5000", rate >= 5_000.0));
        report.figure(BENCH, name, rate, "tasks/s", goal);
    }
    Ok(())
}

/// The worker pool with an executor that returns at once: everything but the portal work.
/// Returns the CPU time of queue work per task (with 64 workers).
async fn pool(
    options: &BenchOptions,
    tasks: usize,
    report: &mut Report<'_>,
) -> Result<Duration, BenchError> {
    let _ = options;
    let pair = Pair::start(
        sample_org::source(),
        sample_org::target(),
        faults(0, None),
        None,
    )
    .await?;
    let mut cpu_per_task = Duration::ZERO;
    for workers in [8usize, 64] {
        let dir = temp_dir()?;
        let settings = settings_for(&pair.source, &pair.target, dir.path(), workers, 0)?;
        let ctx = engine::connect(settings, "bench").await?;
        let all: Vec<NewTask> = (0..tasks).map(bench_task).collect();
        ctx.store.call(move |s| s.enqueue(&all)).await?;
        let cpu_before = own_cpu_time();
        let started = Instant::now();
        let controls = std::sync::Arc::new(crate::work::PoolControls::new(workers));
        let summary =
            crate::work::drain_with(
                &ctx,
                std::future::pending(),
                &controls,
                |_, task: crate::store::ClaimedTask| async move {
                    Ok(noop_completion(&task.source_key))
                },
            )
            .await?;
        let elapsed = started.elapsed();
        let cpu = match (cpu_before, own_cpu_time()) {
            (Some(before), Some(after)) => after.saturating_sub(before),
            _ => Duration::ZERO,
        };
        if summary.completed != tasks as u64 {
            return Err(BenchError::Check(format!(
                "the pool completed {} of {tasks} tasks",
                summary.completed
            )));
        }
        let rate = tasks as f64 / elapsed.as_secs_f64();
        report.figure(
            BENCH,
            format!("pool with a no-op executor: completions/s, {workers} workers"),
            rate,
            "tasks/s",
            Some((">= 5000", rate >= 5_000.0)),
        );
        report.note(format!(
            "CPU {:.0} µs per task ({:.0}% of one core)",
            cpu.as_secs_f64() * 1e6 / tasks as f64,
            100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64()
        ));
        cpu_per_task = cpu / tasks as u32;
    }
    pair.shutdown().await;
    Ok(cpu_per_task)
}

/// The real binary migrating a generated org at no latency: its CPU time per task against
/// the queue's own CPU time per task (from the no-op pool). The rest is HTTP (client,
/// TLS-free loopback sockets, JSON of the answers) and the tasks' own small logic.
async fn daemon_share(
    options: &BenchOptions,
    queue_cpu_per_task: Duration,
    report: &mut Report<'_>,
) -> Result<(), BenchError> {
    let objects = if options.quick { 40 } else { 2_000 };
    let (spec, count) = org_of_about(objects);
    let (source, target) = Pair::generated(&spec);
    let pair = Pair::start(source, target, faults(0, None), None).await?;
    let dir = temp_dir()?;
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        config_toml(
            &pair.source,
            &pair.target,
            &dir.path().join("state.db"),
            16,
            0,
        ),
    )
    .map_err(io("writing the daemon's config"))?;
    let finished = Daemon::start(&options.daemon, &config)?
        .wait(Duration::from_secs(600))
        .await?;
    let requests = pair.source.stats().total + pair.target.stats().total;
    pair.shutdown().await;
    if !finished.success || finished.done == 0 {
        return Err(BenchError::Daemon(format!(
            "the migration of {count} objects did not finish cleanly ({} tasks done)",
            finished.done
        )));
    }
    let daemon_cpu = finished.cpu.as_secs_f64();
    let queue_cpu = queue_cpu_per_task.as_secs_f64() * finished.done as f64;
    report.note(format!(
        "daemon: {} tasks, {requests} requests in {:.1} s, {:.2} s CPU ({:.0} µs per request)",
        finished.done,
        finished.elapsed.as_secs_f64(),
        daemon_cpu,
        daemon_cpu * 1e6 / requests.max(1) as f64
    ));
    report.figure(
        BENCH,
        "share of the daemon's CPU spent on the queue (not HTTP)",
        if daemon_cpu > 0.0 {
            queue_cpu / daemon_cpu
        } else {
            0.0
        },
        "ratio",
        None,
    );
    Ok(())
}
