-- portal-migrate state file, schema version 1.
--
-- One file holds one migration (one source portal -> one target portal). Everything a run
-- needs to resume after a crash lives here: the work queue, the dependencies between tasks,
-- the map from source ids to target ids, and what each run did.
--
-- Reading it while a run is in progress is safe:  sqlite3 -readonly state.db
--   SELECT * FROM progress;
--   SELECT * FROM failures;
--   SELECT * FROM id_map_view WHERE kind = 'item';
-- All times are INTEGER milliseconds since the Unix epoch; the views add ISO-8601 text columns.

-- Marks the file as a portal-migrate state file ("PMIG"), so that opening some other SQLite
-- database by mistake is refused instead of having tables added to it.
PRAGMA application_id = 1347242311;

-- The portal pair this file belongs to. Exactly one row, written by the first run; later runs
-- refuse to work against another pair (URL and portal id are compared: every Enterprise portal
-- has the same id, so the id alone does not tell portals apart).
CREATE TABLE migration (
    id               INTEGER PRIMARY KEY CHECK (id = 1), -- always 1: there is one pair per file
    source_url       TEXT    NOT NULL,                   -- sharing URL of the source portal
    source_portal_id TEXT    NOT NULL,                   -- id from the source's portals/self
    source_name      TEXT    NOT NULL,                   -- display name of the source portal
    target_url       TEXT    NOT NULL,                   -- sharing URL of the target portal
    target_portal_id TEXT    NOT NULL,                   -- id from the target's portals/self
    target_name      TEXT    NOT NULL,                   -- display name of the target portal
    created_at       INTEGER NOT NULL                    -- when the pair was first recorded
);

-- The work queue: one row per unit of work (discover a user, create a group, copy an item,
-- share it, ...). Rows are never deleted; finished and failed work stays as a record.
CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY,   -- task number, used in task_deps, id_map and events
    kind         TEXT    NOT NULL,      -- what the task does: 'user', 'group', 'item', 'share', ...
    source_key   TEXT    NOT NULL,      -- what it works on in the source (an id, or a composite key)
    title        TEXT    NOT NULL,      -- a label for people, e.g. item 'AR' (CSV) of brown.rogers
    state        TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'running', 'done', 'failed', 'blocked', 'skipped')),
                                        -- pending: waiting (for its time or its dependencies)
                                        -- running: claimed by a worker
                                        -- done / skipped: finished; dependents may proceed
                                        -- failed: gave up after its retry budget, see last_error
                                        -- blocked: depends on a failed task, see blocked_by
    outcome      TEXT,                  -- how it finished: created, adopted, updated, skipped, ...
    priority     INTEGER NOT NULL DEFAULT 100, -- lower runs first among ready tasks
    attempt      INTEGER NOT NULL DEFAULT 0,   -- attempts spent so far (a claim spends one)
    max_attempts INTEGER NOT NULL,             -- retry budget for transient failures
    run_at       INTEGER NOT NULL,             -- not claimed before this time (retry backoff)
    leased_until INTEGER,                      -- while running: when the claim expires
    unmet_deps   INTEGER NOT NULL DEFAULT 0,   -- dependencies not yet done or skipped
    blocked_by   INTEGER REFERENCES tasks (id),-- while blocked: the failed task it waits on
    last_error   TEXT,                         -- the most recent error, kept after success
    error_class  TEXT,                         -- class of last_error: transient/permanent/fatal
    target_id    TEXT,                         -- id of what it created or adopted in the target
    payload      TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(payload)),
                                               -- JSON the task needs (source properties, ...)
    created_at   INTEGER NOT NULL,             -- when it was enqueued
    updated_at   INTEGER NOT NULL,             -- when its row last changed
    UNIQUE (kind, source_key)                  -- planning twice enqueues nothing new
);

-- The claim query walks only ready rows in claim order, so claiming stays cheap however many
-- finished or waiting tasks the table holds.
CREATE INDEX tasks_ready ON tasks (priority, run_at, id) WHERE state = 'pending' AND unmet_deps = 0;
-- When the next ready task becomes due (the pool sleeps until then).
CREATE INDEX tasks_ready_run_at ON tasks (run_at) WHERE state = 'pending' AND unmet_deps = 0;
-- Progress counts, crash recovery (state = 'running') and the failures view.
CREATE INDEX tasks_state ON tasks (state, kind);

-- Dependencies: task_id may not start before depends_on is done or skipped.
CREATE TABLE task_deps (
    task_id    INTEGER NOT NULL REFERENCES tasks (id), -- the waiting task
    depends_on INTEGER NOT NULL REFERENCES tasks (id), -- the task it waits for
    PRIMARY KEY (task_id, depends_on)
) WITHOUT ROWID;
-- Finding the dependents of a task that just finished or failed.
CREATE INDEX task_deps_depends_on ON task_deps (depends_on);

-- What each source object became in the target. Written in the same transaction that marks
-- the task done: a finished task always has its rows here, and an unfinished one is run again
-- and first looks in the target for what an interrupted attempt may have created.
CREATE TABLE id_map (
    kind      TEXT    NOT NULL,                     -- 'user', 'group', 'folder', 'item', ...
    source_id TEXT    NOT NULL,                     -- id (or username) in the source portal
    target_id TEXT    NOT NULL,                     -- id (or username) in the target portal
    task_id   INTEGER REFERENCES tasks (id),        -- the task that recorded the mapping
    mapped_at INTEGER NOT NULL,                     -- when it was recorded
    PRIMARY KEY (kind, source_id)
);

-- Relations discovered by one task and needed by later ones (e.g. which groups an item is
-- shared with, which items a relationship joins), so later tasks do not ask the source again.
CREATE TABLE facts (
    kind       TEXT NOT NULL,                       -- the relation, e.g. 'shared_with'
    subject    TEXT NOT NULL,                       -- e.g. a source item id
    object     TEXT NOT NULL,                       -- e.g. a source group id
    detail     TEXT NOT NULL DEFAULT 'null' CHECK (json_valid(detail)), -- JSON with anything else
    task_id    INTEGER REFERENCES tasks (id),       -- the task that discovered it
    recorded_at INTEGER NOT NULL,                   -- when it was recorded
    PRIMARY KEY (kind, subject, object)
);

-- One row per invocation of portal-migrate that worked on this file.
CREATE TABLE runs (
    id         INTEGER PRIMARY KEY, -- run number
    command    TEXT    NOT NULL,    -- the command: 'run', 'retry', 'demo', ...
    started_at INTEGER NOT NULL,    -- when it started
    ended_at   INTEGER,             -- when it ended; NULL while running or if the process died
    outcome    TEXT,                -- how it ended, e.g. 'finished', 'interrupted', 'failed: ...'
    pid        INTEGER NOT NULL     -- operating-system process id, to tell runs apart in logs
);

-- A log of notable things: retries, failures, notes from tasks, crash recovery.
CREATE TABLE events (
    id      INTEGER PRIMARY KEY,            -- event number, in order of recording
    at      INTEGER NOT NULL,               -- when it happened
    run_id  INTEGER REFERENCES runs (id),   -- the run that recorded it, if any
    task_id INTEGER REFERENCES tasks (id),  -- the task it is about, if any
    level   TEXT    NOT NULL,               -- 'info', 'warn' or 'error'
    message TEXT    NOT NULL                -- what happened, for people
);
CREATE INDEX events_task ON events (task_id);

-- Switches a person or another command sets for a running daemon, e.g. key 'paused'.
CREATE TABLE control (
    key   TEXT PRIMARY KEY, -- the switch
    value TEXT NOT NULL     -- its value
);

-- How far the migration is: one row per kind and state present.
CREATE VIEW progress AS
SELECT kind, state, COUNT(*) AS count
FROM tasks
GROUP BY kind, state
ORDER BY kind, state;

-- What went wrong: failed tasks with their error, and blocked tasks with the failed task
-- they wait on.
CREATE VIEW failures AS
SELECT t.id,
       t.kind,
       t.source_key,
       t.title,
       t.state,
       t.attempt,
       t.error_class,
       t.last_error,
       t.blocked_by,
       b.title AS blocked_by_title,
       t.updated_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', t.updated_at / 1000.0, 'unixepoch') AS updated_at_iso
FROM tasks t
LEFT JOIN tasks b ON b.id = t.blocked_by
WHERE t.state IN ('failed', 'blocked')
ORDER BY t.state DESC, t.id;

-- The id map with the title of the task that recorded each row.
CREATE VIEW id_map_view AS
SELECT m.kind,
       m.source_id,
       m.target_id,
       t.title,
       t.outcome,
       m.task_id,
       m.mapped_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', m.mapped_at / 1000.0, 'unixepoch') AS mapped_at_iso
FROM id_map m
LEFT JOIN tasks t ON t.id = m.task_id
ORDER BY m.kind, m.source_id;

-- Every task with readable times, for ad-hoc queries.
CREATE VIEW tasks_view AS
SELECT id, kind, source_key, title, state, outcome, attempt, max_attempts, unmet_deps,
       strftime('%Y-%m-%dT%H:%M:%fZ', run_at / 1000.0, 'unixepoch') AS run_at_iso,
       last_error, error_class, target_id,
       strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch') AS created_at_iso,
       strftime('%Y-%m-%dT%H:%M:%fZ', updated_at / 1000.0, 'unixepoch') AS updated_at_iso
FROM tasks;

-- The event log with readable times and task titles.
CREATE VIEW event_log AS
SELECT e.id,
       strftime('%Y-%m-%dT%H:%M:%fZ', e.at / 1000.0, 'unixepoch') AS at_iso,
       e.at,
       e.run_id,
       e.task_id,
       t.title,
       e.level,
       e.message
FROM events e
LEFT JOIN tasks t ON t.id = e.task_id
ORDER BY e.id;

-- Runs with readable times.
CREATE VIEW run_history AS
SELECT id, command, pid, outcome,
       strftime('%Y-%m-%dT%H:%M:%fZ', started_at / 1000.0, 'unixepoch') AS started_at_iso,
       strftime('%Y-%m-%dT%H:%M:%fZ', ended_at / 1000.0, 'unixepoch') AS ended_at_iso,
       started_at, ended_at
FROM runs
ORDER BY id;
