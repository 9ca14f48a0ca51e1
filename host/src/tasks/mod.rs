//! The task manager: cron (with seconds), interval and one-shot tasks in one scheduler
//! (`scheduler.rs`), the built-in tasks with their schedules from `tasks.*`
//! (`builtin.rs`), run history in the store and `Event::TaskRun` on the bus
//! (`history.rs`).
//!
//! Invariants: two runs of one task never overlap (a run due while the previous one is
//! still going is recorded as `skipped`); every run, failed, panicked, skipped or
//! interrupted by shutdown, leaves a history entry and an event. It knows nothing about
//! HTTP; the set of tasks is fixed when the host starts (no tasks are added at runtime).

pub mod builtin;
mod history;
mod run;
pub mod schedule;
mod scheduler;

pub use history::TaskRun;
pub use schedule::{Schedule, ScheduleError, TaskKind};
pub use scheduler::{TaskInfo, TaskManager};

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::store::StoreError;

/// What a run returns: a one-line summary on success, the error message on failure.
pub type JobResult = Result<String, String>;

/// The work of a task: called once per run, each call a fresh future.
pub type Job = Arc<dyn Fn() -> BoxFuture<'static, JobResult> + Send + Sync>;

/// A task as registered with the scheduler.
#[derive(Clone)]
pub struct TaskSpec {
    /// Stable id used in the API and the store, e.g. `reload-models`.
    pub id: String,
    pub name: String,
    /// What it does, and what it deliberately does not.
    pub description: String,
    pub schedule: Schedule,
    pub job: Job,
}

impl std::fmt::Debug for TaskSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskSpec").field("id", &self.id).field("schedule", &self.schedule.describe()).finish()
    }
}

impl TaskSpec {
    pub fn new<F, Fut>(id: &str, name: &str, description: &str, schedule: Schedule, job: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = JobResult> + Send + 'static,
    {
        Self {
            id: id.to_string(),
            name: name.to_string(),
            description: description.to_string(),
            schedule,
            job: Arc::new(move || Box::pin(job())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("no task {0:?}; GET /api/tasks lists them (a task disabled in tasks.* is not there)")]
    NotFound(String),
    #[error("task {id:?} is already running (since {since}); wait for it to finish")]
    AlreadyRunning { id: String, since: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}
