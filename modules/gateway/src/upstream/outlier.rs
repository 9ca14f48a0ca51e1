//! Passive health of one instance: consecutive failed tries eject it for a time that
//! grows with each ejection (`base × times`, capped), and a success clears the count.
//! Atomics only: it is read on every pick.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use crate::settings::OutlierSettings;

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Milliseconds on the module's monotonic clock (never 0, so 0 means "not ejected").
pub fn now_ms() -> u64 {
    ms_at(Instant::now())
}

/// [`now_ms`] of an instant already read (a request reads the clock as few times as it
/// can).
pub fn ms_at(at: Instant) -> u64 {
    at.saturating_duration_since(*EPOCH).as_millis() as u64 + 1
}

#[derive(Debug, Default)]
pub struct Outlier {
    consecutive: AtomicU32,
    /// Until when (module clock ms) it sits out; 0: in rotation.
    ejected_until: AtomicU64,
    /// Ejections so far, forgiven after a success once the longest ejection has passed.
    times: AtomicU32,
    last_ejected: AtomicU64,
}

impl Outlier {
    pub fn is_ejected(&self, now: u64) -> bool {
        now < self.ejected_until.load(Ordering::Relaxed)
    }

    pub fn ejected_until(&self) -> u64 {
        self.ejected_until.load(Ordering::Relaxed)
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive.load(Ordering::Relaxed)
    }

    pub fn times_ejected(&self) -> u32 {
        self.times.load(Ordering::Relaxed)
    }

    pub fn success(&self, settings: &OutlierSettings, now: u64) {
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Relaxed);
        }
        let last = self.last_ejected.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) > settings.max_ejection_ms {
            self.times.store(0, Ordering::Relaxed);
            self.last_ejected.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a failure; true when this one ejected the instance (`may_eject` false
    /// when the upstream's ejection share is used up).
    pub fn failure(&self, settings: &OutlierSettings, now: u64, may_eject: bool) -> bool {
        let failures = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < settings.consecutive_failures || !may_eject || self.is_ejected(now) {
            return false;
        }
        let times = self.times.fetch_add(1, Ordering::Relaxed) as u64 + 1;
        let ejection = settings.base_ejection_ms.saturating_mul(times).min(settings.max_ejection_ms);
        self.ejected_until.store(now + ejection, Ordering::Relaxed);
        self.last_ejected.store(now, Ordering::Relaxed);
        self.consecutive.store(0, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OutlierSettings {
        OutlierSettings {
            consecutive_failures: 2,
            base_ejection_ms: 100,
            max_ejection_ms: 250,
            max_ejected_percent: 50,
        }
    }

    #[test]
    fn consecutive_failures_eject_for_a_growing_time() {
        let (s, o) = (settings(), Outlier::default());
        assert!(!o.failure(&s, 10, true));
        assert!(o.failure(&s, 10, true));
        assert!(o.is_ejected(109) && !o.is_ejected(110));
        o.failure(&s, 200, true);
        assert!(o.failure(&s, 200, true));
        assert_eq!(o.ejected_until(), 400, "second ejection lasts 2 × base");
        o.failure(&s, 500, true);
        o.failure(&s, 500, true);
        assert_eq!(o.ejected_until(), 750, "capped at max_ejection_ms");
    }

    #[test]
    fn a_success_clears_the_count_and_the_share_limit_holds_ejection_back() {
        let (s, o) = (settings(), Outlier::default());
        o.failure(&s, 1, true);
        o.success(&s, 2);
        assert!(!o.failure(&s, 3, true), "the count started again");
        assert!(!o.failure(&s, 4, false), "share used up: stays in");
        assert!(!o.is_ejected(5));
    }
}
