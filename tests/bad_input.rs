//! The bad-input catalogue: every case runs the real binary (`run --once`) against a small
//! generated organisation and checks what a person would see.
//!
//! - `Refused` cases must stop with a clear message (naming the problem and the fix), leave
//!   the state file exactly as it was (same bytes, or still absent) and the target untouched.
//! - `ObjectFails` cases must fail only the object concerned, with a clear message in
//!   `status`, and migrate everything else.
//! - `Migrates` cases are not errors at all: odd but valid input that must migrate exactly.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use portal_migrate::commands;
use portal_migrate::fixture::{Blob, Fixture, ItemData, User};
use portal_migrate::sim::generate::GenerateSpec;
use portal_migrate::sim::{Faults, SimServer};
use portal_migrate::store::{OpenOptions, Store};

fn spec() -> GenerateSpec {
    "seed=17,users=4,groups=2,folders-per-user=1,items-per-folder=3,members-per-group=2,file-bytes=256"
        .parse()
        .expect("valid spec")
}

/// Large enough that its state file outgrows the 2 MiB disk of the disk-full case (group
/// commit keeps the WAL small, so the tasks' payloads must do it).
fn disk_filling_spec() -> GenerateSpec {
    "seed=17,users=14,groups=4,folders-per-user=2,items-per-folder=4,members-per-group=6,file-bytes=256"
        .parse()
        .expect("valid spec")
}

/// What a case expects.
enum Expect {
    /// The run is refused: exit code not 0, stderr holds every fragment (case-insensitive).
    Refused(&'static [&'static str]),
    /// Exit code 1; a failed task whose error holds every fragment; everything else migrated.
    ObjectFails(&'static [&'static str]),
    /// Exit code 0 and the target passes the case's own check.
    Migrates(fn(&Fixture, &Fixture, &Fixture, &Path)),
}

/// What exists before the run, besides the simulators.
#[derive(Clone, Copy)]
enum Before {
    Nothing,
    /// A state file made by a complete migration between two *other* portals.
    StateOfAnotherPair,
    /// Our state file, claiming a schema version from the future.
    NewerSchema,
    /// A file starting like SQLite, then garbage.
    CorruptSqlite,
    /// A text file where the state file should be.
    TextFile,
    /// An SQLite database of some other application.
    ForeignSqlite,
    /// Another daemon holds the state file's lock.
    Locked,
    /// A directory where the state file should be.
    Directory,
}

struct Case {
    name: &'static str,
    /// Changes the source organisation.
    source: fn(&mut Fixture),
    /// The config file given the source and target URLs and the closed port's URL; `None`
    /// is the standard one (`common::config_toml`) with `extra` appended.
    config: Option<fn(&Urls) -> String>,
    extra: &'static str,
    env: &'static [(&'static str, &'static str)],
    target_faults: fn() -> Faults,
    before: Before,
    expect: Expect,
}

struct Urls {
    source: String,
    target: String,
    closed: String,
}

fn unchanged(_: &mut Fixture) {}
fn no_faults() -> Faults {
    Faults::default()
}

const BASE: Case = Case {
    name: "",
    source: unchanged,
    config: None,
    extra: "",
    env: &[],
    target_faults: no_faults,
    before: Before::Nothing,
    expect: Expect::Refused(&[]),
};

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "config file missing",
            config: Some(|_| "<missing>".into()),
            expect: Expect::Refused(&["config", "not found"]),
            ..BASE
        },
        Case {
            name: "config is not TOML",
            config: Some(|_| "[source\nurl = ".into()),
            expect: Expect::Refused(&["config.toml", "line"]),
            ..BASE
        },
        Case {
            name: "unknown key",
            extra: "[workers]\ncount = 2\nthreads = 4\n",
            expect: Expect::Refused(&["workers.threads"]),
            ..BASE
        },
        Case {
            name: "misspelled section",
            extra: "[worker]\ncount = 2\n",
            expect: Expect::Refused(&["worker"]),
            ..BASE
        },
        Case {
            name: "required key missing",
            config: Some(|u| {
                common::config_toml(&u.source, &u.target, "").replacen(
                    "username = \"admin\"\n",
                    "",
                    1,
                )
            }),
            expect: Expect::Refused(&["source.username"]),
            ..BASE
        },
        Case {
            name: "value out of range",
            extra: "[workers]\ncount = 0\n",
            expect: Expect::Refused(&["workers.count"]),
            ..BASE
        },
        Case {
            name: "password variable not set",
            config: Some(|u| {
                common::config_toml(&u.source, &u.target, "")
                    .replace(common::SOURCE_PASSWORD_ENV, "PM_TEST_NO_SUCH_VARIABLE")
            }),
            expect: Expect::Refused(&["PM_TEST_NO_SUCH_VARIABLE"]),
            ..BASE
        },
        Case {
            name: "wrong password",
            env: &[(common::TARGET_PASSWORD_ENV, "not-the-password")],
            expect: Expect::Refused(&[
                "target portal",
                "sign-in as 'admin' failed",
                "password_env",
            ]),
            ..BASE
        },
        Case {
            name: "unreachable URL (closed port)",
            config: Some(|u| common::config_toml(&u.closed, &u.target, "")),
            expect: Expect::Refused(&["source portal", "connection failed"]),
            ..BASE
        },
        Case {
            name: "plain http to a remote host",
            config: Some(|u| {
                common::config_toml("http://portal.example.com/portal", &u.target, "")
            }),
            expect: Expect::Refused(&["source.url", "allow_http"]),
            ..BASE
        },
        Case {
            name: "state file of another source/target pair",
            before: Before::StateOfAnotherPair,
            expect: Expect::Refused(&["belongs to the migration", "another state.path"]),
            ..BASE
        },
        Case {
            name: "state file from a newer schema",
            before: Before::NewerSchema,
            expect: Expect::Refused(&["newer portal-migrate", "schema 99"]),
            ..BASE
        },
        Case {
            name: "corrupt state file",
            before: Before::CorruptSqlite,
            expect: Expect::Refused(&["not a portal-migrate state file", "left untouched"]),
            ..BASE
        },
        Case {
            name: "state file that is not SQLite",
            before: Before::TextFile,
            expect: Expect::Refused(&["not a portal-migrate state file", "not an SQLite database"]),
            ..BASE
        },
        Case {
            name: "state file of another application",
            before: Before::ForeignSqlite,
            expect: Expect::Refused(&["not a portal-migrate state file", "other tables"]),
            ..BASE
        },
        Case {
            name: "state file locked by a second daemon",
            before: Before::Locked,
            expect: Expect::Refused(&["another portal-migrate process", "stop it first"]),
            ..BASE
        },
        Case {
            name: "state path is a directory",
            before: Before::Directory,
            expect: Expect::Refused(&["is a directory"]),
            ..BASE
        },
        Case {
            // Tests run as root, which chmod cannot stop; a file where the directory should
            // be is refused the same way a read-only directory is.
            name: "state directory not writable (a file in its place)",
            config: Some(|u| {
                common::config_toml(&u.source, &u.target, "")
                    .replace("path = \"state.db\"", "path = \"blocker/state.db\"")
            }),
            expect: Expect::Refused(&["cannot keep the state file", "not a directory", "writable"]),
            ..BASE
        },
        Case {
            // /proc is a read-only file system even for root.
            name: "state directory on a read-only file system",
            config: Some(|u| {
                common::config_toml(&u.source, &u.target, "").replace(
                    "path = \"state.db\"",
                    "path = \"/proc/portal-migrate-state.db\"",
                )
            }),
            expect: Expect::Refused(&["/proc", "writable"]),
            ..BASE
        },
        Case {
            name: "item data that is invalid JSON",
            source: |f| {
                let map = f
                    .items
                    .iter_mut()
                    .find(|i| i.item_type == "Web Map")
                    .expect("a web map");
                map.data = Some(ItemData::Text(
                    "{\"operationalLayers\": [{\"itemId\": ".into(),
                ));
            },
            expect: Expect::ObjectFails(&["invalid JSON", "fix it in the source", "retry"]),
            ..BASE
        },
        Case {
            name: "an item type the target refuses",
            target_faults: || Faults {
                refused_types: vec!["PDF".into()],
                ..Faults::default()
            },
            expect: Expect::ObjectFails(&["target portal", "Item type 'PDF' is not supported"]),
            ..BASE
        },
        Case {
            name: "duplicate item titles in one folder",
            source: |f| {
                let first = f.items[0].clone();
                let twin = f
                    .items
                    .iter_mut()
                    .skip(1)
                    .find(|i| i.owner == first.owner && i.folder == first.folder)
                    .expect("two items in one folder");
                twin.title = first.title.clone();
            },
            expect: Expect::Migrates(exact_clone),
            ..BASE
        },
        Case {
            name: "non-ASCII and quoting characters in names",
            source: |f| {
                let odd = "Ops \"Team\" 'A' \\ & é 日本";
                f.groups.last_mut().expect("a group").title = odd.into();
                let owner = f.items[0].owner.clone();
                let user = f
                    .users
                    .iter_mut()
                    .find(|u| u.username == owner)
                    .expect("owner");
                user.full_name = "Zoë \"Z\" O'Brien & 日本".into();
                user.description = Some("Back\\slash & <b>é</b>".into());
                let folder = user.folders.first_mut().expect("a folder");
                let old_title =
                    std::mem::replace(&mut folder.title, "Karten \"A\" & é 日本".into());
                for item in f.items.iter_mut().filter(|i| i.owner == owner) {
                    if item.folder.as_deref() == Some(old_title.as_str()) {
                        item.folder = Some("Karten \"A\" & é 日本".into());
                    }
                }
                f.items[0].title = "Carte \"spéciale\" 'x' \\ & 日本".into();
                f.items[0].tags.push("étiquette & 日本".into());
            },
            expect: Expect::Migrates(exact_clone),
            ..BASE
        },
        Case {
            name: "a 0-byte file",
            source: |f| {
                let csv = f
                    .items
                    .iter_mut()
                    .find(|i| i.item_type == "CSV")
                    .expect("a CSV");
                csv.data = Some(ItemData::File(Blob {
                    name: "empty.csv".into(),
                    base64: String::new(),
                }));
                csv.name = Some("empty.csv".into());
            },
            expect: Expect::Migrates(exact_clone),
            ..BASE
        },
        Case {
            name: "a user who owns nothing",
            source: |f| {
                let mut idle: User = f.users.last().expect("a user").clone();
                idle.id = "0000000000000000000000000000idle".replace("idle", "1d1e");
                idle.username = "idle.user".into();
                idle.email = "idle.user@example.com".into();
                idle.full_name = "Idle User".into();
                idle.folders.clear();
                f.users.push(idle);
            },
            expect: Expect::Migrates(exact_clone),
            ..BASE
        },
        Case {
            name: "a group whose owner is excluded by filters",
            source: |f| {
                let group = f.groups.last_mut().expect("a group");
                group.owner = "zz.excluded".into();
                group.admins = vec!["zz.excluded".into()];
                group.users.retain(|u| u != "admin");
                group.users.push("zz.excluded".into());
                let mut excluded: User = f.users.last().expect("a user").clone();
                excluded.id = "00000000000000000000000000e1c1ed".into();
                excluded.username = "zz.excluded".into();
                excluded.folders.clear();
                f.users.push(excluded);
            },
            extra: "[users]\nexclude = [\"esri_*\", \"zz.*\"]\n",
            expect: Expect::Migrates(group_kept_by_admin),
            ..BASE
        },
        Case {
            name: "an item shared to a group that is excluded",
            extra: "[groups]\nexclude_titles = [\"Basemaps\", \"Compliance\"]\n",
            source: |f| {
                let group = f
                    .groups
                    .iter_mut()
                    .find(|g| !g.owner.starts_with("esri_") && g.title != "Basemaps")
                    .expect("a group");
                group.title = "Compliance".into();
            },
            expect: Expect::Migrates(shares_skip_excluded_group),
            ..BASE
        },
        Case {
            name: "a relationship to an item outside the migration",
            extra: "[items]\nexclude_types = [\"CSV\"]\n",
            source: |f| {
                let service = f
                    .items
                    .iter()
                    .find(|i| i.item_type == "Feature Service")
                    .expect("a service")
                    .id
                    .clone();
                let csv = f
                    .items
                    .iter()
                    .find(|i| i.item_type == "CSV")
                    .expect("a CSV")
                    .id
                    .clone();
                f.relationships.push(portal_migrate::fixture::Relationship {
                    relationship_type: "Service2Data".into(),
                    origin: service,
                    destination: csv,
                });
            },
            expect: Expect::Migrates(relationships_inside_only),
            ..BASE
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Checks for the cases that must migrate.

fn exact_clone(source: &Fixture, before: &Fixture, target: &Fixture, state: &Path) {
    assert!(common::duplicate_report(target).is_empty());
    let ids = common::assert_faithful_clone(source, before, target);
    common::assert_state_complete(state, source, &ids);
}

fn group_kept_by_admin(source: &Fixture, _: &Fixture, target: &Fixture, _: &Path) {
    let group = source.groups.last().expect("a group");
    let copies: Vec<_> = target
        .groups
        .iter()
        .filter(|g| g.title == group.title)
        .collect();
    assert_eq!(copies.len(), 1, "the group is migrated once");
    assert_eq!(
        copies[0].owner, "admin",
        "its excluded owner has no account: the administrator keeps it"
    );
    assert!(
        !target.users.iter().any(|u| u.username == "zz.excluded"),
        "the excluded owner is not created"
    );
    let members: BTreeSet<&str> = copies[0].users.iter().map(String::as_str).collect();
    for member in group.users.iter().filter(|u| *u != "zz.excluded") {
        assert!(members.contains(member.as_str()), "member {member} kept");
    }
}

fn shares_skip_excluded_group(source: &Fixture, _: &Fixture, target: &Fixture, state: &Path) {
    assert!(
        !target.groups.iter().any(|g| g.title == "Compliance"),
        "the excluded group is not created"
    );
    assert_eq!(
        target.items.len(),
        source.items.len(),
        "every item is migrated"
    );
    let excluded_id = source
        .groups
        .iter()
        .find(|g| g.title == "Compliance")
        .expect("group")
        .id
        .clone();
    let shared_there = source
        .items
        .iter()
        .filter(|i| i.groups.contains(&excluded_id))
        .count();
    assert!(
        shared_there > 0,
        "the case needs an item shared with the excluded group"
    );
    let status = commands::status(state).unwrap();
    assert!(status.failures.is_empty(), "no failure:\n{status}");
}

fn relationships_inside_only(source: &Fixture, _: &Fixture, target: &Fixture, state: &Path) {
    let csv: BTreeSet<&str> = source
        .items
        .iter()
        .filter(|i| i.item_type == "CSV")
        .map(|i| i.id.as_str())
        .collect();
    assert!(
        !target.items.iter().any(|i| i.item_type == "CSV"),
        "CSV items are excluded"
    );
    let inside = source
        .relationships
        .iter()
        .filter(|r| !csv.contains(r.origin.as_str()) && !csv.contains(r.destination.as_str()))
        .count();
    assert_eq!(
        target.relationships.len(),
        inside,
        "only relationships with both ends migrated"
    );
    let status = commands::status(state).unwrap();
    assert!(status.failures.is_empty(), "no failure:\n{status}");
}

// ---------------------------------------------------------------------------------------------
// The harness.

fn file_state(path: &Path) -> Option<Vec<u8>> {
    if path.is_dir() {
        return Some(b"<directory>".to_vec());
    }
    std::fs::read(path).ok()
}

async fn prepare_state(before: Before, dir: &Path, state: &Path) -> Option<Store> {
    match before {
        Before::Nothing => None,
        Before::StateOfAnotherPair => {
            let (source, target, _, _) =
                common::generated_pair(&spec(), None, Faults::default()).await;
            let config = common::write_config(dir, &source, &target, "");
            let output = common::migrate_command(&config)
                .output()
                .expect("binary runs");
            assert!(output.status.success(), "the other pair's migration works");
            std::fs::remove_file(config).unwrap();
            None
        }
        Before::NewerSchema => {
            drop(Store::open(state, &OpenOptions::default()).unwrap());
            let db = rusqlite::Connection::open(state).unwrap();
            db.pragma_update(None, "user_version", 99).unwrap();
            db.pragma_update(None, "journal_mode", "DELETE").unwrap();
            None
        }
        Before::CorruptSqlite => {
            let mut bytes = b"SQLite format 3\0".to_vec();
            bytes.extend((0..8192u32).map(|i| (i * 7 % 251) as u8));
            std::fs::write(state, bytes).unwrap();
            None
        }
        Before::TextFile => {
            std::fs::write(state, "these are my notes, not a database\n").unwrap();
            None
        }
        Before::ForeignSqlite => {
            let db = rusqlite::Connection::open(state).unwrap();
            db.execute_batch(
                "CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup');",
            )
            .unwrap();
            None
        }
        Before::Locked => Some(Store::open(state, &OpenOptions::default()).unwrap()),
        Before::Directory => {
            std::fs::create_dir(state).unwrap();
            None
        }
    }
}

fn failure_text(state: &Path) -> String {
    commands::status(state)
        .map(|s| {
            s.failures
                .iter()
                .filter(|f| f.state == "failed")
                .map(|f| f.last_error.clone().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

async fn run_case(case: &Case) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut source_fixture = portal_migrate::sim::generate::generate(&spec());
    (case.source)(&mut source_fixture);
    let before = portal_migrate::sim::generate::generate_target(&spec());
    let source = SimServer::start(source_fixture.clone(), Default::default())
        .await
        .map_err(|e| e.to_string())?;
    let target = SimServer::start(
        before.clone(),
        portal_migrate::sim::SimOptions {
            faults: (case.target_faults)(),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://127.0.0.1:{}/portal",
            listener.local_addr().unwrap().port()
        )
    };
    let urls = Urls {
        source: source.url().into(),
        target: target.url().into(),
        closed,
    };
    std::fs::write(
        dir.path().join("blocker"),
        "a file where a directory should be",
    )
    .unwrap();
    let state = dir.path().join("state.db");
    let _held = prepare_state(case.before, dir.path(), &state).await;

    let config_path: PathBuf = dir.path().join("config.toml");
    match case.config {
        Some(make) => {
            let text = make(&urls);
            if text != "<missing>" {
                std::fs::write(&config_path, text).unwrap();
            }
        }
        None => std::fs::write(
            &config_path,
            common::config_toml(&urls.source, &urls.target, case.extra),
        )
        .unwrap(),
    }
    let state_before = file_state(&state);
    let target_before = target.snapshot();

    let mut command = common::migrate_command(&config_path);
    for (key, value) in case.env {
        command.env(key, value);
    }
    let Output { status, stderr, .. } = command.output().map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&stderr).to_string();
    let after = target.snapshot();

    match &case.expect {
        Expect::Refused(fragments) => {
            if status.success() {
                return Err(format!("the run was not refused; stderr:\n{stderr}"));
            }
            let lower = stderr.to_lowercase();
            for fragment in *fragments {
                if !lower.contains(&fragment.to_lowercase()) {
                    return Err(format!("the message lacks {fragment:?}:\n{stderr}"));
                }
            }
            if file_state(&state) != state_before {
                return Err(format!(
                    "the state file changed (existed before: {}, after: {})",
                    state_before.is_some(),
                    state.exists()
                ));
            }
            if after != target_before {
                return Err("the target changed".into());
            }
            println!("  refused: {}", stderr.lines().last().unwrap_or_default());
        }
        Expect::ObjectFails(fragments) => {
            if status.code() != Some(1) {
                return Err(format!(
                    "expected exit code 1 (failures), got {status}; stderr:\n{stderr}"
                ));
            }
            let failures = failure_text(&state);
            for fragment in *fragments {
                if !failures.contains(fragment) {
                    return Err(format!("the failure lacks {fragment:?}:\n{failures}"));
                }
            }
            let failed = commands::status(&state).unwrap();
            let failed_items = failed.count("item", "failed") as usize;
            // Items that reference a failed one wait for it (blocked), as they should.
            let blocked_items = failed.count("item", "blocked") as usize;
            if failed_items == 0
                || after.items.len() + failed_items + blocked_items != source_fixture.items.len()
            {
                return Err(format!(
                    "only the refused items and those waiting on them may be missing: {} of {} items migrated, {failed_items} failed, {blocked_items} blocked",
                    after.items.len(),
                    source_fixture.items.len()
                ));
            }
            if !common::duplicate_report(&after).is_empty() {
                return Err("duplicates".into());
            }
            println!(
                "  failed alone: {}",
                failures.lines().next().unwrap_or_default()
            );
        }
        Expect::Migrates(check) => {
            if !status.success() {
                return Err(format!(
                    "the run failed: {status}\n{stderr}\n{}",
                    commands::status(&state)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                ));
            }
            let check = *check;
            let result =
                std::panic::catch_unwind(|| check(&source_fixture, &before, &after, &state));
            if let Err(panic) = result {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                return Err(format!("the target is not as expected: {message}"));
            }
            println!("  migrated correctly");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_input_is_refused_clearly_or_migrated_correctly() {
    let cases = cases();
    assert!(cases.len() >= 25, "the catalogue has {} cases", cases.len());
    let mut failed = Vec::new();
    for case in &cases {
        println!("case: {}", case.name);
        if let Err(problem) = run_case(case).await {
            println!("  FAILED: {problem}");
            failed.push(format!("{}: {problem}", case.name));
        }
    }
    println!(
        "bad input catalogue: {} cases, {} failed",
        cases.len(),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} cases failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}

/// Unmounts the small file system when the test ends, however it ends.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A disk that fills mid-run: a 2 MiB tmpfs holds the state file, which fills while items are being copied (tests run as root in CI,
/// so `mount` works; elsewhere the case says it cannot run). The run must stop with a clear
/// message, the state file must stay sound, nothing in the target may be duplicated, and the
/// same state file moved to a roomy disk must finish the migration exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disk_that_fills_stops_the_run_cleanly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&small)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        println!(
            "note: cannot mount a small tmpfs here (not root?); the disk-full case did not run"
        );
        return;
    }
    let _unmount = Mounted(small.clone());
    let (source, target, source_fixture, before) =
        common::generated_pair(&disk_filling_spec(), None, Faults::default()).await;
    let config_text = common::config_toml(source.url(), target.url(), "")
        .replace("path = \"state.db\"", "path = \"small/state.db\"");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, config_text).unwrap();

    let output = common::migrate_command(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the run cannot finish on a full disk:\n{stderr}"
    );
    assert!(
        stderr.contains("is full") && stderr.contains("free some space"),
        "the message names the full disk and the fix:\n{stderr}"
    );
    println!("disk full: {}", stderr.lines().last().unwrap_or_default());
    assert_ne!(
        target.snapshot(),
        before,
        "the disk filled in the middle of the migration"
    );
    assert!(common::duplicate_report(&target.snapshot()).is_empty());

    // Move the state to a roomy disk, as the message suggests, and carry on.
    let roomy = dir.path().join("state.db");
    std::fs::copy(small.join("state.db"), &roomy).unwrap();
    for companion in ["-wal", "-shm"] {
        let from = small.join(format!("state.db{companion}"));
        if from.exists() {
            std::fs::copy(&from, dir.path().join(format!("state.db{companion}"))).unwrap();
        }
    }
    let store = Store::open(&roomy, &OpenOptions::default()).expect("the state file is sound");
    assert_eq!(store.integrity_check().unwrap(), "ok");
    drop(store);
    std::fs::write(&config, common::config_toml(source.url(), target.url(), "")).unwrap();
    let output = common::migrate_command(&config).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = target.snapshot();
    assert!(common::duplicate_report(&after).is_empty());
    let ids = common::assert_faithful_clone(&source_fixture, &before, &after);
    common::assert_state_complete(&roomy, &source_fixture, &ids);
}
