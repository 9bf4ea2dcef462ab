//! Reads of the record a migration leaves (runs and events) for `report` and the status page,
//! and the one write another process may make while a run holds the lock: a control switch
//! (`portal-migrate pause` / `resume`).

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags};
use serde::{Deserialize, Serialize};

use super::{open, Store, StoreError, TaskId};

/// One row of `runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRow {
    pub id: i64,
    pub command: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
    pub pid: i64,
}

/// One row of `events`, with the kind and title of its task when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    pub id: i64,
    pub at: i64,
    pub run_id: Option<i64>,
    pub task_id: Option<TaskId>,
    pub task_kind: Option<String>,
    pub task_title: Option<String>,
    pub level: String,
    pub message: String,
}

/// How many times tasks of one kind were put back for another try.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryCount {
    pub kind: String,
    /// Failed attempts retried after a backoff.
    pub retries: u64,
    /// Waits the portal asked for (429 Retry-After), which spend no attempt.
    pub waits: u64,
}

impl Store {
    /// Opens an existing state file read-write *without* the run lock, for the control
    /// switches only: SQLite's own locking serialises this one small write with a running
    /// daemon's transactions. Refuses anything but a current portal-migrate state file.
    pub fn open_alongside(path: &Path) -> Result<Store, StoreError> {
        // The read-only open does every check (exists, ours, this schema) without writing.
        drop(open::open_readonly(path)?);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            _lock: None,
            current_run: std::cell::Cell::new(None),
        })
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRow>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, command, started_at, ended_at, outcome, pid FROM runs ORDER BY id",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(RunRow {
                    id: row.get(0)?,
                    command: row.get(1)?,
                    started_at: row.get(2)?,
                    ended_at: row.get(3)?,
                    outcome: row.get(4)?,
                    pid: row.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Events whose message starts with `prefix` (all events for ""), oldest first.
    pub fn events_starting_with(&self, prefix: &str) -> Result<Vec<EventRow>, StoreError> {
        self.read(|conn| {
            // substr instead of LIKE: the prefix is text, not a pattern (no escaping of % or _).
            let mut statement = conn.prepare_cached(
                "SELECT e.id, e.at, e.run_id, e.task_id, t.kind, t.title, e.level, e.message \
                 FROM events e LEFT JOIN tasks t ON t.id = e.task_id \
                 WHERE substr(e.message, 1, length(?1)) = ?1 ORDER BY e.id",
            )?;
            let rows = statement.query_map(params![prefix], |row| {
                Ok(EventRow {
                    id: row.get(0)?,
                    at: row.get(1)?,
                    run_id: row.get(2)?,
                    task_id: row.get(3)?,
                    task_kind: row.get(4)?,
                    task_title: row.get(5)?,
                    level: row.get(6)?,
                    message: row.get(7)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Retries and portal-requested waits per task kind, counted from the events that
    /// `retry_later` and `snooze` record (see `queue.rs` for their wording).
    pub fn retry_counts(&self) -> Result<Vec<RetryCount>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT t.kind, \
                     SUM(CASE WHEN e.message LIKE '% error, retrying in %' THEN 1 ELSE 0 END), \
                     SUM(CASE WHEN e.message LIKE 'paused for %' THEN 1 ELSE 0 END) \
                 FROM events e JOIN tasks t ON t.id = e.task_id \
                 GROUP BY t.kind ORDER BY t.kind",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(RetryCount {
                    kind: row.get(0)?,
                    retries: row.get(1)?,
                    waits: row.get(2)?,
                })
            })?;
            Ok(rows
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|count| count.retries + count.waits > 0)
                .collect())
        })
    }
}
