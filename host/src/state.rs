//! The shared handles every API handler and background task works with. Cloning is
//! cheap (one `Arc`). Built once by `crate::server::build_state`.

use std::sync::Arc;
use std::time::Instant;

use crate::auth::AuthService;
use crate::config::Config;
use crate::events::EventBus;
use crate::registry::Registry;
use crate::store::Store;
use crate::supervisor::Supervisor;

#[derive(Debug, Clone)]
pub struct AppState(Arc<HostContext>);

#[derive(Debug)]
pub struct HostContext {
    pub config: Config,
    pub registry: Arc<Registry>,
    pub store: Arc<dyn Store>,
    pub auth: Arc<AuthService>,
    pub events: EventBus,
    pub started_at: Instant,
    pub supervisor: Arc<Supervisor>,
    pub modules: Arc<crate::modules::ModuleHost>,
    /// The scheduler of the built-in tasks (`/api/tasks`).
    pub task_manager: Arc<crate::tasks::TaskManager>,
    /// Alarms raised from events and the disk check (`/api/alarms`).
    pub alarms: Arc<crate::alarms::AlarmManager>,
    /// Backups in `app_back_up`: create, list, restore (`/api/backups`).
    pub backups: Arc<crate::backup::BackupManager>,
    /// Containers and images of the engine at `ci.docker_host` (`/api/docker`).
    pub docker: Arc<crate::docker::DockerManager>,
    /// Cancelled when the host shuts down: long-lived responses (log follow) end on it.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Owner of background work started on behalf of requests.
    pub tasks: tokio_util::task::TaskTracker,
    /// Prometheus figures (`GET /metrics`): HTTP, module and store instruments.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The last hour of each service's CPU and RSS (`/api/apps/{name}/history`).
    pub history: Arc<crate::metrics::ServiceHistory>,
    /// Held while the host lives: no second host opens the same store.
    pub data_dir_lock: crate::data_dir::DataDirLock,
}

impl AppState {
    pub fn new(ctx: HostContext) -> Self {
        Self(Arc::new(ctx))
    }
}

impl std::ops::Deref for AppState {
    type Target = HostContext;
    fn deref(&self) -> &HostContext {
        &self.0
    }
}
