//! One broken object fails alone, with the portal's message in `status`, without stopping or
//! undoing anything else; `retry` after the fault is lifted completes it.

mod common;

use portal_migrate::commands;
use portal_migrate::engine;
use portal_migrate::sim::Faults;

/// brown.rogers' CSV "AR": the destination of a Service2Data relationship.
const BROKEN_CSV: &str = "ebd57622fb984f1c96122c4b442ea6d7";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broken_item_fails_alone_and_retry_completes_it() {
    let (source, target) = common::sample_pair(Faults::default()).await;
    source.set_faults(Faults {
        broken_items: vec![BROKEN_CSV.to_string()],
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(dir.path(), &source, &target, "");

    let summary = engine::run(settings.clone(), std::future::pending())
        .await
        .expect("run");
    assert_eq!(summary.failed, 1, "exactly the broken item fails");
    let status = commands::status(&settings.state.path).unwrap();
    assert_eq!(status.count("item", "failed"), 1);
    assert_eq!(
        status.count("item", "done"),
        48,
        "every other item is migrated:\n{status}"
    );
    assert_eq!(
        status.count("relationship", "blocked"),
        1,
        "only its relationship waits:\n{status}"
    );
    assert_eq!(status.count("relationship", "done"), 9);
    let failure = status
        .failures
        .iter()
        .find(|f| f.state == "failed")
        .expect("the failure is listed");
    let message = failure.last_error.clone().unwrap_or_default();
    assert!(
        message.contains("simulated broken item") && message.contains("source"),
        "status shows the portal's message and which portal said it: {message}"
    );
    assert!(status.to_string().contains("simulated broken item"));
    assert_eq!(target.snapshot().items.len(), 48, "nothing was undone");

    source.set_faults(Faults::default());
    assert_eq!(
        commands::retry(&settings).unwrap(),
        2,
        "the failed item and the blocked relationship"
    );
    let summary = engine::run(settings.clone(), std::future::pending())
        .await
        .expect("rerun");
    assert_eq!(summary.failed, 0);
    common::assert_faithful_sample_clone(&target.snapshot());
}
