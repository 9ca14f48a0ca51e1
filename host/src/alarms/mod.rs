//! Alarms: raised from host events (`rules`) and the periodic disk check (`disk`),
//! kept in the store deduplicated while unresolved (a repeat bumps `count` and
//! `last_seen_ms`), acked or deleted through `/api/alarms`, resolved when the subject
//! recovers, trimmed by retention, and sent to the notifiers of their severity
//! (`notify`: webhook, e-mail) when new.

mod disk;
mod email;
mod notify;
mod rules;
mod webhook;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{AlarmsConfig, Config};
use crate::events::{Event, EventBus};
use crate::store::{AlarmRaise, AlarmRecord, Store, StoreError, now_ms};
use rules::Signal;

#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    #[error("no alarm with id {0}")]
    NotFound(i64),
    #[error("unknown alarm state {0:?}; use open, acked, resolved or all")]
    BadState(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The alarm service behind `/api/alarms`; its loop runs until the host shuts down.
#[derive(Debug)]
pub struct AlarmManager {
    store: Arc<dyn Store>,
    events: EventBus,
    notifiers: notify::Notifiers,
}

impl AlarmManager {
    /// Subscribes to the bus at once (no event published after this call is missed)
    /// and starts the loop on `tasks`.
    pub fn launch(
        config: &Config,
        store: Arc<dyn Store>,
        events: EventBus,
        tasks: &TaskTracker,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let notifiers = notify::Notifiers::new(config.alarms.clone(), tasks.clone(), cancel.clone());
        let manager = Arc::new(Self { store, events: events.clone(), notifiers });
        let worker = Worker {
            manager: Arc::clone(&manager),
            config: config.alarms.clone(),
            disk_path: config.service_root.clone(),
            running_since: HashMap::new(),
        };
        tasks.spawn(worker.run(events.subscribe(), cancel));
        manager
    }

    /// `state`: `open`, `acked`, `resolved` or `all` (default `open`), newest first.
    pub async fn list(&self, state: Option<&str>) -> Result<Vec<AlarmRecord>, AlarmError> {
        let filter = match state.unwrap_or("open") {
            "all" => None,
            s @ ("open" | "acked" | "resolved") => Some(s),
            other => return Err(AlarmError::BadState(other.to_string())),
        };
        Ok(self.store.list_alarms(filter).await?)
    }

    pub async fn get(&self, id: i64) -> Result<AlarmRecord, AlarmError> {
        self.store.get_alarm(id).await?.ok_or(AlarmError::NotFound(id))
    }

    /// Acknowledges an open alarm (acked and resolved ones are returned unchanged).
    /// It stays unresolved: repeats still count on it instead of raising a new one.
    pub async fn ack(&self, id: i64) -> Result<AlarmRecord, AlarmError> {
        self.store.ack_alarm(id, now_ms()).await?.ok_or(AlarmError::NotFound(id))
    }

    pub async fn delete(&self, id: i64) -> Result<(), AlarmError> {
        if self.store.delete_alarm(id).await? { Ok(()) } else { Err(AlarmError::NotFound(id)) }
    }

    /// Records an occurrence; a new alarm is published and sent to its notifiers.
    pub async fn raise(
        &self,
        kind: &str,
        subject: &str,
        severity: &str,
        message: &str,
    ) -> Result<AlarmRecord, AlarmError> {
        let raise = AlarmRaise {
            kind: kind.into(),
            subject: subject.into(),
            severity: severity.into(),
            message: message.into(),
            at_ms: now_ms(),
        };
        let (alarm, new) = self.store.raise_alarm(&raise).await?;
        if new {
            tracing::warn!(id = alarm.id, kind, subject, severity, "alarm raised: {message}");
            self.events.publish(Event::AlarmRaised {
                id: alarm.id,
                alarm_kind: alarm.kind.clone(),
                subject: alarm.subject.clone(),
                severity: alarm.severity.clone(),
                message: alarm.message.clone(),
            });
            self.notifiers.dispatch(&alarm);
        } else {
            tracing::debug!(id = alarm.id, count = alarm.count, kind, subject, "alarm repeated");
        }
        Ok(alarm)
    }

    /// Resolves the unresolved alarms of `subject` with one of `kinds`.
    pub async fn resolve(&self, subject: &str, kinds: &[&str]) -> Result<usize, AlarmError> {
        let resolved = self.store.resolve_alarms(subject, kinds, now_ms()).await?;
        for alarm in &resolved {
            tracing::info!(id = alarm.id, kind = %alarm.kind, subject, "alarm resolved");
            self.events.publish(Event::AlarmResolved {
                id: alarm.id,
                alarm_kind: alarm.kind.clone(),
                subject: alarm.subject.clone(),
            });
        }
        Ok(resolved.len())
    }
}

/// The loop's own state: which services are running since when (for resolving their
/// crash alarms once stable), and the schedule of the disk check and retention.
struct Worker {
    manager: Arc<AlarmManager>,
    config: AlarmsConfig,
    disk_path: PathBuf,
    running_since: HashMap<String, Instant>,
}

impl Worker {
    async fn run(mut self, mut rx: tokio::sync::broadcast::Receiver<Event>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let disk_every = (self.config.disk_check_secs > 0).then(|| Duration::from_secs(self.config.disk_check_secs));
        let (mut next_disk, mut next_trim) = (Instant::now(), Instant::now());
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                received = rx.recv() => match received {
                    Ok(event) => self.on_event(&event).await,
                    Err(RecvError::Lagged(n)) => tracing::warn!("alarms fell behind the event bus; {n} events not evaluated"),
                    Err(RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    self.resolve_stable().await;
                    if let Some(every) = disk_every.filter(|_| Instant::now() >= next_disk) {
                        next_disk = Instant::now() + every;
                        self.check_disk().await;
                    }
                    if Instant::now() >= next_trim {
                        next_trim = Instant::now() + Duration::from_secs(3600);
                        self.trim().await;
                    }
                }
            }
        }
    }

    async fn on_event(&mut self, event: &Event) {
        for signal in rules::classify(event) {
            let done = match signal {
                Signal::Raise { kind, subject, severity, message } => {
                    self.manager.raise(kind, &subject, severity, &message).await.map(drop)
                }
                Signal::ServiceRunning { name } => {
                    self.running_since.entry(name.clone()).or_insert_with(Instant::now);
                    self.manager.resolve(&name, rules::HEALTH_KINDS).await.map(drop)
                }
                Signal::ServiceNotRunning { name } => {
                    self.running_since.remove(&name);
                    Ok(())
                }
            };
            if let Err(e) = done {
                tracing::warn!("alarm bookkeeping failed: {e}");
            }
        }
    }

    async fn resolve_stable(&mut self) {
        let stable = Duration::from_secs(self.config.resolve_after_running_secs);
        let ready: Vec<String> =
            self.running_since.iter().filter(|(_, since)| since.elapsed() >= stable).map(|(n, _)| n.clone()).collect();
        for name in ready {
            self.running_since.remove(&name);
            if let Err(e) = self.manager.resolve(&name, rules::SERVICE_KINDS).await {
                tracing::warn!("resolving alarms of {name} failed: {e}");
            }
        }
    }

    async fn check_disk(&self) {
        let path = self.disk_path.clone();
        let used = match tokio::task::spawn_blocking(move || disk::used_percent(&path)).await {
            Ok(Ok(used)) => used,
            Ok(Err(e)) => return tracing::warn!(path = %self.disk_path.display(), "disk check failed: {e}"),
            Err(e) => return tracing::warn!("disk check failed: {e}"),
        };
        let subject = self.disk_path.display().to_string();
        let limit = f64::from(self.config.disk_full_percent);
        let done = if used >= limit {
            let message = format!("filesystem of {subject} is {used:.1}% full (alarm at {limit}%)");
            self.manager.raise("disk_full", &subject, "critical", &message).await.map(drop)
        } else {
            self.manager.resolve(&subject, &["disk_full"]).await.map(drop)
        };
        if let Err(e) = done {
            tracing::warn!("disk alarm bookkeeping failed: {e}");
        }
    }

    async fn trim(&self) {
        let before = now_ms().saturating_sub(i64::try_from(self.config.retention_days).unwrap_or(0) * 86_400_000);
        match self.manager.store.trim_alarms(before, self.config.max_alarms).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(dropped = n, "old alarms dropped"),
            Err(e) => tracing::warn!("alarm retention failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    async fn manager(dir: &std::path::Path) -> (Arc<AlarmManager>, EventBus, CancellationToken) {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("a.db")).unwrap());
        let mut config = Config { service_root: dir.to_path_buf(), ..Default::default() };
        config.alarms.disk_check_secs = 0;
        let (events, cancel) = (EventBus::new(), CancellationToken::new());
        let manager = AlarmManager::launch(&config, store, events.clone(), &TaskTracker::new(), cancel.clone());
        (manager, events, cancel)
    }

    #[tokio::test]
    async fn repeats_count_on_one_alarm_until_it_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let (alarms, events, cancel) = manager(dir.path()).await;
        let mut rx = events.subscribe();
        let first = alarms.raise("task_failed", "t", "warning", "one").await.unwrap();
        assert!(matches!(rx.recv().await.unwrap(), Event::AlarmRaised { id, .. } if id == first.id));
        let second = alarms.raise("task_failed", "t", "warning", "two").await.unwrap();
        assert_eq!((second.id, second.count, second.message.as_str()), (first.id, 2, "two"));
        assert_eq!(alarms.ack(first.id).await.unwrap().state, "acked");
        let third = alarms.raise("task_failed", "t", "warning", "three").await.unwrap();
        assert_eq!((third.id, third.count, third.state.as_str()), (first.id, 3, "acked"), "acked still dedups");
        assert_eq!(alarms.list(None).await.unwrap().len(), 0, "default: open only");
        assert_eq!(alarms.resolve("t", &["task_failed"]).await.unwrap(), 1);
        assert_eq!(alarms.get(first.id).await.unwrap().state, "resolved");
        let fresh = alarms.raise("task_failed", "t", "warning", "again").await.unwrap();
        assert_ne!(fresh.id, first.id, "after resolving, a new alarm");
        assert_eq!(alarms.list(Some("all")).await.unwrap().len(), 2);
        assert!(matches!(alarms.list(Some("nope")).await, Err(AlarmError::BadState(_))));
        alarms.delete(fresh.id).await.unwrap();
        assert!(matches!(alarms.delete(fresh.id).await, Err(AlarmError::NotFound(_))));
        cancel.cancel();
    }

    #[tokio::test]
    async fn events_raise_and_health_recovery_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let (alarms, events, cancel) = manager(dir.path()).await;
        events.publish(Event::HealthFailing { name: "web".into(), message: "503".into() });
        let open = async {
            loop {
                let open = alarms.list(Some("open")).await.unwrap();
                if !open.is_empty() {
                    return open;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let open = tokio::time::timeout(Duration::from_secs(5), open).await.unwrap();
        assert_eq!((open[0].kind.as_str(), open[0].subject.as_str()), ("health_failing", "web"));
        let state =
            |s: &str| Event::ServiceState { name: "web".into(), state: s.into(), pid: None, message: "".into() };
        events.publish(state("running"));
        let resolved = async {
            while !alarms.list(Some("open")).await.unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), resolved).await.unwrap();
        cancel.cancel();
    }

    #[tokio::test]
    async fn a_nearly_full_disk_raises_a_critical_alarm() {
        let dir = tempfile::tempdir().unwrap();
        if disk::used_percent(dir.path()).unwrap() < 1.0 {
            return; // an empty filesystem cannot cross the lowest threshold
        }
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("a.db")).unwrap());
        let mut config = Config { service_root: dir.path().to_path_buf(), ..Default::default() };
        (config.alarms.disk_check_secs, config.alarms.disk_full_percent) = (1, 1);
        let cancel = CancellationToken::new();
        let alarms = AlarmManager::launch(&config, store, EventBus::new(), &TaskTracker::new(), cancel.clone());
        let raised = async {
            loop {
                if let Some(a) = alarms.list(Some("open")).await.unwrap().pop() {
                    return a;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let alarm = tokio::time::timeout(Duration::from_secs(5), raised).await.unwrap();
        assert_eq!((alarm.kind.as_str(), alarm.severity.as_str()), ("disk_full", "critical"));
        assert_eq!(alarm.subject, dir.path().display().to_string());
        cancel.cancel();
    }
}
