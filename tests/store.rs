//! The state store against real files in temporary directories: opening and refusing files,
//! the lock, the queue's ordering and failure rules, crash recovery, and what a person sees
//! with `sqlite3 -readonly`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use portal_migrate::store::{
    Completion, Fact, NewTask, OpenOptions, PortalIdentity, Store, StoreError, Synchronous,
    TaskKey, TaskState, SCHEMA_VERSION,
};
use rusqlite::{Connection, OpenFlags};
use serde_json::json;
use tempfile::TempDir;

const LEASE_MS: i64 = 60_000;

/// Tasks are enqueued due at the system clock's now, so claims use the same clock.
fn now() -> i64 {
    portal_migrate::store::now_ms()
}

fn state_path(dir: &TempDir) -> PathBuf {
    dir.path().join("state.db")
}

fn open(path: &Path) -> Store {
    Store::open(path, &OpenOptions::default()).unwrap()
}

fn new_task(kind: &str, key: &str, depends_on: &[(&str, &str)]) -> NewTask {
    NewTask {
        kind: kind.into(),
        source_key: key.into(),
        title: format!("{kind} '{key}'"),
        payload: json!({ "key": key }),
        depends_on: depends_on
            .iter()
            .map(|(kind, key)| TaskKey::new(*kind, *key))
            .collect(),
        priority: 100,
        max_attempts: 5,
    }
}

fn key(kind: &str, source_key: &str) -> TaskKey {
    TaskKey::new(kind, source_key)
}

/// Claims everything ready at `now` and returns the source keys in claim order.
fn claim_keys(store: &Store, now: i64) -> Vec<String> {
    store
        .claim(now, 100, LEASE_MS)
        .unwrap()
        .into_iter()
        .map(|task| task.source_key)
        .collect()
}

fn id_of(store: &Store, kind: &str, source_key: &str) -> i64 {
    store
        .task_by_key(&key(kind, source_key))
        .unwrap()
        .unwrap()
        .id
}

fn state_of(store: &Store, kind: &str, source_key: &str) -> TaskState {
    store
        .task_by_key(&key(kind, source_key))
        .unwrap()
        .unwrap()
        .state
}

fn done(store: &Store, kind: &str, source_key: &str) {
    let completion = Completion {
        outcome: "created".into(),
        ..Completion::default()
    };
    store
        .complete(id_of(store, kind, source_key), &completion)
        .unwrap();
}

fn portal(url: &str, id: &str) -> PortalIdentity {
    PortalIdentity {
        url: url.into(),
        portal_id: id.into(),
        name: "A portal".into(),
    }
}

fn raw_readonly(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

#[test]
fn store_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
}

#[test]
fn migrations_apply_once_and_reopening_keeps_the_data() {
    let dir = TempDir::new().unwrap();
    let path = state_path(&dir);
    {
        let store = open(&path);
        assert_eq!(store.path(), path.as_path());
        assert_eq!(store.enqueue(&[new_task("user", "alice", &[])]).unwrap(), 1);
    }
    {
        let raw = raw_readonly(&path);
        let version: i64 = raw
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = raw
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    let store = open(&path);
    assert_eq!(store.tasks_of_kind("user").unwrap().len(), 1);
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn normal_synchronous_mode_opens_too() {
    let dir = TempDir::new().unwrap();
    let options = OpenOptions {
        synchronous: Synchronous::Normal,
        ..OpenOptions::default()
    };
    let store = Store::open(&state_path(&dir), &options).unwrap();
    assert_eq!(store.enqueue(&[new_task("user", "alice", &[])]).unwrap(), 1);
}

#[test]
fn a_newer_schema_is_refused_and_the_file_left_byte_identical() {
    let dir = TempDir::new().unwrap();
    let path = state_path(&dir);
    drop(open(&path));
    {
        let raw = Connection::open(&path).unwrap();
        raw.pragma_update(None, "user_version", 999).unwrap();
    }
    let before = std::fs::read(&path).unwrap();

    let error = Store::open(&path, &OpenOptions::default()).unwrap_err();
    match &error {
        StoreError::NewerSchema {
            found, supported, ..
        } => {
            assert_eq!(*found, 999);
            assert_eq!(*supported, SCHEMA_VERSION);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(error.to_string().contains("use a newer portal-migrate"));
    assert!(matches!(
        Store::open_readonly(&path).unwrap_err(),
        StoreError::NewerSchema { found: 999, .. }
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn files_that_are_not_state_files_are_refused_and_left_untouched() {
    let dir = TempDir::new().unwrap();
    let mut random = vec![0u8; 8192];
    // Not cryptographic, just not a header: a simple generator keeps the test deterministic.
    let mut seed: u32 = 12345;
    for byte in random.iter_mut() {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *byte = (seed >> 16) as u8;
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("text", b"source.url = \"https://example.com\"\n".to_vec()),
        ("random", random),
        ("short", b"SQLite".to_vec()),
    ];
    for (name, content) in cases {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("state.db");
        std::fs::write(&path, &content).unwrap();

        let error = Store::open(&path, &OpenOptions::default()).unwrap_err();
        assert!(
            matches!(error, StoreError::NotAStateFile { .. }),
            "{name}: {error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("not a portal-migrate state file"),
            "{message}"
        );
        assert!(matches!(
            Store::open_readonly(&path).unwrap_err(),
            StoreError::NotAStateFile { .. }
        ));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            content,
            "{name} was modified"
        );
    }
}

#[test]
fn another_applications_database_is_refused_and_left_untouched() {
    let dir = TempDir::new().unwrap();
    let path = state_path(&dir);
    {
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let error = Store::open(&path, &OpenOptions::default()).unwrap_err();
    assert!(
        matches!(error, StoreError::NotAStateFile { .. }),
        "{error:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_second_open_is_locked_out_until_the_first_is_dropped() {
    let dir = TempDir::new().unwrap();
    let path = state_path(&dir);
    let first = open(&path);
    let error = Store::open(&path, &OpenOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::Locked { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("another portal-migrate process is working on"));
    assert!(message.contains(&path.display().to_string()));
    assert!(message.contains("`status`"));
    drop(first);
    let second = open(&path);
    assert_eq!(second.outstanding().unwrap(), 0);
}

#[test]
fn readonly_open_works_alongside_a_run_and_sees_its_progress() {
    let dir = TempDir::new().unwrap();
    let path = state_path(&dir);
    let store = open(&path);
    store
        .enqueue(&[
            new_task("user", "alice", &[]),
            new_task("user", "bob", &[]),
            new_task("item", "i1", &[("user", "alice")]),
        ])
        .unwrap();
    store.claim(now(), 1, LEASE_MS).unwrap();

    let reader = Store::open_readonly(&path).unwrap();
    assert_eq!(reader.progress().unwrap(), store.progress().unwrap());
    assert_eq!(reader.outstanding().unwrap(), 3);
    assert!(
        reader.enqueue(&[new_task("user", "carol", &[])]).is_err(),
        "a read-only store must not write"
    );

    // The reader sees later commits too.
    done(&store, "user", "alice");
    assert_eq!(reader.progress().unwrap(), store.progress().unwrap());
}

#[test]
fn readonly_open_works_when_no_run_is_active() {
    let dir = TempDir::new().unwrap();
    let path = state_path(&dir);
    {
        let store = open(&path);
        store.enqueue(&[new_task("user", "alice", &[])]).unwrap();
    }
    let reader = Store::open_readonly(&path).unwrap();
    assert_eq!(reader.outstanding().unwrap(), 1);
}

#[test]
fn readonly_open_of_a_missing_file_says_nothing_has_run() {
    let dir = TempDir::new().unwrap();
    let path = state_path(&dir);
    let error = Store::open_readonly(&path).unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    assert!(!path.exists(), "a read-only open must not create the file");
}

#[test]
fn readonly_open_refuses_an_older_schema() {
    let dir = TempDir::new().unwrap();
    let path = state_path(&dir);
    drop(open(&path));
    {
        let raw = Connection::open(&path).unwrap();
        raw.pragma_update(None, "user_version", SCHEMA_VERSION - 1)
            .unwrap();
    }
    let error = Store::open_readonly(&path).unwrap_err();
    assert!(matches!(error, StoreError::OlderSchema { .. }), "{error:?}");
}

#[test]
fn a_missing_directory_is_named_with_the_fix() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("no-such-dir");
    let error = Store::open(&missing.join("state.db"), &OpenOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::NotWritable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("create the directory"), "{message}");
}

#[test]
fn the_portal_pair_is_recorded_once_and_another_pair_refused() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    assert_eq!(store.pair().unwrap(), None);
    let source = portal("https://staging.example.com/portal", "0123456789ABCDEF");
    let target = portal("https://gis.example.com/portal", "0123456789ABCDEF");
    store.bind_pair(&source, &target).unwrap();
    store.bind_pair(&source, &target).unwrap();
    // A trailing slash or a new display name is still the same portal.
    let renamed = PortalIdentity {
        url: "https://gis.example.com/portal/".into(),
        name: "Production".into(),
        ..target.clone()
    };
    store.bind_pair(&source, &renamed).unwrap();
    assert_eq!(
        store.pair().unwrap(),
        Some((source.clone(), target.clone()))
    );

    // Same portal id (every Enterprise portal has it), different URL: another portal.
    let other_target = portal("https://other.example.com/portal", "0123456789ABCDEF");
    let error = store.bind_pair(&source, &other_target).unwrap_err();
    match &error {
        StoreError::WrongPair {
            expected_target,
            found_target,
            ..
        } => {
            assert!(expected_target.contains("https://gis.example.com/portal"));
            assert!(found_target.contains("https://other.example.com/portal"));
        }
        other => panic!("expected WrongPair, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message
        .contains("this state file belongs to the migration https://staging.example.com/portal"));
    assert!(message.contains("use another state.path for this pair"));

    // Same URL, different portal id: the portal was reinstalled or replaced.
    let reinstalled = portal("https://staging.example.com/portal", "FEDCBA9876543210");
    assert!(matches!(
        store.bind_pair(&reinstalled, &target).unwrap_err(),
        StoreError::WrongPair { .. }
    ));
}

#[test]
fn enqueueing_twice_adds_nothing() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    let tasks = vec![
        new_task("user", "alice", &[]),
        new_task("folder", "alice/maps", &[("user", "alice")]),
    ];
    assert_eq!(store.enqueue(&tasks).unwrap(), 2);
    assert_eq!(store.enqueue(&tasks).unwrap(), 0);
    assert_eq!(store.tasks_of_kind("user").unwrap().len(), 1);
    assert_eq!(store.tasks_of_kind("folder").unwrap().len(), 1);
    let folder = store
        .task_by_key(&key("folder", "alice/maps"))
        .unwrap()
        .unwrap();
    assert_eq!(
        folder.unmet_deps, 1,
        "the second enqueue must not add the edge again"
    );
    assert_eq!(folder.payload, json!({ "key": "alice/maps" }));
}

#[test]
fn an_unknown_dependency_rolls_back_the_whole_enqueue() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    let error = store
        .enqueue(&[
            new_task("user", "alice", &[]),
            new_task("item", "i1", &[("user", "nobody")]),
        ])
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::UnknownDependency(k) if *k == key("user", "nobody")),
        "{error:?}"
    );
    assert_eq!(store.outstanding().unwrap(), 0);
}

#[test]
fn a_task_is_not_claimed_before_its_dependency_completes() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    // The dependent comes first in the batch and has the better priority: order of
    // enqueueing and priority must not beat the dependency.
    let mut item = new_task("item", "i1", &[("user", "alice")]);
    item.priority = 1;
    store
        .enqueue(&[item, new_task("user", "alice", &[])])
        .unwrap();

    assert_eq!(claim_keys(&store, now()), vec!["alice"]);
    assert!(
        claim_keys(&store, now()).is_empty(),
        "item waits while alice runs"
    );
    done(&store, "user", "alice");
    assert_eq!(claim_keys(&store, now()), vec!["i1"]);
}

#[test]
fn chains_and_fan_in_run_in_dependency_order() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    store
        .enqueue(&[
            new_task("t", "a", &[]),
            new_task("t", "b", &[]),
            new_task("t", "c", &[("t", "a"), ("t", "b")]),
            new_task("t", "d", &[("t", "c")]),
        ])
        .unwrap();

    assert_eq!(claim_keys(&store, now()), vec!["a", "b"]);
    done(&store, "t", "a");
    assert!(claim_keys(&store, now()).is_empty(), "c still waits for b");
    assert_eq!(
        store
            .task_by_key(&key("t", "c"))
            .unwrap()
            .unwrap()
            .unmet_deps,
        1
    );
    done(&store, "t", "b");
    assert_eq!(claim_keys(&store, now()), vec!["c"]);
    done(&store, "t", "c");
    assert_eq!(claim_keys(&store, now()), vec!["d"]);
    done(&store, "t", "d");
    assert_eq!(store.outstanding().unwrap(), 0);
}

#[test]
fn a_completion_spawns_tasks_and_adds_dependencies_in_one_go() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    store
        .enqueue(&[
            new_task("discover", "alice", &[]),
            new_task("relationship", "r1", &[]),
        ])
        .unwrap();
    let mut claimed = store.claim(now(), 1, LEASE_MS).unwrap();
    assert_eq!(claimed.len(), 1);
    let discovery = claimed.remove(0);
    assert_eq!(discovery.source_key, "alice");

    let completion = Completion {
        outcome: "discovered".into(),
        spawn: vec![
            new_task("item", "i1", &[]),
            new_task("item", "i2", &[("item", "i1")]),
        ],
        add_deps: vec![(key("relationship", "r1"), key("item", "i2"))],
        facts: vec![Fact {
            kind: "related".into(),
            subject: "i1".into(),
            object: "i2".into(),
            detail: json!({ "type": "Service2Data" }),
        }],
        note: Some("found 2 items".into()),
        ..Completion::default()
    };
    store.complete(discovery.id, &completion).unwrap();

    assert_eq!(claim_keys(&store, now()), vec!["i1"]);
    done(&store, "item", "i1");
    assert_eq!(claim_keys(&store, now()), vec!["i2"]);
    done(&store, "item", "i2");
    assert_eq!(claim_keys(&store, now()), vec!["r1"]);
    assert_eq!(store.facts("related").unwrap(), completion.facts);
    assert_eq!(
        state_of(&store, "discover", "alice"),
        TaskState::Done,
        "the discovery task itself is done"
    );
}

#[test]
fn adding_a_dependency_to_a_finished_task_is_refused() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    store
        .enqueue(&[new_task("t", "a", &[]), new_task("t", "b", &[])])
        .unwrap();
    claim_keys(&store, now());
    done(&store, "t", "a");
    let completion = Completion {
        add_deps: vec![(key("t", "a"), key("t", "b"))],
        ..Completion::default()
    };
    let error = store
        .complete(id_of(&store, "t", "b"), &completion)
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::TaskAlreadyStarted {
                state: TaskState::Done,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(state_of(&store, "t", "b"), TaskState::Running);
}

#[test]
fn a_dependency_cycle_is_refused() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    store
        .enqueue(&[
            new_task("t", "a", &[]),
            new_task("t", "b", &[("t", "a")]),
            new_task("t", "c", &[("t", "b")]),
            new_task("t", "x", &[]),
        ])
        .unwrap();
    assert_eq!(claim_keys(&store, now()), vec!["a", "x"]);
    let completion = Completion {
        // b waits on c, which waits on b.
        add_deps: vec![(key("t", "b"), key("t", "c"))],
        ..Completion::default()
    };
    let error = store
        .complete(id_of(&store, "t", "x"), &completion)
        .unwrap_err();
    assert!(
        matches!(error, StoreError::DependencyCycle { .. }),
        "{error:?}"
    );
}

#[test]
fn a_failure_blocks_dependents_transitively_and_retry_revives_them_in_order() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    store
        .enqueue(&[
            new_task("user", "alice", &[]),
            new_task("folder", "alice/maps", &[("user", "alice")]),
            new_task("item", "i1", &[("folder", "alice/maps")]),
            new_task("user", "bob", &[]),
        ])
        .unwrap();
    let alice = store.claim(now(), 1, LEASE_MS).unwrap().remove(0);
    assert_eq!(alice.source_key, "alice");

    let blocked = store
        .fail(alice.id, "400: username not allowed", "permanent")
        .unwrap();
    assert_eq!(blocked, 2);
    assert_eq!(state_of(&store, "folder", "alice/maps"), TaskState::Blocked);
    assert_eq!(state_of(&store, "item", "i1"), TaskState::Blocked);

    let failures = store.failures().unwrap();
    assert_eq!(failures.len(), 3);
    let failed = failures.iter().find(|f| f.id == alice.id).unwrap();
    assert_eq!(failed.state, "failed");
    assert_eq!(failed.error_class.as_deref(), Some("permanent"));
    assert_eq!(
        failed.last_error.as_deref(),
        Some("400: username not allowed")
    );
    for row in failures.iter().filter(|f| f.state == "blocked") {
        assert_eq!(row.blocked_by, Some(alice.id), "{row:?}");
        assert_eq!(row.blocked_by_title.as_deref(), Some("user 'alice'"));
        let error = row.last_error.as_deref().unwrap();
        assert!(error.contains(&format!("#{}", alice.id)), "{error}");
    }

    // The rest of the migration carries on.
    assert_eq!(claim_keys(&store, now()), vec!["bob"]);
    done(&store, "user", "bob");

    // A task enqueued later that needs the failed one is blocked at once.
    store
        .enqueue(&[new_task("share", "i1", &[("item", "i1")])])
        .unwrap();
    assert_eq!(state_of(&store, "share", "i1"), TaskState::Blocked);

    assert_eq!(store.retry_failed().unwrap(), 4);
    assert!(store.failures().unwrap().is_empty());
    let revived = store.claim(now(), 100, LEASE_MS).unwrap();
    assert_eq!(revived.len(), 1);
    assert_eq!(revived[0].source_key, "alice");
    assert_eq!(revived[0].attempt, 1, "retry_failed gives a fresh budget");
    done(&store, "user", "alice");
    assert_eq!(claim_keys(&store, now()), vec!["alice/maps"]);
    done(&store, "folder", "alice/maps");
    assert_eq!(claim_keys(&store, now()), vec!["i1"]);
    done(&store, "item", "i1");
    assert_eq!(claim_keys(&store, now()), vec!["i1"]);
    done(&store, "share", "i1");
    assert_eq!(store.outstanding().unwrap(), 0);
}

#[test]
fn retry_later_keeps_the_attempt_and_waits_for_run_at() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    store.enqueue(&[new_task("user", "alice", &[])]).unwrap();
    let now = now() + 1_000;
    let task = store.claim(now, 1, LEASE_MS).unwrap().remove(0);
    assert_eq!(task.attempt, 1);

    store
        .retry_later(task.id, now + 4_000, "HTTP 503", "transient")
        .unwrap();
    let row = store.task(task.id).unwrap().unwrap();
    assert_eq!(row.state, TaskState::Pending);
    assert_eq!(row.attempt, 1);
    assert_eq!(row.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(row.error_class.as_deref(), Some("transient"));
    assert_eq!(store.next_run_at().unwrap(), Some(now + 4_000));

    assert!(store.claim(now + 3_999, 10, LEASE_MS).unwrap().is_empty());
    let again = store.claim(now + 4_000, 10, LEASE_MS).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    assert_eq!(store.next_run_at().unwrap(), None);
}

#[test]
fn snooze_does_not_spend_the_attempt() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    store.enqueue(&[new_task("user", "alice", &[])]).unwrap();
    let task = store.claim(now(), 1, LEASE_MS).unwrap().remove(0);
    let wake = now() + 30_000;
    store.snooze(task.id, wake, "Retry-After: 30").unwrap();
    let row = store.task(task.id).unwrap().unwrap();
    assert_eq!((row.state, row.attempt), (TaskState::Pending, 0));
    assert!(store.claim(wake - 1, 1, LEASE_MS).unwrap().is_empty());
    assert_eq!(store.claim(wake, 1, LEASE_MS).unwrap()[0].attempt, 1);
}

#[test]
fn release_returns_running_tasks_without_spending_attempts() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    store
        .enqueue(&[new_task("t", "a", &[]), new_task("t", "b", &[])])
        .unwrap();
    let ids: Vec<i64> = store
        .claim(now(), 10, LEASE_MS)
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    done(&store, "t", "a");
    store.release(&ids).unwrap();
    assert_eq!(
        state_of(&store, "t", "a"),
        TaskState::Done,
        "finished work stays done"
    );
    let b = store.task_by_key(&key("t", "b")).unwrap().unwrap();
    assert_eq!(
        (b.state, b.attempt, b.leased_until),
        (TaskState::Pending, 0, None)
    );
}

#[test]
fn tasks_left_running_by_a_crash_are_recovered_and_run_again() {
    let dir = TempDir::new().unwrap();
    let path = state_path(&dir);
    {
        let store = open(&path);
        store
            .enqueue(&[new_task("t", "a", &[]), new_task("t", "b", &[("t", "a")])])
            .unwrap();
        let claimed = store.claim(now(), 10, LEASE_MS).unwrap();
        assert_eq!(claimed.len(), 1);
        // The process dies here: the Store is dropped without completing the task.
    }
    let store = open(&path);
    assert_eq!(store.recover_abandoned().unwrap(), 1);
    let a = store.task_by_key(&key("t", "a")).unwrap().unwrap();
    assert_eq!(
        (a.state, a.attempt, a.leased_until),
        (TaskState::Pending, 0, None)
    );
    assert_eq!(store.recover_abandoned().unwrap(), 0);

    let again = store.claim(now(), 10, LEASE_MS).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].source_key, "a");
    assert_eq!(again[0].attempt, 1);
    done(&store, "t", "a");
    assert_eq!(claim_keys(&store, now()), vec!["b"]);
}

#[test]
fn a_completion_that_fails_midway_writes_nothing() {
    let dir = TempDir::new().unwrap();
    let path = state_path(&dir);
    let task_id;
    {
        let store = open(&path);
        store.enqueue(&[new_task("item", "i1", &[])]).unwrap();
        task_id = store.claim(now(), 1, LEASE_MS).unwrap()[0].id;
        let completion = Completion {
            outcome: "created".into(),
            target_id: Some("t-i1".into()),
            id_map: vec![("item".into(), "i1".into(), "t-i1".into())],
            spawn: vec![
                new_task("share", "i1", &[]),
                new_task("relationship", "i1", &[("item", "missing")]),
            ],
            note: Some("created".into()),
            ..Completion::default()
        };
        let error = store.complete(task_id, &completion).unwrap_err();
        assert!(
            matches!(error, StoreError::UnknownDependency(_)),
            "{error:?}"
        );

        let row = store.task(task_id).unwrap().unwrap();
        assert_eq!(row.state, TaskState::Running);
        assert_eq!(row.target_id, None);
        assert_eq!(store.target_id("item", "i1").unwrap(), None);
        assert!(store.task_by_key(&key("share", "i1")).unwrap().is_none());
    }
    let store = open(&path);
    assert_eq!(store.target_id("item", "i1").unwrap(), None);
    assert_eq!(store.recover_abandoned().unwrap(), 1);
}

#[test]
fn a_completion_writes_the_id_map_with_the_task() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    store.enqueue(&[new_task("item", "i1", &[])]).unwrap();
    let task = store.claim(now(), 1, LEASE_MS).unwrap().remove(0);
    store
        .complete(
            task.id,
            &Completion {
                outcome: "adopted".into(),
                target_id: Some("t-i1".into()),
                id_map: vec![("item".into(), "i1".into(), "t-i1".into())],
                ..Completion::default()
            },
        )
        .unwrap();
    assert_eq!(
        store.target_id("item", "i1").unwrap().as_deref(),
        Some("t-i1")
    );
    assert_eq!(
        store.id_map("item").unwrap().get("i1").map(String::as_str),
        Some("t-i1")
    );
    let row = store.task(task.id).unwrap().unwrap();
    assert_eq!(row.outcome.as_deref(), Some("adopted"));
    assert_eq!(row.target_id.as_deref(), Some("t-i1"));

    // Reporting the same outcome twice is a caller bug and is refused.
    let error = store.complete(task.id, &Completion::default()).unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::NotRunning {
                state: TaskState::Done,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn skipped_tasks_let_dependents_proceed() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    store
        .enqueue(&[new_task("t", "a", &[]), new_task("t", "b", &[("t", "a")])])
        .unwrap();
    let a = store.claim(now(), 1, LEASE_MS).unwrap().remove(0);
    store
        .complete(
            a.id,
            &Completion {
                outcome: "skipped".into(),
                skipped: true,
                ..Completion::default()
            },
        )
        .unwrap();
    assert_eq!(state_of(&store, "t", "a"), TaskState::Skipped);
    assert_eq!(claim_keys(&store, now()), vec!["b"]);
}

#[test]
fn claims_follow_priority_then_run_at() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    let mut tasks = Vec::new();
    for (name, priority) in [("share", 30), ("user", 10), ("item", 20), ("group", 10)] {
        let mut task = new_task(name, name, &[]);
        task.priority = priority;
        tasks.push(task);
    }
    store.enqueue(&tasks).unwrap();
    assert_eq!(
        claim_keys(&store, i64::MAX / 2),
        vec!["user", "group", "item", "share"]
    );
}

#[test]
fn views_read_by_name_match_the_api() {
    let dir = TempDir::new().unwrap();
    let path = state_path(&dir);
    let store = open(&path);
    let run = store.begin_run("run").unwrap();
    store
        .enqueue(&[
            new_task("user", "alice", &[]),
            new_task("user", "bob", &[]),
            new_task("item", "i1", &[("user", "bob")]),
        ])
        .unwrap();
    let claimed = store.claim(now(), 10, LEASE_MS).unwrap();
    let alice = claimed.iter().find(|t| t.source_key == "alice").unwrap();
    let bob = claimed.iter().find(|t| t.source_key == "bob").unwrap();
    store
        .complete(
            alice.id,
            &Completion {
                outcome: "created".into(),
                id_map: vec![("user".into(), "alice".into(), "alice_t".into())],
                ..Completion::default()
            },
        )
        .unwrap();
    store.fail(bob.id, "403: not allowed", "permanent").unwrap();
    store.end_run(run, "finished").unwrap();

    let raw = raw_readonly(&path);
    let mut progress = raw
        .prepare("SELECT kind, state, count FROM progress")
        .unwrap();
    let from_view: Vec<(String, String, u64)> = progress
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let from_api: Vec<(String, String, u64)> = store
        .progress()
        .unwrap()
        .into_iter()
        .map(|row| (row.kind, row.state, row.count))
        .collect();
    assert_eq!(from_view, from_api);
    assert_eq!(
        from_view,
        vec![
            ("item".to_string(), "blocked".to_string(), 1),
            ("user".to_string(), "done".to_string(), 1),
            ("user".to_string(), "failed".to_string(), 1),
        ]
    );

    let mut failures = raw
        .prepare("SELECT id, state, last_error, blocked_by, updated_at_iso FROM failures")
        .unwrap();
    type FailureViewRow = (i64, String, Option<String>, Option<i64>, String);
    let rows: Vec<FailureViewRow> = failures
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let api: Vec<i64> = store.failures().unwrap().iter().map(|f| f.id).collect();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), api);
    assert_eq!(rows[0].1, "failed");
    assert_eq!(rows[1].3, Some(bob.id));
    assert!(
        rows[0].4.ends_with('Z') && rows[0].4.contains('T'),
        "{}",
        rows[0].4
    );

    let (title, target, mapped_iso): (String, String, String) = raw
        .query_row(
            "SELECT title, target_id, mapped_at_iso FROM id_map_view WHERE kind = 'user' AND source_id = 'alice'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (title.as_str(), target.as_str()),
        ("user 'alice'", "alice_t")
    );
    assert!(mapped_iso.starts_with("20"), "{mapped_iso}");

    let messages: Vec<String> = raw
        .prepare("SELECT message FROM event_log WHERE run_id = ?1")
        .unwrap()
        .query_map([run], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        messages.iter().any(|m| m.contains("403: not allowed")),
        "{messages:?}"
    );
    let outcome: String = raw
        .query_row(
            "SELECT outcome FROM run_history WHERE id = ?1",
            [run],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(outcome, "finished");
    let tasks_view: i64 = raw
        .query_row("SELECT COUNT(*) FROM tasks_view", [], |row| row.get(0))
        .unwrap();
    assert_eq!(tasks_view, 3);
}

#[test]
fn control_switches_events_and_integrity() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    assert_eq!(store.control("paused").unwrap(), None);
    store.set_control("paused", Some("true")).unwrap();
    assert_eq!(store.control("paused").unwrap().as_deref(), Some("true"));
    store.set_control("paused", None).unwrap();
    assert_eq!(store.control("paused").unwrap(), None);
    store.record_event(None, None, "info", "hello").unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn twenty_thousand_tasks_are_each_claimed_exactly_once() {
    let dir = TempDir::new().unwrap();
    let store = open(&state_path(&dir));
    let tasks: Vec<NewTask> = (0..20_000)
        .map(|n| {
            let mut task = new_task("item", &format!("item-{n:05}"), &[]);
            task.priority = n % 7;
            task
        })
        .collect();
    let started = Instant::now();
    assert_eq!(store.enqueue(&tasks).unwrap(), 20_000);
    let enqueued = started.elapsed();

    let mut seen = HashSet::new();
    loop {
        let batch = store.claim(now(), 100, LEASE_MS).unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 100);
        let completions: Vec<_> = batch
            .iter()
            .map(|task| {
                assert!(seen.insert(task.id), "task {} claimed twice", task.id);
                assert_eq!(task.attempt, 1);
                (
                    task.id,
                    Completion {
                        outcome: "created".into(),
                        id_map: vec![(
                            "item".into(),
                            task.source_key.clone(),
                            format!("t{}", task.id),
                        )],
                        ..Completion::default()
                    },
                )
            })
            .collect();
        store.complete_many(&completions).unwrap();
    }
    println!(
        "20,000 tasks: enqueue {:?}, claim+complete in batches of 100 {:?}",
        enqueued,
        started.elapsed() - enqueued
    );
    assert_eq!(seen.len(), 20_000);
    assert_eq!(store.outstanding().unwrap(), 0);
    assert_eq!(store.id_map("item").unwrap().len(), 20_000);
    let progress = store.progress().unwrap();
    assert_eq!(progress.len(), 1);
    assert_eq!(
        (progress[0].state.as_str(), progress[0].count),
        ("done", 20_000)
    );
}

/// Run only as a child of `a_killed_process_leaves_no_stale_lock_and_its_tasks_are_recovered`:
/// opens the store named by `PORTAL_MIGRATE_STORE_CHILD`, claims a task, and waits to be killed.
#[test]
#[ignore = "helper process for the kill test"]
fn crash_child_holds_the_store() {
    // Without the variable this is someone running all ignored tests: nothing to hold.
    let Some(path) = std::env::var_os("PORTAL_MIGRATE_STORE_CHILD") else {
        return;
    };
    let store = open(Path::new(&path));
    store.enqueue(&[new_task("user", "alice", &[])]).unwrap();
    assert_eq!(store.claim(now(), 1, LEASE_MS).unwrap().len(), 1);
    println!("store-child-ready");
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn a_killed_process_leaves_no_stale_lock_and_its_tasks_are_recovered() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    /// Kills the child if an assertion fails before the test kills it on purpose.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    let dir = TempDir::new().unwrap();
    let path = state_path(&dir);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child_holds_the_store",
            "--nocapture",
        ])
        .env("PORTAL_MIGRATE_STORE_CHILD", &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut child = KillOnDrop(child);
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.trim() == "store-child-ready");
    assert!(ready, "the child process never got the store");

    assert!(matches!(
        Store::open(&path, &OpenOptions::default()).unwrap_err(),
        StoreError::Locked { .. }
    ));
    // SIGKILL: no destructor runs, the lock file stays on disk.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(path.with_extension("db.lock").exists());

    let store = open(&path);
    assert_eq!(store.recover_abandoned().unwrap(), 1);
    let alice = store.task_by_key(&key("user", "alice")).unwrap().unwrap();
    assert_eq!((alice.state, alice.attempt), (TaskState::Pending, 0));
    assert_eq!(store.integrity_check().unwrap(), "ok");
}
