//! The CLI commands other than `run`, as library functions returning values that `main`
//! prints, so tests call them in-process.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::clone::{self, TaskKind};
use crate::engine::{self, Context, RunError, StoreHandle};
use crate::settings::Settings;
use crate::store::{FailureRow, ProgressRow, Store, StoreError};
use crate::work::now_ms;

/// What `status` shows: progress per kind and state, and every failure with its error.
#[derive(Debug, Serialize)]
pub struct Status {
    pub state_file: String,
    pub source: Option<String>,
    pub target: Option<String>,
    pub progress: Vec<ProgressRow>,
    pub failures: Vec<FailureRow>,
    /// The pause switch is set (`portal-migrate pause`): a running daemon claims nothing.
    pub paused: bool,
    /// Set while a run is paused because a portal does not answer (see `work::health`).
    pub portal_down: Option<String>,
}

impl Status {
    pub fn count(&self, kind: &str, state: &str) -> u64 {
        self.progress
            .iter()
            .filter(|row| row.kind == kind && row.state == state)
            .map(|row| row.count)
            .sum()
    }

    pub fn total(&self, state: &str) -> u64 {
        self.progress
            .iter()
            .filter(|row| row.state == state)
            .map(|row| row.count)
            .sum()
    }
}

/// Reads the state file without taking the lock, so it works while `run` is working.
pub fn status(state_path: &Path) -> Result<Status, StoreError> {
    let store = Store::open_readonly(state_path)?;
    let pair = store.pair()?;
    Ok(Status {
        state_file: state_path.display().to_string(),
        source: pair
            .as_ref()
            .map(|(s, _)| format!("{} ({})", s.url, s.name)),
        target: pair
            .as_ref()
            .map(|(_, t)| format!("{} ({})", t.url, t.name)),
        progress: store.progress()?,
        failures: store.failures()?,
        paused: store.control(crate::work::PAUSED_KEY)?.is_some(),
        portal_down: store.control(crate::work::health::CONTROL_KEY)?,
    })
}

const STATES: [&str; 6] = ["pending", "running", "done", "skipped", "failed", "blocked"];

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "state file: {}", self.state_file)?;
        if let (Some(source), Some(target)) = (&self.source, &self.target) {
            writeln!(f, "migration:  {source} → {target}")?;
        }
        if self.paused {
            writeln!(
                f,
                "paused:     yes — no new tasks are claimed; `portal-migrate resume` continues"
            )?;
        }
        if let Some(notice) = &self.portal_down {
            writeln!(f, "PAUSED:     {notice}")?;
        }
        writeln!(f)?;
        write!(f, "{:<16}", "kind")?;
        for state in STATES {
            write!(f, "{state:>9}")?;
        }
        writeln!(f, "{:>9}", "total")?;
        let mut kinds: Vec<&str> = TaskKind::ALL.iter().map(|k| k.as_str()).collect();
        for row in &self.progress {
            if !kinds.contains(&row.kind.as_str()) {
                kinds.push(&row.kind);
            }
        }
        for kind in kinds {
            let total: u64 = STATES.iter().map(|s| self.count(kind, s)).sum();
            if total == 0 {
                continue;
            }
            write!(f, "{kind:<16}")?;
            for state in STATES {
                write!(f, "{:>9}", self.count(kind, state))?;
            }
            writeln!(f, "{total:>9}")?;
        }
        write!(f, "{:<16}", "all")?;
        let mut grand = 0;
        for state in STATES {
            grand += self.total(state);
            write!(f, "{:>9}", self.total(state))?;
        }
        writeln!(f, "{grand:>9}")?;
        if self.failures.is_empty() {
            writeln!(f, "\nno failures")?;
        } else {
            writeln!(f, "\n{} failed or blocked:", self.failures.len())?;
            for failure in &self.failures {
                writeln!(
                    f,
                    "  [{}] #{} {} (attempt {}{}): {}",
                    failure.state,
                    failure.id,
                    failure.title,
                    failure.attempt,
                    failure
                        .error_class
                        .as_deref()
                        .map(|c| format!(", {c}"))
                        .unwrap_or_default(),
                    failure.last_error.as_deref().unwrap_or("")
                )?;
            }
        }
        Ok(())
    }
}

/// `retry`: failed and blocked tasks go back to the queue with a fresh retry budget.
pub fn retry(settings: &Settings) -> Result<u64, StoreError> {
    let store = Store::open(&settings.state.path, &engine::store_options(settings))?;
    store.retry_failed()
}

/// What `plan` found: per kind, how many objects would be created, adopted or skipped.
#[derive(Debug, Default, Serialize)]
pub struct Plan {
    pub kinds: BTreeMap<String, PlanCounts>,
}

#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct PlanCounts {
    pub create: u64,
    pub adopt: u64,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<14}{:>10}{:>10}", "kind", "create", "adopt")?;
        for kind in TaskKind::ALL.iter().filter(|k| k.is_object()) {
            if let Some(counts) = self.kinds.get(kind.as_str()) {
                writeln!(
                    f,
                    "{:<14}{:>10}{:>10}",
                    kind.as_str(),
                    counts.create,
                    counts.adopt
                )?;
            }
        }
        writeln!(
            f,
            "\n(dry run: nothing was written to the target or to the state file)"
        )
    }
}

/// `plan`: discovers the source into a throwaway state file and looks each user, group and
/// folder up in the target. Writes nothing to the target nor to the real state file.
pub async fn plan(settings: Settings) -> Result<Plan, RunError> {
    let scratch = tempfile::tempdir().map_err(|e| {
        RunError::Fatal(format!(
            "cannot create a scratch directory for the dry run: {e}"
        ))
    })?;
    let mut settings = settings;
    settings.state.path = scratch.path().join("plan.db");
    let ctx = engine::connect(settings, "plan").await?;
    crate::plan::enqueue_discovery(&ctx).await?;
    loop {
        let claimed = ctx.store.call(|s| s.claim(now_ms(), 1, 60_000)).await?;
        let Some(task) = claimed.into_iter().next() else {
            break;
        };
        let is_discovery = TaskKind::parse(&task.kind).is_some_and(|k| !k.is_object());
        if !is_discovery {
            let id = task.id;
            ctx.store.call(move |s| s.release(&[id])).await?;
            break;
        }
        let completion = clone::execute(&ctx, &task)
            .await
            .map_err(|e| RunError::Fatal(format!("discovery failed: {e}")))?;
        let id = task.id;
        ctx.store.call(move |s| s.complete(id, &completion)).await?;
    }
    classify(&ctx).await
}

async fn classify(ctx: &Context) -> Result<Plan, RunError> {
    let mut plan = Plan::default();
    for kind in TaskKind::ALL.into_iter().filter(|k| k.is_object()) {
        let rows = ctx
            .store
            .call(move |s| s.tasks_of_kind(kind.as_str()))
            .await?;
        let counts = plan.kinds.entry(kind.as_str().to_string()).or_default();
        for row in rows {
            let exists = match kind {
                TaskKind::User => {
                    let name = clone::target_username(ctx, &row.source_key);
                    ctx.target.user(&name).await?.is_some()
                }
                TaskKind::Group => {
                    let title = row
                        .payload
                        .get("group")
                        .and_then(|g| clone::text(g, "title"))
                        .unwrap_or_default();
                    let query = format!("title:\"{}\"", title.replace('"', " "));
                    ctx.target.search_groups(&query).await?.iter().any(|g| {
                        clone::text(g, "title").is_some_and(|t| t.eq_ignore_ascii_case(&title))
                    })
                }
                _ => false,
            };
            if exists {
                counts.adopt += 1;
            } else {
                counts.create += 1;
            }
        }
    }
    Ok(plan)
}

/// Opens a state file for commands that change it (holding the lock).
pub fn open_store(settings: &Settings) -> Result<StoreHandle, StoreError> {
    Ok(StoreHandle::new(Store::open(
        &settings.state.path,
        &engine::store_options(settings),
    )?))
}
