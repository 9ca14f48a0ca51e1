//! The restart delay: exponential (×1.5 per unstable restart, PM2's curve) from a first
//! delay up to a cap. A run that lasted `min_uptime` is stable and resets the count, so
//! a service that crashes once a day restarts at once, while a crash loop slows down
//! and finally stops (`errored`) instead of spinning the CPU.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// Unstable restarts in a row.
    unstable: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, unstable: 0 }
    }

    /// Called when the process exits. Returns the delay before the next start, and
    /// counts the run as unstable when it was shorter than `min_uptime`.
    pub fn on_exit(&mut self, ran_for: Duration, min_uptime: Duration) -> Duration {
        if ran_for >= min_uptime {
            self.unstable = 0;
        } else {
            self.unstable += 1;
        }
        self.delay()
    }

    /// The delay for the current count: initial × 1.5^(unstable-1), capped.
    pub fn delay(&self) -> Duration {
        if self.unstable == 0 {
            return self.initial;
        }
        let factor = 1.5f64.powi(i32::try_from(self.unstable - 1).unwrap_or(i32::MAX).min(64));
        self.initial.mul_f64(factor).min(self.max)
    }

    pub fn unstable_restarts(&self) -> u32 {
        self.unstable
    }

    pub fn reset(&mut self) {
        self.unstable = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_half_and_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(300));
        let short = Duration::from_millis(10);
        let min = Duration::from_secs(1);
        assert_eq!(b.on_exit(short, min), Duration::from_millis(100));
        assert_eq!(b.on_exit(short, min), Duration::from_millis(150));
        assert_eq!(b.on_exit(short, min), Duration::from_millis(225));
        assert_eq!(b.on_exit(short, min), Duration::from_millis(300));
        assert_eq!(b.unstable_restarts(), 4);
        assert_eq!(b.on_exit(Duration::from_secs(2), min), Duration::from_millis(100));
        assert_eq!(b.unstable_restarts(), 0);
    }
}
