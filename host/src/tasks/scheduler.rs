//! The one scheduler: a loop (owned by the host's `TaskTracker`, ended by its
//! cancellation token) that sleeps until the earliest due task, starts it, and computes
//! its next run. Also the operator's controls: run now, pause, resume, and the views
//! the API returns.
//!
//! Overlap rule: a task's state holds `running_since`; it is checked and set under the
//! task's lock, so a second run of a task cannot start while one is going. A scheduled
//! run that finds the task busy is recorded as `skipped`; a manual one is refused.
//! Runs execute on the tracker, never inside the loop, so a slow task delays no other.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use super::history::{History, TaskRun, rfc3339_ms};
use super::schedule::{Schedule, TaskKind};
use super::{TaskError, TaskSpec, run};
use crate::events::EventBus;
use crate::store::{Store, TaskRunRecord};

/// Longest sleep of the loop, so a wall-clock jump (NTP step) is noticed within it.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// One row of `GET /api/tasks`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: TaskKind,
    /// The cron expression, `every 60s` or `once, 10s after start`.
    pub schedule: String,
    /// Scheduled runs are suspended (a manual run still works). Survives restarts.
    pub paused: bool,
    pub running: bool,
    /// RFC 3339, while running.
    pub running_since: Option<String>,
    /// RFC 3339; `null` while paused and for a one-shot task that has run.
    pub next_run: Option<String>,
    /// RFC 3339 start of the latest run (for a skipped one: when it was due).
    pub last_run: Option<String>,
    /// `schedule` or `manual`.
    pub last_trigger: Option<String>,
    pub last_duration_ms: Option<i64>,
    /// `ok`, `error` or `skipped`.
    pub last_result: Option<String>,
    pub last_message: Option<String>,
}

#[derive(Debug)]
pub struct TaskManager {
    tasks: Vec<Arc<Task>>,
    history: History,
    tracker: TaskTracker,
    cancel: CancellationToken,
    /// Pause and resume wake the loop so it recomputes its sleep.
    wake: Notify,
    /// When the scheduler started: interval and one-shot tasks count from here.
    origin: DateTime<Utc>,
    /// A run taking longer is abandoned and reported (`tasks.run_timeout_secs`).
    run_timeout: std::time::Duration,
}

/// The run timeout when none is configured.
pub const DEFAULT_RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Debug)]
struct Task {
    spec: TaskSpec,
    state: Mutex<TaskState>,
}

#[derive(Debug, Default)]
struct TaskState {
    paused: bool,
    next_run: Option<DateTime<Utc>>,
    running_since: Option<DateTime<Utc>>,
    last: Option<TaskRunRecord>,
    /// A one-shot task whose scheduled run has happened.
    done: bool,
}

impl Task {
    fn state(&self) -> MutexGuard<'_, TaskState> {
        // The lock is never held across a panic-prone call; a poisoned one is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Schedule,
    Manual,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual => "manual",
        }
    }
}

impl TaskManager {
    /// Registers `specs` (paused flags and the last run restored from the store) and
    /// starts the loop on `tracker`; it ends when `cancel` fires, and runs in flight are
    /// then reported as interrupted.
    pub async fn launch(
        specs: Vec<TaskSpec>,
        store: Arc<dyn Store>,
        events: EventBus,
        history_keep: u32,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        Self::launch_with(specs, store, events, history_keep, DEFAULT_RUN_TIMEOUT, tracker, cancel).await
    }

    /// [`TaskManager::launch`] with a run timeout.
    pub async fn launch_with(
        specs: Vec<TaskSpec>,
        store: Arc<dyn Store>,
        events: EventBus,
        history_keep: u32,
        run_timeout: std::time::Duration,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let history = History::new(store, events, history_keep);
        let origin = Utc::now();
        let mut tasks: Vec<Arc<Task>> = Vec::with_capacity(specs.len());
        for spec in specs {
            if tasks.iter().any(|t| t.spec.id == spec.id) {
                tracing::error!(task = %spec.id, "a task with this id is already registered; the second one is ignored");
                continue;
            }
            let paused = history.paused(&spec.id).await;
            let last = match history.list(&spec.id, 1).await {
                Ok(mut runs) => runs.pop(),
                Err(e) => {
                    tracing::warn!(task = %spec.id, "cannot read the task's last run: {e}");
                    None
                }
            };
            let next_run = if paused { None } else { spec.schedule.first(origin) };
            let state = TaskState { paused, next_run, last, ..TaskState::default() };
            tasks.push(Arc::new(Task { spec, state: Mutex::new(state) }));
        }
        let manager = Arc::new(Self {
            tasks,
            history,
            tracker: tracker.clone(),
            cancel,
            wake: Notify::new(),
            origin,
            run_timeout,
        });
        tracker.spawn(Arc::clone(&manager).run_loop());
        tracing::info!(tasks = manager.tasks.len(), "task scheduler started");
        manager
    }

    async fn run_loop(self: Arc<Self>) {
        loop {
            let now = Utc::now();
            let mut earliest: Option<DateTime<Utc>> = None;
            for task in &self.tasks {
                let due = {
                    let mut state = task.state();
                    match state.next_run {
                        Some(due) if !state.paused && due <= now => {
                            state.next_run = task.spec.schedule.next(due, now);
                            state.done = state.next_run.is_none();
                            Some(due)
                        }
                        _ => None,
                    }
                };
                if let Some(due) = due
                    && let Err(since) = self.start_run(task, Trigger::Schedule)
                {
                    self.skip(task, due, since);
                }
                let state = task.state();
                if let Some(next) = state.next_run.filter(|_| !state.paused) {
                    earliest = Some(earliest.map_or(next, |e| e.min(next)));
                }
            }
            let wait = earliest.map_or(MAX_SLEEP, |t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO));
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait.min(MAX_SLEEP)) => {}
            }
        }
    }

    /// Starts a run on the tracker unless one is going; `Err` holds when that one began.
    fn start_run(self: &Arc<Self>, task: &Arc<Task>, trigger: Trigger) -> Result<(), DateTime<Utc>> {
        let started_at = Utc::now();
        {
            let mut state = task.state();
            if let Some(since) = state.running_since {
                return Err(since);
            }
            state.running_since = Some(started_at);
        }
        let manager = Arc::clone(self);
        let task = Arc::clone(task);
        self.tracker.spawn(async move {
            let clock = Instant::now();
            let outcome = run::execute(Arc::clone(&task.spec.job), manager.cancel.clone(), manager.run_timeout).await;
            let record = TaskRunRecord {
                id: 0,
                task: task.spec.id.clone(),
                trigger: trigger.as_str().into(),
                started_at_ms: started_at.timestamp_millis(),
                duration_ms: i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX),
                result: outcome.result.into(),
                message: outcome.message,
            };
            // Recorded before the task counts as idle: once `running` is false, the run
            // is in the history.
            manager.history.record(&record).await;
            let mut state = task.state();
            state.running_since = None;
            state.last = Some(record);
        });
        Ok(())
    }

    /// A scheduled run due at `due` found the previous run (started `since`) going.
    fn skip(&self, task: &Task, due: DateTime<Utc>, since: DateTime<Utc>) {
        let busy_for = (Utc::now() - since).num_milliseconds().max(0) as f64 / 1000.0;
        let record = TaskRunRecord {
            id: 0,
            task: task.spec.id.clone(),
            trigger: Trigger::Schedule.as_str().into(),
            started_at_ms: due.timestamp_millis(),
            duration_ms: 0,
            result: "skipped".into(),
            message: format!(
                "overrun: the previous run (started {}, {busy_for:.1}s ago) was still going when this one was due",
                since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ),
        };
        task.state().last = Some(record.clone());
        let history = self.history.clone();
        self.tracker.spawn(async move { history.record(&record).await });
    }

    fn find(&self, id: &str) -> Result<&Arc<Task>, TaskError> {
        self.tasks.iter().find(|t| t.spec.id == id).ok_or_else(|| TaskError::NotFound(id.to_string()))
    }

    pub fn list(&self) -> Vec<TaskInfo> {
        self.tasks.iter().map(|t| info(t)).collect()
    }

    pub fn get(&self, id: &str) -> Result<TaskInfo, TaskError> {
        self.find(id).map(|t| info(t))
    }

    /// The task's runs, newest first (`limit` clamped to 1..=1000).
    pub async fn history(&self, id: &str, limit: u32) -> Result<Vec<TaskRun>, TaskError> {
        self.find(id)?;
        let runs = self.history.list(id, limit.clamp(1, 1000)).await?;
        Ok(runs.into_iter().map(TaskRun::from).collect())
    }

    /// Starts a run now, paused or not; refused while one is going. Returns at once.
    pub fn run_now(self: &Arc<Self>, id: &str) -> Result<TaskInfo, TaskError> {
        let task = self.find(id)?;
        self.start_run(task, Trigger::Manual).map_err(|since| TaskError::AlreadyRunning {
            id: id.to_string(),
            since: since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })?;
        Ok(info(task))
    }

    /// Suspends scheduled runs (a run in progress finishes). Persisted.
    pub async fn pause(&self, id: &str) -> Result<TaskInfo, TaskError> {
        let task = self.find(id)?;
        self.history.set_paused(id, true).await?;
        {
            let mut state = task.state();
            state.paused = true;
            state.next_run = None;
        }
        self.wake.notify_one();
        Ok(info(task))
    }

    /// Schedules the task again from now (a one-shot task that has not run yet runs at
    /// its original time, or at once if that has passed). Persisted.
    pub async fn resume(&self, id: &str) -> Result<TaskInfo, TaskError> {
        let task = self.find(id)?;
        self.history.set_paused(id, false).await?;
        {
            let mut state = task.state();
            if state.paused {
                let now = Utc::now();
                state.paused = false;
                state.next_run = match &task.spec.schedule {
                    _ if state.done => None,
                    Schedule::Once(_) => task.spec.schedule.first(self.origin).map(|at| at.max(now)),
                    other => other.first(now),
                };
            }
        }
        self.wake.notify_one();
        Ok(info(task))
    }
}

fn info(task: &Task) -> TaskInfo {
    let rfc3339 = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let state = task.state();
    let last = state.last.as_ref();
    TaskInfo {
        id: task.spec.id.clone(),
        name: task.spec.name.clone(),
        description: task.spec.description.clone(),
        kind: task.spec.schedule.kind(),
        schedule: task.spec.schedule.describe(),
        paused: state.paused,
        running: state.running_since.is_some(),
        running_since: state.running_since.map(rfc3339),
        next_run: state.next_run.filter(|_| !state.paused).map(rfc3339),
        last_run: last.map(|l| rfc3339_ms(l.started_at_ms)),
        last_trigger: last.map(|l| l.trigger.clone()),
        last_duration_ms: last.map(|l| l.duration_ms),
        last_result: last.map(|l| l.result.clone()),
        last_message: last.map(|l| l.message.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::events::Event;
    use crate::store::SqliteStore;

    struct Harness {
        manager: Arc<TaskManager>,
        tracker: TaskTracker,
        cancel: CancellationToken,
        store: Arc<dyn Store>,
        events: EventBus,
        _dir: tempfile::TempDir,
    }

    async fn harness(specs: Vec<TaskSpec>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let events = EventBus::new();
        let (tracker, cancel) = (TaskTracker::new(), CancellationToken::new());
        let manager =
            TaskManager::launch(specs, Arc::clone(&store), events.clone(), 100, &tracker, cancel.clone()).await;
        Harness { manager, tracker, cancel, store, events, _dir: dir }
    }

    impl Harness {
        async fn stop(self) {
            self.cancel.cancel();
            self.tracker.close();
            tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await.expect("scheduler stops");
        }

        async fn runs(&self, id: &str) -> Vec<TaskRun> {
            self.manager.history(id, 1000).await.unwrap()
        }

        /// Polls `check` for up to 5 s.
        async fn until(&self, what: &str, check: impl Fn() -> bool) {
            for _ in 0..500 {
                if check() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("timed out waiting for {what}");
        }

        async fn wait_idle(&self, id: &str) {
            for _ in 0..200 {
                if !self.manager.get(id).unwrap().running {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{id} still running");
        }
    }

    fn every(ms: u64) -> Schedule {
        Schedule::Every(Duration::from_millis(ms))
    }

    /// Never fires by itself within a test.
    fn manual_only() -> Schedule {
        Schedule::Once(Duration::from_secs(3600))
    }

    /// A job that waits for `gate` permits, counting how many of its runs overlap.
    fn gated(gate: Arc<tokio::sync::Semaphore>, now: Arc<AtomicUsize>, max: Arc<AtomicUsize>) -> TaskSpec {
        TaskSpec::new("slow", "Slow", "waits for the test", every(40), move || {
            let (gate, now, max) = (Arc::clone(&gate), Arc::clone(&now), Arc::clone(&max));
            async move {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(running, Ordering::SeqCst);
                let permit = gate.acquire().await.map_err(|e| e.to_string())?;
                permit.forget();
                now.fetch_sub(1, Ordering::SeqCst);
                Ok("released".into())
            }
        })
    }

    #[tokio::test]
    async fn runs_never_overlap_and_overruns_are_reported() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let h = harness(vec![gated(Arc::clone(&gate), Arc::clone(&now), Arc::clone(&max))]).await;
        h.until("three overruns", || h.manager.get("slow").unwrap().last_result.as_deref() == Some("skipped")).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let info = h.manager.get("slow").unwrap();
        assert!(info.running, "{info:?}");
        assert_eq!(info.last_result.as_deref(), Some("skipped"), "{info:?}");
        assert!(info.last_message.unwrap().starts_with("overrun: the previous run (started "));
        // A manual run while one is going is refused, not queued or doubled.
        let refused = h.manager.run_now("slow").unwrap_err();
        assert!(matches!(refused, TaskError::AlreadyRunning { .. }), "{refused}");
        assert!(refused.to_string().contains("already running"));
        // Pausing lets the run in progress finish, and starts no other.
        h.manager.pause("slow").await.unwrap();
        gate.add_permits(1);
        h.wait_idle("slow").await;
        let runs = h.runs("slow").await;
        assert!(runs.iter().filter(|r| r.result == "skipped").count() >= 3, "{runs:?}");
        assert_eq!(runs.iter().filter(|r| r.result == "ok").count(), 1, "{runs:?}");
        assert_eq!(max.load(Ordering::SeqCst), 1, "two runs of one task overlapped");
        gate.add_permits(1000);
        h.stop().await;
        assert_eq!(max.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn run_now_runs_once_and_refuses_while_running() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let spec = TaskSpec::new("manual", "Manual", "", manual_only(), {
            let gate = Arc::clone(&gate);
            move || {
                let gate = Arc::clone(&gate);
                async move {
                    gate.acquire().await.map_err(|e| e.to_string())?.forget();
                    Ok("done".into())
                }
            }
        });
        let h = harness(vec![spec]).await;
        assert!(h.manager.get("manual").unwrap().last_result.is_none());
        let started = h.manager.run_now("manual").unwrap();
        assert!(started.running && started.running_since.is_some());
        assert!(matches!(h.manager.run_now("manual"), Err(TaskError::AlreadyRunning { .. })));
        gate.add_permits(1);
        h.wait_idle("manual").await;
        let info = h.manager.get("manual").unwrap();
        assert_eq!((info.last_result.as_deref(), info.last_trigger.as_deref()), (Some("ok"), Some("manual")));
        // Idle again: a second run is accepted.
        h.manager.run_now("manual").unwrap();
        gate.add_permits(1);
        h.wait_idle("manual").await;
        let runs = h.runs("manual").await;
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert!(runs.iter().all(|r| r.result == "ok" && r.trigger == "manual" && r.message == "done"));
        assert!(matches!(h.manager.run_now("nope"), Err(TaskError::NotFound(_))));
        h.stop().await;
    }

    #[tokio::test]
    async fn failures_and_panics_are_reported_with_their_message() {
        let failing = TaskSpec::new("failing", "Failing", "", manual_only(), || async { Err("disk on fire".into()) });
        let panicking = TaskSpec::new("panicking", "Panicking", "", manual_only(), || async {
            if true {
                panic!("boom");
            }
            Ok(String::new())
        });
        let h = harness(vec![failing, panicking]).await;
        let mut bus = h.events.subscribe();
        h.manager.run_now("failing").unwrap();
        h.manager.run_now("panicking").unwrap();
        h.wait_idle("failing").await;
        h.wait_idle("panicking").await;
        let info = h.manager.get("failing").unwrap();
        assert_eq!(info.last_result.as_deref(), Some("error"));
        assert_eq!(info.last_message.as_deref(), Some("disk on fire"));
        let runs = h.runs("failing").await;
        assert_eq!((runs.len(), runs[0].result.as_str(), runs[0].message.as_str()), (1, "error", "disk on fire"));
        let panicked = h.runs("panicking").await;
        assert_eq!(panicked[0].message, "panicked: boom");
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let event = tokio::time::timeout(Duration::from_secs(5), bus.recv()).await.unwrap().unwrap();
            if let Event::TaskRun { task, result, message, trigger, .. } = event {
                seen.push((task, result, message, trigger));
            }
        }
        seen.sort();
        assert_eq!(seen[0], ("failing".into(), "error".into(), "disk on fire".into(), "manual".into()));
        assert_eq!(seen[1].0, "panicking");
        // The scheduler survived the panic.
        h.manager.run_now("panicking").unwrap();
        h.wait_idle("panicking").await;
        assert_eq!(h.runs("panicking").await.len(), 2);
        h.stop().await;
    }

    fn counting(id: &str, schedule: Schedule, count: Arc<AtomicUsize>) -> TaskSpec {
        TaskSpec::new(id, id, "", schedule, move || {
            let count = Arc::clone(&count);
            async move { Ok(format!("run {}", count.fetch_add(1, Ordering::SeqCst) + 1)) }
        })
    }

    #[tokio::test]
    async fn pause_stops_scheduled_runs_resume_restarts_them_and_pause_persists() {
        let count = Arc::new(AtomicUsize::new(0));
        let h = harness(vec![counting("tick", every(30), Arc::clone(&count))]).await;
        h.until("two runs", || count.load(Ordering::SeqCst) >= 2).await;
        let paused = h.manager.pause("tick").await.unwrap();
        assert!(paused.paused && paused.next_run.is_none());
        h.wait_idle("tick").await;
        let frozen = count.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(count.load(Ordering::SeqCst), frozen, "a paused task ran");
        // Manual runs still work while paused.
        h.manager.run_now("tick").unwrap();
        h.wait_idle("tick").await;
        assert_eq!(count.load(Ordering::SeqCst), frozen + 1);
        // Paused across a restart (same store).
        let again = TaskManager::launch(
            vec![counting("tick", every(30), Arc::new(AtomicUsize::new(0)))],
            Arc::clone(&h.store),
            h.events.clone(),
            100,
            &h.tracker,
            h.cancel.clone(),
        )
        .await;
        let restored = again.get("tick").unwrap();
        assert!(restored.paused && restored.next_run.is_none());
        assert_eq!(restored.last_result.as_deref(), Some("ok"), "last run restored from the history");
        let resumed = h.manager.resume("tick").await.unwrap();
        assert!(!resumed.paused && resumed.next_run.is_some());
        h.until("runs after resume", || count.load(Ordering::SeqCst) >= frozen + 3).await;
        h.stop().await;
    }

    #[tokio::test]
    async fn one_shot_runs_once_after_its_delay() {
        let count = Arc::new(AtomicUsize::new(0));
        let h = harness(vec![counting("once", Schedule::Once(Duration::from_millis(150)), Arc::clone(&count))]).await;
        let before = h.manager.get("once").unwrap();
        assert_eq!(before.kind, TaskKind::Once);
        assert!(before.next_run.is_some());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(count.load(Ordering::SeqCst), 0, "ran before its delay");
        h.until("the one-shot run", || count.load(Ordering::SeqCst) == 1).await;
        h.wait_idle("once").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(count.load(Ordering::SeqCst), 1, "a one-shot task ran twice");
        let after = h.manager.get("once").unwrap();
        assert!(after.next_run.is_none() && after.last_result.as_deref() == Some("ok"), "{after:?}");
        // Resuming a spent one-shot does not schedule it again.
        h.manager.pause("once").await.unwrap();
        assert!(h.manager.resume("once").await.unwrap().next_run.is_none());
        h.stop().await;
    }

    #[tokio::test]
    async fn cron_with_seconds_fires_each_second() {
        let count = Arc::new(AtomicUsize::new(0));
        let h = harness(vec![counting("cron", Schedule::cron("* * * * * *").unwrap(), Arc::clone(&count))]).await;
        let next = h.manager.get("cron").unwrap().next_run.unwrap();
        assert!(next.ends_with(".000Z"), "cron runs on whole seconds: {next}");
        tokio::time::sleep(Duration::from_millis(2300)).await;
        let n = count.load(Ordering::SeqCst);
        assert!((2..=3).contains(&n), "{n} runs in 2.3 s");
        h.stop().await;
    }

    #[tokio::test]
    async fn shutdown_interrupts_a_run_and_reports_it() {
        let spec = TaskSpec::new("hang", "Hang", "", manual_only(), || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(String::new())
        });
        let h = harness(vec![spec]).await;
        h.manager.run_now("hang").unwrap();
        let (manager, store) = (Arc::clone(&h.manager), Arc::clone(&h.store));
        h.stop().await;
        assert!(!manager.get("hang").unwrap().running);
        let runs = store.list_task_runs("hang", 10).await.unwrap();
        assert_eq!(runs[0].message, "interrupted: the host is shutting down");
        assert_eq!(runs[0].result, "error");
    }
}
