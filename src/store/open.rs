//! Opening a state file: the lock, recognising our files (and refusing anything else without
//! touching it), connection settings, and schema migrations.

use std::fs::{File, TryLockError};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use super::{OpenOptions, StoreError, Synchronous};

/// Schema files, applied in order; the state file's `user_version` counts those applied.
/// Append new files here, never edit a released one.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/0001_initial.sql")];

/// The schema version this binary writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `PRAGMA application_id` of every portal-migrate state file ("PMIG"), set by the first
/// migration. Tells our files apart from other SQLite databases.
const APPLICATION_ID: i64 = 0x504D_4947;

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Where the exclusive lock lives: next to the state file, so it travels with it.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

pub fn open_for_run(path: &Path, options: &OpenOptions) -> Result<(Connection, File), StoreError> {
    check_directory(path)?;
    let lock = take_lock(path)?;
    check_header(path)?;

    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    // SQLite silently opens a file it may not write read-only; say so now, not at the first
    // task's completion.
    if conn.is_readonly("main")? {
        return Err(StoreError::NotWritable {
            path: path.to_path_buf(),
            reason: "the state file itself is read-only".into(),
        });
    }
    conn.busy_timeout(options.busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(64);

    // Identify before changing anything (the journal mode is written into the file header).
    let found = identify(&conn, path)?;
    match found.verdict() {
        Verdict::Empty | Verdict::Older | Verdict::Current => {}
        Verdict::Newer => {
            return Err(StoreError::NewerSchema {
                path: path.to_path_buf(),
                found: found.user_version,
                supported: SCHEMA_VERSION,
            })
        }
        Verdict::Foreign(reason) => {
            return Err(StoreError::NotAStateFile {
                path: path.to_path_buf(),
                reason,
            })
        }
    }

    // WAL lets `status` read while a run writes, and a commit costs one append.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NotWritable {
            path: path.to_path_buf(),
            reason: format!("SQLite could not switch the file to WAL mode (got {mode})"),
        });
    }
    let synchronous = match options.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;

    migrate(&conn)?;
    Ok((conn, lock))
}

pub fn open_readonly(path: &Path) -> Result<Connection, StoreError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() > 0 => {}
        Ok(meta) if meta.is_dir() => {
            return Err(StoreError::NotAStateFile {
                path: path.to_path_buf(),
                reason: "it is a directory".into(),
            })
        }
        Ok(_) => {
            return Err(StoreError::NotFound {
                path: path.to_path_buf(),
            })
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(StoreError::NotFound {
                path: path.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    }
    check_header(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    // A run commits often; a reader waits briefly rather than failing on a checkpoint.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let found = identify(&conn, path)?;
    match found.verdict() {
        Verdict::Current => Ok(conn),
        Verdict::Older => Err(StoreError::OlderSchema {
            path: path.to_path_buf(),
            found: found.user_version,
            supported: SCHEMA_VERSION,
        }),
        Verdict::Newer => Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: found.user_version,
            supported: SCHEMA_VERSION,
        }),
        Verdict::Empty => Err(StoreError::NotFound {
            path: path.to_path_buf(),
        }),
        Verdict::Foreign(reason) => Err(StoreError::NotAStateFile {
            path: path.to_path_buf(),
            reason,
        }),
    }
}

fn check_directory(path: &Path) -> Result<(), StoreError> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match std::fs::metadata(directory) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(StoreError::NotWritable {
            path: directory.to_path_buf(),
            reason: "it is not a directory".into(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(StoreError::NotWritable {
            path: directory.to_path_buf(),
            reason: "the directory does not exist".into(),
        }),
        Err(e) => Err(StoreError::NotWritable {
            path: directory.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

fn take_lock(path: &Path) -> Result<File, StoreError> {
    let lock_path = lock_path(path);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        // Whatever the reason (permissions, a read-only or pseudo file system such as /proc,
        // a vanished directory), the fix is the same: put the state file somewhere writable.
        .map_err(|e| StoreError::NotWritable {
            path: lock_path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            reason: format!("cannot create the lock file {}: {e}", lock_path.display()),
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.to_path_buf(),
        }),
        Err(TryLockError::Error(source)) => Err(StoreError::Io {
            path: lock_path,
            source,
        }),
    }
}

/// Looks at the file's first bytes without SQLite, so that a file that is not a database is
/// refused before SQLite could touch it. A missing or empty file passes: it is a new one.
fn check_header(path: &Path) -> Result<(), StoreError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let meta = file.metadata().map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return Err(StoreError::NotAStateFile {
            path: path.to_path_buf(),
            reason: "it is a directory".into(),
        });
    }
    if meta.len() == 0 {
        return Ok(());
    }
    let mut header = [0u8; 16];
    let not_sqlite = || StoreError::NotAStateFile {
        path: path.to_path_buf(),
        reason: "it is not an SQLite database".into(),
    };
    match file.read_exact(&mut header) {
        Ok(()) if &header == SQLITE_HEADER => Ok(()),
        Ok(()) => Err(not_sqlite()),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Err(not_sqlite()),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn open_error(path: &Path, error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::NotAStateFile {
            path: path.to_path_buf(),
            reason: error.to_string(),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
            StoreError::NotWritable {
                path: path.to_path_buf(),
                reason: error.to_string(),
            }
        }
        _ => StoreError::Sqlite(error),
    }
}

/// What the file says about itself.
struct Identity {
    application_id: i64,
    user_version: i64,
    /// Tables, indexes and views in the file.
    objects: i64,
}

enum Verdict {
    /// A new, empty database: ours to initialise.
    Empty,
    /// Ours, at an older schema: migrations bring it up to date.
    Older,
    Current,
    /// Ours, from a newer portal-migrate.
    Newer,
    /// Some other database; the reason says why we think so.
    Foreign(String),
}

impl Identity {
    fn verdict(&self) -> Verdict {
        if self.application_id == APPLICATION_ID {
            match self.user_version {
                v if v > SCHEMA_VERSION => Verdict::Newer,
                v if v == SCHEMA_VERSION => Verdict::Current,
                _ => Verdict::Older,
            }
        } else if self.application_id == 0 && self.user_version == 0 && self.objects == 0 {
            Verdict::Empty
        } else if self.application_id == 0 {
            Verdict::Foreign("it is an SQLite database holding other tables".into())
        } else {
            Verdict::Foreign(format!(
                "it is an SQLite database of another application (application_id {})",
                self.application_id
            ))
        }
    }
}

fn identify(conn: &Connection, path: &Path) -> Result<Identity, StoreError> {
    let read = || -> rusqlite::Result<Identity> {
        Ok(Identity {
            application_id: conn.query_row("PRAGMA application_id", [], |row| row.get(0))?,
            user_version: conn.query_row("PRAGMA user_version", [], |row| row.get(0))?,
            objects: conn.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |row| row.get(0))?,
        })
    };
    read().map_err(|e| open_error(path, e))
}

/// Applies the schema files the file has not seen, in one transaction, and records the new
/// version with them: a crash mid-migration leaves the file as it was.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    // Read again under the write lock: the version read before is only a hint.
    let current: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current >= SCHEMA_VERSION {
        return Ok(());
    }
    let already_applied = usize::try_from(current).unwrap_or(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(already_applied) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}
