//! `verify` after a migration of the sample organisation between two simulated portals: a
//! faithful target verifies equal, and every kind of tampering with the target (through its
//! REST API, as a person would) is reported on the right object with the right fields.

mod common;

use std::collections::HashMap;
use std::path::Path;

use portal_migrate::engine;
use portal_migrate::fixture::sample_org;
use portal_migrate::settings::Settings;
use portal_migrate::sim::{Faults, SimServer};
use portal_migrate::store::Store;
use portal_migrate::verify::{self, ObjectKind, Outcome, VerifyReport};
use serde_json::Value;

// Source ids from tests/fixtures/sample-org/README.md.
const AR_FEATURE_SERVICE: &str = "aaa6ad38f9c24b4294a4c6d0994fc7c7"; // brown.rogers
const FL_CSV: &str = "464fdece247e46b1ba861a7ac92701a4"; // davis.reed
const SET1_PDF: &str = "ba3d9b3e6793406696497be34607de44"; // project_archiver
const NV_FEATURE_SERVICE: &str = "71b66b8e628b46c9850cefd91f67f604"; // johnson.stewart
const STEWART_WEB_MAP: &str = "1d8820ef73064498983af1af326ddb9d"; // johnson.stewart, references NV
const KS_FEATURE_SERVICE: &str = "dee8ae7fede64f8e94c39d4f6aff8d6f"; // smith.collins
const KS_CSV: &str = "4a6c6b94d1d840f3a19d7da922be4c82"; // Service2Data destination of KS

struct Migrated {
    source: SimServer,
    target: SimServer,
    dir: tempfile::TempDir,
    settings: Settings,
    items: HashMap<String, String>,
    groups: HashMap<String, String>,
}

async fn migrated_sample() -> Migrated {
    let (source, target) = common::sample_pair(Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(dir.path(), &source, &target, "");
    let summary = engine::run(settings.clone(), std::future::pending())
        .await
        .expect("the migration runs");
    assert_eq!(
        summary.failed, 0,
        "the migration must succeed before verify means anything"
    );
    let store = Store::open_readonly(&settings.state.path).unwrap();
    let items = store.id_map("item").unwrap();
    let groups = store.id_map("group").unwrap();
    Migrated {
        source,
        target,
        dir,
        settings,
        items,
        groups,
    }
}

fn source_group_id(title: &str) -> String {
    sample_org::source()
        .groups
        .into_iter()
        .find(|g| g.title == title)
        .map(|g| g.id)
        .unwrap_or_else(|| panic!("the sample source has a group '{title}'"))
}

fn assert_counts(report: &VerifyReport, kind: ObjectKind, equal: u64, differ: u64, missing: u64) {
    let row = report.summary(kind);
    assert_eq!(
        (row.equal, row.differ, row.missing, row.error),
        (equal, differ, missing, 0),
        "{} (equal, differ, missing, error):\n{report}",
        kind.as_str()
    );
}

/// The target admin, signed in through the REST API like any client.
struct Admin {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    async fn sign_in(sim: &SimServer) -> Admin {
        let client = reqwest::Client::new();
        let base = format!("{}/sharing/rest", sim.url());
        let answer: Value = client
            .post(format!("{base}/generateToken"))
            .form(&[
                ("username", "admin"),
                ("password", common::ADMIN_PASSWORD),
                ("client", "referer"),
                ("referer", "http://localhost"),
                ("f", "json"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = answer["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {answer}"))
            .to_string();
        Admin {
            client,
            base,
            token,
        }
    }

    async fn post(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        form.push(("f", "json"));
        form.push(("token", &self.token));
        let answer: Value = self
            .client
            .post(format!("{}/{path}", self.base))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(answer.get("error").is_none(), "{path}: {answer}");
        answer
    }

    async fn post_file(&self, path: &str, file_name: &str, bytes: &'static [u8]) -> Value {
        let form = reqwest::multipart::Form::new()
            .text("f", "json")
            .text("token", self.token.clone())
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_string()),
            );
        let answer: Value = self
            .client
            .post(format!("{}/{path}", self.base))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(answer.get("error").is_none(), "{path}: {answer}");
        answer
    }

    async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}/{path}", self.base))
            .query(&[("f", "json"), ("token", self.token.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_faithful_migration_verifies_equal_object_by_object() {
    let pair = migrated_sample().await;
    let report = verify::verify(pair.settings.clone())
        .await
        .expect("verify runs");
    assert_counts(&report, ObjectKind::User, 11, 0, 0);
    assert_counts(&report, ObjectKind::Group, 4, 0, 0);
    assert_counts(&report, ObjectKind::Folder, 17, 0, 0);
    assert_counts(&report, ObjectKind::Item, 49, 0, 0);
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.status, "ok");
    let text = report.to_string();
    assert!(text.contains("ok: all 81 objects are equal"), "{text}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["objects"].as_array().map(Vec::len), Some(81));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tampering_with_the_target_shows_up_on_the_right_object_and_field() {
    let pair = migrated_sample().await;
    let admin = Admin::sign_in(&pair.target).await;
    let target_item = |source_id: &str| pair.items[source_id].clone();

    // A title changed by hand.
    let ar = target_item(AR_FEATURE_SERVICE);
    admin
        .post(
            &format!("content/users/brown.rogers/items/{ar}/update"),
            &[("title", "AR (edited)")],
        )
        .await;
    // A CSV whose file was replaced (same name, other bytes).
    let fl = target_item(FL_CSV);
    let fl_name = admin.get(&format!("content/items/{fl}")).await["name"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .post_file(
            &format!("content/users/davis.reed/items/{fl}/update"),
            &fl_name,
            b"lat,lon\n0,0\n",
        )
        .await;
    // An item deleted.
    let pdf = target_item(SET1_PDF);
    admin
        .post(
            &format!("content/users/project_archiver/items/{pdf}/delete"),
            &[],
        )
        .await;
    // A group's summary edited, and a member removed from another group.
    let compliance = pair.groups[&source_group_id("Compliance")].clone();
    admin
        .post(
            &format!("community/groups/{compliance}/update"),
            &[("snippet", "edited by hand")],
        )
        .await;
    let billing =
        pair.groups[&source_group_id("Customer Service, Finance, Billing and Accounting")].clone();
    admin
        .post(
            &format!("community/groups/{billing}/removeUsers"),
            &[("users", "jones.morris")],
        )
        .await;
    // A web map pointed back at the source's feature service.
    let map = target_item(STEWART_WEB_MAP);
    let mut data = admin.get(&format!("content/items/{map}/data")).await;
    assert_eq!(
        data["operationalLayers"][0]["itemId"],
        target_item(NV_FEATURE_SERVICE)
    );
    data["operationalLayers"][0]["itemId"] = NV_FEATURE_SERVICE.into();
    admin
        .post(
            &format!("content/users/johnson.stewart/items/{map}/update"),
            &[("text", &data.to_string())],
        )
        .await;
    // A relationship removed.
    let (ks, ks_csv) = (target_item(KS_FEATURE_SERVICE), target_item(KS_CSV));
    admin
        .post(
            "content/users/smith.collins/deleteRelationship",
            &[
                ("originItemId", &ks),
                ("destinationItemId", &ks_csv),
                ("relationshipType", "Service2Data"),
            ],
        )
        .await;

    let report = verify::verify(pair.settings.clone())
        .await
        .expect("verify runs");
    let outcome = |kind: ObjectKind, id: &str| {
        report
            .object(kind, id)
            .unwrap_or_else(|| panic!("{id} is in the report:\n{report}"))
            .outcome
            .clone()
    };
    let fields = |kind: ObjectKind, id: &str| {
        outcome(kind, id)
            .fields()
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
    };

    assert_eq!(
        fields(ObjectKind::Item, AR_FEATURE_SERVICE),
        ["title"],
        "{report}"
    );
    match outcome(ObjectKind::Item, AR_FEATURE_SERVICE) {
        Outcome::Differ { differences } => {
            assert_eq!(
                (
                    differences[0].source.as_str(),
                    differences[0].target.as_str()
                ),
                ("AR", "AR (edited)")
            );
        }
        other => panic!("the edited title must differ, got {other:?}"),
    }
    assert_eq!(fields(ObjectKind::Item, FL_CSV), ["data"], "{report}");
    assert!(
        matches!(outcome(ObjectKind::Item, SET1_PDF), Outcome::Missing { .. }),
        "the deleted item is missing:\n{report}"
    );
    assert_eq!(
        fields(ObjectKind::Group, &source_group_id("Compliance")),
        ["snippet"],
        "{report}"
    );
    assert_eq!(
        fields(
            ObjectKind::Group,
            &source_group_id("Customer Service, Finance, Billing and Accounting")
        ),
        ["members"],
        "{report}"
    );
    assert_eq!(
        fields(ObjectKind::Item, STEWART_WEB_MAP),
        ["data", "leftoverReferences"],
        "{report}"
    );
    match outcome(ObjectKind::Item, STEWART_WEB_MAP) {
        Outcome::Differ { differences } => {
            let leftover = differences
                .iter()
                .find(|d| d.field == "leftoverReferences")
                .unwrap();
            assert_eq!(leftover.target, NV_FEATURE_SERVICE);
            let data = differences.iter().find(|d| d.field == "data").unwrap();
            assert!(
                data.source.contains(&target_item(NV_FEATURE_SERVICE)),
                "{data:?}"
            );
            assert!(data.target.contains(NV_FEATURE_SERVICE), "{data:?}");
        }
        other => panic!("the web map must differ, got {other:?}"),
    }
    assert_eq!(
        fields(ObjectKind::Item, KS_FEATURE_SERVICE),
        ["relationships"],
        "{report}"
    );

    // Everything else is untouched and still equal.
    assert_counts(&report, ObjectKind::User, 11, 0, 0);
    assert_counts(&report, ObjectKind::Group, 2, 2, 0);
    assert_counts(&report, ObjectKind::Folder, 17, 0, 0);
    assert_counts(&report, ObjectKind::Item, 44, 4, 1);
    assert!(!report.is_ok());
    assert_eq!(report.status, "differences");
    drop((pair.source, pair.dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_item_never_migrated_is_missing_and_an_unreadable_one_is_an_error() {
    let (source, target) = common::sample_pair(Faults::default()).await;
    source.set_faults(Faults {
        broken_items: vec![SET1_PDF.to_string()],
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(dir.path(), &source, &target, "");
    let summary = engine::run(settings.clone(), std::future::pending())
        .await
        .expect("run");
    assert_eq!(summary.failed, 1, "the broken item fails alone");

    // Now a migrated item cannot be read either.
    source.set_faults(Faults {
        broken_items: vec![SET1_PDF.to_string(), FL_CSV.to_string()],
        ..Faults::default()
    });
    let report = verify::verify(settings).await.expect("verify runs");
    match &report
        .object(ObjectKind::Item, SET1_PDF)
        .expect("the failed item is reported")
        .outcome
    {
        Outcome::Missing { reason } => {
            assert!(
                reason.contains("never migrated") && reason.contains("failed"),
                "{reason}"
            );
            assert!(
                reason.contains("simulated broken item"),
                "the task's error is shown: {reason}"
            );
        }
        other => panic!("an item that was never migrated is missing, got {other:?}"),
    }
    let unreadable = report.object(ObjectKind::Item, FL_CSV).expect("reported");
    match &unreadable.outcome {
        Outcome::Error { error } => assert!(error.contains("simulated broken item"), "{error}"),
        other => panic!("an unreadable item is an error, got {other:?}"),
    }
    assert_eq!(
        unreadable.target_id.as_deref().map(str::len),
        Some(32),
        "the mapped target id is shown"
    );
    let items = report.summary(ObjectKind::Item);
    assert_eq!(
        (items.equal, items.differ, items.missing, items.error),
        (47, 0, 1, 1),
        "{report}"
    );
    assert!(!report.is_ok());
    let text = report.to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("- ") && l.contains(SET1_PDF)),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("! ") && l.contains(FL_CSV)),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_refuses_a_state_file_of_another_pair_or_none_at_all() {
    let pair = migrated_sample().await;
    let other = SimServer::start(sample_org::target(), Default::default())
        .await
        .expect("starts");
    let elsewhere = common::settings(pair.dir.path(), &pair.source, &other, "");
    match verify::verify(elsewhere).await {
        Err(error @ verify::VerifyError::WrongPair { .. }) => {
            assert!(
                error.to_string().contains(other.url()),
                "names the portal signed in to: {error}"
            )
        }
        other => panic!(
            "a state file of another migration must be refused, got {:?}",
            other.map(|r| r.status)
        ),
    }
    let empty = tempfile::tempdir().unwrap();
    let nothing = common::settings(empty.path(), &pair.source, &pair.target, "");
    assert!(
        matches!(
            verify::verify(nothing).await,
            Err(verify::VerifyError::Store(_))
        ),
        "no state file: nothing to verify"
    );
}

async fn run_verify(config: &Path, json: bool) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_portal-migrate"));
    command
        .arg("verify")
        .arg("--config")
        .arg(config)
        .env(common::SOURCE_PASSWORD_ENV, common::ADMIN_PASSWORD)
        .env(common::TARGET_PASSWORD_ENV, common::ADMIN_PASSWORD)
        .env("RUST_LOG", "warn");
    if json {
        command.arg("--json");
    }
    command.output().await.expect("the binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_verify_command_exits_0_when_equal_and_1_naming_what_differs() {
    let pair = migrated_sample().await;
    let config = common::write_config(pair.dir.path(), &pair.source, &pair.target, "");

    let equal = run_verify(&config, false).await;
    let stdout = String::from_utf8_lossy(&equal.stdout);
    assert_eq!(
        equal.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&equal.stderr)
    );
    assert!(stdout.contains("ok: all 81 objects are equal"), "{stdout}");

    let admin = Admin::sign_in(&pair.target).await;
    let ar = pair.items[AR_FEATURE_SERVICE].clone();
    admin
        .post(
            &format!("content/users/brown.rogers/items/{ar}/update"),
            &[("title", "AR (edited)")],
        )
        .await;

    let differs = run_verify(&config, false).await;
    let stdout = String::from_utf8_lossy(&differs.stdout);
    assert_eq!(differs.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|line| line.starts_with("* "))
        .unwrap_or_else(|| panic!("a line for the differing item:\n{stdout}"));
    assert!(
        line.contains(AR_FEATURE_SERVICE) && line.contains(&ar),
        "{line}"
    );
    assert!(
        line.contains("title") && line.contains("AR (edited)"),
        "{line}"
    );
    assert_eq!(
        stdout.lines().filter(|line| line.starts_with("* ")).count(),
        1,
        "{stdout}"
    );

    let as_json = run_verify(&config, true).await;
    assert_eq!(as_json.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&as_json.stdout).expect("--json prints JSON");
    assert_eq!(report["status"], "differences");
    let item = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["source_id"] == AR_FEATURE_SERVICE)
        .unwrap();
    assert_eq!(item["outcome"], "differ");
    assert_eq!(item["differences"][0]["field"], "title");

    // A configuration that cannot work is a fatal error, not a difference.
    let broken = pair.dir.path().join("broken.toml");
    std::fs::write(&broken, "[source]\nurl = 'not a url'\n").unwrap();
    assert_eq!(run_verify(&broken, false).await.status.code(), Some(2));
}
