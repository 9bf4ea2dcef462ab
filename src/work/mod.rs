//! The worker pool. One loop claims ready tasks from the queue and runs up to
//! `workers.count` of them at once. Workers only execute; the loop writes their outcomes
//! (done, retry later, failed) back, each atomically, and claims the next tasks in the same
//! transaction (group commit): under `synchronous = FULL` every commit costs an fsync, and
//! one fsync per batch of outcomes instead of two per task is what lets the queue keep up
//! with fast portals. Request pacing lives in the portal client (one limiter per portal,
//! shared by all workers), so adding workers never exceeds a portal's rate limit.

mod retry;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::class::{Classify, ErrorClass};
use crate::clone::{self, TaskError};
use crate::engine::{Context, RunError};
use crate::store::{ClaimRequest, ClaimedTask, Completion, TaskId, TaskOutcome};

pub use retry::backoff;

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
    task: TaskId,
    outcome: TaskOutcome,
    /// Set when the failure stops the whole run (wrong credentials, full disk): the task was
    /// put back without spending its attempt.
    fatal: Option<String>,
    /// For the log line and error messages.
    title: String,
}

/// What the loop keeps of a [`Finished`] while its outcome is being written.
struct Unwritten {
    task: TaskId,
    fatal: Option<String>,
    title: String,
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
    drain_with(ctx, shutdown, |ctx, task| async move {
        clone::execute(&ctx, &task).await
    })
    .await
}

/// [`drain`] with another executor in place of [`clone::execute`]: the benchmarks measure
/// the queue's own overhead with one that does no I/O.
pub async fn drain_with<E, F>(
    ctx: &Context,
    shutdown: impl Future<Output = ()> + Send + 'static,
    execute: E,
) -> Result<Summary, RunError>
where
    E: Fn(Context, ClaimedTask) -> F,
    F: Future<Output = Result<Completion, TaskError>> + Send + 'static,
{
    let started = Instant::now();
    let workers = ctx.settings.workers.count.max(1);
    let lease_ms = ctx.settings.workers.lease.as_millis() as i64;
    let mut summary = Summary::default();
    let mut inflight: JoinSet<Finished> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, TaskId> = HashMap::new();
    let mut unrecorded: Vec<Finished> = Vec::new();
    let mut fatal: Option<String> = None;
    let mut stopping = false;
    let mut grace: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let shutdown = tokio::spawn(shutdown);
    tokio::pin!(shutdown);

    loop {
        // Everything that finished while the last commit was under way goes into this one.
        while let Some(joined) = inflight.try_join_next_with_id() {
            collect(joined, &mut running, &mut unrecorded);
        }
        let free = if stopping || fatal.is_some() {
            0
        } else {
            workers.saturating_sub(inflight.len())
        };
        if !unrecorded.is_empty() || free > 0 {
            // The outcomes travel to the blocking thread and back rather than being cloned:
            // a discovery completion can carry thousands of spawned tasks.
            let (outcomes, batch): (Vec<(TaskId, TaskOutcome)>, Vec<Unwritten>) =
                std::mem::take(&mut unrecorded)
                    .into_iter()
                    .map(|f| {
                        let meta = Unwritten {
                            task: f.task,
                            fatal: f.fatal,
                            title: f.title,
                        };
                        ((f.task, f.outcome), meta)
                    })
                    .unzip();
            let claim = (free > 0).then(|| ClaimRequest {
                now_ms: now_ms(),
                limit: free,
                lease_ms,
            });
            match ctx
                .store
                .call(move |s| {
                    let recorded = s.record_and_claim(&outcomes, claim)?;
                    Ok((recorded, outcomes))
                })
                .await
            {
                Ok((recorded, outcomes)) => {
                    for ((meta, (_, outcome)), result) in
                        batch.into_iter().zip(outcomes).zip(recorded.outcomes)
                    {
                        count(meta, &outcome, result, &mut summary, &mut fatal);
                    }
                    for task in recorded.claimed {
                        tracing::debug!(task = task.id, kind = %task.kind, key = %task.source_key, attempt = task.attempt, "claimed");
                        let id = task.id;
                        let retry = ctx.settings.retry.clone();
                        let work = execute(ctx.clone(), task.clone());
                        let handle = inflight.spawn(async move {
                            let result = work.await;
                            decide(&retry, task, result)
                        });
                        running.insert(handle.id(), id);
                    }
                }
                Err(store_error) => {
                    // Nothing of this batch was written: its tasks stay `running` in the file
                    // and are picked up again by the next start. The run cannot go on
                    // without a durable record.
                    let message = match batch.first() {
                        Some(first) => format!(
                            "could not record the outcome of task {} ({}){}: {store_error}",
                            first.task,
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

        tokio::select! {
            joined = inflight.join_next_with_id() => {
                if let Some(joined) = joined {
                    collect(joined, &mut running, &mut unrecorded);
                }
            }
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
                let unfinished: Vec<TaskId> = running.drain().map(|(_, task)| task).collect();
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
    running: &mut HashMap<tokio::task::Id, TaskId>,
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
                tracing::error!(task, error = %join_error, "task panicked; it will be retried on the next start");
            }
        }
    }
}

/// Adds a written outcome to the summary; a refused one stops the run.
fn count(
    finished: Unwritten,
    outcome: &TaskOutcome,
    result: Result<u64, crate::store::StoreError>,
    summary: &mut Summary,
    fatal: &mut Option<String>,
) {
    match result {
        Err(store_error) => {
            fatal.get_or_insert(format!(
                "could not record the outcome of task {} ({}): {store_error}",
                finished.task, finished.title
            ));
        }
        Ok(blocked) => {
            if let Some(message) = finished.fatal {
                fatal.get_or_insert(message);
                return;
            }
            match outcome {
                TaskOutcome::Complete(_) => summary.completed += 1,
                TaskOutcome::RetryLater { .. } | TaskOutcome::Snooze { .. } => summary.retried += 1,
                TaskOutcome::Fail { .. } => {
                    summary.failed += 1;
                    summary.blocked += blocked;
                }
            }
        }
    }
}

/// Turns a task's result into the outcome to write: done, a pause the portal asked for, a
/// retry with backoff, or a failure once the budget is spent. Pure apart from logging.
fn decide(
    retry: &crate::settings::RetrySettings,
    task: ClaimedTask,
    result: Result<Completion, TaskError>,
) -> Finished {
    let id = task.id;
    let finished = |outcome, fatal| Finished {
        task: id,
        outcome,
        fatal,
        title: task.title.clone(),
    };
    let error = match result {
        Ok(completion) => {
            tracing::info!(task = id, kind = %task.kind, key = %task.source_key, outcome = %completion.outcome, "done: {}", task.title);
            return finished(TaskOutcome::Complete(completion), None);
        }
        Err(error) => error,
    };
    let message = error.to_string();
    let class = error.class();
    if let Some(pause) = error.retry_after() {
        tracing::info!(task = id, kind = %task.kind, key = %task.source_key, wait_ms = pause.as_millis() as u64, "portal asked us to wait: {message}");
        let run_at_ms = now_ms() + pause.as_millis() as i64;
        return finished(
            TaskOutcome::Snooze {
                run_at_ms,
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
        let delay = backoff(retry, task.attempt);
        tracing::warn!(task = id, kind = %task.kind, key = %task.source_key, attempt = task.attempt, class = class.as_str(), retry_in_ms = delay.as_millis() as u64, "failed, will retry: {message}");
        finished(
            TaskOutcome::RetryLater {
                run_at_ms: now_ms() + delay.as_millis() as i64,
                error: message,
                class: class.as_str().to_string(),
            },
            None,
        )
    } else {
        tracing::error!(task = id, kind = %task.kind, key = %task.source_key, attempt = task.attempt, class = class.as_str(), "failed: {message}");
        finished(
            TaskOutcome::Fail {
                error: message,
                class: class.as_str().to_string(),
            },
            None,
        )
    }
}
