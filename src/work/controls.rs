//! What can change while the pool runs, and what it counts: the worker count (a config reload),
//! whether it is paused (the state file's `control` table, read by the pool), and counters of
//! task transitions for `/metrics`. Shared between the pool and the service through an `Arc`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// The `control` key that pauses claiming while set (`portal-migrate pause`).
pub const PAUSED_KEY: &str = "paused";

/// Upper bounds (seconds) of the queue-wait histogram buckets; `+Inf` is implied.
pub const QUEUE_WAIT_BUCKETS: [f64; 12] = [
    0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 21600.0,
];

#[derive(Debug)]
pub struct PoolControls {
    workers: AtomicUsize,
    paused: AtomicBool,
    pub stats: PoolStats,
}

impl PoolControls {
    pub fn new(workers: usize) -> PoolControls {
        PoolControls {
            workers: AtomicUsize::new(workers.max(1)),
            paused: AtomicBool::new(false),
            stats: PoolStats::default(),
        }
    }

    /// Tasks run at once; takes effect at the pool's next claim (running tasks are never
    /// interrupted by a smaller count, they just are not replaced).
    pub fn set_workers(&self, workers: usize) {
        self.workers.store(workers.max(1), Ordering::Relaxed);
    }

    pub fn workers(&self) -> usize {
        self.workers.load(Ordering::Relaxed).max(1)
    }

    /// Whether the pool last saw the `paused` switch set.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    pub(super) fn note_paused(&self, paused: bool) -> bool {
        self.paused.swap(paused, Ordering::Relaxed)
    }
}

/// Counts since the process started (Prometheus counters reset with the process).
#[derive(Debug, Default)]
pub struct PoolStats {
    pub claimed: AtomicU64,
    pub completed: AtomicU64,
    /// Failed attempts that will be tried again (backoff).
    pub retried: AtomicU64,
    /// Put back without spending an attempt because the portal asked us to wait.
    pub snoozed: AtomicU64,
    pub failed: AtomicU64,
    /// Tasks blocked by a failure.
    pub blocked: AtomicU64,
    /// Released unfinished at shutdown.
    pub released: AtomicU64,
    queue_wait_buckets: [AtomicU64; QUEUE_WAIT_BUCKETS.len()],
    queue_wait_count: AtomicU64,
    queue_wait_micros: AtomicU64,
}

/// A copy of the queue-wait histogram: cumulative bucket counts, as Prometheus wants them.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitHistogram {
    pub cumulative: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl PoolStats {
    pub fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    pub fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// How long a task was due before a worker took it.
    pub fn observe_queue_wait(&self, wait: Duration) {
        let seconds = wait.as_secs_f64();
        if let Some(index) = QUEUE_WAIT_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
        {
            self.queue_wait_buckets[index].fetch_add(1, Ordering::Relaxed);
        }
        self.queue_wait_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        self.queue_wait_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn queue_wait(&self) -> WaitHistogram {
        let mut running = 0;
        let cumulative = QUEUE_WAIT_BUCKETS
            .iter()
            .zip(&self.queue_wait_buckets)
            .map(|(bound, count)| {
                running += count.load(Ordering::Relaxed);
                (*bound, running)
            })
            .collect();
        WaitHistogram {
            cumulative,
            count: self.queue_wait_count.load(Ordering::Relaxed),
            sum_seconds: self.queue_wait_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_wait_buckets_are_cumulative_and_count_everything() {
        let stats = PoolStats::default();
        stats.observe_queue_wait(Duration::from_millis(1));
        stats.observe_queue_wait(Duration::from_millis(200));
        stats.observe_queue_wait(Duration::from_secs(100_000));
        let histogram = stats.queue_wait();
        assert_eq!(histogram.cumulative[0], (0.005, 1));
        assert_eq!(histogram.cumulative[3], (0.5, 2));
        // Beyond the last bound: only in +Inf, which is `count`.
        assert_eq!(histogram.cumulative.last().map(|b| b.1), Some(2));
        assert_eq!(histogram.count, 3);
        assert!((histogram.sum_seconds - 100_000.201).abs() < 1e-6);
    }

    #[test]
    fn worker_count_never_drops_to_zero() {
        let controls = PoolControls::new(4);
        controls.set_workers(0);
        assert_eq!(controls.workers(), 1);
        controls.set_workers(12);
        assert_eq!(controls.workers(), 12);
    }
}
