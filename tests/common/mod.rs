//! Shared helpers for the end-to-end tests: simulated portal pairs, config files, and the
//! checks that a target holds a faithful clone of the sample organisation.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use portal_migrate::fixture::{sample_org, Fixture, ItemData};
use portal_migrate::settings::Settings;
use portal_migrate::sim::{Faults, SimOptions, SimServer};

pub const SOURCE_PASSWORD_ENV: &str = "PM_TEST_SOURCE_PASSWORD";
pub const TARGET_PASSWORD_ENV: &str = "PM_TEST_TARGET_PASSWORD";
pub const ADMIN_PASSWORD: &str = "admin-sample-pw";

pub async fn sample_pair(faults: Faults) -> (SimServer, SimServer) {
    let source = SimServer::start(
        sample_org::source(),
        SimOptions {
            faults: faults.clone(),
            ..SimOptions::default()
        },
    )
    .await
    .expect("source simulator starts");
    let target = SimServer::start(
        sample_org::target(),
        SimOptions {
            faults,
            ..SimOptions::default()
        },
    )
    .await
    .expect("target simulator starts");
    (source, target)
}

pub fn config_toml(source: &str, target: &str, extra: &str) -> String {
    format!(
        r#"
[source]
url = "{source}"
username = "admin"
password_env = "{SOURCE_PASSWORD_ENV}"

[target]
url = "{target}"
username = "admin"
password_env = "{TARGET_PASSWORD_ENV}"

[state]
path = "state.db"

[retry]
initial_backoff_ms = 20
max_backoff_secs = 1
{extra}
"#
    )
}

pub fn env() -> HashMap<String, String> {
    [
        (SOURCE_PASSWORD_ENV.to_string(), ADMIN_PASSWORD.to_string()),
        (TARGET_PASSWORD_ENV.to_string(), ADMIN_PASSWORD.to_string()),
    ]
    .into()
}

pub fn settings(dir: &Path, source: &SimServer, target: &SimServer, extra: &str) -> Settings {
    Settings::from_toml_str(&config_toml(source.url(), target.url(), extra), dir, &env())
        .expect("test settings are valid")
}

pub fn write_config(dir: &Path, source: &SimServer, target: &SimServer, extra: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, config_toml(source.url(), target.url(), extra)).expect("write config");
    path
}

const USER_FIELDS: &[&str] = &[
    "fullName",
    "firstName",
    "lastName",
    "email",
    "role",
    "roleId",
    "userLicenseTypeId",
    "provider",
    "idpUsername",
    "description",
    "tags",
    "access",
    "preferredView",
    "culture",
    "region",
    "units",
    "thumbnail",
];
const GROUP_FIELDS: &[&str] = &[
    "owner",
    "description",
    "snippet",
    "tags",
    "phone",
    "access",
    "isInvitationOnly",
    "sortField",
    "sortOrder",
    "isViewOnly",
    "capabilities",
    "membershipAccess",
    "thumbnail",
];
const ITEM_FIELDS: &[&str] = &[
    "owner",
    "folder",
    "title",
    "type",
    "description",
    "tags",
    "snippet",
    "extent",
    "spatialReference",
    "name",
    "accessInformation",
    "licenseInfo",
    "culture",
    "url",
    "properties",
    "categories",
    "access",
    "thumbnail",
    "metadata",
];

/// The named fields of a fixture object, as JSON, for property-by-property comparison.
pub fn fields(
    object: &impl serde::Serialize,
    names: &[&str],
) -> serde_json::Map<String, serde_json::Value> {
    let value = serde_json::to_value(object).expect("fixture objects serialize");
    names
        .iter()
        .map(|name| {
            (
                name.to_string(),
                value.get(*name).cloned().unwrap_or(serde_json::Value::Null),
            )
        })
        .collect()
}

/// Asserts the target is the sample org's expected result (tests/fixtures/sample-org/README.md):
/// totals, users with roles and properties, groups with owners/admins/members, items in the right
/// owner and folder with equal data, thumbnails, metadata and sharing, relationships, and
/// web maps pointing at the target copies of their feature services. Returns source→target
/// item ids (matched by owner, folder, title, type and the `source-` keyword).
pub fn assert_faithful_sample_clone(target: &Fixture) -> HashMap<String, String> {
    let source = sample_org::source();
    let before = sample_org::target();
    assert_eq!(target.users.len(), 19, "users: 8 existing + 11 cloned");
    assert_eq!(target.groups.len(), 10, "groups: 6 existing + 4 cloned");
    let folders: usize = target.users.iter().map(|u| u.folders.len()).sum();
    assert_eq!(folders, 17, "folders");
    assert_eq!(target.items.len(), 49, "items");
    assert_eq!(target.relationships.len(), 10, "relationships");

    // Pre-existing target users and groups are untouched.
    for user in &before.users {
        let now = target
            .users
            .iter()
            .find(|u| u.username == user.username)
            .expect("existing user kept");
        assert_eq!(
            now, user,
            "pre-existing user {} must be left exactly as it was",
            user.username
        );
    }
    for group in &before.groups {
        let now = target
            .groups
            .iter()
            .find(|g| g.title == group.title)
            .expect("existing group kept");
        assert_eq!(
            now, group,
            "pre-existing group {} must be unchanged",
            group.title
        );
    }

    // Users: every copyable property.
    let ordinary: Vec<_> = source
        .users
        .iter()
        .filter(|u| u.username != "admin" && !u.username.starts_with("esri_"))
        .collect();
    assert_eq!(ordinary.len(), 11);
    for user in ordinary {
        let copy = target
            .users
            .iter()
            .find(|u| u.username == user.username)
            .unwrap_or_else(|| panic!("user {} was not cloned", user.username));
        assert_ne!(copy.id, user.id, "target ids are new");
        // A portal reports "english" units for a user who never chose any; copying what
        // the source reports makes that explicit in the target, which is the same view.
        let units_as_seen = |user: &portal_migrate::fixture::User| {
            let mut f = fields(user, USER_FIELDS);
            if f["units"].is_null() {
                f.insert("units".into(), "english".into());
            }
            f
        };
        assert_eq!(
            units_as_seen(copy),
            units_as_seen(user),
            "properties of user {}",
            user.username
        );
        let want: BTreeSet<_> = user.folders.iter().map(|f| f.title.clone()).collect();
        let got: BTreeSet<_> = copy.folders.iter().map(|f| f.title.clone()).collect();
        assert_eq!(got, want, "folders of {}", user.username);
    }

    // Groups: properties, owner, admins, members.
    let group_by_source_id: HashMap<&str, &portal_migrate::fixture::Group> = source
        .groups
        .iter()
        .filter(|g| !g.owner.starts_with("esri_") && g.title != "Basemaps")
        .filter_map(|g| {
            target
                .groups
                .iter()
                .find(|t| t.title == g.title)
                .map(|t| (g.id.as_str(), t))
        })
        .collect();
    assert_eq!(
        group_by_source_id.len(),
        4,
        "the 4 source groups are cloned"
    );
    for group in source
        .groups
        .iter()
        .filter(|g| group_by_source_id.contains_key(g.id.as_str()))
    {
        let copy = group_by_source_id[group.id.as_str()];
        assert_eq!(
            fields(copy, GROUP_FIELDS),
            fields(group, GROUP_FIELDS),
            "properties of group {}",
            group.title
        );
        let set = |v: &Vec<String>| v.iter().cloned().collect::<BTreeSet<_>>();
        assert_eq!(
            set(&copy.admins),
            set(&group.admins),
            "admins of {}",
            group.title
        );
        assert_eq!(
            set(&copy.users),
            set(&group.users),
            "members of {}",
            group.title
        );
    }

    // Items: match each source item to exactly one copy by its source keyword.
    let mut ids = HashMap::new();
    for item in &source.items {
        let keyword = format!("source-{}", item.id);
        let copies: Vec<_> = target
            .items
            .iter()
            .filter(|t| t.type_keywords.contains(&keyword))
            .collect();
        assert_eq!(
            copies.len(),
            1,
            "item {} ({}) must have exactly one copy",
            item.title,
            item.id
        );
        ids.insert(item.id.clone(), copies[0].id.clone());
    }
    let group_ids: HashMap<&str, &str> = group_by_source_id
        .iter()
        .map(|(source_id, group)| (*source_id, group.id.as_str()))
        .collect();
    for item in &source.items {
        let copy = target
            .items
            .iter()
            .find(|t| t.id == ids[&item.id])
            .expect("copy exists");
        let mut keywords = copy.type_keywords.clone();
        keywords.retain(|k| !k.starts_with("source-"));
        assert_eq!(keywords, item.type_keywords, "typeKeywords of {}", item.id);
        assert_eq!(
            fields(copy, ITEM_FIELDS),
            fields(item, ITEM_FIELDS),
            "properties of item {} ({})",
            item.title,
            item.id
        );
        let want_groups: BTreeSet<&str> =
            item.groups.iter().map(|g| group_ids[g.as_str()]).collect();
        let got_groups: BTreeSet<&str> = copy.groups.iter().map(String::as_str).collect();
        assert_eq!(got_groups, want_groups, "sharing of item {}", item.id);
        match (&item.data, &copy.data) {
            (Some(ItemData::Json(want)), Some(ItemData::Json(got)))
                if item.item_type == "Web Map" =>
            {
                let mut expected = want.clone();
                let layer_id = want["operationalLayers"][0]["itemId"]
                    .as_str()
                    .expect("layer itemId");
                expected["operationalLayers"][0]["itemId"] = ids[layer_id].clone().into();
                assert_eq!(
                    got, &expected,
                    "web map {} must point at the target feature service",
                    item.id
                );
            }
            (want, got) => assert_eq!(got, want, "data of item {}", item.id),
        }
    }
    let relationships: BTreeSet<(String, String, String)> = target
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
    let expected: BTreeSet<(String, String, String)> = source
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
    assert_eq!(relationships, expected, "relationships");
    ids
}

/// Counts objects by identity, to prove nothing was duplicated.
pub fn duplicate_report(target: &Fixture) -> BTreeMap<String, usize> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for user in &target.users {
        *seen
            .entry(format!("user {}", user.username.to_lowercase()))
            .or_default() += 1;
        for folder in &user.folders {
            *seen
                .entry(format!(
                    "folder {}/{}",
                    user.username,
                    folder.title.to_lowercase()
                ))
                .or_default() += 1;
        }
    }
    for group in &target.groups {
        *seen
            .entry(format!("group {}", group.title.to_lowercase()))
            .or_default() += 1;
    }
    for item in &target.items {
        for keyword in item
            .type_keywords
            .iter()
            .filter(|k| k.starts_with("source-"))
        {
            *seen.entry(format!("item {keyword}")).or_default() += 1;
        }
    }
    seen.retain(|_, count| *count > 1);
    seen
}
