//! Figure 5: scale. A generated org of 100,000 items across 1,000 users: how long discovery
//! takes against how many listing requests it needs, how large the state file grows, whether
//! claiming slows down as the queue fills and empties, and how fast a killed daemon resumes.

use std::time::{Duration, Instant};

use super::daemon::Daemon;
use super::{
    config_toml, discover_only, faults, file_size, io, median_ms, settings, temp_dir, BenchError,
    BenchOptions, Pair, Report,
};
use crate::engine;
use crate::sim::generate::GenerateSpec;
use crate::store::{ClaimRequest, Completion, OpenOptions, Store, TaskOutcome};

const BENCH: &str = "scale";

pub(crate) async fn run(options: &BenchOptions, report: &mut Report<'_>) -> Result<(), BenchError> {
    let spec = if options.quick {
        GenerateSpec {
            seed: 5,
            users: 10,
            groups: 2,
            folders_per_user: 1,
            items_per_folder: 5,
            file_bytes: 64,
            members_per_group: 3,
            ..GenerateSpec::default()
        }
    } else {
        // 1,000 users × (3 folders + root) × 25 items = 100,000 items.
        GenerateSpec {
            seed: 5,
            users: 1_000,
            groups: 100,
            folders_per_user: 3,
            items_per_folder: 25,
            file_bytes: 64,
            members_per_group: 10,
            ..GenerateSpec::default()
        }
    };
    let generating = Instant::now();
    let (source_org, target_org) = Pair::generated(&spec);
    let items = source_org.items.len();
    let users = source_org.users.len();
    let relationships = source_org.relationships.len();
    let pair = Pair::start(source_org, target_org, faults(0, None), None).await?;
    report.note(format!(
        "org: {items} items, {users} users, {relationships} relationships (generated and loaded in {:.1} s); no latency",
        generating.elapsed().as_secs_f64()
    ));

    // Discovery alone, 16 tasks at a time.
    let dir = temp_dir()?;
    let state = dir.path().join("state.db");
    let before = pair.source.stats().total;
    let started = Instant::now();
    {
        let ctx = engine::connect(settings(&pair, dir.path(), 16, 0)?, "bench").await?;
        discover_only(&ctx, 16).await?;
    }
    let discovery = started.elapsed();
    let stats = pair.source.stats();
    let requests = stats.total - before;
    let mut endpoints: Vec<(String, u64)> = stats
        .by_endpoint
        .iter()
        .map(|(endpoint, outcomes)| (endpoint.clone(), outcomes.values().sum()))
        .collect();
    endpoints.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    let listing: Vec<String> = endpoints
        .iter()
        .take(6)
        .map(|(endpoint, count)| format!("{endpoint} {count}"))
        .collect();
    report.note(format!(
        "source requests by endpoint: {}",
        listing.join(", ")
    ));
    report.figure(
        BENCH,
        format!("discovery time ({requests} source requests)"),
        discovery.as_secs_f64(),
        "s",
        None,
    );
    report.figure(
        BENCH,
        "discovery request rate",
        requests as f64 / discovery.as_secs_f64(),
        "requests/s",
        None,
    );
    report.figure(
        BENCH,
        "discovery: source requests per item",
        requests as f64 / items.max(1) as f64,
        "requests",
        None,
    );
    let size = file_size(&state) + file_size(&dir.path().join("state.db-wal"));
    report.figure(
        BENCH,
        format!("state file size after discovery ({items} items)"),
        size as f64 / 1e6,
        "MB",
        None,
    );
    if size > 0 {
        report.note(format!(
            "{:.0} bytes per item",
            size as f64 / items.max(1) as f64
        ));
    }

    // Claim latency over the whole queue, on a copy: no-op completions, 64 at a time.
    let copy = dir.path().join("claims.db");
    std::fs::copy(&state, &copy).map_err(io("copying the state file"))?;
    let (first, last, total) = claim_through(&copy)?;
    report.figure(
        BENCH,
        format!("claim latency at the start of the queue ({total} tasks, median)"),
        first,
        "ms",
        None,
    );
    report.figure(
        BENCH,
        "claim latency at the end of the queue (median)",
        last,
        "ms",
        Some(("no growth (end <= 2x start)", last <= 2.0 * first.max(0.05))),
    );

    // Resume after a kill: the real binary works the discovered queue, is killed, and is
    // started again; the figure is the time from the restart to its first finished task.
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        config_toml(&pair.source, &pair.target, &state, 16, 0),
    )
    .map_err(io("writing the daemon's config"))?;
    let daemon = Daemon::start(&options.daemon, &config)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    // Killed well before the end, so the restart has work left even when a loaded machine
    // makes this loop look late (the quick variant's queue is small).
    let kill_after = (total as u64 / 4).clamp(1, 200);
    while daemon.done() < kill_after && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done_before_kill = daemon.done();
    daemon.kill()?;
    let restarted = Daemon::start(&options.daemon, &config)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while restarted.first_done().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let resume = restarted.first_done();
    restarted.kill()?;
    pair.shutdown().await;
    let resume = resume.ok_or_else(|| {
        BenchError::Daemon("the restarted daemon finished no task within 60 s".into())
    })?;
    report.note(format!("killed after {done_before_kill} tasks done"));
    report.figure(
        BENCH,
        "time from restart after a kill to the first finished task",
        resume.as_secs_f64(),
        "s",
        Some(("< 2", resume < Duration::from_secs(2))),
    );
    Ok(())
}

/// Claims and completes every task of the state file, 64 at a time; returns the median claim
/// latency (ms) of the first and of the last 1% of the claims, and how many tasks there were.
fn claim_through(path: &std::path::Path) -> Result<(f64, f64, usize), BenchError> {
    let store = Store::open(path, &OpenOptions::default())?;
    let mut latencies: Vec<std::time::Duration> = Vec::new();
    let mut outcomes: Vec<(crate::store::TaskId, TaskOutcome)> = Vec::new();
    let mut total = 0usize;
    loop {
        // The outcomes first, then the claim alone, so the claim is timed by itself.
        if !outcomes.is_empty() {
            let recorded = store.record_and_claim(&outcomes, None)?;
            for result in recorded.outcomes {
                result?;
            }
        }
        let started = Instant::now();
        let claimed = store.record_and_claim(
            &[],
            Some(ClaimRequest {
                now_ms: crate::store::now_ms(),
                limit: 64,
                lease_ms: 300_000,
            }),
        )?;
        latencies.push(started.elapsed());
        if claimed.claimed.is_empty() {
            break;
        }
        total += claimed.claimed.len();
        outcomes = claimed
            .claimed
            .into_iter()
            .map(|task| {
                let completion = Completion {
                    outcome: "created".into(),
                    id_map: vec![(
                        task.kind.clone(),
                        task.source_key.clone(),
                        format!("t{}", task.id),
                    )],
                    ..Completion::default()
                };
                (task.id, TaskOutcome::Complete(completion))
            })
            .collect();
    }
    latencies.pop(); // the empty claim at the end
    let n = (latencies.len() / 100).max(3).min(latencies.len());
    let mut first: Vec<_> = latencies.iter().take(n).copied().collect();
    let mut last: Vec<_> = latencies.iter().rev().take(n).copied().collect();
    Ok((median_ms(&mut first), median_ms(&mut last), total))
}
