//! Figure 2: latency hiding. The same org as figure 1 at 100 ms latency and no rate limit,
//! copied with 1, 4, 16 and 64 workers: objects per second should grow near-linearly with the
//! workers until the simulator's CPU is the limit.
//!
//! Discovery is done once, fast (no latency), and its state file copied for each worker
//! count, so every run measures the copy phase from the same start. Each run is timed over
//! a fixed window (or until the queue drains): one worker at 100 ms per request would need
//! a quarter of an hour for the whole org.

use std::time::Duration;

use super::{
    discover_only, faults, io, migrate, org_of_about, settings, settings_for, temp_dir, BenchError,
    BenchOptions, Pair, Report,
};
use crate::engine;

const BENCH: &str = "latency";

pub(crate) async fn run(options: &BenchOptions, report: &mut Report<'_>) -> Result<(), BenchError> {
    let (objects, latency_ms, worker_counts, window): (usize, u64, &[usize], Duration) =
        if options.quick {
            (40, 20, &[1, 4], Duration::from_secs(1))
        } else {
            (2_000, 100, &[1, 4, 16, 64], Duration::from_secs(20))
        };
    let (spec, count) = org_of_about(objects);
    let (source_org, target_org) = Pair::generated(&spec);
    report.note(format!(
        "org: {count} objects; latency {latency_ms} ms; no rate limit; each run timed over {} s or until done",
        window.as_secs()
    ));

    // Discovery once, at no latency; the target keeps one address so that the state file's
    // recorded portal pair matches every fresh target below.
    let dir = temp_dir()?;
    let discovered = dir.path().join("discovered.db");
    let pair = Pair::start(
        source_org.clone(),
        target_org.clone(),
        faults(0, None),
        None,
    )
    .await?;
    let target_addr = pair.target.addr();
    {
        let ctx = engine::connect(settings(&pair, dir.path(), 16, 0)?, "bench").await?;
        discover_only(&ctx, 16).await?;
    }
    std::fs::rename(dir.path().join("state.db"), &discovered)
        .map_err(io("keeping the discovered state"))?;
    let source_stats = pair.source.stats().total;
    let Pair { source, target } = pair;
    target.shutdown().await;
    report.note(format!(
        "discovery (not timed here): {source_stats} source requests"
    ));

    let mut single = None;
    for &workers in worker_counts {
        let target = crate::sim::SimServer::start(
            target_org.clone(),
            crate::sim::SimOptions {
                listen: target_addr,
                faults: faults(latency_ms, None),
                ..crate::sim::SimOptions::default()
            },
        )
        .await?;
        source.set_faults(faults(latency_ms, None));
        let run_dir = temp_dir()?;
        std::fs::copy(&discovered, run_dir.path().join("state.db"))
            .map_err(io("copying the discovered state"))?;
        let settings = settings_for(&source, &target, run_dir.path(), workers, 0)?;
        let source_before = source.stats().total;
        let (summary, elapsed) = migrate(settings, Some(window)).await?;
        let requests = source.stats().total - source_before + target.stats().total;
        target.shutdown().await;
        if summary.failed > 0 {
            return Err(BenchError::Check(format!(
                "{} tasks failed with {workers} workers",
                summary.failed
            )));
        }
        let rate = summary.completed as f64 / elapsed.as_secs_f64();
        let speedup = match single {
            None => {
                single = Some(rate);
                1.0
            }
            Some(base) => rate / base,
        };
        report.figure(
            BENCH,
            format!("objects/s with {workers} workers ({speedup:.1}x one worker)"),
            rate,
            "objects/s",
            None,
        );
        // Each worker can have one request in flight, so at best it makes one request per
        // latency period: requests/s per worker against that bound shows how much of the
        // latency the pool hides, whatever mix of objects the window happened to hold.
        let per_worker = requests as f64 / elapsed.as_secs_f64() / workers as f64;
        let bound = 1000.0 / latency_ms as f64;
        report.figure(
            BENCH,
            format!(
                "requests/s per worker with {workers} workers / {bound:.0} (the latency bound)"
            ),
            per_worker / bound,
            "ratio",
            None,
        );
    }
    source.shutdown().await;
    Ok(())
}
