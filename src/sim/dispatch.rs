//! The request pipeline: control routes (`/__sim/*`, never faulted), then for API requests
//! `down` → latency → rate limit → body → route → drawn failure → auth → handler → stats.

use super::api::{self, Ctx, Reply};
use super::error::ApiError;
use super::faults::{Drawn, Engine, Failure, Faults};
use super::request::Req;
use super::routes::{self, Route};
use super::state::{now_ms, State};
use super::stats::{Counters, Stats};
use axum::body::Body;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::sync::Notify;

/// Control request bodies (fault settings) are small.
const CONTROL_BODY_LIMIT: usize = 1024 * 1024;

/// Everything one simulated portal shares between its connections.
pub struct Sim {
    pub state: Mutex<State>,
    faults: RwLock<Arc<Faults>>,
    engine: Mutex<Engine>,
    counters: Mutex<Counters>,
    /// `http(s)://127.0.0.1:PORT/portal`, echoed in discovery answers.
    pub base_url: String,
}

/// A poisoned lock only means another request panicked mid-way; the data is still the
/// best there is, and a simulator must keep answering.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sim {
    pub fn new(state: State, faults: Faults, base_url: String) -> Sim {
        let sim = Sim {
            state: Mutex::new(state),
            engine: Mutex::new(Engine::new(faults.seed)),
            faults: RwLock::new(Arc::new(Faults::default())),
            counters: Mutex::new(Counters::default()),
            base_url,
        };
        sim.set_faults(faults);
        sim
    }

    pub fn faults(&self) -> Arc<Faults> {
        match self.faults.read() {
            Ok(faults) => faults.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set_faults(&self, mut faults: Faults) {
        if faults.expire_tokens_now {
            lock(&self.state).tokens.clear();
            faults.expire_tokens_now = false;
        }
        lock(&self.engine).reseed(faults.seed);
        let faults = Arc::new(faults);
        match self.faults.write() {
            Ok(mut current) => *current = faults,
            Err(poisoned) => *poisoned.into_inner() = faults,
        }
    }

    pub fn stats(&self) -> Stats {
        lock(&self.counters).stats()
    }

    pub fn stats_total(&self) -> u64 {
        lock(&self.counters).total()
    }

    fn record(&self, endpoint: &'static str, outcome: &str) {
        lock(&self.counters).bump(endpoint, outcome);
    }

    /// Authenticates and runs the handler under one short hold of the state lock.
    fn run(&self, faults: &Faults, req: &Req, route: &Route) -> (Response<Body>, String) {
        let now = now_ms();
        let result = {
            let mut state = lock(&self.state);
            // generateToken ignores any token sent along with the credentials.
            let token = match route {
                Route::GenerateToken => None,
                _ => req.token(),
            };
            match api::authenticate(&state, faults, token.as_deref(), now) {
                Err(error) => Err(error),
                Ok(caller) => {
                    let (caller, is_admin) = match caller {
                        Some((name, admin)) => (Some(name), admin),
                        None => (None, false),
                    };
                    let ctx = Ctx {
                        req,
                        caller,
                        is_admin,
                        base_url: &self.base_url,
                        faults,
                        now,
                    };
                    api::handle(&ctx, &mut state, route)
                }
            }
        };
        let pretty = req.format_pretty();
        match result {
            Ok(reply) => render(reply, pretty),
            Err(error) => (
                error_response(&error, pretty),
                format!("error:{}", error.code),
            ),
        }
    }
}

fn render(reply: Reply, pretty: bool) -> (Response<Body>, String) {
    match reply {
        Reply::Json(value) => (json_response(StatusCode::OK, &value, pretty), "ok".into()),
        Reply::AdminJson(value) => {
            let outcome = match value.get("status").and_then(Value::as_str) {
                Some("error") => format!(
                    "error:{}",
                    value.get("code").and_then(Value::as_u64).unwrap_or(400)
                ),
                _ => "ok".into(),
            };
            (json_response(StatusCode::OK, &value, pretty), outcome)
        }
        Reply::Bytes {
            content_type,
            filename,
            body,
        } => file_response(Body::from(body), None, &content_type, filename),
        Reply::File {
            content_type,
            filename,
            body,
        } => {
            let length = body.len();
            file_response(
                Body::from_stream(body.stream()),
                Some(length),
                &content_type,
                filename,
            )
        }
        Reply::Empty => {
            let mut response = Response::new(Body::empty());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            (response, "ok".into())
        }
    }
}

/// A file download; `length` is set for streamed bodies, whose length hyper cannot see.
fn file_response(
    body: Body,
    length: Option<u64>,
    content_type: &str,
    filename: Option<String>,
) -> (Response<Body>, String) {
    {
        {
            let mut response = Response::new(body);
            if let Some(length) = length {
                response
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(length));
            }
            if let Ok(value) = HeaderValue::from_str(content_type) {
                response.headers_mut().insert(CONTENT_TYPE, value);
            }
            if let Some(filename) = filename {
                let safe: String = filename
                    .chars()
                    .map(|c| {
                        if c.is_ascii_graphic() && c != '"' || c == ' ' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                if let Ok(value) =
                    HeaderValue::from_str(&format!("attachment; filename=\"{safe}\""))
                {
                    response.headers_mut().insert(CONTENT_DISPOSITION, value);
                }
            }
            (response, "ok".into())
        }
    }
}

pub fn json_response(status: StatusCode, value: &Value, pretty: bool) -> Response<Body> {
    let body = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    }
    .unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn error_response(error: &ApiError, pretty: bool) -> Response<Body> {
    json_response(StatusCode::OK, &error.body(), pretty)
}

/// Closes the connection without answering: the handler never returns.
async fn drop_connection(kill: &Notify) -> Response<Body> {
    kill.notify_one();
    std::future::pending::<Response<Body>>().await
}

/// Answers with the drawn transient failure.
async fn fail(faults: &Faults, failure: Failure, kill: &Notify) -> Response<Body> {
    let body = |code: u16, message: &str| json!({"error": {"code": code, "message": message, "details": []}});
    match failure {
        Failure::Http500 => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &body(500, "Internal server error (simulated)."),
            false,
        ),
        Failure::Http502 => json_response(
            StatusCode::BAD_GATEWAY,
            &body(502, "Bad gateway (simulated)."),
            false,
        ),
        Failure::Http503 => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &body(503, "Service unavailable (simulated)."),
            false,
        ),
        Failure::Body500 => json_response(
            StatusCode::OK,
            &body(
                500,
                "An error occurred while processing the request (simulated).",
            ),
            false,
        ),
        Failure::Drop => drop_connection(kill).await,
        Failure::Stall => {
            tokio::time::sleep(faults.stall()).await;
            json_response(
                StatusCode::GATEWAY_TIMEOUT,
                &body(504, "Gateway timeout (simulated stall)."),
                false,
            )
        }
    }
}

/// Serves one request. `kill` closes this request's connection without a response.
pub async fn handle(
    sim: Arc<Sim>,
    kill: Arc<Notify>,
    request: Request<Incoming>,
) -> Response<Body> {
    let path = request.uri().path().to_owned();
    if let Some(control) = path.strip_prefix("/__sim/") {
        return control_route(&sim, control, request).await;
    }
    let faults = sim.faults();
    let resolved = routes::resolve(&path);
    let template = resolved.as_ref().map(|r| r.template).unwrap_or("unknown");
    if faults.down {
        sim.record(template, "fault:down");
        return drop_connection(&kill).await;
    }
    let ((delay, spiked), admitted) = {
        let mut engine = lock(&sim.engine);
        (engine.extra_latency(&faults), engine.take_token(&faults))
    };
    if spiked {
        lock(&sim.counters).spiked();
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Err(retry_after) = admitted {
        sim.record(template, "rate_limited");
        let mut response = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"error": {"code": 429, "message": "Too many requests. Try again later.", "details": []}}),
            false,
        );
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after));
        return response;
    }
    let req = match Req::read(request).await {
        Ok(req) => req,
        Err(error) => {
            sim.record(template, &format!("error:{}", error.code));
            return error_response(&error, false);
        }
    };
    let Some(resolved) = resolved else {
        sim.record(template, "error:400");
        return error_response(&ApiError::invalid_url(), req.format_pretty());
    };
    let drawn: Option<Drawn> = lock(&sim.engine).draw(&faults, resolved.route.is_write());
    if let Some(drawn) = drawn.filter(|d| !d.write_first) {
        sim.record(template, &format!("fault:{}", drawn.failure.as_str()));
        return fail(&faults, drawn.failure, &kill).await;
    }
    let (response, outcome) = sim.run(&faults, &req, &resolved.route);
    if let Some(drawn) = drawn {
        // The write happened; the client is told it failed (or hears nothing at all).
        sim.record(template, &format!("fault:{}", drawn.failure.as_str()));
        return fail(&faults, drawn.failure, &kill).await;
    }
    sim.record(template, &outcome);
    response
}

async fn control_route(sim: &Sim, route: &str, request: Request<Incoming>) -> Response<Body> {
    let method = request.method().clone();
    match (method, route.trim_end_matches('/')) {
        (Method::GET, "state") => {
            let snapshot = lock(&sim.state).snapshot();
            match serde_json::to_value(&snapshot) {
                Ok(value) => json_response(StatusCode::OK, &value, false),
                Err(error) => control_error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
            }
        }
        (Method::GET, "stats") => match serde_json::to_value(sim.stats()) {
            Ok(value) => json_response(StatusCode::OK, &value, false),
            Err(error) => control_error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        },
        (Method::GET, "faults") => match serde_json::to_value(&*sim.faults()) {
            Ok(value) => json_response(StatusCode::OK, &value, false),
            Err(error) => control_error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        },
        (Method::POST, "faults") => {
            let body = Body::new(request.into_body());
            let bytes = match axum::body::to_bytes(body, CONTROL_BODY_LIMIT).await {
                Ok(bytes) => bytes,
                Err(error) => return control_error(StatusCode::BAD_REQUEST, error.to_string()),
            };
            match serde_json::from_slice::<Faults>(&bytes) {
                Ok(faults) => {
                    sim.set_faults(faults);
                    match serde_json::to_value(&*sim.faults()) {
                        Ok(value) => json_response(StatusCode::OK, &value, false),
                        Err(error) => {
                            control_error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
                        }
                    }
                }
                Err(error) => control_error(
                    StatusCode::BAD_REQUEST,
                    format!("invalid fault settings: {error}"),
                ),
            }
        }
        _ => control_error(
            StatusCode::NOT_FOUND,
            "unknown control route; use GET /__sim/state, GET /__sim/stats, GET|POST /__sim/faults"
                .into(),
        ),
    }
}

fn control_error(status: StatusCode, message: String) -> Response<Body> {
    json_response(status, &json!({ "error": message }), false)
}
