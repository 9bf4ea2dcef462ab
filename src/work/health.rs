//! Portal health: telling "this task failed" from "the portal is gone".
//!
//! When several task attempts in a row fail because a portal does not answer at all
//! (connection refused or dropped, timeouts) with no success in between, the portal is
//! declared down: the pool stops claiming, tasks that hit the outage are snoozed without
//! spending an attempt, the state file's `control` table holds a `portal_down` row that
//! `status` shows, and the portal is probed every `retry.portal_down_pause` until it answers.
//! A run-wide pause, instead of every queued task burning its retry budget on the outage.

use std::time::{Duration, Instant};

use crate::clone::TaskError;
use crate::engine::Context;
use crate::portal::{Portal, PortalError};
use crate::store::now_ms;

/// Unanswered task attempts in a row, without a success in between, that make a portal down.
pub const DOWN_AFTER: u32 = 5;

/// The `control` key `status` reads.
pub const CONTROL_KEY: &str = "portal_down";

/// Which of the two portals an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

impl Side {
    fn portal(self, ctx: &Context) -> &Portal {
        match self {
            Side::Source => &ctx.source,
            Side::Target => &ctx.target,
        }
    }
}

/// The portal a failure is about, when the failure means "it did not answer at all".
pub fn unanswered(ctx: &Context, error: &TaskError) -> Option<Side> {
    let TaskError::Portal(error) = error else {
        return None;
    };
    let portal = match error.as_ref() {
        PortalError::Transport { portal, .. } | PortalError::Timeout { portal, .. } => portal,
        _ => return None,
    };
    // `portal` reads "<label> portal <url>" (see portal::http).
    if portal.starts_with(&format!("{} ", ctx.source.label())) {
        Some(Side::Source)
    } else if portal.starts_with(&format!("{} ", ctx.target.label())) {
        Some(Side::Target)
    } else {
        None
    }
}

/// A portal found down, and when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub side: Side,
    pub description: String,
    pub since_ms: i64,
    pub probe_at: Instant,
}

/// What the pool knows about the portals' health, shared by the loop and the tasks
/// recording their outcomes (behind a mutex: every call is short and never awaits).
#[derive(Debug, Default)]
pub struct Health {
    unanswered_in_a_row: u32,
    outage: Option<Outage>,
}

/// What a failure means for its task.
#[derive(Debug)]
pub enum Verdict {
    /// An ordinary failure: the task's own retry budget applies.
    Ordinary,
    /// The portal is down: snooze the task until the outage is over, no attempt spent.
    Outage,
    /// This failure made the portal down: snooze the task, and announce the outage.
    WentDown(Outage),
}

impl Health {
    pub fn is_down(&self) -> bool {
        self.outage.is_some()
    }

    pub fn succeeded(&mut self) {
        self.unanswered_in_a_row = 0;
    }

    /// Counts a failure; `side` is the portal that did not answer, if that is what happened.
    /// Other failures neither break nor extend a run of unanswered attempts.
    pub fn failed(&mut self, side: Option<Side>, ctx: &Context, pause: Duration) -> Verdict {
        let Some(side) = side else {
            return Verdict::Ordinary;
        };
        if self.outage.is_some() {
            return Verdict::Outage;
        }
        self.unanswered_in_a_row += 1;
        if self.unanswered_in_a_row < DOWN_AFTER {
            return Verdict::Ordinary;
        }
        let portal = side.portal(ctx);
        let outage = Outage {
            side,
            description: format!("the {} portal {}", portal.label(), portal.url()),
            since_ms: now_ms(),
            probe_at: Instant::now() + pause,
        };
        self.outage = Some(outage.clone());
        Verdict::WentDown(outage)
    }

    /// The portal to probe now, if one is down and its probe is due.
    pub fn due_probe(&self, now: Instant) -> Option<Side> {
        self.outage
            .as_ref()
            .filter(|outage| now >= outage.probe_at)
            .map(|outage| outage.side)
    }

    pub fn next_probe(&self) -> Option<Instant> {
        self.outage.as_ref().map(|outage| outage.probe_at)
    }

    /// The probe got an answer: the outage is over.
    pub fn recovered(&mut self) -> Option<Outage> {
        self.unanswered_in_a_row = 0;
        self.outage.take()
    }

    /// The probe got no answer: look again after `pause`.
    pub fn still_down(&mut self, pause: Duration) {
        if let Some(outage) = self.outage.as_mut() {
            outage.probe_at = Instant::now() + pause;
        }
    }
}

/// One plain request to the portal's `portals/self` (the read retries would only delay the
/// answer).
pub async fn answers(ctx: &Context, side: Side) -> Result<(), PortalError> {
    let portal = side.portal(ctx).clone().with_read_attempts(1);
    portal.get("portals/self", &[]).await.map(|_| ())
}

/// The `control` row's value: who is down since when, for `status`.
pub fn control_value(outage: &Outage, pause: Duration) -> String {
    format!(
        "{} has not answered since {} (epoch ms {}); work is paused and the portal is asked again every {} s",
        outage.description,
        readable_time(outage.since_ms),
        outage.since_ms,
        pause.as_secs()
    )
}

fn readable_time(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    httpdate::fmt_http_date(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(readable_time(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            readable_time(1_718_100_000_000),
            "Tue, 11 Jun 2024 10:00:00 GMT"
        );
    }
}
