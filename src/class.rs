//! The one decision every failure goes through (rclone's `fserrors`): is it worth trying
//! again, is this object hopeless, or must the whole run stop?

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Try again later: timeouts, dropped connections, throttling, 5xx, an expired token.
    Transient,
    /// This object cannot be done as asked: bad request, not found, no permission. Retrying
    /// the same request gives the same answer, so the task fails after its retry budget and
    /// the rest of the migration carries on.
    Permanent,
    /// Nothing can proceed: wrong credentials, a state file for another portal pair, a full
    /// disk. The run stops and says why.
    Fatal,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Permanent => "permanent",
            ErrorClass::Fatal => "fatal",
        }
    }
}

/// Implemented by every boundary error type, so the worker pool decides retries in one place.
pub trait Classify {
    fn class(&self) -> ErrorClass;
    /// A server-requested pause (`Retry-After`): waited out without spending an attempt.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}
