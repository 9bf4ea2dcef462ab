//! Figure 1: does the daemon keep the target as busy as its rate limit allows? A generated
//! org of about 2,000 objects, 50 ms latency, the target limited to 50 requests/s by our own
//! limiter and by the simulator (which answers 429 above it, so a single 429 would show that
//! we exceeded it).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{
    faults, migrate, org_of_about, settings, temp_dir, BenchError, BenchOptions, Pair, Report,
};

const BENCH: &str = "saturation";

pub(crate) async fn run(options: &BenchOptions, report: &mut Report<'_>) -> Result<(), BenchError> {
    let (objects, latency_ms, limit, workers) = if options.quick {
        (40, 5, 100u32, 8)
    } else {
        (2_000, 50, 50u32, 16)
    };
    let (spec, count) = org_of_about(objects);
    report.note(format!(
        "org: {count} objects ({} users, {} groups, {} items per user); latency {latency_ms} ms; target limit {limit} requests/s (client and simulator); {workers} workers",
        spec.users,
        spec.groups,
        (spec.folders_per_user + 1) * spec.items_per_folder
    ));
    let (source, target) = Pair::generated(&spec);
    let pair = Pair::start(source, target, faults(latency_ms, None), None).await?;
    // Only the target is limited; the source answers as fast as its latency allows.
    pair.target
        .set_faults(faults(latency_ms, Some(f64::from(limit))));
    let dir = temp_dir()?;
    let settings = settings(&pair, dir.path(), workers, limit)?;

    // Sample the target's request counter as the migration runs.
    let samples: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let stop = Arc::new(tokio::sync::Notify::new());
    let sampler = {
        let (samples, stop) = (samples.clone(), stop.clone());
        let target = pair.target.stats_handle();
        tokio::spawn(async move {
            loop {
                let total = target.total();
                if let Ok(mut samples) = samples.lock() {
                    samples.push((Instant::now(), total));
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = stop.notified() => break,
                }
            }
        })
    };
    let (summary, elapsed) = migrate(settings, None).await?;
    stop.notify_one();
    let _ = sampler.await;
    let stats = pair.target.stats();
    let rate_limited = stats.outcome_total("rate_limited");
    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    pair.shutdown().await;
    if summary.failed > 0 {
        return Err(BenchError::Check(format!(
            "{} tasks failed in the saturation run",
            summary.failed
        )));
    }

    // The create phase: from the first to the last target request after sign-in, trimmed to
    // the middle 90% of its requests so that the ramp-up (discovery is still listing) and the
    // tail (the last relationships wait on their items) do not count as the limiter's doing.
    let first = samples.first().map(|s| s.1).unwrap_or(0);
    let last = samples.last().map(|s| s.1).unwrap_or(0);
    let span = last.saturating_sub(first) as f64;
    let at = |fraction: f64| {
        let wanted = first as f64 + span * fraction;
        samples
            .iter()
            .find(|(_, total)| *total as f64 >= wanted)
            .map(|(t, total)| (*t, *total))
    };
    let (rate_middle, rate_whole) = match (at(0.05), at(0.95), at(0.0001), at(1.0)) {
        (Some((t5, c5)), Some((t95, c95)), Some((t0, c0)), Some((t1, c1))) => (
            (c95 - c5) as f64 / (t95 - t5).as_secs_f64().max(1e-3),
            (c1 - c0) as f64 / (t1 - t0).as_secs_f64().max(1e-3),
        ),
        _ => (0.0, 0.0),
    };
    report.note(format!(
        "{} tasks in {:.1} s; {last} target requests",
        summary.completed,
        elapsed.as_secs_f64()
    ));
    let ratio = rate_middle / f64::from(limit);
    report.figure(
        BENCH,
        "target request rate / limit (middle 90% of the create phase)",
        ratio,
        "ratio",
        Some((">= 0.95", ratio >= 0.95)),
    );
    report.figure(
        BENCH,
        "target request rate / limit (whole create phase)",
        rate_whole / f64::from(limit),
        "ratio",
        None,
    );
    report.figure(
        BENCH,
        "requests the target refused with 429",
        rate_limited as f64,
        "requests",
        Some(("0", rate_limited == 0)),
    );
    Ok(())
}
