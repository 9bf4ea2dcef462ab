//! `portal-migrate report`: what a migration did, read from its state file (without the
//! lock, so it works during a run): per kind, how many objects were created, adopted,
//! updated, skipped, deleted, failed or are still to do, with retries and the time spent;
//! each run with its duration; references left pointing at the source; failures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::clone::TaskKind;
use crate::store::{EventRow, FailureRow, RunRow, Store, StoreError, TaskState};

/// How item tasks word the note about references they could not map (`clone::item`).
pub const UNMAPPED_PREFIX: &str = "references not migrated";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Markdown,
    Json,
    Html,
}

impl ReportFormat {
    pub fn parse(text: &str) -> Option<ReportFormat> {
        match text.trim().to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(ReportFormat::Markdown),
            "json" => Some(ReportFormat::Json),
            "html" => Some(ReportFormat::Html),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub state_file: String,
    pub source: Option<String>,
    pub target: Option<String>,
    /// Every kind with at least one task, in the order tasks run.
    pub kinds: Vec<KindReport>,
    pub runs: Vec<RunReport>,
    /// Sum of the runs' durations (a run still going counts up to now).
    pub total_run_ms: i64,
    pub unmapped_references: Vec<Unmapped>,
    pub failures: Vec<FailureRow>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct KindReport {
    pub kind: String,
    pub total: u64,
    pub created: u64,
    pub adopted: u64,
    pub updated: u64,
    pub skipped: u64,
    pub deleted: u64,
    /// Finished with another outcome (discovery, linking).
    pub other: u64,
    pub failed: u64,
    pub blocked: u64,
    /// Pending or running.
    pub unfinished: u64,
    /// Failed attempts retried after a backoff.
    pub retries: u64,
    /// Waits the portal asked for (Retry-After), which spend no attempt.
    pub waits: u64,
    /// From the first task of this kind being queued to the last one finishing.
    pub span_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub id: i64,
    pub command: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: i64,
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unmapped {
    pub task_id: Option<i64>,
    pub title: String,
    pub references: String,
}

/// Reads the report from the state file at `state_path`.
pub fn build(state_path: &Path) -> Result<Report, StoreError> {
    let store = Store::open_readonly(state_path)?;
    let pair = store.pair()?;
    let now = crate::store::now_ms();

    let mut kinds: Vec<String> = TaskKind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect();
    for row in store.progress()? {
        if !kinds.contains(&row.kind) {
            kinds.push(row.kind);
        }
    }
    let retries: BTreeMap<String, (u64, u64)> = store
        .retry_counts()?
        .into_iter()
        .map(|count| (count.kind, (count.retries, count.waits)))
        .collect();
    let mut kind_reports = Vec::new();
    for kind in kinds {
        let tasks = store.tasks_of_kind(&kind)?;
        if tasks.is_empty() {
            continue;
        }
        let mut report = KindReport {
            kind: kind.clone(),
            total: tasks.len() as u64,
            ..KindReport::default()
        };
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for task in &tasks {
            first = first.min(task.created_at);
            match task.state {
                TaskState::Done | TaskState::Skipped => {
                    last = last.max(task.updated_at);
                    match task.outcome.as_deref().unwrap_or("") {
                        "created" => report.created += 1,
                        "adopted" => report.adopted += 1,
                        "updated" => report.updated += 1,
                        "deleted" => report.deleted += 1,
                        _ if task.state == TaskState::Skipped => report.skipped += 1,
                        "skipped" => report.skipped += 1,
                        _ => report.other += 1,
                    }
                }
                TaskState::Failed => report.failed += 1,
                TaskState::Blocked => report.blocked += 1,
                TaskState::Pending | TaskState::Running => report.unfinished += 1,
            }
        }
        report.span_ms = if last >= first { last - first } else { 0 };
        if let Some((retried, waited)) = retries.get(&kind) {
            report.retries = *retried;
            report.waits = *waited;
        }
        kind_reports.push(report);
    }

    let runs: Vec<RunReport> = store
        .runs()?
        .into_iter()
        .map(|run: RunRow| RunReport {
            duration_ms: run
                .ended_at
                .unwrap_or(now)
                .saturating_sub(run.started_at)
                .max(0),
            id: run.id,
            command: run.command,
            started_at: run.started_at,
            ended_at: run.ended_at,
            outcome: run.outcome,
        })
        .collect();
    let total_run_ms = runs.iter().map(|r| r.duration_ms).sum();
    let unmapped = store
        .events_starting_with(UNMAPPED_PREFIX)?
        .into_iter()
        .map(|event: EventRow| Unmapped {
            task_id: event.task_id,
            title: event.task_title.unwrap_or_default(),
            references: event
                .message
                .split_once(": ")
                .map(|(_, list)| list.to_string())
                .unwrap_or(event.message),
        })
        .collect();
    Ok(Report {
        state_file: state_path.display().to_string(),
        source: pair
            .as_ref()
            .map(|(s, _)| format!("{} ({})", s.url, s.name)),
        target: pair
            .as_ref()
            .map(|(_, t)| format!("{} ({})", t.url, t.name)),
        kinds: kind_reports,
        runs,
        total_run_ms,
        unmapped_references: unmapped,
        failures: store.failures()?,
    })
}

impl Report {
    pub fn kind(&self, kind: &str) -> Option<&KindReport> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    pub fn render(&self, format: ReportFormat) -> Result<String, serde_json::Error> {
        Ok(match format {
            ReportFormat::Json => serde_json::to_string_pretty(self)? + "\n",
            ReportFormat::Markdown => self.markdown(),
            ReportFormat::Html => self.html(),
        })
    }

    fn rows(&self) -> Vec<[String; 13]> {
        self.kinds
            .iter()
            .map(|k| {
                [
                    k.kind.clone(),
                    k.total.to_string(),
                    k.created.to_string(),
                    k.adopted.to_string(),
                    k.updated.to_string(),
                    k.skipped.to_string(),
                    k.deleted.to_string(),
                    k.other.to_string(),
                    k.failed.to_string(),
                    k.blocked.to_string(),
                    k.unfinished.to_string(),
                    format!("{} / {}", k.retries, k.waits),
                    seconds(k.span_ms),
                ]
            })
            .collect()
    }

    fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# portal-migrate report\n");
        let _ = writeln!(out, "State file: `{}`  ", self.state_file);
        if let (Some(source), Some(target)) = (&self.source, &self.target) {
            let _ = writeln!(out, "Migration: {source} → {target}  ");
        }
        let _ = writeln!(
            out,
            "Time worked: {} over {} run(s)\n",
            seconds(self.total_run_ms),
            self.runs.len()
        );
        let _ = writeln!(out, "## By kind\n");
        let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(HEADERS.len()));
        for row in self.rows() {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        let _ = writeln!(out, "\n## Runs\n");
        let _ = writeln!(out, "| run | command | started | duration | outcome |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for run in &self.runs {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                run.id,
                run.command,
                timestamp(run.started_at),
                seconds(run.duration_ms),
                run.outcome.as_deref().unwrap_or("(running or killed)")
            );
        }
        let _ = writeln!(out, "\n## References not migrated\n");
        if self.unmapped_references.is_empty() {
            let _ = writeln!(
                out,
                "None: every reference between items points at the target."
            );
        }
        for unmapped in &self.unmapped_references {
            let _ = writeln!(out, "- {}: {}", unmapped.title, unmapped.references);
        }
        let _ = writeln!(out, "\n## Failures\n");
        if self.failures.is_empty() {
            let _ = writeln!(out, "None.");
        }
        for failure in &self.failures {
            let _ = writeln!(
                out,
                "- [{}] #{} {}: {}",
                failure.state,
                failure.id,
                failure.title,
                failure.last_error.as_deref().unwrap_or("")
            );
        }
        out
    }

    fn html(&self) -> String {
        use crate::service::escape;
        let mut out = String::from(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>portal-migrate report</title>\n\
             <style>body{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:80em;padding:0 1em}\
             table{border-collapse:collapse}th,td{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left}\
             td.n{text-align:right}</style></head><body>\n<h1>portal-migrate report</h1>\n",
        );
        let _ = writeln!(
            out,
            "<p>State file <code>{}</code></p>",
            escape(&self.state_file)
        );
        if let (Some(source), Some(target)) = (&self.source, &self.target) {
            let _ = writeln!(out, "<p>{} &rarr; {}</p>", escape(source), escape(target));
        }
        let _ = writeln!(
            out,
            "<p>Time worked: {} over {} run(s)</p>\n<h2>By kind</h2>\n<table id=\"kinds\"><tr>",
            seconds(self.total_run_ms),
            self.runs.len()
        );
        for header in HEADERS {
            let _ = write!(out, "<th>{header}</th>");
        }
        out.push_str("</tr>\n");
        for row in self.rows() {
            let _ = write!(out, "<tr data-kind=\"{}\">", escape(&row[0]));
            for (index, cell) in row.iter().enumerate() {
                let class = if index == 0 { "" } else { " class=\"n\"" };
                let _ = write!(out, "<td{class}>{}</td>", escape(cell));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n<h2>Runs</h2>\n<table><tr><th>run</th><th>command</th><th>started</th><th>duration</th><th>outcome</th></tr>\n");
        for run in &self.runs {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                run.id,
                escape(&run.command),
                timestamp(run.started_at),
                seconds(run.duration_ms),
                escape(run.outcome.as_deref().unwrap_or("(running or killed)"))
            );
        }
        out.push_str("</table>\n<h2>References not migrated</h2>\n<ul>\n");
        for unmapped in &self.unmapped_references {
            let _ = writeln!(
                out,
                "<li>{}: {}</li>",
                escape(&unmapped.title),
                escape(&unmapped.references)
            );
        }
        out.push_str("</ul>\n<h2>Failures</h2>\n<ul>\n");
        for failure in &self.failures {
            let _ = writeln!(
                out,
                "<li>[{}] #{} {}: {}</li>",
                escape(&failure.state),
                failure.id,
                escape(&failure.title),
                escape(failure.last_error.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</ul>\n</body></html>\n");
        out
    }
}

const HEADERS: [&str; 13] = [
    "kind",
    "total",
    "created",
    "adopted",
    "updated",
    "skipped",
    "deleted",
    "other done",
    "failed",
    "blocked",
    "to do",
    "retries / waits",
    "time",
];

fn seconds(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn timestamp(epoch_ms: i64) -> String {
    let at = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(epoch_ms).unwrap_or(0));
    httpdate::fmt_http_date(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        assert_eq!(ReportFormat::parse("md"), Some(ReportFormat::Markdown));
        assert_eq!(ReportFormat::parse("JSON"), Some(ReportFormat::Json));
        assert_eq!(ReportFormat::parse("html"), Some(ReportFormat::Html));
        assert_eq!(ReportFormat::parse("pdf"), None);
    }
}
