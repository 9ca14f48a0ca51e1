//! A client connection's task runs its connection and watches, beside it, for the
//! gateway stopping and for a slow head. `select!` polls every branch on every wake-up
//! of the task, and nearly all of them (each read and write of every request) are the
//! connection's: the watchers' interval and `watch` receiver were polled several times
//! per request for nothing. [`first_of`] polls the watchers only when their own waker
//! fired (and once at the start, so they register it).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

/// Which of the two ended first.
#[derive(Debug, PartialEq, Eq)]
pub enum First<M, S> {
    Main(M),
    Side(S),
}

/// The side future's waker: marks it woken and wakes the task that polls both.
#[derive(Debug, Default)]
struct SideWaker {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for SideWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// Runs `main` and `side` until one ends; `main` is polled first on every wake-up,
/// `side` only on the first poll and after its own waker fired.
pub async fn first_of<M: Future, S: Future>(main: M, side: S) -> First<M::Output, S::Output> {
    let mut main = pin!(main);
    let mut side = pin!(side);
    let shared = Arc::new(SideWaker { woken: AtomicBool::new(true), task: AtomicWaker::new() });
    let side_waker = Waker::from(Arc::clone(&shared));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = main.as_mut().poll(cx) {
            return Poll::Ready(First::Main(output));
        }
        // Registered before the flag is read: a wake-up in between is not lost.
        shared.task.register(cx.waker());
        if shared.woken.swap(false, Ordering::Acquire)
            && let Poll::Ready(output) = side.as_mut().poll(&mut Context::from_waker(&side_waker))
        {
            return Poll::Ready(First::Side(output));
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    /// Counts its polls; never ready.
    struct Counted<'a> {
        polls: &'a AtomicUsize,
    }

    impl Future for Counted<'_> {
        type Output = ();
        fn poll(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            Poll::Pending
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_side_is_polled_once_and_then_only_when_its_own_waker_fires() {
        let side_polls = AtomicUsize::new(0);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        // The main future wakes its task ten times (one message each), then ends.
        let main = async {
            let mut sum = 0;
            for _ in 0..10 {
                sum += rx.recv().await.unwrap();
            }
            sum
        };
        let feeder = tokio::spawn(async move {
            for i in 0..10 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                tx.send(i).unwrap();
            }
        });
        let outcome = first_of(main, Counted { polls: &side_polls }).await;
        feeder.await.unwrap();
        assert_eq!(outcome, First::Main(45));
        assert_eq!(side_polls.load(Ordering::Relaxed), 1, "the side never woke");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_side_that_wakes_ends_the_wait_while_the_main_one_pends() {
        let never = std::future::pending::<()>();
        let side = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "expired"
        };
        assert_eq!(first_of(never, side).await, First::Side("expired"));
    }
}
