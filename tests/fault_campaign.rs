//! Fault campaign: a generated organisation migrated between simulators that fail 10% of
//! requests with every kind of transient failure (HTTP 500/502/503, an error body with code
//! 500, a dropped connection — for writes half the time *after* the write happened — and a
//! stalled answer that only the client's timeout ends), throttle with 429 + `Retry-After`,
//! expire tokens every few seconds and hold some answers back with 2 s latency spikes. The
//! migration must complete with nothing lost and nothing duplicated; the test prints what it
//! took.
//!
//! The CI variant runs in `cargo test`; the full one (over 1,000 objects, tokens expiring
//! every 20 s) with `PORTAL_MIGRATE_CAMPAIGN=full cargo test --test fault_campaign -- --nocapture`.

mod common;

use std::time::Instant;

use portal_migrate::engine;
use portal_migrate::sim::generate::{estimated_objects, GenerateSpec};
use portal_migrate::sim::stats::Stats;
use portal_migrate::sim::Faults;

struct Plan {
    spec: GenerateSpec,
    token_ttl_secs: u64,
    rate_limit_rps: f64,
    spike_rate: f64,
}

fn plan() -> Plan {
    if common::full_campaign() {
        Plan {
            spec: "users=30,groups=6,folders-per-user=2,items-per-folder=5,members-per-group=8,file-bytes=2048"
                .parse()
                .expect("valid spec"),
            token_ttl_secs: 20,
            rate_limit_rps: 60.0,
            spike_rate: 0.02,
        }
    } else {
        Plan {
            spec: "users=6,groups=3,folders-per-user=1,items-per-folder=4,members-per-group=3,file-bytes=1024"
                .parse()
                .expect("valid spec"),
            // Short enough that tokens expire several times during the short run.
            token_ttl_secs: 3,
            rate_limit_rps: 40.0,
            spike_rate: 0.02,
        }
    }
}

fn faults(plan: &Plan, seed: u64) -> Faults {
    Faults {
        fail_rate: 0.1,
        // Longer than the client's 3 s timeout below: a stall ends as a client timeout.
        stall_ms: Some(6_000),
        rate_limit_rps: Some(plan.rate_limit_rps),
        token_ttl_secs: Some(plan.token_ttl_secs),
        spike_rate: plan.spike_rate,
        spike_ms: 2_000,
        seed: Some(seed),
        ..Faults::default()
    }
}

/// Injected faults by kind, as the simulator counted them.
fn injected(stats: &Stats) -> Vec<(String, u64)> {
    let mut kinds = vec![
        "fault:http500",
        "fault:http502",
        "fault:http503",
        "fault:error500",
        "fault:drop",
        "fault:stall",
        "rate_limited",
        "error:498",
    ]
    .into_iter()
    .map(|kind| (kind.to_string(), stats.outcome_total(kind)))
    .collect::<Vec<_>>();
    kinds.push(("latency_spike".to_string(), stats.latency_spikes));
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_every_transient_fault_the_migration_completes_exactly() {
    let plan = plan();
    let seed = common::campaign_seed(7_131);
    let spec = GenerateSpec {
        seed,
        ..plan.spec.clone()
    };
    let objects = estimated_objects(&spec);
    println!(
        "fault campaign: seed {seed} (replay with PORTAL_MIGRATE_CAMPAIGN_SEED={seed}), {objects} objects"
    );
    let (source, target, source_fixture, before) =
        common::generated_pair(&spec, None, Faults::default()).await;
    source.set_faults(faults(&plan, seed));
    target.set_faults(faults(&plan, seed.wrapping_add(1)));
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings_with(
        dir.path(),
        &source,
        &target,
        "[workers]\ncount = 8\n",
        &[
            ("PORTAL_MIGRATE__SOURCE__TIMEOUT_SECS", "3"),
            ("PORTAL_MIGRATE__TARGET__TIMEOUT_SECS", "3"),
        ],
    );

    let started = Instant::now();
    let summary = engine::run(settings.clone(), std::future::pending())
        .await
        .expect("the migration runs to the end");
    let elapsed = started.elapsed();

    let source_stats = source.stats();
    let target_stats = target.stats();
    source.set_faults(Faults::default());
    target.set_faults(Faults::default());
    let status = portal_migrate::commands::status(&settings.state.path).unwrap();
    assert_eq!(summary.failed, 0, "no task failed:\n{status}");

    let after = target.snapshot();
    assert!(
        common::duplicate_report(&after).is_empty(),
        "nothing duplicated"
    );
    let ids = common::assert_faithful_clone(&source_fixture, &before, &after);
    common::assert_state_complete(&settings.state.path, &source_fixture, &ids);

    let events: Vec<(String, i64)> = {
        let db = rusqlite::Connection::open_with_flags(
            &settings.state.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut statement = db
            .prepare("SELECT level, COUNT(*) FROM events GROUP BY level ORDER BY level")
            .unwrap();
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    println!(
        "fault campaign: {objects} objects migrated in {:.1} s, 0 lost, 0 duplicated",
        elapsed.as_secs_f64()
    );
    println!(
        "  engine: {} tasks done, {} task retries (transient failures and Retry-After pauses)",
        summary.completed, summary.retried
    );
    println!("  events recorded in the state file by level: {events:?}");
    for (label, stats) in [("source", &source_stats), ("target", &target_stats)] {
        let faults = injected(stats);
        let total: u64 = faults.iter().map(|(_, n)| n).sum();
        println!(
            "  {label}: {} requests, {total} faults injected: {faults:?}",
            stats.total
        );
    }
    let injected_total: u64 = injected(&source_stats)
        .iter()
        .chain(injected(&target_stats).iter())
        .map(|(_, n)| n)
        .sum();
    // The campaign only proves something if the faults actually happened.
    for kind in ["fault:drop", "fault:stall", "fault:http503", "rate_limited"] {
        assert!(
            source_stats.outcome_total(kind) + target_stats.outcome_total(kind) > 0,
            "the campaign injected no {kind}"
        );
    }
    // Tokens expired during the run and were replaced (before expiry, or after a 498).
    let ttl_periods = elapsed.as_secs() / plan.token_ttl_secs;
    for (label, stats) in [("source", &source_stats), ("target", &target_stats)] {
        let sign_ins = stats.count("generateToken", "ok");
        println!(
            "  {label}: {sign_ins} sign-ins for tokens living {} s ({} requests refused with 498 first)",
            plan.token_ttl_secs,
            stats.outcome_total("error:498")
        );
        assert!(
            sign_ins >= 2 && sign_ins + 1 >= ttl_periods / 2,
            "{label}: tokens expiring every {} s over {} s need fresh tokens, got {sign_ins} sign-ins",
            plan.token_ttl_secs,
            elapsed.as_secs()
        );
    }
    assert!(
        source_stats.latency_spikes + target_stats.latency_spikes > 0,
        "no latency spike"
    );
    assert!(summary.retried > 0 && injected_total > 0);
}
