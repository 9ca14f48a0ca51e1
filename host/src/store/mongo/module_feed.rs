//! Cross-host wake-up of module change-feed waiters: one task per store (started by
//! the first wait, stopped with the store) that follows the other hosts' commits and
//! publishes each module's head to the store's `FeedHub`. This host's own commits
//! publish directly; this task is for everybody else's.
//!
//! It follows a change stream on the log collection (every finished commit inserts one
//! entry). A server that answers an empty `getMore` at once instead of waiting for
//! events (nx-27017 does) is asked again every `PACE` while someone waits, every
//! `IDLE` otherwise; a real replica set holds the request open, so events arrive as
//! they happen. A server without change streams (a standalone mongod) is polled
//! instead: the heads of the modules someone waits on, every `POLL`. It never reads
//! the data: waiters do that themselves once woken.

use std::sync::Arc;
use std::time::Duration;

use mongodb::Database;
use mongodb::bson::{Document, doc};
use mongodb::change_stream::ChangeStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connection::{self, Link};
use super::schema::{MODULE_CHANGES, MODULE_HEADS};
use crate::store::module_data::FeedHub;

/// Asking again after an empty answer, while a module's feed is waited on.
const PACE: Duration = Duration::from_millis(50);
/// … and while nobody waits (events are still drained, to keep the stream's place).
const IDLE: Duration = Duration::from_secs(1);
/// Polling the heads without change streams.
const POLL: Duration = Duration::from_millis(100);
/// How long a server may hold an empty `getMore` (a replica set waits this long).
const AWAIT: Duration = Duration::from_millis(500);
/// An empty answer quicker than this means the server did not wait.
const NO_WAIT: Duration = Duration::from_millis(20);

/// Runs until `cancel`: follows the log with change streams, reopening one that fails,
/// or polls when the server has none.
pub(super) async fn run(db: Database, hub: Arc<FeedHub>, link: Arc<Link>, cancel: CancellationToken) {
    let log = db.collection::<Document>(MODULE_CHANGES);
    let mut pause = Duration::from_millis(250);
    // Streams that failed in a row without delivering anything.
    let mut failures = 0;
    loop {
        if link.down_reason().is_none() {
            match log.watch().max_await_time(AWAIT).await {
                Ok(stream) => {
                    pause = Duration::from_millis(250);
                    // Raw events: the typed event wants a BSON timestamp as
                    // `clusterTime`, which nx-27017 does not send; only
                    // `fullDocument` is read here.
                    let Some(delivered) = follow(stream.with_type::<Document>(), &db, &hub, &cancel).await else {
                        return;
                    };
                    failures = if delivered { 0 } else { failures + 1 };
                    if failures >= 3 {
                        tracing::warn!(target: "store",
                            "MongoDB change streams keep failing: module change feeds poll every {} ms instead",
                            POLL.as_millis());
                        poll(&db, &hub, &cancel).await;
                        return;
                    }
                }
                // The probe notices a database that went away; try again later.
                Err(e) if connection::is_connectivity(&e) => {}
                Err(e) => {
                    tracing::info!(target: "store", error = %e,
                        "MongoDB offers no change streams (a standalone server?): module change feeds poll every {} ms",
                        POLL.as_millis());
                    poll(&db, &hub, &cancel).await;
                    return;
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Publishes each logged commit until the stream fails (`Some(whether it delivered
/// any event)`) or `cancel` (`None`).
async fn follow(
    mut stream: ChangeStream<Document>,
    db: &Database,
    hub: &FeedHub,
    cancel: &CancellationToken,
) -> Option<bool> {
    let mut delivered = false;
    // Commits logged before the stream opened are not in it.
    catch_up(db, hub).await;
    loop {
        let asked = Instant::now();
        let next = tokio::select! {
            _ = cancel.cancelled() => return None,
            next = stream.next_if_any() => next,
        };
        match next {
            Ok(Some(event)) => {
                delivered = true;
                if let Ok(entry) = event.get_document("fullDocument")
                    && let Ok(module) = entry.get_str("module")
                {
                    hub.publish(module, revision_of(entry));
                }
            }
            Ok(None) if asked.elapsed() < NO_WAIT => {
                let pause = if hub.waited().is_empty() { IDLE } else { PACE };
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep(pause) => {}
                    // Someone started waiting during an idle pause: ask now.
                    _ = hub.waiter_arrived(), if pause == IDLE => {}
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(target: "store", error = %e, "module change stream failed; reopening it");
                return Some(delivered);
            }
        }
    }
}

/// Without change streams: the waited-on modules' heads, every `POLL`.
async fn poll(db: &Database, hub: &FeedHub, cancel: &CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        catch_up(db, hub).await;
    }
}

/// Publishes the heads of the modules someone waits on (errors are left to the
/// waiters' own reads, which report them).
async fn catch_up(db: &Database, hub: &FeedHub) {
    use futures::TryStreamExt;
    let waited = hub.waited();
    if waited.is_empty() {
        return;
    }
    let heads = db.collection::<Document>(MODULE_HEADS);
    let read = async {
        heads
            .find(doc! {"module": {"$in": &waited}})
            .projection(doc! {"module": 1, "revision": 1})
            .await?
            .try_collect::<Vec<Document>>()
            .await
    };
    if let Ok(found) = read.await {
        for head in found {
            if let Ok(module) = head.get_str("module") {
                hub.publish(module, revision_of(&head));
            }
        }
    }
}

fn revision_of(d: &Document) -> u64 {
    match d.get("revision") {
        Some(mongodb::bson::Bson::Int64(v)) => *v as u64,
        Some(mongodb::bson::Bson::Int32(v)) => *v as u64,
        _ => 0,
    }
}
