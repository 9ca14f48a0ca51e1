//! A task's schedule as `tasks.*` states it, parsed and checked: a cron expression with
//! seconds (UTC) that ever fires, an interval of at least a second, or once after a
//! delay. Pure parsing: when a schedule fires next is `crate::tasks::schedule`'s.

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;

use super::tasks::TaskConfig;

/// A schedule that cannot be used, with a message meant for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "{expression:?} is not a cron expression ({detail}); use 6 fields `sec min hour day-of-month month day-of-week` or 7 (+ year), e.g. \"0 */5 * * * *\""
    )]
    Cron { expression: String, detail: String },
    #[error("{expression:?} never fires")]
    NeverFires { expression: String },
    #[error("must be at least 1 second")]
    ZeroInterval,
    #[error("set only one of cron, every_secs, once_after_secs")]
    Ambiguous,
}

#[derive(Debug, Clone)]
pub enum Schedule {
    /// Boxed: a parsed cron schedule is large next to the other variants.
    Cron(Box<cron::Schedule>),
    Every(Duration),
    /// Once, this long after the scheduler starts.
    Once(Duration),
}

impl Schedule {
    /// Parses a cron expression (seconds first) and checks that it ever fires.
    pub fn cron(expression: &str) -> Result<Self, ScheduleError> {
        let trimmed = expression.trim();
        let fields = trimmed.split_whitespace().count();
        let parsed = cron::Schedule::from_str(trimmed).map_err(|e| ScheduleError::Cron {
            expression: expression.to_string(),
            detail: if fields == 5 && !trimmed.starts_with('@') {
                "5 fields: this cron needs the seconds field first".to_string()
            } else {
                parser_detail(&e.to_string())
            },
        })?;
        if parsed.upcoming(Utc).next().is_none() {
            return Err(ScheduleError::NeverFires { expression: expression.to_string() });
        }
        Ok(Self::Cron(Box::new(parsed)))
    }

    pub fn every(period: Duration) -> Result<Self, ScheduleError> {
        if period < Duration::from_secs(1) {
            return Err(ScheduleError::ZeroInterval);
        }
        Ok(Self::Every(period))
    }

    /// A task's schedule from its config: `None` when disabled, `default` when the
    /// config names no schedule. Errors carry the offending key's last segment.
    pub fn from_config(config: &TaskConfig, default: Schedule) -> Result<Option<Self>, (&'static str, ScheduleError)> {
        let schedule = Self::stated(config)?.unwrap_or(default);
        Ok(config.enabled.then_some(schedule))
    }

    /// The schedule the config names, if any (`None`: the task's default), checked
    /// whether or not the task is enabled.
    pub(super) fn stated(config: &TaskConfig) -> Result<Option<Self>, (&'static str, ScheduleError)> {
        let set = [config.cron.is_some(), config.every_secs.is_some(), config.once_after_secs.is_some()];
        if set.iter().filter(|s| **s).count() > 1 {
            return Err(("", ScheduleError::Ambiguous));
        }
        Ok(if let Some(expression) = &config.cron {
            Some(Self::cron(expression).map_err(|e| ("cron", e))?)
        } else if let Some(secs) = config.every_secs {
            Some(Self::every(Duration::from_secs(secs)).map_err(|e| ("every_secs", e))?)
        } else {
            config.once_after_secs.map(|secs| Self::Once(Duration::from_secs(secs)))
        })
    }
}

/// The parser's message echoes the input and a caret line before the reason: keep the
/// reason, on one line.
fn parser_detail(raw: &str) -> String {
    let lines: Vec<&str> = raw.lines().collect();
    let reason = match lines.iter().position(|l| l.trim() == "^") {
        Some(caret) if caret + 1 < lines.len() => &lines[caret + 1..],
        _ => &lines[..],
    };
    reason.join(" ").split_whitespace().collect::<Vec<_>>().join(" ")
}
