//! When a run of failed writes is worth a log line: its first failure, then at gaps
//! that double from [`FIRST_GAP`] up to [`MAX_GAP`]. A host whose InfluxDB is absent
//! says so once and then stays quiet; every failure is still counted in the status
//! route and in the module's health. Decides only; the writer does the logging.

use std::time::Duration;

/// The gap after the first report of a run.
pub const FIRST_GAP: Duration = Duration::from_secs(5 * 60);
/// The longest gap between two reports of one run.
pub const MAX_GAP: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, Default)]
pub struct FailureReports {
    /// When the next failure may be reported (None: no run of failures yet).
    next_ms: Option<i64>,
    gap: Duration,
}

impl FailureReports {
    /// Whether the failure seen at `now_ms` should be logged; if so, the next report
    /// waits one gap longer than this one did.
    pub fn due(&mut self, now_ms: i64) -> bool {
        match self.next_ms {
            Some(next) if now_ms < next => false,
            Some(_) => {
                self.gap = (self.gap * 2).min(MAX_GAP);
                self.next_ms = Some(now_ms + self.gap.as_millis() as i64);
                true
            }
            None => {
                self.gap = FIRST_GAP;
                self.next_ms = Some(now_ms + self.gap.as_millis() as i64);
                true
            }
        }
    }

    /// The run of failures ended (a write went through): the next failure is a new run.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn first_failure_then_doubling_gaps_up_to_an_hour() {
        let mut r = FailureReports::default();
        // A failure every 10 s for three hours: which minutes get a log line.
        let reported: Vec<i64> = (0..3 * 60 * 6).map(|i| i * 10_000).filter(|&t| r.due(t)).map(|t| t / MIN).collect();
        assert_eq!(reported, [0, 5, 15, 35, 75, 135]);
    }

    #[test]
    fn a_success_starts_a_new_run() {
        let mut r = FailureReports::default();
        assert!(r.due(0));
        assert!(!r.due(1_000));
        r.reset();
        assert!(r.due(2_000), "the first failure after a recovery is reported");
    }
}
