//! The status page: one server-rendered HTML document with inline CSS and a meta refresh, no
//! scripts and no external assets, so it works from a locked-down browser or `curl`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, UNIX_EPOCH};

use super::http::Snapshot;
use super::ServiceState;
use crate::clone::TaskKind;
use crate::store::now_ms;

/// Seconds between reloads of the page.
const REFRESH_SECS: u32 = 5;

pub(super) fn render(state: &ServiceState, snapshot: &Snapshot) -> String {
    let status = &snapshot.status;
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>portal-migrate status</title>
<style>
body{{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}}
h1{{font-size:1.4em}} h2{{font-size:1.1em;margin-top:1.6em}}
table{{border-collapse:collapse;width:100%}} th,td{{text-align:left;padding:.25em .6em;border-bottom:1px solid #ddd}}
td.n{{text-align:right;font-variant-numeric:tabular-nums}}
.bar{{background:#eee;width:14em;height:.9em;border-radius:.2em;overflow:hidden}}
.bar span{{display:block;height:100%;background:#3a7}}
.banner{{padding:.6em 1em;border-radius:.3em;background:#eef5ff}}
.paused{{background:#fff3cd;font-weight:bold}} .bad{{color:#b00}} .muted{{color:#777}}
code{{font-size:.9em}}
</style></head><body>
<h1>portal-migrate</h1>
"#
    );

    let pending = status.total("pending") + status.total("running");
    let next_sync = state.next_sync_at.load(Ordering::Relaxed);
    let (class, text) = if snapshot.paused {
        (
            "banner paused",
            "Paused: no new tasks are claimed. Run <code>portal-migrate resume</code> to continue."
                .to_string(),
        )
    } else if pending > 0 {
        (
            "banner",
            format!("Working on sync round {}.", snapshot.sync.round),
        )
    } else if next_sync > 0 {
        (
            "banner",
            format!("Up to date. Next sync at {}.", when(next_sync)),
        )
    } else {
        ("banner", "Queue drained.".to_string())
    };
    let _ = writeln!(html, r#"<p id="state" class="{class}">{text}</p>"#);
    if let (Some(source), Some(target)) = (&status.source, &status.target) {
        let _ = writeln!(html, "<p>{} &rarr; {}</p>", escape(source), escape(target));
    }

    html.push_str("<h2>Progress</h2>\n<table id=\"progress\"><tr><th>kind</th><th>done</th><th></th><th>pending</th><th>running</th><th>skipped</th><th>failed</th><th>blocked</th></tr>\n");
    let mut kinds: Vec<&str> = TaskKind::ALL.iter().map(|k| k.as_str()).collect();
    for row in &status.progress {
        if !kinds.contains(&row.kind.as_str()) {
            kinds.push(&row.kind);
        }
    }
    for kind in kinds {
        let count = |state: &str| status.count(kind, state);
        let total: u64 = ["pending", "running", "done", "skipped", "failed", "blocked"]
            .iter()
            .map(|s| count(s))
            .sum();
        if total == 0 {
            continue;
        }
        let finished = count("done") + count("skipped");
        let percent = finished as f64 * 100.0 / total as f64;
        let failed_class = if count("failed") + count("blocked") > 0 {
            " bad"
        } else {
            ""
        };
        let _ = writeln!(
            html,
            r#"<tr data-kind="{kind}"><td>{kind}</td><td class="n done">{finished} of {total}</td><td><div class="bar" title="{percent:.0}%"><span style="width:{percent:.1}%"></span></div></td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n{failed_class}">{}</td><td class="n{failed_class}">{}</td></tr>"#,
            count("pending"),
            count("running"),
            count("skipped"),
            count("failed"),
            count("blocked"),
        );
    }
    html.push_str("</table>\n");

    let throughput = state.throughput();
    let eta = if pending == 0 {
        "nothing left to do".to_string()
    } else if throughput > 0.0 {
        format!(
            "about {} for {pending} tasks left",
            duration(Duration::from_secs_f64(pending as f64 / throughput))
        )
    } else {
        format!("{pending} tasks left; not enough progress yet to estimate")
    };
    let _ = writeln!(
        html,
        r#"<p id="throughput">Throughput: {throughput:.1} tasks/s this round. ETA: {eta}. Workers: {}.</p>"#,
        state.controls.workers()
    );

    html.push_str("<h2>Sync</h2>\n<p id=\"sync\">");
    match (snapshot.sync.completed_round, snapshot.sync.completed_at) {
        (Some(round), Some(at)) => {
            let _ = write!(html, "Last sync: round {round} finished at {}.", when(at));
        }
        _ => html.push_str("No sync round has finished yet."),
    }
    match state.sync_interval {
        Some(interval) => {
            let _ = write!(html, " Interval: {}.", duration(interval));
        }
        None => html.push_str(" Runs once (no sync interval)."),
    }
    if !snapshot.deleted.is_empty() {
        let listed: Vec<String> = snapshot
            .deleted
            .iter()
            .map(|(kind, n)| format!("{n} {kind}(s)"))
            .collect();
        let _ = write!(html, " Deleted in the source: {}.", listed.join(", "));
    }
    html.push_str("</p>\n");

    let _ = writeln!(
        html,
        "<h2>Failures</h2>\n<p id=\"failure-count\">{} failed or blocked.</p>",
        snapshot.failures_total
    );
    if !status.failures.is_empty() {
        html.push_str("<table id=\"failures\"><tr><th>#</th><th>state</th><th>kind</th><th>task</th><th>error</th></tr>\n");
        for failure in &status.failures {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"bad\">{}</td></tr>",
                failure.id,
                escape(&failure.state),
                escape(&failure.kind),
                escape(&failure.title),
                escape(failure.last_error.as_deref().unwrap_or(""))
            );
        }
        html.push_str("</table>\n");
        if snapshot.failures_total > status.failures.len() {
            let _ = writeln!(
                html,
                "<p class=\"muted\">The first {} shown; <code>portal-migrate status</code> lists them all.</p>",
                status.failures.len()
            );
        }
    }
    let _ = writeln!(
        html,
        "<p class=\"muted\">State file {}. Page generated {}; it reloads every {REFRESH_SECS} s.</p>\n</body></html>",
        escape(&status.state_file),
        when(now_ms())
    );
    html
}

fn when(epoch_ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(epoch_ms).unwrap_or(0));
    httpdate::fmt_http_date(at)
}

fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

/// Text made safe to put in HTML (element content or a quoted attribute).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_portal_cannot_become_markup() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(Duration::from_secs(42)), "42 s");
        assert_eq!(duration(Duration::from_secs(125)), "2 min 5 s");
        assert_eq!(duration(Duration::from_secs(7322)), "2 h 2 min");
    }
}
