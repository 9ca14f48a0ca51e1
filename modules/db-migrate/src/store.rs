//! The host's store-administration service, as typed calls: each builds one JSON
//! request for `Host::store_admin` (the host's `modules/store_service.rs` answers it) and
//! names the operation and target in its error, keeping the host's error code.

use plugin_api::{Host, StoreCallError};
use serde_json::{Value, json};

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

    async fn call(&self, what: &str, target: &Target, mut request: Value) -> Result<Value, Failure> {
        request["target"] = target.spec.clone();
        self.host.store_admin(&request).await.map_err(|StoreCallError { code, message }| Failure {
            code,
            message: format!("{what} on {}: {message}", target.description),
        })
    }

    pub async fn info(&self, target: &Target) -> Result<Value, Failure> {
        self.call("info", target, json!({"op": "info"})).await
    }

    pub async fn migrations(&self, target: &Target) -> Result<Value, Failure> {
        self.call("migrations", target, json!({"op": "migrations"})).await
    }

    pub async fn migrate(&self, target: &Target, dry_run: bool) -> Result<Value, Failure> {
        self.call("migrate", target, json!({"op": "migrate", "dry_run": dry_run})).await
    }

    pub async fn count(&self, target: &Target, collection: &str) -> Result<u64, Failure> {
        let answer = self.call("count", target, json!({"op": "count", "collection": collection})).await?;
        answer["count"].as_u64().ok_or_else(|| Failure {
            code: "internal".into(),
            message: format!("count of {collection}: no number in {answer}"),
        })
    }

    /// `{count, checksum}` as the host computes it over the whole collection.
    pub async fn digest(&self, target: &Target, collection: &str) -> Result<Value, Failure> {
        self.call("digest", target, json!({"op": "digest", "collection": collection})).await
    }

    pub async fn page(&self, target: &Target, collection: &str, after: &Value, limit: u32) -> Result<Page, Failure> {
        let request = json!({"op": "export_page", "collection": collection, "after": after, "limit": limit});
        let mut answer = self.call("export", target, request).await?;
        let records = match answer["records"].take() {
            Value::Array(records) => records,
            other => {
                let message = format!("export of {collection}: records missing ({other})");
                return Err(Failure { code: "internal".into(), message });
            }
        };
        Ok(Page { records, last: answer["last"].take(), more: answer["more"].as_bool().unwrap_or(false) })
    }

    pub async fn import(&self, target: &Target, collection: &str, records: &[Value]) -> Result<u64, Failure> {
        let request = json!({"op": "import", "collection": collection, "records": records});
        let answer = self.call("import", target, request).await?;
        Ok(answer["written"].as_u64().unwrap_or(0))
    }
}
