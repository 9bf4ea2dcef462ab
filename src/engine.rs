//! The engine: what every command shares. [`Context`] carries the two signed-in portals,
//! the state file and the settings to every task; [`run`] is the library's entry point that
//! `portal-migrate run` and the tests call (mini-redis style: it never reads argv or env).

use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::class::{Classify, ErrorClass};
use crate::portal::{Portal, PortalError, PortalSpec, UploadTuning};
use crate::settings::{PortalSettings, Settings};
use crate::store::{OpenOptions, PortalIdentity, Store, StoreError, Synchronous};
use crate::work::Summary;

/// Everything a task needs. Cheap to clone (all shared).
#[derive(Clone)]
pub struct Context {
    pub settings: Arc<Settings>,
    pub source: Portal,
    pub target: Portal,
    pub store: StoreHandle,
    pub run_id: i64,
    /// Custom roles of both portals, read once when the first user with one is copied.
    pub roles: Arc<tokio::sync::OnceCell<crate::clone::user::RoleDirectory>>,
    /// Membership tasks of one group running together share their `addUsers` calls.
    pub memberships: Arc<crate::clone::membership::MembershipBatches>,
}

/// The store is a single SQLite connection; calls are short, so one mutex serialises them and
/// `spawn_blocking` keeps fsyncs off the async workers.
#[derive(Clone)]
pub struct StoreHandle(Arc<Mutex<Store>>);

impl StoreHandle {
    pub fn new(store: Store) -> StoreHandle {
        StoreHandle(Arc::new(Mutex::new(store)))
    }

    /// Runs `f` with the store on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite half-written (transactions
            // roll back), so a poisoned lock is still safe to use.
            let store = inner
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&store)
        })
        .await
        .map_err(|join| StoreError::Background(join.to_string()))?
    }

    /// Direct access for synchronous callers (CLI commands outside the runtime's workers).
    pub fn with<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        let store = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&store)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Portal(#[from] PortalError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Fatal(String),
}

impl Classify for RunError {
    fn class(&self) -> ErrorClass {
        match self {
            RunError::Portal(e) => e.class(),
            RunError::Store(e) => e.class(),
            RunError::Fatal(_) => ErrorClass::Fatal,
        }
    }
}

pub fn portal_spec(label: &str, settings: &PortalSettings) -> PortalSpec {
    PortalSpec {
        label: label.to_string(),
        url: settings.url.clone(),
        username: settings.username.clone(),
        password: settings.password.clone(),
        rate_limit_rps: settings.rate_limit_rps,
        ca_file: settings.ca_file.clone(),
        accept_invalid_certs: settings.accept_invalid_certs,
        request_timeout: settings.timeout,
        token_minutes: settings.token_minutes,
    }
}

/// Tries per read request before its transient error fails the task's attempt: a task of
/// a hundred reads must not start over for one dropped request.
const READ_ATTEMPTS: u32 = 4;

/// How large files go up: `items.multipart_threshold_mb` and `items.part_size_mb`.
pub fn upload_tuning(settings: &Settings) -> UploadTuning {
    UploadTuning {
        multipart_threshold: settings.items.multipart_threshold,
        part_size: usize::try_from(settings.items.part_size).unwrap_or(usize::MAX),
        ..UploadTuning::default()
    }
}

pub fn store_options(settings: &Settings) -> OpenOptions {
    OpenOptions {
        synchronous: match settings.state.synchronous {
            crate::settings::Synchronous::Full => Synchronous::Full,
            crate::settings::Synchronous::Normal => Synchronous::Normal,
        },
        busy_timeout: settings.state.busy_timeout,
    }
}

fn identity(portal: &Portal) -> PortalIdentity {
    PortalIdentity {
        url: portal.url().as_str().trim_end_matches('/').to_string(),
        portal_id: portal.info().id.clone(),
        name: portal.info().name.clone(),
    }
}

/// Opens the state file (exclusive lock), signs in to both portals and checks that the state
/// file belongs to this source/target pair. Order matters: the lock first, so a second daemon
/// fails fast without touching a portal; the pair check before any task runs.
pub async fn connect(settings: Settings, command: &str) -> Result<Context, RunError> {
    let settings = Arc::new(settings);
    let path = settings.state.path.clone();
    let existed = path.exists();
    let options = store_options(&settings);
    let store = tokio::task::spawn_blocking(move || Store::open(&path, &options))
        .await
        .map_err(|join| RunError::Fatal(join.to_string()))??;
    let store = StoreHandle::new(store);
    let signed_in = tokio::try_join!(
        Portal::connect(portal_spec("source", &settings.source)),
        Portal::connect(portal_spec("target", &settings.target)),
    );
    let (source, target) = match signed_in {
        Ok(portals) => portals,
        Err(error) => {
            // A wrong password or an unreachable portal must not leave an empty state file
            // behind, which the next attempt would then have to be told about.
            if !existed {
                drop(store);
                remove_new_state_file(&settings.state.path);
            }
            return Err(error.into());
        }
    };
    let source = source.with_read_attempts(READ_ATTEMPTS);
    let target = target
        .with_upload_tuning(upload_tuning(&settings))
        .with_read_attempts(READ_ATTEMPTS);
    let (source_id, target_id) = (identity(&source), identity(&target));
    store
        .call(move |s| s.bind_pair(&source_id, &target_id))
        .await?;
    let command = command.to_string();
    let run_id = store.call(move |s| s.begin_run(&command)).await?;
    Ok(Context {
        settings,
        source,
        target,
        store,
        run_id,
        roles: Arc::default(),
        memberships: Arc::default(),
    })
}

/// Removes a state file this process created a moment ago, with its companions.
fn remove_new_state_file(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(name));
    }
}

/// `portal-migrate run --once` as a library call: plan when the state is new, then work until
/// the queue drains (or `shutdown` resolves). Safe to call again at any time: planning is
/// idempotent and the queue resumes where it stopped. The long-running mode, with sync
/// rounds and HTTP endpoints, is [`crate::service::run`].
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Summary, RunError> {
    let once = crate::service::ServiceOptions {
        once: true,
        ..crate::service::ServiceOptions::default()
    };
    crate::service::run(settings, shutdown, once).await
}
