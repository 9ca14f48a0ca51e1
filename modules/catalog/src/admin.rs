//! The operator's routes (behind the host's token gate, admin API only): ACL tokens —
//! created with a secret shown once, listed without secrets, deleted — and a status
//! page (this node, the fleet's heartbeats, parked queries, limits).

use std::sync::Arc;

use plugin_api::storage::Write;
use plugin_api::{HandlerResult, ModuleError, Request, Response};
use rand::Rng;
use serde_json::json;

use crate::Catalog;
use crate::model::{self, TokenRecord};

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

fn uuid_like() -> String {
    let h = random_hex(16);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

impl Catalog {
    pub(crate) async fn admin_create_token(self: Arc<Self>, req: Request) -> HandlerResult {
        let body: serde_json::Value = if req.body.is_empty() { json!({}) } else { req.json()? };
        let rights = body["rights"].as_str().unwrap_or("write").to_string();
        if rights != "read" && rights != "write" {
            return Err(ModuleError::bad_request("rights must be \"read\" or \"write\""));
        }
        let description = body["description"].as_str().unwrap_or_default().to_string();
        let secret = uuid_like();
        let token = TokenRecord {
            accessor: uuid_like(),
            description,
            secret_sha256: model::sha256_hex(&secret),
            rights,
            created_ms: model::now_ms(),
        };
        let key = format!("{}{}", model::TOKEN, token.accessor);
        let text = serde_json::to_string(&token)?;
        self.replica.transact(|_| Ok((vec![Write::put(key.clone(), text.clone()).expect_version(0)], ()))).await?;
        self.host.info(&format!("catalog: ACL token {} ({}) created", token.accessor, token.rights));
        Ok(Response::json(&json!({
            "AccessorID": token.accessor, "SecretID": secret, "Description": token.description, "Rights": token.rights,
        }))
        .with_status(201))
    }

    pub(crate) async fn admin_list_tokens(self: Arc<Self>, _req: Request) -> HandlerResult {
        let state = self.replica.read();
        let list: Vec<_> = state
            .tokens
            .values()
            .map(|t| json!({"AccessorID": t.accessor, "Description": t.description, "Rights": t.rights, "CreatedMs": t.created_ms}))
            .collect();
        Ok(Response::json(&list))
    }

    pub(crate) async fn admin_delete_token(self: Arc<Self>, req: Request) -> HandlerResult {
        let accessor = req.required_param("accessor")?.to_string();
        let key = format!("{}{}", model::TOKEN, accessor);
        let found = self
            .replica
            .transact(|state| {
                if !state.tokens.contains_key(&accessor) {
                    return Ok((Vec::new(), false));
                }
                Ok((vec![Write::delete(key.clone()).expect_version(state.version(&key))], true))
            })
            .await?;
        if !found {
            return Err(ModuleError::not_found(format!("no ACL token {accessor}")));
        }
        Ok(Response::empty(204))
    }

    pub(crate) async fn admin_status(self: Arc<Self>, _req: Request) -> HandlerResult {
        let state = self.replica.read();
        let now = model::now_ms();
        let nodes: Vec<_> = state
            .nodes
            .iter()
            .map(|(name, n)| {
                json!({"name": name, "serf": n.record.serf_status,
                       "heartbeat_age_ms": state.beats.get(name).map(|b| now - b)})
            })
            .collect();
        let l = &self.settings.limits;
        Ok(Response::json(&json!({
            "node": self.settings.node_name,
            "datacenter": self.settings.datacenter,
            "nodes": nodes,
            "services": state.services.len(),
            "checks": state.checks.len(),
            "kv_keys": state.kv.len(),
            "feed_head": self.replica.head(),
            "parked_queries": self.metrics.parked.with(&[]).get(),
            "watched_topics": self.replica.watchers.watched_topics(),
            "script_checks": self.settings.enable_script_checks,
            "limits": {"max_services": l.max_services, "max_checks": l.max_checks,
                       "max_kv_value_bytes": l.max_kv_value_bytes, "max_kv_total_bytes": l.max_kv_total_bytes,
                       "max_kv_keys": l.max_kv_keys},
        })))
    }
}
