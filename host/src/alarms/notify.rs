//! Routing a new alarm to the notifiers configured for its severity, each delivery in
//! its own background task with bounded retries and exponential backoff, so the alarm
//! loop never waits on a slow or dead receiver. Deliveries stop at host shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{email, webhook};
use crate::config::{AlarmsConfig, DeliveryConfig};
use crate::store::AlarmRecord;

#[derive(Debug, Clone)]
pub struct Notifiers {
    config: Arc<AlarmsConfig>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl Notifiers {
    pub fn new(config: AlarmsConfig, tasks: TaskTracker, cancel: CancellationToken) -> Self {
        Self { config: Arc::new(config), tasks, cancel }
    }

    /// Starts one delivery per notifier that takes `alarm.severity`; returns at once.
    pub fn dispatch(&self, alarm: &AlarmRecord) {
        let wants = |severities: &[String]| severities.iter().any(|s| s == &alarm.severity);
        for hook in self.config.webhooks.iter().filter(|h| wants(&h.severities)) {
            let (hook, body) = (hook.clone(), serde_json::to_vec(alarm).unwrap_or_default());
            let what = format!("webhook {}", hook.url);
            let timeout = Duration::from_millis(hook.timeout_ms);
            self.spawn(what, alarm.id, hook.delivery(), move || {
                let (url, body) = (hook.url.clone(), body.clone());
                async move { webhook::post(&url, &body, timeout).await }
            });
        }
        for mail in self.config.email.iter().filter(|m| wants(&m.severities)) {
            let (mail, alarm_copy) = (mail.clone(), alarm.clone());
            let what = format!("e-mail via {}:{}", mail.host, mail.port);
            let timeout = Duration::from_millis(mail.timeout_ms);
            self.spawn(what, alarm.id, mail.delivery(), move || {
                let (mail, alarm) = (mail.clone(), alarm_copy.clone());
                async move { email::send(&mail, &alarm, timeout).await }
            });
        }
    }

    fn spawn<F, Fut>(&self, what: String, alarm: i64, delivery: DeliveryConfig, attempt: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => tracing::info!(alarm, "{what}: not delivered, host shutting down"),
                result = with_retries(&delivery, attempt) => match result {
                    Ok(attempts) => tracing::info!(alarm, attempts, "alarm notified: {what}"),
                    Err(e) => tracing::warn!(alarm, "alarm notification failed for good: {what}: {e}"),
                },
            }
        });
    }
}

/// Runs `attempt` up to `1 + retries` times, sleeping `backoff_ms · 2ⁿ` (at most 60 s)
/// between; `Ok(attempts used)` or the last error.
pub async fn with_retries<F, Fut>(delivery: &DeliveryConfig, mut attempt: F) -> Result<u32, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut wait = Duration::from_millis(delivery.backoff_ms);
    let mut n = 0;
    loop {
        n += 1;
        match attempt().await {
            Ok(()) => return Ok(n),
            Err(e) if n > delivery.retries => return Err(format!("{e} (after {n} attempts)")),
            Err(e) => {
                tracing::debug!("notification attempt {n} failed: {e}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn retries_are_bounded_and_stop_at_the_first_success() {
        let delivery = DeliveryConfig { timeout_ms: 100, retries: 2, backoff_ms: 1 };
        let calls = AtomicU32::new(0);
        let failing = with_retries(&delivery, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>("down".to_string())
        })
        .await;
        assert!(failing.unwrap_err().contains("after 3 attempts"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let tries = AtomicU32::new(0);
        let ok = with_retries(&delivery, || async {
            if tries.fetch_add(1, Ordering::SeqCst) == 0 { Err("once".to_string()) } else { Ok(()) }
        })
        .await;
        assert_eq!(ok, Ok(2));
    }
}
