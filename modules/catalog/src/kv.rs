//! Consul's KV store (contract §1.5): values kept base64 so any bytes survive, `?cas=`
//! on versions the storage checks, `?flags=`, `?recurse`, `?keys` with `?separator=`,
//! `?raw`, and blocking reads (a missing key is a 404 that still carries
//! `X-Consul-Index`). Sizes are bounded by `limits.max_kv_*`.

use std::collections::BTreeSet;
use std::sync::Arc;

use plugin_api::signing::{base64_decode, base64_encode};
use plugin_api::storage::{MAX_COMMIT_WRITES, MAX_KEY_BYTES, Write};
use plugin_api::{Request, Response};
use serde_json::{Value, json};

use crate::Catalog;
use crate::blocking;
use crate::model::{self, KvRecord};
use crate::state::{State, Stored, topic};
use crate::wire::{self, Answer, Fail};

fn key_of(req: &Request) -> String {
    req.param("key").unwrap_or_default().to_string()
}

fn entry_json(key: &str, s: &Stored<KvRecord>) -> Value {
    let value = s.record.value.as_ref().filter(|v| !v.is_empty());
    json!({"LockIndex": 0, "Key": key, "Flags": s.record.flags, "Value": value,
           "CreateIndex": s.create_index, "ModifyIndex": s.modify_index})
}

fn u64_param(req: &Request, name: &str, message: &str) -> Result<Option<u64>, Fail> {
    match req.query_param(name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| Fail::bad_request(message.to_string())),
    }
}

/// What a KV read answers: the entries' JSON, or `None` for a 404.
enum Read {
    Entries(Option<Value>),
    Raw(Option<Vec<u8>>),
}

impl Catalog {
    pub(crate) async fn kv_get(self: Arc<Self>, req: Request) -> Answer {
        let key = key_of(&req);
        let recurse = wire::flag(&req, "recurse")?;
        let keys = wire::flag(&req, "keys")?;
        let raw = wire::flag(&req, "raw")?;
        let separator = req.query_param("separator").unwrap_or_default();
        let many = recurse || keys;
        let topics = if many { vec![topic::KV.to_string()] } else { vec![topic::kv_key(&key)] };
        let blocking = blocking::Blocking::from_request(&req)?;
        drop(req);
        let (read, index) = blocking::run(&self.replica, &self.metrics.parked, blocking, topics, |state: &State| {
            if keys {
                let mut listed = BTreeSet::new();
                for k in state.kv.range(key.clone()..).map(|(k, _)| k).take_while(|k| k.starts_with(&key)) {
                    let rest = &k[key.len()..];
                    match (separator.is_empty(), rest.find(separator.as_str())) {
                        (false, Some(at)) => listed.insert(format!("{key}{}", &rest[..at + separator.len()])),
                        _ => listed.insert(k.clone()),
                    };
                }
                let index = state.index(&[topic::KV.into()]);
                let value = (!listed.is_empty()).then(|| json!(listed));
                return Ok((Read::Entries(value), index));
            }
            if recurse {
                let list: Vec<Value> = state
                    .kv
                    .range(key.clone()..)
                    .take_while(|(k, _)| k.starts_with(&key))
                    .map(|(k, s)| entry_json(k, s))
                    .collect();
                let index = state.index(&[topic::KV.into()]);
                return Ok((Read::Entries((!list.is_empty()).then_some(Value::Array(list))), index));
            }
            match state.kv.get(&key) {
                Some(s) if raw => {
                    let bytes = s.record.value.as_deref().and_then(base64_decode).unwrap_or_default();
                    Ok((Read::Raw(Some(bytes)), s.modify_index))
                }
                Some(s) => Ok((Read::Entries(Some(json!([entry_json(&key, s)]))), s.modify_index)),
                None => {
                    let index = state.index(&[topic::kv_key(&key), topic::KV.into()]);
                    Ok((if raw { Read::Raw(None) } else { Read::Entries(None) }, index))
                }
            }
        })
        .await?;
        let response = match read {
            Read::Entries(Some(value)) => wire::json(&value),
            Read::Raw(Some(bytes)) => wire::read_headers(Response {
                status: 200,
                // Never content-sniffed by browsers (CVE-2020-25864).
                headers: vec![
                    ("content-type".into(), "text/plain; charset=utf-8".into()),
                    ("x-content-type-options".into(), "nosniff".into()),
                ],
                body: bytes,
            }),
            // Consul's miss: an empty 404.
            Read::Entries(None) | Read::Raw(None) => wire::read_headers(Response::empty(404)),
        };
        Ok(wire::indexed(response, index))
    }

    pub(crate) async fn kv_put(self: Arc<Self>, req: Request) -> Answer {
        let key = key_of(&req);
        if key.is_empty() {
            return Err(Fail::bad_request("Missing key name"));
        }
        if model::kv_key(&key).len() > MAX_KEY_BYTES {
            return Err(Fail::bad_request(format!("Key too long (over {} bytes)", MAX_KEY_BYTES - model::KV.len())));
        }
        if req.query_param("acquire").is_some() || req.query_param("release").is_some() {
            return Err(Fail::bad_request("Sessions (acquire/release) are not supported by this agent"));
        }
        let limits = self.settings.limits.clone();
        if req.body.len() > limits.max_kv_value_bytes {
            return Err(Fail::too_large(format!(
                "Request body({} bytes) too large, max size: {} bytes.",
                req.body.len(),
                limits.max_kv_value_bytes
            )));
        }
        let flags = u64_param(&req, "flags", "Invalid flags")?.unwrap_or(0);
        let cas = u64_param(&req, "cas", "Invalid cas index")?;
        let value = (!req.body.is_empty()).then(|| base64_encode(&req.body));
        let stored_key = model::kv_key(&key);
        let done = self
            .replica
            .transact(|state| {
                let old = state.kv.get(&key);
                if let Some(cas) = cas {
                    let current = old.map_or(0, |s| s.modify_index);
                    if cas != current {
                        return Ok((Vec::new(), false));
                    }
                }
                if old.is_none() {
                    if state.kv.len() >= limits.max_kv_keys {
                        return Err(plugin_api::ModuleError::new(
                            413,
                            "too_large",
                            "Too many KV keys (limits.max_kv_keys)",
                        ));
                    }
                    let added = key.len() + value.as_ref().map_or(0, String::len);
                    if state.kv_bytes() + added > limits.max_kv_total_bytes {
                        return Err(plugin_api::ModuleError::new(
                            413,
                            "too_large",
                            "The KV store is full (limits.max_kv_total_bytes)",
                        ));
                    }
                }
                let record = KvRecord { value: value.clone(), flags, create_index: old.map_or(0, |s| s.create_index) };
                let write = Write::put(stored_key.clone(), serde_json::to_string(&record)?)
                    .expect_version(state.version(&stored_key));
                Ok((vec![write], true))
            })
            .await?;
        Ok(Response::json(&done))
    }

    pub(crate) async fn kv_delete(self: Arc<Self>, req: Request) -> Answer {
        let key = key_of(&req);
        let recurse = wire::flag(&req, "recurse")?;
        let cas = u64_param(&req, "cas", "Invalid cas index")?;
        if !recurse && key.is_empty() {
            return Err(Fail::bad_request("Missing key name"));
        }
        loop {
            let (done, more) = self
                .replica
                .transact(|state| {
                    if !recurse {
                        let old = state.kv.get(&key);
                        if let Some(cas) = cas
                            && old.map_or(0, |s| s.modify_index) != cas
                        {
                            return Ok((Vec::new(), (false, false)));
                        }
                        if old.is_none() {
                            return Ok((Vec::new(), (true, false)));
                        }
                        let k = model::kv_key(&key);
                        return Ok((vec![Write::delete(k.clone()).expect_version(state.version(&k))], (true, false)));
                    }
                    let mut writes: Vec<Write> = state
                        .kv
                        .range(key.clone()..)
                        .take_while(|(k, _)| k.starts_with(&key))
                        .map(|(k, _)| {
                            let k = model::kv_key(k);
                            Write::delete(k.clone()).expect_version(state.version(&k))
                        })
                        .take(MAX_COMMIT_WRITES + 1)
                        .collect();
                    let more = writes.len() > MAX_COMMIT_WRITES;
                    writes.truncate(MAX_COMMIT_WRITES);
                    Ok((writes, (true, more)))
                })
                .await?;
            if !more {
                return Ok(Response::json(&done));
            }
        }
    }
}
