//! The catalog's in-memory state kept equal to its storage by the SDK's
//! [`plugin_api::replica::Replica`] (load, follow the change feed, commit plans with
//! the versions they read), plus what is the catalog's own: every applied change wakes
//! the blocking queries parked on the topics it moved, and this module instance's claim
//! on its node. Request handlers never touch the store.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::Arc;

use plugin_api::Host;
use plugin_api::replica::{self, Records};
use plugin_api::storage::Storage;

use crate::metrics::Metrics;
use crate::state::State;
use crate::watchers::Watchers;

impl Records for State {
    /// The blocking-query topics the change moved.
    type Effect = HashSet<String>;

    /// The index floor is the storage's head at the load: every parked query re-runs.
    fn fresh(head: u64) -> Self {
        State::with_base(head)
    }

    fn apply(&mut self, key: &str, value: Option<&str>, version: u64, revision: u64) -> HashSet<String> {
        State::apply(self, key, value, version, revision)
    }
}

#[derive(Debug)]
pub struct Replica {
    inner: Arc<replica::Replica<State>>,
    pub watchers: Arc<Watchers>,
    /// This module instance's claim on its node (see [`crate::model::OWNER`]).
    owner_token: String,
}

impl Deref for Replica {
    type Target = replica::Replica<State>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl Replica {
    /// An empty replica; [`Replica::follow_storage`] loads and then follows the storage.
    pub fn new(storage: Storage, metrics: Metrics) -> Arc<Self> {
        let watchers = Arc::new(Watchers::default());
        let wake = Arc::clone(&watchers);
        let inner = replica::Replica::new(storage, "the catalog", move |effects: Vec<(HashSet<String>, u64)>| {
            // A topic moved by several effects wakes its queries once.
            let moved: HashSet<String> = effects.into_iter().flat_map(|(topics, _revision)| topics).collect();
            let woken: usize = moved.iter().map(|topic| wake.publish(topic)).sum();
            if woken > 0 {
                metrics.wakeups.inc_by(woken as u64);
            }
        });
        Arc::new(Self {
            inner: Arc::new(inner),
            watchers,
            owner_token: format!("{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>()),
        })
    }

    /// Loads the storage, then follows its change feed until the module stops: spawn it.
    pub fn follow_storage(&self, host: Host) -> impl std::future::Future<Output = ()> + Send + 'static {
        Arc::clone(&self.inner).run(host)
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
        let mut changed = self.changed();
        while !self.owns(node) {
            plugin_api::tokio::select! {
                _ = changed.changed() => {}
                () = self.stopped() => return,
            }
        }
    }
}
