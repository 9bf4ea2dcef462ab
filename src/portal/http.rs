//! The HTTP core of one portal: the reqwest client, the token, the rate limiter, and the
//! translation of every response into JSON or a typed [`PortalError`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_DISPOSITION, CONTENT_TYPE, REFERER};
use serde_json::Value;
use url::Url;

use super::counters::{Counters, Outcome};
use super::error::{api_failure, PortalError};
use super::transfer::{
    content_disposition_file_name, guarded_body, looks_like_error_body, upload_body, Download,
    FilePart, PartBody, SourceFailure,
};
use super::PortalSpec;
use crate::secret::Secret;

fn limiter_for(rps: std::num::NonZeroU32) -> Arc<DefaultDirectRateLimiter> {
    // A small burst keeps the average honest without a thundering start.
    let burst = std::num::NonZeroU32::new((rps.get() / 10).max(1)).unwrap_or(rps);
    Arc::new(RateLimiter::direct(
        Quota::per_second(rps).allow_burst(burst),
    ))
}

/// The referer tokens are bound to (`client=referer`); sent on every request.
const REFERER_VALUE: &str = "portal-migrate";
const TOKEN_HEADER: &str = "X-Esri-Authorization";
/// GET URLs longer than this go as POST instead (portals and proxies cut off around 2000).
const MAX_QUERY_LEN: usize = 1800;
/// Bytes looked at before deciding whether a download is data or an error body.
const PEEK_LEN: usize = 64;
/// A body that starts like an error is read up to this size to find out; beyond it, it is data.
const MAX_ERROR_BODY: usize = 1024 * 1024;
/// Time allowed per byte of an upload on top of the request timeout (assumes >= 256 KiB/s).
const UPLOAD_BYTES_PER_SECOND: u64 = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    /// `<url>/sharing/rest/…`
    Sharing,
    /// `<url>/portaladmin/…` (Enterprise only).
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
}

/// A token and when to replace it. `generation` tells a refresh caused by a rejection whether
/// someone else already replaced the rejected token.
#[derive(Clone)]
pub(crate) struct Token {
    value: Secret,
    refresh_at: Instant,
    generation: u64,
}

#[derive(Default)]
struct TokenState {
    current: Option<Token>,
    generations: u64,
}

pub(crate) struct Core {
    pub label: String,
    pub url: Url,
    /// `"<label> portal <url>"`, the prefix of every error message.
    pub portal: String,
    username: String,
    password: Secret,
    token_minutes: u32,
    pub request_timeout: Duration,
    http: reqwest::Client,
    /// Held across a sign-in, so concurrent callers wait for one refresh instead of each
    /// signing in.
    token: tokio::sync::Mutex<TokenState>,
    /// Swapped whole by [`Core::set_rate_limit`] (a config reload); requests already waiting
    /// on the old limiter finish under it.
    limiter: std::sync::RwLock<Option<Arc<DefaultDirectRateLimiter>>>,
    pub counters: Arc<Counters>,
}

impl Core {
    pub fn new(spec: PortalSpec) -> Result<Core, PortalError> {
        let base = spec.url.as_str().trim_end_matches('/').to_string();
        let portal = format!("{} portal {}", spec.label, base);
        if !matches!(spec.url.scheme(), "http" | "https") || spec.url.cannot_be_a_base() {
            return Err(PortalError::InvalidUrl {
                portal,
                endpoint: "sharing/rest".into(),
                detail: format!("scheme '{}' is not http or https", spec.url.scheme()),
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert(REFERER, HeaderValue::from_static(REFERER_VALUE));
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .default_headers(headers)
            .user_agent(concat!("portal-migrate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(spec.request_timeout)
            .danger_accept_invalid_certs(spec.accept_invalid_certs);
        if let Some(ca_file) = &spec.ca_file {
            let pem = std::fs::read(ca_file).map_err(|source| PortalError::Io {
                portal: portal.clone(),
                context: format!("reading ca_file {}", ca_file.display()),
                source,
            })?;
            let certificates =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| PortalError::Tls {
                    portal: portal.clone(),
                    endpoint: "ca_file".into(),
                    detail: format!(
                        "{} is not a PEM certificate bundle: {error}",
                        ca_file.display()
                    ),
                })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|error| PortalError::Tls {
            portal: portal.clone(),
            endpoint: "client".into(),
            detail: error_chain(&error.without_url()),
        })?;
        let limiter = std::sync::RwLock::new(spec.rate_limit_rps.map(limiter_for));
        Ok(Core {
            label: spec.label,
            url: spec.url,
            portal,
            username: spec.username,
            password: spec.password,
            token_minutes: spec.token_minutes,
            request_timeout: spec.request_timeout,
            http,
            token: tokio::sync::Mutex::new(TokenState::default()),
            limiter,
            counters: Arc::new(Counters::default()),
        })
    }

    /// The path as shown in error messages: never a full URL, never a query.
    pub fn endpoint_name(root: Root, path: &str) -> String {
        let path = path.trim_start_matches('/');
        match root {
            Root::Sharing => path.to_string(),
            Root::Admin => format!("portaladmin/{path}"),
        }
    }

    fn endpoint_url(&self, root: Root, path: &str) -> Result<Url, PortalError> {
        let prefix = match root {
            Root::Sharing => "sharing/rest",
            Root::Admin => "portaladmin",
        };
        let text = format!(
            "{}/{prefix}/{}",
            self.url.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        Url::parse(&text).map_err(|error| PortalError::InvalidUrl {
            portal: self.portal.clone(),
            endpoint: Core::endpoint_name(root, path),
            detail: error.to_string(),
        })
    }

    /// Replaces the rate limit (`None` = unlimited) for every later request.
    pub fn set_rate_limit(&self, rps: Option<std::num::NonZeroU32>) {
        let limiter = rps.map(limiter_for);
        // A panic while holding this lock cannot leave the Option half-written.
        *self
            .limiter
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = limiter;
    }

    /// Waits for our own rate limiter; every request of this portal passes here.
    async fn pace(&self) {
        let limiter = self
            .limiter
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(limiter) = limiter {
            let started = Instant::now();
            limiter.until_ready().await;
            self.counters.waited(started.elapsed());
        }
    }

    /// The current token, signing in first when there is none or it is close to expiry.
    pub async fn token(&self) -> Result<Token, PortalError> {
        let mut state = self.token.lock().await;
        if let Some(token) = &state.current {
            if Instant::now() < token.refresh_at {
                return Ok(token.clone());
            }
        }
        self.sign_in_locked(&mut state).await
    }

    /// The portal refused `rejected`: sign in again, unless another caller already did.
    pub async fn refresh_rejected(&self, rejected: &Token) -> Result<Token, PortalError> {
        let mut state = self.token.lock().await;
        if let Some(token) = &state.current {
            if token.generation != rejected.generation && Instant::now() < token.refresh_at {
                return Ok(token.clone());
            }
        }
        self.sign_in_locked(&mut state).await
    }

    async fn sign_in_locked(&self, state: &mut TokenState) -> Result<Token, PortalError> {
        state.current = None;
        let (value, lifetime) = self.generate_token().await?;
        state.generations += 1;
        // Refresh with a margin: 10% of the lifetime, at most two minutes.
        let margin = (lifetime / 10).min(Duration::from_secs(120));
        let token = Token {
            value,
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
            generation: state.generations,
        };
        state.current = Some(token.clone());
        self.counters.signed_in();
        Ok(token)
    }

    async fn generate_token(&self) -> Result<(Secret, Duration), PortalError> {
        let endpoint = "generateToken";
        let url = self.endpoint_url(Root::Sharing, endpoint)?;
        let expiration = self.token_minutes.to_string();
        let form = [
            ("username", self.username.as_str()),
            ("password", self.password.expose()),
            ("client", "referer"),
            ("referer", REFERER_VALUE),
            ("expiration", expiration.as_str()),
            ("f", "json"),
        ];
        let request = self
            .http
            .post(url)
            .form(&form)
            .timeout(self.request_timeout)
            .build()
            .map_err(|error| self.request_error(endpoint, error))?;
        let response = self.send(endpoint, request).await?;
        let auth_error = |message: String| PortalError::Auth {
            portal: self.portal.clone(),
            username: self.username.clone(),
            message,
        };
        let body = match self.read_json(endpoint, response).await {
            Ok(body) => body,
            Err(error @ PortalError::Api { .. })
                if error
                    .api_code()
                    .is_some_and(|c| c == 0 || (400..500).contains(&c)) =>
            {
                return Err(auth_error(error.api_message().unwrap_or_default()));
            }
            Err(PortalError::Http {
                status: status @ (401 | 403),
                ..
            }) => {
                return Err(auth_error(format!("HTTP {status}")));
            }
            Err(error) => return Err(error),
        };
        let token = body
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| PortalError::InvalidResponse {
                portal: self.portal.clone(),
                endpoint: endpoint.into(),
                detail: "no token in the answer".into(),
            })?;
        let requested = Duration::from_secs(u64::from(self.token_minutes.max(1)) * 60);
        let lifetime = body
            .get("expires")
            .and_then(Value::as_i64)
            .map(|expires_ms| {
                let now_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                Duration::from_millis(u64::try_from(expires_ms - now_ms).unwrap_or(0))
            })
            .unwrap_or(requested);
        Ok((Secret::new(token), lifetime))
    }

    /// One request through the limiter; 429 becomes `RateLimited` here.
    async fn send(
        &self,
        endpoint: &str,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, PortalError> {
        self.pace().await;
        if let Some(body) = request.body().and_then(|b| b.as_bytes()) {
            self.counters.uploaded(body.len() as u64);
        }
        let response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(error) => {
                self.counters.record(Outcome::Transport);
                return Err(transport_error(&self.portal, endpoint, error));
            }
        };
        if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            self.counters.record(Outcome::RateLimited);
            return Err(PortalError::RateLimited {
                portal: self.portal.clone(),
                retry_after: retry_after(response.headers()),
                endpoint: endpoint.to_string(),
            });
        }
        Ok(response)
    }

    fn request_error(&self, endpoint: &str, error: reqwest::Error) -> PortalError {
        transport_error(&self.portal, endpoint, error)
    }

    /// A JSON call: GET (token in header) or POST (token in the form body), multipart when
    /// files are given. A refused token is refreshed and the call replayed once.
    pub async fn call_json(
        &self,
        verb: Verb,
        root: Root,
        path: &str,
        params: &[(&str, String)],
        files: Vec<FilePart>,
    ) -> Result<Value, PortalError> {
        let endpoint = Core::endpoint_name(root, path);
        let url = self.endpoint_url(root, path)?;
        let verb = if verb == Verb::Get && query_length(params) > MAX_QUERY_LEN {
            Verb::Post
        } else {
            verb
        };
        let mut files: Vec<(String, String, Option<PartBody>)> = files
            .into_iter()
            .map(|part| (part.field, part.file_name, Some(part.body)))
            .collect();
        let mut refreshed = false;
        loop {
            let token = self.token().await?;
            let source_failure = SourceFailure::default();
            let request =
                self.build_request(verb, &url, params, &token, &mut files, &source_failure);
            let request = request
                .build()
                .map_err(|error| self.request_error(&endpoint, error))?;
            let result = match self.send(&endpoint, request).await {
                Ok(response) => self.read_json(&endpoint, response).await,
                Err(error) => Err(error),
            };
            let result = result.map_err(|error| source_failure.take().unwrap_or(error));
            match result {
                Err(error) if error.is_token_rejection() && !refreshed => {
                    refreshed = true;
                    self.refresh_rejected(&token).await?;
                    // A streamed part has been consumed: the caller retries the whole upload.
                    let replayable = files.iter().all(|(_, _, body)| body.is_some());
                    if !replayable {
                        return Err(error);
                    }
                }
                other => return other,
            }
        }
    }

    fn build_request(
        &self,
        verb: Verb,
        url: &Url,
        params: &[(&str, String)],
        token: &Token,
        files: &mut [(String, String, Option<PartBody>)],
        source_failure: &SourceFailure,
    ) -> reqwest::RequestBuilder {
        let json = ("f", "json".to_string());
        if verb == Verb::Get && files.is_empty() {
            return self
                .http
                .get(url.clone())
                .query(params)
                .query(&[json])
                .header(TOKEN_HEADER, format!("Bearer {}", token.value.expose()))
                .timeout(self.request_timeout);
        }
        let token_field = ("token", token.value.expose().to_string());
        if files.is_empty() {
            let mut form: Vec<(&str, String)> = params.to_vec();
            form.push(json);
            form.push(token_field);
            return self
                .http
                .post(url.clone())
                .form(&form)
                .timeout(self.request_timeout);
        }
        let mut form = reqwest::multipart::Form::new();
        for (key, value) in params {
            form = form.text(key.to_string(), value.clone());
        }
        form = form.text(json.0, json.1).text(token_field.0, token_field.1);
        let mut upload_length = 0u64;
        for (field, file_name, body) in files.iter_mut() {
            let part = match body {
                Some(PartBody::Bytes(bytes)) => {
                    upload_length += bytes.len() as u64;
                    self.counters.uploaded(bytes.len() as u64);
                    reqwest::multipart::Part::stream_with_length(
                        reqwest::Body::from(bytes.clone()),
                        bytes.len() as u64,
                    )
                }
                Some(PartBody::Stream { .. }) | None => match body.take() {
                    Some(PartBody::Stream { length, download }) => {
                        upload_length += length;
                        let stream =
                            upload_body(download, self.counters.clone(), source_failure.clone());
                        reqwest::multipart::Part::stream_with_length(stream, length)
                    }
                    // Unreachable in practice: a consumed stream stops the replay above.
                    _ => reqwest::multipart::Part::bytes(Vec::new()),
                },
            };
            form = form.part(field.clone(), part.file_name(file_name.clone()));
        }
        let allowance = Duration::from_secs(upload_length / UPLOAD_BYTES_PER_SECOND);
        self.http
            .post(url.clone())
            .multipart(form)
            .timeout(self.request_timeout + allowance)
    }

    /// Reads a whole (JSON) response and turns error shapes into errors.
    async fn read_json(
        &self,
        endpoint: &str,
        response: reqwest::Response,
    ) -> Result<Value, PortalError> {
        let status = response.status().as_u16();
        let content_type = header_text(response.headers(), CONTENT_TYPE);
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => {
                self.counters.record(Outcome::Transport);
                return Err(transport_error(&self.portal, endpoint, error));
            }
        };
        self.counters.downloaded(body.len());
        self.interpret(endpoint, status, content_type.as_deref(), &body)
    }

    fn interpret(
        &self,
        endpoint: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Value, PortalError> {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        if let Some(failure) = parsed.as_ref().and_then(|v| api_failure(v, status)) {
            self.counters.record(Outcome::ApiError);
            return Err(failure.into_error(&self.portal, endpoint));
        }
        if !(200..300).contains(&status) {
            self.counters.record(Outcome::HttpError);
            return Err(PortalError::Http {
                portal: self.portal.clone(),
                status,
                endpoint: endpoint.to_string(),
            });
        }
        match parsed {
            Some(value) => {
                self.counters.record(Outcome::Ok);
                Ok(value)
            }
            None => {
                self.counters.record(Outcome::HttpError);
                Err(PortalError::InvalidResponse {
                    portal: self.portal.clone(),
                    endpoint: endpoint.to_string(),
                    detail: format!(
                        "expected JSON, got {} bytes of {}",
                        body.len(),
                        content_type.unwrap_or("an unlabelled body")
                    ),
                })
            }
        }
    }

    /// A GET whose body is streamed. `Ok(None)` when the body is empty (no data).
    pub async fn download(&self, path: &str) -> Result<Option<Download>, PortalError> {
        let endpoint = Core::endpoint_name(Root::Sharing, path);
        let url = self.endpoint_url(Root::Sharing, path)?;
        let mut refreshed = false;
        loop {
            let token = self.token().await?;
            // No total timeout: a large file may take long. Headers and every chunk get
            // `request_timeout` each instead.
            let request = self
                .http
                .get(url.clone())
                .header(TOKEN_HEADER, format!("Bearer {}", token.value.expose()))
                .build()
                .map_err(|error| self.request_error(&endpoint, error))?;
            let response =
                match tokio::time::timeout(self.request_timeout, self.send(&endpoint, request))
                    .await
                {
                    Ok(response) => response?,
                    Err(_) => {
                        self.counters.record(Outcome::Transport);
                        return Err(self.timeout(&endpoint));
                    }
                };
            match self.open_download(&endpoint, response).await {
                Err(error) if error.is_token_rejection() && !refreshed => {
                    refreshed = true;
                    self.refresh_rejected(&token).await?;
                }
                other => return other,
            }
        }
    }

    fn timeout(&self, endpoint: &str) -> PortalError {
        PortalError::Timeout {
            portal: self.portal.clone(),
            endpoint: endpoint.to_string(),
        }
    }

    async fn open_download(
        &self,
        endpoint: &str,
        response: reqwest::Response,
    ) -> Result<Option<Download>, PortalError> {
        let status = response.status().as_u16();
        let content_type = header_text(response.headers(), CONTENT_TYPE);
        let file_name = header_text(response.headers(), CONTENT_DISPOSITION)
            .and_then(|h| content_disposition_file_name(&h));
        let content_length = response.content_length();
        let mut body = response.bytes_stream().boxed();

        let (head, ended) = self
            .read_at_least(endpoint, &mut body, PEEK_LEN, BytesMut::new())
            .await?;
        let error_like =
            !(200..300).contains(&status) || looks_like_error_body(content_type.as_deref(), &head);
        if ended && head.is_empty() && (200..300).contains(&status) {
            self.counters.record(Outcome::Ok);
            return Ok(None);
        }
        let (head, ended) = if error_like && !ended {
            self.read_at_least(endpoint, &mut body, MAX_ERROR_BODY, head)
                .await?
        } else {
            (head, ended)
        };
        if error_like && (ended || !(200..300).contains(&status)) {
            // Either an error (returned) or data that merely starts like one (kept).
            self.interpret(endpoint, status, content_type.as_deref(), &head)?;
        } else {
            self.counters.record(Outcome::Ok);
        }
        let head: Bytes = head.freeze();
        let rest = guarded_body(
            body,
            self.counters.clone(),
            self.portal.clone(),
            endpoint.to_string(),
            self.request_timeout,
        );
        let stream = futures::stream::once(async move { Ok(head) })
            .filter(|chunk| {
                let keep = !matches!(chunk, Ok(bytes) if bytes.is_empty());
                async move { keep }
            })
            .chain(if ended {
                futures::stream::empty().boxed()
            } else {
                rest
            })
            .boxed();
        Ok(Some(Download::new(
            status,
            content_type,
            file_name,
            content_length,
            stream,
        )))
    }

    /// Reads chunks until `buffer` holds at least `want` bytes or the body ends.
    async fn read_at_least(
        &self,
        endpoint: &str,
        body: &mut futures::stream::BoxStream<'static, reqwest::Result<Bytes>>,
        want: usize,
        mut buffer: BytesMut,
    ) -> Result<(BytesMut, bool), PortalError> {
        while buffer.len() < want {
            match tokio::time::timeout(self.request_timeout, body.next()).await {
                Err(_) => {
                    self.counters.record(Outcome::Transport);
                    return Err(self.timeout(endpoint));
                }
                Ok(None) => return Ok((buffer, true)),
                Ok(Some(Ok(chunk))) => {
                    self.counters.downloaded(chunk.len());
                    buffer.extend_from_slice(&chunk);
                }
                Ok(Some(Err(error))) => {
                    self.counters.record(Outcome::Transport);
                    return Err(transport_error(&self.portal, endpoint, error));
                }
            }
        }
        Ok((buffer, false))
    }
}

fn query_length(params: &[(&str, String)]) -> usize {
    params.iter().map(|(k, v)| k.len() + v.len() * 3 + 2).sum()
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A reqwest failure as a `PortalError`, without the URL (and so without any query).
pub(crate) fn transport_error(portal: &str, endpoint: &str, error: reqwest::Error) -> PortalError {
    let error = error.without_url();
    let detail = error_chain(&error);
    let portal = portal.to_string();
    let endpoint = endpoint.to_string();
    if error.is_builder() {
        return PortalError::InvalidUrl {
            portal,
            endpoint,
            detail,
        };
    }
    if is_certificate_error(&error) {
        return PortalError::Tls {
            portal,
            endpoint,
            detail,
        };
    }
    if error.is_timeout() {
        return PortalError::Timeout { portal, endpoint };
    }
    PortalError::Transport {
        portal,
        endpoint,
        detail,
    }
}

/// "error sending request: client error (Connect): tcp connect error: Connection refused".
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

fn is_certificate_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = current {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return is_certificate_problem(tls);
        }
        // io::Error::source() skips the wrapped error itself, so look inside explicitly.
        if let Some(inner) = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return is_certificate_problem(inner);
        }
        current = cause.source();
    }
    // Boxed errors in hyper's chain hide their concrete type from `downcast_ref`, so fall
    // back to rustls's wording ("invalid peer certificate: UnknownIssuer",
    // "received fatal alert: BadCertificate", "peer sent no certificates").
    error_chain(error)
        .to_ascii_lowercase()
        .contains("certificate")
}

fn is_certificate_problem(error: &rustls::Error) -> bool {
    use rustls::AlertDescription as Alert;
    match error {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => true,
        rustls::Error::AlertReceived(alert) => matches!(
            alert,
            Alert::BadCertificate
                | Alert::UnsupportedCertificate
                | Alert::CertificateRevoked
                | Alert::CertificateExpired
                | Alert::CertificateUnknown
                | Alert::UnknownCA
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        let date = httpdate::fmt_http_date(later);
        headers.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_str(&date).unwrap(),
        );
        let wait = retry_after(&headers).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("soon"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
