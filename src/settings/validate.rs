//! Stage two: raw values become typed [`Settings`], or the first problem becomes a
//! [`SettingsError`] that says which key is wrong, what it holds and what to write instead.
//! Secrets are read here (from the environment or a file) so that a missing password stops
//! the program at start-up rather than at the first request; their values never appear in a
//! message.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use url::{Host, Url};

use super::error::{Origin, SettingsError};
use super::raw::{
    env_variable_for, Layers, RawExisting, RawGroups, RawItems, RawPortal, RawSettings, UserLayer,
};
use super::{
    AccessTranslation, ExistingPolicy, ExistingSettings, GroupSettings, ItemSettings, LogFormat,
    LogSettings, PasswordPolicy, Pattern, PortalSettings, ReferenceSettings, RetrySettings,
    ServiceSettings, Settings, StateSettings, SyncSettings, Synchronous, UserSettings,
    WorkerSettings,
};
use crate::secret::Secret;

type Result<T> = std::result::Result<T, SettingsError>;

const MIB: u64 = 1024 * 1024;

/// Merges the layers, deserializes and validates; a validation error is then told which layer
/// set the offending key.
pub(crate) fn assemble(
    user: UserLayer<'_>,
    base_dir: &Path,
    config_path: Option<PathBuf>,
    env: &HashMap<String, String>,
    secrets: Secrets,
) -> Result<Settings> {
    let layers = Layers::build(user, env)?;
    let raw = layers.deserialize()?;
    let context = Context {
        base_dir,
        env,
        secrets,
    };
    let mut settings = context.settings(raw).map_err(|error| match error {
        SettingsError::Invalid {
            origin: None,
            key,
            message,
        } => SettingsError::Invalid {
            // A default is never wrong on its own, only in combination with what the user set
            // (e.g. an empty users.password_env with password_policy = "env"); blaming the
            // defaults would send the operator to a file they did not write.
            origin: layers
                .origin_of(&key)
                .filter(|origin| *origin != Origin::Defaults),
            key,
            message,
        },
        other => other,
    })?;
    settings.config_path = config_path;
    Ok(settings)
}

struct Context<'a> {
    /// Directory relative paths are resolved against: the config file's.
    base_dir: &'a Path,
    /// Looked up for the variables named by `password_env` keys.
    env: &'a HashMap<String, String>,
    secrets: Secrets,
}

/// Whether passwords are read. Commands that only read the state file (status, report,
/// pause, resume) must work in a shell that does not hold the portal passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Secrets {
    Required,
    NotNeeded,
}

impl Context<'_> {
    fn settings(&self, raw: RawSettings) -> Result<Settings> {
        let source = self.portal("source", raw.source, raw.rate_limit.source_rps)?;
        let target = self.portal("target", raw.target, raw.rate_limit.target_rps)?;

        let state_path = self.required_path("state.path", &raw.state.path)?;
        let state = StateSettings {
            synchronous: choice(
                "state.synchronous",
                &raw.state.synchronous,
                &[("full", Synchronous::Full), ("normal", Synchronous::Normal)],
            )?,
            busy_timeout: millis(
                "state.busy_timeout_ms",
                raw.state.busy_timeout_ms,
                0,
                600_000,
            )?,
            path: state_path,
        };

        let workers = WorkerSettings {
            count: in_range("workers.count", raw.workers.count, 1, 256)?,
            lease: secs("workers.lease_secs", raw.workers.lease_secs, 1, 86_400)?,
            shutdown_grace: secs(
                "workers.shutdown_grace_secs",
                raw.workers.shutdown_grace_secs,
                0,
                3_600,
            )?,
        };

        let retry = RetrySettings {
            max_attempts: in_range("retry.max_attempts", raw.retry.max_attempts, 1, 1_000)?,
            initial_backoff: millis(
                "retry.initial_backoff_ms",
                raw.retry.initial_backoff_ms,
                1,
                3_600_000,
            )?,
            max_backoff: secs(
                "retry.max_backoff_secs",
                raw.retry.max_backoff_secs,
                1,
                86_400,
            )?,
            portal_down_pause: secs(
                "retry.portal_down_pause_secs",
                raw.retry.portal_down_pause_secs,
                1,
                86_400,
            )?,
        };
        if retry.max_backoff < retry.initial_backoff {
            return Err(SettingsError::invalid(
                "retry.max_backoff_secs",
                format!(
                    "{} s is shorter than retry.initial_backoff_ms ({} ms); raise max_backoff_secs or lower initial_backoff_ms",
                    raw.retry.max_backoff_secs, raw.retry.initial_backoff_ms
                ),
            ));
        }

        let users = self.users(raw.users, &state.path)?;
        let groups = groups(raw.groups)?;
        let items = items(raw.items)?;
        let existing = existing(raw.existing)?;
        let references = ReferenceSettings {
            url_map: url_map(raw.references.url_map)?,
        };

        let interval_secs =
            in_range::<u64>("sync.interval_secs", raw.sync.interval_secs, 0, 31_536_000)?;
        let sync = SyncSettings {
            interval: (interval_secs > 0).then(|| Duration::from_secs(interval_secs)),
            propagate_deletes: raw.sync.propagate_deletes,
        };

        // A disabled endpoint's address is not checked: an operator switching the endpoints off
        // with one environment variable should not also have to fix an address they don't use.
        let service = ServiceSettings {
            listen: if raw.service.enabled {
                Some(raw.service.listen.trim().parse::<SocketAddr>().map_err(|_| {
                    SettingsError::invalid(
                        "service.listen",
                        format!(
                            "'{}' is not a socket address (expected IP:PORT, e.g. 127.0.0.1:9464, or set service.enabled = false)",
                            raw.service.listen
                        ),
                    )
                })?)
            } else {
                None
            },
        };

        let log = LogSettings {
            format: choice(
                "log.format",
                &raw.log.format,
                &[("human", LogFormat::Human), ("json", LogFormat::Json)],
            )?,
            level: log_level(&raw.log.level)?,
        };

        Ok(Settings {
            source,
            target,
            state,
            workers,
            retry,
            users,
            groups,
            items,
            existing,
            references,
            sync,
            service,
            log,
            config_path: None,
        })
    }

    fn portal(&self, side: &str, raw: RawPortal, rps: i64) -> Result<PortalSettings> {
        let url_key = format!("{side}.url");
        let url_text = non_empty(raw.url).ok_or_else(|| {
            SettingsError::invalid(
                &url_key,
                format!(
                    "is required: set {side}.url = \"https://host/portal\" in the config file or {}",
                    env_variable_for(&url_key)
                ),
            )
        })?;
        let url = portal_url(&url_key, &url_text)?;
        let loopback = is_loopback(&url);
        if url.scheme() == "http" && !loopback && !raw.allow_http {
            return Err(SettingsError::invalid(
                &url_key,
                format!(
                    "plain http:// is only allowed for loopback hosts; use https:// or set {side}.allow_http = true (got '{url}')"
                ),
            ));
        }
        if raw.accept_invalid_certs && !loopback {
            return Err(SettingsError::invalid(
                format!("{side}.accept_invalid_certs"),
                format!(
                    "true is only allowed for loopback hosts, not {}; set {side}.ca_file to the portal's CA certificate instead",
                    url.host_str().unwrap_or_default()
                ),
            ));
        }

        let username_key = format!("{side}.username");
        let username = non_empty(raw.username).ok_or_else(|| {
            SettingsError::invalid(
                &username_key,
                format!(
                    "is required: set {side}.username to the account to sign in with (in the config file or {})",
                    env_variable_for(&username_key)
                ),
            )
        })?;

        let password = match (non_empty(raw.password_env), non_empty(raw.password_file)) {
            (Some(variable), None) => {
                self.secret_from_env(&format!("{side}.password_env"), &variable)?
            }
            (None, Some(file)) => self.secret_from_file(&format!("{side}.password_file"), &file)?,
            (Some(_), Some(_)) => {
                return Err(SettingsError::invalid(
                    side,
                    "set exactly one of password_env or password_file (both are set); remove one",
                ))
            }
            (None, None) => {
                return Err(SettingsError::invalid(
                    side,
                    format!(
                        "set exactly one of password_env or password_file (neither is set), e.g. password_env = \"{}_PORTAL_PASSWORD\"",
                        side.to_uppercase()
                    ),
                ))
            }
        };

        let ca_file = if raw.ca_file.trim().is_empty() {
            None
        } else {
            let path = self.resolve(&raw.ca_file);
            if !path.is_file() {
                return Err(SettingsError::invalid(
                    format!("{side}.ca_file"),
                    format!(
                        "{} not found (expected a PEM file with the portal's CA certificate; leave empty for the system roots)",
                        path.display()
                    ),
                ));
            }
            Some(path)
        };

        let rps_key = format!("rate_limit.{side}_rps");
        Ok(PortalSettings {
            url,
            username,
            password,
            allow_http: raw.allow_http,
            ca_file,
            accept_invalid_certs: raw.accept_invalid_certs,
            timeout: secs(&format!("{side}.timeout_secs"), raw.timeout_secs, 1, 86_400)?,
            token_minutes: in_range(
                &format!("{side}.token_minutes"),
                raw.token_minutes,
                1,
                20_160,
            )?,
            rate_limit_rps: NonZeroU32::new(in_range(&rps_key, rps, 0, 1_000_000)?),
        })
    }

    fn secret_from_env(&self, key: &str, variable: &str) -> Result<Secret> {
        if self.secrets == Secrets::NotNeeded {
            return Ok(Secret::new(""));
        }
        if !is_env_variable_name(variable) {
            // Deliberately not echoed: a value that is not a variable name may be the password.
            return Err(SettingsError::invalid(
                key,
                "must be the NAME of an environment variable (letters, digits and _), not the password itself",
            ));
        }
        match self.env.get(variable) {
            None => Err(SettingsError::invalid(
                key,
                format!("environment variable {variable} is not set; export it with the password before starting"),
            )),
            Some(value) if value.is_empty() => Err(SettingsError::invalid(
                key,
                format!("environment variable {variable} is empty; export it with the password before starting"),
            )),
            Some(value) => Ok(Secret::new(value.clone())),
        }
    }

    fn secret_from_file(&self, key: &str, file: &str) -> Result<Secret> {
        if self.secrets == Secrets::NotNeeded {
            return Ok(Secret::new(""));
        }
        let path = self.resolve(file);
        let unreadable = |error: io::Error| {
            SettingsError::invalid(
                key,
                match error.kind() {
                    io::ErrorKind::NotFound => format!(
                        "{} not found; create it containing only the password and run chmod 600 on it",
                        path.display()
                    ),
                    _ => format!("{} cannot be read ({error}); check its owner and permissions", path.display()),
                },
            )
        };
        let metadata = fs::metadata(&path).map_err(unreadable)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SettingsError::invalid(
                    key,
                    format!(
                        "{} is readable by group or others (mode {mode:04o}); run chmod 600 {}",
                        path.display(),
                        path.display()
                    ),
                ));
            }
        }
        #[cfg(not(unix))]
        let _ = metadata;
        let contents = fs::read_to_string(&path).map_err(unreadable)?;
        // Editors and `echo` add a final newline that is not part of the password.
        let password = contents.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            return Err(SettingsError::invalid(
                key,
                format!("{} is empty; write the password into it", path.display()),
            ));
        }
        Ok(Secret::new(password))
    }

    fn users(&self, raw: super::raw::RawUsers, state_path: &Path) -> Result<UserSettings> {
        let policy_name = raw.password_policy.trim().to_lowercase();
        let password_env = raw.password_env.trim();
        let password_policy = match policy_name.as_str() {
            "generate" | "invite" if !password_env.is_empty() => {
                return Err(SettingsError::invalid(
                    "users.password_env",
                    format!(
                        "is only used with users.password_policy = \"env\" (the policy is \"{policy_name}\"); remove it or set password_policy = \"env\""
                    ),
                ))
            }
            "generate" => PasswordPolicy::Generate,
            "invite" => PasswordPolicy::Invite,
            "env" if password_env.is_empty() => {
                return Err(SettingsError::invalid(
                    "users.password_env",
                    "is required with users.password_policy = \"env\": set it to the name of the environment variable holding the password for created users",
                ))
            }
            "env" => PasswordPolicy::FromEnv(self.secret_from_env("users.password_env", password_env)?),
            _ => {
                return Err(not_one_of(
                    "users.password_policy",
                    &raw.password_policy,
                    &["generate", "env", "invite"],
                ))
            }
        };

        let credentials_file = if raw.credentials_file.trim().is_empty() {
            // Beside the state file, so whoever can read the state can find the passwords, and
            // no one else needs to be told where they went.
            let stem = state_path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_else(|| "portal-migrate".to_owned());
            state_path.with_file_name(format!("{stem}.credentials.csv"))
        } else {
            self.resolve(&raw.credentials_file)
        };

        let rename = string_map("users.rename", raw.rename)?;
        let mut targets: BTreeMap<String, &String> = BTreeMap::new();
        for (source, target) in &rename {
            if let Some(other) = targets.insert(target.to_lowercase(), source) {
                return Err(SettingsError::invalid(
                    "users.rename",
                    format!(
                        "'{other}' and '{source}' are both renamed to '{target}'; give each user its own target username"
                    ),
                ));
            }
        }

        Ok(UserSettings {
            include: patterns("users.include", raw.include)?,
            exclude: patterns("users.exclude", raw.exclude)?,
            exclude_default_admin: raw.exclude_default_admin,
            password_policy,
            credentials_file,
            rename,
            role_map: string_map("users.role_map", raw.role_map)?,
            license_map: string_map("users.license_map", raw.license_map)?,
        })
    }

    fn required_path(&self, key: &str, value: &str) -> Result<PathBuf> {
        if value.trim().is_empty() {
            return Err(SettingsError::invalid(
                key,
                "must not be empty; give a file path such as \"portal-migrate.db\"",
            ));
        }
        Ok(self.resolve(value))
    }

    fn resolve(&self, value: &str) -> PathBuf {
        let path = Path::new(value.trim());
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}

fn groups(raw: RawGroups) -> Result<GroupSettings> {
    Ok(GroupSettings {
        include_titles: patterns("groups.include_titles", raw.include_titles)?,
        exclude_titles: patterns("groups.exclude_titles", raw.exclude_titles)?,
        exclude_owners: patterns("groups.exclude_owners", raw.exclude_owners)?,
        access_translation: choice(
            "groups.access_translation",
            &raw.access_translation,
            &[
                ("keep", AccessTranslation::Keep),
                ("notebook", AccessTranslation::Notebook),
            ],
        )?,
    })
}

fn items(raw: RawItems) -> Result<ItemSettings> {
    let threshold_mb: u64 = in_range(
        "items.multipart_threshold_mb",
        raw.multipart_threshold_mb,
        1,
        1_048_576,
    )?;
    let part_mb: u64 = in_range("items.part_size_mb", raw.part_size_mb, 1, 1_024)?;
    Ok(ItemSettings {
        include_types: item_types("items.include_types", raw.include_types)?,
        exclude_types: item_types("items.exclude_types", raw.exclude_types)?,
        include_tags: patterns("items.include_tags", raw.include_tags)?,
        exclude_tags: patterns("items.exclude_tags", raw.exclude_tags)?,
        include_folders: patterns("items.include_folders", raw.include_folders)?,
        exclude_folders: patterns("items.exclude_folders", raw.exclude_folders)?,
        modified_after: modified_after(&raw.modified_after)?,
        multipart_threshold: threshold_mb * MIB,
        part_size: part_mb * MIB,
    })
}

fn existing(raw: RawExisting) -> Result<ExistingSettings> {
    let policy = |key: &str, value: &str| {
        choice(
            key,
            value,
            &[
                ("adopt", ExistingPolicy::Adopt),
                ("update", ExistingPolicy::Update),
                ("skip", ExistingPolicy::Skip),
                ("fail", ExistingPolicy::Fail),
            ],
        )
    };
    Ok(ExistingSettings {
        users: policy("existing.users", &raw.users)?,
        groups: policy("existing.groups", &raw.groups)?,
        folders: policy("existing.folders", &raw.folders)?,
        items: policy("existing.items", &raw.items)?,
    })
}

fn url_map(raw: BTreeMap<String, String>) -> Result<Vec<(String, String)>> {
    let key = "references.url_map";
    let service_root = |value: &str| -> Result<String> {
        match Url::parse(value.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                Ok(value.trim().trim_end_matches('/').to_owned())
            }
            _ => Err(SettingsError::invalid(
                key,
                format!(
                    "'{}' is not a service root URL (expected e.g. https://host/server/rest/services)",
                    redact_userinfo(value)
                ),
            )),
        }
    };
    let mut map = raw
        .iter()
        .map(|(source, target)| Ok((service_root(source)?, service_root(target)?)))
        .collect::<Result<Vec<_>>>()?;
    // Longest source first, so "…/services/Hosted" wins over "…/services" for URLs under both.
    map.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    Ok(map)
}

fn log_level(level: &str) -> Result<String> {
    let level = level.trim();
    let invalid = |detail: String| {
        SettingsError::invalid(
            "log.level",
            format!(
                "'{level}' is not a valid log filter{detail}; use a level (error, warn, info, debug, trace) or directives such as \"portal_migrate=debug,info\""
            ),
        )
    };
    if level.is_empty() {
        return Err(invalid(String::new()));
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(level)
        .map_err(|error| invalid(format!(" ({error})")))?;
    Ok(level.to_owned())
}

/// RFC 3339 date (midnight UTC) or date-time, as epoch milliseconds.
fn modified_after(value: &str) -> Result<Option<i64>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let is_date_only = value.len() == 10 && !value.contains(['T', 't', ' ']);
    let date_time = if is_date_only {
        format!("{value}T00:00:00Z")
    } else {
        value.to_owned()
    };
    let parsed = OffsetDateTime::parse(&date_time, &Rfc3339).map_err(|_| {
        SettingsError::invalid(
            "items.modified_after",
            format!(
                "'{value}' is not an RFC 3339 date or date-time (expected e.g. 2024-01-31 or 2024-01-31T08:00:00Z)"
            ),
        )
    })?;
    let millis = parsed.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(millis).map(Some).map_err(|_| {
        SettingsError::invalid("items.modified_after", format!("'{value}' is out of range"))
    })
}

fn portal_url(key: &str, text: &str) -> Result<Url> {
    let not_a_portal_url = || {
        SettingsError::invalid(
            key,
            format!(
                "'{}' is not a valid URL (expected https://host/portal)",
                redact_userinfo(text)
            ),
        )
    };
    let mut url = Url::parse(text.trim()).map_err(|_| not_a_portal_url())?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(not_a_portal_url());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SettingsError::invalid(
            key,
            "must not contain a username or password; use the username key and password_env or password_file",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(SettingsError::invalid(
            key,
            format!(
                "'{url}' must not contain a query (?) or fragment (#); give the portal's base URL, e.g. https://host/portal"
            ),
        ));
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            domain == "localhost" || domain.ends_with(".localhost")
        }
        None => false,
    }
}

/// A URL as it may be quoted in a message: any `user:password@` part replaced.
fn redact_userinfo(text: &str) -> String {
    let text = text.trim();
    let authority_start = text.find("://").map_or(0, |at| at + 3);
    let authority_end = text[authority_start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |at| authority_start + at);
    match text[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}***@{}",
            &text[..authority_start],
            &text[authority_start + at + 1..]
        ),
        None => text.to_owned(),
    }
}

fn is_env_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(first) if first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

fn in_range<T>(key: &str, value: i64, low: i64, high: i64) -> Result<T>
where
    T: TryFrom<i64>,
{
    if value < low || value > high {
        return Err(SettingsError::invalid(
            key,
            format!("{value} is out of range (expected {low} to {high})"),
        ));
    }
    T::try_from(value).map_err(|_| {
        SettingsError::invalid(
            key,
            format!("{value} does not fit on this platform (expected {low} to {high})"),
        )
    })
}

fn secs(key: &str, value: i64, low: i64, high: i64) -> Result<Duration> {
    in_range::<u64>(key, value, low, high).map(Duration::from_secs)
}

fn millis(key: &str, value: i64, low: i64, high: i64) -> Result<Duration> {
    in_range::<u64>(key, value, low, high).map(Duration::from_millis)
}

/// One of a fixed set of words, case-insensitive.
fn choice<T: Copy>(key: &str, value: &str, options: &[(&str, T)]) -> Result<T> {
    let wanted = value.trim().to_lowercase();
    options
        .iter()
        .find(|(name, _)| *name == wanted)
        .map(|(_, option)| *option)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
            not_one_of(key, value, &names)
        })
}

fn not_one_of(key: &str, value: &str, names: &[impl Display]) -> SettingsError {
    let expected = names
        .iter()
        .map(|name| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join(", ");
    SettingsError::invalid(
        key,
        format!("'{value}' is not a valid value (expected one of {expected})"),
    )
}

fn patterns(key: &str, raw: Vec<String>) -> Result<Vec<Pattern>> {
    raw.iter()
        .enumerate()
        .map(|(index, text)| {
            Pattern::new(text.trim()).ok_or_else(|| {
                SettingsError::invalid(
                    key,
                    format!(
                        "entry {} is empty; remove it or write a pattern such as \"esri_*\"",
                        index + 1
                    ),
                )
            })
        })
        .collect()
}

fn item_types(key: &str, raw: Vec<String>) -> Result<Vec<String>> {
    raw.into_iter()
        .enumerate()
        .map(|(index, item_type)| {
            let item_type = item_type.trim().to_owned();
            if item_type.is_empty() {
                Err(SettingsError::invalid(
                    key,
                    format!(
                        "entry {} is empty; remove it or write an item type such as \"Web Map\"",
                        index + 1
                    ),
                ))
            } else {
                Ok(item_type)
            }
        })
        .collect()
}

fn string_map(key: &str, raw: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    raw.into_iter()
        .map(|(from, to)| {
            let (from, to) = (from.trim().to_owned(), to.trim().to_owned());
            if from.is_empty() || to.is_empty() {
                Err(SettingsError::invalid(
                    key,
                    format!(
                        "'{from}' = '{to}' has an empty side; write \"source name\" = \"target name\""
                    ),
                ))
            } else {
                Ok((from, to))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_redacted_before_a_url_is_quoted() {
        assert_eq!(
            redact_userinfo("htps://admin:hunter2@host/portal"),
            "htps://***@host/portal"
        );
        assert_eq!(
            redact_userinfo("https://host/portal"),
            "https://host/portal"
        );
        assert_eq!(redact_userinfo("host/p@th"), "host/p@th");
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        let cases = [
            ("http://127.0.0.1:8080/portal", true),
            ("http://127.1.2.3/portal", true),
            ("http://[::1]/portal", true),
            ("http://localhost/portal", true),
            ("http://sim.localhost/portal", true),
            ("http://10.0.0.1/portal", false),
            ("http://localhost.example.com/portal", false),
        ];
        for (url, loopback) in cases {
            assert_eq!(is_loopback(&Url::parse(url).unwrap()), loopback, "{url}");
        }
    }

    #[test]
    fn dates_and_date_times_become_epoch_milliseconds() {
        assert_eq!(modified_after("").unwrap(), None);
        assert_eq!(modified_after("1970-01-02").unwrap(), Some(86_400_000));
        assert_eq!(
            modified_after("2024-01-31T08:00:00Z").unwrap(),
            Some(1_706_688_000_000)
        );
        assert_eq!(
            modified_after("2024-01-31T09:00:00+01:00").unwrap(),
            Some(1_706_688_000_000)
        );
        assert!(modified_after("2024-13-01").is_err());
        assert!(modified_after("yesterday").is_err());
    }

    #[test]
    fn url_map_puts_the_longest_source_first() {
        let raw = BTreeMap::from([
            (
                "https://a/server/rest/services/".to_owned(),
                "https://b/server/rest/services".to_owned(),
            ),
            (
                "https://a/server/rest/services/Hosted".to_owned(),
                "https://b/server/rest/services/Moved".to_owned(),
            ),
        ]);
        let map = url_map(raw).unwrap();
        assert_eq!(map[0].0, "https://a/server/rest/services/Hosted");
        assert_eq!(map[1].0, "https://a/server/rest/services");
    }
}
