//! Slows down password guessing: after `max_failures` failed logins from one client
//! (address + user name) further attempts are refused for a lockout that doubles with
//! each failure, up to a cap. A success clears the record. Refusals do not run the
//! (slow) password check, so a flood costs the host almost nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    base: Duration,
    cap: Duration,
    clients: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

/// Entries idle this long are forgotten, so the map cannot grow without bound.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

impl LoginThrottle {
    pub fn new(max_failures: u32, base: Duration, cap: Duration) -> Self {
        Self { max_failures: max_failures.max(1), base, cap, clients: Mutex::new(HashMap::new()) }
    }

    /// `Err(wait)` while the client is locked out.
    pub fn check(&self, client: &str) -> Result<(), Duration> {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        match clients.get(client).and_then(|f| f.locked_until) {
            Some(until) if until > Instant::now() => Err(until - Instant::now()),
            _ => Ok(()),
        }
    }

    /// Records a failure; returns the lockout it started, if any.
    pub fn failed(&self, client: &str) -> Option<Duration> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        clients.retain(|_, f| f.last_failure + FORGET_AFTER > now);
        let entry =
            clients.entry(client.to_string()).or_insert(Failures { count: 0, last_failure: now, locked_until: None });
        entry.count += 1;
        entry.last_failure = now;
        if entry.count < self.max_failures {
            return None;
        }
        let doublings = (entry.count - self.max_failures).min(20);
        let wait = self.base.saturating_mul(1u32 << doublings).min(self.cap);
        entry.locked_until = Some(now + wait);
        Some(wait)
    }

    pub fn succeeded(&self, client: &str) {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).remove(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_out_after_max_failures_and_doubles() {
        let t = LoginThrottle::new(3, Duration::from_secs(2), Duration::from_secs(5));
        assert!(t.failed("c").is_none());
        assert!(t.failed("c").is_none());
        assert_eq!(t.failed("c"), Some(Duration::from_secs(2)));
        assert!(t.check("c").is_err());
        assert!(t.check("other").is_ok());
        assert_eq!(t.failed("c"), Some(Duration::from_secs(4)));
        assert_eq!(t.failed("c"), Some(Duration::from_secs(5)));
        t.succeeded("c");
        assert!(t.check("c").is_ok());
    }
}
