//! Crash campaign: the real binary migrates a generated organisation and is killed with
//! SIGKILL at seeded-random moments — within the first few hundred milliseconds, in the
//! middle of discovery, in the middle of a multipart upload and then throughout the run —
//! and restarted each time. At the end the target must be exactly the expected clone (nothing
//! lost, nothing duplicated), every task terminal with none failed, each source object mapped
//! once, and the state file sound.
//!
//! The CI variant (about 400 objects, 8 kills) runs in `cargo test`; the full campaign
//! (more than 1,000 objects, 30 kills) runs with
//! `PORTAL_MIGRATE_CAMPAIGN=full cargo test --test crash_campaign -- --nocapture`.
//! `PORTAL_MIGRATE_CAMPAIGN_SEED=<n>` replays a campaign.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use portal_migrate::sim::generate::{estimated_objects, GenerateSpec};
use portal_migrate::sim::{Faults, SimServer};
use portal_migrate::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ADD_PART: &str = "content/users/{username}/items/{id}/addPart";
const COMMIT: &str = "content/users/{username}/items/{id}/commit";
/// Larger than the 1 MiB threshold configured below: uploaded in 1 MiB parts.
const BIG_FILE_BYTES: usize = 6 << 20;

struct Plan {
    spec: GenerateSpec,
    kills: usize,
}

fn plan() -> Plan {
    if common::full_campaign() {
        Plan {
            spec: "users=30,groups=6,folders-per-user=2,items-per-folder=5,members-per-group=8,file-bytes=2048"
                .parse()
                .expect("valid spec"),
            kills: 30,
        }
    } else {
        Plan {
            spec: "users=12,groups=4,folders-per-user=2,items-per-folder=4,members-per-group=5,file-bytes=2048"
                .parse()
                .expect("valid spec"),
            kills: 8,
        }
    }
}

/// (finished tasks, all tasks, whether discovery is complete) as the state file says now;
/// zeros before the first run created it.
fn progress(state: &Path) -> (u64, u64, bool) {
    let Ok(store) = Store::open_readonly(state) else {
        return (0, 0, false);
    };
    let Ok(rows) = store.progress() else {
        return (0, 0, false);
    };
    let finished = rows
        .iter()
        .filter(|r| r.state == "done" || r.state == "skipped")
        .map(|r| r.count)
        .sum();
    let total = rows.iter().map(|r| r.count).sum();
    let linked = rows.iter().any(|r| r.kind == "link" && r.state == "done");
    (finished, total, linked)
}

fn discovery_running(state: &Path) -> bool {
    let Ok(store) = Store::open_readonly(state) else {
        return false;
    };
    let Ok(rows) = store.progress() else {
        return false;
    };
    let root_done = rows
        .iter()
        .any(|r| r.kind == "discover" && r.state == "done");
    let linked = rows.iter().any(|r| r.kind == "link" && r.state == "done");
    root_done && !linked
}

/// When to pull the plug.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// This long after the process started (start-up, sign-in, first discovery).
    Early(Duration),
    /// While discovery tasks run (the root listed users and groups, `link` not done yet).
    MidDiscovery(Duration),
    /// Between the first uploaded part of the large file and its commit.
    MidUpload,
    /// Once this fraction of all tasks is finished, plus a little jitter.
    Progress(f64, Duration),
}

/// Waits for `moment` and kills the child. `Ok(description)` when it was killed mid-run,
/// `Err` with the reason when the run ended by itself first.
async fn kill_at(
    child: &mut Child,
    moment: Moment,
    state: &Path,
    target: &SimServer,
    estimate: u64,
) -> Result<String, String> {
    let started = Instant::now();
    let parts_before = target.stats().count(ADD_PART, "ok");
    let commits_before = target.stats().count(COMMIT, "ok");
    // Progress kills fire only once this run has finished a task of its own, so each one
    // interrupts real work rather than a start-up.
    let finished_at_start = progress(state).0;
    let mut armed: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            return Err(format!(
                "the run ended by itself ({status}) before {moment:?}"
            ));
        }
        let fire = match moment {
            Moment::Early(after) => started.elapsed() >= after,
            Moment::MidDiscovery(jitter) => {
                if armed.is_none() && discovery_running(state) {
                    armed = Some(Instant::now() + jitter);
                }
                armed.is_some_and(|at| Instant::now() >= at)
            }
            Moment::MidUpload => {
                let stats = target.stats();
                stats.count(ADD_PART, "ok") > parts_before
                    && stats.count(COMMIT, "ok") == commits_before
            }
            Moment::Progress(fraction, jitter) => {
                if armed.is_none() {
                    let (finished, total, linked) = progress(state);
                    let total = if linked { total } else { total.max(estimate) };
                    if finished > finished_at_start && finished as f64 >= fraction * total as f64 {
                        armed = Some(Instant::now() + jitter);
                    }
                }
                armed.is_some_and(|at| Instant::now() >= at)
            }
        };
        if fire {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
            let (finished, total, _) = progress(state);
            return Ok(format!(
                "{moment:?} at {} ms: {finished}/{total} tasks finished",
                started.elapsed().as_millis()
            ));
        }
        let poll = if matches!(moment, Moment::MidUpload) {
            1
        } else {
            5
        };
        tokio::time::sleep(Duration::from_millis(poll)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_at_random_moments_the_migration_ends_exact_and_sound() {
    let plan = plan();
    let seed = common::campaign_seed(20_240_611);
    let objects = estimated_objects(&plan.spec);
    println!(
        "crash campaign: seed {seed} (replay with PORTAL_MIGRATE_CAMPAIGN_SEED={seed}), {objects} objects, {} kills",
        plan.kills
    );
    let spec = GenerateSpec {
        seed,
        ..plan.spec.clone()
    };
    // A little latency on the target stretches the run so the kills spread over all of it.
    let (source, target, source_fixture, before) = common::generated_pair(
        &spec,
        Some(BIG_FILE_BYTES),
        Faults {
            latency_ms: 3,
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(
        dir.path(),
        &source,
        &target,
        "[workers]\ncount = 6\n[items]\nmultipart_threshold_mb = 1\npart_size_mb = 1\n",
    );
    let state = dir.path().join("state.db");

    let mut rng = StdRng::seed_from_u64(seed);
    let mut moments = vec![
        Moment::Early(Duration::from_millis(rng.random_range(30..300))),
        Moment::MidDiscovery(Duration::from_millis(rng.random_range(0..40))),
        Moment::MidUpload,
    ];
    let mut fractions: Vec<f64> = (moments.len()..plan.kills)
        .map(|_| rng.random_range(0.02..0.92))
        .collect();
    fractions.sort_by(f64::total_cmp);
    moments.extend(
        fractions
            .into_iter()
            .map(|f| Moment::Progress(f, Duration::from_millis(rng.random_range(0..25)))),
    );
    // A rough task count until discovery knows the real one.
    let estimate = objects as u64;

    let started = Instant::now();
    let mut survived = 0;
    for (n, moment) in moments.iter().enumerate() {
        let mut child = common::migrate_command(&config)
            .spawn()
            .expect("binary starts");
        let outcome = kill_at(&mut child, *moment, &state, &target, estimate).await;
        let description = outcome.unwrap_or_else(|reason| panic!("kill {}: {reason}", n + 1));
        survived += 1;
        println!("kill {:>2}: {description}", n + 1);
        let snapshot = target.snapshot();
        let duplicates = common::duplicate_report(&snapshot);
        assert!(
            duplicates.is_empty(),
            "duplicates after kill {}: {duplicates:?}",
            n + 1
        );
        match moment {
            Moment::MidDiscovery(_) => assert!(
                !progress(&state).2,
                "kill {} was meant to land before discovery finished",
                n + 1
            ),
            Moment::MidUpload => {
                let big = source_fixture
                    .items
                    .iter()
                    .find(|i| i.item_type == "CSV")
                    .expect("the large CSV");
                let keyword = format!("source-{}", big.id);
                let partial = snapshot
                    .items
                    .iter()
                    .find(|i| i.type_keywords.contains(&keyword))
                    .expect("the large item exists in the target, its upload unfinished");
                assert!(
                    partial.data.is_none(),
                    "the kill landed between the first part and the commit"
                );
            }
            _ => {}
        }
    }

    let output = common::migrate_command(&config)
        .output()
        .expect("final run");
    assert!(
        output.status.success(),
        "the final run completes: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = target.snapshot();
    assert!(
        common::duplicate_report(&after).is_empty(),
        "nothing duplicated"
    );
    let ids = common::assert_faithful_clone(&source_fixture, &before, &after);
    common::assert_state_complete(&state, &source_fixture, &ids);

    // And a finished migration run again changes nothing.
    let again = common::migrate_command(&config).output().expect("rerun");
    assert!(again.status.success());
    assert_eq!(
        target.snapshot(),
        after,
        "a rerun must not change the target"
    );
    println!(
        "crash campaign: {survived} kills survived, {objects} objects, 0 lost, 0 duplicated, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
