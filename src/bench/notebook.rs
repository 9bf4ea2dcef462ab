//! Figure 6: against the notebook's way. The sample org migrated at 50 ms latency by the
//! daemon (8 workers, the default) and one request at a time (`workers.count = 1`, which
//! also makes discovery ask its relationship queries one by one).

use super::{faults, migrate, settings, temp_dir, BenchError, BenchOptions, Pair, Report};
use crate::fixture::sample_org;

const BENCH: &str = "notebook";

pub(crate) async fn run(options: &BenchOptions, report: &mut Report<'_>) -> Result<(), BenchError> {
    let latency_ms = if options.quick { 2 } else { 50 };
    report.note(format!(
        "sample org; latency {latency_ms} ms; no rate limit"
    ));
    let mut times = Vec::new();
    for workers in [8usize, 1] {
        let pair = Pair::start(
            sample_org::source(),
            sample_org::target(),
            faults(latency_ms, None),
            None,
        )
        .await?;
        let dir = temp_dir()?;
        let (summary, elapsed) = migrate(settings(&pair, dir.path(), workers, 0)?, None).await?;
        let requests = pair.source.stats().total + pair.target.stats().total;
        pair.shutdown().await;
        if summary.failed > 0 {
            return Err(BenchError::Check(format!(
                "{} tasks failed with {workers} workers",
                summary.failed
            )));
        }
        report.figure(
            BENCH,
            format!(
                "sample org, {} ({requests} requests)",
                if workers == 1 {
                    "one request at a time".to_string()
                } else {
                    format!("daemon with {workers} workers")
                }
            ),
            elapsed.as_secs_f64(),
            "s",
            None,
        );
        times.push(elapsed.as_secs_f64());
    }
    if let [daemon, sequential] = times[..] {
        report.figure(
            BENCH,
            "speed-up of the daemon over one request at a time",
            sequential / daemon,
            "x",
            None,
        );
    }
    Ok(())
}
