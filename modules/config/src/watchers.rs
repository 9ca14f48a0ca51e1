//! Parked long polls, by the watch keys they wait on. A release message wakes exactly
//! the polls registered on its key: one `watch` channel per key that someone watches,
//! created by the first poll and dropped with the last, so a parked poll costs its
//! receivers and nothing else; no scan, no batching.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures::FutureExt;
use plugin_api::tokio::sync::watch;

/// A notification id and when this host learnt of it (for the push latency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub id: i64,
    pub at: Instant,
}

#[derive(Debug, Default)]
pub struct Watchers {
    keys: Mutex<HashMap<String, watch::Sender<Published>>>,
}

/// One poll's registration on its keys; unregisters when dropped.
#[derive(Debug)]
pub struct Watch {
    watchers: Arc<Watchers>,
    receivers: Vec<(String, watch::Receiver<Published>)>,
}

impl Watchers {
    /// Registers on `keys` (lowercase watch keys). Messages published from now on wake
    /// the returned watch.
    pub fn watch(self: &Arc<Self>, keys: impl IntoIterator<Item = String>) -> Watch {
        let mut map = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let receivers = keys
            .into_iter()
            .map(|key| {
                let receiver = map
                    .entry(key.clone())
                    .or_insert_with(|| watch::Sender::new(Published { id: -1, at: Instant::now() }))
                    .subscribe();
                (key, receiver)
            })
            .collect();
        Watch { watchers: Arc::clone(self), receivers }
    }

    /// A new notification id for a watch key: wakes every poll registered on it.
    pub fn publish(&self, key: &str, id: i64) {
        let map = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = map.get(key) {
            sender.send_replace(Published { id, at: Instant::now() });
        }
    }

    /// Keys someone waits on now.
    pub fn watched_keys(&self) -> usize {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Watch {
    /// The first key published after registration, and its id. Pending forever when
    /// nothing is watched.
    pub async fn changed(&mut self) -> (String, Published) {
        if self.receivers.is_empty() {
            return futures::future::pending().await;
        }
        let waits = self.receivers.iter_mut().map(|(key, receiver)| {
            async move {
                // A sender is only dropped after its last receiver, so this returns
                // with a new value.
                let _ = receiver.changed().await;
                (key.clone(), *receiver.borrow_and_update())
            }
            .boxed()
        });
        futures::future::select_all(waits).await.0
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let keys: Vec<String> = std::mem::take(&mut self.receivers).into_iter().map(|(key, _receiver)| key).collect();
        let mut map = self.watchers.keys.lock().unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            if map.get(&key).is_some_and(|sender| sender.receiver_count() == 0) {
                map.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_wakes_the_polls_on_that_key_only() {
        plugin_api::testing::run(async {
            let watchers = Arc::new(Watchers::default());
            let mut a = watchers.watch(["app+default+application".to_string()]);
            let mut b = watchers.watch(["app+default+other".to_string(), "owner+default+fx".to_string()]);
            watchers.publish("owner+default+fx", 7);
            let (key, published) = b.changed().await;
            assert_eq!((key.as_str(), published.id), ("owner+default+fx", 7));
            assert!(a.changed().now_or_never().is_none(), "a watches another key");
            drop((a, b));
            assert_eq!(watchers.watched_keys(), 0, "the last watch removes its keys");
        })
    }

    #[test]
    fn keys_watched_by_two_polls_stay_until_both_leave() {
        let watchers = Arc::new(Watchers::default());
        let a = watchers.watch(["k".to_string()]);
        let b = watchers.watch(["k".to_string()]);
        drop(a);
        assert_eq!(watchers.watched_keys(), 1);
        drop(b);
        assert_eq!(watchers.watched_keys(), 0);
    }
}
