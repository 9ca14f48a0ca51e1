//! Open API: a namespace's working items. `encodedItems/{key}` takes the key in
//! standard base64, for keys a path cannot carry (`/`, `%`, …).

use std::sync::Arc;

use plugin_api::{HandlerResult, ModuleError, Request, Response, signing};
use serde::Deserialize;
use serde_json::json;

use super::{Right, dto};
use crate::ConfigCenter;
use crate::edit::{self, items::Existence, items::ItemEdit};
use crate::wire;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ItemBody {
    key: String,
    value: Option<String>,
    comment: String,
}

/// Ctrip's page size bounds for `items?page=&size=`.
const MAX_PAGE_SIZE: usize = 500;

/// The item key of the path: plain, or base64 on `encodedItems`.
fn path_key(req: &Request) -> Result<String, ModuleError> {
    if let Some(encoded) = req.param("encodedKey") {
        let bytes = signing::base64_decode(encoded)
            .ok_or_else(|| ModuleError::bad_request(format!("{encoded:?} is not standard base64")))?;
        return String::from_utf8(bytes).map_err(|_| ModuleError::bad_request("the decoded key is not UTF-8"));
    }
    Ok(req.required_param("key")?.to_string())
}

/// `appId`, `cluster`, `namespace` of the path.
fn coordinates(req: &Request) -> Result<(&str, &str, &str), ModuleError> {
    Ok((req.required_param("appId")?, req.required_param("cluster")?, req.required_param("namespace")?))
}

impl ConfigCenter {
    pub(crate) async fn open_list_items(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let (app, cluster, namespace) = coordinates(&req)?;
        self.open_api_caller(&req, app, Right::Read)?;
        let number = |name: &str, default: usize| -> Result<usize, ModuleError> {
            req.query_param(name).map_or(Ok(default), |v| {
                v.parse().map_err(|_| ModuleError::bad_request(format!("{name} must be a number")))
            })
        };
        let (page, size) = (number("page", 0)?, number("size", 50)?);
        if size == 0 || size > MAX_PAGE_SIZE {
            return Err(ModuleError::bad_request(format!("size must be 1 to {MAX_PAGE_SIZE}")));
        }
        let state = self.replica.read();
        let (ns, _) = edit::existing_namespace(&state, app, cluster, namespace)?;
        let items = state.items.get(&ns).map(|set| set.items.as_slice()).unwrap_or_default();
        let content: Vec<_> = items.iter().skip(page.saturating_mul(size)).take(size).map(dto::item).collect();
        Ok(wire::json(&json!({"page": page, "size": size, "total": items.len(), "content": content})))
    }

    pub(crate) async fn open_get_item(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let (app, cluster, namespace) = coordinates(&req)?;
        self.open_api_caller(&req, app, Right::Read)?;
        let key = path_key(&req)?;
        let state = self.replica.read();
        let (ns, _) = edit::existing_namespace(&state, app, cluster, namespace)?;
        let item = state
            .items
            .get(&ns)
            .and_then(|set| set.get(&key))
            .ok_or_else(|| ModuleError::not_found(format!("item not found: {key}")))?;
        Ok(wire::json(&dto::item(item)))
    }

    pub(crate) async fn open_create_item(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let (app, cluster, namespace) = coordinates(&req)?;
        let actor = self.open_api_caller(&req, app, Right::Edit)?;
        let body: ItemBody = req.json()?;
        let value = body.value.ok_or_else(|| ModuleError::bad_request("value is required"))?;
        let edit = ItemEdit {
            app,
            cluster,
            namespace,
            key: &body.key,
            value: &value,
            comment: &body.comment,
            existence: Existence::MustBeNew,
            max_value_chars: self.settings.item_value_max_chars,
        };
        let item = self.replica.transact(|s| edit::items::upsert(s, &actor, &edit)).await?;
        Ok(wire::json(&dto::item(&item)))
    }

    pub(crate) async fn open_update_item(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let (app, cluster, namespace) = coordinates(&req)?;
        let actor = self.open_api_caller(&req, app, Right::Edit)?;
        let key = path_key(&req)?;
        let body: ItemBody = req.json()?;
        if !body.key.is_empty() && body.key != key {
            return Err(ModuleError::bad_request(format!("key {:?} in the body is not {key:?} of the path", body.key)));
        }
        let value = body.value.ok_or_else(|| ModuleError::bad_request("value is required"))?;
        let create = req.query_param("createIfNotExists").is_some_and(|v| v == "true");
        let edit = ItemEdit {
            app,
            cluster,
            namespace,
            key: &key,
            value: &value,
            comment: &body.comment,
            existence: if create { Existence::Either } else { Existence::MustExist },
            max_value_chars: self.settings.item_value_max_chars,
        };
        self.replica.transact(|s| edit::items::upsert(s, &actor, &edit)).await?;
        Ok(Response::empty(200))
    }

    pub(crate) async fn open_delete_item(self: Arc<Self>, req: Request) -> HandlerResult {
        self.check_env(&req)?;
        let (app, cluster, namespace) = coordinates(&req)?;
        let actor = self.open_api_caller(&req, app, Right::Edit)?;
        let key = path_key(&req)?;
        self.replica.transact(|s| edit::items::delete(s, &actor, app, cluster, namespace, &key)).await?;
        Ok(Response::empty(200))
    }
}
