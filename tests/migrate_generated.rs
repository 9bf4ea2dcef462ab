//! A generated organisation with the hard parts of real ones: web maps referencing feature
//! services in other users' folders, nested group layers, vector-tile style URLs, apps and
//! dashboards referencing maps, custom roles, enterprise (SAML) users, items shared to several
//! groups and more than 100 items in one group. Every reference must be rewritten.

mod common;

use std::collections::{BTreeSet, HashMap};

use portal_migrate::engine;
use portal_migrate::fixture::{Fixture, ItemData};
use portal_migrate::sim::generate::{generate, generate_target, GenerateSpec};
use portal_migrate::sim::{SimOptions, SimServer};

fn spec() -> GenerateSpec {
    "seed=11,users=14,groups=5,folders-per-user=2,items-per-folder=3,file-bytes=2048,big-folder-items=110,members-per-group=6,custom-roles=true,enterprise-users=2,admin-password=admin-pw-1,user-password=user-pw-1"
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

fn is_system_user(username: &str) -> bool {
    username == "admin" || username.starts_with("esri_")
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
    let toml = common::config_toml(source.url(), target.url(), "[workers]\ncount = 8\n");
    let env: HashMap<String, String> = [
        (
            common::SOURCE_PASSWORD_ENV.to_string(),
            "admin-pw-1".to_string(),
        ),
        (
            common::TARGET_PASSWORD_ENV.to_string(),
            "admin-pw-1".to_string(),
        ),
    ]
    .into();
    let settings =
        portal_migrate::settings::Settings::from_toml_str(&toml, dir.path(), &env).unwrap();

    let summary = engine::run(settings.clone(), std::future::pending())
        .await
        .expect("run");
    let status = portal_migrate::commands::status(&settings.state.path).unwrap();
    assert_eq!(summary.failed, 0, "{status}");

    let after = target.snapshot();
    assert!(common::duplicate_report(&after).is_empty());

    // Users: properties, custom roles mapped by name, enterprise identities.
    let source_roles: HashMap<&str, &str> = source_fixture
        .portal
        .roles
        .iter()
        .map(|r| (r.id.as_str(), r.name.as_str()))
        .collect();
    let target_roles: HashMap<&str, &str> = after
        .portal
        .roles
        .iter()
        .map(|r| (r.id.as_str(), r.name.as_str()))
        .collect();
    let mut custom = 0;
    let mut enterprise = 0;
    for user in source_fixture
        .users
        .iter()
        .filter(|u| !is_system_user(&u.username))
    {
        let copy = after
            .users
            .iter()
            .find(|u| u.username == user.username)
            .expect("user cloned");
        assert_eq!(copy.role, user.role, "role of {}", user.username);
        match &user.role_id {
            Some(role_id) => {
                custom += 1;
                let copy_role = copy.role_id.as_deref().expect("custom role kept");
                assert_ne!(copy_role, role_id, "role ids differ between portals");
                assert_eq!(
                    target_roles[copy_role],
                    source_roles[role_id.as_str()],
                    "role name of {}",
                    user.username
                );
            }
            None => assert_eq!(copy.role_id, None),
        }
        assert_eq!(
            (&copy.provider, &copy.idp_username),
            (&user.provider, &user.idp_username)
        );
        if user.provider == "enterprise" {
            enterprise += 1;
        }
        assert_eq!(copy.user_license_type_id, user.user_license_type_id);
        let want: BTreeSet<_> = user.folders.iter().map(|f| &f.title).collect();
        let got: BTreeSet<_> = copy.folders.iter().map(|f| &f.title).collect();
        assert_eq!(got, want, "folders of {}", user.username);
    }
    assert!(
        custom > 0 && enterprise == 2,
        "the org has custom-role and enterprise users"
    );

    // Groups with owners, managers and members.
    let mut group_ids = HashMap::new();
    for group in source_fixture
        .groups
        .iter()
        .filter(|g| !g.owner.starts_with("esri_") && g.title != "Basemaps")
    {
        let copy = after
            .groups
            .iter()
            .find(|g| g.title == group.title)
            .expect("group cloned");
        group_ids.insert(group.id.clone(), copy.id.clone());
        assert_eq!(copy.owner, group.owner, "owner of {}", group.title);
        let set = |v: &Vec<String>| v.iter().cloned().collect::<BTreeSet<_>>();
        assert_eq!(
            set(&copy.admins),
            set(&group.admins),
            "managers of {}",
            group.title
        );
        assert_eq!(
            set(&copy.users),
            set(&group.users),
            "members of {}",
            group.title
        );
    }

    // Items: one copy each; every id inside JSON data and URLs rewritten.
    let mut ids: HashMap<String, String> = HashMap::new();
    for item in &source_fixture.items {
        let keyword = format!("source-{}", item.id);
        let copies: Vec<_> = after
            .items
            .iter()
            .filter(|t| t.type_keywords.contains(&keyword))
            .collect();
        assert_eq!(copies.len(), 1, "one copy of {}", item.id);
        ids.insert(item.id.clone(), copies[0].id.clone());
    }
    let rewrite = |text: &str| {
        let mut out = text.to_string();
        for (from, to) in ids.iter().chain(group_ids.iter()) {
            out = out.replace(from.as_str(), to);
        }
        out
    };
    let mut references_checked = 0;
    for item in &source_fixture.items {
        let copy = after.items.iter().find(|t| t.id == ids[&item.id]).unwrap();
        assert_eq!(
            (&copy.owner, &copy.folder, &copy.title, &copy.item_type),
            (&item.owner, &item.folder, &item.title, &item.item_type)
        );
        assert_eq!(
            copy.url.as_deref().map(str::to_string),
            item.url.as_deref().map(rewrite),
            "url of {}",
            item.id
        );
        let want_groups: BTreeSet<&str> =
            item.groups.iter().map(|g| group_ids[g].as_str()).collect();
        let got_groups: BTreeSet<&str> = copy.groups.iter().map(String::as_str).collect();
        assert_eq!(got_groups, want_groups, "sharing of {}", item.id);
        assert_eq!(copy.access, item.access, "access of {}", item.id);
        match (&item.data, &copy.data) {
            (Some(ItemData::Json(want)), Some(ItemData::Json(got))) => {
                let expected: serde_json::Value =
                    serde_json::from_str(&rewrite(&want.to_string())).unwrap();
                assert_eq!(
                    got, &expected,
                    "data of {} ({})",
                    item.title, item.item_type
                );
                let text = got.to_string();
                for source_id in ids.keys() {
                    assert!(
                        !text.contains(source_id.as_str()),
                        "{} still names source item {source_id}",
                        item.id
                    );
                }
                if *want != expected {
                    references_checked += 1;
                }
            }
            (want, got) => assert_eq!(got, want, "data of {}", item.id),
        }
    }
    assert!(
        references_checked >= 10,
        "the org has many referencing items ({references_checked})"
    );
    let nested = source_fixture.items.iter().any(
        |i| matches!(&i.data, Some(ItemData::Json(v)) if v.to_string().contains("GroupLayer")),
    );
    assert!(nested, "the org has nested group layers");

    // More than 100 items in one group, all shared.
    let big = after
        .items
        .iter()
        .filter(|i| i.groups.contains(&group_ids[&big_group]))
        .count();
    assert!(big > 100, "the big group holds {big} items");

    // Relationships, mapped.
    let want: BTreeSet<(String, String, String)> = source_fixture
        .relationships
        .iter()
        .map(|r| {
            (
                r.relationship_type.clone(),
                ids[&r.origin].clone(),
                ids[&r.destination].clone(),
            )
        })
        .collect();
    let got: BTreeSet<(String, String, String)> = after
        .relationships
        .iter()
        .map(|r| {
            (
                r.relationship_type.clone(),
                r.origin.clone(),
                r.destination.clone(),
            )
        })
        .collect();
    assert_eq!(got, want);

    // `verify` agrees, object by object.
    let report = portal_migrate::verify::verify(settings)
        .await
        .expect("verify runs");
    assert!(report.is_ok(), "{report}");
}
