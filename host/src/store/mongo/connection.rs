//! Reaching the database: the target as configured (credentials kept out of every
//! message), waiting for it at start, noticing when it goes away and probing, with
//! backoff, until it is back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mongodb::Database;
use mongodb::bson::doc;
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, Credential};
use tokio_util::sync::CancellationToken;

use crate::config::MongoConfig;
use crate::store::{StoreError, StoreResult};

/// Where a MongoDB store lives: `db.mongo` of the config, or a target named by
/// module-db-migrate.
#[derive(Clone, Default, serde::Deserialize)]
pub struct MongoTarget {
    /// `mongodb://host:port` (the seed's bare `host:port` is accepted).
    pub url: String,
    /// Database name (default `apollo`).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub user: String,
    #[serde(default, alias = "passwd")]
    pub pass_wd: String,
    /// This host's records are tagged with it (default: the hostname).
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub start_timeout_secs: u64,
    #[serde(default)]
    pub timeout_secs: u64,
}

impl std::fmt::Debug for MongoTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoTarget").field("target", &self.display()).field("user", &self.user).finish()
    }
}

impl From<&MongoConfig> for MongoTarget {
    fn from(c: &MongoConfig) -> Self {
        MongoTarget {
            url: c.url.clone(),
            name: c.name.clone(),
            user: c.user.clone(),
            pass_wd: c.pass_wd.clone(),
            scope: c.scope.clone(),
            start_timeout_secs: c.start_timeout_secs,
            timeout_secs: c.timeout_secs,
        }
    }
}

impl MongoTarget {
    fn url_with_scheme(&self) -> String {
        let url = self.url.trim();
        if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
            url.to_string()
        } else {
            format!("mongodb://{url}")
        }
    }

    pub fn database(&self) -> String {
        if self.name.trim().is_empty() { "apollo".into() } else { self.name.trim().to_string() }
    }

    /// `host:port/database`, with any `user:password@` in the url removed.
    pub fn display(&self) -> String {
        let url = self.url_with_scheme();
        let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(&url);
        let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
        let hosts = rest.split(['/', '?']).next().unwrap_or(rest);
        format!("{hosts}/{}", self.database())
    }

    pub fn scope(&self) -> String {
        if !self.scope.trim().is_empty() {
            return self.scope.trim().to_string();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    }

    /// Default 30 s, at most an hour.
    pub fn start_timeout(&self) -> Duration {
        Duration::from_secs(if self.start_timeout_secs == 0 { 30 } else { self.start_timeout_secs.min(3600) })
    }

    /// How long one call may wait for a server before it counts as unreachable
    /// (default 5 s, at most 5 minutes).
    fn call_timeout(&self) -> Duration {
        Duration::from_secs(if self.timeout_secs == 0 { 5 } else { self.timeout_secs.min(300) })
    }

    pub async fn client_options(&self) -> StoreResult<ClientOptions> {
        if self.url.trim().is_empty() {
            return Err(StoreError::InvalidTarget("db.mongo.url is empty; set it to mongodb://host:port".into()));
        }
        let mut options = ClientOptions::parse(self.url_with_scheme())
            .await
            .map_err(|e| StoreError::InvalidTarget(format!("db.mongo.url {}: {e}", self.display())))?;
        options.app_name = Some("apollo".into());
        options.server_selection_timeout = Some(self.call_timeout());
        options.connect_timeout = Some(self.call_timeout());
        if !self.user.is_empty() {
            options.credential =
                Some(Credential::builder().username(self.user.clone()).password(self.pass_wd.clone()).build());
        }
        Ok(options)
    }
}

/// Whether the database answers, and why not.
#[derive(Debug, Default)]
pub struct Link {
    down: AtomicBool,
    reason: Mutex<String>,
    wake: tokio::sync::Notify,
}

impl Link {
    pub fn down_reason(&self) -> Option<String> {
        if self.down.load(Ordering::Acquire) {
            Some(self.reason.lock().map(|r| r.clone()).unwrap_or_default())
        } else {
            None
        }
    }

    pub fn mark_down(&self, target: &str, reason: &str) {
        if let Ok(mut r) = self.reason.lock() {
            *r = reason.to_string();
        }
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::error!(target: "store", %target, reason, "MongoDB unreachable: store calls fail until it answers again");
            self.wake.notify_one();
        }
    }

    fn mark_up(&self, target: &str) {
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!(target: "store", %target, "MongoDB reachable again");
        }
    }
}

/// Errors that mean "no server", as opposed to a refused or malformed operation.
pub fn is_connectivity(e: &mongodb::error::Error) -> bool {
    matches!(
        *e.kind,
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::Shutdown
    )
}

/// An insert or upsert that hit a unique index (E11000).
pub fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::WriteFailure;
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(we)) => we.code == 11000,
        ErrorKind::Command(ce) => ce.code == 11000,
        _ => false,
    }
}

async fn ping(db: &Database) -> mongodb::error::Result<()> {
    db.run_command(doc! {"ping": 1}).await.map(drop)
}

fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(Duration::from_secs(10))
}

/// Pings until the database answers or `limit` has passed.
pub async fn wait_reachable(db: &Database, target: &str, limit: Duration) -> StoreResult<()> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut backoff = Duration::from_millis(250);
    loop {
        match ping(db).await {
            Ok(()) => return Ok(()),
            // Refused credentials or a bad option will not get better by waiting.
            Err(e) if !is_connectivity(&e) => {
                return Err(StoreError::Mongo { target: target.to_string(), what: "connect", detail: e.to_string() });
            }
            Err(e) if tokio::time::Instant::now() + backoff < deadline => {
                tracing::warn!(target: "store", %target, error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "MongoDB not reachable yet");
                tokio::time::sleep(backoff).await;
                backoff = next_backoff(backoff);
            }
            Err(e) => {
                return Err(StoreError::Unavailable {
                    target: target.to_string(),
                    detail: format!(
                        "no answer within {} s at start ({e}); check db.mongo.url and that the server runs, \
                         or remove db.mongo.url to use SQLite",
                        limit.as_secs()
                    ),
                });
            }
        }
    }
}

/// Owned by the store (cancelled when it is dropped): sleeps until a call marks the
/// link down, then pings with backoff until the database answers.
pub async fn probe(db: Database, target: String, link: std::sync::Arc<Link>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = link.wake.notified() => {}
        }
        let mut backoff = Duration::from_millis(250);
        while link.down_reason().is_some() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            match ping(&db).await {
                Ok(()) => link.mark_up(&target),
                Err(e) => {
                    if let Ok(mut r) = link.reason.lock() {
                        *r = e.to_string();
                    }
                    backoff = next_backoff(backoff);
                }
            }
        }
    }
}
