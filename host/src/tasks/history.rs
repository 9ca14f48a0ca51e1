//! Where runs are reported: the store's history (trimmed to `tasks.history_keep` per
//! task), `Event::TaskRun` on the bus, and the host log for failures and skips. Also
//! the API's view of one history entry. It decides nothing about when tasks run.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use crate::events::{Event, EventBus};
use crate::store::{Store, StoreResult, TaskRunRecord};

/// One entry of `GET /api/tasks/{id}/history`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskRun {
    pub id: i64,
    pub task: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// RFC 3339: when the run started (for `skipped`: when it was due).
    pub started_at: String,
    pub duration_ms: i64,
    /// `ok`, `error` or `skipped`.
    pub result: String,
    pub message: String,
}

impl From<TaskRunRecord> for TaskRun {
    fn from(r: TaskRunRecord) -> Self {
        Self {
            id: r.id,
            started_at: rfc3339_ms(r.started_at_ms),
            task: r.task,
            trigger: r.trigger,
            duration_ms: r.duration_ms,
            result: r.result,
            message: r.message,
        }
    }
}

pub(super) fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[derive(Debug, Clone)]
pub(super) struct History {
    store: Arc<dyn Store>,
    events: EventBus,
    keep: u64,
}

impl History {
    pub(super) fn new(store: Arc<dyn Store>, events: EventBus, keep: u32) -> Self {
        Self { store, events, keep: u64::from(keep.max(1)) }
    }

    /// Reports a finished or skipped run everywhere. A store failure is logged, never
    /// fatal: the event and the task's last result still carry the run.
    pub(super) async fn record(&self, run: &TaskRunRecord) {
        match run.result.as_str() {
            "ok" => {
                tracing::debug!(task = %run.task, trigger = %run.trigger, duration_ms = run.duration_ms, "task run: {}", run.message)
            }
            "skipped" => tracing::warn!(task = %run.task, "task run skipped: {}", run.message),
            _ => {
                tracing::warn!(task = %run.task, trigger = %run.trigger, duration_ms = run.duration_ms, "task run failed: {}", run.message)
            }
        }
        self.events.publish(Event::TaskRun {
            task: run.task.clone(),
            trigger: run.trigger.clone(),
            result: run.result.clone(),
            message: run.message.clone(),
            duration_ms: u64::try_from(run.duration_ms).unwrap_or(0),
        });
        if let Err(e) = self.store.append_task_run(run).await {
            tracing::error!(task = %run.task, "task run not stored in the history: {e}");
            return;
        }
        if let Err(e) = self.store.trim_task_runs(&run.task, self.keep).await {
            tracing::warn!(task = %run.task, "task history not trimmed: {e}");
        }
    }

    /// Newest first.
    pub(super) async fn list(&self, task: &str, limit: u32) -> StoreResult<Vec<TaskRunRecord>> {
        self.store.list_task_runs(task, limit).await
    }

    pub(super) async fn paused(&self, task: &str) -> bool {
        match self.store.get_setting(&paused_key(task)).await {
            Ok(value) => value.as_deref() == Some("true"),
            Err(e) => {
                tracing::warn!(task, "cannot read whether the task is paused; assuming not: {e}");
                false
            }
        }
    }

    pub(super) async fn set_paused(&self, task: &str, paused: bool) -> StoreResult<()> {
        self.store.put_setting(&paused_key(task), if paused { "true" } else { "false" }).await
    }
}

/// Pausing survives a host restart: it is an operator's decision.
fn paused_key(task: &str) -> String {
    format!("tasks.paused.{task}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn history_keeps_the_newest_runs_per_task() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let history = History::new(store, EventBus::new(), 3);
        for (task, i) in (0..5).map(|i| ("a", i)).chain([("b", 0)]) {
            let run = TaskRunRecord {
                id: 0,
                task: task.into(),
                trigger: "schedule".into(),
                started_at_ms: 1_700_000_000_000 + i,
                duration_ms: 1,
                result: "ok".into(),
                message: format!("run {i}"),
            };
            history.record(&run).await;
        }
        let kept: Vec<String> = history.list("a", 10).await.unwrap().into_iter().map(|r| r.message).collect();
        assert_eq!(kept, ["run 4", "run 3", "run 2"]);
        assert_eq!(history.list("b", 10).await.unwrap().len(), 1, "trimming is per task");
        let view = TaskRun::from(history.list("a", 1).await.unwrap().remove(0));
        assert_eq!(view.started_at, "2023-11-14T22:13:20.004Z");
    }
}
