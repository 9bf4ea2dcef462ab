//! Generated organisations pass the fixture checker (`tests/fixtures/check.py`), the same
//! one that guards the hand-written sample org, so the simulator can load any of them.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use portal_migrate::fixture::{Fixture, ItemData};
use portal_migrate::sim::generate::{generate, generate_target, GenerateSpec};

fn specs() -> Vec<(&'static str, GenerateSpec)> {
    vec![
        ("default", GenerateSpec::default()),
        (
            "paging",
            "seed=7,users=120,groups=5,folders-per-user=2,items-per-folder=2,file-bytes=512,\
             big-folder-items=150,members-per-group=30"
                .parse()
                .unwrap(),
        ),
        (
            "online",
            "seed=11,users=30,groups=4,folders-per-user=2,items-per-folder=3,file-bytes=2048,\
             members-per-group=8,mode=multitenant,custom-roles=true,enterprise-users=5"
                .parse()
                .unwrap(),
        ),
    ]
}

fn python3_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn write_fixture(dir: &Path, name: &str, fixture: &Fixture) {
    let text = serde_json::to_string_pretty(fixture).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn generated_orgs_pass_the_fixture_checker() {
    if !python3_available() {
        println!("note: python3 is not installed; skipping the check.py validation");
        return;
    }
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check.py");
    for (label, spec) in specs() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path(), "source.json", &generate(&spec));
        write_fixture(dir.path(), "target.json", &generate_target(&spec));
        let output = Command::new("python3")
            .arg(&checker)
            .arg(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "check.py rejected the {label} org:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !stdout.contains("warning:"),
            "check.py warned about the {label} org:\n{stdout}"
        );
    }
}

#[test]
fn same_spec_gives_the_same_bytes_and_another_seed_does_not() {
    for (label, spec) in specs() {
        let first = serde_json::to_string(&generate(&spec)).unwrap();
        let second = serde_json::to_string(&generate(&spec)).unwrap();
        assert!(first == second, "{label}: two runs of one spec differ");
        let reseeded = GenerateSpec {
            seed: spec.seed + 1,
            ..spec.clone()
        };
        let other = serde_json::to_string(&generate(&reseeded)).unwrap();
        assert!(
            first != other,
            "{label}: a different seed gave the same org"
        );
    }
}

#[test]
fn paging_org_has_the_counts_the_spec_asks_for() {
    let (_, spec) = specs().remove(1);
    let org = generate(&spec);
    let ordinary: Vec<_> = org
        .users
        .iter()
        .filter(|u| u.username != "admin" && !u.username.starts_with("esri_"))
        .collect();
    assert_eq!(ordinary.len(), 120);
    assert!(org.users.len() > 100);

    let mut per_folder: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    for item in &org.items {
        *per_folder
            .entry((item.owner.as_str(), item.folder.as_deref()))
            .or_default() += 1;
    }
    let biggest = per_folder.values().max().copied().unwrap_or(0);
    assert_eq!(
        biggest, 150,
        "the big folder holds exactly big-folder-items"
    );
    assert!(biggest > 100);
    // Every other folder (root included) holds items-per-folder items.
    assert_eq!(org.items.len(), 120 * 3 * 2 + 150);
    assert_eq!(org.groups.len(), 5 + 4);
    for folder_user in ordinary {
        assert_eq!(
            folder_user.folders.len(),
            if org
                .items
                .iter()
                .any(|i| i.owner == folder_user.username
                    && i.folder.as_deref() == Some("bulk_import"))
            {
                3
            } else {
                2
            }
        );
    }
}

#[test]
fn online_org_has_custom_roles_and_identity_provider_users() {
    let (_, spec) = specs().remove(2);
    let org = generate(&spec);
    assert_eq!(org.portal.portal_mode, "multitenant");
    assert!(!org.portal.is_portal);
    assert!(org.portal.url_key.is_some());
    let enterprise: Vec<_> = org
        .users
        .iter()
        .filter(|u| u.provider == "enterprise")
        .collect();
    assert_eq!(enterprise.len(), 5);
    assert!(enterprise.iter().all(|u| u.idp_username.is_some()));
    let custom: Vec<_> = org.users.iter().filter(|u| u.role_id.is_some()).collect();
    assert!(!custom.is_empty());
    assert!(custom
        .iter()
        .all(|u| u.role == "org_user" && u.role_id.as_ref().unwrap().len() == 16));
    // Apps carry their own id in their URL, which a cloner must rewrite too.
    let apps: Vec<_> = org
        .items
        .iter()
        .filter(|i| i.item_type == "Web Mapping Application")
        .collect();
    assert!(!apps.is_empty());
    for app in apps {
        assert!(app
            .url
            .as_deref()
            .unwrap()
            .ends_with(&format!("?appid={}", app.id)));
        let Some(ItemData::Json(data)) = &app.data else {
            panic!("app without JSON data")
        };
        let webmap = data["values"]["webmap"].as_str().unwrap();
        assert!(org
            .items
            .iter()
            .any(|i| i.id == webmap && i.item_type == "Web Map"));
    }
}
