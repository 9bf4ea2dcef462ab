//! The sample organisation migrated end to end between two simulated portals over loopback
//! HTTP, checked against the expected result of its README.

mod common;

use portal_migrate::commands;
use portal_migrate::engine;
use portal_migrate::sim::Faults;
use portal_migrate::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sample_org_migrates_faithfully_and_a_rerun_changes_nothing() {
    let (source, target) = common::sample_pair(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(dir.path(), &source, &target, "");

    let summary = engine::run(settings.clone(), std::future::pending())
        .await
        .expect("migration runs");
    let status = commands::status(&settings.state.path).unwrap();
    assert_eq!(summary.failed, 0, "no task fails:\n{status}");
    assert_eq!(
        status.total("pending") + status.total("running"),
        0,
        "queue drained:\n{status}"
    );

    let after_first = target.snapshot();
    let ids = common::assert_faithful_sample_clone(&after_first);
    assert!(common::duplicate_report(&after_first).is_empty());

    // The id map holds every migrated object.
    let store = Store::open_readonly(&settings.state.path).unwrap();
    assert_eq!(store.id_map("user").unwrap().len(), 11);
    assert_eq!(store.id_map("group").unwrap().len(), 4);
    assert_eq!(store.id_map("folder").unwrap().len(), 17);
    let item_map = store.id_map("item").unwrap();
    assert_eq!(item_map.len(), 49);
    for (source_id, target_id) in &ids {
        assert_eq!(
            item_map.get(source_id),
            Some(target_id),
            "id map of item {source_id}"
        );
    }
    drop(store);

    // `status` agrees with the `progress` view a person reads with sqlite3.
    let text = status.to_string();
    assert!(text.contains("item") && text.contains("49"), "{text}");
    assert!(text.contains("no failures"), "{text}");

    // Running again on a finished migration creates nothing.
    let again = engine::run(settings, std::future::pending())
        .await
        .expect("rerun");
    assert_eq!(again.failed, 0);
    assert_eq!(
        target.snapshot(),
        after_first,
        "a rerun must not change the target"
    );
}
