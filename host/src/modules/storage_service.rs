//! PLACEHOLDER (replaced by the storage branch): a module's own storage.

use std::sync::Arc;

use crate::store::Store;

pub async fn call(store: &Arc<dyn Store>, module: &str, request: &str) -> Result<String, String> {
    let req: serde_json::Value = serde_json::from_str(request).map_err(|e| e.to_string())?;
    let key = req["key"].as_str().unwrap_or_default();
    let fail =
        |e: crate::store::StoreError| serde_json::json!({"code": "unavailable", "message": e.to_string()}).to_string();
    match req["op"].as_str() {
        Some("put") => {
            store.module_kv_set(module, key, req["value"].as_str().unwrap_or_default()).await.map_err(fail)?;
            Ok(serde_json::json!({"version": 1, "revision": 1}).to_string())
        }
        _ => {
            let v = store.module_kv_get(module, key).await.map_err(fail)?;
            Ok(v.map_or(
                serde_json::Value::Null,
                |v| serde_json::json!({"key": key, "value": v, "version": 1, "revision": 1}),
            )
            .to_string())
        }
    }
}
