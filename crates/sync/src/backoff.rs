//! Retry timing: exponential backoff with jitter, never sooner than the provider's
//! `Retry-After`, never later than the configured cap. Pure: the caller passes the random
//! draw, so the schedule is testable.

use std::time::Duration;

/// A retry schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// The part of each delay that is random (0.0 to 1.0): spreads retries of many rows.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(15 * 60),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay before try number `attempts + 1`; `draw` is uniform in `[0, 1)`.
    pub fn delay(&self, attempts: u32, retry_after: Option<Duration>, draw: f64) -> Duration {
        let exp = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempts.min(30)))
            .min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let jittered = exp.mul_f64(1.0 - jitter + jitter * draw.clamp(0.0, 1.0));
        match retry_after {
            // The provider's word wins over a shorter backoff; a longer one is capped.
            Some(hint) => jittered.max(hint.min(self.max)),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Backoff {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter: 0.5,
        }
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff {
            jitter: 0.0,
            ..policy()
        };
        let delays: Vec<u64> = (0..8).map(|n| b.delay(n, None, 0.3).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn jitter_stays_within_its_share() {
        let b = policy();
        assert_eq!(b.delay(2, None, 0.0), Duration::from_secs(2));
        assert!(b.delay(2, None, 0.999) < Duration::from_secs(4));
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let b = policy();
        assert_eq!(
            b.delay(0, Some(Duration::from_secs(30)), 0.0),
            Duration::from_secs(30)
        );
        assert_eq!(
            b.delay(0, Some(Duration::from_secs(3600)), 0.0),
            Duration::from_secs(60)
        );
    }
}
