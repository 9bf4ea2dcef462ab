//! What can be wrong with a configuration, phrased for the operator who has to fix it: every
//! message names where the value came from, the key, the offending value (never a secret) and
//! what to write instead.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where a configuration value came from, so an error points at the layer to edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in `config/default.toml`.
    Defaults,
    /// The file given with `--config`.
    File(PathBuf),
    /// Text handed to [`super::Settings::from_toml_str`].
    Text,
    /// An override from the environment, e.g. `PORTAL_MIGRATE__WORKERS__COUNT`.
    Environment { variable: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Defaults => f.write_str("built-in defaults (config/default.toml)"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Text => f.write_str("configuration"),
            Origin::Environment { variable } => write!(f, "environment variable {variable}"),
        }
    }
}

#[derive(thiserror::Error, Debug)]
pub enum SettingsError {
    #[error("config file {} not found", path.display())]
    FileNotFound { path: PathBuf },

    #[error("config file {}: cannot be read ({source}); check the path and its permissions", path.display())]
    FileUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{origin}: TOML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        origin: Origin,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{origin}: unknown key '{key}'{}; remove it or correct its spelling (valid keys here: {expected})", did_you_mean(.suggestion))]
    UnknownKey {
        origin: Origin,
        key: String,
        suggestion: Option<String>,
        expected: String,
    },

    #[error("{}{key}: expected {expected}, found {found}", prefix(.origin))]
    WrongType {
        origin: Option<Origin>,
        key: String,
        expected: String,
        found: String,
    },

    /// A value of the right type that is still unusable; `message` says why and how to fix it.
    #[error("{}{key}: {message}", prefix(.origin))]
    Invalid {
        origin: Option<Origin>,
        key: String,
        message: String,
    },

    /// A failure of the configuration library that none of the above describes.
    #[error("configuration could not be assembled: {0}")]
    Other(String),
}

impl SettingsError {
    /// The key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            SettingsError::UnknownKey { key, .. }
            | SettingsError::WrongType { key, .. }
            | SettingsError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> SettingsError {
        SettingsError::Invalid {
            origin: None,
            key: key.into(),
            message: message.into(),
        }
    }
}

fn prefix(origin: &Option<Origin>) -> String {
    match origin {
        Some(origin) => format!("{origin}: "),
        None => String::new(),
    }
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(suggestion) => format!(" (did you mean '{suggestion}'?)"),
        None => String::new(),
    }
}
