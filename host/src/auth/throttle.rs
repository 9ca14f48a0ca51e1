//! Slows down password guessing. Every attempt is counted *before* the (slow) password
//! check, so parallel guesses cannot slip past the limit; after `max_failures`
//! attempts without a success the client (address + user name) is refused for a
//! lockout that doubles with each further attempt, up to a cap. A success clears the
//! record. Refusals do not run the password check, so a flood costs almost nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    base: Duration,
    cap: Duration,
    clients: Mutex<HashMap<String, Attempts>>,
}

#[derive(Debug, Clone, Copy)]
struct Attempts {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Entries idle this long are forgotten, so the map cannot grow without bound.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

impl LoginThrottle {
    pub fn new(max_failures: u32, base: Duration, cap: Duration) -> Self {
        Self { max_failures: max_failures.max(1), base, cap, clients: Mutex::new(HashMap::new()) }
    }

    /// Registers an attempt. `Err(wait)` while the client is locked out; otherwise the
    /// attempt is counted (and starts a lockout for the *next* one once the limit is
    /// reached) and may proceed to the password check.
    pub fn begin(&self, client: &str) -> Result<(), Duration> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        clients.retain(|_, a| a.last + FORGET_AFTER > now);
        let entry = clients.entry(client.to_string()).or_insert(Attempts { count: 0, last: now, locked_until: None });
        if let Some(until) = entry.locked_until.filter(|u| *u > now) {
            return Err(until - now);
        }
        entry.count += 1;
        entry.last = now;
        if entry.count >= self.max_failures {
            let doublings = (entry.count - self.max_failures).min(20);
            entry.locked_until = Some(now + self.base.saturating_mul(1u32 << doublings).min(self.cap));
        }
        Ok(())
    }

    /// The lockout now in force for `client`, if any (to tell a failed caller).
    pub fn lockout(&self, client: &str) -> Option<Duration> {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let until = clients.get(client)?.locked_until?;
        until.checked_duration_since(Instant::now())
    }

    pub fn succeeded(&self, client: &str) {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).remove(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_out_after_max_attempts_and_doubles() {
        let t = LoginThrottle::new(3, Duration::from_secs(2), Duration::from_secs(5));
        assert!(t.begin("c").is_ok());
        assert!(t.begin("c").is_ok());
        assert!(t.lockout("c").is_none());
        assert!(t.begin("c").is_ok(), "the third attempt still gets its password check");
        assert!(t.lockout("c").is_some_and(|d| d <= Duration::from_secs(2)));
        assert!(t.begin("c").is_err());
        assert!(t.begin("other").is_ok());
        t.succeeded("c");
        assert!(t.begin("c").is_ok());
    }

    #[test]
    fn lockout_is_capped() {
        let t = LoginThrottle::new(1, Duration::from_millis(1), Duration::from_millis(3));
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(4));
            let _ = t.begin("c");
        }
        assert!(t.lockout("c").is_some_and(|d| d <= Duration::from_millis(3)));
    }
}
