//! CPU usage as percentages. `/proc` only offers cumulative tick counters, so a
//! percentage needs two samples: busy ticks gained over all ticks gained between them.

use std::time::Duration;

use serde::Serialize;

use proc_stats::{CLK_TCK, CpuTimes};

/// Share of the interval the CPU(s) spent in each kind of work, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuUsage {
    /// Everything but idle and I/O wait.
    pub busy_percent: f64,
    pub user_percent: f64,
    pub system_percent: f64,
    pub iowait_percent: f64,
    /// Time a hypervisor gave to someone else: high values mean a starved VM.
    pub steal_percent: f64,
}

/// Usage between two samples; `None` when no tick elapsed (samples too close) or the
/// counters went backwards (a core that went offline and came back starts again at 0).
pub fn usage(before: &CpuTimes, after: &CpuTimes) -> Option<CpuUsage> {
    let total = after.total().checked_sub(before.total()).filter(|t| *t > 0)? as f64;
    let idle = after.idle_all().checked_sub(before.idle_all())? as f64;
    let delta = |a: u64, b: u64| a.saturating_sub(b) as f64;
    let pct = |ticks: f64| round2(ticks / total * 100.0);
    Some(CpuUsage {
        busy_percent: pct((total - idle).max(0.0)),
        user_percent: pct(delta(after.user + after.nice, before.user + before.nice)),
        system_percent: pct(delta(
            after.system + after.irq + after.softirq,
            before.system + before.irq + before.softirq,
        )),
        iowait_percent: pct(delta(after.iowait, before.iowait)),
        steal_percent: pct(delta(after.steal, before.steal)),
    })
}

/// A process's CPU use over `elapsed`, as `top` shows it: percent of ONE core, so a
/// process busy on two cores reads 200.
pub fn process_percent(ticks_before: u64, ticks_after: u64, elapsed: Duration) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return None;
    }
    let used = ticks_after.checked_sub(ticks_before)? as f64 / CLK_TCK as f64;
    Some(round2(used / secs * 100.0))
}

/// Two decimals: enough for a dashboard, and keeps the JSON readable.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(user: u64, system: u64, idle: u64, iowait: u64, steal: u64) -> CpuTimes {
        CpuTimes { user, system, idle, iowait, steal, ..CpuTimes::default() }
    }

    #[test]
    fn usage_between_two_samples() {
        let before = times(100, 50, 1000, 10, 0);
        // +30 user, +10 system, +50 idle, +10 iowait: 100 ticks, 40 busy.
        let after = times(130, 60, 1050, 20, 0);
        let u = usage(&before, &after).unwrap();
        assert_eq!(u.busy_percent, 40.0);
        assert_eq!(u.user_percent, 30.0);
        assert_eq!(u.system_percent, 10.0);
        assert_eq!(u.iowait_percent, 10.0);
        assert_eq!(u.steal_percent, 0.0);
    }

    #[test]
    fn usage_needs_ticks_to_elapse_and_counters_to_grow() {
        let t = times(1, 2, 3, 4, 5);
        assert_eq!(usage(&t, &t), None);
        assert_eq!(usage(&times(100, 100, 100, 0, 0), &times(1, 1, 1, 0, 0)), None);
    }

    #[test]
    fn a_fully_idle_and_a_fully_busy_interval() {
        assert_eq!(usage(&times(0, 0, 0, 0, 0), &times(0, 0, 300, 0, 0)).unwrap().busy_percent, 0.0);
        let busy = usage(&times(0, 0, 0, 0, 0), &times(200, 100, 0, 0, 33)).unwrap();
        assert_eq!(busy.busy_percent, 100.0);
        assert_eq!(busy.steal_percent, 9.91);
    }

    #[test]
    fn process_percent_is_of_one_core() {
        // 20 ticks = 0.2 s of CPU in 0.2 s: one full core.
        assert_eq!(process_percent(100, 120, Duration::from_millis(200)), Some(100.0));
        // Two cores' worth.
        assert_eq!(process_percent(0, 40, Duration::from_millis(200)), Some(200.0));
        assert_eq!(process_percent(5, 5, Duration::from_millis(200)), Some(0.0));
        assert_eq!(process_percent(5, 6, Duration::ZERO), None);
        // A recycled pid whose counter went down is not a negative percentage.
        assert_eq!(process_percent(50, 6, Duration::from_millis(200)), None);
    }
}
