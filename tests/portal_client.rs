//! The portal client against a tiny in-test portal (axum on loopback) answering canned
//! responses: sign-in, token handling, error bodies and their classes, paging, streaming
//! downloads, the rate limiter and multipart uploads.

#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use portal_migrate::class::{Classify, ErrorClass};
use portal_migrate::portal::{Download, Portal, PortalError, PortalSpec, Upload, UploadTuning};
use portal_migrate::secret::Secret;
use serde_json::{json, Value};

const PASSWORD: &str = "correct-horse-battery";

/// One request as the mock portal saw it.
#[derive(Debug, Clone, Default)]
struct Seen {
    method: String,
    /// Relative to `sharing/rest/`; `portaladmin/…` for the admin API.
    path: String,
    query: Vec<(String, String)>,
    form: Vec<(String, String)>,
    /// (field, file name, bytes)
    files: Vec<(String, String, Bytes)>,
    bearer: Option<String>,
}

impl Seen {
    fn form(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn param(&self, key: &str) -> Option<&str> {
        self.query(key).or_else(|| self.form(key))
    }

    /// The token, wherever the client put it.
    fn token(&self) -> Option<String> {
        self.form("token")
            .or_else(|| self.query("token"))
            .map(str::to_string)
            .or_else(|| self.bearer.clone())
    }
}

type Handler = dyn Fn(&Seen) -> Option<Response> + Send + Sync;

struct MockState {
    seen: Mutex<Vec<Seen>>,
    sign_ins: AtomicUsize,
    /// Lifetime of the tokens generateToken hands out.
    token_lifetime: Duration,
    handler: Box<Handler>,
}

struct Mock {
    state: Arc<MockState>,
    addr: SocketAddr,
}

impl Mock {
    async fn start(handler: impl Fn(&Seen) -> Option<Response> + Send + Sync + 'static) -> Mock {
        Mock::start_with_lifetime(Duration::from_secs(3600), handler).await
    }

    async fn start_with_lifetime(
        token_lifetime: Duration,
        handler: impl Fn(&Seen) -> Option<Response> + Send + Sync + 'static,
    ) -> Mock {
        let state = Arc::new(MockState {
            seen: Mutex::new(Vec::new()),
            sign_ins: AtomicUsize::new(0),
            token_lifetime,
            handler: Box::new(handler),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Mock { state, addr }
    }

    fn url(&self) -> String {
        format!("http://{}/portal", self.addr)
    }

    fn spec(&self) -> PortalSpec {
        spec_for(&self.url(), PASSWORD)
    }

    async fn connect(&self) -> Portal {
        Portal::connect(self.spec()).await.unwrap()
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        let seen = self.state.seen.lock().unwrap();
        seen.iter().filter(|s| s.path == path).cloned().collect()
    }

    fn sign_ins(&self) -> usize {
        self.state.sign_ins.load(Ordering::SeqCst)
    }
}

fn spec_for(url: &str, password: &str) -> PortalSpec {
    PortalSpec {
        label: "source".into(),
        url: url.parse().unwrap(),
        username: "admin".into(),
        password: Secret::new(password),
        rate_limit_rps: None,
        ca_file: None,
        accept_invalid_certs: false,
        request_timeout: Duration::from_secs(5),
        token_minutes: 60,
    }
}

fn router(state: Arc<MockState>) -> axum::Router {
    axum::Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

async fn handle(State(state): State<Arc<MockState>>, request: Request) -> Response {
    let seen = record(request).await;
    state.seen.lock().unwrap().push(seen.clone());
    if let Some(response) = (state.handler)(&seen) {
        return response;
    }
    match seen.path.as_str() {
        "generateToken" => {
            if seen.form("password") != Some(PASSWORD) {
                return json_reply(
                    json!({"error":{"code":400,"message":"Unable to generate token.","details":["Invalid username or password."]}}),
                );
            }
            let n = state.sign_ins.fetch_add(1, Ordering::SeqCst) + 1;
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let expires = (now + state.token_lifetime).as_millis() as i64;
            json_reply(json!({"token": format!("tok-{n}"), "expires": expires, "ssl": false}))
        }
        "portals/self" => json_reply(json!({
            "id": "0123456789ABCDEF", "name": "Mock Portal", "portalMode": "singletenant",
            "isPortal": true, "currentVersion": "2025.1",
            "user": {"username": "admin", "role": "org_admin"}
        })),
        _ => (StatusCode::NOT_FOUND, "no such route").into_response(),
    }
}

async fn record(request: Request) -> Seen {
    let path = request.uri().path().to_string();
    let path = path
        .strip_prefix("/portal/sharing/rest/")
        .map(str::to_string)
        .or_else(|| path.strip_prefix("/portal/").map(str::to_string))
        .unwrap_or(path);
    let query: Vec<(String, String)> = request
        .uri()
        .query()
        .map(|q| serde_urlencoded::from_str(q).unwrap())
        .unwrap_or_default();
    let bearer = request
        .headers()
        .get("x-esri-authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_start_matches("Bearer ").to_string());
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut seen = Seen {
        method: request.method().to_string(),
        path,
        query,
        bearer,
        ..Seen::default()
    };
    if content_type.starts_with("multipart/form-data") {
        // A body cut off by the client (a failing upload source) just ends the record.
        let Ok(mut multipart) = Multipart::from_request(request, &()).await else {
            return seen;
        };
        while let Ok(Some(field)) = multipart.next_field().await {
            let name = field.name().unwrap_or("").to_string();
            let file_name = field.file_name().map(str::to_string);
            match (file_name, field.bytes().await) {
                (Some(file_name), Ok(bytes)) => seen.files.push((name, file_name, bytes)),
                (None, Ok(bytes)) => seen
                    .form
                    .push((name, String::from_utf8_lossy(&bytes).into_owned())),
                (_, Err(_)) => break,
            }
        }
    } else {
        let body = axum::body::to_bytes(request.into_body(), usize::MAX)
            .await
            .unwrap();
        if content_type.starts_with("application/x-www-form-urlencoded") {
            seen.form = serde_urlencoded::from_bytes(&body).unwrap();
        }
    }
    seen
}

fn json_reply(value: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn reply(value: Value) -> Option<Response> {
    Some(json_reply(value))
}

fn not_found_body() -> Value {
    json!({"error":{"code":400,"messageCode":"CONT_0001","message":"Item does not exist or is inaccessible.","details":[]}})
}

#[tokio::test]
async fn connect_signs_in_with_a_referer_token_and_reads_portals_self() {
    let mock = Mock::start(|_| None).await;
    let portal = mock.connect().await;

    let info = portal.info();
    assert_eq!(info.id, "0123456789ABCDEF");
    assert!(!info.is_online());
    assert_eq!(
        (info.username.as_str(), info.user_role.as_str()),
        ("admin", "org_admin")
    );
    assert_eq!(portal.label(), "source");

    let sign_in = &mock.seen("generateToken")[0];
    assert_eq!(sign_in.method, "POST");
    assert_eq!(sign_in.form("client"), Some("referer"));
    assert_eq!(sign_in.form("referer"), Some("portal-migrate"));
    assert_eq!(sign_in.form("expiration"), Some("60"));
    assert_eq!(sign_in.form("f"), Some("json"));
    assert!(sign_in.query.is_empty(), "credentials never go in the URL");
    assert_eq!(portal.counters().sign_ins, 1);
}

#[tokio::test]
async fn token_travels_in_the_header_for_gets_and_the_body_for_posts_never_the_url() {
    let mock = Mock::start(|seen| match seen.path.as_str() {
        "community/users/bob" => reply(json!({"username":"bob"})),
        "community/users/bob/update" => reply(json!({"success":true,"username":"bob"})),
        "portaladmin/security/users/createUser" => reply(json!({"status":"success"})),
        _ => None,
    })
    .await;
    let portal = mock.connect().await;

    portal.get("community/users/bob", &[]).await.unwrap();
    portal
        .post(
            "community/users/bob/update",
            &[("description", "hi".into())],
        )
        .await
        .unwrap();
    portal
        .admin_post("security/users/createUser", &[("username", "carol".into())])
        .await
        .unwrap();

    let get = &mock.seen("community/users/bob")[0];
    assert_eq!(get.method, "GET");
    assert_eq!(get.bearer.as_deref(), Some("tok-1"));
    assert_eq!(get.query("f"), Some("json"));
    assert_eq!(get.query("token"), None);

    let post = &mock.seen("community/users/bob/update")[0];
    assert_eq!(post.method, "POST");
    assert_eq!(post.form("token"), Some("tok-1"));
    assert_eq!(post.form("f"), Some("json"));
    assert_eq!(post.form("description"), Some("hi"));
    assert!(post.query.is_empty());

    let admin = &mock.seen("portaladmin/security/users/createUser")[0];
    assert_eq!(admin.form("token"), Some("tok-1"));
    assert!(admin.query.is_empty());
}

#[tokio::test]
async fn an_error_body_becomes_an_api_error_naming_portal_endpoint_and_message() {
    let mock = Mock::start(|seen| match seen.path.as_str() {
        "community/groups/g1" => reply(json!({"error":{"code":403,"messageCode":"GWM_0003",
            "message":"You do not have permissions to access this resource or perform this operation.",
            "details":"only the owner may see this"}})),
        "portaladmin/security/users/createUser" => {
            reply(json!({"status":"error","messages":["User 'carol' already exists."],"code":409}))
        }
        _ => None,
    })
    .await;
    let portal = mock.connect().await;

    let error = portal.get("community/groups/g1", &[]).await.unwrap_err();
    match &error {
        PortalError::Api {
            code,
            message_code,
            details,
            endpoint,
            ..
        } => {
            assert_eq!(*code, 403);
            assert_eq!(message_code.as_deref(), Some("GWM_0003"));
            assert_eq!(details, &vec!["only the owner may see this".to_string()]);
            assert_eq!(endpoint, "community/groups/g1");
        }
        other => panic!("expected an Api error, got {other:?}"),
    }
    assert_eq!(error.class(), ErrorClass::Permanent);
    let text = error.to_string();
    for expected in [
        "source",
        &mock.url(),
        "community/groups/g1",
        "do not have permissions",
        "only the owner",
    ] {
        assert!(text.contains(expected), "{text:?} lacks {expected:?}");
    }
    let debug = format!("{error:?}");
    assert!(
        !text.contains("tok-1") && !debug.contains("tok-1"),
        "token leaked: {debug}"
    );

    let admin_error = portal
        .admin_post("security/users/createUser", &[])
        .await
        .unwrap_err();
    assert!(matches!(admin_error, PortalError::Api { code: 409, .. }));
    assert!(admin_error.to_string().contains("already exists"));
    assert_eq!(admin_error.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn throttling_and_server_errors_are_transient() {
    let mock = Mock::start(|seen| match seen.path.as_str() {
        "throttled" => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "7")],
                "slow down",
            )
                .into_response(),
        ),
        "unavailable" => {
            Some((StatusCode::SERVICE_UNAVAILABLE, "<html>maintenance</html>").into_response())
        }
        "error500" => reply(json!({"error":{"code":500,"message":"Unable to update item."}})),
        "forbidden" => Some((StatusCode::FORBIDDEN, "no").into_response()),
        _ => None,
    })
    .await;
    let portal = mock.connect().await;

    let throttled = portal.get("throttled", &[]).await.unwrap_err();
    assert!(
        matches!(throttled, PortalError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{throttled:?}"
    );
    assert_eq!(throttled.class(), ErrorClass::Transient);
    assert_eq!(throttled.retry_after(), Some(Duration::from_secs(7)));

    let unavailable = portal.get("unavailable", &[]).await.unwrap_err();
    assert!(
        matches!(unavailable, PortalError::Http { status: 503, .. }),
        "{unavailable:?}"
    );
    assert_eq!(unavailable.class(), ErrorClass::Transient);

    let error500 = portal.post("error500", &[]).await.unwrap_err();
    assert_eq!(error500.class(), ErrorClass::Transient);

    let forbidden = portal.get("forbidden", &[]).await.unwrap_err();
    assert_eq!(forbidden.class(), ErrorClass::Permanent);

    let counters = portal.counters();
    assert_eq!(counters.requests_rate_limited, 1);
    assert_eq!(counters.requests_http_error, 2);
    assert_eq!(counters.requests_api_error, 1);
}

#[tokio::test]
async fn a_missing_item_is_permanent_and_not_found() {
    let mock = Mock::start(|seen| {
        if seen.path.starts_with("content/items/") {
            reply(not_found_body())
        } else {
            None
        }
    })
    .await;
    let portal = mock.connect().await;

    assert!(portal
        .item("0123456789abcdef0123456789abcdef")
        .await
        .unwrap()
        .is_none());
    let error = portal.get("content/items/abc", &[]).await.unwrap_err();
    assert!(error.is_not_found());
    assert_eq!(error.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn bad_credentials_are_fatal_and_never_reveal_the_password() {
    let mock = Mock::start(|_| None).await;
    let error = Portal::connect(spec_for(&mock.url(), "wrong-password-42"))
        .await
        .unwrap_err();
    assert!(matches!(error, PortalError::Auth { .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Fatal);
    let text = error.to_string();
    assert!(
        text.contains("source") && text.contains(&mock.url()),
        "{text}"
    );
    assert!(text.contains("check username / password_env"), "{text}");
    assert!(text.contains("Invalid username or password"), "{text}");
    let debug = format!("{error:?}");
    for secret in ["wrong-password-42", "tok-"] {
        assert!(!text.contains(secret) && !debug.contains(secret), "{debug}");
    }
}

#[tokio::test]
async fn an_unreachable_portal_is_a_transient_transport_error() {
    // Bind then drop a listener: the port is (almost certainly) closed now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/portal", listener.local_addr().unwrap());
    drop(listener);
    let error = Portal::connect(spec_for(&url, PASSWORD)).await.unwrap_err();
    assert!(matches!(error, PortalError::Transport { .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient);
}

fn paged_users(seen: &Seen, total: usize, repeat: bool) -> Option<Response> {
    let start: usize = seen.param("start")?.parse().ok()?;
    let num: usize = seen.param("num")?.parse().ok()?;
    let end = (start - 1 + num).min(total);
    let results: Vec<Value> = (start..=end)
        .map(|i| json!({"username": format!("user{i}")}))
        .collect();
    let next_start: i64 = if repeat {
        1
    } else if end < total {
        (end + 1) as i64
    } else {
        -1
    };
    reply(
        json!({"total": total, "start": start, "num": results.len(), "nextStart": next_start, "results": results}),
    )
}

#[tokio::test]
async fn paging_collects_every_page_and_refuses_a_server_that_repeats() {
    let mock = Mock::start(|seen| match seen.path.as_str() {
        "community/users" => paged_users(seen, 237, false),
        "community/groups" => paged_users(seen, 500, true),
        _ => None,
    })
    .await;
    let portal = mock.connect().await;

    let users = portal.search_users("*").await.unwrap();
    assert_eq!(users.len(), 237);
    assert_eq!(users[236]["username"], "user237");
    let starts: Vec<_> = mock
        .seen("community/users")
        .iter()
        .map(|s| {
            (
                s.param("start").unwrap().to_string(),
                s.param("num").unwrap().to_string(),
                s.param("q").unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        starts,
        [("1", "100", "*"), ("101", "100", "*"), ("201", "100", "*")].map(|(a, b, c)| (
            a.to_string(),
            b.to_string(),
            c.to_string()
        ))
    );

    let error = portal.search_groups("*").await.unwrap_err();
    assert!(
        matches!(error, PortalError::InvalidResponse { .. }),
        "{error:?}"
    );
    assert_eq!(
        mock.seen("community/groups").len(),
        1,
        "stopped at the first repeat"
    );
}

#[tokio::test]
async fn an_invalid_token_triggers_one_sign_in_and_one_replay() {
    let rejections = Arc::new(AtomicUsize::new(0));
    let counter = rejections.clone();
    let mock = Mock::start(move |seen| match seen.path.as_str() {
        "content/items/abc" => {
            if seen.token().as_deref() == Some("tok-1") {
                counter.fetch_add(1, Ordering::SeqCst);
                reply(json!({"error":{"code":498,"message":"Invalid token.","details":[]}}))
            } else {
                reply(json!({"id":"abc","title":"t"}))
            }
        }
        "always-498" => {
            reply(json!({"error":{"code":498,"message":"Invalid token.","details":[]}}))
        }
        _ => None,
    })
    .await;
    let portal = mock.connect().await;

    let item = portal.item("abc").await.unwrap().unwrap();
    assert_eq!(item["title"], "t");
    assert_eq!(mock.sign_ins(), 2);
    assert_eq!(rejections.load(Ordering::SeqCst), 1);
    let tokens: Vec<_> = mock
        .seen("content/items/abc")
        .iter()
        .map(|s| s.token())
        .collect();
    assert_eq!(
        tokens,
        [Some("tok-1".to_string()), Some("tok-2".to_string())]
    );

    // Refused again right after a fresh sign-in: one more sign-in, then a transient error.
    let error = portal.post("always-498", &[]).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_eq!(mock.sign_ins(), 3);
    assert_eq!(mock.seen("always-498").len(), 2);
}

#[tokio::test]
async fn concurrent_callers_share_one_token_refresh() {
    let mock = Mock::start(|seen| match seen.path.as_str() {
        "community/self" if seen.token().as_deref() == Some("tok-1") => {
            reply(json!({"error":{"code":498,"message":"Invalid token.","details":[]}}))
        }
        "community/self" => reply(json!({"username":"admin"})),
        _ => None,
    })
    .await;
    let portal = mock.connect().await;
    let calls = (0..10).map(|_| {
        let portal = portal.clone();
        tokio::spawn(async move { portal.get("community/self", &[]).await })
    });
    for call in futures::future::join_all(calls).await {
        call.unwrap().unwrap();
    }
    assert_eq!(
        mock.sign_ins(),
        2,
        "one sign-in at connect, one refresh for all ten callers"
    );
}

#[tokio::test]
async fn a_token_close_to_expiry_is_replaced_before_use() {
    let mock = Mock::start_with_lifetime(Duration::from_millis(1500), |seen| {
        match seen.path.as_str() {
            "community/self" => reply(json!({"username":"admin"})),
            _ => None,
        }
    })
    .await;
    let portal = mock.connect().await;
    portal.get("community/self", &[]).await.unwrap();
    assert_eq!(mock.sign_ins(), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    portal.get("community/self", &[]).await.unwrap();
    assert_eq!(mock.sign_ins(), 2);
    let last = mock.seen("community/self").pop().unwrap();
    assert_eq!(last.token().as_deref(), Some("tok-2"));
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn downloads_stream_in_chunks_and_tell_data_from_errors() {
    let mock = Mock::start(|seen| match seen.path.as_str() {
        "content/items/file1/data" => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = pattern(1 << 20)
                .chunks(64 * 1024)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            Some(
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/pdf")
                    .header(
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"report.pdf\"",
                    )
                    .body(Body::from_stream(futures::stream::iter(chunks)))
                    .unwrap(),
            )
        }
        "content/items/webmap/data" => reply(json!({"operationalLayers":[]})),
        "content/items/empty/data" => {
            Some(([(header::CONTENT_TYPE, "application/json")], "").into_response())
        }
        "content/items/gone/data" => reply(not_found_body()),
        "content/items/nometa/info/metadata/metadata.xml" => {
            reply(json!({"error":{"code":400,"message":"Metadata not found."}}))
        }
        "content/items/meta/info/metadata/metadata.xml" => {
            Some(([(header::CONTENT_TYPE, "application/xml")], "<metadata/>").into_response())
        }
        _ => None,
    })
    .await;
    let portal = mock.connect().await;

    let download = portal.item_data("file1").await.unwrap().unwrap();
    assert_eq!(download.file_name(), Some("report.pdf"));
    assert_eq!(download.content_type(), Some("application/pdf"));
    let mut stream = download.into_stream();
    let mut received = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        received.extend_from_slice(&chunk.unwrap());
        chunks += 1;
    }
    assert!(chunks > 1, "arrived as a stream, not one buffer");
    assert_eq!(received, pattern(1 << 20));

    let webmap = portal
        .item_data("webmap")
        .await
        .unwrap()
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&webmap).unwrap(),
        json!({"operationalLayers":[]})
    );

    assert!(portal.item_data("empty").await.unwrap().is_none());

    let error = portal.item_data("gone").await.unwrap_err();
    assert!(error.is_not_found(), "{error:?}");

    assert!(portal.item_metadata("nometa").await.unwrap().is_none());
    assert_eq!(
        portal.item_metadata("meta").await.unwrap().unwrap(),
        Bytes::from_static(b"<metadata/>")
    );

    let download_seen = &mock.seen("content/items/file1/data")[0];
    assert_eq!(download_seen.bearer.as_deref(), Some("tok-1"));
    assert_eq!(download_seen.query("token"), None);
    assert!(portal.counters().bytes_downloaded >= 1 << 20);
}

#[tokio::test]
async fn the_rate_limiter_paces_every_request() {
    let mock = Mock::start(|seen| match seen.path.as_str() {
        "community/self" => reply(json!({"username":"admin"})),
        _ => None,
    })
    .await;
    let mut spec = mock.spec();
    spec.rate_limit_rps = NonZeroU32::new(10);
    let portal = Portal::connect(spec).await.unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        portal.get("community/self", &[]).await.unwrap();
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1500),
        "20 requests at 10/s took {elapsed:?}"
    );
    assert!(portal.counters().rate_limit_wait_ms >= 1000);
}

#[tokio::test]
async fn a_large_stream_is_uploaded_in_parts_then_committed() {
    const MIB: usize = 1024 * 1024;
    let polls = Arc::new(AtomicUsize::new(0));
    let poll_counter = polls.clone();
    let mock = Mock::start(move |seen| match seen.path.as_str() {
        "content/users/alice/f1/addItem" => {
            reply(json!({"success":true,"id":"newitem","folder":"f1"}))
        }
        "content/users/alice/items/newitem/addPart" => {
            reply(json!({"success":true,"id":"newitem"}))
        }
        "content/users/alice/items/newitem/commit" => reply(json!({"success":true,"id":"newitem"})),
        "content/users/alice/items/newitem/status" => {
            let status = if poll_counter.fetch_add(1, Ordering::SeqCst) == 0 {
                "processing"
            } else {
                "completed"
            };
            reply(json!({"status": status, "statusMessage": status, "itemId": "newitem"}))
        }
        _ => None,
    })
    .await;
    let portal = mock.connect().await.with_upload_tuning(UploadTuning {
        status_poll: Duration::from_millis(20),
        ..UploadTuning::default()
    });

    let total = 20 * MIB;
    // Generated lazily in 256 KiB chunks: the source is a stream, never one buffer.
    let source = futures::stream::iter((0..total).step_by(256 * 1024)).map(move |start| {
        let chunk: Vec<u8> = (start..(start + 256 * 1024).min(total))
            .map(|i| (i % 253) as u8)
            .collect();
        Ok::<_, PortalError>(Bytes::from(chunk))
    });
    let upload = Upload::Stream {
        file_name: "big.zip".into(),
        length: total as u64,
        download: Download::from_stream(Some("big.zip".into()), Some(total as u64), source),
    };
    let params = [
        ("title", "Big".to_string()),
        ("type", "Shapefile".to_string()),
    ];
    let id = portal
        .add_item("alice", Some("f1"), &params, Some(upload), None, None)
        .await
        .unwrap();
    assert_eq!(id, "newitem");

    let add = &mock.seen("content/users/alice/f1/addItem")[0];
    assert_eq!(add.form("multipart"), Some("true"));
    assert_eq!(add.form("filename"), Some("big.zip"));
    assert!(
        add.files.is_empty(),
        "the file goes in parts, not in addItem"
    );

    let parts = mock.seen("content/users/alice/items/newitem/addPart");
    assert_eq!(parts.len(), 3);
    let numbers: Vec<_> = parts
        .iter()
        .map(|p| p.form("partNum").unwrap().to_string())
        .collect();
    assert_eq!(numbers, ["1", "2", "3"]);
    let sizes: Vec<_> = parts.iter().map(|p| p.files[0].2.len()).collect();
    assert_eq!(sizes, [8 * MIB, 8 * MIB, 4 * MIB]);
    let received: Vec<u8> = parts
        .iter()
        .flat_map(|p| p.files[0].2.iter().copied())
        .collect();
    assert!(received
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i % 253) as u8));

    let commit = &mock.seen("content/users/alice/items/newitem/commit")[0];
    assert_eq!(commit.form("type"), Some("Shapefile"));
    assert_eq!(polls.load(Ordering::SeqCst), 2, "polled until completed");
}

#[tokio::test]
async fn a_small_file_goes_in_one_multipart_request_with_thumbnail_and_metadata() {
    let mock = Mock::start(|seen| match seen.path.as_str() {
        "content/users/alice/addItem" => reply(json!({"success":true,"id":"small1"})),
        _ => None,
    })
    .await;
    let portal = mock.connect().await;
    let upload = Upload::Bytes {
        file_name: "data.csv".into(),
        bytes: Bytes::from_static(b"a,b\n1,2\n"),
    };
    let id = portal
        .add_item(
            "alice",
            None,
            &[("title", "CSV".into()), ("type", "CSV".into())],
            Some(upload),
            Some(("thumb.png".into(), Bytes::from_static(b"PNG"))),
            Some(Bytes::from_static(b"<metadata/>")),
        )
        .await
        .unwrap();
    assert_eq!(id, "small1");
    let add = &mock.seen("content/users/alice/addItem")[0];
    assert_eq!(add.form("token"), Some("tok-1"));
    let mut files: Vec<_> = add
        .files
        .iter()
        .map(|(field, name, bytes)| (field.as_str(), name.as_str(), bytes.len()))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            ("file", "data.csv", 8),
            ("metadata", "metadata.xml", 11),
            ("thumbnail", "thumb.png", 3)
        ]
    );
}

#[tokio::test]
async fn tls_certificates_are_verified_unless_told_otherwise() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem(
        cert_pem.clone().into_bytes(),
        certified.key_pair.serialize_pem().into_bytes(),
    )
    .await
    .unwrap();
    let state = Arc::new(MockState {
        seen: Mutex::new(Vec::new()),
        sign_ins: AtomicUsize::new(0),
        token_lifetime: Duration::from_secs(3600),
        handler: Box::new(|_| None),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = router(state);
    tokio::spawn(async move {
        axum_server::from_tcp_rustls(listener, config)
            .serve(app.into_make_service())
            .await
            .unwrap()
    });
    let url = format!("https://localhost:{port}/portal");

    let error = Portal::connect(spec_for(&url, PASSWORD)).await.unwrap_err();
    assert!(matches!(error, PortalError::Tls { .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Fatal);

    let mut trusting = spec_for(&url, PASSWORD);
    trusting.accept_invalid_certs = true;
    Portal::connect(trusting).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, cert_pem).unwrap();
    let mut with_ca = spec_for(&url, PASSWORD);
    with_ca.ca_file = Some(ca_file);
    Portal::connect(with_ca).await.unwrap();
}

#[tokio::test]
async fn each_part_is_retried_on_its_own_and_a_failed_upload_is_cleaned_up() {
    const MIB: usize = 1024 * 1024;
    let attempts = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = attempts.clone();
    let mock = Mock::start(move |seen| {
        let path = seen.path.as_str();
        if path.ends_with("/addItem") {
            let id = seen.form("title").unwrap_or("x").to_string();
            return reply(json!({"success":true,"id": id}));
        }
        if let Some(rest) = path.strip_prefix("content/users/alice/items/") {
            let (id, action) = rest.split_once('/').unwrap();
            let part = seen.form("partNum").unwrap_or("").to_string();
            let mut log = log.lock().unwrap();
            log.push(format!("{id}:{action}:{part}"));
            let earlier = log
                .iter()
                .filter(|l| **l == format!("{id}:{action}:{part}"))
                .count();
            return match (id, action, part.as_str()) {
                // Part 2 of "flaky" fails once with a 503, then works.
                ("flaky", "addPart", "2") if earlier == 1 => {
                    Some((StatusCode::SERVICE_UNAVAILABLE, "busy").into_response())
                }
                // Part 2 of "broken" is refused for good.
                ("broken", "addPart", "2") => {
                    reply(json!({"error":{"code":400,"message":"Invalid part.","details":[]}}))
                }
                (_, "status", _) => reply(json!({"status":"completed"})),
                _ => reply(json!({"success":true,"id": id})),
            };
        }
        None
    })
    .await;
    let portal = mock.connect().await.with_upload_tuning(UploadTuning {
        multipart_threshold: MIB as u64,
        part_size: MIB,
        part_backoff: Duration::from_millis(10),
        status_poll: Duration::from_millis(10),
        ..UploadTuning::default()
    });
    let upload = || Upload::Bytes {
        file_name: "three.bin".into(),
        bytes: Bytes::from(pattern(3 * MIB)),
    };

    let id = portal
        .add_item(
            "alice",
            None,
            &[("title", "flaky".into())],
            Some(upload()),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(id, "flaky");
    let flaky: Vec<String> = attempts
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("flaky:"))
        .cloned()
        .collect();
    assert_eq!(
        flaky,
        [
            "flaky:addPart:1",
            "flaky:addPart:2",
            "flaky:addPart:2",
            "flaky:addPart:3",
            "flaky:commit:",
            "flaky:status:"
        ]
    );

    let error = portal
        .add_item(
            "alice",
            None,
            &[("title", "broken".into())],
            Some(upload()),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Permanent);
    let broken: Vec<String> = attempts
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("broken:"))
        .cloned()
        .collect();
    assert_eq!(
        broken,
        ["broken:addPart:1", "broken:addPart:2", "broken:delete:"],
        "no retry of a permanent failure; the partial item is deleted"
    );
}

#[tokio::test]
async fn a_failing_upload_source_reports_its_own_error() {
    let mock = Mock::start(|seen| match seen.path.as_str() {
        "content/users/alice/addItem" => reply(json!({"success":true,"id":"never"})),
        _ => None,
    })
    .await;
    let portal = mock.connect().await;
    let source = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"first half ")),
        Err(PortalError::Timeout {
            portal: "target portal https://elsewhere/portal".into(),
            endpoint: "content/items/src/data".into(),
        }),
    ]);
    let upload = Upload::Stream {
        file_name: "f.csv".into(),
        length: 100,
        download: Download::from_stream(None, Some(100), source),
    };
    let error = portal
        .add_item(
            "alice",
            None,
            &[("title", "t".into())],
            Some(upload),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, PortalError::Timeout { endpoint, .. } if endpoint == "content/items/src/data"),
        "{error:?}"
    );
    assert_eq!(error.class(), ErrorClass::Transient);
}
