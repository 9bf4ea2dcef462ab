//! The configuration an operator writes: defaults from config/default.toml, the shipped
//! example, environment overrides, relative paths, and, above all, that every mistake is
//! reported with the key, where it was set and how to fix it, without ever showing a password.

use std::collections::HashMap;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use portal_migrate::settings::{
    AccessTranslation, ExistingPolicy, LogFormat, PasswordPolicy, Settings, SettingsError,
    Synchronous,
};

const SOURCE_PASSWORD: &str = "Sup3r-Secret-Source-pw!";
const TARGET_PASSWORD: &str = "Sup3r-Secret-Target-pw!";
const FILE_PASSWORD: &str = "Sup3r-Secret-File-pw!";
const NEW_USER_PASSWORD: &str = "Sup3r-Secret-NewUser-pw!";
const SECRETS: [&str; 4] = [
    SOURCE_PASSWORD,
    TARGET_PASSWORD,
    FILE_PASSWORD,
    NEW_USER_PASSWORD,
];

/// The least a working config needs: both portals with a password source.
const MINIMAL: &str = r#"
[source]
url = "https://staging.example.com/portal/"
username = "src_admin"
password_env = "SRC_PW"

[target]
url = "https://gis.example.com/portal"
username = "tgt_admin"
password_env = "TGT_PW"
"#;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn passwords() -> HashMap<String, String> {
    env(&[
        ("SRC_PW", SOURCE_PASSWORD),
        ("TGT_PW", TARGET_PASSWORD),
        ("NEW_USER_PW", NEW_USER_PASSWORD),
    ])
}

/// A config directory holding `config.toml` and, for the password-file cases, `secret.pw`.
struct ConfigDir {
    dir: tempfile::TempDir,
}

impl ConfigDir {
    fn new() -> ConfigDir {
        ConfigDir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn write_config(&self, text: &str) -> PathBuf {
        let path = self.config_path();
        fs::write(&path, text).unwrap();
        path
    }

    fn write_password_file(&self, name: &str, mode: u32) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, format!("{FILE_PASSWORD}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn load(&self, text: &str, env: &HashMap<String, String>) -> Result<Settings, SettingsError> {
        let path = self.write_config(text);
        Settings::load_with_env(Some(&path), env)
    }
}

/// MINIMAL with `extra` appended, or with a section replaced when `extra` redefines it.
fn minimal_plus(extra: &str) -> String {
    format!("{MINIMAL}\n{extra}")
}

#[test]
fn a_minimal_file_gets_every_default_that_default_toml_documents() {
    let dir = ConfigDir::new();
    let settings = dir.load(MINIMAL, &passwords()).unwrap();

    assert_eq!(
        settings.config_path.as_deref(),
        Some(dir.config_path().as_path())
    );

    for (portal, url, username, password) in [
        (
            &settings.source,
            "https://staging.example.com/portal",
            "src_admin",
            SOURCE_PASSWORD,
        ),
        (
            &settings.target,
            "https://gis.example.com/portal",
            "tgt_admin",
            TARGET_PASSWORD,
        ),
    ] {
        assert_eq!(portal.url.as_str(), url, "trailing slash trimmed");
        assert_eq!(portal.username, username);
        assert_eq!(portal.password.expose(), password);
        assert!(!portal.allow_http);
        assert_eq!(portal.ca_file, None);
        assert!(!portal.accept_invalid_certs);
        assert_eq!(portal.timeout, Duration::from_secs(60));
        assert_eq!(portal.token_minutes, 60);
        assert_eq!(portal.rate_limit_rps, None, "0 rps = unlimited");
    }

    assert_eq!(settings.state.path, dir.path().join("portal-migrate.db"));
    assert_eq!(settings.state.synchronous, Synchronous::Full);
    assert_eq!(settings.state.synchronous.as_pragma(), "FULL");
    assert_eq!(settings.state.busy_timeout, Duration::from_millis(5000));

    assert_eq!(settings.workers.count, 8);
    assert_eq!(settings.workers.lease, Duration::from_secs(300));
    assert_eq!(settings.workers.shutdown_grace, Duration::from_secs(30));

    assert_eq!(settings.retry.max_attempts, 6);
    assert_eq!(settings.retry.initial_backoff, Duration::from_millis(500));
    assert_eq!(settings.retry.max_backoff, Duration::from_secs(300));
    assert_eq!(settings.retry.portal_down_pause, Duration::from_secs(30));

    let users = &settings.users;
    assert!(users.include.is_empty());
    assert_eq!(display_all(&users.exclude), ["esri_*"]);
    assert!(users.exclude_default_admin);
    assert_eq!(users.password_policy, PasswordPolicy::Generate);
    assert_eq!(
        settings.credentials_path(),
        dir.path().join("portal-migrate.credentials.csv")
    );
    assert!(users.rename.is_empty() && users.role_map.is_empty() && users.license_map.is_empty());

    let groups = &settings.groups;
    assert!(groups.include_titles.is_empty());
    assert_eq!(display_all(&groups.exclude_titles), ["Basemaps"]);
    assert_eq!(display_all(&groups.exclude_owners), ["esri_*"]);
    assert_eq!(groups.access_translation, AccessTranslation::Keep);

    let items = &settings.items;
    assert!(items.include_types.is_empty() && items.exclude_types.is_empty());
    assert!(items.include_tags.is_empty() && items.exclude_tags.is_empty());
    assert!(items.include_folders.is_empty() && items.exclude_folders.is_empty());
    assert_eq!(items.modified_after, None);
    assert_eq!(items.multipart_threshold, 16 * 1024 * 1024);
    assert_eq!(items.part_size, 8 * 1024 * 1024);

    for policy in [
        settings.existing.users,
        settings.existing.groups,
        settings.existing.folders,
        settings.existing.items,
    ] {
        assert_eq!(policy, ExistingPolicy::Adopt);
    }
    assert!(settings.references.url_map.is_empty());
    assert_eq!(settings.sync.interval, None, "0 = run once");
    assert!(!settings.sync.propagate_deletes);
    assert_eq!(
        settings.service.listen,
        Some("127.0.0.1:9464".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(settings.log.format, LogFormat::Human);
    assert_eq!(settings.log.level, "info");
}

#[test]
fn default_toml_is_what_the_binary_uses_and_comments_every_key() {
    let on_disk =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"))
            .unwrap();
    assert_eq!(on_disk, portal_migrate::settings::DEFAULT_TOML);

    // Every key line sits in a block of lines (between blank lines) that has a comment.
    let mut block_has_comment = false;
    for line in on_disk.lines().map(str::trim) {
        if line.is_empty() {
            block_has_comment = false;
        } else if line.starts_with('#') {
            block_has_comment = true;
        } else if !line.starts_with('[') {
            assert!(block_has_comment, "undocumented key: {line}");
        }
    }
    // The keys without a default are documented, commented out, in both portal sections.
    for key in ["url", "username", "password_env", "password_file"] {
        assert_eq!(
            on_disk.matches(&format!("# {key} = ")).count(),
            2,
            "{key} in [source] and [target]"
        );
    }
}

#[test]
fn the_shipped_example_loads_with_the_passwords_it_names() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let env = env(&[
        ("STAGING_PORTAL_PASSWORD", SOURCE_PASSWORD),
        ("PRODUCTION_PORTAL_PASSWORD", TARGET_PASSWORD),
        ("NEW_USER_PASSWORD", NEW_USER_PASSWORD),
    ]);
    let settings = Settings::load_with_env(Some(&path), &env).unwrap();

    assert_eq!(
        settings.source.url.host_str(),
        Some("staging-gis.example.com")
    );
    assert_eq!(settings.target.password.expose(), TARGET_PASSWORD);
    assert_eq!(
        settings.target.rate_limit_rps.map(|rps| rps.get()),
        Some(20)
    );
    assert_eq!(settings.target.timeout, Duration::from_secs(120));
    assert_eq!(
        settings.users.password_policy,
        PasswordPolicy::FromEnv(portal_migrate::secret::Secret::new(NEW_USER_PASSWORD))
    );
    assert_eq!(
        settings
            .users
            .rename
            .get("jdoe_staging")
            .map(String::as_str),
        Some("jdoe")
    );
    assert!(settings
        .users
        .exclude
        .iter()
        .any(|p| p.matches("Test_Alice")));
    assert_eq!(settings.existing.items, ExistingPolicy::Update);
    assert_eq!(settings.existing.users, ExistingPolicy::Adopt);
    assert_eq!(settings.sync.interval, Some(Duration::from_secs(86_400)));
    assert_eq!(settings.log.format, LogFormat::Json);
    assert_eq!(
        settings.references.url_map[0].0,
        "https://staging-gis.example.com/server/rest/services/Hosted",
        "the more specific mapping comes first"
    );
    assert_eq!(
        settings.credentials_path(),
        Path::new("/var/lib/portal-migrate/staging-to-production.credentials.csv")
    );

    let missing = Settings::load_with_env(Some(&path), &HashMap::new()).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("environment variable STAGING_PORTAL_PASSWORD is not set"),
        "{missing}"
    );
}

#[test]
fn environment_variables_override_the_file() {
    let dir = ConfigDir::new();
    let mut env = passwords();
    env.insert("PORTAL_MIGRATE__WORKERS__COUNT".into(), "3".into());
    env.insert(
        "PORTAL_MIGRATE__SOURCE__URL".into(),
        "https://other.example.com/arcgis".into(),
    );
    env.insert(
        "PORTAL_MIGRATE__SYNC__PROPAGATE_DELETES".into(),
        "true".into(),
    );
    env.insert("PORTAL_MIGRATE__RATE_LIMIT__SOURCE_RPS".into(), "5".into());
    // Lists are comma-separated; strings that look like numbers stay strings.
    env.insert(
        "PORTAL_MIGRATE__USERS__EXCLUDE".into(),
        "esri_*, test_*".into(),
    );
    env.insert("PORTAL_MIGRATE__TARGET__USERNAME".into(), "007".into());
    // Not our prefix (single underscore): must be ignored, not reported as an unknown key.
    env.insert("PORTAL_MIGRATE_UNRELATED".into(), "x".into());

    let settings = dir
        .load(&minimal_plus("[workers]\ncount = 5\n"), &env)
        .unwrap();
    assert_eq!(settings.workers.count, 3);
    assert_eq!(
        settings.source.url.as_str(),
        "https://other.example.com/arcgis"
    );
    assert!(settings.sync.propagate_deletes);
    assert_eq!(settings.source.rate_limit_rps.map(|rps| rps.get()), Some(5));
    assert_eq!(settings.target.rate_limit_rps, None);
    assert_eq!(display_all(&settings.users.exclude), ["esri_*", "test_*"]);
    assert_eq!(settings.target.username, "007");
}

#[test]
fn every_section_is_converted_to_typed_values() {
    let text = minimal_plus(
        r#"
[state]
synchronous = "normal"

[users]
include = ["Alice*", "bob"]
exclude = []
password_policy = "invite"
rename = { "old_name" = "new_name" }
license_map = { "creatorUT" = "creator" }

[groups]
access_translation = "notebook"

[items]
include_types = ["Web Map"]
exclude_tags = ["draft*"]
modified_after = 2024-01-31
multipart_threshold_mb = 1
part_size_mb = 2

[existing]
users = "skip"
folders = "FAIL"

[sync]
interval_secs = 600
propagate_deletes = true

[service]
enabled = false
listen = "not checked when disabled"

[log]
format = "json"
level = "portal_migrate=debug,info"
"#,
    );
    let settings = ConfigDir::new().load(&text, &passwords()).unwrap();
    assert_eq!(settings.state.synchronous.as_pragma(), "NORMAL");
    assert!(settings.users.include[0].matches("alice.smith"));
    assert!(!settings.users.include[1].matches("bobby"));
    assert!(
        settings.users.exclude.is_empty(),
        "a list replaces the default"
    );
    assert_eq!(settings.users.password_policy, PasswordPolicy::Invite);
    assert_eq!(settings.users.rename["old_name"], "new_name");
    assert_eq!(settings.users.license_map["creatorUT"], "creator");
    assert_eq!(
        settings.groups.access_translation,
        AccessTranslation::Notebook
    );
    assert_eq!(settings.items.include_types, ["Web Map"]);
    assert!(settings.items.exclude_tags[0].matches("Draft-2"));
    assert_eq!(
        settings.items.modified_after,
        Some(1_706_659_200_000),
        "a TOML date is midnight UTC, in epoch milliseconds"
    );
    assert_eq!(settings.items.multipart_threshold, 1024 * 1024);
    assert_eq!(settings.items.part_size, 2 * 1024 * 1024);
    assert_eq!(settings.existing.users, ExistingPolicy::Skip);
    assert_eq!(settings.existing.folders, ExistingPolicy::Fail);
    assert_eq!(settings.existing.groups, ExistingPolicy::Adopt);
    assert_eq!(settings.sync.interval, Some(Duration::from_secs(600)));
    assert!(settings.sync.propagate_deletes);
    assert_eq!(settings.service.listen, None);
    assert_eq!(settings.log.format, LogFormat::Json);
    assert_eq!(settings.log.level, "portal_migrate=debug,info");
}

#[test]
fn the_environment_alone_is_a_complete_configuration() {
    let mut env = passwords();
    for (key, value) in [
        (
            "PORTAL_MIGRATE__SOURCE__URL",
            "https://a.example.com/portal",
        ),
        ("PORTAL_MIGRATE__SOURCE__USERNAME", "a"),
        ("PORTAL_MIGRATE__SOURCE__PASSWORD_ENV", "SRC_PW"),
        (
            "PORTAL_MIGRATE__TARGET__URL",
            "https://b.example.com/portal",
        ),
        ("PORTAL_MIGRATE__TARGET__USERNAME", "b"),
        ("PORTAL_MIGRATE__TARGET__PASSWORD_ENV", "TGT_PW"),
    ] {
        env.insert(key.into(), value.into());
    }
    let settings = Settings::load_with_env(None, &env).unwrap();
    assert_eq!(settings.config_path, None);
    assert_eq!(settings.target.password.expose(), TARGET_PASSWORD);
    assert_eq!(settings.state.path, Path::new("portal-migrate.db"));
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let dir = ConfigDir::new();
    fs::create_dir(dir.path().join("secrets")).unwrap();
    dir.write_password_file("secrets/target.pw", 0o600);
    fs::write(dir.path().join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    let text = r#"
[source]
url = "https://staging.example.com/portal"
username = "src_admin"
password_env = "SRC_PW"
ca_file = "ca.pem"

[target]
url = "https://gis.example.com/portal"
username = "tgt_admin"
password_file = "secrets/target.pw"

[state]
path = "state/migration.sqlite"

[users]
credentials_file = "out/passwords.csv"
"#;
    let settings = dir.load(text, &passwords()).unwrap();
    assert_eq!(
        settings.state.path,
        dir.path().join("state/migration.sqlite")
    );
    assert_eq!(settings.source.ca_file, Some(dir.path().join("ca.pem")));
    assert_eq!(
        settings.credentials_path(),
        dir.path().join("out/passwords.csv")
    );
    assert_eq!(
        settings.target.password.expose(),
        FILE_PASSWORD,
        "read from the file, final newline dropped"
    );

    // Without an explicit credentials file, it goes beside the (relative) state file.
    let settings = dir
        .load(
            &minimal_plus("[state]\npath = \"run/x.db\"\n"),
            &passwords(),
        )
        .unwrap();
    assert_eq!(
        settings.credentials_path(),
        dir.path().join("run/x.credentials.csv")
    );

    // from_toml_str resolves against the base directory it is given.
    let settings = Settings::from_toml_str(MINIMAL, Path::new("/srv/demo"), &passwords()).unwrap();
    assert_eq!(
        settings.state.path,
        Path::new("/srv/demo/portal-migrate.db")
    );
}

#[test]
fn loopback_portals_may_use_plain_http_and_self_signed_certificates() {
    let accepted = [
        r#"
[source]
url = "http://127.0.0.1:8443/portal"
username = "a"
password_env = "SRC_PW"
[target]
url = "https://localhost:9000/portal"
username = "b"
password_env = "TGT_PW"
accept_invalid_certs = true
"#,
        r#"
[source]
url = "http://[::1]:8080/portal"
username = "a"
password_env = "SRC_PW"
[target]
url = "http://gis.internal.example.com/portal"
username = "b"
password_env = "TGT_PW"
allow_http = true
"#,
    ];
    for text in accepted {
        let settings = ConfigDir::new().load(text, &passwords()).unwrap();
        assert!(settings.source.url.scheme() == "http");
    }
}

/// One bad configuration and what its message must contain. `{file}` stands for the config
/// file's path, `{dir}` for its directory.
struct BadCase {
    name: &'static str,
    toml: String,
    env: &'static [(&'static str, &'static str)],
    /// A password file to create in the config directory: (name, mode).
    password_file: Option<(&'static str, u32)>,
    expected: &'static [&'static str],
}

fn bad(name: &'static str, toml: impl Into<String>, expected: &'static [&'static str]) -> BadCase {
    BadCase {
        name,
        toml: toml.into(),
        env: &[],
        password_file: None,
        expected,
    }
}

fn portal_section(side: &str, body: &str) -> String {
    let (username, other_side, other_env) = match side {
        "source" => ("a", "target", "TGT_PW"),
        _ => ("b", "source", "SRC_PW"),
    };
    format!(
        "[{side}]\nusername = \"{username}\"\n{body}\n\n[{other_side}]\nurl = \"https://other.example.com/portal\"\nusername = \"x\"\npassword_env = \"{other_env}\"\n"
    )
}

fn bad_cases() -> Vec<BadCase> {
    vec![
        bad(
            "TOML syntax error",
            "[source]\nurl = \"https://a/portal\"\nusername = = \"x\"\n",
            &["{file}: TOML syntax error at line 3"],
        ),
        bad(
            "unknown section [worker]",
            minimal_plus("[worker]\ncount = 8\n"),
            &["{file}: unknown key 'worker'", "did you mean 'workers'", "remove it or correct its spelling"],
        ),
        bad(
            "misspelled top-level section",
            minimal_plus("[sevrice]\nenabled = false\n"),
            &["{file}: unknown key 'sevrice'", "did you mean 'service'"],
        ),
        bad(
            "misspelled key inside a section",
            minimal_plus("[workers]\ncuont = 8\n"),
            &["{file}: unknown key 'workers.cuont'", "did you mean 'count'"],
        ),
        bad(
            "missing source.url",
            portal_section("source", "password_env = \"SRC_PW\""),
            &["source.url: is required", "PORTAL_MIGRATE__SOURCE__URL"],
        ),
        bad(
            "bad URL",
            portal_section("source", "url = \"htp://x\"\npassword_env = \"SRC_PW\""),
            &["{file}: source.url: 'htp://x' is not a valid URL (expected https://host/portal)"],
        ),
        bad(
            "http to a remote host",
            portal_section("target", "url = \"http://gis.example.com/portal\"\npassword_env = \"TGT_PW\""),
            &["{file}: target.url: plain http:// is only allowed for loopback hosts; use https:// or set target.allow_http = true"],
        ),
        bad(
            "both password_env and password_file",
            portal_section("source", "url = \"https://a.example.com/portal\"\npassword_env = \"SRC_PW\"\npassword_file = \"pw\""),
            &["source: set exactly one of password_env or password_file (both are set)"],
        ),
        bad(
            "neither password_env nor password_file",
            portal_section("source", "url = \"https://a.example.com/portal\""),
            &["source: set exactly one of password_env or password_file (neither is set)", "password_env = \"SOURCE_PORTAL_PASSWORD\""],
        ),
        bad(
            "password environment variable unset",
            portal_section("source", "url = \"https://a.example.com/portal\"\npassword_env = \"NOT_EXPORTED_PW\""),
            &["{file}: source.password_env: environment variable NOT_EXPORTED_PW is not set", "export it"],
        ),
        bad(
            "password file missing",
            portal_section("target", "url = \"https://b.example.com/portal\"\npassword_file = \"missing.pw\""),
            &["{file}: target.password_file: {dir}/missing.pw not found", "chmod 600"],
        ),
        BadCase {
            password_file: Some(("open.pw", 0o644)),
            ..bad(
                "password file readable by others",
                portal_section("target", "url = \"https://b.example.com/portal\"\npassword_file = \"open.pw\""),
                &["target.password_file: {dir}/open.pw is readable by group or others (mode 0644); run chmod 600 {dir}/open.pw"],
            )
        },
        bad(
            "workers.count = 0",
            minimal_plus("[workers]\ncount = 0\n"),
            &["{file}: workers.count: 0 is out of range (expected 1 to 256)"],
        ),
        bad(
            "workers.count of the wrong type",
            minimal_plus("[workers]\ncount = \"eight\"\n"),
            &["{file}: workers.count: expected", "found string \"eight\""],
        ),
        bad(
            "synchronous = maybe",
            minimal_plus("[state]\nsynchronous = \"maybe\"\n"),
            &["{file}: state.synchronous: 'maybe' is not a valid value (expected one of \"full\", \"normal\")"],
        ),
        bad(
            "bad listen address",
            minimal_plus("[service]\nlisten = \"localhost\"\n"),
            &["service.listen: 'localhost' is not a socket address (expected IP:PORT, e.g. 127.0.0.1:9464"],
        ),
        bad(
            "bad modified_after date",
            minimal_plus("[items]\nmodified_after = \"2024-02-30\"\n"),
            &["items.modified_after: '2024-02-30' is not an RFC 3339 date or date-time (expected e.g. 2024-01-31"],
        ),
        bad(
            "accept_invalid_certs for a remote host",
            portal_section("target", "url = \"https://gis.example.com/portal\"\npassword_env = \"TGT_PW\"\naccept_invalid_certs = true"),
            &["{file}: target.accept_invalid_certs: true is only allowed for loopback hosts, not gis.example.com", "set target.ca_file"],
        ),
        bad(
            "password_policy env without password_env",
            minimal_plus("[users]\npassword_policy = \"env\"\n"),
            &["^users.password_env: is required with users.password_policy = \"env\""],
        ),
        bad(
            "password_env without password_policy env",
            minimal_plus("[users]\npassword_env = \"NEW_USER_PW\"\n"),
            &["users.password_env: is only used with users.password_policy = \"env\"", "set password_policy = \"env\""],
        ),
        bad(
            "unknown existing policy",
            minimal_plus("[existing]\nitems = \"merge\"\n"),
            &["{file}: existing.items: 'merge' is not a valid value (expected one of \"adopt\", \"update\", \"skip\", \"fail\")"],
        ),
        bad(
            "bad log level",
            minimal_plus("[log]\nlevel = \"loud[\"\n"),
            &["log.level: 'loud[' is not a valid log filter", "use a level"],
        ),
        bad(
            "max backoff shorter than the first backoff",
            minimal_plus("[retry]\ninitial_backoff_ms = 5000\nmax_backoff_secs = 2\n"),
            &["retry.max_backoff_secs: 2 s is shorter than retry.initial_backoff_ms (5000 ms)"],
        ),
        bad(
            "two users renamed to one",
            minimal_plus("[users]\nrename = { \"a\" = \"same\", \"b\" = \"SAME\" }\n"),
            &["users.rename: 'a' and 'b' are both renamed to"],
        ),
        bad(
            "empty exclude pattern",
            minimal_plus("[users]\nexclude = [\"esri_*\", \"\"]\n"),
            &["users.exclude: entry 2 is empty"],
        ),
        BadCase {
            env: &[("PORTAL_MIGRATE__WORKERS__COUNT", "999")],
            ..bad(
                "bad value from the environment",
                MINIMAL,
                &["environment variable PORTAL_MIGRATE__WORKERS__COUNT: workers.count: 999 is out of range (expected 1 to 256)"],
            )
        },
        BadCase {
            env: &[("PORTAL_MIGRATE__WORKER__COUNT", "4")],
            ..bad(
                "unknown key from the environment",
                MINIMAL,
                &["environment variable PORTAL_MIGRATE__WORKER__COUNT: unknown key 'worker'", "did you mean 'workers'"],
            )
        },
        bad(
            "credentials in the URL",
            portal_section("source", &format!("url = \"https://admin:{SOURCE_PASSWORD}@a.example.com/portal\"\npassword_env = \"SRC_PW\"")),
            &["source.url: must not contain a username or password"],
        ),
        bad(
            "a password where a variable name belongs",
            portal_section("source", &format!("url = \"https://a.example.com/portal\"\npassword_env = \"{SOURCE_PASSWORD}\"")),
            &["source.password_env: must be the NAME of an environment variable", "not the password itself"],
        ),
        bad(
            "unparseable URL with credentials",
            portal_section("source", &format!("url = \"htps://admin:{SOURCE_PASSWORD}@a.example.com/portal\"\npassword_env = \"SRC_PW\"")),
            &["source.url: 'htps://***@a.example.com/portal' is not a valid URL"],
        ),
    ]
}

/// Runs a bad case with every secret present in the environment, returning the error.
fn run_bad_case(case: &BadCase) -> (SettingsError, String) {
    let dir = ConfigDir::new();
    if let Some((name, mode)) = case.password_file {
        dir.write_password_file(name, mode);
    }
    let mut env = passwords();
    for (key, value) in case.env {
        env.insert(key.to_string(), value.to_string());
    }
    let result = dir.load(&case.toml, &env);
    let error = match result {
        Ok(settings) => panic!("{}: loaded instead of failing: {settings:?}", case.name),
        Err(error) => error,
    };
    let message = error.to_string();
    for expected in case.expected {
        let expected = expected
            .replace(
                "{file}",
                &format!("config file {}", dir.config_path().display()),
            )
            .replace("{dir}", &dir.path().display().to_string());
        // A leading ^ means the message must start with it (no misattributed origin prefix).
        let found = match expected.strip_prefix('^') {
            Some(start) => message.starts_with(start),
            None => message.contains(&expected),
        };
        assert!(
            found,
            "{}:\n  message:  {message}\n  expected: {expected}",
            case.name
        );
    }
    (error, message)
}

#[test]
fn every_mistake_names_the_key_the_source_and_the_fix() {
    let cases = bad_cases();
    assert!(cases.len() >= 15);
    for case in &cases {
        run_bad_case(case);
    }
}

#[test]
fn a_missing_config_file_is_named() {
    let dir = ConfigDir::new();
    let path = dir.path().join("nope.toml");
    let error = Settings::load_with_env(Some(&path), &passwords()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("config file {} not found", path.display())
    );
}

#[test]
fn errors_from_toml_text_say_configuration() {
    let error = Settings::from_toml_str(
        &minimal_plus("[workers]\ncount = 0\n"),
        Path::new("/tmp"),
        &passwords(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "configuration: workers.count: 0 is out of range (expected 1 to 256)"
    );
    assert_eq!(error.key(), Some("workers.count"));
}

#[test]
fn passwords_never_appear_in_debug_output_or_error_messages() {
    let dir = ConfigDir::new();
    dir.write_password_file("target.pw", 0o600);
    let text = r#"
[source]
url = "https://a.example.com/portal"
username = "a"
password_env = "SRC_PW"
[target]
url = "https://b.example.com/portal"
username = "b"
password_file = "target.pw"
[users]
password_policy = "env"
password_env = "NEW_USER_PW"
"#;
    let settings = dir.load(text, &passwords()).unwrap();
    assert_eq!(settings.target.password.expose(), FILE_PASSWORD);
    let debug = format!("{settings:?} {:#?}", settings.clone());
    assert!(debug.contains("***"));
    for secret in SECRETS {
        assert!(!debug.contains(secret), "Debug shows {secret}");
    }

    for case in bad_cases() {
        let (error, message) = run_bad_case(&case);
        let everything = format!("{message} {error:?}");
        for secret in SECRETS {
            assert!(
                !everything.contains(secret),
                "{}: shows {secret}: {everything}",
                case.name
            );
        }
    }
}

fn display_all(patterns: &[portal_migrate::settings::Pattern]) -> Vec<String> {
    patterns.iter().map(ToString::to_string).collect()
}

#[test]
fn inspection_commands_load_without_the_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        r#"
[source]
url = "https://source.example.com/portal"
username = "admin"
password_env = "PM_TEST_INSPECTION_UNSET_SOURCE_PW"
[target]
url = "https://target.example.com/portal"
username = "admin"
password_env = "PM_TEST_INSPECTION_UNSET_TARGET_PW"
[state]
path = "migration.db"
"#,
    )
    .unwrap();
    let full = portal_migrate::settings::Settings::load(&path)
        .unwrap_err()
        .to_string();
    assert!(
        full.contains("PM_TEST_INSPECTION_UNSET_SOURCE_PW"),
        "{full}"
    );
    let settings = portal_migrate::settings::Settings::load_for_inspection(&path)
        .expect("status and report need no passwords");
    assert_eq!(settings.state.path, dir.path().join("migration.db"));
    assert!(settings.source.password.is_empty());
}
