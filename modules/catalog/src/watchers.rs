//! Parked blocking queries, by the topics they wait on (`service:web`, `kv:a/b`, …).
//! A change wakes exactly the queries registered on a topic it moved: one `watch`
//! channel per topic someone waits on, created by the first query and dropped with the
//! last, so a parked query costs its receivers and nothing else (no scan, no thread).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use plugin_api::tokio::sync::watch;

#[derive(Debug, Default)]
pub struct Watchers {
    topics: Mutex<HashMap<String, watch::Sender<u64>>>,
}

/// One query's registration; unregisters when dropped.
#[derive(Debug)]
pub struct Watch {
    watchers: Arc<Watchers>,
    receivers: Vec<(String, watch::Receiver<u64>)>,
}

impl Watchers {
    /// Registers on `topics`: changes published from now on wake the returned watch.
    pub fn watch(self: &Arc<Self>, topics: &[String]) -> Watch {
        let mut map = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let receivers = topics
            .iter()
            .map(|topic| {
                let receiver = map.entry(topic.clone()).or_insert_with(|| watch::Sender::new(0)).subscribe();
                (topic.clone(), receiver)
            })
            .collect();
        Watch { watchers: Arc::clone(self), receivers }
    }

    /// `topic` moved to `index`: wakes every query on it. Returns how many were waiting.
    pub fn publish(&self, topic: &str, index: u64) -> usize {
        let map = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(topic) {
            Some(sender) => {
                let waiting = sender.receiver_count();
                sender.send_replace(index);
                waiting
            }
            None => 0,
        }
    }

    /// Topics someone waits on now.
    pub fn watched_topics(&self) -> usize {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Watch {
    /// Returns when any watched topic moved after registration (pending forever when
    /// nothing is watched: the caller's deadline ends it).
    pub async fn changed(&mut self) {
        match self.receivers.as_mut_slice() {
            [] => return futures::future::pending().await,
            // Most queries watch one topic: wait on it in place, without a boxed
            // future and a list to select over held for the whole wait.
            [(_, receiver)] => {
                let _ = receiver.changed().await;
                return;
            }
            _ => {}
        }
        let waits = self.receivers.iter_mut().map(|(_, receiver)| {
            async move {
                // A sender is only dropped after its last receiver, so this returns
                // with a new value.
                let _ = receiver.changed().await;
            }
            .boxed()
        });
        futures::future::select_all(waits).await;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let topics: Vec<String> = std::mem::take(&mut self.receivers).into_iter().map(|(topic, _)| topic).collect();
        let mut map = self.watchers.topics.lock().unwrap_or_else(PoisonError::into_inner);
        for topic in topics {
            if map.get(&topic).is_some_and(|sender| sender.receiver_count() == 0) {
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
            assert_eq!(watchers.publish("kv:x", 7), 1);
            b.changed().await;
            assert!(a.changed().now_or_never().is_none(), "a watches another topic");
            drop((a, b));
            assert_eq!(watchers.watched_topics(), 0, "the last watch removes its topics");
        })
    }
}
