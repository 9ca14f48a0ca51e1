//! The per-try deadline without a timer per try: each client connection keeps one
//! boxed tokio `Sleep` that every try of every request it carries re-arms. A fresh
//! `Sleep` per try is inserted into tokio's timer wheel when first polled and taken out
//! again when dropped, both under the time driver's lock; re-arming a pending one to a
//! later deadline (the next try's, nearly always) only moves its expiry atomically, and
//! the wheel re-files it when the earlier instant comes around.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use tokio::time::Sleep;

/// A try that did not end by its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

/// One client connection's try deadline, re-armed by each try.
#[derive(Debug, Default)]
pub struct TryTimer {
    /// Made on the connection's first try.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl TryTimer {
    /// Runs `attempt` until it ends or `deadline` passes (then its caller drops it).
    /// Pinned by the caller: a try's future is several hundred bytes, and taking it by
    /// value copied it into this one's state and again into its pinned place.
    pub async fn run<F: Future>(&mut self, deadline: Instant, mut attempt: Pin<&mut F>) -> Result<F::Output, TimedOut> {
        let deadline = tokio::time::Instant::from_std(deadline);
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                sleep.as_mut().reset(deadline);
                sleep
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        std::future::poll_fn(|cx| {
            // The try first, as tokio's `timeout` does: one that is ready is not lost to
            // a deadline that passed meanwhile.
            if let Poll::Ready(output) = attempt.as_mut().poll(cx) {
                return Poll::Ready(Ok(output));
            }
            sleep.as_mut().poll(cx).map(|()| Err(TimedOut))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::time::Duration;

    use super::*;

    /// The paused test clock, as the std instants the gateway passes.
    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_try_past_its_deadline_times_out_and_the_next_one_gets_a_fresh_deadline() {
        let mut timer = TryTimer::default();
        let start = now();
        let slow = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(timer.run(start + Duration::from_secs(2), pin!(slow)).await, Err(TimedOut));
        let elapsed = now().saturating_duration_since(start);
        assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(3), "{elapsed:?}");
        // Re-armed after it fired: the next try has its own two seconds.
        let quick = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            7
        };
        assert_eq!(timer.run(now() + Duration::from_secs(2), pin!(quick)).await, Ok(7));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_later_deadline_extends_a_pending_timer_and_an_earlier_one_shortens_it() {
        let mut timer = TryTimer::default();
        let start = now();
        assert_eq!(timer.run(start + Duration::from_secs(10), pin!(async { 1 })).await, Ok(1));
        // Pending at 10 s: extended to 20 s, the try that takes 15 s ends in time.
        let long = async {
            tokio::time::sleep(Duration::from_secs(15)).await;
            2
        };
        assert_eq!(timer.run(start + Duration::from_secs(20), pin!(long)).await, Ok(2));
        // Pending at 20 s: moved back to 16 s, a try of 10 s more is cut there.
        let cut = tokio::time::sleep(Duration::from_secs(10));
        assert_eq!(timer.run(start + Duration::from_secs(16), pin!(cut)).await, Err(TimedOut));
        let elapsed = now().saturating_duration_since(start);
        assert!(elapsed >= Duration::from_secs(16) && elapsed < Duration::from_secs(17), "{elapsed:?}");
    }
}
