//! `/metrics` in the Prometheus text exposition format (version 0.0.4). Task counts come from
//! the state file at scrape time (they are the `progress` view, exactly); request, retry and
//! queue counters from this process (they reset when it restarts, as counters may).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::http::Snapshot;
use super::ServiceState;
use crate::commands::Status;
use crate::portal::Portal;
use crate::store::TaskState;
use crate::work::PoolStats;

const STATES: [TaskState; 6] = [
    TaskState::Pending,
    TaskState::Running,
    TaskState::Done,
    TaskState::Skipped,
    TaskState::Failed,
    TaskState::Blocked,
];

pub(super) fn render(state: &ServiceState, snapshot: &Snapshot) -> String {
    let mut out = Metrics::default();
    tasks(&mut out, &snapshot.status);

    let stats = &state.controls.stats;
    out.family(
        "portal_migrate_task_transitions_total",
        "counter",
        "Task transitions made by this process, by transition.",
    );
    for (transition, counter) in [
        ("claimed", &stats.claimed),
        ("done", &stats.completed),
        ("retry", &stats.retried),
        ("snoozed", &stats.snoozed),
        ("failed", &stats.failed),
        ("blocked", &stats.blocked),
        ("released", &stats.released),
    ] {
        out.sample(
            "portal_migrate_task_transitions_total",
            &[("transition", transition)],
            PoolStats::read(counter) as f64,
        );
    }
    out.single(
        "portal_migrate_task_retries_total",
        "counter",
        "Failed attempts put back for another try after a backoff (this process).",
        PoolStats::read(&stats.retried) as f64,
    );

    let wait = stats.queue_wait();
    out.family(
        "portal_migrate_queue_wait_seconds",
        "histogram",
        "Time from when a task was due (enqueued or its retry time) to when a worker claimed it; includes waiting for dependencies.",
    );
    for (bound, count) in &wait.cumulative {
        out.sample(
            "portal_migrate_queue_wait_seconds_bucket",
            &[("le", &format_number(*bound))],
            *count as f64,
        );
    }
    out.sample(
        "portal_migrate_queue_wait_seconds_bucket",
        &[("le", "+Inf")],
        wait.count as f64,
    );
    out.sample(
        "portal_migrate_queue_wait_seconds_sum",
        &[],
        wait.sum_seconds,
    );
    out.sample(
        "portal_migrate_queue_wait_seconds_count",
        &[],
        wait.count as f64,
    );

    portals(&mut out, &[&state.ctx.source, &state.ctx.target]);

    out.single(
        "portal_migrate_workers",
        "gauge",
        "Tasks worked on at once (changes on reload).",
        state.controls.workers() as f64,
    );
    out.single(
        "portal_migrate_paused",
        "gauge",
        "1 while the pause switch is set in the state file.",
        if snapshot.paused { 1.0 } else { 0.0 },
    );
    let sync = &snapshot.sync;
    out.single(
        "portal_migrate_sync_round",
        "gauge",
        "The sync round being worked on or last worked on (0 is the first migration).",
        sync.round as f64,
    );
    out.single(
        "portal_migrate_sync_rounds_completed",
        "gauge",
        "Sync rounds whose queue drained, the first migration included.",
        sync.completed_round.map_or(0.0, |round| (round + 1) as f64),
    );
    out.single(
        "portal_migrate_last_sync_timestamp_seconds",
        "gauge",
        "When the last sync round drained (Unix time); 0 before the first.",
        sync.completed_at.map_or(0.0, |ms| ms as f64 / 1000.0),
    );
    let next = state.next_sync_at.load(Ordering::Relaxed);
    out.single(
        "portal_migrate_next_sync_timestamp_seconds",
        "gauge",
        "When the next sync round starts (Unix time); 0 while a round runs or without sync.",
        if next > 0 { next as f64 / 1000.0 } else { 0.0 },
    );
    out.family(
        "portal_migrate_deleted_in_source",
        "gauge",
        "Objects a sync found deleted in the source, by kind.",
    );
    for kind in ["item", "user", "group"] {
        let count = snapshot
            .deleted
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(0, |(_, n)| *n);
        out.sample(
            "portal_migrate_deleted_in_source",
            &[("kind", kind)],
            count as f64,
        );
    }
    out.single(
        "portal_migrate_start_time_seconds",
        "gauge",
        "When this process started (Unix time).",
        state.started_at_ms as f64 / 1000.0,
    );
    out.text
}

fn tasks(out: &mut Metrics, status: &Status) {
    out.family(
        "portal_migrate_tasks",
        "gauge",
        "Tasks in the state file by kind and state (the progress view).",
    );
    let mut kinds: Vec<&str> = crate::clone::TaskKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    for row in &status.progress {
        if !kinds.contains(&row.kind.as_str()) {
            kinds.push(&row.kind);
        }
    }
    for kind in kinds {
        for task_state in STATES {
            out.sample(
                "portal_migrate_tasks",
                &[("kind", kind), ("state", task_state.as_str())],
                status.count(kind, task_state.as_str()) as f64,
            );
        }
    }
}

fn portals(out: &mut Metrics, portals: &[&Portal]) {
    let counters: Vec<_> = portals.iter().map(|p| (p.label(), p.counters())).collect();
    out.family(
        "portal_migrate_requests_total",
        "counter",
        "HTTP requests to each portal by outcome.",
    );
    for (portal, c) in &counters {
        for (outcome, value) in [
            ("ok", c.requests_ok),
            ("api_error", c.requests_api_error),
            ("http_error", c.requests_http_error),
            ("transport_error", c.requests_transport_error),
            ("rate_limited", c.requests_rate_limited),
        ] {
            out.sample(
                "portal_migrate_requests_total",
                &[("portal", portal), ("outcome", outcome)],
                value as f64,
            );
        }
    }
    out.family(
        "portal_migrate_rate_limit_wait_seconds_total",
        "counter",
        "Time requests spent waiting for our own per-portal rate limiter.",
    );
    for (portal, c) in &counters {
        out.sample(
            "portal_migrate_rate_limit_wait_seconds_total",
            &[("portal", portal)],
            c.rate_limit_wait_ms as f64 / 1000.0,
        );
    }
    out.family(
        "portal_migrate_transfer_bytes_total",
        "counter",
        "File bytes moved: downloaded from the source, uploaded to the target (bytes copied).",
    );
    for (portal, c) in &counters {
        for (direction, value) in [
            ("downloaded", c.bytes_downloaded),
            ("uploaded", c.bytes_uploaded),
        ] {
            out.sample(
                "portal_migrate_transfer_bytes_total",
                &[("portal", portal), ("direction", direction)],
                value as f64,
            );
        }
    }
    out.family(
        "portal_migrate_sign_ins_total",
        "counter",
        "Tokens obtained from each portal (the first sign-in included).",
    );
    for (portal, c) in &counters {
        out.sample(
            "portal_migrate_sign_ins_total",
            &[("portal", portal)],
            c.sign_ins as f64,
        );
    }
}

#[derive(Default)]
struct Metrics {
    text: String,
}

impl Metrics {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (index, (label, value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", format_number(value));
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Integers without a fraction, others as Rust prints them (which Prometheus parses).
fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_in_exposition_format() {
        let mut out = Metrics::default();
        out.single("x_total", "counter", "An x.", 3.0);
        out.sample("y", &[("kind", "a\"b"), ("le", "0.5")], 0.25);
        assert_eq!(
            out.text,
            "# HELP x_total An x.\n# TYPE x_total counter\nx_total 3\ny{kind=\"a\\\"b\",le=\"0.5\"} 0.25\n"
        );
    }
}
