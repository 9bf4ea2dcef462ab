//! The worker pool's scheduling, with an executor of our own in place of the portal work.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use portal_migrate::clone::TaskError;
use portal_migrate::engine;
use portal_migrate::sim::Faults;
use portal_migrate::store::{ClaimedTask, Completion, NewTask};
use portal_migrate::work::{self, PoolControls};

fn new_task(key: &str) -> NewTask {
    NewTask {
        kind: "probe".into(),
        source_key: key.into(),
        title: format!("probe {key}"),
        payload: serde_json::json!({}),
        depends_on: vec![],
        priority: 10,
        max_attempts: 3,
    }
}

/// A task whose retry time comes while another task is still running is taken up by an idle
/// worker then, not when the long task finally ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_is_claimed_when_due_even_while_other_tasks_run() {
    let (source, target) = common::sample_pair(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(dir.path(), &source, &target, "[workers]\ncount = 4\n");
    let ctx = engine::connect(settings, "test").await.unwrap();
    ctx.store
        .call(|s| s.enqueue(&[new_task("long"), new_task("flaky")]))
        .await
        .unwrap();

    let finished: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = finished.clone();
    let execute = move |_ctx: engine::Context, task: ClaimedTask| {
        let log = log.clone();
        async move {
            match (task.source_key.as_str(), task.attempt) {
                ("long", _) => tokio::time::sleep(Duration::from_secs(3)).await,
                ("flaky", 1) => {
                    return Err(TaskError::Transient("first attempt fails".into()));
                }
                _ => {}
            }
            log.lock().unwrap().push(task.source_key.clone());
            Ok::<_, TaskError>(Completion {
                outcome: "created".into(),
                ..Completion::default()
            })
        }
    };
    let controls = Arc::new(PoolControls::new(4));
    let summary = work::drain_with(&ctx, std::future::pending(), &controls, execute)
        .await
        .unwrap();
    assert_eq!((summary.completed, summary.retried), (2, 1));
    assert_eq!(
        *finished.lock().unwrap(),
        ["flaky", "long"],
        "the retried task finished while the long one was still running"
    );
}

/// Memberships of one group that run together share their `addUsers` calls (at most 25 names
/// each), while each membership stays a task of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memberships_of_a_group_share_their_add_users_calls() {
    use portal_migrate::sim::generate::GenerateSpec;
    let spec: GenerateSpec =
        "seed=3,users=60,groups=2,folders-per-user=0,items-per-folder=0,members-per-group=50"
            .parse()
            .unwrap();
    let (source, target, source_fixture, before) =
        common::generated_pair(&spec, None, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(
        dir.path(),
        &source,
        &target,
        "[workers]
count = 16
",
    );
    let summary = engine::run(settings.clone(), std::future::pending())
        .await
        .unwrap();
    assert_eq!(summary.failed, 0);
    common::assert_faithful_clone(&source_fixture, &before, &target.snapshot());

    let status = portal_migrate::commands::status(&settings.state.path).unwrap();
    let memberships = status.count("membership", "done");
    let add_users: u64 = target
        .stats()
        .by_endpoint
        .iter()
        .filter(|(endpoint, _)| endpoint.ends_with("addUsers"))
        .flat_map(|(_, outcomes)| outcomes.values())
        .sum();
    println!("{memberships} memberships in {add_users} addUsers calls");
    assert!(memberships > 50, "{memberships}");
    assert!(
        add_users < memberships,
        "{add_users} addUsers calls for {memberships} memberships"
    );
}
