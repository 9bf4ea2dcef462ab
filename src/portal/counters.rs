//! Request counters for metrics and reports: cheap atomics bumped on every request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Default, Debug)]
pub(crate) struct Counters {
    ok: AtomicU64,
    api_error: AtomicU64,
    http_error: AtomicU64,
    transport: AtomicU64,
    rate_limited: AtomicU64,
    rate_limit_wait_micros: AtomicU64,
    bytes_downloaded: AtomicU64,
    bytes_uploaded: AtomicU64,
    sign_ins: AtomicU64,
}

/// Outcome of one HTTP exchange, for the per-outcome request counters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    Ok,
    ApiError,
    HttpError,
    Transport,
    RateLimited,
}

impl Counters {
    pub fn record(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Ok => &self.ok,
            Outcome::ApiError => &self.api_error,
            Outcome::HttpError => &self.http_error,
            Outcome::Transport => &self.transport,
            Outcome::RateLimited => &self.rate_limited,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn waited(&self, wait: Duration) {
        let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        self.rate_limit_wait_micros
            .fetch_add(micros, Ordering::Relaxed);
    }

    pub fn downloaded(&self, bytes: usize) {
        self.bytes_downloaded
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn uploaded(&self, bytes: u64) {
        self.bytes_uploaded.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn signed_in(&self) {
        self.sign_ins.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            requests_ok: read(&self.ok),
            requests_api_error: read(&self.api_error),
            requests_http_error: read(&self.http_error),
            requests_transport_error: read(&self.transport),
            requests_rate_limited: read(&self.rate_limited),
            rate_limit_wait_ms: read(&self.rate_limit_wait_micros) / 1000,
            bytes_downloaded: read(&self.bytes_downloaded),
            bytes_uploaded: read(&self.bytes_uploaded),
            sign_ins: read(&self.sign_ins),
        }
    }
}

/// A point-in-time copy of one portal's counters (monotonic since `connect`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CounterSnapshot {
    /// Requests answered with a usable response.
    pub requests_ok: u64,
    /// Requests answered with a portal error body.
    pub requests_api_error: u64,
    /// Requests answered with a non-2xx status and no error body.
    pub requests_http_error: u64,
    /// Requests that failed to connect, timed out or lost their connection.
    pub requests_transport_error: u64,
    /// Requests answered with HTTP 429.
    pub requests_rate_limited: u64,
    /// Total time spent waiting for our own rate limiter.
    pub rate_limit_wait_ms: u64,
    pub bytes_downloaded: u64,
    pub bytes_uploaded: u64,
    /// generateToken calls that returned a token (the first sign-in included).
    pub sign_ins: u64,
}
