//! The HTTP endpoints: `/healthz` (the process answers), `/readyz` (both portals answer an
//! authenticated call and the state file takes a write), `/metrics` (Prometheus text) and
//! `/` (the status page).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use super::{metrics, page, ServiceError, ServiceState};
use crate::commands::Status;
use crate::portal::Portal;
use crate::store::{now_ms, FailureRow, StoreError};

/// A readiness probe gives up on a portal after this long.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// The status page lists at most this many failures (the `failures` view has them all).
const PAGE_FAILURES: usize = 20;

/// Binds `addr` and serves until `stop` is cancelled; returns the bound address and the
/// server's task (which holds the state, and so the state file, until it ends).
pub(super) async fn serve(
    addr: SocketAddr,
    state: Arc<ServiceState>,
    stop: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServiceError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServiceError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServiceError::Bind { addr, source })?;
    let app = Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    let server = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the HTTP endpoints stopped");
        }
    });
    Ok((bound, server))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<ServiceState>>) -> Response {
    let (source, target) = tokio::join!(reachable(&state.ctx.source), reachable(&state.ctx.target));
    let writable = state
        .ctx
        .store
        .call(|s| s.set_control("service.ready_check_at", Some(&now_ms().to_string())))
        .await
        .map_err(|e| format!("state file: {e}"));
    let problems: Vec<String> = [source, target, writable]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let body = format!("not ready:\n{}\n", problems.join("\n"));
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

/// One cheap authenticated call (the signed-in user), under a time limit.
async fn reachable(portal: &Portal) -> Result<(), String> {
    match tokio::time::timeout(READY_TIMEOUT, portal.get("community/self", &[])).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(format!("{} portal: {error}", portal.label())),
        Err(_) => Err(format!(
            "{} portal: no answer within {} s",
            portal.label(),
            READY_TIMEOUT.as_secs()
        )),
    }
}

async fn metrics_text(State(state): State<Arc<ServiceState>>) -> Response {
    match Snapshot::gather(&state).await {
        Ok(snapshot) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            metrics::render(&state, &snapshot),
        )
            .into_response(),
        Err(error) => unavailable(error),
    }
}

async fn status_page(State(state): State<Arc<ServiceState>>) -> Response {
    match Snapshot::gather(&state).await {
        Ok(snapshot) => Html(page::render(&state, &snapshot)).into_response(),
        Err(error) => unavailable(error),
    }
}

fn unavailable(error: StoreError) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("cannot read the state file: {error}\n"),
    )
        .into_response()
}

/// What the page and `/metrics` show, read from the state file in one store call.
pub(super) struct Snapshot {
    pub status: Status,
    pub failures_total: usize,
    pub sync: super::SyncRecord,
    pub paused: bool,
    /// (kind, count) of objects found deleted in the source.
    pub deleted: Vec<(String, u64)>,
}

impl Snapshot {
    async fn gather(state: &ServiceState) -> Result<Snapshot, StoreError> {
        let path = state.ctx.settings.state.path.display().to_string();
        state
            .ctx
            .store
            .call(move |s| {
                let mut failures: Vec<FailureRow> = s.failures()?;
                let failures_total = failures.len();
                failures.truncate(PAGE_FAILURES);
                let mut deleted: Vec<(String, u64)> = Vec::new();
                for fact in s.facts(super::sync::DELETED_FACT)? {
                    match deleted.iter_mut().find(|(kind, _)| *kind == fact.object) {
                        Some((_, count)) => *count += 1,
                        None => deleted.push((fact.object, 1)),
                    }
                }
                let pair = s.pair()?;
                Ok(Snapshot {
                    status: Status {
                        state_file: path,
                        source: pair
                            .as_ref()
                            .map(|(p, _)| format!("{} ({})", p.url, p.name)),
                        target: pair
                            .as_ref()
                            .map(|(_, p)| format!("{} ({})", p.url, p.name)),
                        progress: s.progress()?,
                        failures,
                        paused: super::is_paused(s)?,
                        portal_down: s.control(crate::work::health::CONTROL_KEY)?,
                    },
                    failures_total,
                    sync: super::SyncRecord::read(s)?,
                    paused: super::is_paused(s)?,
                    deleted,
                })
            })
            .await
    }
}
