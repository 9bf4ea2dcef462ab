//! The only code that speaks HTTP to an ArcGIS portal.
//!
//! A [`Portal`] signs in with `generateToken`, keeps the token fresh (before expiry, and once
//! more when the portal answers 498/499), paces every request through an optional rate
//! limiter, turns the portal's error bodies into a typed [`PortalError`] with a class
//! (transient / permanent / fatal), pages through lists until `nextStart` runs out, and moves
//! files as streams (large ones as multipart uploads of bounded parts).
//!
//! Tokens never appear in URLs: GETs carry `X-Esri-Authorization: Bearer`, POSTs a `token`
//! form field (the portal admin API insists on the body).

// `PortalError` carries the portal's whole message (code, message code, details, endpoint)
// so `status` can show it; errors are rare, so moving a larger `Err` costs nothing.
#![allow(clippy::result_large_err)]

mod content;
mod counters;
mod error;
mod groups;
mod http;
mod transfer;
mod users;

use std::fmt;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::secret::Secret;
use http::{Core, Root, Verb};

pub use counters::CounterSnapshot;
pub use error::PortalError;
pub use transfer::{Download, FilePart, PartBody, Upload, UploadTuning};

/// Lists are fetched in pages of the portal's maximum size.
const PAGE_SIZE: u32 = 100;

/// First pause before a read is tried again; doubles each time.
const READ_BACKOFF: Duration = Duration::from_millis(200);
/// `429` answers waited out inside one read (they spend no attempt); after that the task
/// queue takes over and snoozes the task.
const READ_THROTTLE_WAITS: u32 = 20;
/// A `Retry-After` longer than this is left to the task queue as well.
const READ_MAX_WAIT: Duration = Duration::from_secs(10);

/// How to reach and sign in to one portal.
#[derive(Debug, Clone)]
pub struct PortalSpec {
    /// `"source"` or `"target"`: named in every error message.
    pub label: String,
    /// The portal's base, e.g. `https://host/portal` (no trailing slash needed).
    pub url: Url,
    pub username: String,
    pub password: Secret,
    /// Requests per second for everything sent to this portal; `None` = unlimited.
    pub rate_limit_rps: Option<NonZeroU32>,
    /// Extra trusted CA certificates (PEM bundle), for portals behind a private CA.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate: only for the simulator's self-signed TLS mode.
    pub accept_invalid_certs: bool,
    pub request_timeout: Duration,
    /// Requested token lifetime (the portal may cap it).
    pub token_minutes: u32,
}

/// What `portals/self` says about the portal and the signed-in user.
#[derive(Debug, Clone)]
pub struct PortalInfo {
    pub id: String,
    pub name: String,
    pub portal_mode: String,
    pub is_portal: bool,
    pub current_version: String,
    pub url_key: Option<String>,
    /// The signed-in user.
    pub username: String,
    pub user_role: String,
    pub raw: Value,
}

impl PortalInfo {
    /// ArcGIS Online (multitenant) rather than Enterprise: users are invited, not created.
    pub fn is_online(&self) -> bool {
        self.portal_mode == "multitenant"
    }

    fn from_self(raw: Value, signed_in_as: &str) -> Option<PortalInfo> {
        let text = |value: Option<&Value>| -> Option<String> {
            match value? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let user = raw.get("user");
        Some(PortalInfo {
            id: text(raw.get("id"))?,
            name: text(raw.get("name")).unwrap_or_default(),
            portal_mode: text(raw.get("portalMode")).unwrap_or_default(),
            is_portal: raw
                .get("isPortal")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            current_version: text(raw.get("currentVersion")).unwrap_or_default(),
            url_key: text(raw.get("urlKey")).filter(|k| !k.is_empty()),
            username: text(user.and_then(|u| u.get("username")))
                .unwrap_or_else(|| signed_in_as.to_string()),
            user_role: text(user.and_then(|u| u.get("role"))).unwrap_or_default(),
            raw,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the origin item to its destinations.
    Forward,
    /// From the destination item back to its origins.
    Reverse,
}

impl Direction {
    fn as_param(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembers {
    pub owner: String,
    /// Includes the owner.
    pub admins: Vec<String>,
    /// Plain members as the portal lists them; some portals list everyone here, so callers
    /// take the union with `admins`.
    pub users: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct UserContent {
    pub items: Vec<Value>,
    /// The user's folders (listed with the root only; empty for a folder listing).
    pub folders: Vec<Value>,
}

/// A user to create on the target.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    /// Required for `provider = "arcgis"` accounts.
    pub password: Option<Secret>,
    pub first_name: String,
    pub last_name: String,
    pub full_name: String,
    pub email: String,
    pub role: String,
    pub user_license_type: Option<String>,
    /// `arcgis` or `enterprise`.
    pub provider: String,
    pub idp_username: Option<String>,
    pub description: Option<String>,
}

/// A connection to one portal; cheap to clone and share between workers.
#[derive(Clone)]
pub struct Portal {
    core: Arc<Core>,
    info: Arc<PortalInfo>,
    upload: UploadTuning,
    /// Tries per read before a transient error reaches the caller (1 = no retry); see
    /// [`Portal::with_read_attempts`].
    read_attempts: u32,
}

impl fmt::Debug for Portal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Portal")
            .field("label", &self.core.label)
            .field("url", &self.core.url.as_str())
            .field("portal_id", &self.info.id)
            .finish_non_exhaustive()
    }
}

impl Portal {
    /// An `update` that may carry a thumbnail file (users and groups alike): multipart only
    /// when there is one.
    pub(crate) async fn post_with_thumbnail(
        &self,
        path: &str,
        params: &[(&str, String)],
        thumbnail: Option<(String, bytes::Bytes)>,
    ) -> Result<(), PortalError> {
        let files = thumbnail_part(thumbnail);
        let answer = if files.is_empty() {
            self.post(path, params).await?
        } else {
            self.post_multipart(path, params, files).await?
        };
        expect_success(self, path, &answer)
    }

    /// A resource that may not exist: `None` when the portal says "not found" or answers
    /// without the field every such object has (`identity`).
    pub(crate) async fn get_existing(
        &self,
        path: &str,
        identity: &str,
    ) -> Result<Option<Value>, PortalError> {
        match self.get(path, &[]).await {
            Ok(object) if object.get(identity).is_some_and(|v| !v.is_null()) => Ok(Some(object)),
            Ok(_) => Ok(None),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Signs in and reads `portals/self`. Bad credentials give a fatal `PortalError::Auth`.
    pub async fn connect(spec: PortalSpec) -> Result<Portal, PortalError> {
        let username = spec.username.clone();
        let core = Arc::new(Core::new(spec)?);
        core.token().await?;
        let raw = core
            .call_json(Verb::Get, Root::Sharing, "portals/self", &[], Vec::new())
            .await?;
        let info =
            PortalInfo::from_self(raw, &username).ok_or_else(|| PortalError::InvalidResponse {
                portal: core.portal.clone(),
                endpoint: "portals/self".into(),
                detail: "no portal id: is the URL the portal's base (https://host/portal)?".into(),
            })?;
        Ok(Portal {
            core,
            info: Arc::new(info),
            upload: UploadTuning::default(),
            read_attempts: 1,
        })
    }

    /// Changes how large files are uploaded (threshold, part size, retries).
    pub fn with_upload_tuning(mut self, tuning: UploadTuning) -> Portal {
        self.upload = tuning;
        self
    }

    /// Retries reads (GETs and downloads) that fail transiently, up to `attempts` tries in
    /// all, and waits out short `Retry-After` pauses inside the read. Reads change nothing, so
    /// repeating one is always safe; without this, a task made of many reads (a user's folders
    /// and every item's relationships: a hundred requests) almost never gets through a portal
    /// that fails a few percent of requests, and spends its retry budget starting over.
    pub fn with_read_attempts(mut self, attempts: u32) -> Portal {
        self.read_attempts = attempts.max(1);
        self
    }

    pub fn info(&self) -> &PortalInfo {
        &self.info
    }

    pub fn url(&self) -> &Url {
        &self.core.url
    }

    pub fn label(&self) -> &str {
        &self.core.label
    }

    pub fn counters(&self) -> CounterSnapshot {
        self.core.counters.snapshot()
    }

    /// Changes the requests-per-second limit (`None` = unlimited) without reconnecting: every
    /// clone of this `Portal` shares it, so all workers follow at once.
    pub fn set_rate_limit(&self, rps: Option<NonZeroU32>) {
        self.core.set_rate_limit(rps);
    }

    /// GET `<url>/sharing/rest/<path>` (sent as POST when the query would be too long).
    pub async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value, PortalError> {
        self.retry_read(|| {
            self.core
                .call_json(Verb::Get, Root::Sharing, path, params, Vec::new())
        })
        .await
    }

    /// Runs `read` again after a transient failure (see [`Portal::with_read_attempts`]),
    /// waiting out short `Retry-After` pauses without counting them as attempts.
    async fn retry_read<T, F, Fut>(&self, mut read: F) -> Result<T, PortalError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, PortalError>>,
    {
        use crate::class::{Classify, ErrorClass};
        if self.read_attempts <= 1 {
            return read().await;
        }
        let (mut attempt, mut throttled) = (1u32, 0u32);
        loop {
            let error = match read().await {
                Ok(value) => return Ok(value),
                Err(error) if error.class() != ErrorClass::Transient => return Err(error),
                Err(error) => error,
            };
            let pause = match error.retry_after() {
                Some(wait) if wait <= READ_MAX_WAIT && throttled < READ_THROTTLE_WAITS => {
                    throttled += 1;
                    wait
                }
                Some(_) => return Err(error),
                None if attempt < self.read_attempts => {
                    attempt += 1;
                    READ_BACKOFF.saturating_mul(1 << (attempt - 2))
                }
                None => return Err(error),
            };
            tracing::debug!(portal = %self.label(), attempt, error = %error, "retrying a read");
            tokio::time::sleep(pause).await;
        }
    }

    /// POST `<url>/sharing/rest/<path>` as a form.
    pub async fn post(&self, path: &str, params: &[(&str, String)]) -> Result<Value, PortalError> {
        self.core
            .call_json(Verb::Post, Root::Sharing, path, params, Vec::new())
            .await
    }

    /// POST `<url>/sharing/rest/<path>` as multipart/form-data with file parts.
    pub async fn post_multipart(
        &self,
        path: &str,
        params: &[(&str, String)],
        files: Vec<FilePart>,
    ) -> Result<Value, PortalError> {
        self.core
            .call_json(Verb::Post, Root::Sharing, path, params, files)
            .await
    }

    /// POST `<url>/portaladmin/<path>` (Enterprise), token in the body.
    pub async fn admin_post(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Value, PortalError> {
        self.core
            .call_json(Verb::Post, Root::Admin, path, params, Vec::new())
            .await
    }

    /// GET `<url>/sharing/rest/<path>` as a stream; `None` when the body is empty.
    pub async fn download(&self, path: &str) -> Result<Option<Download>, PortalError> {
        self.retry_read(|| self.core.download(path)).await
    }

    /// Every element of `results_key` across all pages (`start`/`num`/`nextStart`).
    pub async fn paged(
        &self,
        path: &str,
        params: &[(&str, String)],
        results_key: &str,
    ) -> Result<Vec<Value>, PortalError> {
        let mut all = Vec::new();
        self.for_each_page(path, params, results_key, |_, results| {
            all.extend(results);
        })
        .await?;
        Ok(all)
    }

    /// Pages through a list, handing each page (and its results) to `on_page`. Stops when
    /// `nextStart` is -1 or 0; refuses a server that does not advance, so a portal repeating
    /// a page cannot make us loop forever or stop silently.
    async fn for_each_page(
        &self,
        path: &str,
        params: &[(&str, String)],
        results_key: &str,
        mut on_page: impl FnMut(&Value, Vec<Value>),
    ) -> Result<(), PortalError> {
        let mut start: i64 = 1;
        let mut collected: u64 = 0;
        loop {
            let mut page_params: Vec<(&str, String)> = params.to_vec();
            page_params.push(("start", start.to_string()));
            page_params.push(("num", PAGE_SIZE.to_string()));
            let mut page = self.get(path, &page_params).await?;
            let results = match page.get_mut(results_key).map(Value::take) {
                Some(Value::Array(results)) => results,
                Some(Value::Null) | None => Vec::new(),
                Some(_) => {
                    return Err(self.invalid(path, format!("'{results_key}' is not a list")));
                }
            };
            let count = results.len();
            collected += count as u64;
            on_page(&page, results);
            let next = page.get("nextStart").and_then(as_number);
            match next {
                Some(next) if next > 0 => {
                    if next <= start {
                        return Err(self.invalid(
                            path,
                            format!("paging did not advance (start {start}, nextStart {next})"),
                        ));
                    }
                    if count == 0 {
                        return Err(self.invalid(
                            path,
                            format!("empty page at start {start} but nextStart {next}"),
                        ));
                    }
                    start = next;
                }
                Some(_) => return Ok(()),
                None => {
                    // No nextStart at all: accept only when the total says we have everything.
                    let total = page.get("total").and_then(as_number);
                    if let Some(total) = total.filter(|t| *t > 0 && collected < *t as u64) {
                        return Err(self.invalid(
                            path,
                            format!("no nextStart after {collected} of {total} results"),
                        ));
                    }
                    return Ok(());
                }
            }
        }
    }

    fn invalid(&self, path: &str, detail: String) -> PortalError {
        PortalError::InvalidResponse {
            portal: self.core.portal.clone(),
            endpoint: path.trim_start_matches('/').to_string(),
            detail,
        }
    }
}

/// Numbers sometimes arrive as strings.
fn as_number(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// One path segment, percent-encoded (usernames may hold `@`, `\` or spaces).
pub(crate) fn segment(text: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
    const SEGMENT: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'/')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'\\')
        .add(b'^')
        .add(b'`')
        .add(b'{')
        .add(b'|')
        .add(b'}');
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// A relative file path such as `thumbnail/ago_downloaded.png`, each segment encoded.
fn file_path(text: &str) -> String {
    text.split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .map(segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// A write answered `{"success": true, …}` (or at least not `success: false`, which the
/// core already turned into an error).
fn expect_success(portal: &Portal, path: &str, answer: &Value) -> Result<(), PortalError> {
    match answer.get("success").and_then(Value::as_bool) {
        Some(true) => Ok(()),
        _ if answer.get("status").and_then(Value::as_str) == Some("success") => Ok(()),
        _ => Err(portal.invalid(path, "the portal did not confirm success".into())),
    }
}

/// Thumbnail bytes as the multipart `thumbnail` part.
fn thumbnail_part(thumbnail: Option<(String, bytes::Bytes)>) -> Vec<FilePart> {
    thumbnail
        .map(|(file_name, bytes)| FilePart::bytes("thumbnail", file_name, bytes))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("jane doe@CORP"), "jane%20doe@CORP");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
        assert_eq!(file_path("thumbnail/my pic.png"), "thumbnail/my%20pic.png");
        assert_eq!(file_path("../x.png"), "x.png");
    }
}
