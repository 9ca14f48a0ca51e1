//! When a task runs: the next run of a schedule (a cron expression with seconds, UTC;
//! a fixed interval; once after a delay), its kind and its description. Parsing and
//! checking a schedule from `tasks.*` is the config's (`config/schedule.rs`, which
//! defines [`Schedule`]). Pure computation on wall-clock times: no timers, no tasks
//! (the scheduler sleeps).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

pub use crate::config::{Schedule, ScheduleError};

/// `cron`, `interval` or `once`, as `GET /api/tasks` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    Cron,
    Interval,
    Once,
}

impl Schedule {
    pub fn kind(&self) -> TaskKind {
        match self {
            Self::Cron(_) => TaskKind::Cron,
            Self::Every(_) => TaskKind::Interval,
            Self::Once(_) => TaskKind::Once,
        }
    }

    /// For humans: the cron expression, `every 60s`, `once, 10s after start`.
    pub fn describe(&self) -> String {
        match self {
            Self::Cron(c) => c.source().to_string(),
            Self::Every(d) => format!("every {}s", d.as_secs()),
            Self::Once(d) => format!("once, {}s after start", d.as_secs()),
        }
    }

    /// The first run of a scheduler started at `origin`.
    pub fn first(&self, origin: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Cron(c) => c.after(&origin).next(),
            Self::Every(d) | Self::Once(d) => Some(origin + *d),
        }
    }

    /// The run after the one due at `due`, never at or before `now`: occurrences the
    /// scheduler could not honour in time are not made up in a burst.
    pub fn next(&self, due: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Cron(c) => c.after(&due.max(now)).next(),
            Self::Every(d) => {
                let next = due + *d;
                Some(if next > now { next } else { now + *d })
            }
            Self::Once(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::TaskConfig;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn cron_next_run_honours_seconds() {
        let every_15s = Schedule::cron("*/15 * * * * *").unwrap();
        assert_eq!(every_15s.kind(), TaskKind::Cron);
        assert_eq!(every_15s.first(at("2024-03-01T10:00:07Z")), Some(at("2024-03-01T10:00:15Z")));
        // Exactly on an occurrence: the next one, never the same instant again.
        assert_eq!(
            every_15s.next(at("2024-03-01T10:00:15Z"), at("2024-03-01T10:00:15Z")),
            Some(at("2024-03-01T10:00:30Z"))
        );
        let daily = Schedule::cron("0 30 9 * * *").unwrap();
        assert_eq!(daily.first(at("2024-03-01T10:00:00Z")), Some(at("2024-03-02T09:30:00Z")));
        assert_eq!(daily.first(at("2024-03-01T09:29:59Z")), Some(at("2024-03-01T09:30:00Z")));
        let hourly = Schedule::cron("@hourly").unwrap();
        assert_eq!(hourly.first(at("2024-12-31T23:59:59Z")), Some(at("2025-01-01T00:00:00Z")));
    }

    #[test]
    fn missed_occurrences_are_not_made_up() {
        let every_sec = Schedule::cron("* * * * * *").unwrap();
        // Due at :00, the scheduler only got to it at :05: next is :06, not :01.
        assert_eq!(
            every_sec.next(at("2024-03-01T10:00:00Z"), at("2024-03-01T10:00:05Z")),
            Some(at("2024-03-01T10:00:06Z"))
        );
        let every_10 = Schedule::every(Duration::from_secs(10)).unwrap();
        assert_eq!(
            every_10.next(at("2024-03-01T10:00:00Z"), at("2024-03-01T10:00:01Z")),
            Some(at("2024-03-01T10:00:10Z"))
        );
        assert_eq!(
            every_10.next(at("2024-03-01T10:00:00Z"), at("2024-03-01T10:00:25Z")),
            Some(at("2024-03-01T10:00:35Z"))
        );
        let once = Schedule::Once(Duration::from_secs(3));
        assert_eq!(once.first(at("2024-03-01T10:00:00Z")), Some(at("2024-03-01T10:00:03Z")));
        assert_eq!(once.next(at("2024-03-01T10:00:03Z"), at("2024-03-01T10:00:03Z")), None);
    }

    #[test]
    fn bad_expressions_are_one_clear_line() {
        let five = Schedule::cron("*/5 * * * *").unwrap_err().to_string();
        assert!(five.contains("needs the seconds field first") && five.contains("\"0 */5 * * * *\""), "{five}");
        let junk = Schedule::cron("every minute").unwrap_err().to_string();
        assert!(junk.starts_with("\"every minute\" is not a cron expression"), "{junk}");
        assert!(!junk.contains('\n'), "{junk}");
        let range = Schedule::cron("61 * * * * *").unwrap_err().to_string();
        assert!(range.starts_with("\"61 * * * * *\" is not a cron expression (Seconds must be"), "{range}");
        assert!(junk.starts_with("\"every minute\" is not a cron expression (The 'Seconds' field"), "{junk}");
        assert_eq!(
            Schedule::cron("0 0 0 30 2 *").unwrap_err(),
            ScheduleError::NeverFires { expression: "0 0 0 30 2 *".into() }
        );
        assert_eq!(Schedule::every(Duration::ZERO).unwrap_err(), ScheduleError::ZeroInterval);
    }

    #[test]
    fn config_picks_one_schedule_or_the_default() {
        let default = || Schedule::every(Duration::from_secs(60)).unwrap();
        let plain = TaskConfig::default();
        assert_eq!(Schedule::from_config(&plain, default()).unwrap().unwrap().describe(), "every 60s");
        let off = TaskConfig { enabled: false, ..TaskConfig::default() };
        assert!(Schedule::from_config(&off, default()).unwrap().is_none());
        let cron = TaskConfig { cron: Some("*/1 * * * * *".into()), ..TaskConfig::default() };
        assert_eq!(Schedule::from_config(&cron, default()).unwrap().unwrap().kind(), TaskKind::Cron);
        let once = TaskConfig { once_after_secs: Some(5), ..TaskConfig::default() };
        assert_eq!(Schedule::from_config(&once, default()).unwrap().unwrap().describe(), "once, 5s after start");
        let both = TaskConfig { cron: Some("* * * * * *".into()), every_secs: Some(1), ..TaskConfig::default() };
        assert_eq!(Schedule::from_config(&both, default()).unwrap_err(), ("", ScheduleError::Ambiguous));
        let zero = TaskConfig { every_secs: Some(0), ..TaskConfig::default() };
        assert_eq!(Schedule::from_config(&zero, default()).unwrap_err(), ("every_secs", ScheduleError::ZeroInterval));
    }
}
