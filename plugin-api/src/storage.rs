//! PLACEHOLDER (replaced by the storage branch): the module's own storage.

use std::sync::Arc;

use futures::future::BoxFuture;

/// Carries storage requests (JSON) to the host.
pub(crate) trait StorageTransport: Send + Sync {
    fn call(&self, request: String) -> BoxFuture<'static, Result<String, String>>;
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct StorageError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub version: u64,
    pub revision: u64,
}

#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct Storage {
    transport: Arc<dyn StorageTransport>,
}

impl Storage {
    pub(crate) fn new(transport: Arc<dyn StorageTransport>) -> Self {
        Self { transport }
    }

    async fn call(&self, request: serde_json::Value) -> Result<serde_json::Value, StorageError> {
        match self.transport.call(request.to_string()).await {
            Ok(t) => {
                serde_json::from_str(&t).map_err(|e| StorageError { code: "internal".into(), message: e.to_string() })
            }
            Err(t) => Err(serde_json::from_str(&t).unwrap_or(StorageError { code: "internal".into(), message: t })),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Entry>, StorageError> {
        let v = self.call(serde_json::json!({"op": "get", "key": key})).await?;
        serde_json::from_value(v).map_err(|e| StorageError { code: "internal".into(), message: e.to_string() })
    }

    pub async fn put(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.call(serde_json::json!({"op": "put", "key": key, "value": value})).await.map(|_| ())
    }
}

/// In-memory storage for the test host.
#[derive(Default)]
pub(crate) struct MemoryStorage {
    data: std::sync::Mutex<std::collections::BTreeMap<String, (String, u64)>>,
}

impl StorageTransport for MemoryStorage {
    fn call(&self, request: String) -> BoxFuture<'static, Result<String, String>> {
        let req: serde_json::Value = serde_json::from_str(&request).unwrap_or_default();
        let mut data = self.data.lock().unwrap();
        let key = req["key"].as_str().unwrap_or_default().to_string();
        let answer = match req["op"].as_str() {
            Some("put") => {
                let version = data.get(&key).map_or(0, |e| e.1) + 1;
                data.insert(key, (req["value"].as_str().unwrap_or_default().into(), version));
                serde_json::json!({"version": version, "revision": version})
            }
            _ => match data.get(&key) {
                Some((value, version)) => {
                    serde_json::json!({"key": key, "value": value, "version": version, "revision": version})
                }
                None => serde_json::Value::Null,
            },
        };
        Box::pin(async move { Ok(answer.to_string()) })
    }
}
