//! The worker pool. One loop claims ready tasks from the queue and runs up to
//! `workers.count` of them at once; each outcome (done, retry later, failed) is written back in
//! one transaction. Request pacing lives in the portal client (one limiter per portal, shared
//! by all workers), so adding workers never exceeds a portal's rate limit.

mod controls;
pub mod health;
mod retry;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::class::{Classify, ErrorClass};
use crate::clone::{self, TaskError};
use crate::engine::{Context, RunError};
use crate::store::{ClaimedTask, TaskId};

pub use controls::{PoolControls, PoolStats, WaitHistogram, PAUSED_KEY, QUEUE_WAIT_BUCKETS};
pub use retry::backoff;

/// How often the pool looks at the `paused` switch in the state file.
const PAUSE_POLL: Duration = Duration::from_millis(500);

use health::{Health, Verdict};

/// The pool's view of the portals' health, shared with the tasks recording their outcomes.
type SharedHealth = Arc<Mutex<Health>>;

fn lock(health: &SharedHealth) -> std::sync::MutexGuard<'_, Health> {
    // Every holder only updates a few fields without panicking in between.
    health
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What one `drain` did, for the exit code and the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub completed: u64,
    pub retried: u64,
    pub failed: u64,
    pub blocked: u64,
    /// Stopped by a shutdown signal before the queue drained.
    pub interrupted: bool,
    pub elapsed_ms: u128,
}

enum Outcome {
    Completed,
    Retrying,
    /// Put back without spending an attempt (the portal asked us to wait).
    Snoozed,
    Failed {
        blocked: u64,
    },
    /// Nothing else can proceed (wrong credentials, full disk); the task was put back.
    Fatal(String),
}

/// The queue's clock: the store stamps `run_at` with it, so claims must use the same one.
pub use crate::store::now_ms;

/// Runs ready tasks until none is left (pending or running), `shutdown` resolves, or a fatal
/// error stops the run. On shutdown, in-flight tasks get `workers.shutdown_grace` to finish;
/// whatever is still running then is released back to `pending` without spending an attempt.
pub async fn drain(
    ctx: &Context,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Summary, RunError> {
    let controls = Arc::new(PoolControls::new(ctx.settings.workers.count));
    drain_with(ctx, shutdown, &controls).await
}

/// [`drain`] with controls a service changes while it runs (worker count, pause) and
/// counters it reads for `/metrics`.
pub async fn drain_with(
    ctx: &Context,
    shutdown: impl Future<Output = ()> + Send + 'static,
    controls: &Arc<PoolControls>,
) -> Result<Summary, RunError> {
    let started = Instant::now();
    let stats = &controls.stats;
    let lease_ms = ctx.settings.workers.lease.as_millis() as i64;
    let mut summary = Summary::default();
    let mut inflight: JoinSet<(TaskId, Outcome)> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, Running> = HashMap::new();
    let mut fatal: Option<String> = None;
    let mut stopping = false;
    let shutdown = tokio::spawn(shutdown);
    tokio::pin!(shutdown);
    let mut pause_checked: Option<Instant> = None;
    let mut paused = false;
    let health: SharedHealth = Arc::default();
    let down_pause = ctx.settings.retry.portal_down_pause;
    // A process that died during an outage left its notice behind; this run starts afresh.
    ctx.store
        .call(|s| s.set_control(health::CONTROL_KEY, None))
        .await?;

    loop {
        let due = { lock(&health).due_probe(Instant::now()) };
        if let Some(side) = due {
            probe(ctx, &health, side, down_pause).await?;
        }
        let down = lock(&health).is_down();
        if pause_checked.is_none_or(|at| at.elapsed() >= PAUSE_POLL) {
            paused = ctx.store.call(|s| s.control(PAUSED_KEY)).await?.is_some();
            pause_checked = Some(Instant::now());
            if controls.note_paused(paused) != paused {
                if paused {
                    tracing::warn!(
                        in_flight = inflight.len(),
                        "paused: no new tasks are claimed until `portal-migrate resume`"
                    );
                } else {
                    tracing::info!("resumed: claiming tasks again");
                }
            }
        }
        let workers = controls.workers();
        if !stopping && !paused && !down && fatal.is_none() && inflight.len() < workers {
            let free = workers - inflight.len();
            let (claimed, waits) = ctx
                .store
                .call(move |s| {
                    let now = now_ms();
                    let claimed = s.claim(now, free, lease_ms)?;
                    // `run_at` is when the task became due (enqueued, or its retry time);
                    // the claim leaves it as it was.
                    let mut waits = Vec::with_capacity(claimed.len());
                    for task in &claimed {
                        waits.push(s.task(task.id)?.map(|row| (now - row.run_at).max(0)));
                    }
                    Ok((claimed, waits))
                })
                .await?;
            for wait in waits.into_iter().flatten() {
                stats.observe_queue_wait(Duration::from_millis(wait as u64));
            }
            for task in claimed {
                tracing::debug!(task = task.id, kind = %task.kind, key = %task.source_key, attempt = task.attempt, "claimed: {}", task.title);
                PoolStats::bump(&stats.claimed, 1);
                let ctx = ctx.clone();
                let controls = controls.clone();
                let label = Running {
                    id: task.id,
                    kind: task.kind.clone(),
                    key: task.source_key.clone(),
                };
                let id = task.id;
                let health = health.clone();
                let handle = inflight.spawn(async move {
                    (id, run_one(&ctx, &controls.stats, &health, task).await)
                });
                running.insert(handle.id(), label);
            }
        }

        if inflight.is_empty() {
            if stopping || fatal.is_some() {
                break;
            }
            let (outstanding, next) = ctx
                .store
                .call(|s| Ok((s.outstanding()?, s.next_run_at()?)))
                .await?;
            if outstanding == 0 {
                break;
            }
            let next_probe = { lock(&health).next_probe() };
            if let Some(probe_at) = next_probe {
                // A portal is down: nothing is claimed until it answers again.
                tokio::select! {
                    _ = tokio::time::sleep_until(probe_at.into()) => {}
                    _ = &mut shutdown, if !stopping => { stopping = true; summary.interrupted = true; }
                }
                continue;
            }
            if paused {
                tokio::select! {
                    _ = tokio::time::sleep(PAUSE_POLL) => {}
                    _ = &mut shutdown, if !stopping => { stopping = true; summary.interrupted = true; }
                }
                continue;
            }
            // Everything left waits for a retry time (or for a dependency that can never
            // finish, which `outstanding` would not count). Sleep until the earliest, a little
            // at a time, so a shutdown is noticed.
            let wait = next
                .map(|at| Duration::from_millis((at - now_ms()).clamp(10, 1_000) as u64))
                .unwrap_or(Duration::from_millis(500));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut shutdown, if !stopping => { stopping = true; summary.interrupted = true; }
            }
            continue;
        }

        let next_probe = lock(&health).next_probe();
        tokio::select! {
            _ = tokio::time::sleep_until(next_probe.unwrap_or_else(Instant::now).into()), if next_probe.is_some() => {}
            joined = inflight.join_next_with_id() => {
                let Some(joined) = joined else { continue };
                match joined {
                    Ok((handle, (_, outcome))) => {
                        running.remove(&handle);
                        match outcome {
                            Outcome::Completed => summary.completed += 1,
                            Outcome::Retrying | Outcome::Snoozed => summary.retried += 1,
                            Outcome::Failed { blocked } => { summary.failed += 1; summary.blocked += blocked; }
                            Outcome::Fatal(message) => { fatal.get_or_insert(message); }
                        }
                    }
                    Err(join_error) => {
                        // A panicking task is a bug; its row stays `running` and is picked up
                        // again on the next start. Keep the other workers going.
                        if let Some(task) = running.remove(&join_error.id()) {
                            tracing::error!(task = task.id, kind = %task.kind, key = %task.key, error = %join_error, "task panicked; it will be retried on the next start");
                        }
                    }
                }
            }
            _ = &mut shutdown, if !stopping => {
                stopping = true;
                summary.interrupted = true;
                tracing::info!(in_flight = inflight.len(), grace_secs = ctx.settings.workers.shutdown_grace.as_secs(), "shutting down: no new tasks; waiting for those in flight");
                let grace = ctx.settings.workers.shutdown_grace;
                let deadline = tokio::time::sleep(grace);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        joined = inflight.join_next_with_id() => {
                            match joined {
                                None => break,
                                Some(Ok((handle, (_, outcome)))) => {
                                    running.remove(&handle);
                                    if let Outcome::Completed = outcome { summary.completed += 1 }
                                }
                                Some(Err(e)) => { running.remove(&e.id()); }
                            }
                        }
                        _ = &mut deadline => {
                            inflight.abort_all();
                            while inflight.join_next().await.is_some() {}
                            let unfinished: Vec<TaskId> = running.drain().map(|(_, task)| {
                                tracing::warn!(task = task.id, kind = %task.kind, key = %task.key, "released: still running when the grace period ended; back to pending");
                                task.id
                            }).collect();
                            PoolStats::bump(&stats.released, unfinished.len() as u64);
                            tracing::warn!(released = unfinished.len(), "grace period over; releasing unfinished tasks");
                            ctx.store.call(move |s| s.release(&unfinished)).await?;
                            break;
                        }
                    }
                }
            }
        }
    }

    summary.elapsed_ms = started.elapsed().as_millis();
    match fatal {
        Some(message) => Err(RunError::Fatal(message)),
        None => Ok(summary),
    }
}

/// Who a spawned task is, for the log lines written when it cannot report itself.
struct Running {
    id: TaskId,
    kind: String,
    key: String,
}

/// Runs one task and records its outcome. Never returns an error: every failure is written to
/// the task's row, so the loop only counts.
async fn run_one(
    ctx: &Context,
    stats: &PoolStats,
    health: &SharedHealth,
    task: ClaimedTask,
) -> Outcome {
    let result = clone::execute(ctx, &task).await;
    let outcome = record(ctx, health, &task, result).await;
    match &outcome {
        Ok(Outcome::Completed) => PoolStats::bump(&stats.completed, 1),
        Ok(Outcome::Retrying) => PoolStats::bump(&stats.retried, 1),
        Ok(Outcome::Snoozed) => PoolStats::bump(&stats.snoozed, 1),
        Ok(Outcome::Failed { blocked }) => {
            PoolStats::bump(&stats.failed, 1);
            PoolStats::bump(&stats.blocked, *blocked);
        }
        Ok(Outcome::Fatal(_)) | Err(_) => {}
    }
    match outcome {
        Ok(outcome) => outcome,
        Err(store_error) => Outcome::Fatal(format!(
            "could not record the outcome of task {} ({}): {store_error}",
            task.id, task.title
        )),
    }
}

async fn record(
    ctx: &Context,
    health: &SharedHealth,
    task: &ClaimedTask,
    result: Result<crate::store::Completion, TaskError>,
) -> Result<Outcome, crate::store::StoreError> {
    let id = task.id;
    match result {
        Ok(completion) => {
            lock(health).succeeded();
            tracing::info!(task = id, kind = %task.kind, key = %task.source_key, outcome = %completion.outcome, "done: {}", task.title);
            ctx.store.call(move |s| s.complete(id, &completion)).await?;
            Ok(Outcome::Completed)
        }
        Err(error) => {
            let message = error.to_string();
            let class = error.class();
            let side = health::unanswered(ctx, &error);
            let verdict = { lock(health).failed(side, ctx, down_pause(ctx)) };
            if !matches!(verdict, Verdict::Ordinary) {
                if let Verdict::WentDown(outage) = &verdict {
                    let notice = health::control_value(outage, down_pause(ctx));
                    tracing::warn!("{notice}");
                    let run = ctx.run_id;
                    ctx.store
                        .call(move |s| {
                            s.set_control(health::CONTROL_KEY, Some(&notice))?;
                            s.record_event(Some(run), None, "warn", &notice)
                        })
                        .await?;
                }
                // The outage, not the task, failed: wait for the portal without spending the
                // attempt.
                let at = now_ms() + down_pause(ctx).as_millis() as i64;
                let reason = format!("paused while the portal does not answer: {message}");
                ctx.store.call(move |s| s.snooze(id, at, &reason)).await?;
                return Ok(Outcome::Snoozed);
            }
            if let Some(pause) = error.retry_after() {
                tracing::info!(task = id, kind = %task.kind, key = %task.source_key, wait_ms = pause.as_millis() as u64, "portal asked us to wait: {message}");
                let at = now_ms() + pause.as_millis() as i64;
                ctx.store.call(move |s| s.snooze(id, at, &message)).await?;
                return Ok(Outcome::Snoozed);
            }
            // Permanent errors get one more try: portals occasionally answer a 4xx for an
            // object written a moment ago. Transient ones get the whole budget.
            let budget = match class {
                ErrorClass::Transient => task.max_attempts,
                ErrorClass::Permanent => task.max_attempts.min(2),
                ErrorClass::Fatal => {
                    let at = now_ms();
                    let reason = message.clone();
                    ctx.store.call(move |s| s.snooze(id, at, &reason)).await?;
                    return Ok(Outcome::Fatal(message));
                }
            };
            if task.attempt < budget {
                let delay = backoff(&ctx.settings.retry, task.attempt);
                tracing::warn!(task = id, kind = %task.kind, key = %task.source_key, attempt = task.attempt, class = class.as_str(), retry_in_ms = delay.as_millis() as u64, "failed, will retry: {message}");
                let at = now_ms() + delay.as_millis() as i64;
                ctx.store
                    .call(move |s| s.retry_later(id, at, &message, class.as_str()))
                    .await?;
                Ok(Outcome::Retrying)
            } else {
                tracing::error!(task = id, kind = %task.kind, key = %task.source_key, attempt = task.attempt, class = class.as_str(), "failed: {message}");
                let blocked = ctx
                    .store
                    .call(move |s| s.fail(id, &message, class.as_str()))
                    .await?;
                if blocked > 0 {
                    tracing::warn!(task = id, kind = %task.kind, key = %task.source_key, blocked, "blocked: {blocked} dependent task(s) wait on this failed task");
                }
                Ok(Outcome::Failed { blocked })
            }
        }
    }
}

fn down_pause(ctx: &Context) -> Duration {
    ctx.settings.retry.portal_down_pause
}

/// Asks the down portal whether it answers again; announces the end of the outage if so.
async fn probe(
    ctx: &Context,
    health: &SharedHealth,
    side: health::Side,
    pause: Duration,
) -> Result<(), RunError> {
    match health::answers(ctx, side).await {
        Ok(()) => {
            let recovered = { lock(health).recovered() };
            let Some(outage) = recovered else {
                return Ok(());
            };
            let secs = (now_ms() - outage.since_ms).max(0) / 1000;
            let message = format!(
                "{} answers again after {secs} s without answering; work resumes",
                outage.description
            );
            tracing::info!("{message}");
            let run = ctx.run_id;
            ctx.store
                .call(move |s| {
                    s.set_control(health::CONTROL_KEY, None)?;
                    s.record_event(Some(run), None, "info", &message)
                })
                .await?;
        }
        Err(error) => {
            tracing::warn!(error = %error, retry_in_secs = pause.as_secs(), "the portal still does not answer; work stays paused");
            lock(health).still_down(pause);
        }
    }
    Ok(())
}
