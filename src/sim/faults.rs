//! Fault settings ([`Faults`]) and the engine that draws them per request: latency, a token
//! bucket rate limit, transient failures, token expiry and search-index lag.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// What goes wrong, and how often. Every field has a default meaning "no fault", so a JSON
/// body posted to `/__sim/faults` need only name what it changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every API request.
    pub latency_ms: u64,
    /// A uniform random extra delay in `0..jitter_ms`, on top of `latency_ms`.
    pub jitter_ms: u64,
    /// Ratio (0..=1) of API requests that are held `spike_ms` longer: occasional slow
    /// answers, as from a portal under load, rather than a uniform latency.
    pub spike_rate: f64,
    /// The extra delay of a latency spike.
    pub spike_ms: u64,
    /// Token bucket over all API requests; the excess gets HTTP 429 with `Retry-After`.
    pub rate_limit_rps: Option<f64>,
    /// Ratio (0..=1) of API requests that draw a transient failure.
    pub fail_rate: f64,
    /// How long a stalled response hangs before it gives up; `None` means 120 000 ms.
    pub stall_ms: Option<u64>,
    /// Caps the lifetime of every token, also of tokens issued before it was set.
    pub token_ttl_secs: Option<u64>,
    /// One-shot: invalidates every token issued so far. Reads back as `false` afterwards.
    pub expire_tokens_now: bool,
    /// Search endpoints see a created or updated object only this long after the write.
    pub search_lag_ms: u64,
    /// Items whose `/data` always answers a permanent error.
    pub broken_items: Vec<String>,
    /// Item types `addItem` refuses with a permanent error, as a portal without the
    /// matching capability does.
    pub refused_types: Vec<String>,
    /// Every API request is answered by a dropped connection: an unreachable portal.
    pub down: bool,
    /// Seeds the fault draws so that a test sees the same sequence every run.
    pub seed: Option<u64>,
}

pub const DEFAULT_STALL_MS: u64 = 120_000;

impl Faults {
    pub fn stall(&self) -> Duration {
        Duration::from_millis(self.stall_ms.unwrap_or(DEFAULT_STALL_MS))
    }
}

/// The kinds of transient failure, drawn uniformly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Http500,
    Http502,
    Http503,
    /// HTTP 200 carrying `{"error":{"code":500,...}}`.
    Body500,
    /// The connection closes without any response.
    Drop,
    /// The response hangs for `stall_ms`, then answers HTTP 504.
    Stall,
}

impl Failure {
    const ALL: [Failure; 6] = [
        Failure::Http500,
        Failure::Http502,
        Failure::Http503,
        Failure::Body500,
        Failure::Drop,
        Failure::Stall,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Http500 => "http500",
            Failure::Http502 => "http502",
            Failure::Http503 => "http503",
            Failure::Body500 => "error500",
            Failure::Drop => "drop",
            Failure::Stall => "stall",
        }
    }
}

/// A drawn failure, and whether a write request performs its write before failing: the
/// case where a client cannot know its write happened.
#[derive(Clone, Copy, Debug)]
pub struct Drawn {
    pub failure: Failure,
    pub write_first: bool,
}

/// Mutable fault machinery: the random source and the rate-limit bucket.
pub struct Engine {
    rng: StdRng,
    bucket_tokens: f64,
    bucket_refilled: Instant,
}

impl Engine {
    pub fn new(seed: Option<u64>) -> Engine {
        Engine {
            rng: seeded(seed),
            bucket_tokens: f64::NAN,
            bucket_refilled: Instant::now(),
        }
    }

    pub fn reseed(&mut self, seed: Option<u64>) {
        if seed.is_some() {
            self.rng = seeded(seed);
        }
        // A new rate starts with a full bucket.
        self.bucket_tokens = f64::NAN;
    }

    /// The delay to add to one request, and whether it includes a latency spike.
    pub fn extra_latency(&mut self, faults: &Faults) -> (Duration, bool) {
        let jitter = if faults.jitter_ms > 0 {
            self.rng.random_range(0..faults.jitter_ms)
        } else {
            0
        };
        // Drawn only when asked for, so seeded sequences without spikes stay as they were.
        let spiked = faults.spike_rate > 0.0 && self.rng.random::<f64>() < faults.spike_rate;
        let spike = if spiked { faults.spike_ms } else { 0 };
        (
            Duration::from_millis(faults.latency_ms + jitter + spike),
            spiked,
        )
    }

    /// Takes one token from the bucket, or says how many whole seconds until one is there.
    pub fn take_token(&mut self, faults: &Faults) -> Result<(), u64> {
        let Some(rps) = faults.rate_limit_rps.filter(|r| *r > 0.0) else {
            return Ok(());
        };
        let capacity = rps.max(1.0);
        let now = Instant::now();
        if self.bucket_tokens.is_nan() {
            self.bucket_tokens = capacity;
        } else {
            let elapsed = now.duration_since(self.bucket_refilled).as_secs_f64();
            self.bucket_tokens = (self.bucket_tokens + elapsed * rps).min(capacity);
        }
        self.bucket_refilled = now;
        if self.bucket_tokens >= 1.0 {
            self.bucket_tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.bucket_tokens) / rps;
            Err(wait.ceil().max(1.0) as u64)
        }
    }

    pub fn draw(&mut self, faults: &Faults, is_write: bool) -> Option<Drawn> {
        if faults.fail_rate <= 0.0 || self.rng.random::<f64>() >= faults.fail_rate {
            return None;
        }
        let failure = Failure::ALL[self.rng.random_range(0..Failure::ALL.len())];
        let write_first = is_write && self.rng.random_bool(0.5);
        Some(Drawn {
            failure,
            write_first,
        })
    }
}

fn seeded(seed: Option<u64>) -> StdRng {
    match seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_deserialize_from_a_partial_body() {
        let faults: Faults = serde_json::from_str(r#"{"fail_rate":0.5}"#).unwrap();
        assert_eq!(faults.fail_rate, 0.5);
        assert_eq!(faults.stall(), Duration::from_millis(DEFAULT_STALL_MS));
        assert!(!faults.down);
    }

    #[test]
    fn the_bucket_refuses_once_empty() {
        let faults = Faults {
            rate_limit_rps: Some(2.0),
            ..Faults::default()
        };
        let mut engine = Engine::new(Some(1));
        assert!(engine.take_token(&faults).is_ok());
        assert!(engine.take_token(&faults).is_ok());
        assert_eq!(engine.take_token(&faults), Err(1));
    }

    #[test]
    fn spikes_delay_about_the_asked_ratio_of_requests() {
        let faults = Faults {
            latency_ms: 1,
            spike_rate: 0.25,
            spike_ms: 2_000,
            ..Faults::default()
        };
        let mut engine = Engine::new(Some(9));
        let drawn: Vec<(Duration, bool)> =
            (0..1_000).map(|_| engine.extra_latency(&faults)).collect();
        let spikes = drawn.iter().filter(|(_, spiked)| *spiked).count();
        assert!(
            (200..300).contains(&spikes),
            "{spikes} spikes in 1000 requests at 25%"
        );
        for (delay, spiked) in drawn {
            let expected = if spiked { 2_001 } else { 1 };
            assert_eq!(delay, Duration::from_millis(expected));
        }
        let calm = Faults {
            latency_ms: 1,
            ..Faults::default()
        };
        assert_eq!(
            engine.extra_latency(&calm),
            (Duration::from_millis(1), false)
        );
    }

    #[test]
    fn a_certain_failure_always_draws() {
        let faults = Faults {
            fail_rate: 1.0,
            ..Faults::default()
        };
        let mut engine = Engine::new(Some(3));
        for _ in 0..50 {
            let drawn = engine.draw(&faults, false).unwrap();
            assert!(!drawn.write_first, "reads never write first");
        }
    }
}
