//! Configuration in two stages, as ripgrep does with its flags: the raw layers (built-in
//! `config/default.toml`, then the `--config` file, then `PORTAL_MIGRATE__SECTION__KEY`
//! environment variables) are merged and deserialized into raw structs ([`raw`]), then
//! validated once into [`Settings`] ([`validate`]). Everything downstream works with typed
//! values: URLs, durations, resolved paths, compiled patterns and secrets already read from
//! their environment variable or file. A bad value fails here, at start-up, with a message
//! naming the key, where it was set and what to write instead.

mod error;
mod pattern;
mod raw;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::Secret;

pub use error::{Origin, SettingsError};
pub use pattern::Pattern;

/// The documented defaults, as compiled into the binary (also what `config/default.toml` says).
pub const DEFAULT_TOML: &str = raw::DEFAULT_TOML;

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = raw::ENV_PREFIX;

#[derive(Debug, Clone)]
pub struct Settings {
    pub source: PortalSettings,
    pub target: PortalSettings,
    pub state: StateSettings,
    pub workers: WorkerSettings,
    pub retry: RetrySettings,
    pub users: UserSettings,
    pub groups: GroupSettings,
    pub items: ItemSettings,
    pub existing: ExistingSettings,
    pub references: ReferenceSettings,
    pub sync: SyncSettings,
    pub service: ServiceSettings,
    pub log: LogSettings,
    /// The file the settings were loaded from (absolute), for messages and SIGHUP reloads.
    pub config_path: Option<PathBuf>,
}

/// How to reach and sign in to one portal.
#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// The portal's base URL without a trailing slash, e.g. `https://gis.example.com/portal`.
    pub url: url::Url,
    pub username: String,
    /// Read at load time from `password_env` or `password_file`.
    pub password: Secret,
    pub allow_http: bool,
    /// Extra CA certificate(s) to trust, resolved against the config directory.
    pub ca_file: Option<PathBuf>,
    /// Only ever true for loopback hosts; validation refuses it elsewhere.
    pub accept_invalid_certs: bool,
    pub timeout: Duration,
    pub token_minutes: u32,
    /// From `rate_limit.source_rps` / `target_rps`; `None` = unlimited.
    pub rate_limit_rps: Option<NonZeroU32>,
}

#[derive(Debug, Clone)]
pub struct StateSettings {
    pub path: PathBuf,
    pub synchronous: Synchronous,
    pub busy_timeout: Duration,
}

/// SQLite `PRAGMA synchronous` for the state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    Full,
    Normal,
}

impl Synchronous {
    pub fn as_pragma(&self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// 1..=256.
    pub count: usize,
    pub lease: Duration,
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct RetrySettings {
    /// At least 1.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    /// Never less than `initial_backoff`.
    pub max_backoff: Duration,
    pub portal_down_pause: Duration,
}

#[derive(Debug, Clone)]
pub struct UserSettings {
    /// Empty = every user.
    pub include: Vec<Pattern>,
    pub exclude: Vec<Pattern>,
    pub exclude_default_admin: bool,
    pub password_policy: PasswordPolicy,
    /// Where generated passwords go; resolved, defaulting to beside the state file.
    pub credentials_file: PathBuf,
    /// Source username → target username; no two sources map to one target.
    pub rename: BTreeMap<String, String>,
    /// Source role (id or custom role name) → target role id.
    pub role_map: BTreeMap<String, String>,
    /// Source user license type id → target user license type id.
    pub license_map: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordPolicy {
    /// A random password per user, written to the credentials file.
    Generate,
    /// One password for every created user, read from the named environment variable at load.
    FromEnv(Secret),
    /// No password: the user is invited (ArcGIS Online targets).
    Invite,
}

#[derive(Debug, Clone)]
pub struct GroupSettings {
    /// Empty = every group.
    pub include_titles: Vec<Pattern>,
    pub exclude_titles: Vec<Pattern>,
    pub exclude_owners: Vec<Pattern>,
    pub access_translation: AccessTranslation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessTranslation {
    /// Access exactly as in the source.
    Keep,
    /// The Esri notebook's translation (org→public for Enterprise targets, public→org from
    /// Enterprise to Online); opt-in because it can widen access.
    Notebook,
}

#[derive(Debug, Clone)]
pub struct ItemSettings {
    /// Exact item type names; empty = every type.
    pub include_types: Vec<String>,
    pub exclude_types: Vec<String>,
    /// Empty = no tag filter.
    pub include_tags: Vec<Pattern>,
    pub exclude_tags: Vec<Pattern>,
    /// Folder titles; `/` is the root folder. Empty = every folder.
    pub include_folders: Vec<Pattern>,
    pub exclude_folders: Vec<Pattern>,
    /// Epoch milliseconds (the portal's `modified` unit); `None` = no date filter.
    pub modified_after: Option<i64>,
    /// Bytes; files larger than this go up in parts.
    pub multipart_threshold: u64,
    /// Bytes per uploaded part.
    pub part_size: u64,
}

/// What to do when the target already has the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingPolicy {
    Adopt,
    Update,
    Skip,
    Fail,
}

#[derive(Debug, Clone)]
pub struct ExistingSettings {
    pub users: ExistingPolicy,
    pub groups: ExistingPolicy,
    pub folders: ExistingPolicy,
    pub items: ExistingPolicy,
}

#[derive(Debug, Clone)]
pub struct ReferenceSettings {
    /// (source service root, target service root), without trailing slashes, longest source
    /// prefix first so the most specific mapping wins when scanning in order.
    pub url_map: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// `None` = run once and exit.
    pub interval: Option<Duration>,
    pub propagate_deletes: bool,
}

#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// `None` when `service.enabled = false`.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A valid `EnvFilter` directive such as `info` or `portal_migrate=debug,info`.
    pub level: String,
}

impl Settings {
    /// Loads `path` over the built-in defaults, with overrides from the process environment.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        Settings::load_with_env(Some(path), &process_environment())
    }

    /// Loads with an explicit environment (used both for `PORTAL_MIGRATE__…` overrides and for
    /// the variables named by `password_env`), so tests never touch the process environment.
    /// Without a path, only the defaults and the environment apply and relative paths stay
    /// relative to the working directory.
    pub fn load_with_env(
        path: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Settings, SettingsError> {
        Settings::load_layers(path, env, validate::Secrets::Required)
    }

    /// For commands that only read or flag the state file (`status`, `report`, `pause`,
    /// `resume`): everything is validated except the passwords, which are neither needed nor
    /// read, so an operator can check progress from a shell that does not hold them.
    pub fn load_for_inspection(path: &Path) -> Result<Settings, SettingsError> {
        Settings::load_layers(
            Some(path),
            &process_environment(),
            validate::Secrets::NotNeeded,
        )
    }

    fn load_layers(
        path: Option<&Path>,
        env: &HashMap<String, String>,
        secrets: validate::Secrets,
    ) -> Result<Settings, SettingsError> {
        let Some(path) = path else {
            return validate::assemble(raw::UserLayer::None, Path::new(""), None, env, secrets);
        };
        // Absolute, so that the directory used for relative paths and the path reported in
        // messages do not depend on where the daemon was started from.
        let path = std::path::absolute(path).map_err(|source| SettingsError::FileUnreadable {
            path: path.to_path_buf(),
            source,
        })?;
        let text = fs::read_to_string(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => SettingsError::FileNotFound { path: path.clone() },
            _ => SettingsError::FileUnreadable {
                path: path.clone(),
                source,
            },
        })?;
        let base_dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        validate::assemble(
            raw::UserLayer::File {
                path: &path,
                text: &text,
            },
            &base_dir,
            Some(path.clone()),
            env,
            secrets,
        )
    }

    /// Settings from TOML text, with relative paths resolved against `base_dir`: for tests and
    /// the demo, which have no config file.
    pub fn from_toml_str(
        toml: &str,
        base_dir: &Path,
        env: &HashMap<String, String>,
    ) -> Result<Settings, SettingsError> {
        validate::assemble(
            raw::UserLayer::Text(toml),
            base_dir,
            None,
            env,
            validate::Secrets::Required,
        )
    }

    /// Where generated user passwords are written.
    pub fn credentials_path(&self) -> &Path {
        &self.users.credentials_file
    }
}

fn process_environment() -> HashMap<String, String> {
    // A variable that is not valid Unicode cannot be a key override or a password we could
    // send in a form anyway; leaving it out makes it "not set", which the messages explain.
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}
