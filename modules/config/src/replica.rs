//! Keeps [`State`] equal to the module's storage: loads it all at start, applies this
//! host's commits as they succeed, and follows the storage change feed for the rest
//! (other hosts on a shared MongoDB; SQLite wakes the feed in-process). Every applied
//! release message wakes the polls watching its key. Writers go through
//! [`Replica::transact`]: a plan computed from the state, committed with the versions it
//! read, retried on a concurrent change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use plugin_api::storage::{ErrorCode, Storage, StorageError, Write};
use plugin_api::tokio::sync::{Mutex, watch};
use plugin_api::{Host, ModuleError};

use crate::model::{self, AuditRecord};
use crate::state::{Applied, State};
use crate::watchers::Watchers;

/// How long one feed call waits for a change before asking again.
const FEED_WAIT: Duration = Duration::from_secs(60);
/// Pause after a failed feed call (the database is away).
const FEED_RETRY: Duration = Duration::from_secs(1);
/// How long a request waits for the first load before its 503.
const LOAD_WAIT: Duration = Duration::from_secs(10);
/// Attempts of a write plan that keeps meeting concurrent changes.
const TRANSACT_ATTEMPTS: usize = 5;

#[derive(Debug)]
pub struct Replica {
    storage: Storage,
    state: RwLock<State>,
    pub watchers: Arc<Watchers>,
    /// Every change up to this revision is applied.
    head: AtomicU64,
    /// One local writer at a time: plans from one host never race each other.
    writer: Mutex<()>,
    /// True once the first load is done.
    loaded: watch::Sender<bool>,
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
    /// An empty replica; [`Replica::run`] loads and then follows the storage.
    pub fn new(storage: Storage) -> Arc<Self> {
        Arc::new(Self {
            storage,
            state: RwLock::new(State::default()),
            watchers: Arc::new(Watchers::default()),
            head: AtomicU64::new(0),
            writer: Mutex::new(()),
            loaded: watch::Sender::new(false),
        })
    }

    /// Waits (up to [`LOAD_WAIT`]) until the first load is done: requests are answered
    /// from a complete replica or not at all.
    pub async fn wait_loaded(&self) -> Result<(), ModuleError> {
        let mut loaded = self.loaded.subscribe();
        match plugin_api::tokio::time::timeout(LOAD_WAIT, loaded.wait_for(|done| *done)).await {
            Ok(Ok(_)) => Ok(()),
            _ => {
                Err(ModuleError::unavailable("the configuration is still loading from the host's store; retry shortly"))
            }
        }
    }

    /// Loads everything the module stored (retrying while the store is away), then
    /// follows the change feed until the module's runtime stops.
    pub async fn run(self: Arc<Self>, host: Host) {
        let mut attempts = 0_u32;
        while let Err(e) = self.reload().await {
            attempts += 1;
            if attempts == 1 {
                host.warn(&format!("config: cannot read the module's storage ({e}); retrying every second"));
            }
            plugin_api::tokio::time::sleep(FEED_RETRY).await;
        }
        self.loaded.send_replace(true);
        self.follow(host).await;
    }

    /// Replaces the state with the storage's (at start, and when the feed was compacted
    /// past our position).
    async fn reload(&self) -> Result<(), StorageError> {
        let head = self.storage.head().await?;
        let mut fresh = State::default();
        let mut after: Option<String> = None;
        loop {
            let page = self.storage.list("", after.as_deref(), plugin_api::storage::MAX_LIST_LIMIT).await?;
            for entry in &page.entries {
                fresh.apply(&entry.key, Some(&entry.value), entry.version, entry.revision);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        self.head.store(head, Ordering::SeqCst);
        Ok(())
    }

    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The feed position this replica has applied up to.
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::SeqCst)
    }

    fn apply(&self, changes: impl IntoIterator<Item = (String, Option<String>, u64, u64)>) {
        let mut woken = Vec::new();
        {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            for (key, value, version, revision) in changes {
                if let Applied::Message { watch_key, id } = state.apply(&key, value.as_deref(), version, revision) {
                    woken.push((watch_key, id));
                }
            }
        }
        // After the state is updated: a woken poll's client fetches the new release.
        for (key, id) in woken {
            self.watchers.publish(&key, id);
        }
    }

    /// Applies the feed after our position; `wait` long for the first change.
    async fn pull(&self, wait: Duration) -> Result<usize, StorageError> {
        let since = self.head();
        let answer = self.storage.changes(None, since, wait).await?;
        let count = answer.changes.len();
        self.apply(answer.changes.into_iter().map(|c| (c.key, c.value, c.version, c.revision)));
        self.head.fetch_max(answer.head, Ordering::SeqCst);
        Ok(count)
    }

    /// Applies everything committed so far (by any host).
    pub async fn catch_up(&self) -> Result<(), StorageError> {
        while self.pull(Duration::ZERO).await? > 0 {}
        Ok(())
    }

    /// Follows the change feed until the module is dropped (the replica with it).
    async fn follow(self: Arc<Self>, host: Host) {
        let mut failing = false;
        loop {
            match self.pull(FEED_WAIT).await {
                Ok(_) => failing = false,
                Err(e) if e.code == ErrorCode::Compacted => {
                    host.warn("config: the change feed moved past this host's position; reloading everything");
                    if let Err(e) = self.reload().await {
                        host.error(&format!("config: reload failed: {e}"));
                        plugin_api::tokio::time::sleep(FEED_RETRY).await;
                    }
                }
                Err(e) => {
                    if !failing {
                        host.warn(&format!("config: the change feed failed ({e}); retrying every second"));
                        failing = true;
                    }
                    plugin_api::tokio::time::sleep(FEED_RETRY).await;
                }
            }
            if Arc::strong_count(&self) == 1 {
                return;
            }
        }
    }

    /// Commits the plan `plan` makes from the current state; on a concurrent change
    /// (another host, the versions moved) catches up and plans again.
    pub async fn transact<T>(&self, plan: impl Fn(&State) -> Result<Plan<T>, ModuleError>) -> Result<T, ModuleError> {
        let _writer = self.writer.lock().await;
        for attempt in 1..=TRANSACT_ATTEMPTS {
            let Plan { mut writes, audit, outcome } = plan(&self.read())?;
            if let Some(record) = &audit {
                // Newest first in key order: the audit route lists from the start.
                let key = format!("{}{:019}-{:016x}", model::AUDIT, i64::MAX - record.time_ms, rand::random::<u64>());
                writes.push(Write::put(key, serde_json::to_string(record)?).expect_version(0));
            }
            match self.storage.commit(writes.clone()).await {
                Ok(committed) => {
                    self.apply(
                        writes
                            .into_iter()
                            .zip(committed.versions)
                            .map(|(write, version)| (write.key, write.value, version, committed.revision)),
                    );
                    return Ok(outcome);
                }
                Err(e) if e.is_conflict() && attempt < TRANSACT_ATTEMPTS => self.catch_up().await?,
                Err(e) if e.is_conflict() => {
                    return Err(ModuleError::conflict(format!("{}: changed concurrently, try again", e.message)));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ModuleError::conflict("changed concurrently, try again"))
    }
}
