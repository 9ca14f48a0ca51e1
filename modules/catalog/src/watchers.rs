//! Parked blocking queries, by the topics they wait on (`service:web`, `kv:a/b`, …).
//! A change wakes exactly the queries registered on a topic it moved: one `watch`
//! channel per topic someone waits on, created by the first query and dropped with the
//! last, so a parked query costs its receivers and nothing else (no scan, no thread).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use plugin_api::tokio::sync::Notify;

/// One topic's channel: how many changes were published on it, and its waiters. A
/// counter and a `Notify` rather than a tokio `watch` channel: a parked query on a topic
/// of its own (one KV key) pays for its channel, and a `watch` channel's shared state
/// is several times larger (eight notifiers, a lock, the value).
#[derive(Debug, Default)]
struct Topic {
    published: AtomicU64,
    changed: Notify,
}

#[derive(Debug, Default)]
pub struct Watchers {
    topics: Mutex<HashMap<String, Arc<Topic>>>,
}

/// One query's registration; unregisters when dropped.
#[derive(Debug)]
pub struct Watch {
    watchers: Arc<Watchers>,
    /// Each topic, with its publish count when the watch was registered.
    receivers: Vec<(String, Arc<Topic>, u64)>,
}

impl Watchers {
    /// Registers on `topics`: changes published from now on wake the returned watch.
    pub fn watch(self: &Arc<Self>, topics: &[String]) -> Watch {
        let mut map = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let receivers = topics
            .iter()
            .map(|topic| {
                let channel = Arc::clone(map.entry(topic.clone()).or_default());
                let seen = channel.published.load(Ordering::Acquire);
                (topic.clone(), channel, seen)
            })
            .collect();
        Watch { watchers: Arc::clone(self), receivers }
    }

    /// `topic` moved: wakes every query on it. Returns how many were waiting.
    pub fn publish(&self, topic: &str) -> usize {
        let map = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(topic) {
            Some(channel) => {
                channel.published.fetch_add(1, Ordering::AcqRel);
                channel.changed.notify_waiters();
                // The map's own handle is not a query.
                Arc::strong_count(channel) - 1
            }
            None => 0,
        }
    }

    /// Topics someone waits on now.
    pub fn watched_topics(&self) -> usize {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// Returns once `channel` has had a publish beyond `seen`.
async fn published_since(channel: &Topic, seen: u64) {
    loop {
        // Made before the check: a publish between the two still completes it.
        let notified = channel.changed.notified();
        if channel.published.load(Ordering::Acquire) != seen {
            return;
        }
        notified.await;
    }
}

impl Watch {
    /// Returns when any watched topic moved after registration (pending forever when
    /// nothing is watched: the caller's deadline ends it).
    /// Each call waits for a publish the previous one did not return for.
    pub async fn changed(&mut self) {
        match self.receivers.as_slice() {
            [] => return futures::future::pending().await,
            // Most queries watch one topic: wait on it in place, without a boxed
            // future and a list to select over held for the whole wait.
            [(_, channel, seen)] => published_since(channel, *seen).await,
            several => {
                let waits = several.iter().map(|(_, channel, seen)| published_since(channel, *seen).boxed());
                futures::future::select_all(waits).await;
            }
        }
        for (_, channel, seen) in &mut self.receivers {
            *seen = channel.published.load(Ordering::Acquire);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let topics: Vec<String> = std::mem::take(&mut self.receivers).into_iter().map(|(topic, ..)| topic).collect();
        let mut map = self.watchers.topics.lock().unwrap_or_else(PoisonError::into_inner);
        for topic in topics {
            // Only the map holds it: nobody waits on the topic any more.
            if map.get(&topic).is_some_and(|channel| Arc::strong_count(channel) == 1) {
                map.remove(&topic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_wakes_the_queries_on_that_topic_only() {
        plugin_api::testing::run(async {
            let watchers = Arc::new(Watchers::default());
            let mut a = watchers.watch(&["service:web".to_string()]);
            let mut b = watchers.watch(&["service:db".to_string(), "kv:x".to_string()]);
            assert_eq!(watchers.publish("kv:x"), 1);
            b.changed().await;
            assert!(a.changed().now_or_never().is_none(), "a watches another topic");
            drop((a, b));
            assert_eq!(watchers.watched_topics(), 0, "the last watch removes its topics");
        })
    }

    #[test]
    fn a_watch_sees_each_publish_once_and_a_publish_before_the_wait() {
        plugin_api::testing::run(async {
            let watchers = Arc::new(Watchers::default());
            let mut watch = watchers.watch(&["kv:k".to_string()]);
            let other = watchers.watch(&["kv:k".to_string()]);
            assert_eq!(watchers.publish("kv:k"), 2, "both watches are counted");
            // Published before anyone waited: not missed.
            watch.changed().await;
            assert!(watch.changed().now_or_never().is_none(), "that publish was seen already");
            watchers.publish("kv:k");
            assert!(watch.changed().now_or_never().is_some(), "a new publish wakes it again");
            drop(watch);
            assert_eq!(watchers.watched_topics(), 1, "the other watch still holds the topic");
            drop(other);
            assert_eq!(watchers.watched_topics(), 0);
        })
    }
}
