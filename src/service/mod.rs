//! The long-running mode of `portal-migrate run`: migrate, then keep the target in step with
//! the source, one sync round every `sync.interval`, while serving `/healthz`, `/readyz`,
//! `/metrics` and a status page on `service.listen`.
//!
//! Everything an operator changes at run time goes through places that survive a restart:
//! the pause switch is a row in the state file's `control` table (set by `portal-migrate
//! pause` from another process), the sync rounds are recorded there too. Reloaded settings
//! (SIGHUP) arrive on a channel, so the library never reads signals or the environment.

mod http;
mod metrics;
mod page;
pub mod sync;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::engine::{self, Context, RunError};
use crate::settings::Settings;
use crate::store::{now_ms, Store, StoreError};
use crate::work::{self, PoolControls, PoolStats, Summary, PAUSED_KEY};

pub use page::escape;
pub use sync::SyncRecord;

/// How `run` behaves beyond what the settings say.
#[derive(Default)]
pub struct ServiceOptions {
    /// Drain the queue once and return, even when `sync.interval_secs` is set.
    pub once: bool,
    /// Serve the HTTP endpoints on `service.listen` (when `service.enabled`).
    pub endpoints: bool,
    /// Told the address the endpoints listen on, once they do (port 0 picks a free port).
    pub on_listening: Option<oneshot::Sender<SocketAddr>>,
    /// Settings to apply without a restart (the binary sends one per SIGHUP): the worker
    /// count and both rate limits take effect at once; other keys at the next start.
    pub reload: Option<mpsc::UnboundedReceiver<Settings>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot serve the HTTP endpoints on {addr}: {source}; change service.listen or set service.enabled = false")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl From<ServiceError> for RunError {
    fn from(error: ServiceError) -> RunError {
        RunError::Fatal(error.to_string())
    }
}

/// What the endpoints read: the run's context, the pool's controls and counters, and when
/// things happened.
pub(crate) struct ServiceState {
    pub ctx: Context,
    pub controls: Arc<PoolControls>,
    pub started_at_ms: i64,
    /// Epoch ms of the next sync round while waiting for it; 0 otherwise.
    pub next_sync_at: AtomicI64,
    /// (when, tasks completed then) at the start of the current round, for throughput.
    pub round_baseline: Mutex<(Instant, u64)>,
    pub sync_interval: Option<Duration>,
}

impl ServiceState {
    /// Tasks finished per second since the current round began.
    pub fn throughput(&self) -> f64 {
        let (since, baseline) = *self
            .round_baseline
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let done = PoolStats::read(&self.controls.stats.completed).saturating_sub(baseline);
        let seconds = since.elapsed().as_secs_f64();
        if seconds < 1.0 {
            0.0
        } else {
            done as f64 / seconds
        }
    }

    fn restart_throughput(&self) {
        let completed = PoolStats::read(&self.controls.stats.completed);
        *self
            .round_baseline
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = (Instant::now(), completed);
    }
}

/// `portal-migrate run`: plans when the state is new, works until the queue drains, and then
/// — unless `options.once` or `sync.interval_secs = 0` — waits for the next sync round,
/// forever, until `shutdown` resolves. Returns the totals of everything this call did.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServiceOptions,
) -> Result<Summary, RunError> {
    let ctx = engine::connect(settings, "run").await?;
    let recovered = ctx.store.call(|s| s.recover_abandoned()).await?;
    if recovered > 0 {
        tracing::info!(
            recovered,
            "picked up tasks left running by a process that did not finish"
        );
    }
    let interval = if options.once {
        None
    } else {
        ctx.settings.sync.interval
    };
    let controls = Arc::new(PoolControls::new(ctx.settings.workers.count));
    let state = Arc::new(ServiceState {
        ctx: ctx.clone(),
        controls: controls.clone(),
        started_at_ms: now_ms(),
        next_sync_at: AtomicI64::new(0),
        round_baseline: Mutex::new((Instant::now(), 0)),
        sync_interval: interval,
    });

    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            stop.cancel();
        });
    }
    // The endpoints outlive the pool's shutdown a little, so a probe during the grace period
    // still gets an answer; they stop when `run` returns.
    let endpoints_stop = CancellationToken::new();
    let mut helpers = Vec::new();
    if let (true, Some(addr)) = (options.endpoints, ctx.settings.service.listen) {
        match http::serve(addr, state.clone(), endpoints_stop.clone()).await {
            Ok((bound, server)) => {
                helpers.push(server);
                tracing::info!(%bound, "serving /healthz, /readyz, /metrics and the status page");
                if let Some(tell) = options.on_listening {
                    let _ = tell.send(bound);
                }
            }
            // A one-off migration is still worth running without its status page; a service
            // nobody can see is not.
            Err(error) if interval.is_none() => tracing::warn!("{error}"),
            Err(error) => return Err(error.into()),
        }
    }
    if let Some(reloads) = options.reload {
        let reloader = tokio::spawn(apply_reloads(reloads, ctx.clone(), controls.clone()));
        helpers.push(reloader);
    }

    let result = sync_loop(&ctx, &state, interval, &stop).await;
    let outcome = match &result {
        Ok(s) if s.interrupted => "interrupted",
        Ok(s) if s.failed > 0 => "finished with failures",
        Ok(_) => "finished",
        Err(_) => "stopped by a fatal error",
    };
    let run_id = ctx.run_id;
    let ended = ctx.store.call(move |s| s.end_run(run_id, outcome)).await;
    // Every clone of the context must be gone when `run` returns: the state file's lock goes
    // with the last one, and a caller may start another run at once.
    endpoints_stop.cancel();
    for helper in helpers {
        helper.abort();
        let _ = helper.await;
    }
    drop((state, ctx));
    ended?;
    result
}

async fn sync_loop(
    ctx: &Context,
    state: &Arc<ServiceState>,
    interval: Option<Duration>,
    stop: &CancellationToken,
) -> Result<Summary, RunError> {
    let mut record = ctx.store.call(SyncRecord::read).await?;
    let mut total = Summary::default();
    crate::plan::enqueue_round(ctx, record.round).await?;
    loop {
        state.restart_throughput();
        let summary = work::drain_with(
            ctx,
            stop.clone().cancelled_owned(),
            &state.controls,
            work::clone_task,
        )
        .await?;
        add(&mut total, &summary);
        if summary.interrupted {
            break;
        }
        if !record.current_round_completed() {
            let round = record.round;
            ctx.store
                .call(move |s| sync::complete_round(s, round, now_ms()))
                .await?;
            record = ctx.store.call(SyncRecord::read).await?;
            tracing::info!(
                round,
                completed = summary.completed,
                failed = summary.failed,
                "sync round {round} finished"
            );
        }
        let Some(interval) = interval else { break };

        let last = record.completed_at.unwrap_or_else(now_ms);
        let due = last.saturating_add(i64::try_from(interval.as_millis()).unwrap_or(i64::MAX));
        state.next_sync_at.store(due, Ordering::Relaxed);
        let wait = Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0));
        tracing::info!(
            next_round = record.round + 1,
            wait_secs = wait.as_secs(),
            "queue drained; waiting for the next sync"
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => {
                total.interrupted = true;
                break;
            }
        }
        state.next_sync_at.store(0, Ordering::Relaxed);
        let round = record.round + 1;
        ctx.store
            .call(move |s| sync::begin_round(s, round, now_ms()))
            .await?;
        crate::plan::enqueue_round(ctx, round).await?;
        record = ctx.store.call(SyncRecord::read).await?;
        tracing::info!(round, "sync round {round}: re-discovering the source");
    }
    Ok(total)
}

fn add(total: &mut Summary, round: &Summary) {
    total.completed += round.completed;
    total.retried += round.retried;
    total.failed += round.failed;
    total.blocked += round.blocked;
    total.interrupted |= round.interrupted;
    total.elapsed_ms += round.elapsed_ms;
}

async fn apply_reloads(
    mut reloads: mpsc::UnboundedReceiver<Settings>,
    ctx: Context,
    controls: Arc<PoolControls>,
) {
    while let Some(new) = reloads.recv().await {
        controls.set_workers(new.workers.count);
        ctx.source.set_rate_limit(new.source.rate_limit_rps);
        ctx.target.set_rate_limit(new.target.rate_limit_rps);
        let rps = |limit: Option<std::num::NonZeroU32>| limit.map_or(0, |n| n.get());
        tracing::info!(
            workers = new.workers.count,
            source_rps = rps(new.source.rate_limit_rps),
            target_rps = rps(new.target.rate_limit_rps),
            "configuration reloaded: worker count and rate limits applied (other settings take effect at the next start; 0 rps = unlimited)"
        );
    }
}

/// `portal-migrate pause` (`true`) and `resume` (`false`): sets the switch in the state
/// file, which a running daemon reads within a second; works whether or not one runs.
pub fn set_paused(state_path: &std::path::Path, paused: bool) -> Result<(), StoreError> {
    let store = Store::open_alongside(state_path)?;
    let value = paused.then(|| now_ms().to_string());
    store.set_control(PAUSED_KEY, value.as_deref())?;
    let message = if paused {
        "paused by `portal-migrate pause`: no new tasks are claimed"
    } else {
        "resumed by `portal-migrate resume`"
    };
    store.record_event(None, None, "info", message)
}

/// Whether the state file's pause switch is set.
pub fn is_paused(store: &Store) -> Result<bool, StoreError> {
    Ok(store.control(PAUSED_KEY)?.is_some())
}
