//! What can go wrong talking to a portal, worded for an administrator, and the one function
//! that decides whether a failure is worth retrying.

use std::time::Duration;

use serde_json::Value;

use crate::class::{Classify, ErrorClass};

/// Every variant names the portal (`portal` = label and URL, e.g. `source portal
/// https://host/portal`) and, where there was one, the endpoint path. Neither ever contains a
/// token: tokens travel in headers and form bodies only, never in URLs.
#[derive(thiserror::Error, Debug)]
pub enum PortalError {
    /// The portal refused the credentials (generateToken answered with a 4xx error).
    #[error("{portal}: sign-in as '{username}' failed: {message}; check username / password_env")]
    Auth {
        portal: String,
        username: String,
        message: String,
    },
    /// The portal answered with an error body (`{"error":…}`, `{"success":false}` or the
    /// portaladmin `{"status":"error",…}`), whatever the HTTP status.
    #[error("{portal}: {endpoint}: {}", describe_api(*code, message_code.as_deref(), message, details))]
    Api {
        portal: String,
        code: i64,
        message_code: Option<String>,
        message: String,
        details: Vec<String>,
        endpoint: String,
    },
    /// A non-2xx HTTP status without a portal error body (a proxy page, a bare 502).
    #[error("{portal}: {endpoint}: HTTP {status}{}", reason(*status))]
    Http {
        portal: String,
        status: u16,
        endpoint: String,
    },
    /// HTTP 429: the portal asked us to slow down.
    #[error("{portal}: {endpoint}: throttled by the portal (HTTP 429){}", retry_after.map(|d| format!(", retry after {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        portal: String,
        retry_after: Option<Duration>,
        endpoint: String,
    },
    #[error("{portal}: {endpoint}: timed out")]
    Timeout { portal: String, endpoint: String },
    /// The connection could not be made or broke mid-way.
    #[error("{portal}: {endpoint}: connection failed: {detail}")]
    Transport {
        portal: String,
        endpoint: String,
        detail: String,
    },
    /// The portal's certificate was rejected: retrying cannot help, the configuration must change.
    #[error("{portal}: {endpoint}: TLS certificate not trusted: {detail} (configure ca_file for a private CA)")]
    Tls {
        portal: String,
        endpoint: String,
        detail: String,
    },
    /// The configured URL cannot address an endpoint.
    #[error("{portal}: invalid URL for {endpoint}: {detail}")]
    InvalidUrl {
        portal: String,
        endpoint: String,
        detail: String,
    },
    /// The portal answered something that is not what the API promises (HTML instead of JSON,
    /// a missing field, a pager that does not advance).
    #[error("{portal}: {endpoint}: unexpected response: {detail}")]
    InvalidResponse {
        portal: String,
        endpoint: String,
        detail: String,
    },
    /// A local file (the CA bundle) could not be read.
    #[error("{portal}: {context}: {source}")]
    Io {
        portal: String,
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn describe_api(
    code: i64,
    message_code: Option<&str>,
    message: &str,
    details: &[String],
) -> String {
    let mut text = format!("error {code}");
    if let Some(message_code) = message_code {
        text.push_str(&format!(" {message_code}"));
    }
    text.push_str(&format!(": {message}"));
    // Portals often repeat the message as the only detail; saying it twice helps nobody.
    let details: Vec<&str> = details
        .iter()
        .map(String::as_str)
        .filter(|d| !d.is_empty() && *d != message)
        .collect();
    if !details.is_empty() {
        text.push_str(&format!(" ({})", details.join("; ")));
    }
    text
}

fn reason(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

impl PortalError {
    /// The object asked for does not exist (or is invisible to us, which portals do not
    /// distinguish): `CONT_0001`, "User does not exist", HTTP 404.
    pub fn is_not_found(&self) -> bool {
        match self {
            PortalError::Api {
                code,
                message_code,
                message,
                details,
                ..
            } => {
                if message_code
                    .as_deref()
                    .is_some_and(|c| NOT_FOUND_CODES.contains(&c))
                {
                    return true;
                }
                let says_missing = |text: &str| {
                    let text = text.to_ascii_lowercase();
                    text.contains("does not exist") || text.contains("not found")
                };
                matches!(code, 400 | 404)
                    && (says_missing(message) || details.iter().any(|d| says_missing(d)))
            }
            PortalError::Http { status, .. } => *status == 404,
            _ => false,
        }
    }

    /// The token was refused (expired, revoked, or missing).
    pub(crate) fn is_token_rejection(&self) -> bool {
        matches!(
            self,
            PortalError::Api {
                code: 498 | 499,
                ..
            }
        )
    }

    pub(crate) fn api_code(&self) -> Option<i64> {
        match self {
            PortalError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn api_message(&self) -> Option<String> {
        match self {
            PortalError::Api {
                message, details, ..
            } => Some(
                std::iter::once(message.as_str())
                    .chain(details.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => None,
        }
    }
}

/// Message codes portals use for "no such object" (others are recognised by their message).
const NOT_FOUND_CODES: &[&str] = &["CONT_0001"];

impl Classify for PortalError {
    fn class(&self) -> ErrorClass {
        match self {
            // Configuration problems: every further request would fail the same way.
            PortalError::Auth { .. }
            | PortalError::Tls { .. }
            | PortalError::InvalidUrl { .. }
            | PortalError::Io { .. } => ErrorClass::Fatal,
            PortalError::Timeout { .. }
            | PortalError::Transport { .. }
            | PortalError::RateLimited { .. }
            // A truncated or garbled body is most often a connection dropped mid-answer; a
            // portal that is consistently wrong exhausts the retry budget and fails the task.
            | PortalError::InvalidResponse { .. } => ErrorClass::Transient,
            PortalError::Http { status, .. } => match status {
                408 | 429 | 500 | 502 | 503 | 504 => ErrorClass::Transient,
                _ => ErrorClass::Permanent,
            },
            PortalError::Api { code, .. } => match code {
                // Returned only when a token was refused right after a fresh sign-in: most
                // likely a portal restart or a token-cache race, worth another try later.
                498 | 499 => ErrorClass::Transient,
                408 | 429 => ErrorClass::Transient,
                code if *code >= 500 => ErrorClass::Transient,
                _ => ErrorClass::Permanent,
            },
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            PortalError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The failure a portal reports inside a JSON body, before it is tied to a portal and endpoint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiFailure {
    pub code: i64,
    pub message_code: Option<String>,
    pub message: String,
    pub details: Vec<String>,
}

impl ApiFailure {
    pub fn into_error(self, portal: &str, endpoint: &str) -> PortalError {
        PortalError::Api {
            portal: portal.to_string(),
            code: self.code,
            message_code: self.message_code,
            message: self.message,
            details: self.details,
            endpoint: endpoint.to_string(),
        }
    }
}

/// Recognises the three error shapes portals use. `http_status` fills in a missing code.
pub(crate) fn api_failure(body: &Value, http_status: u16) -> Option<ApiFailure> {
    let fallback_code = if http_status == 200 {
        0
    } else {
        i64::from(http_status)
    };
    let object = body.as_object()?;
    // Only an object or a message counts: a data document may have an `error` flag.
    if let Some(error) = object
        .get("error")
        .filter(|e| e.is_object() || e.is_string())
    {
        return Some(failure_from_error_member(error, fallback_code));
    }
    if object.get("success").and_then(Value::as_bool) == Some(false) {
        let message = object
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("the portal answered success=false without a reason")
            .to_string();
        return Some(ApiFailure {
            code: fallback_code,
            message_code: None,
            message,
            details: details_of(object.get("details")),
        });
    }
    // portaladmin: {"status":"error","messages":[...],"code":500}
    if object.get("status").and_then(Value::as_str) == Some("error") {
        let messages = details_of(object.get("messages"));
        let message = if messages.is_empty() {
            "the portal admin API answered status=error without a message".to_string()
        } else {
            messages.join("; ")
        };
        return Some(ApiFailure {
            code: object
                .get("code")
                .and_then(as_code)
                .unwrap_or(fallback_code),
            message_code: None,
            message,
            details: Vec::new(),
        });
    }
    None
}

fn failure_from_error_member(error: &Value, fallback_code: i64) -> ApiFailure {
    match error {
        Value::Object(error) => ApiFailure {
            code: error.get("code").and_then(as_code).unwrap_or(fallback_code),
            message_code: error
                .get("messageCode")
                .and_then(Value::as_str)
                .map(str::to_string),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_string(),
            details: details_of(error.get("details")),
        },
        other => ApiFailure {
            code: fallback_code,
            message_code: None,
            message: value_text(other),
            details: Vec::new(),
        },
    }
}

/// Codes arrive as numbers, occasionally as numeric strings.
fn as_code(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// `details` may be an array of strings, a single string, null or missing.
fn details_of(value: Option<&Value>) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(value_text).collect(),
        Some(other) => vec![value_text(other)],
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_every_error_shape() {
        let standard = json!({"error":{"code":400,"messageCode":"CONT_0001","message":"Item does not exist or is inaccessible.","details":[]}});
        let failure = api_failure(&standard, 200).unwrap();
        assert_eq!(failure.code, 400);
        assert_eq!(failure.message_code.as_deref(), Some("CONT_0001"));

        let string_details = json!({"error":{"code":"500","message":"boom","details":"disk full"}});
        let failure = api_failure(&string_details, 200).unwrap();
        assert_eq!(
            (failure.code, failure.details),
            (500, vec!["disk full".to_string()])
        );

        let soft = json!({"success":false});
        assert_eq!(api_failure(&soft, 200).unwrap().code, 0);

        let admin = json!({"status":"error","messages":["User already exists."],"code":409});
        let failure = api_failure(&admin, 200).unwrap();
        assert_eq!(
            (failure.code, failure.message.as_str()),
            (409, "User already exists.")
        );

        assert!(api_failure(&json!({"success":true,"id":"x"}), 200).is_none());
        assert!(api_failure(&json!({"status":"success"}), 200).is_none());
        assert!(
            api_failure(&json!({"error":{"message":"gone"}}), 404)
                .unwrap()
                .code
                == 404
        );
    }

    #[test]
    fn classes_follow_the_policy() {
        let api = |code: i64, message_code: Option<&str>| PortalError::Api {
            portal: "target portal https://t/portal".into(),
            code,
            message_code: message_code.map(str::to_string),
            message: "m".into(),
            details: vec![],
            endpoint: "e".into(),
        };
        assert_eq!(api(503, None).class(), ErrorClass::Transient);
        assert_eq!(api(498, None).class(), ErrorClass::Transient);
        assert_eq!(api(400, Some("CONT_0001")).class(), ErrorClass::Permanent);
        assert!(api(400, Some("CONT_0001")).is_not_found());
        assert_eq!(api(403, Some("GWM_0003")).class(), ErrorClass::Permanent);
        assert!(!api(403, Some("GWM_0003")).is_not_found());
        let http = |status| PortalError::Http {
            portal: "p".into(),
            status,
            endpoint: "e".into(),
        };
        assert_eq!(http(502).class(), ErrorClass::Transient);
        assert_eq!(http(404).class(), ErrorClass::Permanent);
        assert_eq!(http(409).class(), ErrorClass::Permanent);
    }
}
