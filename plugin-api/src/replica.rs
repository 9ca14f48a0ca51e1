//! A module's storage as an in-memory state kept equal to it: [`Replica`] loads every
//! record at start, applies this host's commits as they succeed, and follows the
//! storage change feed for the rest (other hosts on a shared MongoDB; SQLite wakes the
//! feed in-process). Writers go through [`Replica::transact`]: a plan computed from the
//! state, committed with the versions it read, planned again after a concurrent change.
//! Request handlers read the state and never touch the store.
//!
//! The module supplies the state ([`Records`]: how one stored change moves it, and
//! what that change means — the topics or keys whose watchers must wake) and a
//! callback that gets those effects after each applied batch, once the state shows it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{Mutex, watch};

use crate::storage::{ErrorCode, MAX_LIST_LIMIT, Storage, StorageError, Write};
use crate::{HandlerResult, Host, ModuleError, Request};

/// How long one feed call waits for a change before asking again.
const FEED_WAIT: Duration = Duration::from_secs(60);
/// Pause after a failed feed call (the database is away).
const FEED_RETRY: Duration = Duration::from_secs(1);
/// How long a request waits for the first load before its 503.
const LOAD_WAIT: Duration = Duration::from_secs(10);
/// Attempts of a write plan that keeps meeting concurrent changes.
const TRANSACT_ATTEMPTS: usize = 5;

/// The module's records in memory.
pub trait Records: Send + Sync + 'static {
    /// What one applied change means to the module (e.g. the topics it moved).
    type Effect: Send;

    /// An empty state for a full load of the storage as of revision `head`.
    fn fresh(head: u64) -> Self;

    /// Applies one stored change: `value` None is a deletion.
    fn apply(&mut self, key: &str, value: Option<&str>, version: u64, revision: u64) -> Self::Effect;
}

/// A module that serves from a [`Replica`]: [`loaded`] makes its handlers wait for the
/// first load.
pub trait Replicated: Send + Sync + 'static {
    type Records: Records;

    fn replica(&self) -> &Replica<Self::Records>;
}

/// Binds `handler` so it runs once the module's replica is loaded (a 503 saying it is
/// still loading after 10 s): requests are answered from a complete state or not at all.
pub fn loaded<M, F, Fut>(
    handler: F,
) -> impl Fn(Arc<M>, Request) -> BoxFuture<'static, HandlerResult> + Send + Sync + 'static
where
    M: Replicated,
    F: Fn(Arc<M>, Request) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    move |module, req| {
        // Loaded (all but the first moments): the handler's own future alone. A wrapper
        // future would keep a second slot the size of the request for as long as the
        // handler runs, a minute for a long poll.
        if module.replica().is_loaded() {
            return handler(module, req).boxed();
        }
        async move {
            module.replica().wait_loaded().await?;
            handler(module, req).await
        }
        .boxed()
    }
}

/// Called after each applied batch with every change's effect and revision.
type OnApplied<E> = Box<dyn Fn(Vec<(E, u64)>) + Send + Sync>;

pub struct Replica<S: Records> {
    storage: Storage,
    state: RwLock<S>,
    on_applied: OnApplied<S::Effect>,
    /// What the module calls itself in messages ("the catalog").
    what: &'static str,
    /// Every change up to this revision is applied.
    head: AtomicU64,
    /// One local writer at a time: plans from one host never race each other.
    writer: Mutex<()>,
    /// True once the first load is done.
    loaded: watch::Sender<bool>,
    /// Bumped after every applied batch and every reload.
    changed: watch::Sender<u64>,
    /// Set by [`Replica::stop`]: the feed stops being followed.
    stop: watch::Sender<bool>,
}

impl<S: Records> std::fmt::Debug for Replica<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").field("what", &self.what).field("head", &self.head()).finish_non_exhaustive()
    }
}

impl<S: Records> Replica<S> {
    /// An empty replica; [`Replica::run`] loads and then follows the storage. `what`
    /// names the module in messages; `on_applied` wakes whatever waits on the effects.
    pub fn new(
        storage: Storage,
        what: &'static str,
        on_applied: impl Fn(Vec<(S::Effect, u64)>) + Send + Sync + 'static,
    ) -> Self {
        Self {
            storage,
            state: RwLock::new(S::fresh(0)),
            on_applied: Box::new(on_applied),
            what,
            head: AtomicU64::new(0),
            writer: Mutex::new(()),
            loaded: watch::Sender::new(false),
            changed: watch::Sender::new(0),
            stop: watch::Sender::new(false),
        }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn read(&self) -> RwLockReadGuard<'_, S> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// For local-only parts of the state (never stored records: those change through
    /// [`Replica::transact`] or the feed).
    pub fn write(&self) -> RwLockWriteGuard<'_, S> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The feed position this replica has applied up to.
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::SeqCst)
    }

    /// Moves after every applied batch and every reload.
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Waits (up to 10 s) until the first load is done: requests are answered from a
    /// complete replica or get a 503 saying it is still loading.
    pub async fn wait_loaded(&self) -> Result<(), ModuleError> {
        let mut loaded = self.loaded.subscribe();
        match tokio::time::timeout(LOAD_WAIT, loaded.wait_for(|done| *done)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ModuleError::unavailable(format!(
                "{} is still loading from the host's store; retry shortly",
                self.what
            ))),
        }
    }

    /// Whether the first load is done (then [`Replica::wait_loaded`] answers at once).
    pub fn is_loaded(&self) -> bool {
        *self.loaded.borrow()
    }

    /// Ends [`Replica::run`] (the module is being unloaded).
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

    /// Loads everything the module stored (retrying while the store is away), then
    /// follows the change feed until [`Replica::stop`] or until only this task holds
    /// the replica.
    pub async fn run(self: Arc<Self>, host: Host) {
        let mut attempts = 0_u32;
        while let Err(e) = self.reload().await {
            attempts += 1;
            if attempts == 1 {
                host.warn(&format!("{}: cannot read the module's storage ({e}); retrying every second", self.what));
            }
            tokio::time::sleep(FEED_RETRY).await;
        }
        self.loaded.send_replace(true);
        self.follow(host).await;
    }

    /// Replaces the state with the storage's (at start, and when the feed was compacted
    /// past our position).
    async fn reload(&self) -> Result<(), StorageError> {
        let head = self.storage.head().await?;
        let mut fresh = S::fresh(head);
        let mut after: Option<String> = None;
        loop {
            let page = self.storage.list("", after.as_deref(), MAX_LIST_LIMIT).await?;
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

    fn apply(&self, changes: impl IntoIterator<Item = (String, Option<String>, u64, u64)>) {
        let effects: Vec<(S::Effect, u64)> = {
            let mut state = self.write();
            changes
                .into_iter()
                .map(|(key, value, version, revision)| {
                    (state.apply(&key, value.as_deref(), version, revision), revision)
                })
                .collect()
        };
        // After the state is updated: whoever wakes re-reads it.
        (self.on_applied)(effects);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Applies the feed after our position; `wait` long for the first change.
    async fn pull(&self, wait: Duration) -> Result<usize, StorageError> {
        let answer = self.storage.changes(None, self.head(), wait).await?;
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

    async fn follow(self: Arc<Self>, host: Host) {
        let mut failing = false;
        loop {
            let pulled = tokio::select! {
                pulled = self.pull(FEED_WAIT) => pulled,
                () = self.stopped() => return,
            };
            match pulled {
                Ok(_) => failing = false,
                Err(e) if e.code == ErrorCode::Compacted => {
                    host.warn(&format!(
                        "{}: the change feed moved past this host's position; reloading everything",
                        self.what
                    ));
                    if let Err(e) = self.reload().await {
                        host.error(&format!("{}: reload failed: {e}", self.what));
                        tokio::time::sleep(FEED_RETRY).await;
                    }
                }
                Err(e) => {
                    if !failing {
                        host.warn(&format!("{}: the change feed failed ({e}); retrying every second", self.what));
                        failing = true;
                    }
                    tokio::time::sleep(FEED_RETRY).await;
                }
            }
            if Arc::strong_count(&self) == 1 {
                return;
            }
        }
    }

    /// Commits the writes `plan` makes from the current state (with the versions it
    /// read) and applies them; on a concurrent change (another host moved a version)
    /// catches up and plans again. A plan with no writes commits nothing.
    pub async fn transact<T>(
        &self,
        plan: impl Fn(&S) -> Result<(Vec<Write>, T), ModuleError>,
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex as StdMutex;

    use super::*;
    use crate::testing::TestHost;

    /// Key → (value, version); each change's effect is its key.
    #[derive(Default)]
    struct Kv(BTreeMap<String, (String, u64)>);

    impl Records for Kv {
        type Effect = String;

        fn fresh(_head: u64) -> Self {
            Kv::default()
        }

        fn apply(&mut self, key: &str, value: Option<&str>, version: u64, _revision: u64) -> String {
            match value {
                Some(v) => self.0.insert(key.to_owned(), (v.to_owned(), version)),
                None => self.0.remove(key),
            };
            key.to_owned()
        }
    }

    fn replica(host: &TestHost, woken: &Arc<StdMutex<Vec<String>>>) -> Arc<Replica<Kv>> {
        let woken = Arc::clone(woken);
        Arc::new(Replica::new(host.host().storage(), "the test module", move |effects| {
            woken.lock().unwrap().extend(effects.into_iter().map(|(key, _)| key));
        }))
    }

    #[tokio::test]
    async fn loads_follows_and_commits_with_the_versions_it_read() {
        let test_host = TestHost::new();
        let storage = test_host.host().storage();
        storage.put("a", "1").await.unwrap();
        let woken = Arc::new(StdMutex::new(Vec::new()));
        let ours = replica(&test_host, &woken);
        tokio::spawn(Arc::clone(&ours).run(test_host.host()));
        ours.wait_loaded().await.unwrap();
        assert_eq!(ours.read().0["a"].0, "1", "loaded");

        // Another writer (another host, on a shared database) changes a key: the feed
        // brings it, and the callback hears of it after the state shows it.
        storage.put("b", "2").await.unwrap();
        let mut changed = ours.changed();
        while !ours.read().0.contains_key("b") {
            tokio::time::timeout(Duration::from_secs(5), changed.changed()).await.unwrap().unwrap();
        }
        assert!(woken.lock().unwrap().contains(&"b".to_owned()));

        // A plan computed on a stale version meets a conflict, catches up, plans again.
        let version = ours.read().0["a"].1;
        storage.put("a", "other host").await.unwrap();
        let planned = std::sync::atomic::AtomicUsize::new(0);
        let outcome = ours
            .transact(|state| {
                let seen = if planned.fetch_add(1, Ordering::SeqCst) == 0 { version } else { state.0["a"].1 };
                Ok((vec![Write::put("a", "ours").expect_version(seen)], "done"))
            })
            .await
            .unwrap();
        assert_eq!(outcome, "done");
        assert_eq!(planned.load(Ordering::SeqCst), 2, "planned again after the conflict");
        assert_eq!(ours.read().0["a"].0, "ours", "our commit is applied at once");
        ours.stop();
    }

    #[tokio::test]
    async fn a_plan_without_writes_commits_nothing() {
        let test_host = TestHost::new();
        let woken = Arc::new(StdMutex::new(Vec::new()));
        let ours = replica(&test_host, &woken);
        tokio::spawn(Arc::clone(&ours).run(test_host.host()));
        ours.wait_loaded().await.unwrap();
        let head = ours.head();
        assert_eq!(ours.transact(|_| Ok((Vec::new(), 7))).await.unwrap(), 7);
        assert_eq!(ours.storage().head().await.unwrap(), head);
        ours.stop();
    }
}
