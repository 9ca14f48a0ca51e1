//! Executing one run of a task: the job's future with its panics caught and the host's
//! shutdown as a deadline, turned into a result and a message. Nothing is retried here
//! and nothing is recorded (that is `history.rs`).

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::Job;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Outcome {
    /// `ok` or `error`.
    pub result: &'static str,
    pub message: String,
}

/// Runs `job` to completion, unless the host shuts down first (then the run is dropped
/// and reported as interrupted) or it outlives `timeout` (dropped and reported, so a
/// hung job cannot keep its task "running" for ever). A panicking job is an `error`,
/// not a dead scheduler.
pub(super) async fn execute(job: Job, cancel: CancellationToken, timeout: std::time::Duration) -> Outcome {
    // Calling the job inside the guarded future: a panic while building it is caught too.
    let guarded = AssertUnwindSafe(async move { job().await }).catch_unwind();
    tokio::select! {
        ran = guarded => match ran {
            Ok(Ok(message)) => Outcome { result: "ok", message },
            Ok(Err(message)) => Outcome { result: "error", message },
            Err(panic) => Outcome { result: "error", message: format!("panicked: {}", panic_message(panic.as_ref())) },
        },
        () = cancel.cancelled() => Outcome { result: "error", message: "interrupted: the host is shutting down".into() },
        () = tokio::time::sleep(timeout) => Outcome {
            result: "error",
            message: format!("timed out after {} s (tasks.run_timeout_secs); the run was abandoned", timeout.as_secs()),
        },
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_hung_job_times_out_and_is_reported() {
        let job: Job = Arc::new(|| Box::pin(std::future::pending()));
        let outcome = execute(job, CancellationToken::new(), Duration::from_millis(50)).await;
        assert_eq!(outcome.result, "error");
        assert!(outcome.message.starts_with("timed out after"), "{}", outcome.message);
    }
}
