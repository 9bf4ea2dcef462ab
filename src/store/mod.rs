//! The state file: the only code that speaks SQL.
//!
//! One SQLite file per migration holds everything a run needs to resume after being killed at
//! any instant: the work queue (`tasks`) with its dependencies (`task_deps`), the map from
//! source ids to target ids (`id_map`), relations discovered for later tasks (`facts`), and a
//! record of what each invocation did (`runs`, `events`). The schema lives in
//! `migrations/*.sql`, commented for people who open the file with `sqlite3 -readonly`.
//!
//! The queue follows Oban and River: a task is *ready* when it is pending, has no unmet
//! dependencies and its `run_at` has come; one `UPDATE … RETURNING` claims a batch of ready
//! tasks; retries are data (`run_at`), not sleeping threads; failed rows stay in place with
//! their error. Everything one task outcome writes (its state, its id map rows, the tasks it
//! spawns, facts, an event) commits in one transaction, so a crash leaves either all or none.
//!
//! Only one process works a state file at a time ([`Store::open`] takes an exclusive lock on
//! `<state file>.lock`); `status` reads alongside it through [`Store::open_readonly`].

mod history;
mod open;
mod queue;

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row, Transaction};
use serde::{Deserialize, Serialize};

use crate::class::{Classify, ErrorClass};

pub use history::{EventRow, RetryCount, RunRow};
pub use open::SCHEMA_VERSION;

/// The number of a task row; stable for the life of the state file.
pub type TaskId = i64;

/// What identifies a task across runs: planning the same work twice finds the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskKey {
    pub kind: String,
    pub source_key: String,
}

impl TaskKey {
    pub fn new(kind: impl Into<String>, source_key: impl Into<String>) -> TaskKey {
        TaskKey {
            kind: kind.into(),
            source_key: source_key.into(),
        }
    }
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.source_key)
    }
}

/// How hard SQLite works to survive a power cut. `Full` syncs the WAL on every commit, so a
/// committed id map row survives even an OS crash; `Normal` may lose the last commits on power
/// loss (never on a process kill) in exchange for throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Synchronous {
    Full,
    Normal,
}

#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub synchronous: Synchronous,
    /// How long a write waits for a reader (e.g. `status`) that holds the file busy.
    pub busy_timeout: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Who a portal is, as recorded in the `migration` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalIdentity {
    pub url: String,
    pub portal_id: String,
    pub name: String,
}

/// A task to enqueue. Enqueueing is idempotent on (kind, source_key): a task that already
/// exists is left exactly as it is, dependencies included.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewTask {
    pub kind: String,
    pub source_key: String,
    /// A label for people, e.g. `item 'AR' (CSV) of brown.rogers`.
    pub title: String,
    pub payload: serde_json::Value,
    /// Tasks that must be done (or skipped) first: existing tasks or tasks in the same batch.
    pub depends_on: Vec<TaskKey>,
    /// Lower is claimed first among ready tasks.
    pub priority: i64,
    pub max_attempts: u32,
}

impl NewTask {
    pub fn key(&self) -> TaskKey {
        TaskKey::new(self.kind.clone(), self.source_key.clone())
    }
}

/// A task handed to a worker by [`Store::claim`]. `attempt` counts this attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimedTask {
    pub id: TaskId,
    pub kind: String,
    pub source_key: String,
    pub title: String,
    pub payload: serde_json::Value,
    pub attempt: u32,
    pub max_attempts: u32,
    /// When the task became due (enqueued, or its retry time): the claim minus this is how
    /// long it waited for a worker.
    pub run_at: i64,
}

/// Everything a finished task records, committed together by [`Store::complete`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Completion {
    /// "created", "adopted", "updated", "skipped", "discovered", ...
    pub outcome: String,
    pub target_id: Option<String>,
    /// (kind, source id, target id) rows for the id map.
    pub id_map: Vec<(String, String, String)>,
    /// Enqueued insert-or-ignore on (kind, source_key); `depends_on` may name tasks in this
    /// same batch or existing tasks.
    pub spawn: Vec<NewTask>,
    /// (existing task that must wait, its new dependency).
    pub add_deps: Vec<(TaskKey, TaskKey)>,
    pub facts: Vec<Fact>,
    /// Mark the task 'skipped' instead of 'done'; dependents still proceed.
    pub skipped: bool,
    /// Recorded as an event.
    pub note: Option<String>,
}

/// How a task ended, as [`Store::record_and_claim`] writes it. Each variant does what the
/// method of the same name does.
#[derive(Debug, Clone)]
pub enum TaskOutcome {
    /// [`Store::complete`].
    Complete(Completion),
    /// [`Store::retry_later`].
    RetryLater {
        run_at_ms: i64,
        error: String,
        class: String,
    },
    /// [`Store::snooze`].
    Snooze { run_at_ms: i64, reason: String },
    /// [`Store::fail`].
    Fail { error: String, class: String },
}

/// What [`Store::claim`] takes, for [`Store::record_and_claim`].
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest {
    pub now_ms: i64,
    pub limit: usize,
    pub lease_ms: i64,
}

/// The answer of [`Store::record_and_claim`].
#[derive(Debug)]
pub struct Recorded {
    /// One per outcome, in order: `Ok(tasks blocked)` (always 0 but for a failure), or why
    /// that outcome was refused (nothing of it was written).
    pub outcomes: Vec<Result<u64, StoreError>>,
    pub claimed: Vec<ClaimedTask>,
}

/// A relation discovered by one task for later ones, unique per (kind, subject, object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub kind: String,
    pub subject: String,
    pub object: String,
    pub detail: serde_json::Value,
}

/// One row of the `progress` view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressRow {
    pub kind: String,
    pub state: String,
    pub count: u64,
}

/// One row of the `failures` view: a failed task, or a task blocked by one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRow {
    pub id: TaskId,
    pub kind: String,
    pub source_key: String,
    pub title: String,
    pub state: String,
    pub attempt: u32,
    pub error_class: Option<String>,
    pub last_error: Option<String>,
    /// For a blocked task: the failed task it waits on.
    pub blocked_by: Option<TaskId>,
    pub blocked_by_title: Option<String>,
}

/// Where a task is in its life. Stored as lower-case text in `tasks.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Pending,
    Running,
    Done,
    Failed,
    Blocked,
    Skipped,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
            TaskState::Blocked => "blocked",
            TaskState::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<TaskState> {
        Some(match text {
            "pending" => TaskState::Pending,
            "running" => TaskState::Running,
            "done" => TaskState::Done,
            "failed" => TaskState::Failed,
            "blocked" => TaskState::Blocked,
            "skipped" => TaskState::Skipped,
            _ => return None,
        })
    }

    /// Done or skipped: dependents may proceed.
    pub fn is_finished(self) -> bool {
        matches!(self, TaskState::Done | TaskState::Skipped)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromSql for TaskState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        TaskState::parse(text)
            .ok_or_else(|| FromSqlError::Other(format!("unknown task state {text:?}").into()))
    }
}

/// Every column of a `tasks` row. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    pub id: TaskId,
    pub kind: String,
    pub source_key: String,
    pub title: String,
    pub state: TaskState,
    pub outcome: Option<String>,
    pub priority: i64,
    pub attempt: u32,
    pub max_attempts: u32,
    pub run_at: i64,
    pub leased_until: Option<i64>,
    pub unmet_deps: u32,
    pub blocked_by: Option<TaskId>,
    pub last_error: Option<String>,
    pub error_class: Option<String>,
    pub target_id: Option<String>,
    pub payload: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Pinned to its index like the claim (see `queue::CLAIM`): a MIN over an index is one seek.
const NEXT_RUN_AT: &str = "SELECT MIN(run_at) FROM tasks INDEXED BY tasks_ready_run_at \
     WHERE state = 'pending' AND unmet_deps = 0";

/// The columns [`TaskRow::from_row`] reads, in its order.
const TASK_COLUMNS: &str = "id, kind, source_key, title, state, outcome, priority, attempt, \
     max_attempts, run_at, leased_until, unmet_deps, blocked_by, last_error, error_class, \
     target_id, payload, created_at, updated_at";

impl TaskRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<TaskRow> {
        let payload: String = row.get(16)?;
        Ok(TaskRow {
            id: row.get(0)?,
            kind: row.get(1)?,
            source_key: row.get(2)?,
            title: row.get(3)?,
            state: row.get(4)?,
            outcome: row.get(5)?,
            priority: row.get(6)?,
            attempt: row.get(7)?,
            max_attempts: row.get(8)?,
            run_at: row.get(9)?,
            leased_until: row.get(10)?,
            unmet_deps: row.get(11)?,
            blocked_by: row.get(12)?,
            last_error: row.get(13)?,
            error_class: row.get(14)?,
            target_id: row.get(15)?,
            payload: parse_json_column(16, &payload)?,
            created_at: row.get(17)?,
            updated_at: row.get(18)?,
        })
    }

    pub fn key(&self) -> TaskKey {
        TaskKey::new(self.kind.clone(), self.source_key.clone())
    }
}

fn parse_json_column(index: usize, text: &str) -> rusqlite::Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    #[error(
        "another portal-migrate process is working on {}; stop it first, or use `status`, which reads without the lock",
        path.display()
    )]
    Locked { path: PathBuf },

    #[error(
        "{} is not a portal-migrate state file ({reason}); it was left untouched: set state.path to a new file",
        path.display()
    )]
    NotAStateFile { path: PathBuf, reason: String },

    #[error(
        "{} was written by a newer portal-migrate (state file schema {found}, this binary knows up to {supported}); use a newer portal-migrate",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error(
        "{} uses state file schema {found} but this portal-migrate reads schema {supported}; run `portal-migrate run` once to upgrade it, or use the portal-migrate that wrote it",
        path.display()
    )]
    OlderSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error(
        "no state file at {}: nothing has run yet, or state.path points elsewhere",
        path.display()
    )]
    NotFound { path: PathBuf },

    /// `expected_*` is the pair recorded in the file, `found_*` the pair asked for.
    #[error(
        "this state file belongs to the migration {expected_source} → {expected_target} (asked for {found_source} → {found_target}); use another state.path for this pair"
    )]
    WrongPair {
        expected_source: String,
        expected_target: String,
        found_source: String,
        found_target: String,
    },

    #[error("no task {0} to depend on")]
    UnknownDependency(TaskKey),

    #[error("making {task} wait for {depends_on} would close a dependency cycle")]
    DependencyCycle { task: TaskKey, depends_on: TaskKey },

    #[error("cannot add a dependency to {task}: it is already {state}")]
    TaskAlreadyStarted { task: TaskKey, state: TaskState },

    #[error("there is no task #{0}")]
    UnknownTask(TaskId),

    /// The pool reported an outcome for a task it does not hold (released, recovered, or
    /// reported twice): a bug in the caller, refused so the queue stays consistent.
    #[error("task #{task} is {state}, not running; its outcome was not recorded")]
    NotRunning { task: TaskId, state: TaskState },

    #[error("cannot keep the state file in {}: {reason}; create the directory or make it writable, or set state.path to a writable place", path.display())]
    NotWritable { path: PathBuf, reason: String },

    #[error(
        "the disk holding {} is full; free some space and run again (the last change was rolled back, nothing is lost)",
        path.display()
    )]
    DiskFull { path: PathBuf },

    #[error(
        "the state file {} stayed busy longer than the busy timeout (another reader or writer holds it)",
        path.display()
    )]
    Busy { path: PathBuf },

    #[error("task #{task} has a payload that is not valid JSON: {source}")]
    CorruptPayload {
        task: TaskId,
        source: serde_json::Error,
    },

    #[error("state file: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// The blocking thread running a store call died (a panic); the call's transaction rolled back.
    #[error("state file access was interrupted: {0}")]
    Background(String),

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            StoreError::Busy { .. } => ErrorClass::Transient,
            StoreError::Sqlite(e) if is_busy(e) => ErrorClass::Transient,
            // Everything else is either a broken state file, a wrong setup, or a bug in the
            // caller: retrying the same write gives the same answer, and the run must stop
            // rather than carry on without a durable record.
            _ => ErrorClass::Fatal,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Milliseconds since the Unix epoch by the system clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        // A clock before 1970 is broken; treating it as the epoch keeps everything due.
        .unwrap_or(0)
}

/// An open state file. Owns its SQLite connection, so it is `Send` but not `Sync`: the engine
/// shares it behind a mutex.
pub struct Store {
    // Declared before `_lock` so that on drop the connection closes (checkpointing the WAL)
    // before the lock is released to the next process.
    conn: Connection,
    path: PathBuf,
    /// Held open for the Store's lifetime: the exclusive lock on `<path>.lock`. The OS drops
    /// it when the process dies, however it dies. `None` for read-only opens.
    _lock: Option<File>,
    /// The run recorded by [`Store::begin_run`], attached to events this Store records.
    current_run: Cell<Option<i64>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("read_only", &self._lock.is_none())
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the state file for a run: takes the exclusive lock, checks
    /// that the file is a portal-migrate state file this binary understands, and brings its
    /// schema up to date.
    pub fn open(path: &Path, options: &OpenOptions) -> Result<Store, StoreError> {
        let (conn, lock) = open::open_for_run(path, options)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            _lock: Some(lock),
            current_run: Cell::new(None),
        })
    }

    /// Opens an existing state file for reading only, without the lock, so `status` works
    /// while a run is in progress. Refuses a schema other than this binary's.
    pub fn open_readonly(path: &Path) -> Result<Store, StoreError> {
        let conn = open::open_readonly(path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            _lock: None,
            current_run: Cell::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` in a `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so
    /// a read followed by a write never fails half-way with SQLITE_BUSY.
    fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let run = || {
            let tx =
                Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate)?;
            let value = work(&tx)?;
            tx.commit()?;
            Ok(value)
        };
        run().map_err(|e| self.with_context(e))
    }

    /// Gives the SQLite errors a person can act on their own message, naming the file.
    fn with_context(&self, error: StoreError) -> StoreError {
        match &error {
            StoreError::Sqlite(e) if e.sqlite_error_code() == Some(ErrorCode::DiskFull) => {
                StoreError::DiskFull {
                    path: self.path.clone(),
                }
            }
            StoreError::Sqlite(e) if is_busy(e) => StoreError::Busy {
                path: self.path.clone(),
            },
            _ => error,
        }
    }

    fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        work(&self.conn).map_err(|e| self.with_context(e))
    }

    /// Records the portal pair on first use; afterwards refuses any other pair. URL and portal
    /// id are both compared: every Enterprise portal has the id 0123456789ABCDEF.
    pub fn bind_pair(
        &self,
        source: &PortalIdentity,
        target: &PortalIdentity,
    ) -> Result<(), StoreError> {
        self.write(|tx| match read_pair(tx)? {
            None => {
                tx.execute(
                    "INSERT INTO migration (id, source_url, source_portal_id, source_name, \
                         target_url, target_portal_id, target_name, created_at) \
                         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        source.url,
                        source.portal_id,
                        source.name,
                        target.url,
                        target.portal_id,
                        target.name,
                        now_ms()
                    ],
                )?;
                Ok(())
            }
            Some((recorded_source, recorded_target)) => {
                if same_portal(&recorded_source, source) && same_portal(&recorded_target, target) {
                    Ok(())
                } else {
                    Err(StoreError::WrongPair {
                        expected_source: describe_portal(&recorded_source),
                        expected_target: describe_portal(&recorded_target),
                        found_source: describe_portal(source),
                        found_target: describe_portal(target),
                    })
                }
            }
        })
    }

    /// The recorded (source, target) pair, if a run has bound one.
    pub fn pair(&self) -> Result<Option<(PortalIdentity, PortalIdentity)>, StoreError> {
        self.read(read_pair)
    }

    /// Records the start of an invocation; events recorded through this Store refer to it.
    pub fn begin_run(&self, command: &str) -> Result<i64, StoreError> {
        let id = self.write(|tx| {
            tx.execute(
                "INSERT INTO runs (command, started_at, pid) VALUES (?1, ?2, ?3)",
                params![command, now_ms(), std::process::id()],
            )?;
            Ok(tx.last_insert_rowid())
        })?;
        self.current_run.set(Some(id));
        Ok(id)
    }

    pub fn end_run(&self, run_id: i64, outcome: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE runs SET ended_at = ?1, outcome = ?2 WHERE id = ?3",
                params![now_ms(), outcome, run_id],
            )?;
            Ok(())
        })?;
        if self.current_run.get() == Some(run_id) {
            self.current_run.set(None);
        }
        Ok(())
    }

    /// Enqueues tasks that do not exist yet (by kind and source key) with their dependency
    /// edges, all in one transaction. Returns how many were new.
    pub fn enqueue(&self, tasks: &[NewTask]) -> Result<usize, StoreError> {
        self.write(|tx| queue::insert_tasks(tx, tasks, now_ms()))
    }

    /// Claims up to `limit` ready tasks (pending, no unmet dependencies, due at `now_ms`) in
    /// priority order, spending one attempt each.
    pub fn claim(
        &self,
        now_ms: i64,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedTask>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.write(|tx| queue::claim(tx, now_ms, limit, lease_ms))
    }

    /// Marks a running task done (or skipped) and commits everything it produced with it.
    pub fn complete(&self, task: TaskId, completion: &Completion) -> Result<(), StoreError> {
        let run = self.current_run.get();
        self.write(|tx| queue::complete(tx, task, completion, now_ms(), run))
    }

    /// Several completions in one transaction: one fsync for the lot.
    pub fn complete_many(&self, done: &[(TaskId, Completion)]) -> Result<(), StoreError> {
        let run = self.current_run.get();
        self.write(|tx| {
            let now = now_ms();
            for (task, completion) in done {
                queue::complete(tx, *task, completion, now, run)?;
            }
            Ok(())
        })
    }

    /// Group commit: writes the outcomes of several finished tasks and then claims up to
    /// `claim.limit` ready tasks, all in one transaction, so one fsync covers the lot. Each
    /// outcome is applied inside its own savepoint: a refused outcome (say, a task that is no
    /// longer running) rolls back only its own writes and is reported in its slot of
    /// [`Recorded::outcomes`], while the others commit. Every outcome stays all-or-nothing
    /// with its id map rows, spawned tasks and facts, exactly as with [`Store::complete`].
    /// The claim runs after the outcomes, so it already sees the tasks they made ready.
    pub fn record_and_claim(
        &self,
        outcomes: &[(TaskId, TaskOutcome)],
        claim: Option<ClaimRequest>,
    ) -> Result<Recorded, StoreError> {
        let run = self.current_run.get();
        self.write(|tx| {
            let now = now_ms();
            let mut results = Vec::with_capacity(outcomes.len());
            for (task, outcome) in outcomes {
                tx.execute_batch("SAVEPOINT outcome")?;
                let applied = match outcome {
                    TaskOutcome::Complete(completion) => {
                        queue::complete(tx, *task, completion, now, run).map(|()| 0)
                    }
                    TaskOutcome::RetryLater {
                        run_at_ms,
                        error,
                        class,
                    } => queue::retry_later(tx, *task, *run_at_ms, error, class, now, run)
                        .map(|()| 0),
                    TaskOutcome::Snooze { run_at_ms, reason } => {
                        queue::snooze(tx, *task, *run_at_ms, reason, now, run).map(|()| 0)
                    }
                    TaskOutcome::Fail { error, class } => {
                        queue::fail(tx, *task, error, class, now, run)
                    }
                };
                if applied.is_err() {
                    tx.execute_batch("ROLLBACK TO outcome")?;
                }
                tx.execute_batch("RELEASE outcome")?;
                results.push(applied.map_err(|e| self.with_context(e)));
            }
            let claimed = match claim {
                Some(request) if request.limit > 0 => {
                    queue::claim(tx, request.now_ms, request.limit, request.lease_ms)?
                }
                _ => Vec::new(),
            };
            Ok(Recorded {
                outcomes: results,
                claimed,
            })
        })
    }

    /// A transient failure: back to pending until `run_at_ms`, keeping the spent attempt.
    pub fn retry_later(
        &self,
        task: TaskId,
        run_at_ms: i64,
        error: &str,
        class: &str,
    ) -> Result<(), StoreError> {
        let run = self.current_run.get();
        self.write(|tx| queue::retry_later(tx, task, run_at_ms, error, class, now_ms(), run))
    }

    /// A pause the task did not cause (Retry-After, a run-wide pause): back to pending until
    /// `run_at_ms` without spending the attempt.
    pub fn snooze(&self, task: TaskId, run_at_ms: i64, reason: &str) -> Result<(), StoreError> {
        let run = self.current_run.get();
        self.write(|tx| queue::snooze(tx, task, run_at_ms, reason, now_ms(), run))
    }

    /// Gives up on a running task; its dependents, transitively, become blocked. Returns how
    /// many tasks were blocked.
    pub fn fail(&self, task: TaskId, error: &str, class: &str) -> Result<u64, StoreError> {
        let run = self.current_run.get();
        self.write(|tx| queue::fail(tx, task, error, class, now_ms(), run))
    }

    /// Graceful shutdown: the given running tasks go back to pending, attempts not spent.
    /// Tasks that are no longer running are left alone.
    pub fn release(&self, tasks: &[TaskId]) -> Result<(), StoreError> {
        self.write(|tx| queue::release(tx, tasks, now_ms()))
    }

    /// At start, under the exclusive lock: tasks left running by a process that died go back
    /// to pending without spending the attempt. Returns how many.
    pub fn recover_abandoned(&self) -> Result<u64, StoreError> {
        let run = self.current_run.get();
        self.write(|tx| queue::recover_abandoned(tx, now_ms(), run))
    }

    /// Puts failed and blocked tasks back to pending with a fresh retry budget. Returns how many.
    pub fn retry_failed(&self) -> Result<u64, StoreError> {
        let run = self.current_run.get();
        self.write(|tx| queue::retry_failed(tx, now_ms(), run))
    }

    pub fn task_by_key(&self, key: &TaskKey) -> Result<Option<TaskRow>, StoreError> {
        self.read(|conn| {
            let sql =
                format!("SELECT {TASK_COLUMNS} FROM tasks WHERE kind = ?1 AND source_key = ?2");
            Ok(conn
                .prepare_cached(&sql)?
                .query_row(params![key.kind, key.source_key], TaskRow::from_row)
                .optional()?)
        })
    }

    pub fn task(&self, id: TaskId) -> Result<Option<TaskRow>, StoreError> {
        self.read(|conn| {
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1");
            Ok(conn
                .prepare_cached(&sql)?
                .query_row(params![id], TaskRow::from_row)
                .optional()?)
        })
    }

    /// All tasks of one kind, in enqueue order.
    pub fn tasks_of_kind(&self, kind: &str) -> Result<Vec<TaskRow>, StoreError> {
        self.read(|conn| {
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE kind = ?1 ORDER BY id");
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(params![kind], TaskRow::from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    pub fn target_id(&self, kind: &str, source_id: &str) -> Result<Option<String>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT target_id FROM id_map WHERE kind = ?1 AND source_id = ?2")?
                .query_row(params![kind, source_id], |row| row.get(0))
                .optional()?)
        })
    }

    /// The whole id map of one kind: source id → target id.
    pub fn id_map(&self, kind: &str) -> Result<HashMap<String, String>, StoreError> {
        self.read(|conn| {
            let mut statement =
                conn.prepare_cached("SELECT source_id, target_id FROM id_map WHERE kind = ?1")?;
            let rows = statement.query_map(params![kind], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(rows.collect::<Result<HashMap<_, _>, _>>()?)
        })
    }

    /// Facts of one kind, ordered by subject then object.
    pub fn facts(&self, kind: &str) -> Result<Vec<Fact>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT kind, subject, object, detail FROM facts WHERE kind = ?1 \
                 ORDER BY subject, object",
            )?;
            let rows = statement.query_map(params![kind], |row| {
                let detail: String = row.get(3)?;
                Ok(Fact {
                    kind: row.get(0)?,
                    subject: row.get(1)?,
                    object: row.get(2)?,
                    detail: parse_json_column(3, &detail)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// The `progress` view: task counts per kind and state.
    pub fn progress(&self) -> Result<Vec<ProgressRow>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached("SELECT kind, state, count FROM progress")?;
            let rows = statement.query_map([], |row| {
                Ok(ProgressRow {
                    kind: row.get(0)?,
                    state: row.get(1)?,
                    count: row.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// The `failures` view: failed tasks, then blocked ones.
    pub fn failures(&self) -> Result<Vec<FailureRow>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, kind, source_key, title, state, attempt, error_class, last_error, \
                 blocked_by, blocked_by_title FROM failures",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(FailureRow {
                    id: row.get(0)?,
                    kind: row.get(1)?,
                    source_key: row.get(2)?,
                    title: row.get(3)?,
                    state: row.get(4)?,
                    attempt: row.get(5)?,
                    error_class: row.get(6)?,
                    last_error: row.get(7)?,
                    blocked_by: row.get(8)?,
                    blocked_by_title: row.get(9)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Tasks still to do: pending (including those waiting on dependencies) plus running.
    pub fn outstanding(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT COUNT(*) FROM tasks WHERE state IN ('pending', 'running')")?
                .query_row([], |row| row.get(0))?)
        })
    }

    /// The earliest `run_at` among pending tasks whose dependencies are met: when the pool
    /// should look again if nothing is ready now.
    pub fn next_run_at(&self) -> Result<Option<i64>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(NEXT_RUN_AT)?
                .query_row([], |row| row.get(0))?)
        })
    }

    pub fn record_event(
        &self,
        run_id: Option<i64>,
        task: Option<TaskId>,
        level: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.write(|tx| queue::insert_event(tx, run_id, task, level, message, now_ms()))
    }

    /// Sets (`Some`) or clears (`None`) a control switch such as `paused`.
    pub fn set_control(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        self.write(|tx| {
            match value {
                Some(value) => tx.execute(
                    "INSERT INTO control (key, value) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                )?,
                None => tx.execute("DELETE FROM control WHERE key = ?1", params![key])?,
            };
            Ok(())
        })
    }

    pub fn control(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT value FROM control WHERE key = ?1")?
                .query_row(params![key], |row| row.get(0))
                .optional()?)
        })
    }

    /// SQLite's `PRAGMA integrity_check`: "ok" when the file is sound, else the problems found,
    /// one per line.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare("PRAGMA integrity_check")?;
            let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
            let lines = rows.collect::<Result<Vec<_>, _>>()?;
            Ok(lines.join("\n"))
        })
    }
}

fn read_pair(conn: &Connection) -> Result<Option<(PortalIdentity, PortalIdentity)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT source_url, source_portal_id, source_name, target_url, target_portal_id, \
             target_name FROM migration WHERE id = 1",
            [],
            |row| {
                Ok((
                    PortalIdentity {
                        url: row.get(0)?,
                        portal_id: row.get(1)?,
                        name: row.get(2)?,
                    },
                    PortalIdentity {
                        url: row.get(3)?,
                        portal_id: row.get(4)?,
                        name: row.get(5)?,
                    },
                ))
            },
        )
        .optional()?)
}

/// The same portal if the URLs match (ignoring case of scheme and host, a default port and a
/// trailing slash) and so do the portal ids. The name may change: portals get renamed.
fn same_portal(recorded: &PortalIdentity, asked: &PortalIdentity) -> bool {
    normalize_url(&recorded.url) == normalize_url(&asked.url)
        && recorded.portal_id.eq_ignore_ascii_case(&asked.portal_id)
}

fn normalize_url(text: &str) -> String {
    let normalized = match url::Url::parse(text.trim()) {
        Ok(parsed) => parsed.to_string(),
        Err(_) => text.trim().to_string(),
    };
    normalized.trim_end_matches('/').to_string()
}

fn describe_portal(portal: &PortalIdentity) -> String {
    format!("{} (portal id {})", portal.url, portal.portal_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(key: &str, depends_on: Option<&str>) -> NewTask {
        NewTask {
            kind: "item".into(),
            source_key: key.into(),
            title: format!("item {key}"),
            payload: serde_json::json!({}),
            depends_on: depends_on
                .map(|d| vec![TaskKey::new("item", d)])
                .unwrap_or_default(),
            priority: 100,
            max_attempts: 3,
        }
    }

    fn mapped(key: &str) -> TaskOutcome {
        TaskOutcome::Complete(Completion {
            outcome: "created".into(),
            target_id: Some(format!("t-{key}")),
            id_map: vec![("item".into(), key.into(), format!("t-{key}"))],
            ..Completion::default()
        })
    }

    #[test]
    fn group_commit_keeps_each_outcome_atomic_and_claims_what_it_made_ready() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("state.db"), &OpenOptions::default()).unwrap();
        store
            .enqueue(&[task("a", None), task("b", None), task("c", Some("a"))])
            .unwrap();
        let claim = |limit| {
            Some(ClaimRequest {
                now_ms: now_ms(),
                limit,
                lease_ms: 60_000,
            })
        };
        let first = store.record_and_claim(&[], claim(10)).unwrap();
        let ids: HashMap<String, TaskId> = first
            .claimed
            .iter()
            .map(|t| (t.source_key.clone(), t.id))
            .collect();
        assert_eq!(ids.len(), 2, "a and b are ready, c waits for a");

        // A bad completion (its spawned task depends on a task that does not exist) next to
        // a good one and a failure: the good one and the failure commit, the bad one leaves
        // no trace, and c, made ready by a, is claimed in the same transaction.
        let bad = TaskOutcome::Complete(Completion {
            id_map: vec![("item".into(), "b".into(), "t-b".into())],
            spawn: vec![task("d", Some("missing"))],
            ..Completion::default()
        });
        let second = store
            .record_and_claim(&[(ids["a"], mapped("a")), (ids["b"], bad)], claim(10))
            .unwrap();
        assert!(second.outcomes[0].is_ok());
        assert!(matches!(
            second.outcomes[1],
            Err(StoreError::UnknownDependency(_))
        ));
        assert_eq!(
            store.target_id("item", "a").unwrap().as_deref(),
            Some("t-a")
        );
        assert_eq!(
            store.target_id("item", "b").unwrap(),
            None,
            "rolled back with its task"
        );
        assert!(store
            .task_by_key(&TaskKey::new("item", "d"))
            .unwrap()
            .is_none());
        let b = store.task(ids["b"]).unwrap().unwrap();
        assert_eq!(b.state, TaskState::Running, "b's outcome was not written");
        let claimed: Vec<&str> = second
            .claimed
            .iter()
            .map(|t| t.source_key.as_str())
            .collect();
        assert_eq!(claimed, ["c"]);

        let third = store
            .record_and_claim(
                &[(
                    ids["b"],
                    TaskOutcome::Fail {
                        error: "gone".into(),
                        class: "permanent".into(),
                    },
                )],
                None,
            )
            .unwrap();
        assert!(third.outcomes[0].is_ok());
        assert!(third.claimed.is_empty());
        assert_eq!(
            store.task(ids["b"]).unwrap().unwrap().state,
            TaskState::Failed
        );
    }

    #[test]
    fn urls_differing_only_in_case_port_or_slash_are_the_same_portal() {
        let recorded = PortalIdentity {
            url: "https://Portal.Example.com:443/portal/".into(),
            portal_id: "0123456789ABCDEF".into(),
            name: "Old name".into(),
        };
        let asked = PortalIdentity {
            url: "https://portal.example.com/portal".into(),
            portal_id: "0123456789ABCDEF".into(),
            name: "New name".into(),
        };
        assert!(same_portal(&recorded, &asked));
        let other = PortalIdentity {
            url: "https://portal.example.com/gis".into(),
            ..asked.clone()
        };
        assert!(!same_portal(&recorded, &other));
    }

    #[test]
    fn busy_errors_are_transient_and_the_rest_fatal() {
        let busy = StoreError::Busy {
            path: PathBuf::from("state.db"),
        };
        assert_eq!(busy.class(), ErrorClass::Transient);
        let full = StoreError::DiskFull {
            path: PathBuf::from("state.db"),
        };
        assert_eq!(full.class(), ErrorClass::Fatal);
        assert_eq!(
            StoreError::Locked {
                path: PathBuf::from("state.db")
            }
            .class(),
            ErrorClass::Fatal
        );
    }
}
