//! The worker pool. One loop claims ready tasks from the queue and runs up to
//! `workers.count` of them at once. Workers only execute; the loop writes their outcomes
//! (done, retry later, failed) back, each atomically, and claims the next tasks in the same
//! transaction (group commit): under `synchronous = FULL` every commit costs an fsync, and
//! one fsync per batch of outcomes instead of two per task is what lets the queue keep up
//! with fast portals. Request pacing lives in the portal client (one limiter per portal,
//! shared by all workers), so adding workers never exceeds a portal's rate limit.
//!
//! Two things stop claiming without failing anything: the `paused` switch in the state file
//! (`portal-migrate pause`), and a portal that stops answering ([`health`]): then the tasks
//! that hit the outage wait for it without spending an attempt.

mod controls;
pub mod health;
mod retry;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::class::{Classify, ErrorClass};
use crate::clone::{self, TaskError};
use crate::engine::{Context, RunError};
use crate::store::{ClaimRequest, ClaimedTask, Completion, TaskId, TaskOutcome};

pub use controls::{PoolControls, PoolStats, WaitHistogram, PAUSED_KEY, QUEUE_WAIT_BUCKETS};
pub use retry::backoff;

use health::{Health, Verdict};

/// How often the pool looks at the `paused` switch in the state file.
const PAUSE_POLL: Duration = Duration::from_millis(500);

/// How often the pool looks for newly due tasks while some workers are idle and others run.
const IDLE_POLL: Duration = Duration::from_millis(200);

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

/// A worker's result, waiting to be written by the loop.
struct Finished {
    outcome: TaskOutcome,
    /// Set when the failure stops the whole run (wrong credentials, full disk): the task was
    /// put back without spending its attempt.
    fatal: Option<String>,
    label: Label,
}

/// Who a task is, for log lines and error messages written after it ran.
#[derive(Clone)]
struct Label {
    id: TaskId,
    kind: String,
    key: String,
    title: String,
}

impl Label {
    fn of(task: &ClaimedTask) -> Label {
        Label {
            id: task.id,
            kind: task.kind.clone(),
            key: task.source_key.clone(),
            title: task.title.clone(),
        }
    }
}

/// The pool's view of the portals' health, shared with the tasks deciding their outcomes.
type SharedHealth = Arc<Mutex<Health>>;

fn lock(health: &SharedHealth) -> std::sync::MutexGuard<'_, Health> {
    // Every holder only updates a few fields without panicking in between.
    health
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
    drain_with(ctx, shutdown, &controls, clone_task).await
}

/// The executor of a real migration.
pub async fn clone_task(ctx: Context, task: ClaimedTask) -> Result<Completion, TaskError> {
    clone::execute(&ctx, &task).await
}

/// [`drain`] with controls a service changes while it runs (worker count, pause), counters
/// it reads for `/metrics`, and the executor: [`clone_task`], or one that does no I/O for
/// the benchmarks that measure the queue's own overhead.
pub async fn drain_with<E, F>(
    ctx: &Context,
    shutdown: impl Future<Output = ()> + Send + 'static,
    controls: &Arc<PoolControls>,
    execute: E,
) -> Result<Summary, RunError>
where
    E: Fn(Context, ClaimedTask) -> F,
    F: Future<Output = Result<Completion, TaskError>> + Send + 'static,
{
    let started = Instant::now();
    let stats = &controls.stats;
    let lease_ms = ctx.settings.workers.lease.as_millis() as i64;
    let mut summary = Summary::default();
    let mut inflight: JoinSet<Finished> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, Label> = HashMap::new();
    let mut unrecorded: Vec<Finished> = Vec::new();
    let mut fatal: Option<String> = None;
    let mut stopping = false;
    let mut grace: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let mut pause_checked: Option<Instant> = None;
    let mut paused = false;
    let health: SharedHealth = Arc::default();
    let down_pause = ctx.settings.retry.portal_down_pause;
    let shutdown = tokio::spawn(shutdown);
    tokio::pin!(shutdown);
    // A process that died during an outage left its notice behind; this run starts afresh.
    ctx.store
        .call(|s| s.set_control(health::CONTROL_KEY, None))
        .await?;

    loop {
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
        let due = { lock(&health).due_probe(Instant::now()) };
        if let Some(side) = due {
            probe(ctx, &health, side, down_pause).await?;
        }
        let down = lock(&health).is_down();

        // Everything that finished while the last commit was under way goes into this one.
        while let Some(joined) = inflight.try_join_next_with_id() {
            collect(joined, &mut running, &mut unrecorded);
        }
        // Set when a claim left worker slots empty: tasks may become due (a retry time
        // passes) while others run, and nothing else would wake the loop for them.
        let mut idle_slots = false;
        let free = if stopping || paused || down || fatal.is_some() {
            0
        } else {
            controls.workers().saturating_sub(inflight.len())
        };
        if !unrecorded.is_empty() || free > 0 {
            // The outcomes travel to the blocking thread and back rather than being cloned:
            // a discovery completion can carry thousands of spawned tasks.
            type Written = Vec<(TaskId, TaskOutcome)>;
            type Meta = Vec<(Option<String>, Label)>;
            let (outcomes, batch): (Written, Meta) = std::mem::take(&mut unrecorded)
                .into_iter()
                .map(|f| ((f.label.id, f.outcome), (f.fatal, f.label)))
                .unzip();
            let claim = (free > 0).then(|| ClaimRequest {
                now_ms: now_ms(),
                limit: free,
                lease_ms,
            });
            let written = ctx
                .store
                .call(move |s| {
                    let recorded = s.record_and_claim(&outcomes, claim)?;
                    Ok((recorded, outcomes))
                })
                .await;
            match written {
                Ok((recorded, outcomes)) => {
                    for (((fatal_message, label), (_, outcome)), result) in
                        batch.into_iter().zip(outcomes).zip(recorded.outcomes)
                    {
                        count(
                            label,
                            fatal_message,
                            &outcome,
                            result,
                            stats,
                            &mut summary,
                            &mut fatal,
                        );
                    }
                    let now = now_ms();
                    idle_slots = recorded.claimed.len() < free;
                    for task in recorded.claimed {
                        tracing::debug!(task = task.id, kind = %task.kind, key = %task.source_key, attempt = task.attempt, "claimed: {}", task.title);
                        PoolStats::bump(&stats.claimed, 1);
                        stats.observe_queue_wait(Duration::from_millis(
                            (now - task.run_at).max(0) as u64
                        ));
                        let label = Label::of(&task);
                        let work = execute(ctx.clone(), task.clone());
                        let (ctx, health) = (ctx.clone(), health.clone());
                        let handle = inflight.spawn(async move {
                            let result = work.await;
                            decide(&ctx, &health, task, result).await
                        });
                        running.insert(handle.id(), label);
                    }
                }
                Err(store_error) => {
                    // Nothing of this batch was written: its tasks stay `running` in the file
                    // and are picked up again by the next start. The run cannot go on
                    // without a durable record.
                    let message = match batch.first() {
                        Some((_, first)) => format!(
                            "could not record the outcome of task {} ({}){}: {store_error}",
                            first.id,
                            first.title,
                            if batch.len() > 1 {
                                format!(" and {} others", batch.len() - 1)
                            } else {
                                String::new()
                            }
                        ),
                        None => format!("could not claim tasks: {store_error}"),
                    };
                    fatal.get_or_insert(message);
                }
            }
        }

        if inflight.is_empty() {
            if stopping || fatal.is_some() {
                if unrecorded.is_empty() {
                    break;
                }
                continue;
            }
            let (outstanding, next) = ctx
                .store
                .call(|s| Ok((s.outstanding()?, s.next_run_at()?)))
                .await?;
            if outstanding == 0 {
                break;
            }
            // Paused, waiting for a portal to answer again, or everything left waits for a
            // retry time (or for a dependency that can never finish, which `outstanding`
            // would not count). Sleep a little at a time, so a shutdown is noticed.
            let next_probe = { lock(&health).next_probe() };
            let wait = if let Some(probe_at) = next_probe {
                probe_at.saturating_duration_since(Instant::now())
            } else if paused {
                PAUSE_POLL
            } else {
                next.map(|at| Duration::from_millis((at - now_ms()).clamp(10, 1_000) as u64))
                    .unwrap_or(Duration::from_millis(500))
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut shutdown, if !stopping => { stopping = true; summary.interrupted = true; }
            }
            continue;
        }

        // While paused or down, wake up to look at the switch or to probe even if no task
        // finishes meanwhile; with idle slots, to claim tasks whose retry time has come.
        let wake = if paused || down {
            Some(
                lock(&health)
                    .next_probe()
                    .map(|at| at.saturating_duration_since(Instant::now()))
                    .unwrap_or(PAUSE_POLL),
            )
        } else if idle_slots {
            Some(IDLE_POLL)
        } else {
            None
        };
        tokio::select! {
            joined = inflight.join_next_with_id() => {
                if let Some(joined) = joined {
                    collect(joined, &mut running, &mut unrecorded);
                }
            }
            _ = tokio::time::sleep(wake.unwrap_or_default()), if wake.is_some() => {}
            _ = &mut shutdown, if !stopping => {
                stopping = true;
                summary.interrupted = true;
                let period = ctx.settings.workers.shutdown_grace;
                tracing::info!(in_flight = inflight.len(), grace_secs = period.as_secs(), "shutting down: no new tasks; waiting for those in flight");
                grace = Some(Box::pin(tokio::time::sleep(period)));
            }
            _ = async { if let Some(deadline) = grace.as_mut() { deadline.await } }, if grace.is_some() => {
                grace = None;
                inflight.abort_all();
                while let Some(joined) = inflight.join_next_with_id().await {
                    // A task that finished just before the abort still has its outcome.
                    if joined.is_ok() {
                        collect(joined, &mut running, &mut unrecorded);
                    }
                }
                let unfinished: Vec<TaskId> = running
                    .drain()
                    .map(|(_, task)| {
                        tracing::warn!(task = task.id, kind = %task.kind, key = %task.key, "released: still running when the grace period ended; back to pending");
                        task.id
                    })
                    .collect();
                PoolStats::bump(&stats.released, unfinished.len() as u64);
                tracing::warn!(released = unfinished.len(), "grace period over; releasing unfinished tasks");
                ctx.store.call(move |s| s.release(&unfinished)).await?;
            }
        }
    }

    summary.elapsed_ms = started.elapsed().as_millis();
    match fatal {
        Some(message) => Err(RunError::Fatal(message)),
        None => Ok(summary),
    }
}

fn collect(
    joined: Result<(tokio::task::Id, Finished), tokio::task::JoinError>,
    running: &mut HashMap<tokio::task::Id, Label>,
    unrecorded: &mut Vec<Finished>,
) {
    match joined {
        Ok((handle, finished)) => {
            running.remove(&handle);
            unrecorded.push(finished);
        }
        Err(join_error) => {
            // A panicking task is a bug; its row stays `running` and is picked up again on
            // the next start. Keep the other workers going.
            if let Some(task) = running.remove(&join_error.id()) {
                tracing::error!(task = task.id, kind = %task.kind, key = %task.key, error = %join_error, "task panicked; it will be retried on the next start");
            }
        }
    }
}

/// Adds a written outcome to the summary and the counters; a refused one stops the run.
fn count(
    label: Label,
    fatal_message: Option<String>,
    outcome: &TaskOutcome,
    result: Result<u64, crate::store::StoreError>,
    stats: &PoolStats,
    summary: &mut Summary,
    fatal: &mut Option<String>,
) {
    let blocked = match result {
        Err(store_error) => {
            fatal.get_or_insert(format!(
                "could not record the outcome of task {} ({}): {store_error}",
                label.id, label.title
            ));
            return;
        }
        Ok(blocked) => blocked,
    };
    if let Some(message) = fatal_message {
        fatal.get_or_insert(message);
        return;
    }
    match outcome {
        TaskOutcome::Complete(_) => {
            summary.completed += 1;
            PoolStats::bump(&stats.completed, 1);
        }
        TaskOutcome::RetryLater { .. } => {
            summary.retried += 1;
            PoolStats::bump(&stats.retried, 1);
        }
        TaskOutcome::Snooze { .. } => {
            summary.retried += 1;
            PoolStats::bump(&stats.snoozed, 1);
        }
        TaskOutcome::Fail { .. } => {
            summary.failed += 1;
            summary.blocked += blocked;
            PoolStats::bump(&stats.failed, 1);
            PoolStats::bump(&stats.blocked, blocked);
            if blocked > 0 {
                tracing::warn!(task = label.id, kind = %label.kind, key = %label.key, blocked, "blocked: {blocked} dependent task(s) wait on this failed task");
            }
        }
    }
}

/// Turns a task's result into the outcome to write: done, a pause the portal asked for, a
/// pause while a portal does not answer at all, a retry with backoff, or a failure once the
/// budget is spent.
async fn decide(
    ctx: &Context,
    health: &SharedHealth,
    task: ClaimedTask,
    result: Result<Completion, TaskError>,
) -> Finished {
    let label = Label::of(&task);
    let finished = |outcome, fatal| Finished {
        outcome,
        fatal,
        label: label.clone(),
    };
    let (id, kind, key) = (task.id, &task.kind, &task.source_key);
    let error = match result {
        Ok(completion) => {
            lock(health).succeeded();
            tracing::info!(task = id, kind = %kind, key = %key, outcome = %completion.outcome, "done: {}", task.title);
            return finished(TaskOutcome::Complete(completion), None);
        }
        Err(error) => error,
    };
    let message = error.to_string();
    let class = error.class();

    let pause = ctx.settings.retry.portal_down_pause;
    let side = health::unanswered(ctx, &error);
    let verdict = { lock(health).failed(side, ctx, pause) };
    if !matches!(verdict, Verdict::Ordinary) {
        if let Verdict::WentDown(outage) = &verdict {
            let notice = health::control_value(outage, pause);
            tracing::warn!("{notice}");
            let run = ctx.run_id;
            let written = ctx
                .store
                .call(move |s| {
                    s.set_control(health::CONTROL_KEY, Some(&notice))?;
                    s.record_event(Some(run), None, "warn", &notice)
                })
                .await;
            if let Err(store_error) = written {
                tracing::error!(error = %store_error, "could not record the outage in the state file");
            }
        }
        // The outage, not the task, failed: wait for the portal without spending the attempt.
        return finished(
            TaskOutcome::Snooze {
                run_at_ms: now_ms() + pause.as_millis() as i64,
                reason: format!("paused while the portal does not answer: {message}"),
            },
            None,
        );
    }

    if let Some(wait) = error.retry_after() {
        tracing::info!(task = id, kind = %kind, key = %key, wait_ms = wait.as_millis() as u64, "portal asked us to wait: {message}");
        return finished(
            TaskOutcome::Snooze {
                run_at_ms: now_ms() + wait.as_millis() as i64,
                reason: message,
            },
            None,
        );
    }
    // Permanent errors get one more try: portals occasionally answer a 4xx for an object
    // written a moment ago. Transient ones get the whole budget.
    let budget = match class {
        ErrorClass::Transient => task.max_attempts,
        ErrorClass::Permanent => task.max_attempts.min(2),
        ErrorClass::Fatal => {
            return finished(
                TaskOutcome::Snooze {
                    run_at_ms: now_ms(),
                    reason: message.clone(),
                },
                Some(message),
            );
        }
    };
    if task.attempt < budget {
        let delay = backoff(&ctx.settings.retry, task.attempt);
        tracing::warn!(task = id, kind = %kind, key = %key, attempt = task.attempt, class = class.as_str(), retry_in_ms = delay.as_millis() as u64, "failed, will retry: {message}");
        finished(
            TaskOutcome::RetryLater {
                run_at_ms: now_ms() + delay.as_millis() as i64,
                error: message,
                class: class.as_str().to_string(),
            },
            None,
        )
    } else {
        tracing::error!(task = id, kind = %kind, key = %key, attempt = task.attempt, class = class.as_str(), "failed: {message}");
        finished(
            TaskOutcome::Fail {
                error: message,
                class: class.as_str().to_string(),
            },
            None,
        )
    }
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
