//! Request counts by endpoint (route template) and outcome, as `GET /__sim/stats` shows them.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// `by_endpoint["content/items/{id}/data"]["ok"] == 12`. Outcomes: `ok`, `error:<code>`,
/// `fault:<kind>`, `rate_limited`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Stats {
    pub total: u64,
    pub by_endpoint: BTreeMap<String, BTreeMap<String, u64>>,
    /// Requests held back by a latency spike (`Faults::spike_rate`), whatever their outcome.
    pub latency_spikes: u64,
}

impl Stats {
    /// How many requests to `endpoint` ended with `outcome`.
    pub fn count(&self, endpoint: &str, outcome: &str) -> u64 {
        self.by_endpoint
            .get(endpoint)
            .and_then(|outcomes| outcomes.get(outcome))
            .copied()
            .unwrap_or(0)
    }

    /// How many requests, over all endpoints, ended with `outcome`.
    pub fn outcome_total(&self, outcome: &str) -> u64 {
        self.by_endpoint
            .values()
            .filter_map(|outcomes| outcomes.get(outcome))
            .sum()
    }
}

/// The live counters: flat and cheap to bump, turned into [`Stats`] on demand.
#[derive(Default)]
pub(crate) struct Counters {
    counts: HashMap<(&'static str, String), u64>,
    spikes: u64,
}

impl Counters {
    pub fn bump(&mut self, endpoint: &'static str, outcome: &str) {
        if let Some(count) = self.counts.get_mut(&(endpoint, outcome.to_owned())) {
            *count += 1;
        } else {
            self.counts.insert((endpoint, outcome.to_owned()), 1);
        }
    }

    pub fn spiked(&mut self) {
        self.spikes += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            latency_spikes: self.spikes,
            ..Stats::default()
        };
        for ((endpoint, outcome), count) in &self.counts {
            stats.total += count;
            stats
                .by_endpoint
                .entry((*endpoint).to_owned())
                .or_default()
                .insert(outcome.clone(), *count);
        }
        stats
    }
}
