//! What happens to objects that already exist in the target (the `existing` policy), and to
//! what filters leave out. Nothing in the target is ever deleted.

mod common;

use portal_migrate::commands;
use portal_migrate::engine;
use portal_migrate::fixture::{sample_org, Fixture};
use portal_migrate::sim::{SimOptions, SimServer};

/// The sample target plus an account named like a source user and a group titled like a
/// source group, both made by someone else before the migration.
fn crowded_target() -> Fixture {
    let mut target = sample_org::target();
    let source = sample_org::source();
    let mut user = source
        .users
        .iter()
        .find(|u| u.username == "brown.rogers")
        .unwrap()
        .clone();
    user.id = "0000000000000000000000000000beef".into();
    user.full_name = "Brown Rogers (already here)".into();
    user.folders.clear();
    target.users.push(user);
    let mut group = source
        .groups
        .iter()
        .find(|g| g.title == "Compliance")
        .unwrap()
        .clone();
    group.id = "0000000000000000000000000000cafe".into();
    group.snippet = Some("The target's own Compliance group".into());
    group.admins = vec!["admin".into()];
    group.users = vec!["admin".into()];
    target.groups.push(group);
    target
}

async fn migrate(
    extra: &str,
) -> (
    SimServer,
    SimServer,
    tempfile::TempDir,
    portal_migrate::work::Summary,
) {
    let source = SimServer::start(sample_org::source(), SimOptions::default())
        .await
        .unwrap();
    let target = SimServer::start(crowded_target(), SimOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(dir.path(), &source, &target, extra);
    let summary = engine::run(settings, std::future::pending())
        .await
        .expect("run");
    (source, target, dir, summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adopt_maps_existing_objects_and_changes_none_of_their_properties() {
    let (_source, target, _dir, summary) = migrate("").await;
    assert_eq!(summary.failed, 0);
    let after = target.snapshot();
    let user = after
        .users
        .iter()
        .find(|u| u.username == "brown.rogers")
        .unwrap();
    assert_eq!(
        user.full_name, "Brown Rogers (already here)",
        "adopted, not overwritten"
    );
    assert_eq!(user.id, "0000000000000000000000000000beef");
    let compliance: Vec<_> = after
        .groups
        .iter()
        .filter(|g| g.title == "Compliance")
        .collect();
    assert_eq!(compliance.len(), 1, "no second Compliance group");
    assert_eq!(
        compliance[0].snippet.as_deref(),
        Some("The target's own Compliance group")
    );
    // The adopted objects still receive what belongs to them.
    assert_eq!(
        after
            .items
            .iter()
            .filter(|i| i.owner == "brown.rogers")
            .count(),
        3
    );
    assert!(after
        .items
        .iter()
        .any(|i| i.groups.contains(&compliance[0].id)));
    assert_eq!(
        after.users.len(),
        19,
        "brown.rogers counted once: 9 existing + 10 cloned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn update_overwrites_existing_properties() {
    let (_source, target, _dir, summary) =
        migrate("[existing]\nusers = \"update\"\ngroups = \"update\"\n").await;
    assert_eq!(summary.failed, 0);
    let after = target.snapshot();
    let user = after
        .users
        .iter()
        .find(|u| u.username == "brown.rogers")
        .unwrap();
    assert_eq!(
        user.full_name, "Brown Rogers",
        "the source's properties overwrite the target's"
    );
    assert_eq!(
        user.id, "0000000000000000000000000000beef",
        "the account itself is kept"
    );
    let compliance = after
        .groups
        .iter()
        .find(|g| g.title == "Compliance")
        .unwrap();
    assert_eq!(
        compliance.snippet,
        sample_org::source()
            .groups
            .iter()
            .find(|g| g.title == "Compliance")
            .unwrap()
            .snippet
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fail_policy_fails_the_conflicting_objects_and_blocks_only_their_dependents() {
    let (_source, target, dir, summary) = migrate("[existing]\ngroups = \"fail\"\n").await;
    assert_eq!(summary.failed, 1, "the Compliance group fails");
    let status = commands::status(&dir.path().join("state.db")).unwrap();
    let failure = status
        .failures
        .iter()
        .find(|f| f.state == "failed")
        .unwrap();
    assert!(
        failure
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("already exists"),
        "{status}"
    );
    assert!(status.count("membership", "blocked") > 0 && status.count("share", "blocked") > 0);
    assert_eq!(
        status.count("item", "done"),
        49,
        "items do not depend on groups"
    );
    assert_eq!(target.snapshot().groups.len(), 10, "3 cloned + 7 existing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filters_leave_out_types_users_and_folders_and_report_dangling_relations() {
    let source = SimServer::start(sample_org::source(), SimOptions::default())
        .await
        .unwrap();
    let target = SimServer::start(sample_org::target(), SimOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(
        dir.path(),
        &source,
        &target,
        "[items]\nexclude_types = [\"CSV\"]\nexclude_folders = [\"set2_*\"]\n[users]\nexclude = [\"esri_*\", \"jones.morris\"]\n",
    );
    let summary = engine::run(settings.clone(), std::future::pending())
        .await
        .expect("run");
    assert_eq!(summary.failed, 0);
    let after = target.snapshot();
    assert!(after.items.iter().all(|i| i.item_type != "CSV"));
    assert!(after.users.iter().all(|u| u.username != "jones.morris"));
    assert!(after
        .items
        .iter()
        .all(|i| !i.folder.as_deref().unwrap_or("").starts_with("set2_")));
    assert_eq!(
        after.relationships.len(),
        0,
        "every relationship ends at an excluded CSV"
    );
    // The group jones.morris belongs to is cloned without him.
    let billing = after
        .groups
        .iter()
        .find(|g| g.title.starts_with("Customer Service"))
        .unwrap();
    assert!(!billing.users.contains(&"jones.morris".to_string()));
    // What points outside the migration is reported in the events.
    let connection = rusqlite::Connection::open_with_flags(
        &settings.state.path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let notes: String = connection
        .query_row(
            "SELECT group_concat(message, '\n') FROM events",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(notes.contains("point outside the migration"), "{notes}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invitations_are_for_arcgis_online_targets_only() {
    // Enterprise target: refused with the reason and the fix, per user, nothing created.
    let (_source, target, dir, summary) = migrate("[users]\npassword_policy = \"invite\"\n").await;
    assert_eq!(
        summary.failed, 10,
        "every user but the adopted brown.rogers"
    );
    let status = commands::status(&dir.path().join("state.db")).unwrap();
    let message = status
        .failures
        .iter()
        .find(|f| f.kind == "user")
        .unwrap()
        .last_error
        .clone()
        .unwrap();
    assert!(
        message.contains("needs an ArcGIS Online target"),
        "{message}"
    );
    assert_eq!(target.snapshot().users.len(), 9);

    // Online target: users are invited; their accounts appear when they accept.
    use portal_migrate::sim::generate::GenerateSpec;
    let spec: GenerateSpec = "seed=5,users=3,groups=1,mode=multitenant".parse().unwrap();
    let (source, target, _, _) =
        common::generated_pair(&spec, None, portal_migrate::sim::Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(
        dir.path(),
        &source,
        &target,
        "[users]
password_policy = \"invite\"
",
    );
    engine::run(settings.clone(), std::future::pending())
        .await
        .expect("run");
    let connection = rusqlite::Connection::open_with_flags(
        &settings.state.path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let invited: i64 = connection
        .query_row(
            "SELECT count(*) FROM tasks WHERE kind = 'user' AND outcome = 'invited'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(invited, 3);
    assert!(
        !settings.credentials_path().exists(),
        "no passwords were generated"
    );
}
