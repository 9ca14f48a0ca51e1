//! The configuration's in-memory state kept equal to the module's storage by the SDK's
//! [`plugin_api::replica::Replica`] (load, follow the change feed, commit plans with the
//! versions they read), plus what is this module's own: every applied release message
//! wakes the polls watching its key, and every write plan may leave an audit line in
//! the same commit.

use std::ops::Deref;
use std::sync::Arc;

use plugin_api::replica::{self, Records};
use plugin_api::storage::{Storage, Write};
use plugin_api::{Host, ModuleError};

use crate::model::{self, AuditRecord};
use crate::state::{Applied, State};
use crate::watchers::Watchers;

impl Records for State {
    /// A release message to wake polls on, or nothing.
    type Effect = Applied;

    fn fresh(_head: u64) -> Self {
        State::default()
    }

    fn apply(&mut self, key: &str, value: Option<&str>, version: u64, revision: u64) -> Applied {
        State::apply(self, key, value, version, revision)
    }
}

#[derive(Debug)]
pub struct Replica {
    inner: Arc<replica::Replica<State>>,
    pub watchers: Arc<Watchers>,
}

impl Deref for Replica {
    type Target = replica::Replica<State>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

/// What a write plan commits, the audit line it leaves, and what it returns.
#[derive(Debug)]
pub struct Plan<T> {
    pub writes: Vec<Write>,
    pub audit: Option<AuditRecord>,
    pub outcome: T,
}

impl<T> Plan<T> {
    pub fn new(writes: Vec<Write>, outcome: T) -> Self {
        Self { writes, audit: None, outcome }
    }

    pub fn audited(mut self, actor: &str, action: &str, target: impl Into<String>, detail: impl Into<String>) -> Self {
        self.audit = Some(AuditRecord {
            time_ms: now_ms(),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            detail: detail.into(),
        });
        self
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Replica {
    /// An empty replica; [`Replica::follow_storage`] loads and then follows the storage.
    pub fn new(storage: Storage) -> Arc<Self> {
        let watchers = Arc::new(Watchers::default());
        let wake = Arc::clone(&watchers);
        let inner = replica::Replica::new(storage, "the configuration", move |effects: Vec<(Applied, u64)>| {
            for (applied, _) in effects {
                if let Applied::Message { watch_key, spelling, id } = applied {
                    wake.publish(&watch_key, &spelling, id);
                }
            }
        });
        Arc::new(Self { inner: Arc::new(inner), watchers })
    }

    /// Loads the storage, then follows its change feed until the module is dropped:
    /// spawn it.
    pub fn follow_storage(&self, host: Host) -> impl std::future::Future<Output = ()> + Send + 'static {
        Arc::clone(&self.inner).run(host)
    }

    /// Commits the plan `plan` makes from the current state, with its audit line; on a
    /// concurrent change (another host, the versions moved) catches up and plans again.
    pub async fn transact<T>(&self, plan: impl Fn(&State) -> Result<Plan<T>, ModuleError>) -> Result<T, ModuleError> {
        self.inner
            .transact(|state| {
                let Plan { mut writes, audit, outcome } = plan(state)?;
                if let Some(record) = &audit {
                    // Newest first in key order: the audit route lists from the start.
                    let key =
                        format!("{}{:019}-{:016x}", model::AUDIT, i64::MAX - record.time_ms, rand::random::<u64>());
                    writes.push(Write::put(key, serde_json::to_string(record)?).expect_version(0));
                }
                Ok((writes, outcome))
            })
            .await
    }
}
