//! The process-wide tracing subscriber: human-readable lines or JSON lines on stderr (stdout
//! belongs to command output such as `status --json`), filtered by `RUST_LOG` when it is set,
//! else by the configured `log.level`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

#[derive(thiserror::Error, Debug)]
pub enum LoggingError {
    #[error("RUST_LOG: '{value}' is not a valid log filter ({reason}); use a level such as info or directives such as portal_migrate=debug,info")]
    BadRustLog { value: String, reason: String },
    #[error("log.level: '{value}' is not a valid log filter ({reason}); use a level such as info or directives such as portal_migrate=debug,info")]
    BadLevel { value: String, reason: String },
}

/// Installs the global subscriber. Calling it again (tests, a second `main`-like entry point)
/// keeps the first subscriber and returns `Ok`, because there can only be one and replacing it
/// is never what the second caller needs.
pub fn init(format: LogFormat, level: &str) -> Result<(), LoggingError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter(rust_log.as_deref(), level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` fails only when a global subscriber (or `log` logger) is already installed.
    let _already_installed = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    Ok(())
}

/// `RUST_LOG` (when set and not blank) wins over the configured level, so an operator can turn
/// on debug output for one run without editing the config file.
fn filter(rust_log: Option<&str>, level: &str) -> Result<EnvFilter, LoggingError> {
    match rust_log.map(str::trim).filter(|value| !value.is_empty()) {
        Some(value) => {
            EnvFilter::builder()
                .parse(value)
                .map_err(|error| LoggingError::BadRustLog {
                    value: value.to_owned(),
                    reason: error.to_string(),
                })
        }
        None => EnvFilter::builder()
            .parse(level.trim())
            .map_err(|error| LoggingError::BadLevel {
                value: level.to_owned(),
                reason: error.to_string(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_wins_over_the_configured_level() {
        let from_env = filter(Some("portal_migrate=trace"), "info").unwrap();
        assert_eq!(from_env.to_string(), "portal_migrate=trace");
        let from_config = filter(None, "debug").unwrap();
        assert_eq!(from_config.to_string(), "debug");
        let blank_env = filter(Some("  "), "warn").unwrap();
        assert_eq!(blank_env.to_string(), "warn");
    }

    #[test]
    fn bad_filters_name_their_origin() {
        let error = filter(Some("=[bad"), "info").unwrap_err();
        assert!(
            error.to_string().starts_with("RUST_LOG: '=[bad'"),
            "{error}"
        );
        let error = filter(None, "info,[").unwrap_err();
        assert!(
            error.to_string().starts_with("log.level: 'info,['"),
            "{error}"
        );
    }

    #[test]
    fn a_second_init_is_harmless() {
        init(LogFormat::Json, "info").unwrap();
        init(LogFormat::Human, "debug").unwrap();
        tracing::info!("still logging after two inits");
    }
}
