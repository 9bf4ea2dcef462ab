//! Secrets stay secret: passwords and tokens never appear in the state file, the logs (at
//! trace level, human and JSON), error messages or the report; generated passwords go only
//! to the credentials file, which only its owner can read; TLS certificates are verified by
//! default and a private authority can be trusted with `ca_file`.

mod common;

use std::path::Path;
use std::process::Output;

use portal_migrate::fixture::Fixture;
use portal_migrate::sim::generate::{generate, generate_target, GenerateSpec};
use portal_migrate::sim::{SimOptions, SimServer};

const SOURCE_ADMIN_PASSWORD: &str = "Src-Adm1n-Zebra-7731-Pw";
const TARGET_ADMIN_PASSWORD: &str = "Tgt-Adm1n-Quokka-4402-Pw";
/// The source users' own passwords: a migration never needs them.
const USER_PASSWORD: &str = "Usr-Ordinary-Walrus-5519";
const WRONG_PASSWORD: &str = "Wrong-Pw-Must-Not-Leak-8812";

fn spec() -> GenerateSpec {
    GenerateSpec {
        admin_password: SOURCE_ADMIN_PASSWORD.into(),
        user_password: USER_PASSWORD.into(),
        .."seed=23,users=4,groups=2,folders-per-user=1,items-per-folder=3,members-per-group=2,file-bytes=256"
            .parse()
            .expect("valid spec")
    }
}

fn target_fixture() -> Fixture {
    generate_target(&GenerateSpec {
        admin_password: TARGET_ADMIN_PASSWORD.into(),
        ..spec()
    })
}

async fn pair(tls_target: bool) -> (SimServer, SimServer) {
    let source = SimServer::start(generate(&spec()), SimOptions::default())
        .await
        .unwrap();
    let target = SimServer::start(
        target_fixture(),
        SimOptions {
            tls: tls_target,
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    (source, target)
}

/// The real binary with the distinctive passwords, logging everything.
fn run(config: &Path, target_password: &str, extra_args: &[&str]) -> Output {
    let mut command = common::migrate_command(config);
    command
        .args(extra_args)
        .env(common::SOURCE_PASSWORD_ENV, SOURCE_ADMIN_PASSWORD)
        .env(common::TARGET_PASSWORD_ENV, target_password)
        .env("RUST_LOG", "trace");
    command.output().expect("the binary runs")
}

/// Every file of the directory (state file, its WAL, lock, credentials, config), by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            found.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            ));
        }
    }
    found
}

fn assert_absent(secrets: &[String], haystack: &[u8], what: &str) {
    for secret in secrets {
        assert!(!secret.is_empty());
        let found = haystack
            .windows(secret.len())
            .any(|window| window == secret.as_bytes());
        let shown: String = secret.chars().take(6).collect();
        assert!(!found, "a secret ({shown}…) appears in {what}");
    }
}

/// (username, password) rows of the credentials file.
fn credentials(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(','))
        .map(|(user, password)| (user.to_string(), password.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passwords_and_tokens_appear_nowhere_but_the_credentials_file() {
    let mut secrets: Vec<String> = [
        SOURCE_ADMIN_PASSWORD,
        TARGET_ADMIN_PASSWORD,
        USER_PASSWORD,
        WRONG_PASSWORD,
    ]
    .map(String::from)
    .to_vec();
    let mut checked = Vec::new();

    for log_format in [None, Some("json")] {
        let (source, target) = pair(false).await;
        let dir = tempfile::tempdir().unwrap();
        let config = common::write_config(dir.path(), &source, &target, "");
        let args: Vec<&str> = log_format
            .map(|f| vec!["--log-format", f])
            .unwrap_or_default();
        let output = run(&config, TARGET_ADMIN_PASSWORD, &args);
        let log = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(output.status.success(), "the migration runs:\n{log}");
        assert!(
            log.lines().count() > 100,
            "trace logging is on ({} lines)",
            log.lines().count()
        );
        if log_format == Some("json") {
            assert!(log.lines().any(|l| l.starts_with('{')), "JSON log lines");
        }

        let mut tokens = source.issued_tokens();
        tokens.extend(target.issued_tokens());
        assert!(tokens.len() >= 2, "the simulators issued tokens");
        secrets.extend(tokens);

        // The credentials file: owner-only, one working password per created user.
        let credentials_path = dir.path().join("state.credentials.csv");
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&credentials_path)
                .unwrap()
                .permissions()
                .mode()
        };
        assert_eq!(
            mode & 0o777,
            0o600,
            "the credentials file is readable by its owner only"
        );
        let rows = credentials(&credentials_path);
        let source_fixture = generate(&spec());
        let created = common::migrated_users(&source_fixture);
        let snapshot = target.snapshot();
        for user in &created {
            let row = rows
                .iter()
                .rev()
                .find(|(name, _)| name == &user.username)
                .unwrap_or_else(|| panic!("a password for {}", user.username));
            let account = snapshot
                .users
                .iter()
                .find(|u| u.username == user.username)
                .expect("created");
            assert_eq!(
                account.password, row.1,
                "the password written is the one in force"
            );
        }
        let generated: Vec<String> = rows.into_iter().map(|(_, password)| password).collect();
        secrets.extend(generated.iter().cloned());

        // A status report as a person reads it, and as JSON.
        let mut status = std::process::Command::new(env!("CARGO_BIN_EXE_portal-migrate"));
        status
            .args(["status", "--json", "--config"])
            .arg(&config)
            .env(common::SOURCE_PASSWORD_ENV, SOURCE_ADMIN_PASSWORD)
            .env(common::TARGET_PASSWORD_ENV, TARGET_ADMIN_PASSWORD);
        let status = status.output().unwrap();

        for (name, bytes) in files(dir.path()) {
            if name.ends_with(".credentials.csv") {
                // Generated passwords live there by design; the admins' never do.
                assert_absent(&secrets[..4], &bytes, &name);
                continue;
            }
            checked.push((name, bytes));
        }
        checked.push(("the trace log".into(), output.stderr));
        checked.push(("status --json".into(), status.stdout));
    }

    // A wrong password: the error message names the problem, never a password.
    let (source, target) = pair(false).await;
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &source, &target, "");
    let refused = run(&config, WRONG_PASSWORD, &[]);
    let message = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(!refused.status.success());
    assert!(message.contains("sign-in as 'admin' failed"), "{message}");
    checked.push(("the wrong-password error".into(), refused.stderr));

    // The demo's report and state file, with the sample organisation's passwords.
    let demo_dir = tempfile::tempdir().unwrap();
    let demo = std::process::Command::new(env!("CARGO_BIN_EXE_portal-migrate"))
        .args(["demo", "--latency-ms", "0", "--dir"])
        .arg(demo_dir.path())
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let sample = ["admin-sample-pw".to_string(), "user-sample-pw".to_string()];
    assert_absent(&sample, &demo.stdout, "the demo report");
    assert_absent(&sample, &demo.stderr, "the demo log");
    for (name, bytes) in files(demo_dir.path()) {
        if !name.ends_with(".credentials.csv") {
            assert_absent(&sample, &bytes, &format!("the demo's {name}"));
        }
    }

    for (what, bytes) in &checked {
        assert_absent(&secrets, bytes, what);
    }
    println!(
        "secrets: {} distinct secrets (passwords, tokens, generated passwords) absent from {} files and outputs",
        secrets.len(),
        checked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_is_verified_by_default_and_a_private_authority_can_be_trusted() {
    let (source, target) = pair(true).await;
    assert!(target.url().starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &source, &target, "");

    let refused = run(&config, TARGET_ADMIN_PASSWORD, &[]);
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "an untrusted certificate is refused"
    );
    assert!(
        message.contains("TLS certificate not trusted") && message.contains("ca_file"),
        "the message says what is wrong and how to fix it: {message}"
    );
    assert!(
        target.snapshot() == target_fixture(),
        "nothing was written to the target"
    );

    let ca = dir.path().join("private-ca.pem");
    std::fs::write(&ca, target.ca_certificate_pem().expect("TLS mode has a CA")).unwrap();
    let mut command = common::migrate_command(&config);
    command
        .env(common::SOURCE_PASSWORD_ENV, SOURCE_ADMIN_PASSWORD)
        .env(common::TARGET_PASSWORD_ENV, TARGET_ADMIN_PASSWORD)
        .env("PORTAL_MIGRATE__TARGET__CA_FILE", &ca);
    let trusted = command.output().unwrap();
    assert!(
        trusted.status.success(),
        "with ca_file the migration runs: {}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    let after = target.snapshot();
    let ids = common::assert_faithful_clone(&generate(&spec()), &target_fixture(), &after);
    common::assert_state_complete(&dir.path().join("state.db"), &generate(&spec()), &ids);
}
