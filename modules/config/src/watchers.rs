//! Parked long polls, by the watch keys they wait on. A release message wakes exactly
//! the polls registered on its key: one `watch` channel per key that someone watches,
//! created by the first poll and dropped with the last, so a parked poll costs its
//! receivers and nothing else; no scan, no batching. A message carries what every
//! answer to it needs from the configuration (the key as its message was written), so
//! the woken polls, thousands at once, do not each read the configuration for it; and a
//! poll leaves without the registry's lock unless it was the last on a key.
//!
//! The usual poll (one key) holds no allocation of its own here: its registration sits
//! inline and names its key through the channel, which keeps it. Whatever a poll holds
//! is freed on whichever worker wakes it, often not the one that parked it, and glibc
//! takes an arena lock for such frees once the thread's cache is full: at 10 000 polls
//! woken at once, each block a parked poll holds is 10 000 of those.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use futures::FutureExt;
use plugin_api::tokio::sync::watch;
use smallvec::SmallVec;

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

/// One watched key's channel. It keeps its key, so a registration names the key
/// without a copy of its own.
#[derive(Debug)]
struct Channel {
    key: String,
    sender: watch::Sender<Published>,
}

#[derive(Debug, Default)]
pub struct Watchers {
    keys: Mutex<HashMap<String, Arc<Channel>>>,
}

/// One poll's registration on its keys; unregisters when dropped.
#[derive(Debug)]
pub struct Watch {
    watchers: Arc<Watchers>,
    receivers: SmallVec<[Registration; 1]>,
}

/// A poll on one key, tagged with what the poll registered it for (its namespace). The
/// channel is kept to tell, on leaving, whether this poll was its last receiver.
#[derive(Debug)]
struct Registration {
    tag: usize,
    channel: Arc<Channel>,
    receiver: watch::Receiver<Published>,
}

impl Watchers {
    /// Registers on `keys` (lowercase watch keys, each with the caller's tag). Messages
    /// published from now on wake the returned watch.
    pub fn watch<'k>(self: &Arc<Self>, keys: impl IntoIterator<Item = (usize, &'k str)>) -> Watch {
        let mut map = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let receivers = keys
            .into_iter()
            .map(|(tag, key)| {
                let channel = match map.get(key) {
                    Some(channel) => Arc::clone(channel),
                    None => {
                        let channel = Arc::new(Channel {
                            key: key.to_string(),
                            sender: watch::Sender::new(Published::new(-1, "")),
                        });
                        map.insert(key.to_string(), Arc::clone(&channel));
                        channel
                    }
                };
                let receiver = channel.sender.subscribe();
                Registration { tag, channel, receiver }
            })
            .collect();
        Watch { watchers: Arc::clone(self), receivers }
    }

    /// A new notification id for a watch key (`spelling`: as its message was written):
    /// wakes every poll registered on it.
    pub fn publish(&self, key: &str, spelling: &str, id: i64) {
        let map = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = map.get(key) {
            channel.sender.send_replace(Published::new(id, spelling));
        }
    }

    /// Keys someone waits on now.
    pub fn watched_keys(&self) -> usize {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Watch {
    /// The first key published after registration (the tag it was registered with, and
    /// its message). Pending forever when nothing is watched.
    pub async fn changed(&mut self) -> (usize, Published) {
        // The registration holds the sender, so `changed` returns with a new value.
        match self.receivers.as_mut_slice() {
            [] => futures::future::pending().await,
            // One key, the usual poll (one namespace, no cluster fallback): awaited in
            // place. The select below boxes each wait and collects them: allocations a
            // parked poll holds until the release (see the file's documentation).
            [only] => {
                let _ = only.receiver.changed().await;
                (only.tag, only.receiver.borrow_and_update().clone())
            }
            receivers => {
                let waits = receivers.iter_mut().map(|Registration { tag, receiver, .. }| {
                    async move {
                        let _ = receiver.changed().await;
                        (*tag, receiver.borrow_and_update().clone())
                    }
                    .boxed()
                });
                futures::future::select_all(waits).await.0
            }
        }
    }
}

impl Drop for Watch {
    /// Removes the keys this poll was the last receiver of. The count is read without
    /// the lock and again under it: a poll registering meanwhile keeps the key.
    fn drop(&mut self) {
        for Registration { channel, receiver, .. } in std::mem::take(&mut self.receivers) {
            drop(receiver);
            if channel.sender.receiver_count() > 0 {
                continue;
            }
            let mut map = self.watchers.keys.lock().unwrap_or_else(PoisonError::into_inner);
            if map
                .get(&channel.key)
                .is_some_and(|current| Arc::ptr_eq(current, &channel) && current.sender.receiver_count() == 0)
            {
                map.remove(&channel.key);
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
            let mut a = watchers.watch([(0, "app+default+application")]);
            let mut b = watchers.watch([(0, "app+default+other"), (1, "owner+default+fx")]);
            watchers.publish("owner+default+fx", "owner+default+FX", 7);
            let (tag, published) = b.changed().await;
            assert_eq!((tag, published.id, &*published.spelling), (1, 7, "owner+default+FX"));
            assert!(a.changed().now_or_never().is_none(), "a watches another key");
            watchers.publish("app+default+application", "app+default+application", 8);
            let (tag, published) = a.changed().await;
            assert_eq!((tag, published.id), (0, 8), "a single key wakes too");
            drop((a, b));
            assert_eq!(watchers.watched_keys(), 0, "the last watch removes its keys");
        })
    }

    #[test]
    fn keys_watched_by_two_polls_stay_until_both_leave() {
        let watchers = Arc::new(Watchers::default());
        let a = watchers.watch([(0, "k")]);
        let b = watchers.watch([(0, "k")]);
        drop(a);
        assert_eq!(watchers.watched_keys(), 1);
        drop(b);
        assert_eq!(watchers.watched_keys(), 0);
    }
}
