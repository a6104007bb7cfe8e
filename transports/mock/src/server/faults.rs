//! Fault kinds and the seeded generator that draws them.

use std::fmt;
use std::time::Duration;

use super::config::FaultConfig;

/// A fault the server injects into one ingestion request, either drawn from the
/// [`FaultConfig`] rates or queued with
/// [`MockServer::push_fault`](super::MockServer::push_fault).
///
/// ```
/// use std::time::Duration;
/// use amplitude_mock::server::Fault;
///
/// assert!(Fault::Status(503).check().is_ok());
/// assert!(Fault::Status(200).check().is_err()); // not a failure status
/// let _ = Fault::Stall(Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (400–599) without ingesting anything.
    Status(u16),
    /// Ingest the request, then answer with this status (400–599) instead of 200.
    /// Applies only if the request would have been answered 200; otherwise the
    /// normal answer is sent and the fault is not counted.
    StatusAfterIngest(u16),
    /// Hang for this long without ingesting, then answer `504`.
    Stall(Duration),
    /// Read the request, then close the connection without any response.
    Drop,
}

impl Fault {
    /// Checks that the fault can be injected (statuses must be 400–599).
    pub fn check(&self) -> Result<(), InvalidFault> {
        match *self {
            Self::Status(s) | Self::StatusAfterIngest(s) if !(400..=599).contains(&s) => {
                Err(InvalidFault { status: s })
            }
            _ => Ok(()),
        }
    }
}

/// A [`Fault`] with a status outside 400–599.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidFault {
    /// The refused status.
    pub status: u16,
}

impl fmt::Display for InvalidFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault status {} is not in 400..=599", self.status)
    }
}

impl std::error::Error for InvalidFault {}

/// Statuses drawn for [`FaultConfig::fail_rate`].
const FAIL_STATUSES: [u16; 4] = [500, 502, 503, 504];

/// SplitMix64 finaliser: a well-mixed 64-bit value from any input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform value in `[0, 1)` for draw `k` of request `n`.
fn unit(seed: u64, n: u64, k: u64) -> f64 {
    let bits = mix(mix(seed ^ mix(n)).wrapping_add(k));
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// The random fault (if any) of ingestion request number `n` (0-based, in arrival order).
pub(crate) fn draw(config: &FaultConfig, n: u64) -> Option<Fault> {
    if !config.is_active() {
        return None;
    }
    let seed = config.seed;
    if unit(seed, n, 0) < config.drop_rate {
        return Some(Fault::Drop);
    }
    if unit(seed, n, 1) < config.stall_rate {
        return Some(Fault::Stall(config.stall));
    }
    if unit(seed, n, 2) < config.fail_rate {
        let pick = (unit(seed, n, 3) * FAIL_STATUSES.len() as f64) as usize;
        return Some(Fault::Status(
            FAIL_STATUSES[pick.min(FAIL_STATUSES.len() - 1)],
        ));
    }
    if unit(seed, n, 4) < config.fail_after_ingest_rate {
        return Some(Fault::StatusAfterIngest(500));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_deterministic_and_follow_the_rate() {
        let config = FaultConfig {
            seed: 11,
            fail_rate: 0.25,
            ..FaultConfig::default()
        };
        let a: Vec<_> = (0..4000).map(|n| draw(&config, n)).collect();
        let b: Vec<_> = (0..4000).map(|n| draw(&config, n)).collect();
        assert_eq!(a, b);
        let fails = a.iter().filter(|f| f.is_some()).count();
        assert!((800..1200).contains(&fails), "{fails}");
        for status in FAIL_STATUSES {
            assert!(
                a.contains(&Some(Fault::Status(status))),
                "{status} never drawn"
            );
        }
        let other = FaultConfig { seed: 12, ..config };
        let c: Vec<_> = (0..4000).map(|n| draw(&other, n)).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn rate_one_always_fires_and_zero_never() {
        let always = FaultConfig {
            drop_rate: 1.0,
            ..FaultConfig::default()
        };
        assert!((0..100).all(|n| draw(&always, n) == Some(Fault::Drop)));
        assert!((0..100).all(|n| draw(&FaultConfig::default(), n).is_none()));
    }
}
