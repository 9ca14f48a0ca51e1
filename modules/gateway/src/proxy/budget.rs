//! The gateway's retry budget: retries may spend `percent` % of the requests counted in
//! the last `window_secs`, plus a floor of `min_per_sec` — the amounts of tower's
//! `TpsBudget` (Finagle's budget) — but kept in atomics and read at the clock reading
//! the request made already: a request's deposit takes no lock and reads no clock.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::settings::RetryBudgetSettings;

/// The window is kept as this many slots, plus the one being written.
const SLOTS: u64 = 10;
const RING: usize = SLOTS as usize + 1;

#[derive(Debug)]
pub struct RetryBudget {
    /// Deposits less withdrawals per slot of `slot_ms`, a ring indexed by slot number.
    slots: [AtomicI64; RING],
    /// The slot number (module-clock ms / `slot_ms`) written now.
    current: AtomicU64,
    slot_ms: u64,
    /// What `min_per_sec` allows over a window, in withdrawal units.
    reserve: i64,
    deposit_amount: i64,
    withdraw_amount: i64,
}

impl RetryBudget {
    pub fn new(settings: &RetryBudgetSettings) -> Self {
        let ratio = f64::from(settings.percent) / 100.0;
        // Whole units: a deposit buys `ratio` of a withdrawal.
        let (deposit_amount, withdraw_amount) = if ratio <= 0.0 {
            (0, 1)
        } else if ratio <= 1.0 {
            (1, (1.0 / ratio) as i64)
        } else {
            (1000, (1000.0 / ratio) as i64)
        };
        let window_secs = settings.window_secs.max(1);
        Self {
            slots: Default::default(),
            current: AtomicU64::new(0),
            slot_ms: (window_secs * 1000 / SLOTS).max(1),
            reserve: i64::from(settings.min_per_sec).saturating_mul(window_secs as i64).saturating_mul(withdraw_amount),
            deposit_amount,
            withdraw_amount,
        }
    }

    /// Counts one request at `now` (module-clock ms, `upstream::ms_at`).
    pub fn deposit(&self, now: u64) {
        if self.deposit_amount != 0 {
            let slot = self.advance(now);
            self.slots[slot].fetch_add(self.deposit_amount, Ordering::Relaxed);
        }
    }

    /// Spends one retry at `now` if the window's balance allows it.
    pub fn withdraw(&self, now: u64) -> bool {
        let slot = self.advance(now);
        let balance = self.slots.iter().map(|s| s.load(Ordering::Relaxed)).fold(self.reserve, i64::saturating_add);
        if balance < self.withdraw_amount {
            return false;
        }
        self.slots[slot].fetch_sub(self.withdraw_amount, Ordering::Relaxed);
        true
    }

    /// Moves the written slot to `now`'s, clearing the slots that left the window, and
    /// returns its index. One caller wins the move; a deposit landing in a slot while it
    /// is cleared may be lost, which only makes the budget a little stricter.
    fn advance(&self, now: u64) -> usize {
        let number = now / self.slot_ms;
        let current = self.current.load(Ordering::Relaxed);
        if number > current
            && self.current.compare_exchange(current, number, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            for step in 1..=(number - current).min(RING as u64) {
                self.slots[((current + step) % RING as u64) as usize].store(0, Ordering::Relaxed);
            }
        }
        (number % RING as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(percent: f32, min_per_sec: u32) -> RetryBudget {
        RetryBudget::new(&RetryBudgetSettings { percent, min_per_sec, window_secs: 10 })
    }

    #[test]
    fn deposits_buy_their_share_of_retries() {
        let b = budget(20.0, 0);
        assert!(!b.withdraw(5), "nothing deposited, no floor");
        for _ in 0..10 {
            b.deposit(5);
        }
        assert!(b.withdraw(6) && b.withdraw(7), "10 requests at 20 % buy 2 retries");
        assert!(!b.withdraw(8));
    }

    #[test]
    fn the_floor_allows_min_per_sec_over_the_window_without_requests() {
        let b = budget(20.0, 1);
        for _ in 0..10 {
            assert!(b.withdraw(1));
        }
        assert!(!b.withdraw(1), "1/s over 10 s: 10 retries");
    }

    #[test]
    fn deposits_leave_the_window_and_a_zero_percent_gives_nothing() {
        let b = budget(50.0, 0);
        b.deposit(1);
        b.deposit(1);
        assert!(!b.withdraw(11_001), "the deposits are older than the window");
        b.deposit(11_002);
        b.deposit(11_002);
        assert!(b.withdraw(20_000), "still within the window");
        let none = budget(0.0, 0);
        none.deposit(1);
        assert!(!none.withdraw(1));
    }

    #[test]
    fn above_one_hundred_percent_a_request_buys_several_retries() {
        let b = budget(300.0, 0);
        b.deposit(1);
        assert!(b.withdraw(1) && b.withdraw(1) && b.withdraw(1));
        assert!(!b.withdraw(1));
    }
}
