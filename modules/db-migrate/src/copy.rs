//! Copying every record from one store to another (SQLite -> MongoDB and back), as a
//! background job with progress, verification and resume.
//!
//! The job walks the collections page by page: read a page from the source, upsert
//! it into the destination, then save a checkpoint (collection, last key, counts) in
//! the module's storage. An interruption at any point (cancel, a page budget
//! reached, a failing database, a host restart) leaves a checkpoint; `resume`
//! continues after the last page written, and since writes are upserts a page written
//! twice changes nothing. When every collection is copied, the host's count and
//! checksum of each collection are compared on both sides; a collection that differs
//! (the source was written to meanwhile) is copied once more and compared again
//! before the job reports failure. Credentials are never part of the checkpoint or
//! the progress: a resume must name the targets again.

use std::sync::{Arc, Mutex};

use plugin_api::Host;
use plugin_api::store_admin::RecordKey;
use plugin_api::tokio;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::{COLLECTIONS, StoreClient};
use crate::target::Target;

const CHECKPOINT_KEY: &str = "copy.checkpoint";
/// Extra passes over collections that differ after the copy.
const CATCH_UP_PASSES: u32 = 1;

/// What a copy request asks for.
#[derive(Debug, Clone)]
pub struct CopyPlan {
    pub from: Target,
    pub to: Target,
    pub page_size: u32,
    /// Stop (state `paused`) after this many pages; `resume` continues.
    pub max_pages: Option<u64>,
    pub resume: bool,
}

/// Where an interrupted copy stands; saved after every page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub from: String,
    pub to: String,
    /// Index into `COLLECTIONS` of the collection in progress.
    pub collection: usize,
    /// Key of the last record written in it (`null`: none yet).
    pub after: Option<RecordKey>,
    /// Records written so far, per collection.
    pub copied: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectionProgress {
    pub name: &'static str,
    pub total: Option<u64>,
    pub copied: u64,
    pub done: bool,
    /// After the copy: source and destination agree on count and checksum.
    pub verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The current or last job, as `GET /copy` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub id: u64,
    pub from: String,
    pub to: String,
    /// `running`, `verifying`, `done`, `paused`, `cancelled` or `failed`.
    pub state: String,
    pub resumed: bool,
    pub page_size: u32,
    pub pages: u64,
    pub started_at_ms: u64,
    pub finished_at_ms: Option<u64>,
    pub collections: Vec<CollectionProgress>,
    pub error: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    current: Option<Progress>,
    next_id: u64,
}

/// The module's one copy slot (a second copy while one runs is refused).
#[derive(Debug, Clone, Default)]
pub struct Copies {
    inner: Arc<Mutex<Inner>>,
    cancelled: Arc<std::sync::atomic::AtomicBool>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Copies {
    pub fn progress(&self) -> Option<Progress> {
        self.inner.lock().ok().and_then(|i| i.current.clone())
    }

    pub fn running(&self) -> bool {
        self.progress().is_some_and(|p| matches!(p.state.as_str(), "running" | "verifying"))
    }

    /// Asks the running job to stop after its current page.
    pub fn cancel(&self) -> bool {
        let running = self.running();
        if running {
            self.cancelled.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        running
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        if let Ok(mut inner) = self.inner.lock()
            && let Some(p) = inner.current.as_mut()
        {
            f(p);
        }
    }

    /// Starts a job, or says why not. Returns the job's first progress.
    pub async fn start(
        &self,
        host: &Host,
        client: StoreClient,
        plan: CopyPlan,
    ) -> Result<(Progress, tokio::task::JoinHandle<()>), String> {
        if plan.from.description == plan.to.description {
            return Err(format!("source and destination are the same store ({})", plan.from.description));
        }
        let checkpoint = if plan.resume {
            let saved = load_checkpoint(host)
                .await?
                .ok_or("nothing to resume: no interrupted copy is recorded; start one without \"resume\"")?;
            if saved.from != plan.from.description || saved.to != plan.to.description {
                return Err(format!(
                    "the interrupted copy was {} -> {}; name the same stores to resume it",
                    saved.from, saved.to
                ));
            }
            saved
        } else {
            Checkpoint {
                from: plan.from.description.clone(),
                to: plan.to.description.clone(),
                collection: 0,
                after: None,
                copied: vec![0; COLLECTIONS.len()],
            }
        };
        let progress = {
            let mut inner = self.inner.lock().map_err(|_| "copy state poisoned")?;
            if inner.current.as_ref().is_some_and(|p| matches!(p.state.as_str(), "running" | "verifying")) {
                return Err("a copy is already running; see GET /copy, or POST /copy/cancel".into());
            }
            inner.next_id += 1;
            let progress = Progress {
                id: inner.next_id,
                from: plan.from.description.clone(),
                to: plan.to.description.clone(),
                state: "running".into(),
                resumed: plan.resume,
                page_size: plan.page_size,
                pages: 0,
                started_at_ms: now_ms(),
                finished_at_ms: None,
                collections: COLLECTIONS
                    .iter()
                    .enumerate()
                    .map(|(i, name)| CollectionProgress {
                        name,
                        total: None,
                        copied: checkpoint.copied.get(i).copied().unwrap_or(0),
                        done: i < checkpoint.collection,
                        verified: None,
                        detail: None,
                    })
                    .collect(),
                error: None,
            };
            inner.current = Some(progress.clone());
            progress
        };
        self.cancelled.store(false, std::sync::atomic::Ordering::SeqCst);
        let job = Job { copies: self.clone(), host: host.clone(), client, plan, checkpoint };
        let handle = tokio::spawn(job.run());
        Ok((progress, handle))
    }
}

async fn load_checkpoint(host: &Host) -> Result<Option<Checkpoint>, String> {
    let entry = host.storage().get(CHECKPOINT_KEY).await.map_err(|e| e.message)?;
    match entry.map(|e| e.value) {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| format!("unreadable copy checkpoint: {e}")),
    }
}

struct Job {
    copies: Copies,
    host: Host,
    client: StoreClient,
    plan: CopyPlan,
    checkpoint: Checkpoint,
}

enum Stop {
    Finished,
    Paused,
    Cancelled,
}

impl Job {
    async fn run(mut self) {
        let outcome = self.copy_all().await;
        let (state, error) = match outcome {
            Ok(Stop::Paused) => ("paused", None),
            Ok(Stop::Cancelled) => ("cancelled", None),
            Ok(Stop::Finished) => {
                self.copies.update(|p| p.state = "verifying".into());
                match self.verify().await {
                    Ok(Stop::Finished) => {
                        // Done: nothing left to resume.
                        let _ = self.host.storage().delete(CHECKPOINT_KEY).await;
                        ("done", None)
                    }
                    // Every record is copied; a resume verifies again.
                    Ok(_) => ("cancelled", None),
                    Err(e) => ("failed", Some(e)),
                }
            }
            Err(e) => ("failed", Some(e)),
        };
        match &error {
            Some(e) => self
                .host
                .warn(&format!("copy {} -> {} failed: {e}", self.plan.from.description, self.plan.to.description)),
            None => {
                self.host.info(&format!("copy {} -> {}: {state}", self.plan.from.description, self.plan.to.description))
            }
        }
        self.copies.update(|p| {
            p.state = state.into();
            p.error = error;
            p.finished_at_ms = Some(now_ms());
        });
    }

    async fn save(&self) -> Result<(), String> {
        let text = serde_json::to_string(&self.checkpoint).map_err(|e| e.to_string())?;
        self.host
            .storage()
            .put(CHECKPOINT_KEY, &text)
            .await
            .map(drop)
            .map_err(|e| format!("saving the copy checkpoint: {}", e.message))
    }

    async fn copy_all(&mut self) -> Result<Stop, String> {
        let mut pages = 0u64;
        for (index, collection) in COLLECTIONS.iter().enumerate() {
            if index < self.checkpoint.collection {
                continue;
            }
            let total = self.client.count(&self.plan.from, collection).await?;
            self.copies.update(|p| p.collections[index].total = Some(total));
            loop {
                if self.cancelled() {
                    return Ok(Stop::Cancelled);
                }
                if self.plan.max_pages.is_some_and(|max| pages >= max) {
                    return Ok(Stop::Paused);
                }
                let page = self
                    .client
                    .page(&self.plan.from, collection, self.checkpoint.after.as_ref(), self.plan.page_size)
                    .await?;
                let written = if page.records.is_empty() {
                    0
                } else {
                    self.client.import(&self.plan.to, collection, &page.records).await?
                };
                pages += 1;
                self.checkpoint.copied[index] += written;
                if page.last.is_some() {
                    self.checkpoint.after = page.last;
                }
                self.save().await?;
                let copied = self.checkpoint.copied[index];
                self.copies.update(|p| {
                    p.pages += 1;
                    p.collections[index].copied = copied;
                });
                if !page.more {
                    break;
                }
            }
            self.checkpoint.collection = index + 1;
            self.checkpoint.after = None;
            self.save().await?;
            self.copies.update(|p| p.collections[index].done = true);
        }
        Ok(Stop::Finished)
    }

    fn cancelled(&self) -> bool {
        self.copies.cancelled.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Compares both sides per collection; recopies the ones that differ (bounded).
    /// `Stop::Cancelled` when asked to stop meanwhile.
    async fn verify(&mut self) -> Result<Stop, String> {
        let mut differing = Vec::new();
        for pass in 0..=CATCH_UP_PASSES {
            differing.clear();
            for (index, collection) in COLLECTIONS.iter().enumerate() {
                if self.cancelled() {
                    return Ok(Stop::Cancelled);
                }
                let source = self.client.digest(&self.plan.from, collection).await?;
                let dest = self.client.digest(&self.plan.to, collection).await?;
                let same = source == dest;
                let detail = (!same).then(|| {
                    format!(
                        "source {} records / \"{}\", destination {} / \"{}\"",
                        source.count,
                        source.hex(),
                        dest.count,
                        dest.hex()
                    )
                });
                self.copies.update(|p| {
                    p.collections[index].verified = Some(same);
                    p.collections[index].detail = detail.clone();
                });
                if !same {
                    differing.push((index, *collection, detail.unwrap_or_default()));
                }
            }
            if differing.is_empty() {
                return Ok(Stop::Finished);
            }
            if pass < CATCH_UP_PASSES {
                for (_, collection, _) in &differing {
                    self.recopy(collection).await?;
                }
            }
        }
        let list: Vec<String> = differing.iter().map(|(_, c, d)| format!("{c}: {d}")).collect();
        Err(format!(
            "verification failed after the copy ({}). The source was written to during the copy, or the destination \
             already held other records (a copy never deletes); copy again when the source is quiet, into an empty destination",
            list.join("; ")
        ))
    }

    async fn recopy(&self, collection: &str) -> Result<(), String> {
        let mut after = None;
        loop {
            if self.cancelled() {
                return Ok(());
            }
            let page = self.client.page(&self.plan.from, collection, after.as_ref(), self.plan.page_size).await?;
            if !page.records.is_empty() {
                self.client.import(&self.plan.to, collection, &page.records).await?;
            }
            if !page.more {
                return Ok(());
            }
            after = page.last;
        }
    }
}

/// The saved checkpoint, for `GET /copy` after a restart.
pub async fn saved_checkpoint(host: &Host) -> Value {
    match load_checkpoint(host).await {
        Ok(Some(c)) => json!({
            "from": c.from,
            "to": c.to,
            "collection": COLLECTIONS.get(c.collection).copied().unwrap_or("(all copied)"),
            "copied": COLLECTIONS.iter().zip(&c.copied).map(|(n, c)| (n.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
        }),
        Ok(None) => Value::Null,
        Err(e) => json!({"error": e}),
    }
}
