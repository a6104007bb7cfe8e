//! Retry policy: a pure function from (attempt, server hint, random bits) to a decision.

use embassy_time::Duration;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Decision {
    /// Try again after this long.
    Retry(Duration),
    /// Stop: the events are dropped with [`crate::outcome::DropReason::RetriesExhausted`].
    GiveUp,
}

/// Decides whether and when to retry. Implementations must be pure: the same inputs give
/// the same decision, so policies are tested without time.
///
/// ```
/// use amplitude_core::retry::{Decision, ExponentialBackoff, RetryPolicy};
/// use embassy_time::Duration;
/// let p = ExponentialBackoff::default();
/// assert_eq!(p.decide(13, None, 0), Decision::GiveUp);
/// assert_eq!(p.decide(1, Some(Duration::from_secs(5)), 0), Decision::Retry(Duration::from_secs(5)));
/// ```
pub trait RetryPolicy {
    /// `attempt` counts failed attempts so far (1 after the first failure); `hint` is the
    /// server's `Retry-After`; `random` is uniformly random bits for jitter.
    fn decide(&self, attempt: u32, hint: Option<Duration>, random: u64) -> Decision;

    /// The shortest delay this policy ever returns (used to check "no hot loop").
    fn min_delay(&self) -> Duration;
}

/// Exponential backoff with full jitter: after failure `n`, wait a uniformly random time
/// in `[base, min(cap, base·2^(n-1))]`; a `Retry-After` hint is honoured up to
/// `max_retry_after` (never less than `base`); give up after `max_attempts` failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExponentialBackoff {
    /// Shortest wait (default 250 ms).
    pub base: Duration,
    /// Longest computed wait (default 30 s).
    pub cap: Duration,
    /// Failures after which to give up (default 12).
    pub max_attempts: u32,
    /// Longest `Retry-After` honoured (default 5 min).
    pub max_retry_after: Duration,
}

impl Default for ExponentialBackoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            max_attempts: 12,
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy for ExponentialBackoff {
    fn decide(&self, attempt: u32, hint: Option<Duration>, random: u64) -> Decision {
        if attempt > self.max_attempts {
            return Decision::GiveUp;
        }
        let base = self.base.as_ticks().max(1);
        if let Some(h) = hint {
            let t = h.as_ticks().min(self.max_retry_after.as_ticks()).max(base);
            return Decision::Retry(Duration::from_ticks(t));
        }
        let shift = attempt.saturating_sub(1).min(32);
        let ceiling = base
            .saturating_mul(1u64 << shift)
            .min(self.cap.as_ticks())
            .max(base);
        let span = ceiling - base;
        let jitter = if span == 0 { 0 } else { random % (span + 1) };
        Decision::Retry(Duration::from_ticks(base + jitter))
    }

    fn min_delay(&self) -> Duration {
        self.base
    }
}

impl<P: RetryPolicy + ?Sized> RetryPolicy for &P {
    fn decide(&self, attempt: u32, hint: Option<Duration>, random: u64) -> Decision {
        (**self).decide(attempt, hint, random)
    }
    fn min_delay(&self) -> Duration {
        (**self).min_delay()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_bounds_and_respect_cap() {
        let p = ExponentialBackoff::default();
        for attempt in 1..=12 {
            for r in [0u64, 1, u64::MAX / 3, u64::MAX] {
                let Decision::Retry(d) = p.decide(attempt, None, r) else {
                    panic!("gave up early")
                };
                assert!(d >= p.base && d <= p.cap, "attempt {attempt}: {d:?}");
                let ceiling = p.base.as_ticks() << (attempt - 1);
                assert!(d.as_ticks() <= ceiling.max(p.base.as_ticks()));
            }
        }
    }

    #[test]
    fn retry_after_is_capped_and_floored() {
        let p = ExponentialBackoff::default();
        assert_eq!(
            p.decide(1, Some(Duration::from_secs(3600)), 9),
            Decision::Retry(p.max_retry_after)
        );
        assert_eq!(
            p.decide(1, Some(Duration::from_ticks(0)), 9),
            Decision::Retry(p.base)
        );
    }
}
