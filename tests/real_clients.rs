//! The simulator checked by clients nobody on this project wrote: the real arcgis-rest-js
//! (`@esri/arcgis-rest-request` + `@esri/arcgis-rest-portal` 4.10.2, Node) and the real ArcGIS
//! API for Python (2.4.x). Each test starts a simulator in-process on loopback, runs one of the
//! scripts in `tests/clients/` against it as a child process, and checks every result the
//! script prints against the fixture the simulator was loaded with (and, for writes, against
//! the simulator's own state).
//!
//! The clients are installed on first use into `<target>/clients/` (npm ci; a venv with pip),
//! under a lock file so that parallel tests and parallel `cargo test` runs install once, and
//! with a stamp file so that later runs skip the install until the pinned versions change.
//! A machine without Node 20+/npm/Python 3 or without the package registries fails these tests
//! with a message saying so: they never pass without having run a client.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use portal_migrate::fixture::{sample_org, Fixture, Item, ItemData};
use portal_migrate::sim::generate::{generate, GenerateSpec};
use portal_migrate::sim::{SimOptions, SimServer, Stats};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The 11 ordinary users of the sample source org: what `!esri_ & !admin` must return.
const SAMPLE_USERS: [&str; 11] = [
    "brown.rogers",
    "davis.reed",
    "johnson.stewart",
    "jones.morris",
    "miller.cook",
    "moore.bell",
    "project_archiver",
    "smith.collins",
    "taylor.murphy",
    "williams.sanchez",
    "wilson.morgan",
];

/// The 4 groups `!owner:esri_* & !Basemaps` must return on the sample source org.
const SAMPLE_GROUPS: [&str; 4] = [
    "Central Services",
    "Compliance",
    "Customer Service, Finance, Billing and Accounting",
    "Demographic Content",
];

const USER_QUERY: &str = "!esri_ & !admin";
const GROUP_QUERY: &str = "!owner:esri_* & !Basemaps";
const ROGERS: &str = "brown.rogers";
const ROGERS_FOLDER: &str = "Rogers_webmaps";

/// A client script that has not answered by then is hung on the simulator.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(150);
const NPM_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const PIP_TIMEOUT: Duration = Duration::from_secs(25 * 60);
/// Another process installing the same client may hold the lock this long.
const LOCK_WAIT: Duration = Duration::from_secs(30 * 60);

// ---------------------------------------------------------------------------------------------
// Provisioning

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `<target>/clients`: `CARGO_TARGET_TMPDIR` is `<target>/tmp`, and honours `CARGO_TARGET_DIR`.
fn clients_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map(Path::to_path_buf)
        .unwrap_or(tmp)
        .join("clients")
}

/// An exclusive lock between processes: a file created with `create_new`, holding our pid.
/// A lock left by a process that died (killed test run) is taken over.
struct InstallLock {
    path: PathBuf,
}

impl InstallLock {
    fn acquire(path: PathBuf) -> Result<InstallLock, String> {
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let _ = write!(file, "{}", std::process::id());
                    return Ok(InstallLock { path });
                }
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                    if lock_is_stale(&path) {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if Instant::now() > deadline {
                        return Err(format!(
                            "another process has held {} for {} minutes; remove it if no install is running",
                            path.display(),
                            LOCK_WAIT.as_secs() / 60
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(err) => return Err(format!("cannot create {}: {err}", path.display())),
            }
        }
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn lock_is_stale(path: &Path) -> bool {
    let holder = fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok());
    match holder {
        // Linux tells whether the holder still runs; elsewhere only the lock's age can.
        Some(pid) if Path::new("/proc/self").exists() => {
            !Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => {
            let age = fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok());
            // An empty lock is a holder between create and write; give it a moment.
            age.is_some_and(|age| {
                age > if holder.is_none() {
                    Duration::from_secs(30)
                } else {
                    LOCK_WAIT
                }
            })
        }
    }
}

/// Runs an install command with its output in a log file (quiet unless it fails) and a deadline.
fn run_logged(
    mut command: Command,
    log: &Path,
    timeout: Duration,
    what: &str,
) -> Result<(), String> {
    let out = fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot reuse {}: {e}", log.display()))?;
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    let mut child = command
        .spawn()
        .map_err(|e| format!("{what}: cannot start {command:?}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{what}: still running after {} s (is the package registry reachable?)\n{}",
                    timeout.as_secs(),
                    log_tail(log)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(format!("{what}: cannot wait for {command:?}: {e}")),
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {command:?} failed ({status}); is the package registry reachable?\n{}",
            log_tail(log)
        ))
    }
}

fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(40);
    format!(
        "--- last lines of {} ---\n{}",
        log.display(),
        lines[from..].join("\n")
    )
}

fn tool_version(program: &str, why: &str) -> Result<String, String> {
    let output = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|e| {
            format!("`{program} --version` failed ({e}): the real-client tests need {why}")
        })?;
    if !output.status.success() {
        return Err(format!(
            "`{program} --version` failed: the real-client tests need {why}"
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    Ok(text.trim().to_string())
}

fn fingerprint(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Writes through a temporary file, so a concurrent reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("cannot rename to {}: {e}", path.display()))
}

/// Installs (once) or reuses `<target>/clients/node`; returns the path of the runnable script.
fn provision_node() -> Result<PathBuf, String> {
    let source = repo_dir().join("tests/clients/node");
    let dest = clients_dir().join("node");
    let node = tool_version("node", "Node.js 20 or later on PATH")?;
    let major: u32 = node
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        return Err(format!(
            "Node.js {node} is too old: the real-client tests need Node 20 or later"
        ));
    }
    tool_version("npm", "npm on PATH")?;
    let manifest = read(&source.join("package.json"))?;
    let lock = read(&source.join("package-lock.json"))?;
    let stamp_value = fingerprint(&[&manifest, &lock, node.as_bytes()]);
    let stamp = dest.join(".installed");
    fs::create_dir_all(&dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;

    if fs::read_to_string(&stamp).ok().as_deref() != Some(stamp_value.as_str()) {
        let _lock = InstallLock::acquire(clients_dir().join("node.lock"))?;
        // Another process may have finished the install while we waited for the lock.
        if fs::read_to_string(&stamp).ok().as_deref() != Some(stamp_value.as_str()) {
            let _ = fs::remove_file(&stamp);
            let _ = fs::remove_dir_all(dest.join("node_modules"));
            write_atomically(&dest.join("package.json"), &manifest)?;
            write_atomically(&dest.join("package-lock.json"), &lock)?;
            let mut npm = Command::new("npm");
            npm.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dest);
            run_logged(
                npm,
                &clients_dir().join("npm-install.log"),
                NPM_TIMEOUT,
                "installing arcgis-rest-js 4.10.2 from the npm registry",
            )?;
            write_atomically(&stamp, stamp_value.as_bytes())?;
        }
    }
    // The script sits next to node_modules so that its ESM imports resolve; it is copied on
    // every run so that an edit in tests/clients takes effect without a reinstall.
    let script = dest.join("check_portal.mjs");
    write_atomically(&script, &read(&source.join("check_portal.mjs"))?)?;
    Ok(script)
}

/// Installs (once) or reuses the venv `<target>/clients/venv`; returns its python.
fn provision_python() -> Result<PathBuf, String> {
    let source = repo_dir().join("tests/clients/python");
    let venv = clients_dir().join("venv");
    let python = tool_version(
        "python3",
        "Python 3.11 (python3 with the venv module) on PATH",
    )?;
    let requirements = read(&source.join("requirements.txt"))?;
    let constraints = read(&source.join("constraints.txt"))?;
    let stamp_value = fingerprint(&[&requirements, &constraints, python.as_bytes()]);
    let stamp = clients_dir().join("venv.installed");
    let venv_python = venv.join("bin/python");
    fs::create_dir_all(clients_dir())
        .map_err(|e| format!("cannot create {}: {e}", clients_dir().display()))?;

    if fs::read_to_string(&stamp).ok().as_deref() == Some(stamp_value.as_str())
        && venv_python.exists()
    {
        return Ok(venv_python);
    }
    let _lock = InstallLock::acquire(clients_dir().join("venv.lock"))?;
    if fs::read_to_string(&stamp).ok().as_deref() == Some(stamp_value.as_str())
        && venv_python.exists()
    {
        return Ok(venv_python);
    }
    let _ = fs::remove_file(&stamp);
    let log = clients_dir().join("pip-install.log");
    let mut make_venv = Command::new("python3");
    make_venv.args(["-m", "venv", "--clear"]).arg(&venv);
    run_logged(
        make_venv,
        &log,
        Duration::from_secs(120),
        "creating the Python venv",
    )?;
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(source.join("requirements.txt"))
        .arg("-c")
        .arg(source.join("constraints.txt"));
    run_logged(
        pip,
        &log,
        PIP_TIMEOUT,
        "installing the ArcGIS API for Python (arcgis 2.4) from PyPI",
    )?;
    let mut import = Command::new(&venv_python);
    import.args(["-c", "from arcgis.gis import GIS"]);
    run_logged(
        import,
        &log,
        Duration::from_secs(120),
        "importing arcgis.gis",
    )?;
    write_atomically(&stamp, stamp_value.as_bytes())?;
    Ok(venv_python)
}

/// Provisioning runs once per test process; the tests that need it wait for the first.
async fn node_script() -> PathBuf {
    static NODE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = tokio::task::spawn_blocking(|| NODE.get_or_init(provision_node).clone())
        .await
        .expect("the provisioning thread does not panic");
    result.unwrap_or_else(|e| panic!("cannot provision arcgis-rest-js: {e}"))
}

async fn python_bin() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = tokio::task::spawn_blocking(|| PYTHON.get_or_init(provision_python).clone())
        .await
        .expect("the provisioning thread does not panic");
    result.unwrap_or_else(|e| panic!("cannot provision the ArcGIS API for Python: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Running a client

/// An error answer a test expects: at most `count` of `outcome` at the stats `endpoint`.
struct Allowed {
    endpoint: &'static str,
    outcome: &'static str,
    count: u64,
    /// Why the error is right, shown when more of them come than expected.
    why: &'static str,
}

/// `GIS()` probes `<portal>/rest/info` and `<portal>/rest/services` for a `WWW-Authenticate`
/// header (IWA/PKI detection); a portal serves neither, and the client ignores the answer.
const PYTHON_SERVER_PROBES: Allowed = Allowed {
    endpoint: "unknown",
    outcome: "error:400",
    count: 2,
    why: "GIS() probes /rest/info and /rest/services, which only ArcGIS Server serves",
};

const MISSING_ITEM: Allowed = Allowed {
    endpoint: "content/items/{id}",
    outcome: "error:400",
    count: 1,
    why: "the script asks for a missing item on purpose",
};

/// What a client script printed: `{"steps": {name: {ok, value | error}}}`, plus its stderr.
struct ClientRun {
    client: &'static str,
    steps: BTreeMap<String, Value>,
    /// Hosts other than loopback the client tried to reach (and was refused by its script).
    off_loopback: BTreeSet<String>,
    stderr: String,
    problems: Vec<String>,
}

async fn run_client(
    client: &'static str,
    program: &Path,
    script: &Path,
    config: Value,
) -> ClientRun {
    let mut command = tokio::process::Command::new(program);
    command
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{client}: cannot start {}: {e}", program.display()));
    let mut stdin = child.stdin.take().expect("stdin was piped");
    stdin
        .write_all(config.to_string().as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{client}: cannot write its config: {e}"));
    drop(stdin);
    // Output is drained while the client runs, so that a hung client still shows how far it got.
    let mut out_pipe = child.stdout.take().expect("stdout was piped");
    let mut err_pipe = child.stderr.take().expect("stderr was piped");
    let out_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf).await;
        buf
    });
    let err_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf).await;
        buf
    });
    let status = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait()).await;
    if status.is_err() {
        let _ = child.kill().await;
    }
    let stdout_bytes = out_task.await.unwrap_or_default();
    let stderr_bytes = err_task.await.unwrap_or_default();
    let stdout = String::from_utf8_lossy(&stdout_bytes).to_string();
    let stderr = String::from_utf8_lossy(&stderr_bytes).to_string();
    // REAL_CLIENTS_DUMP=<dir> keeps every client's raw answer, to see what a client really got.
    if let Some(dir) = std::env::var_os("REAL_CLIENTS_DUMP") {
        let name = std::thread::current()
            .name()
            .unwrap_or("client")
            .replace("::", "-");
        let _ = fs::create_dir_all(&dir);
        let _ = fs::write(
            Path::new(&dir).join(format!("{name}.json")),
            stdout.as_bytes(),
        );
        let _ = fs::write(
            Path::new(&dir).join(format!("{name}.stderr")),
            stderr.as_bytes(),
        );
    }
    let status = match status {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => panic!("{client}: cannot wait for it: {e}"),
        Err(_) => panic!(
            "{client}: no answer within {} s: the simulator hangs or is far too slow\n--- client stderr (last 3000 chars) ---\n{}",
            SCRIPT_TIMEOUT.as_secs(),
            tail_chars(&stderr, 3000)
        ),
    };
    let parsed: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{client}: printed no JSON ({e}); exit {}\nstdout: {stdout}\nstderr: {stderr}",
            status
        )
    });
    let steps = parsed["steps"]
        .as_object()
        .unwrap_or_else(|| panic!("{client}: no steps in {parsed}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let off_loopback = parsed["offLoopbackHosts"]
        .as_array()
        .map(|hosts| {
            hosts
                .iter()
                .filter_map(|h| h.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ClientRun {
        client,
        steps,
        off_loopback,
        stderr,
        problems: Vec::new(),
    }
}

impl ClientRun {
    /// The value of a step that must have succeeded; a failed or missing step is recorded.
    fn value(&mut self, step: &str) -> Option<Value> {
        match self.steps.get(step) {
            Some(result) if result["ok"] == json!(true) => Some(result["value"].clone()),
            Some(result) => {
                self.problems
                    .push(format!("{step}: failed: {}", result["error"]));
                None
            }
            None => {
                self.problems
                    .push(format!("{step}: never ran (an earlier step failed)"));
                None
            }
        }
    }

    /// A step that must have failed, as a real portal refuses it.
    fn refused(&mut self, step: &str) -> Option<Value> {
        match self.steps.get(step) {
            Some(result) if result["ok"] == json!(false) => Some(result["error"].clone()),
            Some(result) => {
                self.problems.push(format!(
                    "{step}: expected an error, got {}",
                    result["value"]
                ));
                None
            }
            None => {
                self.problems.push(format!("{step}: never ran"));
                None
            }
        }
    }

    fn check<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, actual: T, expected: T) {
        if actual != expected {
            self.problems.push(format!(
                "{what}:\n      got      {actual:?}\n      expected {expected:?}"
            ));
        }
    }

    fn check_that(&mut self, what: &str, holds: bool, detail: impl std::fmt::Display) {
        if !holds {
            self.problems.push(format!("{what}: {detail}"));
        }
    }

    /// Every request the client made must have been answered without an error, except at most
    /// `count` answers with `outcome` at `endpoint` for each `allowed` entry: the errors the
    /// script provokes on purpose, and probes a client makes that no portal answers. This
    /// catches the failures a client swallows (the Python API's `get_data()` turns any error
    /// into `{}`, arcgis-rest-js's `isItemSharedWithGroup` turns one into `false`).
    fn check_stats(&mut self, stats: &Stats, allowed: &[Allowed]) {
        if let Some(dir) = std::env::var_os("REAL_CLIENTS_DUMP") {
            let name = std::thread::current()
                .name()
                .unwrap_or("client")
                .replace("::", "-");
            let text = serde_json::to_string_pretty(&stats.by_endpoint).unwrap_or_default();
            let _ = fs::write(Path::new(&dir).join(format!("{name}.stats.json")), text);
        }
        for (endpoint, outcomes) in &stats.by_endpoint {
            for (outcome, &count) in outcomes {
                if outcome == "ok" {
                    continue;
                }
                let expected: Vec<&Allowed> = allowed
                    .iter()
                    .filter(|a| a.endpoint == endpoint && a.outcome == outcome)
                    .collect();
                let tolerated: u64 = expected.iter().map(|a| a.count).sum();
                if count > tolerated {
                    let reasons: Vec<&str> = expected.iter().map(|a| a.why).collect();
                    self.problems.push(format!(
                        "simulator answered {count} request(s) to {endpoint} with {outcome} \
                         (expected at most {tolerated}: {reasons:?})"
                    ));
                }
            }
        }
    }

    /// The client may reach for the services items point at (the Python API hydrates Feature
    /// Service layers), but for nothing else: a portal answer that sends it to another host
    /// (ArcGIS Online, a helper service) would be a simulator that differs from a closed portal.
    fn check_off_loopback(&mut self, fixture: &Fixture) {
        let service_hosts: BTreeSet<String> = fixture
            .items
            .iter()
            .filter_map(|i| i.url.as_deref())
            .filter_map(|u| url::Url::parse(u).ok())
            .filter_map(|u| u.host_str().map(str::to_string))
            .collect();
        let unexpected: Vec<&String> = self.off_loopback.difference(&service_hosts).collect();
        self.check_that(
            "hosts the client tried besides loopback",
            unexpected.is_empty(),
            format!("{unexpected:?} (item service hosts: {service_hosts:?})"),
        );
    }

    /// Fails the test with every problem at once, so one run shows all that is wrong.
    fn finish(self) {
        if !self.problems.is_empty() {
            panic!(
                "{}: {} problem(s):\n  - {}\n--- client stderr (last 3000 chars) ---\n{}",
                self.client,
                self.problems.len(),
                self.problems.join("\n  - "),
                tail_chars(&self.stderr, 3000)
            );
        }
    }
}

fn tail_chars(text: &str, n: usize) -> &str {
    let start = text.len().saturating_sub(n);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[start..]
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    value[key]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn ids_of(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn set<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
}

// ---------------------------------------------------------------------------------------------
// Fixture facts

struct SampleFacts {
    portal_id: String,
    admin: String,
    admin_password: String,
    web_map: Item,
    csv: Item,
    rogers_root: BTreeSet<String>,
    rogers_folder: BTreeSet<String>,
    rogers_folder_id: String,
    /// Feature Service id → the CSV of the same state.
    service2data: BTreeMap<String, String>,
}

fn sample_facts(fixture: &Fixture) -> SampleFacts {
    let admin = fixture.portal.default_admin.clone();
    let admin_password = fixture
        .users
        .iter()
        .find(|u| u.username == admin)
        .map(|u| u.password.clone())
        .expect("the sample org has its default admin");
    let rogers_items = |folder: Option<&str>| -> Vec<&Item> {
        fixture
            .items
            .iter()
            .filter(|i| i.owner == ROGERS && i.folder.as_deref() == folder)
            .collect()
    };
    let web_map = rogers_items(Some(ROGERS_FOLDER))
        .into_iter()
        .find(|i| i.item_type == "Web Map")
        .cloned()
        .expect("brown.rogers has a web map in Rogers_webmaps");
    let csv = rogers_items(None)
        .into_iter()
        .find(|i| i.item_type == "CSV")
        .cloned()
        .expect("brown.rogers has a CSV in the root");
    let rogers_folder_id = fixture
        .users
        .iter()
        .find(|u| u.username == ROGERS)
        .and_then(|u| u.folders.iter().find(|f| f.title == ROGERS_FOLDER))
        .map(|f| f.id.clone())
        .expect("brown.rogers has Rogers_webmaps");
    let service2data: BTreeMap<String, String> = fixture
        .relationships
        .iter()
        .filter(|r| r.relationship_type == "Service2Data")
        .map(|r| (r.origin.clone(), r.destination.clone()))
        .collect();
    assert_eq!(
        service2data.len(),
        10,
        "the sample org has 10 Service2Data relationships"
    );
    SampleFacts {
        portal_id: fixture.portal.id.clone(),
        admin,
        admin_password,
        rogers_root: rogers_items(None).iter().map(|i| i.id.clone()).collect(),
        rogers_folder: rogers_items(Some(ROGERS_FOLDER))
            .iter()
            .map(|i| i.id.clone())
            .collect(),
        web_map,
        csv,
        rogers_folder_id,
        service2data,
    }
}

fn json_data(item: &Item) -> Value {
    match &item.data {
        Some(ItemData::Json(value)) => value.clone(),
        other => panic!("fixture item {} has no JSON data: {other:?}", item.id),
    }
}

fn file_base64(item: &Item) -> String {
    match &item.data {
        Some(ItemData::File(blob)) => blob.base64.clone(),
        other => panic!("fixture item {} has no file: {other:?}", item.id),
    }
}

fn items_matching(fixture: &Fixture, keep: impl Fn(&Item) -> bool) -> BTreeSet<String> {
    fixture
        .items
        .iter()
        .filter(|i| keep(i))
        .map(|i| i.id.clone())
        .collect()
}

/// The members of each group as the fixture has them: (owner, admins, every member).
fn group_members(
    fixture: &Fixture,
) -> BTreeMap<String, (String, BTreeSet<String>, BTreeSet<String>)> {
    fixture
        .groups
        .iter()
        .filter(|g| SAMPLE_GROUPS.contains(&g.title.as_str()))
        .map(|g| {
            (
                g.id.clone(),
                (
                    g.owner.clone(),
                    set(g.admins.iter().cloned()),
                    set(g.users.iter().cloned()),
                ),
            )
        })
        .collect()
}

/// Checks a `community/groups/<id>/users` answer: the owner, and owner + admins + users
/// together being every member. Real portals disagree on whether `users` repeats the admins,
/// so only the union and the owner are checked, plus that every fixture admin is an admin.
fn check_group_users(
    run: &mut ClientRun,
    step: &str,
    answer: &Value,
    expected: &(String, BTreeSet<String>, BTreeSet<String>),
) {
    let (owner, admins, members) = expected;
    run.check(
        &format!("{step}: owner"),
        answer["owner"].as_str().unwrap_or_default(),
        owner.as_str(),
    );
    let mut everyone = set(strings(answer, "admins"));
    everyone.extend(strings(answer, "users"));
    if let Some(o) = answer["owner"].as_str() {
        everyone.insert(o.to_string());
    }
    run.check(&format!("{step}: every member"), everyone, members.clone());
    let listed_admins = set(strings(answer, "admins"));
    run.check_that(
        &format!("{step}: admins"),
        admins.is_subset(&listed_admins),
        format!("admins {listed_admins:?} miss some of {admins:?}"),
    );
}

fn generated_org() -> Fixture {
    generate(&GenerateSpec {
        seed: 7,
        users: 110,
        big_folder_items: 120,
        ..GenerateSpec::default()
    })
}

/// The generated org's facts a paging test needs: ordinary usernames and the big folder.
struct GeneratedFacts {
    admin: String,
    admin_password: String,
    ordinary_users: BTreeSet<String>,
    big_owner: String,
    big_folder: String,
    big_folder_items: BTreeSet<String>,
}

fn generated_facts(fixture: &Fixture) -> GeneratedFacts {
    let admin = fixture.portal.default_admin.clone();
    let admin_password = fixture
        .users
        .iter()
        .find(|u| u.username == admin)
        .map(|u| u.password.clone())
        .expect("the generated org has its default admin");
    let ordinary_users: BTreeSet<String> = fixture
        .users
        .iter()
        .map(|u| u.username.clone())
        .filter(|u| !u.starts_with("esri_") && *u != admin)
        .collect();
    let mut per_folder: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for item in &fixture.items {
        if let Some(folder) = &item.folder {
            per_folder
                .entry((item.owner.clone(), folder.clone()))
                .or_default()
                .insert(item.id.clone());
        }
    }
    let ((big_owner, big_folder), big_folder_items) = per_folder
        .into_iter()
        .max_by_key(|(_, items)| items.len())
        .expect("the generated org has folders");
    assert!(
        ordinary_users.len() > 100,
        "the generated org must have more than 100 users"
    );
    assert!(
        big_folder_items.len() > 100,
        "the generated org must have a folder of more than 100 items"
    );
    GeneratedFacts {
        admin,
        admin_password,
        ordinary_users,
        big_owner,
        big_folder,
        big_folder_items,
    }
}

async fn start(fixture: Fixture, tls: bool) -> SimServer {
    SimServer::start(
        fixture,
        SimOptions {
            tls,
            ..SimOptions::default()
        },
    )
    .await
    .expect("the simulator starts on loopback")
}

// ---------------------------------------------------------------------------------------------
// arcgis-rest-js

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arcgis_rest_js_reads_the_sample_org_as_the_fixture_has_it() {
    let script = node_script().await;
    let fixture = sample_org::source();
    let facts = sample_facts(&fixture);
    let server = start(fixture.clone(), false).await;
    let groups = group_members(&fixture);
    let web_maps = items_matching(&fixture, |i| i.item_type == "Web Map");
    let config = json!({
        "portal": server.url(),
        "username": facts.admin,
        "password": facts.admin_password,
        "userQuery": USER_QUERY,
        "groupQuery": GROUP_QUERY,
        "itemSearches": [
            // 49 items in pages of 20: three pages, nextStart 21, 41, -1.
            {"name": "all", "query": format!("orgid:{}", facts.portal_id), "pageSize": 20},
            {"name": "owner", "query": format!("owner:{ROGERS}"), "pageSize": 100},
            {"name": "webmaps", "query": "type:\"Web Map\"", "pageSize": 5},
        ],
        "getItems": [facts.web_map.id, facts.csv.id],
        "jsonData": [facts.web_map.id],
        "fileData": [facts.csv.id],
        "contentOwner": ROGERS,
        "contentFolder": ROGERS_FOLDER,
        "groupUsers": groups.keys().collect::<Vec<_>>(),
        "relatedOrigins": facts.service2data.keys().collect::<Vec<_>>(),
        "relationshipType": "Service2Data",
    });
    let node = PathBuf::from("node");
    let mut run = run_client("arcgis-rest-js", &node, &script, config).await;

    if let Some(v) = run.value("signIn") {
        run.check(
            "signIn: username",
            v["username"].as_str(),
            Some(facts.admin.as_str()),
        );
    }
    if let Some(v) = run.value("me") {
        run.check("me: role", v["role"].as_str(), Some("org_admin"));
    }
    if let Some(v) = run.value("portalSelf") {
        run.check(
            "portals/self: id",
            v["id"].as_str(),
            Some(facts.portal_id.as_str()),
        );
        run.check(
            "portals/self: isPortal",
            v["isPortal"].as_bool(),
            Some(true),
        );
    }
    let sorted_users: Vec<String> = SAMPLE_USERS.iter().map(|u| u.to_string()).collect();
    for step in ["searchCommunityUsers", "searchUsers"] {
        if let Some(v) = run.value(step) {
            run.check(
                &format!("{step}: usernames sorted by username"),
                strings(&v, "usernames"),
                sorted_users.clone(),
            );
            run.check(&format!("{step}: total"), v["total"].as_u64(), Some(11));
        }
    }
    if let Some(v) = run.value("searchGroups") {
        let titles = set(v["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g["title"].as_str()));
        run.check("searchGroups: titles", titles, set(SAMPLE_GROUPS));
    }
    if let Some(v) = run.value("searchItems:all") {
        let listed: Vec<String> = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["id"].as_str().map(str::to_string))
            .collect();
        run.check(
            "searchItems orgid: count (no duplicates across pages)",
            listed.len(),
            49,
        );
        run.check(
            "searchItems orgid: ids",
            set(listed),
            items_matching(&fixture, |_| true),
        );
        let next: Vec<i64> = v["pages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["nextStart"].as_i64())
            .collect();
        run.check(
            "searchItems orgid: nextStart of each page",
            next,
            vec![21, 41, -1],
        );
        let titles: Vec<String> = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["title"].as_str().map(str::to_lowercase))
            .collect();
        let mut sorted = titles.clone();
        sorted.sort();
        run.check("searchItems orgid: sorted by title", titles, sorted);
    }
    if let Some(v) = run.value("searchItems:owner") {
        run.check(
            "searchItems owner:brown.rogers",
            ids_of(&v["items"]),
            items_matching(&fixture, |i| i.owner == ROGERS),
        );
    }
    if let Some(v) = run.value("searchItems:webmaps") {
        run.check(
            "searchItems type:\"Web Map\"",
            ids_of(&v["items"]),
            web_maps.clone(),
        );
    }
    if let Some(v) = run.value(&format!("getItem:{}", facts.web_map.id)) {
        run.check(
            "getItem web map: title",
            v["title"].as_str(),
            Some(facts.web_map.title.as_str()),
        );
        run.check("getItem web map: type", v["type"].as_str(), Some("Web Map"));
        run.check("getItem web map: owner", v["owner"].as_str(), Some(ROGERS));
    }
    if let Some(v) = run.value(&format!("getItem:{}", facts.csv.id)) {
        run.check("getItem csv: type", v["type"].as_str(), Some("CSV"));
        run.check(
            "getItem csv: title",
            v["title"].as_str(),
            Some(facts.csv.title.as_str()),
        );
    }
    if let Some(v) = run.value(&format!("getItemData:{}", facts.web_map.id)) {
        run.check("getItemData web map", v, json_data(&facts.web_map));
    }
    if let Some(v) = run.value(&format!("getItemFile:{}", facts.csv.id)) {
        run.check(
            "getItemData csv bytes (base64)",
            v["base64"].as_str().unwrap_or_default().to_string(),
            file_base64(&facts.csv),
        );
    }
    if let Some(v) = run.value("userContentRoot") {
        run.check(
            "getUserContent root: items",
            ids_of(&v["items"]),
            facts.rogers_root.clone(),
        );
        let folders: Vec<(String, String)> = v["folders"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                (
                    f["id"].as_str().unwrap_or_default().to_string(),
                    f["title"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        run.check(
            "getUserContent root: folders",
            folders,
            vec![(facts.rogers_folder_id.clone(), ROGERS_FOLDER.to_string())],
        );
    }
    if let Some(v) = run.value("userContentFolder") {
        run.check(
            "getUserContent Rogers_webmaps: items",
            ids_of(&v["items"]),
            facts.rogers_folder.clone(),
        );
    }
    for (group_id, expected) in &groups {
        let step = format!("getGroupUsers:{group_id}");
        if let Some(v) = run.value(&step) {
            check_group_users(&mut run, &step, &v, expected);
        }
    }
    for (origin, destination) in &facts.service2data {
        let step = format!("getRelatedItems:{origin}");
        if let Some(v) = run.value(&step) {
            run.check(
                &format!("{step}: related"),
                ids_of(&v["items"]),
                set([destination.clone()]),
            );
        }
    }
    run.check_stats(&server.stats(), &[]);
    run.finish();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arcgis_rest_js_writes_are_read_back_by_the_client_and_kept_by_the_simulator() {
    let script = node_script().await;
    let fixture = sample_org::source();
    let facts = sample_facts(&fixture);
    let server = start(fixture.clone(), false).await;
    let central = fixture
        .groups
        .iter()
        .find(|g| g.title == "Central Services")
        .map(|g| g.id.clone())
        .expect("the sample org has Central Services");
    let ar_service = fixture
        .items
        .iter()
        .find(|i| i.owner == ROGERS && i.item_type == "Feature Service")
        .map(|i| i.id.clone())
        .expect("brown.rogers has a Feature Service");
    let web_map = json!({
        "operationalLayers": [],
        "baseMap": {"title": "Topographic", "baseMapLayers": [{
            "id": "World_Topo_Map", "layerType": "ArcGISTiledMapServiceLayer",
            "url": "https://services.arcgisonline.com/ArcGIS/rest/services/World_Topo_Map/MapServer"}]},
        "spatialReference": {"wkid": 102100, "latestWkid": 3857},
        "version": "2.7"
    });
    let csv_text = "name,latitude,longitude\nAlpha,34.05,-118.25\nBeta,36.17,-115.14\n";
    let folder_title = "node_client_check";
    let config = json!({
        "portal": server.url(),
        "username": facts.admin,
        "password": facts.admin_password,
        "write": {
            "owner": ROGERS,
            "folderTitle": folder_title,
            "groupId": central,
            "relationshipOrigin": ar_service,
            "webMap": web_map,
            "csvText": csv_text,
        },
    });
    let node = PathBuf::from("node");
    let mut run = run_client("arcgis-rest-js", &node, &script, config).await;

    let folder_id = run.value("createFolder").and_then(|v| {
        run.check("createFolder: success", v["success"].as_bool(), Some(true));
        run.check(
            "createFolder: title",
            v["folder"]["title"].as_str(),
            Some(folder_title),
        );
        v["folder"]["id"].as_str().map(str::to_string)
    });
    if let Some(e) = run.refused("createFolderDuplicate") {
        run.check(
            "duplicate folder title: error code",
            e["code"].clone(),
            json!(400),
        );
    }
    let map_id = run.value("createItemInFolder").and_then(|v| {
        run.check(
            "createItemInFolder: success",
            v["success"].as_bool(),
            Some(true),
        );
        run.check(
            "createItemInFolder: folder",
            v["folder"].as_str().map(str::to_string),
            folder_id.clone(),
        );
        v["id"].as_str().map(str::to_string)
    });
    let csv_id = run.value("createItem").and_then(|v| {
        run.check("createItem: success", v["success"].as_bool(), Some(true));
        v["id"].as_str().map(str::to_string)
    });
    if let Some(v) = run.value("readBackMap") {
        run.check("read back map: owner", v["owner"].as_str(), Some(ROGERS));
        run.check("read back map: type", v["type"].as_str(), Some("Web Map"));
        run.check(
            "read back map: ownerFolder",
            v["ownerFolder"].as_str().map(str::to_string),
            folder_id.clone(),
        );
    }
    if let Some(v) = run.value("readBackMapData") {
        run.check("read back map data", v, web_map.clone());
    }
    if let Some(v) = run.value("shareItemWithGroup") {
        run.check(
            "shareItemWithGroup: notSharedWith",
            v["notSharedWith"].as_array().map(Vec::len),
            Some(0),
        );
    }
    if let Some(v) = run.value("isItemSharedWithGroup") {
        run.check(
            "isItemSharedWithGroup (search id: X AND group: Y)",
            v.as_bool(),
            Some(true),
        );
    }
    if let Some(v) = run.value("getItemGroups") {
        let mut all = set(strings(&v, "admin"));
        all.extend(strings(&v, "member"));
        all.extend(strings(&v, "other"));
        run.check("getItemGroups: groups", all, set([central.clone()]));
    }
    if let Some(v) = run.value("readBackCsv") {
        run.check("read back csv: type", v["type"].as_str(), Some("CSV"));
        run.check(
            "read back csv: root folder",
            v["ownerFolder"].as_str(),
            None,
        );
    }
    if let Some(v) = run.value("readBackCsvFile") {
        run.check("read back csv bytes", v["text"].as_str(), Some(csv_text));
    }
    if let Some(v) = run.value("addItemRelationship") {
        run.check(
            "addItemRelationship: success",
            v["success"].as_bool(),
            Some(true),
        );
    }
    if let (Some(v), Some(csv_id)) = (run.value("readBackRelated"), csv_id.clone()) {
        let expected = set([facts.service2data[&ar_service].clone(), csv_id]);
        run.check("read back related items", ids_of(&v["items"]), expected);
    }
    if let (Some(v), Some(map_id)) = (run.value("readBackFolder"), map_id.clone()) {
        run.check(
            "read back folder listing",
            ids_of(&v["items"]),
            set([map_id]),
        );
    }
    if let Some(e) = run.refused("getMissingItem") {
        run.check(
            "missing item: error code",
            e["code"].as_str(),
            Some("CONT_0001"),
        );
    }

    // The simulator's own state must hold exactly what the client was told.
    let state = server.snapshot();
    let rogers = state
        .users
        .iter()
        .find(|u| u.username == ROGERS)
        .expect("brown.rogers still exists");
    let folder = rogers.folders.iter().find(|f| f.title == folder_title);
    run.check(
        "snapshot: folder id",
        folder.map(|f| f.id.clone()),
        folder_id.clone(),
    );
    if let Some(map_id) = &map_id {
        match state.items.iter().find(|i| &i.id == map_id) {
            Some(item) => {
                run.check(
                    "snapshot: map folder",
                    item.folder.as_deref(),
                    Some(folder_title),
                );
                run.check("snapshot: map owner", item.owner.as_str(), ROGERS);
                run.check(
                    "snapshot: map groups",
                    item.groups.clone(),
                    vec![central.clone()],
                );
                run.check("snapshot: map access", item.access.as_str(), "shared");
                run.check(
                    "snapshot: map data",
                    item.data.clone(),
                    Some(ItemData::Json(web_map.clone())),
                );
            }
            None => run.check_that("snapshot: map", false, format!("item {map_id} is missing")),
        }
    }
    if let Some(csv_id) = &csv_id {
        match state.items.iter().find(|i| &i.id == csv_id) {
            Some(item) => {
                run.check("snapshot: csv folder", item.folder.as_deref(), None);
                run.check(
                    "snapshot: csv file name",
                    item.name.as_deref(),
                    Some("node_client.csv"),
                );
                let bytes = match &item.data {
                    Some(ItemData::File(blob)) => Some(blob.base64.clone()),
                    _ => None,
                };
                use base64::Engine;
                run.check(
                    "snapshot: csv bytes",
                    bytes,
                    Some(base64::engine::general_purpose::STANDARD.encode(csv_text)),
                );
            }
            None => run.check_that("snapshot: csv", false, format!("item {csv_id} is missing")),
        }
        let recorded = state.relationships.iter().any(|r| {
            r.relationship_type == "Service2Data"
                && r.origin == ar_service
                && &r.destination == csv_id
        });
        run.check_that(
            "snapshot: relationship",
            recorded,
            "the new Service2Data relationship is missing",
        );
    }
    run.check(
        "snapshot: items",
        state.items.len(),
        fixture.items.len() + 2,
    );
    let duplicate_folder = Allowed {
        endpoint: "content/users/{username}/createFolder",
        outcome: "error:400",
        count: 1,
        why: "the script creates the same folder twice on purpose",
    };
    run.check_stats(&server.stats(), &[MISSING_ITEM, duplicate_folder]);
    run.finish();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arcgis_rest_js_pages_through_more_than_100_users_and_folder_items() {
    let script = node_script().await;
    let fixture = generated_org();
    let facts = generated_facts(&fixture);
    let server = start(fixture, false).await;
    let config = json!({
        "portal": server.url(),
        "username": facts.admin,
        "password": facts.admin_password,
        "userQuery": USER_QUERY,
        "contentOwner": facts.big_owner,
        "contentFolder": facts.big_folder,
    });
    let node = PathBuf::from("node");
    let mut run = run_client("arcgis-rest-js", &node, &script, config).await;
    for step in ["searchCommunityUsers", "searchUsers"] {
        if let Some(v) = run.value(step) {
            let listed = strings(&v, "usernames");
            run.check(
                &format!("{step}: count (no duplicates across pages)"),
                listed.len(),
                facts.ordinary_users.len(),
            );
            run.check(
                &format!("{step}: usernames"),
                set(listed),
                facts.ordinary_users.clone(),
            );
            run.check_that(
                &format!("{step}: pages"),
                v["pages"].as_array().map_or(0, Vec::len) >= 2,
                "expected at least 2 pages of at most 100",
            );
        }
    }
    if let Some(v) = run.value("userContentFolder") {
        let listed = v["items"].as_array().map_or(0, Vec::len);
        run.check(
            "getUserContent big folder: count",
            listed,
            facts.big_folder_items.len(),
        );
        run.check(
            "getUserContent big folder: ids",
            ids_of(&v["items"]),
            facts.big_folder_items.clone(),
        );
    }
    run.check_stats(&server.stats(), &[]);
    run.finish();
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// ArcGIS API for Python

fn python_script() -> PathBuf {
    repo_dir().join("tests/clients/python/check_portal.py")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arcgis_python_api_reads_the_sample_org_over_https() {
    let python = python_bin().await;
    let fixture = sample_org::source();
    let facts = sample_facts(&fixture);
    let server = start(fixture.clone(), true).await;
    let groups = group_members(&fixture);
    let config = json!({
        "url": server.url(),
        "username": facts.admin,
        "password": facts.admin_password,
        "userQuery": USER_QUERY,
        "groupQuery": GROUP_QUERY,
        "itemSearches": [
            {"name": "all", "query": format!("orgid:{}", facts.portal_id), "maxItems": 1000},
            {"name": "owner", "query": format!("owner:{ROGERS}"), "maxItems": 100},
            {"name": "webmaps", "query": "type:\"Web Map\"", "maxItems": 100},
        ],
        "contentOwner": ROGERS,
        "contentFolder": ROGERS_FOLDER,
        "getItems": [facts.web_map.id, facts.csv.id],
        "jsonData": [facts.web_map.id],
        "fileData": [facts.csv.id],
        "groupMembers": groups.keys().collect::<Vec<_>>(),
        "relatedOrigins": facts.service2data.keys().collect::<Vec<_>>(),
        "relationshipType": "Service2Data",
    });
    let mut run = run_client("arcgis (Python)", &python, &python_script(), config).await;

    if let Some(v) = run.value("connect") {
        run.check(
            "GIS(): signed-in user",
            v["me"].as_str(),
            Some(facts.admin.as_str()),
        );
        run.check("GIS(): isPortal", v["isPortal"].as_bool(), Some(true));
        run.check_that(
            "GIS(): https",
            v["url"].as_str().is_some_and(|u| u.starts_with("https://")),
            &v["url"],
        );
    }
    if let Some(v) = run.value("usersSearch") {
        run.check(
            "users.search('!esri_ & !admin')",
            set(v.as_array().into_iter().flatten().filter_map(Value::as_str)),
            set(SAMPLE_USERS),
        );
        run.check("users.search: count", v.as_array().map_or(0, Vec::len), 11);
    }
    if let Some(v) = run.value("groupsSearch") {
        let titles = set(v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g["title"].as_str()));
        run.check(
            "groups.search(\"!owner:esri_* & !Basemaps\")",
            titles,
            set(SAMPLE_GROUPS),
        );
    }
    if let Some(v) = run.value("contentSearch:all") {
        run.check(
            "content.search(orgid): count",
            v.as_array().map_or(0, Vec::len),
            49,
        );
        run.check(
            "content.search(orgid): ids",
            ids_of(&v),
            items_matching(&fixture, |_| true),
        );
    }
    if let Some(v) = run.value("contentSearch:owner") {
        run.check(
            "content.search(owner:brown.rogers)",
            ids_of(&v),
            items_matching(&fixture, |i| i.owner == ROGERS),
        );
    }
    if let Some(v) = run.value("contentSearch:webmaps") {
        run.check(
            "content.search(type:\"Web Map\")",
            ids_of(&v),
            items_matching(&fixture, |i| i.item_type == "Web Map"),
        );
    }
    let mut everything = facts.rogers_root.clone();
    everything.extend(facts.rogers_folder.iter().cloned());
    if let Some(v) = run.value("userItems") {
        run.check(
            "user.items() (root, then every folder, in 2.4)",
            ids_of(&v),
            everything,
        );
    }
    if let Some(v) = run.value("userRootItems") {
        run.check(
            "user.items(folder='Root Folder')",
            ids_of(&v),
            facts.rogers_root.clone(),
        );
    }
    if let Some(v) = run.value("userFolderItems") {
        run.check(
            "user.items(folder='Rogers_webmaps')",
            ids_of(&v),
            facts.rogers_folder.clone(),
        );
    }
    if let Some(v) = run.value(&format!("contentGet:{}", facts.web_map.id)) {
        run.check(
            "content.get(web map): title",
            v["title"].as_str(),
            Some(facts.web_map.title.as_str()),
        );
        run.check(
            "content.get(web map): type",
            v["type"].as_str(),
            Some("Web Map"),
        );
    }
    if let Some(v) = run.value(&format!("contentGet:{}", facts.csv.id)) {
        run.check("content.get(csv): type", v["type"].as_str(), Some("CSV"));
    }
    if let Some(v) = run.value(&format!("getData:{}", facts.web_map.id)) {
        run.check("web map get_data()", v, json_data(&facts.web_map));
    }
    if let Some(v) = run.value(&format!("getFile:{}", facts.csv.id)) {
        run.check(
            "csv get_data(try_json=False) bytes (base64)",
            v.as_str().unwrap_or_default().to_string(),
            file_base64(&facts.csv),
        );
    }
    for (group_id, expected) in &groups {
        let step = format!("getMembers:{group_id}");
        if let Some(v) = run.value(&step) {
            check_group_users(&mut run, &step, &v, expected);
        }
    }
    let mut related_total = 0;
    for (origin, destination) in &facts.service2data {
        let step = format!("relatedItems:{origin}");
        if let Some(v) = run.value(&step) {
            related_total += v.as_array().map_or(0, Vec::len);
            run.check(
                &format!("{step}: related_items('Service2Data')"),
                ids_of(&v),
                set([destination.clone()]),
            );
        }
    }
    run.check(
        "related_items('Service2Data') over the 10 Feature Services",
        related_total,
        10,
    );
    if let Some(v) = run.value("contentGetMissing") {
        run.check("content.get(missing id)", v, Value::Null);
    }
    run.check_off_loopback(&fixture);
    run.check_stats(&server.stats(), &[PYTHON_SERVER_PROBES, MISSING_ITEM]);
    run.finish();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arcgis_python_api_pages_through_more_than_100_users_and_folder_items() {
    let python = python_bin().await;
    let fixture = generated_org();
    let facts = generated_facts(&fixture);
    let big_folder_ids = facts.big_folder_items.clone();
    let server = start(fixture.clone(), true).await;
    let config = json!({
        "url": server.url(),
        "username": facts.admin,
        "password": facts.admin_password,
        "userQuery": USER_QUERY,
        "maxUsers": 10_000,
        "itemSearches": [
            {"name": "bigOwner", "query": format!("owner:{}", facts.big_owner), "maxItems": 10_000},
        ],
        "contentOwner": facts.big_owner,
        "contentFolder": facts.big_folder,
        "maxFolderItems": 10_000,
    });
    let mut run = run_client("arcgis (Python)", &python, &python_script(), config).await;
    if let Some(v) = run.value("usersSearch") {
        let listed: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().map(str::to_string))
            .collect();
        run.check(
            "users.search: count (no duplicates across pages)",
            listed.len(),
            facts.ordinary_users.len(),
        );
        run.check(
            "users.search: usernames",
            set(listed),
            facts.ordinary_users.clone(),
        );
    }
    if let Some(v) = run.value("userFolderItems") {
        run.check(
            "user.items(big folder): count",
            v.as_array().map_or(0, Vec::len),
            big_folder_ids.len(),
        );
        run.check(
            "user.items(big folder): ids",
            ids_of(&v),
            big_folder_ids.clone(),
        );
    }
    if let Some(v) = run.value("contentSearch:bigOwner") {
        let listed = v.as_array().map_or(0, Vec::len);
        run.check_that(
            "content.search(owner) with max_items > 100",
            listed > 100,
            format!("only {listed} items"),
        );
        let found = ids_of(&v);
        run.check_that(
            "content.search(owner): includes the big folder",
            big_folder_ids.is_subset(&found),
            format!(
                "{} of {} found",
                big_folder_ids.intersection(&found).count(),
                big_folder_ids.len()
            ),
        );
    }
    if let Some(v) = run.value("contentGetMissing") {
        run.check("content.get(missing id)", v, Value::Null);
    }
    run.check_off_loopback(&fixture);
    run.check_stats(&server.stats(), &[PYTHON_SERVER_PROBES, MISSING_ITEM]);
    run.finish();
    server.shutdown().await;
}
