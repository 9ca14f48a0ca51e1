//! The host's store-administration service, as typed calls: each builds one JSON
//! request for `Host::store` (the host's `modules/store_service.rs` answers it) and
//! names the operation in its error.

use plugin_api::Host;
use serde_json::{Value, json};

use crate::target::Target;

/// Every collection of a store, in the order exports and copies visit them.
pub const COLLECTIONS: [&str; 8] =
    ["settings", "models", "runtime", "tokens", "module_kv", "audit", "task_runs", "alarms"];

#[derive(Debug, Clone)]
pub struct StoreClient {
    host: Host,
}

/// One page of a collection.
#[derive(Debug)]
pub struct Page {
    pub records: Vec<Value>,
    /// Key of the last record, to continue after.
    pub last: Value,
    pub more: bool,
}

impl StoreClient {
    pub fn new(host: Host) -> Self {
        StoreClient { host }
    }

    async fn call(&self, what: &str, target: &Target, mut request: Value) -> Result<Value, String> {
        request["target"] = target.spec.clone();
        self.host.store(&request).await.map_err(|e| format!("{what} on {}: {e}", target.description))
    }

    pub async fn info(&self, target: &Target) -> Result<Value, String> {
        self.call("info", target, json!({"op": "info"})).await
    }

    pub async fn migrations(&self, target: &Target) -> Result<Value, String> {
        self.call("migrations", target, json!({"op": "migrations"})).await
    }

    pub async fn migrate(&self, target: &Target, dry_run: bool) -> Result<Value, String> {
        self.call("migrate", target, json!({"op": "migrate", "dry_run": dry_run})).await
    }

    pub async fn count(&self, target: &Target, collection: &str) -> Result<u64, String> {
        let answer = self.call("count", target, json!({"op": "count", "collection": collection})).await?;
        answer["count"].as_u64().ok_or_else(|| format!("count of {collection}: no number in {answer}"))
    }

    /// `{count, checksum}` as the host computes it over the whole collection.
    pub async fn digest(&self, target: &Target, collection: &str) -> Result<Value, String> {
        self.call("digest", target, json!({"op": "digest", "collection": collection})).await
    }

    pub async fn page(&self, target: &Target, collection: &str, after: &Value, limit: u32) -> Result<Page, String> {
        let request = json!({"op": "export_page", "collection": collection, "after": after, "limit": limit});
        let mut answer = self.call("export", target, request).await?;
        let records = match answer["records"].take() {
            Value::Array(records) => records,
            other => return Err(format!("export of {collection}: records missing ({other})")),
        };
        Ok(Page { records, last: answer["last"].take(), more: answer["more"].as_bool().unwrap_or(false) })
    }

    pub async fn import(&self, target: &Target, collection: &str, records: &[Value]) -> Result<u64, String> {
        let request = json!({"op": "import", "collection": collection, "records": records});
        let answer = self.call("import", target, request).await?;
        Ok(answer["written"].as_u64().unwrap_or(0))
    }
}
