//! The retry schedule. Delays are stored in the task row (`run_at`) rather than slept on, so a
//! restart keeps them and a waiting task holds no worker.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::settings::RetrySettings;

/// Delay before attempt `attempt + 1`, after `attempt` failed attempts: exponential from
/// `initial_backoff`, capped at `max_backoff`, with jitter so that many tasks failing together
/// (a portal restart) do not come back together.
pub fn backoff(settings: &RetrySettings, attempt: u32) -> Duration {
    let n = attempt.max(1) as usize;
    ExponentialBuilder::default()
        .with_min_delay(settings.initial_backoff)
        .with_max_delay(settings.max_backoff)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(n)
        .build()
        .nth(n - 1)
        .unwrap_or(settings.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RetrySettings {
        RetrySettings {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            portal_down_pause: Duration::from_secs(30),
        }
    }

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let s = settings();
        let first = backoff(&s, 1);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
        let fourth = backoff(&s, 4);
        assert!(fourth >= Duration::from_millis(800), "{fourth:?}");
        for attempt in 1..40 {
            // jitter may add up to one more delay's worth on top of the cap
            assert!(backoff(&s, attempt) <= Duration::from_secs(10));
        }
    }
}
