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
    // The totals the sample org's README expects.
    assert_eq!(target.users.len(), 19, "users: 8 existing + 11 cloned");
    assert_eq!(target.groups.len(), 10, "groups: 6 existing + 4 cloned");
    let folders: usize = target.users.iter().map(|u| u.folders.len()).sum();
    assert_eq!(folders, 17, "folders");
    assert_eq!(target.items.len(), 49, "items");
    assert_eq!(target.relationships.len(), 10, "relationships");
    let source = sample_org::source();
    let ids = assert_faithful_clone(&source, &sample_org::target(), target);
    // Its web maps point at the target copy of the same owner's feature service.
    for map in source.items.iter().filter(|i| i.item_type == "Web Map") {
        let Some(ItemData::Json(data)) = &map.data else {
            panic!("web map data")
        };
        let layer = data["operationalLayers"][0]["itemId"]
            .as_str()
            .expect("layer itemId");
        let copy = target
            .items
            .iter()
            .find(|i| i.id == ids[&map.id])
            .expect("copy");
        let Some(ItemData::Json(copied)) = &copy.data else {
            panic!("copied web map data")
        };
        assert_eq!(
            copied["operationalLayers"][0]["itemId"].as_str(),
            Some(ids[layer].as_str())
        );
    }
    source
        .items
        .iter()
        .map(|i| (i.id.clone(), ids[&i.id].clone()))
        .collect()
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

// ---------------------------------------------------------------------------------------------
// Generated organisations (the campaigns): any org `sim::generate` makes, checked generically.

use portal_migrate::fixture::{Blob, Group, Item, User};
use portal_migrate::sim::generate::{generate, generate_target, GenerateSpec};
use portal_migrate::store::{Store, TaskState};

/// Which source item carries the large file (the first CSV), when one is asked for.
pub fn enlarge_first_csv(fixture: &mut Fixture, bytes: usize) -> String {
    use base64::Engine as _;
    let item = fixture
        .items
        .iter_mut()
        .find(|i| i.item_type == "CSV")
        .expect("a generated org has CSV items");
    let mut text = String::from("id,site,note\n");
    let mut row = 0u64;
    while text.len() < bytes {
        text.push_str(&format!(
            "{row},Site {row},{:016x}{:016x}\n",
            row.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            row ^ 0xABCD
        ));
        row += 1;
    }
    let name = item.name.clone().unwrap_or_else(|| "big.csv".into());
    item.data = Some(ItemData::File(Blob {
        name,
        base64: base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
    }));
    item.id.clone()
}

/// Two simulators: the generated org (optionally with one large CSV) and its empty target.
/// Returns them with the source fixture as loaded and the target as it was before.
pub async fn generated_pair(
    spec: &GenerateSpec,
    big_file_bytes: Option<usize>,
    faults: Faults,
) -> (SimServer, SimServer, Fixture, Fixture) {
    let mut source_fixture = generate(spec);
    if let Some(bytes) = big_file_bytes {
        enlarge_first_csv(&mut source_fixture, bytes);
    }
    let target_fixture = generate_target(spec);
    let source = SimServer::start(
        source_fixture.clone(),
        SimOptions {
            faults: faults.clone(),
            ..SimOptions::default()
        },
    )
    .await
    .expect("source simulator starts");
    let target = SimServer::start(
        target_fixture.clone(),
        SimOptions {
            faults,
            ..SimOptions::default()
        },
    )
    .await
    .expect("target simulator starts");
    (source, target, source_fixture, target_fixture)
}

/// The users a default configuration migrates: not the default admin, not `esri_*`.
pub fn migrated_users(source: &Fixture) -> Vec<&User> {
    source
        .users
        .iter()
        .filter(|u| {
            u.username != source.portal.default_admin
                && !u.username.to_lowercase().starts_with("esri_")
        })
        .collect()
}

/// The groups a default configuration migrates: not owned by `esri_*`, not titled Basemaps.
pub fn migrated_groups(source: &Fixture) -> Vec<&Group> {
    source
        .groups
        .iter()
        .filter(|g| {
            !g.owner.to_lowercase().starts_with("esri_")
                && !g.title.eq_ignore_ascii_case("basemaps")
        })
        .collect()
}

/// Item data for comparison: files by name, length and hash (a failed comparison must not
/// print megabytes of base64), JSON and text as they are.
fn data_digest(data: &serde_json::Value) -> serde_json::Value {
    match data.get("file") {
        Some(file) => {
            let base64 = file
                .get("base64")
                .and_then(|b| b.as_str())
                .unwrap_or_default();
            let hash = base64.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            serde_json::json!({"file": file.get("name"), "base64_len": base64.len(), "fnv1a": hash})
        }
        None => data.clone(),
    }
}

/// Replaces every source id in `text` by its target id.
fn substitute(text: &str, ids: &HashMap<String, String>) -> String {
    let mut out = text.to_string();
    for (source, target) in ids {
        out = out.replace(source.as_str(), target);
    }
    out
}

fn substituted<T: serde::Serialize>(value: &T, ids: &HashMap<String, String>) -> serde_json::Value {
    let text = serde_json::to_string(value).expect("serializes");
    serde_json::from_str(&substitute(&text, ids)).expect("still JSON")
}

/// Asserts that `target` holds exactly `before` plus a faithful clone of what a default
/// configuration migrates from `source`: every user with its properties and folders, every
/// group with its properties, owner, managers and members, every item exactly once (by its
/// `source-` keyword) in the right owner and folder with its properties, data, thumbnail,
/// metadata and sharing, every relationship, and every reference inside item data and URLs
/// rewritten to the target's ids. Returns source→target ids of items and groups.
pub fn assert_faithful_clone(
    source: &Fixture,
    before: &Fixture,
    target: &Fixture,
) -> HashMap<String, String> {
    let users = migrated_users(source);
    let groups = migrated_groups(source);
    assert_eq!(
        target.users.len(),
        before.users.len() + users.len(),
        "user count"
    );
    assert_eq!(
        target.groups.len(),
        before.groups.len() + groups.len(),
        "group count"
    );
    assert_eq!(
        target.items.len(),
        before.items.len() + source.items.len(),
        "item count"
    );
    for user in &before.users {
        let now = target
            .users
            .iter()
            .find(|u| u.username == user.username)
            .expect("existing user kept");
        assert_eq!(
            now, user,
            "pre-existing user {} must be left as it was",
            user.username
        );
    }
    // As a person reads them: "english" units for a user who never chose any, and a custom
    // role by its name (role ids differ between portals; the name is what is copied).
    let as_seen = |user: &User, portal: &Fixture| {
        let mut f = fields(user, USER_FIELDS);
        if f["units"].is_null() {
            f.insert("units".into(), "english".into());
        }
        if let Some(role_id) = &user.role_id {
            if let Some(role) = portal.portal.roles.iter().find(|r| &r.id == role_id) {
                f.insert("roleId".into(), format!("role named {}", role.name).into());
            }
        }
        f
    };
    for user in &users {
        let copy = target
            .users
            .iter()
            .find(|u| u.username == user.username)
            .unwrap_or_else(|| panic!("user {} was not cloned", user.username));
        assert_eq!(
            as_seen(copy, target),
            as_seen(user, source),
            "properties of user {}",
            user.username
        );
        let want: BTreeSet<_> = user.folders.iter().map(|f| f.title.clone()).collect();
        let got: BTreeSet<_> = copy.folders.iter().map(|f| f.title.clone()).collect();
        assert_eq!(got, want, "folders of {}", user.username);
        assert_eq!(
            copy.folders.len(),
            user.folders.len(),
            "no duplicate folder of {}",
            user.username
        );
    }

    let mut ids: HashMap<String, String> = HashMap::new();
    for group in &groups {
        let copies: Vec<_> = target
            .groups
            .iter()
            .filter(|t| t.title == group.title)
            .collect();
        assert_eq!(
            copies.len(),
            1,
            "group '{}' must exist exactly once",
            group.title
        );
        ids.insert(group.id.clone(), copies[0].id.clone());
    }
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
            "item '{}' ({}) must have exactly one copy",
            item.title,
            item.id
        );
        ids.insert(item.id.clone(), copies[0].id.clone());
    }
    for group in &groups {
        let copy = target
            .groups
            .iter()
            .find(|t| t.id == ids[&group.id])
            .expect("copy exists");
        assert_eq!(
            fields(copy, GROUP_FIELDS),
            fields(*group, GROUP_FIELDS),
            "properties of group '{}'",
            group.title
        );
        let set = |v: &Vec<String>| v.iter().map(|u| u.to_lowercase()).collect::<BTreeSet<_>>();
        assert_eq!(
            set(&copy.admins),
            set(&group.admins),
            "managers of '{}'",
            group.title
        );
        assert_eq!(
            set(&copy.users),
            set(&group.users),
            "members of '{}'",
            group.title
        );
    }
    for item in &source.items {
        let copy: &Item = target
            .items
            .iter()
            .find(|t| t.id == ids[&item.id])
            .expect("copy exists");
        let mut keywords = copy.type_keywords.clone();
        keywords.retain(|k| !k.starts_with("source-"));
        assert_eq!(keywords, item.type_keywords, "typeKeywords of {}", item.id);
        assert_eq!(
            serde_json::Value::Object(fields(copy, ITEM_FIELDS)),
            substituted(&fields(item, ITEM_FIELDS), &ids),
            "properties of item '{}' ({}) with references rewritten",
            item.title,
            item.id
        );
        let want_groups: BTreeSet<String> = item.groups.iter().map(|g| ids[g].clone()).collect();
        let got_groups: BTreeSet<String> = copy.groups.iter().cloned().collect();
        assert_eq!(got_groups, want_groups, "sharing of item {}", item.id);
        assert_eq!(
            copy.data
                .as_ref()
                .map(|d| data_digest(&serde_json::to_value(d).expect("serializes"))),
            item.data
                .as_ref()
                .map(|d| data_digest(&substituted(d, &ids))),
            "data of item '{}' ({}) with references rewritten",
            item.title,
            item.id
        );
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
    let mut expected: BTreeSet<(String, String, String)> = before
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
    expected.extend(source.relationships.iter().map(|r| {
        (
            r.relationship_type.clone(),
            ids[&r.origin].clone(),
            ids[&r.destination].clone(),
        )
    }));
    assert_eq!(relationships, expected, "relationships");
    assert_eq!(
        target.relationships.len(),
        expected.len(),
        "no duplicate relationship"
    );
    ids
}

/// The state file after a complete migration of `source`: sound, every task terminal and
/// none failed, each migrated source object mapped exactly once and to the object the
/// target holds (`ids` from [`assert_faithful_clone`]).
pub fn assert_state_complete(state_path: &Path, source: &Fixture, ids: &HashMap<String, String>) {
    let store = Store::open_readonly(state_path).expect("state file opens");
    assert_eq!(
        store.integrity_check().unwrap(),
        "ok",
        "PRAGMA integrity_check"
    );
    let failures = store.failures().unwrap();
    assert!(
        failures.is_empty(),
        "no failed or blocked task: {failures:#?}"
    );
    for row in store.progress().unwrap() {
        let state = TaskState::parse(&row.state).expect("known state");
        assert!(
            state.is_finished(),
            "every task terminal, but {} {} are {}",
            row.count,
            row.kind,
            row.state
        );
    }
    let users = migrated_users(source);
    let groups = migrated_groups(source);
    let user_map = store.id_map("user").unwrap();
    assert_eq!(user_map.len(), users.len(), "user id map");
    for user in &users {
        assert_eq!(
            user_map.get(&user.username),
            Some(&user.username),
            "user {} mapped",
            user.username
        );
    }
    let group_map = store.id_map("group").unwrap();
    assert_eq!(group_map.len(), groups.len(), "group id map");
    for group in &groups {
        assert_eq!(
            group_map.get(&group.id),
            Some(&ids[&group.id]),
            "group '{}' mapped to its copy",
            group.title
        );
    }
    let folder_map = store.id_map("folder").unwrap();
    let folders: usize = users.iter().map(|u| u.folders.len()).sum();
    assert_eq!(folder_map.len(), folders, "folder id map");
    let distinct: BTreeSet<&String> = folder_map.values().collect();
    assert_eq!(
        distinct.len(),
        folders,
        "no two source folders mapped to one target folder"
    );
    let item_map = store.id_map("item").unwrap();
    assert_eq!(item_map.len(), source.items.len(), "item id map");
    for item in &source.items {
        assert_eq!(
            item_map.get(&item.id),
            Some(&ids[&item.id]),
            "item {} mapped to its one copy",
            item.id
        );
    }
}

/// The real binary, `run --once`, with the test passwords in its environment.
pub fn migrate_command(config: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_portal-migrate"));
    command
        .args(["run", "--once", "--config"])
        .arg(config)
        .env(SOURCE_PASSWORD_ENV, ADMIN_PASSWORD)
        .env(TARGET_PASSWORD_ENV, ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    command
}

/// `full` when `PORTAL_MIGRATE_CAMPAIGN=full`: the long campaigns; otherwise the CI variants.
pub fn full_campaign() -> bool {
    std::env::var("PORTAL_MIGRATE_CAMPAIGN").is_ok_and(|v| v == "full")
}

/// The campaign seed: `PORTAL_MIGRATE_CAMPAIGN_SEED` to replay a run, else `default`.
pub fn campaign_seed(default: u64) -> u64 {
    std::env::var("PORTAL_MIGRATE_CAMPAIGN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// [`settings`] with `PORTAL_MIGRATE__…` overrides, for keys of the sections the base
/// config already has (`source`, `target`, `retry`, `state`), which TOML cannot repeat.
pub fn settings_with(
    dir: &Path,
    source: &SimServer,
    target: &SimServer,
    extra: &str,
    overrides: &[(&str, &str)],
) -> Settings {
    let mut env = env();
    env.extend(
        overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    Settings::from_toml_str(&config_toml(source.url(), target.url(), extra), dir, &env)
        .expect("test settings are valid")
}
