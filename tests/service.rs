//! The long-running service in-process: a sync round carries exactly what changed in the
//! source, `/metrics` agrees with the state file, the status page shows the right numbers in
//! a real browser, and the pause switch stops and restarts the pool.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use portal_migrate::commands;
use portal_migrate::engine::{self, RunError};
use portal_migrate::portal::{Portal, PortalSpec};
use portal_migrate::secret::Secret;
use portal_migrate::service::{self, ServiceOptions, SyncRecord};
use portal_migrate::settings::Settings;
use portal_migrate::sim::{Faults, SimServer};
use portal_migrate::store::{OpenOptions, Store};
use portal_migrate::work::Summary;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A daemon started in-process, with the address of its endpoints.
struct Daemon {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<Summary, RunError>>,
    state_path: PathBuf,
    reload: tokio::sync::mpsc::UnboundedSender<Settings>,
}

impl Daemon {
    async fn start(settings: Settings, once: bool) -> Daemon {
        let state_path = settings.state.path.clone();
        let (listening, bound) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let (reload, reloads) = tokio::sync::mpsc::unbounded_channel();
        let options = ServiceOptions {
            once,
            endpoints: true,
            on_listening: Some(listening),
            reload: Some(reloads),
        };
        let task = tokio::spawn(service::run(
            settings,
            async move {
                let _ = stopped.await;
            },
            options,
        ));
        let addr = tokio::time::timeout(Duration::from_secs(10), bound)
            .await
            .expect("the endpoints listen within 10 s")
            .expect("the service reports its address");
        Daemon {
            addr,
            stop: Some(stop),
            task,
            state_path,
            reload,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(self.url(path))
            .await
            .expect("the endpoint answers");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a text body"))
    }

    /// The state file's record of sync rounds, read like `status` reads it.
    fn sync_record(&self) -> SyncRecord {
        let store = Store::open_readonly(&self.state_path).expect("state file readable");
        SyncRecord::read(&store).expect("sync record readable")
    }

    /// Waits until round `round` has drained.
    async fn wait_for_round(&self, round: u64, limit: Duration) {
        let started = Instant::now();
        loop {
            if self
                .sync_record()
                .completed_round
                .is_some_and(|done| done >= round)
            {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "sync round {round} did not finish within {limit:?}:\n{}",
                commands::status(&self.state_path)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) -> Summary {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the service stops within 30 s")
            .expect("the service task does not panic")
            .expect("the service ends without a fatal error")
    }
}

fn service_settings(
    dir: &Path,
    source: &SimServer,
    target: &SimServer,
    interval_secs: u64,
) -> Settings {
    let extra =
        format!("[sync]\ninterval_secs = {interval_secs}\n\n[service]\nlisten = \"127.0.0.1:0\"\n");
    common::settings(dir, source, target, &extra)
}

/// Signs in to a simulated portal as one of its fixture users.
async fn sign_in_as(sim: &SimServer, username: &str, password: &str) -> Portal {
    Portal::connect(PortalSpec {
        label: "source".into(),
        url: sim.url().parse().expect("simulator URL"),
        username: username.into(),
        password: Secret::new(password.to_string()),
        rate_limit_rps: None,
        ca_file: None,
        accept_invalid_certs: false,
        request_timeout: Duration::from_secs(30),
        token_minutes: 60,
    })
    .await
    .expect("the owner signs in to the source")
}

/// Items of a snapshot by id, as JSON without the fields a portal changes on any write.
fn items_by_id(fixture: &portal_migrate::fixture::Fixture) -> BTreeMap<String, serde_json::Value> {
    fixture
        .items
        .iter()
        .map(|item| {
            let mut value = serde_json::to_value(item).expect("items serialize");
            if let Some(object) = value.as_object_mut() {
                object.remove("modified");
            }
            (item.id.clone(), value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sync_round_carries_exactly_the_new_and_modified_items() {
    let (source, target) = common::sample_pair(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(service_settings(dir.path(), &source, &target, 1), false).await;
    daemon.wait_for_round(0, Duration::from_secs(30)).await;
    let before = target.snapshot();
    let ids = common::assert_faithful_sample_clone(&before);

    // The owner changes the source: renames one item and adds another.
    let fixture = source.snapshot();
    let modified = fixture
        .items
        .iter()
        .find(|item| item.item_type == "CSV")
        .expect("the sample org has a CSV item")
        .clone();
    let owner = fixture
        .users
        .iter()
        .find(|user| user.username == modified.owner)
        .expect("the owner is a fixture user");
    let as_owner = sign_in_as(&source, &owner.username, &owner.password).await;
    as_owner
        .update_item(
            &owner.username,
            &modified.id,
            &[("title", "Renamed in the source".to_string())],
            None,
            None,
            None,
        )
        .await
        .expect("the owner renames the item");
    let added = as_owner
        .add_item(
            &owner.username,
            None,
            &[
                ("title", "Added after the migration".to_string()),
                ("type", "Document Link".to_string()),
                (
                    "url",
                    "https://example.com/added-after-the-migration".to_string(),
                ),
                ("tags", "sync,test".to_string()),
            ],
            None,
            None,
            None,
        )
        .await
        .expect("the owner adds an item");

    // A round that starts after the changes must carry them.
    let current = daemon.sync_record().round;
    daemon
        .wait_for_round(current + 1, Duration::from_secs(30))
        .await;
    let after = target.snapshot();

    assert_eq!(after.users, before.users, "users are unchanged");
    assert_eq!(after.groups, before.groups, "groups are unchanged");
    assert_eq!(
        after.relationships, before.relationships,
        "relationships are unchanged"
    );
    let (old, new) = (items_by_id(&before), items_by_id(&after));
    let appeared: Vec<&String> = new.keys().filter(|id| !old.contains_key(*id)).collect();
    assert!(
        old.keys().all(|id| new.contains_key(id)),
        "no item disappeared"
    );
    assert_eq!(
        appeared.len(),
        1,
        "exactly one new item in the target: {appeared:?}"
    );
    let copy_of_added = &after.items.iter().find(|i| &i.id == appeared[0]).unwrap();
    assert_eq!(copy_of_added.title, "Added after the migration");
    assert_eq!(copy_of_added.owner, owner.username);
    assert!(copy_of_added
        .type_keywords
        .contains(&format!("source-{added}")));

    let copy_of_modified = &ids[&modified.id];
    let changed: Vec<&String> = old.keys().filter(|id| old[*id] != new[*id]).collect();
    assert_eq!(
        changed,
        vec![copy_of_modified],
        "only the modified item's copy changed"
    );
    let renamed = after
        .items
        .iter()
        .find(|i| &i.id == copy_of_modified)
        .unwrap();
    assert_eq!(renamed.title, "Renamed in the source");
    let mut was = old[copy_of_modified].clone();
    let mut now = new[copy_of_modified].clone();
    was.as_object_mut().unwrap().remove("title");
    now.as_object_mut().unwrap().remove("title");
    assert_eq!(
        now, was,
        "nothing but the title changed in the modified copy"
    );

    // The state file tells the story: one update task, one new item task, nothing failed.
    let status = commands::status(&daemon.state_path).unwrap();
    assert!(status.failures.is_empty(), "{status}");
    let store = Store::open_readonly(&daemon.state_path).unwrap();
    let items = store.tasks_of_kind("item").unwrap();
    assert_eq!(items.len(), 49 + 2, "49 migrated, 1 new, 1 update task");
    let update = items
        .iter()
        .find(|t| t.source_key.starts_with(&format!("{}@", modified.id)))
        .expect("an update task");
    assert_eq!(update.outcome.as_deref(), Some("updated"));
    drop(store);

    // A later round with nothing new changes nothing.
    let current = daemon.sync_record().round;
    daemon
        .wait_for_round(current + 1, Duration::from_secs(30))
        .await;
    assert_eq!(
        items_by_id(&target.snapshot()),
        new,
        "an idle round changes nothing"
    );
    let summary = daemon.stop().await;
    assert!(summary.interrupted, "stopped by its shutdown future");
    assert_eq!(summary.failed, 0);

    // The report counts the first migration and the sync round.
    let report = portal_migrate::report::build(&dir.path().join("state.db")).unwrap();
    let items = report.kind("item").expect("items in the report");
    assert_eq!(
        (items.total, items.created, items.updated, items.failed),
        (51, 50, 1, 0)
    );
    assert_eq!(report.kind("user").map(|k| k.created), Some(11));
}

/// `name{labels} value` lines of a Prometheus text body.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_agree_with_the_state_file_and_probes_answer() {
    let (source, target) = common::sample_pair(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(service_settings(dir.path(), &source, &target, 3600), false).await;
    daemon.wait_for_round(0, Duration::from_secs(30)).await;

    assert_eq!(daemon.get("/healthz").await, (200, "ok\n".to_string()));
    let (ready, body) = daemon.get("/readyz").await;
    assert_eq!(ready, 200, "{body}");

    let (status, text) = daemon.get("/metrics").await;
    assert_eq!(status, 200);
    let metrics = samples(&text);
    let store = Store::open_readonly(&daemon.state_path).unwrap();
    let progress = store.progress().unwrap();
    drop(store);
    assert!(!progress.is_empty());
    for row in &progress {
        let name = format!(
            "portal_migrate_tasks{{kind=\"{}\",state=\"{}\"}}",
            row.kind, row.state
        );
        assert_eq!(
            metrics.get(&name),
            Some(&(row.count as f64)),
            "{name} in\n{text}"
        );
    }
    // Every other kind/state sample is zero: the gauge is the progress view, exactly.
    let listed: f64 = metrics
        .iter()
        .filter(|(name, _)| name.starts_with("portal_migrate_tasks{"))
        .map(|(_, value)| value)
        .sum();
    assert_eq!(listed, progress.iter().map(|r| r.count as f64).sum::<f64>());
    assert_eq!(
        metrics["portal_migrate_tasks{kind=\"item\",state=\"done\"}"],
        49.0
    );

    let done: f64 = progress
        .iter()
        .filter(|r| r.state == "done")
        .map(|r| r.count as f64)
        .sum();
    assert_eq!(
        metrics["portal_migrate_task_transitions_total{transition=\"done\"}"],
        done
    );
    assert_eq!(
        metrics["portal_migrate_task_transitions_total{transition=\"failed\"}"],
        0.0
    );
    assert_eq!(metrics["portal_migrate_queue_wait_seconds_count"], done);
    assert!(metrics["portal_migrate_requests_total{portal=\"target\",outcome=\"ok\"}"] > 49.0);
    assert!(metrics["portal_migrate_requests_total{portal=\"source\",outcome=\"ok\"}"] > 49.0);
    assert!(
        metrics["portal_migrate_transfer_bytes_total{portal=\"source\",direction=\"downloaded\"}"]
            > 0.0
    );
    assert_eq!(metrics["portal_migrate_sync_rounds_completed"], 1.0);
    assert!(metrics["portal_migrate_last_sync_timestamp_seconds"] > 1.6e9);
    assert!(
        metrics["portal_migrate_next_sync_timestamp_seconds"]
            > metrics["portal_migrate_last_sync_timestamp_seconds"]
    );
    assert_eq!(metrics["portal_migrate_paused"], 0.0);

    // A reload (SIGHUP in the binary) changes the worker count without a restart.
    assert_eq!(metrics["portal_migrate_workers"], 8.0);
    let mut reloaded = service_settings(dir.path(), &source, &target, 3600);
    reloaded.workers.count = 3;
    daemon.reload.send(reloaded).unwrap();
    let started = Instant::now();
    loop {
        let (_, text) = daemon.get("/metrics").await;
        if samples(&text)["portal_migrate_workers"] == 3.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the reload was not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.stop().await;
}

const CHROMIUM: &str = "/usr/bin/chromium";

/// Installs Debian's Chromium when it is missing, as the real-client tests install their
/// clients, so that `cargo test` alone works on a fresh machine (we run as root there).
fn ensure_chromium() {
    if Path::new(CHROMIUM).exists() {
        return;
    }
    let apt = |args: &[&str]| {
        std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let installed = apt(&["update"])
        .and_then(|_| apt(&["install", "-y", "--no-install-recommends", "chromium"]));
    match installed {
        Ok(output) if output.status.success() && Path::new(CHROMIUM).exists() => {}
        Ok(output) => panic!(
            "{CHROMIUM} is missing and `apt-get install chromium` failed (the status page test needs Debian's chromium; run as root or install it):\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!(
            "{CHROMIUM} is missing and apt-get could not run ({error}): the status page test needs Debian's chromium"
        ),
    }
}

/// The DOM of `url` after Chromium loaded it headless.
fn dump_dom(url: &str) -> String {
    ensure_chromium();
    let profile = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The text of the table row for one kind on the status page, tags removed.
fn row_text(dom: &str, kind: &str) -> String {
    let attribute = dom
        .find(&format!("data-kind=\"{kind}\""))
        .unwrap_or_else(|| panic!("no row for {kind} in\n{dom}"));
    let start = dom[..attribute].rfind('<').expect("the row's tag opens");
    let end = start + dom[start..].find("</tr>").expect("row ends");
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom[start..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_status_page_shows_the_right_numbers_in_chromium() {
    let (source, target) = common::sample_pair(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(service_settings(dir.path(), &source, &target, 3600), false).await;
    daemon.wait_for_round(0, Duration::from_secs(30)).await;

    let url = daemon.url("/");
    let dom = tokio::task::spawn_blocking(move || dump_dom(&url))
        .await
        .unwrap();
    // kind, done "N of N", then pending, running, skipped, failed, blocked.
    assert_eq!(row_text(&dom, "item"), "item 49 of 49 0 0 0 0 0", "{dom}");
    assert_eq!(row_text(&dom, "user"), "user 11 of 11 0 0 0 0 0");
    assert_eq!(row_text(&dom, "group"), "group 4 of 4 0 0 0 0 0");
    assert_eq!(
        row_text(&dom, "relationship"),
        "relationship 10 of 10 0 0 0 0 0"
    );
    assert!(dom.contains("0 failed or blocked."), "{dom}");
    assert!(dom.contains("Last sync: round 0 finished"), "{dom}");
    assert!(dom.contains("Up to date. Next sync at"), "{dom}");
    assert!(!dom.contains("Paused"), "{dom}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_paused_nothing_is_claimed_and_resume_completes_the_migration() {
    let (source, target) = common::sample_pair(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = service_settings(dir.path(), &source, &target, 0);
    // The switch is set before the daemon starts, as `portal-migrate pause` would.
    drop(Store::open(&settings.state.path, &OpenOptions::default()).unwrap());
    service::set_paused(&settings.state.path, true).unwrap();

    let daemon = Daemon::start(settings.clone(), true).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = commands::status(&settings.state.path).unwrap();
    assert!(status.paused, "{status}");
    assert!(status.to_string().contains("paused:"), "{status}");
    assert_eq!(
        status.total("done") + status.total("running"),
        0,
        "nothing claimed while paused:\n{status}"
    );
    assert_eq!(
        status.total("pending"),
        1,
        "only the root discovery task waits:\n{status}"
    );
    let (_, page) = daemon.get("/").await;
    assert!(page.contains("Paused: no new tasks are claimed"), "{page}");
    let (_, metrics) = daemon.get("/metrics").await;
    assert!(metrics.contains("\nportal_migrate_paused 1\n"), "{metrics}");
    assert!(
        target.snapshot().items.is_empty(),
        "nothing copied while paused"
    );

    service::set_paused(&settings.state.path, false).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(30), daemon.task)
        .await
        .expect("the migration finishes after resume")
        .unwrap()
        .expect("the migration runs");
    assert!(!summary.interrupted);
    assert_eq!(summary.failed, 0);
    let status = commands::status(&settings.state.path).unwrap();
    assert!(!status.paused);
    common::assert_faithful_sample_clone(&target.snapshot());
    // A second run --once on the finished state is still a no-op.
    let again = engine::run(settings, std::future::pending()).await.unwrap();
    assert_eq!(again.completed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_item_deleted_in_the_source_is_deleted_in_the_target_when_asked() {
    let (source, target) = common::sample_pair(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = "[sync]\ninterval_secs = 1\npropagate_deletes = true\n\n[service]\nlisten = \"127.0.0.1:0\"\n";
    let daemon = Daemon::start(common::settings(dir.path(), &source, &target, extra), false).await;
    daemon.wait_for_round(0, Duration::from_secs(30)).await;
    let ids = common::assert_faithful_sample_clone(&target.snapshot());

    // An item nothing else points at: no relationship, not referenced by a web map.
    let fixture = source.snapshot();
    let doomed = fixture
        .items
        .iter()
        .find(|item| {
            item.item_type == "CSV"
                && !fixture
                    .relationships
                    .iter()
                    .any(|r| r.origin == item.id || r.destination == item.id)
        })
        .expect("a CSV item without relationships")
        .clone();
    let owner = fixture
        .users
        .iter()
        .find(|u| u.username == doomed.owner)
        .unwrap();
    let as_owner = sign_in_as(&source, &owner.username, &owner.password).await;
    as_owner
        .delete_item(&owner.username, &doomed.id)
        .await
        .expect("the owner deletes the item");

    let current = daemon.sync_record().round;
    daemon
        .wait_for_round(current + 1, Duration::from_secs(30))
        .await;
    let after = target.snapshot();
    assert_eq!(after.items.len(), 48, "the copy is gone and nothing else");
    assert!(after.items.iter().all(|i| i.id != ids[&doomed.id]));

    let store = Store::open_readonly(&daemon.state_path).unwrap();
    let deletions = store.tasks_of_kind("delete_item").unwrap();
    assert_eq!(deletions.len(), 1);
    assert_eq!(deletions[0].outcome.as_deref(), Some("deleted"));
    let deleted = store.facts("deleted").unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].subject, doomed.id);
    drop(store);
    let (_, metrics) = daemon.get("/metrics").await;
    assert!(
        metrics.contains("portal_migrate_deleted_in_source{kind=\"item\"} 1\n"),
        "{metrics}"
    );
    daemon.stop().await;
}
