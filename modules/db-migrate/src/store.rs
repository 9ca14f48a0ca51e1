//! The host's store-administration service (`Host::store_admin`, answered by the
//! host's `modules/store_service.rs`) for this module: each call names the operation
//! and target in its error, keeping the host's error code.

use plugin_api::digest::RecordDigest;
use plugin_api::store_admin::{ExportPage, MigrateAnswer, MigrationsStatus, RecordKey, StoreAdmin, StoreInfo};
use plugin_api::{Host, StoreCallError};
use serde_json::Value;

use crate::target::Target;

/// Every collection of a store, in the order exports and copies visit them.
pub const COLLECTIONS: [&str; 9] =
    ["settings", "models", "runtime", "tokens", "module_data", "module_heads", "audit", "task_runs", "alarms"];

/// Collections of archives made by older hosts that an import still accepts (the host
/// turns `module_kv` records into module data).
pub const LEGACY_COLLECTIONS: [&str; 1] = ["module_kv"];

/// A failed call: the host's code (`bad_request`, `not_found`, `forbidden`,
/// `unavailable`, `conflict`, `internal`) and a message saying what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

impl Failure {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Failure { code: "bad_request".into(), message: message.into() }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Background jobs keep only the message.
impl From<Failure> for String {
    fn from(f: Failure) -> String {
        f.message
    }
}

#[derive(Debug, Clone)]
pub struct StoreClient {
    admin: StoreAdmin,
}

impl StoreClient {
    pub fn new(host: &Host) -> Self {
        StoreClient { admin: host.store_admin() }
    }

    /// Names the operation and the target in a failure, keeping the host's code.
    fn named(what: &str, target: &Target) -> impl FnOnce(StoreCallError) -> Failure {
        let context = format!("{what} on {}", target.description);
        move |StoreCallError { code, message }| Failure { code, message: format!("{context}: {message}") }
    }

    pub async fn info(&self, target: &Target) -> Result<StoreInfo, Failure> {
        self.admin.info(&target.spec).await.map_err(Self::named("info", target))
    }

    pub async fn migrations(&self, target: &Target) -> Result<MigrationsStatus, Failure> {
        self.admin.migrations(&target.spec).await.map_err(Self::named("migrations", target))
    }

    pub async fn migrate(&self, target: &Target, dry_run: bool) -> Result<MigrateAnswer, Failure> {
        self.admin.migrate(&target.spec, dry_run).await.map_err(Self::named("migrate", target))
    }

    pub async fn count(&self, target: &Target, collection: &str) -> Result<u64, Failure> {
        self.admin.count(&target.spec, collection).await.map_err(Self::named("count", target))
    }

    /// Count and checksum as the host computes them over the whole collection.
    pub async fn digest(&self, target: &Target, collection: &str) -> Result<RecordDigest, Failure> {
        self.admin.digest(&target.spec, collection).await.map_err(Self::named("digest", target))
    }

    /// One page of a collection: its records, the key of the last one (to continue
    /// after) and whether more may follow.
    pub async fn page(
        &self,
        target: &Target,
        collection: &str,
        after: Option<&RecordKey>,
        limit: u32,
    ) -> Result<ExportPage, Failure> {
        self.admin.page(&target.spec, collection, after, limit).await.map_err(Self::named("export", target))
    }

    pub async fn import(&self, target: &Target, collection: &str, records: &[Value]) -> Result<u64, Failure> {
        self.admin.import(&target.spec, collection, records).await.map_err(Self::named("import", target))
    }
}
