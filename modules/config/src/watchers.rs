//! Parked long polls, by the watch keys they wait on. A release message wakes exactly
//! the polls registered on its key: one `watch` channel per key that someone watches,
//! created by the first poll and dropped with the last, so a parked poll costs its
//! receivers and nothing else; no scan, no batching. A message carries what every
//! answer to it needs from the configuration (the key as its message was written), so
//! the woken polls, thousands at once, do not each read the configuration for it; and a
//! poll leaves without the registry's lock unless it was the last on a key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use futures::FutureExt;
use plugin_api::tokio::sync::watch;

/// A notification id, the watch key in the spelling its message was written with (what
/// the answer's `messages` name), and when this host learnt of it (for the push latency).
#[derive(Debug, Clone)]
pub struct Published {
    pub id: i64,
    pub spelling: Arc<str>,
    pub at: Instant,
    /// The answer the first poll woken by this message wrote, with the namespace name it
    /// echoed: the polls after it that spell the namespace alike send the same bytes.
    pub answer: Arc<OnceLock<(String, Vec<u8>)>>,
}

impl Published {
    fn new(id: i64, spelling: &str) -> Self {
        Self { id, spelling: Arc::from(spelling), at: Instant::now(), answer: Arc::default() }
    }
}

type Sender = Arc<watch::Sender<Published>>;

#[derive(Debug, Default)]
pub struct Watchers {
    keys: Mutex<HashMap<String, Sender>>,
}

/// One poll's registration on its keys; unregisters when dropped.
#[derive(Debug)]
pub struct Watch {
    watchers: Arc<Watchers>,
    receivers: Vec<Registration>,
}

/// A poll on one key: the key's sender is kept to tell, on leaving, whether this poll
/// was its last receiver.
#[derive(Debug)]
struct Registration {
    key: String,
    sender: Sender,
    receiver: watch::Receiver<Published>,
}

impl Watchers {
    /// Registers on `keys` (lowercase watch keys). Messages published from now on wake
    /// the returned watch.
    pub fn watch(self: &Arc<Self>, keys: impl IntoIterator<Item = String>) -> Watch {
        let mut map = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let receivers = keys
            .into_iter()
            .map(|key| {
                // Looked up, not `entry`: that would copy the key even when it is there.
                let sender = match map.get(&key) {
                    Some(sender) => Arc::clone(sender),
                    None => {
                        let sender = Arc::new(watch::Sender::new(Published::new(-1, "")));
                        map.insert(key.clone(), Arc::clone(&sender));
                        sender
                    }
                };
                let receiver = sender.subscribe();
                Registration { key, sender, receiver }
            })
            .collect();
        Watch { watchers: Arc::clone(self), receivers }
    }

    /// A new notification id for a watch key (`spelling`: as its message was written):
    /// wakes every poll registered on it.
    pub fn publish(&self, key: &str, spelling: &str, id: i64) {
        let map = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = map.get(key) {
            sender.send_replace(Published::new(id, spelling));
        }
    }

    /// Keys someone waits on now.
    pub fn watched_keys(&self) -> usize {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Watch {
    /// The first key published after registration (its index among the keys this
    /// watch was registered on, see [`Watch::key`]), and its message. Pending forever
    /// when nothing is watched.
    pub async fn changed(&mut self) -> (usize, Published) {
        // The registration holds the sender, so `changed` returns with a new value.
        match self.receivers.as_mut_slice() {
            [] => futures::future::pending().await,
            // One key, the usual poll (one namespace, no cluster fallback): awaited in
            // place. The select below boxes each wait and collects them: allocations a
            // parked poll holds until the release, then freed on whichever worker wakes
            // it, often not the one that made them (glibc's arena locks, see the README).
            [only] => {
                let _ = only.receiver.changed().await;
                (0, only.receiver.borrow_and_update().clone())
            }
            receivers => {
                let waits = receivers.iter_mut().enumerate().map(|(index, Registration { receiver, .. })| {
                    async move {
                        let _ = receiver.changed().await;
                        (index, receiver.borrow_and_update().clone())
                    }
                    .boxed()
                });
                futures::future::select_all(waits).await.0
            }
        }
    }

    /// The watch key at `index` (as [`Watch::changed`] names it).
    pub fn key(&self, index: usize) -> &str {
        self.receivers.get(index).map_or("", |r| r.key.as_str())
    }
}

impl Drop for Watch {
    /// Removes the keys this poll was the last receiver of. The count is read without
    /// the lock and again under it: a poll registering meanwhile keeps the key.
    fn drop(&mut self) {
        for Registration { key, sender, receiver } in std::mem::take(&mut self.receivers) {
            drop(receiver);
            if sender.receiver_count() > 0 {
                continue;
            }
            let mut map = self.watchers.keys.lock().unwrap_or_else(PoisonError::into_inner);
            if map.get(&key).is_some_and(|current| Arc::ptr_eq(current, &sender) && current.receiver_count() == 0) {
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
            watchers.publish("owner+default+fx", "owner+default+FX", 7);
            let (index, published) = b.changed().await;
            assert_eq!((b.key(index), published.id, &*published.spelling), ("owner+default+fx", 7, "owner+default+FX"));
            assert!(a.changed().now_or_never().is_none(), "a watches another key");
            watchers.publish("app+default+application", "app+default+application", 8);
            let (index, published) = a.changed().await;
            assert_eq!((a.key(index), published.id), ("app+default+application", 8), "a single key wakes too");
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
