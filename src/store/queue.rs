//! The queue's writes. Each function runs inside the caller's `BEGIN IMMEDIATE` transaction
//! and never commits: the caller decides what commits together.
//!
//! Invariant kept by every function here: `tasks.unmet_deps` = the number of the task's
//! dependencies that are neither done nor skipped. A dependency only ever becomes done or
//! skipped once (finished tasks never go back), so completing a task decrements each
//! dependent exactly once, and adding an edge to an unfinished dependency increments.

use rusqlite::{params, Connection, OptionalExtension};

use super::{ClaimedTask, Completion, NewTask, StoreError, TaskId, TaskKey, TaskState};

/// Inserts the tasks that do not exist yet, then their dependency edges (so a task may depend
/// on one later in the same batch). Tasks that already exist are left untouched, dependencies
/// included: planning twice is a no-op. Returns how many were inserted.
pub fn insert_tasks(conn: &Connection, tasks: &[NewTask], now: i64) -> Result<usize, StoreError> {
    let mut inserted: Vec<(TaskId, &NewTask)> = Vec::new();
    {
        let mut insert = conn.prepare_cached(
            "INSERT INTO tasks (kind, source_key, title, state, priority, attempt, max_attempts, \
             run_at, unmet_deps, payload, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 'pending', ?4, 0, ?5, ?6, 0, ?7, ?6, ?6) \
             ON CONFLICT (kind, source_key) DO NOTHING RETURNING id",
        )?;
        for task in tasks {
            let id: Option<TaskId> = insert
                .query_row(
                    params![
                        task.kind,
                        task.source_key,
                        task.title,
                        task.priority,
                        task.max_attempts,
                        now,
                        task.payload.to_string()
                    ],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(id) = id {
                inserted.push((id, task));
            }
        }
    }
    for (id, task) in &inserted {
        if task.depends_on.is_empty() {
            continue;
        }
        let key = task.key();
        for dependency in &task.depends_on {
            let (dependency_id, _) = resolve(conn, dependency)?;
            add_edge(conn, (*id, &key), (dependency_id, dependency), now)?;
        }
    }
    Ok(inserted.len())
}

/// The id and state of the task with this key.
fn resolve(conn: &Connection, key: &TaskKey) -> Result<(TaskId, TaskState), StoreError> {
    conn.prepare_cached("SELECT id, state FROM tasks WHERE kind = ?1 AND source_key = ?2")?
        .query_row(params![key.kind, key.source_key], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?
        .ok_or_else(|| StoreError::UnknownDependency(key.clone()))
}

struct EdgeEnd {
    state: TaskState,
    blocked_by: Option<TaskId>,
}

fn edge_end(conn: &Connection, id: TaskId) -> Result<EdgeEnd, StoreError> {
    conn.prepare_cached("SELECT state, blocked_by FROM tasks WHERE id = ?1")?
        .query_row(params![id], |row| {
            Ok(EdgeEnd {
                state: row.get(0)?,
                blocked_by: row.get(1)?,
            })
        })
        .optional()?
        .ok_or(StoreError::UnknownTask(id))
}

/// Makes `task` wait for `dependency`, keeping `unmet_deps` right and blocking `task` (and
/// what waits on it) at once if the dependency has already failed.
fn add_edge(
    conn: &Connection,
    (task_id, task_key): (TaskId, &TaskKey),
    (dependency_id, dependency_key): (TaskId, &TaskKey),
    now: i64,
) -> Result<(), StoreError> {
    // A cycle would leave every task in it waiting forever; refuse it while the caller can
    // still see which edge closed it.
    let closes_cycle: bool = conn
        .prepare_cached(
            "WITH RECURSIVE upstream(id) AS ( \
                 SELECT ?1 \
                 UNION SELECT d.depends_on FROM task_deps d JOIN upstream u ON d.task_id = u.id) \
             SELECT EXISTS (SELECT 1 FROM upstream WHERE id = ?2)",
        )?
        .query_row(params![dependency_id, task_id], |row| row.get(0))?;
    if closes_cycle {
        return Err(StoreError::DependencyCycle {
            task: task_key.clone(),
            depends_on: dependency_key.clone(),
        });
    }
    let added = conn
        .prepare_cached("INSERT OR IGNORE INTO task_deps (task_id, depends_on) VALUES (?1, ?2)")?
        .execute(params![task_id, dependency_id])?;
    if added == 0 {
        return Ok(());
    }
    let dependency = edge_end(conn, dependency_id)?;
    if dependency.state.is_finished() {
        return Ok(());
    }
    conn.prepare_cached(
        "UPDATE tasks SET unmet_deps = unmet_deps + 1, updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![task_id, now])?;
    let root = match dependency.state {
        TaskState::Failed => dependency_id,
        TaskState::Blocked => dependency.blocked_by.unwrap_or(dependency_id),
        _ => return Ok(()),
    };
    let message = blocked_message(conn, root)?;
    conn.prepare_cached(
        "UPDATE tasks SET state = 'blocked', blocked_by = ?2, last_error = ?3, error_class = NULL, \
         updated_at = ?4 WHERE id = ?1 AND state = 'pending'",
    )?
    .execute(params![task_id, root, message, now])?;
    block_dependents(conn, task_id, root, &message, now)?;
    Ok(())
}

fn blocked_message(conn: &Connection, failed: TaskId) -> Result<String, StoreError> {
    let title: Option<String> = conn
        .prepare_cached("SELECT title FROM tasks WHERE id = ?1")?
        .query_row(params![failed], |row| row.get(0))
        .optional()?;
    Ok(match title {
        Some(title) => format!("blocked: depends on failed task #{failed} {title}"),
        None => format!("blocked: depends on failed task #{failed}"),
    })
}

/// Blocks every pending task that waits, directly or through others, on `start`. Tasks
/// already blocked keep the failure that blocked them first. Returns how many were blocked.
fn block_dependents(
    conn: &Connection,
    start: TaskId,
    failed: TaskId,
    message: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let blocked = conn
        .prepare_cached(
            "WITH RECURSIVE downstream(id) AS ( \
                 SELECT task_id FROM task_deps WHERE depends_on = ?1 \
                 UNION SELECT d.task_id FROM task_deps d JOIN downstream w ON d.depends_on = w.id) \
             UPDATE tasks SET state = 'blocked', blocked_by = ?2, last_error = ?3, \
                 error_class = NULL, updated_at = ?4 \
             WHERE state = 'pending' AND id IN (SELECT id FROM downstream)",
        )?
        .execute(params![start, failed, message, now])?;
    Ok(blocked as u64)
}

/// One statement claims a batch. `INDEXED BY` pins the partial index of ready rows: without
/// statistics SQLite may prefer `tasks_state` and sort every pending row on each claim, and
/// with it a query-plan change becomes an error instead of a slow queue.
const CLAIM: &str =
    "UPDATE tasks SET state = 'running', attempt = attempt + 1, leased_until = ?1, \
         updated_at = ?2 \
     WHERE id IN (SELECT id FROM tasks INDEXED BY tasks_ready \
                  WHERE state = 'pending' AND unmet_deps = 0 AND run_at <= ?2 \
                  ORDER BY priority, run_at, id LIMIT ?3) \
     RETURNING id, kind, source_key, title, payload, attempt, max_attempts, priority, run_at";

pub fn claim(
    conn: &Connection,
    now: i64,
    limit: usize,
    lease_ms: i64,
) -> Result<Vec<ClaimedTask>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(CLAIM)?;
    let rows = statement.query_map(params![now.saturating_add(lease_ms), now, limit], |row| {
        Ok((
            (row.get::<_, i64>(7)?, row.get::<_, i64>(8)?),
            row.get::<_, TaskId>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, u32>(5)?,
            row.get::<_, u32>(6)?,
        ))
    })?;
    let mut claimed = rows.collect::<Result<Vec<_>, _>>()?;
    // RETURNING gives rows in no promised order; hand them out in claim order.
    claimed.sort_by_key(|(order, id, ..)| (*order, *id));
    claimed
        .into_iter()
        .map(
            |((_, run_at), id, kind, source_key, title, payload, attempt, max_attempts)| {
                let payload = serde_json::from_str(&payload)
                    .map_err(|source| StoreError::CorruptPayload { task: id, source })?;
                Ok(ClaimedTask {
                    id,
                    kind,
                    source_key,
                    title,
                    payload,
                    attempt,
                    max_attempts,
                    run_at,
                })
            },
        )
        .collect()
}

/// The state of a task that must be running for its outcome to be recorded.
fn require_running(conn: &Connection, task: TaskId) -> Result<(), StoreError> {
    let state = edge_end(conn, task)?.state;
    if state == TaskState::Running {
        Ok(())
    } else {
        Err(StoreError::NotRunning { task, state })
    }
}

pub fn complete(
    conn: &Connection,
    task: TaskId,
    completion: &Completion,
    now: i64,
    run: Option<i64>,
) -> Result<(), StoreError> {
    require_running(conn, task)?;
    let state = if completion.skipped {
        TaskState::Skipped
    } else {
        TaskState::Done
    };
    let outcome = if completion.outcome.is_empty() {
        state.as_str()
    } else {
        completion.outcome.as_str()
    };
    conn.prepare_cached(
        "UPDATE tasks SET state = ?2, outcome = ?3, target_id = COALESCE(?4, target_id), \
         leased_until = NULL, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![
        task,
        state.as_str(),
        outcome,
        completion.target_id,
        now
    ])?;
    conn.prepare_cached(
        "UPDATE tasks SET unmet_deps = unmet_deps - 1, updated_at = ?2 \
         WHERE id IN (SELECT task_id FROM task_deps WHERE depends_on = ?1)",
    )?
    .execute(params![task, now])?;

    {
        let mut map = conn.prepare_cached(
            "INSERT INTO id_map (kind, source_id, target_id, task_id, mapped_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (kind, source_id) DO UPDATE SET target_id = excluded.target_id, \
                 task_id = excluded.task_id, mapped_at = excluded.mapped_at",
        )?;
        for (kind, source_id, target_id) in &completion.id_map {
            map.execute(params![kind, source_id, target_id, task, now])?;
        }
    }

    insert_tasks(conn, &completion.spawn, now)?;

    for (waiting, dependency) in &completion.add_deps {
        let (waiting_id, waiting_state) = resolve(conn, waiting)?;
        if matches!(
            waiting_state,
            TaskState::Running | TaskState::Done | TaskState::Skipped
        ) {
            return Err(StoreError::TaskAlreadyStarted {
                task: waiting.clone(),
                state: waiting_state,
            });
        }
        let (dependency_id, _) = resolve(conn, dependency)?;
        add_edge(
            conn,
            (waiting_id, waiting),
            (dependency_id, dependency),
            now,
        )?;
    }

    {
        let mut fact = conn.prepare_cached(
            "INSERT INTO facts (kind, subject, object, detail, task_id, recorded_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (kind, subject, object) DO UPDATE SET detail = excluded.detail, \
                 task_id = excluded.task_id, recorded_at = excluded.recorded_at",
        )?;
        for f in &completion.facts {
            fact.execute(params![
                f.kind,
                f.subject,
                f.object,
                f.detail.to_string(),
                task,
                now
            ])?;
        }
    }

    if let Some(note) = &completion.note {
        insert_event(conn, run, Some(task), "info", note, now)?;
    }
    Ok(())
}

pub fn retry_later(
    conn: &Connection,
    task: TaskId,
    run_at: i64,
    error: &str,
    class: &str,
    now: i64,
    run: Option<i64>,
) -> Result<(), StoreError> {
    require_running(conn, task)?;
    conn.prepare_cached(
        "UPDATE tasks SET state = 'pending', run_at = ?2, last_error = ?3, error_class = ?4, \
         leased_until = NULL, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![task, run_at, error, class, now])?;
    let wait_s = (run_at - now).max(0) as f64 / 1000.0;
    let message = format!("{class} error, retrying in {wait_s:.1} s: {error}");
    insert_event(conn, run, Some(task), "warn", &message, now)
}

pub fn snooze(
    conn: &Connection,
    task: TaskId,
    run_at: i64,
    reason: &str,
    now: i64,
    run: Option<i64>,
) -> Result<(), StoreError> {
    require_running(conn, task)?;
    conn.prepare_cached(
        "UPDATE tasks SET state = 'pending', run_at = ?2, attempt = MAX(attempt - 1, 0), \
         leased_until = NULL, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![task, run_at, now])?;
    let wait_s = (run_at - now).max(0) as f64 / 1000.0;
    let message = format!("paused for {wait_s:.1} s without spending an attempt: {reason}");
    insert_event(conn, run, Some(task), "info", &message, now)
}

pub fn fail(
    conn: &Connection,
    task: TaskId,
    error: &str,
    class: &str,
    now: i64,
    run: Option<i64>,
) -> Result<u64, StoreError> {
    require_running(conn, task)?;
    conn.prepare_cached(
        "UPDATE tasks SET state = 'failed', last_error = ?2, error_class = ?3, \
         leased_until = NULL, blocked_by = NULL, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![task, error, class, now])?;
    let message = blocked_message(conn, task)?;
    let blocked = block_dependents(conn, task, task, &message, now)?;
    let event = if blocked == 0 {
        format!("failed ({class}): {error}")
    } else {
        format!("failed ({class}): {error}; {blocked} dependent task(s) blocked")
    };
    insert_event(conn, run, Some(task), "error", &event, now)?;
    Ok(blocked)
}

pub fn release(conn: &Connection, tasks: &[TaskId], now: i64) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(
        "UPDATE tasks SET state = 'pending', attempt = MAX(attempt - 1, 0), leased_until = NULL, \
         updated_at = ?2 WHERE id = ?1 AND state = 'running'",
    )?;
    for task in tasks {
        statement.execute(params![task, now])?;
    }
    Ok(())
}

pub fn recover_abandoned(conn: &Connection, now: i64, run: Option<i64>) -> Result<u64, StoreError> {
    let recovered = conn.execute(
        "UPDATE tasks SET state = 'pending', attempt = MAX(attempt - 1, 0), leased_until = NULL, \
         updated_at = ?1 WHERE state = 'running'",
        params![now],
    )? as u64;
    if recovered > 0 {
        let message =
            format!("{recovered} task(s) left running by a stopped process put back to pending");
        insert_event(conn, run, None, "warn", &message, now)?;
    }
    Ok(recovered)
}

pub fn retry_failed(conn: &Connection, now: i64, run: Option<i64>) -> Result<u64, StoreError> {
    // Recount first: the tasks being revived are all unfinished and stay unfinished, so the
    // count is the same before and after their state changes.
    conn.execute(
        "UPDATE tasks SET unmet_deps = ( \
             SELECT COUNT(*) FROM task_deps d JOIN tasks dep ON dep.id = d.depends_on \
             WHERE d.task_id = tasks.id AND dep.state NOT IN ('done', 'skipped')) \
         WHERE state IN ('failed', 'blocked')",
        [],
    )?;
    let revived = conn.execute(
        "UPDATE tasks SET state = 'pending', attempt = 0, run_at = ?1, blocked_by = NULL, \
         leased_until = NULL, updated_at = ?1 WHERE state IN ('failed', 'blocked')",
        params![now],
    )? as u64;
    if revived > 0 {
        let message = format!("{revived} failed or blocked task(s) queued again");
        insert_event(conn, run, None, "info", &message, now)?;
    }
    Ok(revived)
}

pub fn insert_event(
    conn: &Connection,
    run: Option<i64>,
    task: Option<TaskId>,
    level: &str,
    message: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO events (at, run_id, task_id, level, message) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![now, run, task, level, message])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let parameters = statement.parameter_count();
        let values = vec![0i64; parameters];
        let rows = statement
            .query_map(rusqlite::params_from_iter(values), |row| {
                row.get::<_, String>(3)
            })
            .unwrap();
        rows.collect::<Result<Vec<_>, _>>().unwrap().join("\n")
    }

    #[test]
    fn claiming_walks_the_ready_index_without_sorting() {
        let dir = tempfile::TempDir::new().unwrap();
        let (conn, _lock) = super::super::open::open_for_run(
            &dir.path().join("state.db"),
            &super::super::OpenOptions::default(),
        )
        .unwrap();
        let claim_plan = plan(&conn, CLAIM);
        assert!(claim_plan.contains("tasks_ready"), "{claim_plan}");
        assert!(!claim_plan.contains("TEMP B-TREE"), "{claim_plan}");
        let next_plan = plan(&conn, super::super::NEXT_RUN_AT);
        assert!(next_plan.contains("tasks_ready_run_at"), "{next_plan}");
    }
}
