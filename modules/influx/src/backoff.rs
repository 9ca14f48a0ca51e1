//! Delays between failed writes: exponential from `initial`, capped at `max`, with
//! jitter so that several hosts that lost the same InfluxDB do not all come back at
//! the same instant. The jitter takes the upper half of the delay at random ("equal
//! jitter"): the wait never collapses to nothing while InfluxDB is down, yet hosts
//! spread out.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay after the `failures`-th failure in a row (1 = the first), before jitter.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }

    /// The delay to wait: between half the ceiling and the ceiling.
    pub fn delay(&self, failures: u32) -> Duration {
        let ceiling = self.ceiling(failures);
        let half = ceiling / 2;
        half + half.mul_f64(random_unit())
    }
}

/// A number in [0, 1). Jitter needs no quality randomness, only a different number
/// per call and per process: std's randomly keyed hasher gives that without a crate.
fn random_unit() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff { initial: Duration::from_millis(500), max: Duration::from_secs(5) };
        let ceilings: Vec<u64> = (1..=7).map(|n| b.ceiling(n).as_millis() as u64).collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(5), "no overflow after many failures");
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let b = Backoff { initial: Duration::from_millis(1000), max: Duration::from_secs(30) };
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(3)).collect();
        assert!(delays.iter().all(|d| (Duration::from_millis(2000)..=Duration::from_millis(4000)).contains(d)));
        let first = delays[0];
        assert!(delays.iter().any(|d| *d != first), "jittered delays differ");
    }
}
