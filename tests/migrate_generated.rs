//! A generated organisation with the hard parts of real ones: web maps referencing feature
//! services in other users' folders, nested group layers, vector-tile style URLs, apps and
//! dashboards referencing maps, custom roles, enterprise (SAML) users, items shared to several
//! groups and more than 100 items in one group. Every reference must be rewritten.

mod common;

use portal_migrate::engine;
use portal_migrate::fixture::{Fixture, ItemData};
use portal_migrate::sim::generate::{generate, generate_target, GenerateSpec};
use portal_migrate::sim::{SimOptions, SimServer};

fn spec() -> GenerateSpec {
    "seed=11,users=14,groups=5,folders-per-user=2,items-per-folder=3,file-bytes=2048,big-folder-items=110,members-per-group=6,custom-roles=true,enterprise-users=2"
        .parse()
        .expect("valid spec")
}

/// Shares every item of the big folder with one group its owner belongs to, so that group
/// holds more than 100 items (paging through group content is exercised).
fn with_a_big_group(mut fixture: Fixture) -> (Fixture, String) {
    let owner = fixture
        .items
        .iter()
        .find(|i| i.folder.as_deref() == Some("bulk_import"))
        .map(|i| i.owner.clone())
        .expect("the big folder exists");
    let group = fixture
        .groups
        .iter()
        .find(|g| {
            g.users.contains(&owner) && !g.owner.starts_with("esri_") && g.title != "Basemaps"
        })
        .map(|g| g.id.clone())
        .expect("the owner belongs to a group");
    for item in fixture
        .items
        .iter_mut()
        .filter(|i| i.folder.as_deref() == Some("bulk_import"))
    {
        if !item.groups.contains(&group) {
            item.groups.push(group.clone());
        }
        if item.access == "private" {
            item.access = "shared".into();
        }
    }
    (fixture, group)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn generated_org_migrates_with_every_reference_rewritten() {
    let spec = spec();
    let (source_fixture, big_group) = with_a_big_group(generate(&spec));
    let source = SimServer::start(source_fixture.clone(), SimOptions::default())
        .await
        .unwrap();
    let target = SimServer::start(generate_target(&spec), SimOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(
        dir.path(),
        &source,
        &target,
        "[workers]
count = 8
",
    );

    let summary = engine::run(settings.clone(), std::future::pending())
        .await
        .expect("run");
    let status = portal_migrate::commands::status(&settings.state.path).unwrap();
    assert_eq!(summary.failed, 0, "{status}");

    let after = target.snapshot();
    assert!(common::duplicate_report(&after).is_empty());
    // Every user, group, folder, item, share, membership and relationship, with every id
    // inside JSON data and URLs rewritten (custom roles compared by name).
    let ids = common::assert_faithful_clone(&source_fixture, &generate_target(&spec), &after);

    // The hard parts were really there.
    let ordinary: Vec<_> = common::migrated_users(&source_fixture);
    assert!(
        ordinary.iter().any(|u| u.role_id.is_some()),
        "custom-role users"
    );
    for user in ordinary.iter().filter(|u| u.role_id.is_some()) {
        let copy = after
            .users
            .iter()
            .find(|c| c.username == user.username)
            .unwrap();
        assert_ne!(
            copy.role_id, user.role_id,
            "role ids differ between portals"
        );
    }
    assert_eq!(
        ordinary
            .iter()
            .filter(|u| u.provider == "enterprise")
            .count(),
        2
    );
    let referencing = source_fixture
        .items
        .iter()
        .filter(|i| match &i.data {
            Some(ItemData::Json(v)) => ids
                .keys()
                .any(|id| v.to_string().contains(id.as_str()) && *id != i.id),
            _ => false,
        })
        .count();
    assert!(
        referencing >= 10,
        "the org has many referencing items ({referencing})"
    );
    let nested = source_fixture.items.iter().any(
        |i| matches!(&i.data, Some(ItemData::Json(v)) if v.to_string().contains("GroupLayer")),
    );
    assert!(nested, "the org has nested group layers");
    let big = after
        .items
        .iter()
        .filter(|i| i.groups.contains(&ids[&big_group]))
        .count();
    assert!(big > 100, "the big group holds {big} items");

    // `verify` agrees, object by object.
    let report = portal_migrate::verify::verify(settings)
        .await
        .expect("verify runs");
    assert!(report.is_ok(), "{report}");
}
