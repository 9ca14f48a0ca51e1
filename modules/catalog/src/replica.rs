//! Keeps [`State`] equal to the module's storage: loads it all at start, applies this
//! host's commits as they succeed, and follows the storage change feed for the rest
//! (other hosts on a shared MongoDB; SQLite wakes the feed in-process). Every applied
//! change wakes the blocking queries parked on the topics it moved. Writers go through
//! [`Replica::transact`]: a plan computed from the state, committed with the versions
//! it read, retried on a concurrent change. Request handlers never touch the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use plugin_api::storage::{ErrorCode, Storage, StorageError, Write};
use plugin_api::tokio::sync::{Mutex, watch};
use plugin_api::{Host, ModuleError};

use crate::metrics::Metrics;
use crate::state::State;
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
    metrics: Metrics,
    /// Every change up to this revision is applied.
    head: AtomicU64,
    /// One local writer at a time: plans from one host never race each other.
    writer: Mutex<()>,
    /// True once the first load is done.
    loaded: watch::Sender<bool>,
    /// Bumped after every applied batch: the check runner and the reaper reconcile on it.
    pub changed: watch::Sender<u64>,
    /// Set by the module's `shutdown`: every background loop of the module ends on it.
    stop: watch::Sender<bool>,
    /// This module instance's claim on its node (see [`crate::model::OWNER`]).
    owner_token: String,
}

impl Replica {
    /// An empty replica; [`Replica::run`] loads and then follows the storage.
    pub fn new(storage: Storage, metrics: Metrics) -> Arc<Self> {
        Arc::new(Self {
            storage,
            state: RwLock::new(State::default()),
            watchers: Arc::new(Watchers::default()),
            metrics,
            head: AtomicU64::new(0),
            writer: Mutex::new(()),
            loaded: watch::Sender::new(false),
            changed: watch::Sender::new(0),
            stop: watch::Sender::new(false),
            owner_token: format!("{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>()),
        })
    }

    pub fn owner_token(&self) -> &str {
        &self.owner_token
    }

    /// Whether this instance runs `node`'s heartbeat, checks and host services: it
    /// claimed the node and nobody claimed it since.
    pub fn owns(&self, node: &str) -> bool {
        self.read().owners.get(node).is_some_and(|t| *t == self.owner_token)
    }

    /// Resolves once this instance owns `node` (or the module stops).
    pub async fn owned(&self, node: &str) {
        let mut changed = self.changed.subscribe();
        while !self.owns(node) {
            plugin_api::tokio::select! {
                _ = changed.changed() => {}
                () = self.stopped() => return,
            }
        }
    }

    /// Ends every background loop (the module is being unloaded).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once [`Replica::stop`] was called.
    pub async fn stopped(&self) {
        let mut stop = self.stop.subscribe();
        let _ = stop.wait_for(|stopped| *stopped).await;
    }

    /// Waits (up to [`LOAD_WAIT`]) until the first load is done: requests are answered
    /// from a complete replica or not at all.
    pub async fn wait_loaded(&self) -> Result<(), ModuleError> {
        let mut loaded = self.loaded.subscribe();
        match plugin_api::tokio::time::timeout(LOAD_WAIT, loaded.wait_for(|done| *done)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ModuleError::unavailable("the catalog is still loading from the host's store; retry shortly")),
        }
    }

    /// Loads everything the module stored (retrying while the store is away), then
    /// follows the change feed until the module stops.
    pub async fn run(self: Arc<Self>, host: Host) {
        let mut attempts = 0_u32;
        while let Err(e) = self.reload().await {
            attempts += 1;
            if attempts == 1 {
                host.warn(&format!("catalog: cannot read the module's storage ({e}); retrying every second"));
            }
            plugin_api::tokio::time::sleep(FEED_RETRY).await;
        }
        self.loaded.send_replace(true);
        self.follow(host).await;
    }

    /// Replaces the state with the storage's (at start, and when the feed was compacted
    /// past our position). Every parked query re-runs: the index floor moved.
    async fn reload(&self) -> Result<(), StorageError> {
        let head = self.storage.head().await?;
        let mut fresh = State::with_base(head);
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
        *self.write() = fresh;
        self.head.store(head, Ordering::SeqCst);
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Local-only changes (check outputs that are not synced); never storage records.
    pub fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The feed position this replica has applied up to.
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::SeqCst)
    }

    fn apply(&self, changes: impl IntoIterator<Item = (String, Option<String>, u64, u64)>) {
        let mut moved = std::collections::HashMap::new();
        {
            let mut state = self.write();
            for (key, value, version, revision) in changes {
                for topic in state.apply(&key, value.as_deref(), version, revision) {
                    moved.insert(topic, revision);
                }
            }
        }
        // After the state is updated: a woken query re-reads it.
        let mut woken = 0;
        for (topic, index) in moved {
            woken += self.watchers.publish(&topic, index);
        }
        if woken > 0 {
            self.metrics.wakeups.inc_by(woken as u64);
        }
        self.changed.send_modify(|n| *n += 1);
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

    /// Follows the change feed until the module stops.
    async fn follow(self: Arc<Self>, host: Host) {
        let mut failing = false;
        loop {
            let pulled = plugin_api::tokio::select! {
                pulled = self.pull(FEED_WAIT) => pulled,
                () = self.stopped() => return,
            };
            match pulled {
                Ok(_) => failing = false,
                Err(e) if e.code == ErrorCode::Compacted => {
                    host.warn("catalog: the change feed moved past this host's position; reloading everything");
                    if let Err(e) = self.reload().await {
                        host.error(&format!("catalog: reload failed: {e}"));
                        plugin_api::tokio::time::sleep(FEED_RETRY).await;
                    }
                }
                Err(e) => {
                    if !failing {
                        host.warn(&format!("catalog: the change feed failed ({e}); retrying every second"));
                        failing = true;
                    }
                    plugin_api::tokio::time::sleep(FEED_RETRY).await;
                }
            }
        }
    }

    /// Commits the writes `plan` makes from the current state (with the versions it
    /// read); on a concurrent change (another host moved a version) catches up and
    /// plans again. A plan with no writes commits nothing.
    pub async fn transact<T>(
        &self,
        plan: impl Fn(&State) -> Result<(Vec<Write>, T), ModuleError>,
    ) -> Result<T, ModuleError> {
        let _writer = self.writer.lock().await;
        for attempt in 1..=TRANSACT_ATTEMPTS {
            let (writes, outcome) = plan(&self.read())?;
            if writes.is_empty() {
                return Ok(outcome);
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
