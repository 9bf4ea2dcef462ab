//! Stage one: the configuration exactly as written. Three layers (built-in defaults, the
//! config file, `PORTAL_MIGRATE__…` environment variables) are merged by the `config` crate
//! and deserialized into these structs, which mirror `config/default.toml` key for key.
//! `deny_unknown_fields` turns a misspelled key into an error instead of a silently ignored
//! setting. Nothing outside `settings` sees these types; `validate` turns them into
//! [`super::Settings`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use config::{Config, ConfigError, Format, Map, Source, Value, ValueKind};
use serde::Deserialize;

use super::error::{Origin, SettingsError};

/// The documented defaults; the file is the source of truth, not a copy of it.
pub(crate) const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

pub(crate) const ENV_PREFIX: &str = "PORTAL_MIGRATE";
const ENV_SEPARATOR: &str = "__";

// Labels given to each layer's values so an error can say where a bad value came from.
const DEFAULTS_URI: &str = "<built-in defaults>";
const TEXT_URI: &str = "<configuration text>";
const ENVIRONMENT_URI: &str = "<environment>";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSettings {
    pub source: RawPortal,
    pub target: RawPortal,
    pub state: RawState,
    pub workers: RawWorkers,
    pub rate_limit: RawRateLimit,
    pub retry: RawRetry,
    pub users: RawUsers,
    pub groups: RawGroups,
    pub items: RawItems,
    pub existing: RawExisting,
    pub references: RawReferences,
    pub sync: RawSync,
    pub service: RawService,
    pub log: RawLog,
}

// Integers are read as i64 so that a negative or oversized value reaches validation, which
// can say "0 is out of range (1 to 256)" instead of a bare type error.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPortal {
    pub url: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub allow_http: bool,
    pub ca_file: String,
    pub accept_invalid_certs: bool,
    pub timeout_secs: i64,
    pub token_minutes: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawState {
    pub path: String,
    pub synchronous: String,
    pub busy_timeout_ms: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkers {
    pub count: i64,
    pub lease_secs: i64,
    pub shutdown_grace_secs: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    pub source_rps: i64,
    pub target_rps: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    pub max_attempts: i64,
    pub initial_backoff_ms: i64,
    pub max_backoff_secs: i64,
    pub portal_down_pause_secs: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUsers {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub exclude_default_admin: bool,
    pub password_policy: String,
    pub password_env: String,
    pub credentials_file: String,
    pub rename: BTreeMap<String, String>,
    pub role_map: BTreeMap<String, String>,
    pub license_map: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroups {
    pub include_titles: Vec<String>,
    pub exclude_titles: Vec<String>,
    pub exclude_owners: Vec<String>,
    pub access_translation: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawItems {
    pub include_types: Vec<String>,
    pub exclude_types: Vec<String>,
    pub include_tags: Vec<String>,
    pub exclude_tags: Vec<String>,
    pub include_folders: Vec<String>,
    pub exclude_folders: Vec<String>,
    pub modified_after: String,
    pub multipart_threshold_mb: i64,
    pub part_size_mb: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExisting {
    pub users: String,
    pub groups: String,
    pub folders: String,
    pub items: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReferences {
    pub url_map: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSync {
    pub interval_secs: i64,
    pub propagate_deletes: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub listen: String,
    pub enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub format: String,
    pub level: String,
}

/// Where the user's layer came from, for naming it in errors.
#[derive(Debug, Clone)]
pub(crate) enum UserLayer<'a> {
    File { path: &'a Path, text: &'a str },
    Text(&'a str),
    None,
}

/// The merged layers, kept after deserialization so that validation errors can also say
/// which layer set the offending key.
pub(crate) struct Layers {
    merged: Config,
    file_path: Option<std::path::PathBuf>,
}

impl Layers {
    pub(crate) fn build(
        user: UserLayer<'_>,
        env: &HashMap<String, String>,
    ) -> Result<Layers, SettingsError> {
        let defaults = ParsedToml::parse(DEFAULTS_URI, DEFAULT_TOML, Origin::Defaults)?;
        let environment = EnvironmentOverrides::collect(env, &defaults);
        let mut builder = Config::builder().add_source(defaults);
        let mut file_path = None;
        match user {
            UserLayer::File { path, text } => {
                let uri = path.display().to_string();
                let origin = Origin::File(path.to_path_buf());
                builder = builder.add_source(ParsedToml::parse(&uri, text, origin)?);
                file_path = Some(path.to_path_buf());
            }
            UserLayer::Text(text) => {
                builder = builder.add_source(ParsedToml::parse(TEXT_URI, text, Origin::Text)?);
            }
            UserLayer::None => {}
        }
        builder = builder.add_source(environment);
        let merged = builder
            .build()
            .map_err(|error| SettingsError::Other(error.to_string()))?;
        Ok(Layers { merged, file_path })
    }

    pub(crate) fn deserialize(&self) -> Result<RawSettings, SettingsError> {
        serde_path_to_error::deserialize(self.merged.clone())
            .map_err(|error| self.describe_deserialize_error(error))
    }

    /// Which layer set `key`, if the key holds a single value (not a section).
    pub(crate) fn origin_of(&self, key: &str) -> Option<Origin> {
        let value = lookup(&self.merged.cache, key)?;
        if matches!(value.kind, ValueKind::Table(_)) {
            return None;
        }
        Some(self.origin_from_uri(value.origin()?, key))
    }

    /// The layer of some value under `key`: used for unknown keys, where the offending key may
    /// be a whole section whose own table carries no origin. For the environment, the variable
    /// named is the one that set that value.
    fn origin_of_anything_under(&self, key: &str) -> Option<Origin> {
        let value = lookup(&self.merged.cache, key)?;
        let (leaf_key, uri) = first_leaf(key.to_owned(), value)?;
        Some(self.origin_from_uri(uri, &leaf_key))
    }

    fn origin_from_uri(&self, uri: &str, key: &str) -> Origin {
        match uri {
            DEFAULTS_URI => Origin::Defaults,
            TEXT_URI => Origin::Text,
            ENVIRONMENT_URI => Origin::Environment {
                variable: env_variable_for(key),
            },
            _ => match &self.file_path {
                Some(path) => Origin::File(path.clone()),
                None => Origin::Text,
            },
        }
    }

    fn describe_deserialize_error(
        &self,
        error: serde_path_to_error::Error<ConfigError>,
    ) -> SettingsError {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = match &inner {
            ConfigError::At { error, .. } => error.to_string(),
            other => other.to_string(),
        };
        if let Some(unknown) = unknown_field(&message) {
            // serde reports the unknown field itself as the last path segment.
            let key = if path.ends_with(&unknown.field) {
                path.clone()
            } else if path == "." {
                unknown.field.clone()
            } else {
                format!("{path}.{}", unknown.field)
            };
            let origin = self
                .origin_of_anything_under(&key)
                .unwrap_or_else(|| self.user_origin());
            return SettingsError::UnknownKey {
                origin,
                suggestion: closest(&unknown.field, &unknown.expected),
                expected: unknown.expected.join(", "),
                key,
            };
        }
        match inner {
            ConfigError::Type {
                unexpected,
                expected,
                ..
            } => SettingsError::WrongType {
                origin: self.origin_of(&path),
                key: path,
                expected: expected.to_owned(),
                found: unexpected.to_string(),
            },
            ConfigError::NotFound(key) => SettingsError::Invalid {
                origin: None,
                key: if path == "." { key } else { path },
                message: "is missing from the built-in defaults; this is a bug in portal-migrate"
                    .to_owned(),
            },
            other => SettingsError::Invalid {
                origin: self.origin_of(&path),
                key: path,
                message: match other {
                    ConfigError::At { error, .. } => error.to_string(),
                    error => error.to_string(),
                },
            },
        }
    }

    fn user_origin(&self) -> Origin {
        match &self.file_path {
            Some(path) => Origin::File(path.clone()),
            None => Origin::Text,
        }
    }
}

/// The merged value at a dotted key. Read from the cache directly because `Config::get`
/// deserializes a copy, which loses the origin we are after.
fn lookup<'a>(root: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.')
        .try_fold(root, |value, segment| match &value.kind {
            ValueKind::Table(table) => table.get(segment),
            _ => None,
        })
}

fn first_leaf(key: String, value: &Value) -> Option<(String, &str)> {
    match &value.kind {
        ValueKind::Table(table) => table
            .iter()
            .find_map(|(child, value)| first_leaf(format!("{key}.{child}"), value)),
        _ => Some((key, value.origin()?)),
    }
}

/// `workers.count` → `PORTAL_MIGRATE__WORKERS__COUNT`.
pub(crate) fn env_variable_for(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{ENV_SEPARATOR}{}",
        key.replace('.', ENV_SEPARATOR).to_uppercase()
    )
}

struct UnknownField {
    field: String,
    expected: Vec<String>,
}

/// serde's wording is stable: "unknown field `x`, expected one of `a`, `b`" (or "expected
/// `a`" / "there are no fields").
fn unknown_field(message: &str) -> Option<UnknownField> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some(UnknownField {
        field: field.to_owned(),
        expected,
    })
}

/// The valid key a typo most likely meant, if one is close enough to be a useful hint.
fn closest(typed: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|candidate| (edit_distance(typed, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// One TOML layer, parsed up front so a syntax error is reported with its line and column
/// against the right file, without echoing the offending line (it might hold a secret).
#[derive(Debug, Clone)]
struct ParsedToml {
    values: Map<String, Value>,
}

impl ParsedToml {
    fn parse(uri: &str, text: &str, origin: Origin) -> Result<ParsedToml, SettingsError> {
        let uri = uri.to_owned();
        match config::FileFormat::Toml.parse(Some(&uri), text) {
            Ok(values) => Ok(ParsedToml { values }),
            Err(cause) => Err(match cause.downcast_ref::<toml::de::Error>() {
                Some(toml_error) => {
                    let offset = toml_error.span().map_or(0, |span| span.start);
                    let (line, column) = line_and_column(text, offset);
                    SettingsError::Syntax {
                        origin,
                        line,
                        column,
                        message: toml_error.message().trim().to_owned(),
                    }
                }
                None => SettingsError::Syntax {
                    origin,
                    line: 1,
                    column: 1,
                    message: cause.to_string(),
                },
            }),
        }
    }
}

impl Source for ParsedToml {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, ConfigError> {
        Ok(self.values.clone())
    }
}

/// The `PORTAL_MIGRATE__SECTION__KEY` variables as a layer. Written here rather than with
/// `config::Environment` because that one can only split lists when it also guesses types,
/// which turns a username such as `007` into the number 7. Here every value stays a string
/// (the deserializer converts numbers and booleans on demand) and a key whose default is a
/// list takes a comma-separated value: `PORTAL_MIGRATE__USERS__EXCLUDE=esri_*,test_*`.
#[derive(Debug, Clone)]
struct EnvironmentOverrides {
    values: Map<String, Value>,
}

impl EnvironmentOverrides {
    fn collect(env: &HashMap<String, String>, defaults: &ParsedToml) -> EnvironmentOverrides {
        let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}").to_lowercase();
        let defaults = Value::new(None, ValueKind::Table(defaults.values.clone()));
        let uri = ENVIRONMENT_URI.to_owned();
        let values = env
            .iter()
            .filter_map(|(name, value)| {
                let key = name
                    .to_lowercase()
                    .strip_prefix(&prefix)?
                    .replace(ENV_SEPARATOR, ".");
                if key.is_empty() {
                    return None;
                }
                let is_list = lookup(&defaults, &key)
                    .is_some_and(|default| matches!(default.kind, ValueKind::Array(_)));
                let value = if is_list {
                    let entries = value
                        .split(',')
                        .map(str::trim)
                        .filter(|entry| !entry.is_empty())
                        .map(|entry| Value::new(Some(&uri), entry.to_owned()))
                        .collect::<Vec<_>>();
                    Value::new(Some(&uri), entries)
                } else {
                    Value::new(Some(&uri), value.clone())
                };
                Some((key, value))
            })
            .collect();
        EnvironmentOverrides { values }
    }
}

impl Source for EnvironmentOverrides {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, ConfigError> {
        Ok(self.values.clone())
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut boundary = offset.min(text.len());
    while !text.is_char_boundary(boundary) {
        boundary -= 1;
    }
    let before = &text[..boundary];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_messages_are_parsed() {
        let parsed =
            unknown_field("unknown field `worker`, expected one of `workers`, `source`").unwrap();
        assert_eq!(parsed.field, "worker");
        assert_eq!(parsed.expected, vec!["workers", "source"]);
        assert_eq!(
            closest("worker", &parsed.expected).as_deref(),
            Some("workers")
        );
        assert_eq!(closest("zzzzzz", &parsed.expected), None);
    }

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "a = 1\nb = 2\nc = @";
        assert_eq!(line_and_column(text, 0), (1, 1));
        assert_eq!(line_and_column(text, 16), (3, 5));
    }

    #[test]
    fn env_variable_names_follow_the_key() {
        assert_eq!(
            env_variable_for("workers.count"),
            "PORTAL_MIGRATE__WORKERS__COUNT"
        );
    }
}
