//! What module authors write against: ordinary Rust types for requests, responses,
//! routes and host services, and the [`Module`] trait with an async handler.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use abi_stable::std_types::{RResult, RStr};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ffi::HostBox;

/// A request routed to the module.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// Below `/api/module/{name}`.
    pub path: String,
    /// The matched route pattern (as declared in [`Module::routes`]).
    pub route: String,
    pub params: HashMap<String, String>,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub request_id: String,
}

impl Request {
    /// A `{param}` of the matched route.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A query-string parameter (percent-decoding `+` and `%XX`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| decode(v))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or a ready 400 response saying what is wrong.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Response> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Response::error(400, "bad_request", &format!("invalid JSON body: {e}")))
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response from the module.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json<T: Serialize>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self { status: 200, headers: vec![("content-type".into(), "application/json".into())], body },
            Err(e) => Self::error(500, "internal", &format!("cannot encode the response: {e}")),
        }
    }

    pub fn text(text: impl Into<String>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: text.into().into_bytes(),
        }
    }

    /// The host's error shape: `{"error":{"code","message"}}`.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        let mut r = Self::json(&serde_json::json!({"error": {"code": code, "message": message}}));
        r.status = status;
        r
    }

    pub fn not_found() -> Self {
        Self::error(404, "not_found", "no such route in this module")
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

/// One route a module serves, below `/api/module/{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
}

impl Route {
    pub const fn get(path: &'static str, summary: &'static str) -> Self {
        Self { method: "GET", path, summary }
    }
    pub const fn post(path: &'static str, summary: &'static str) -> Self {
        Self { method: "POST", path, summary }
    }
    pub const fn put(path: &'static str, summary: &'static str) -> Self {
        Self { method: "PUT", path, summary }
    }
    pub const fn delete(path: &'static str, summary: &'static str) -> Self {
        Self { method: "DELETE", path, summary }
    }
}

/// Log levels for [`Host::log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// The host's services, as the module sees them. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostBox>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host")
    }
}

impl Host {
    pub(crate) fn new(inner: HostBox) -> Self {
        Self { inner: Arc::new(inner) }
    }

    /// Logs through the host's logger, tagged with the module's name.
    pub fn log(&self, level: Level, message: &str) {
        self.inner.log(level as u8, RStr::from(message));
    }

    pub fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }

    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message);
    }

    /// Reads from the module's persistent key-value store.
    pub fn kv_get(&self, key: &str) -> Result<Option<String>, String> {
        match self.inner.kv_get(RStr::from(key)) {
            RResult::ROk(v) => Ok(v.into_option().map(Into::into)),
            RResult::RErr(e) => Err(e.into()),
        }
    }

    pub fn kv_set(&self, key: &str, value: &str) -> Result<(), String> {
        self.inner.kv_set(RStr::from(key), RStr::from(value)).into_result().map_err(Into::into)
    }

    /// The host's services: `[{"name","state","pid","ports",...}]`.
    pub fn services(&self) -> serde_json::Value {
        serde_json::from_str(self.inner.services_json().as_str()).unwrap_or(serde_json::Value::Null)
    }

    /// Publishes an event on the host's event bus.
    pub fn publish(&self, topic: &str, payload: &serde_json::Value) {
        self.inner.publish(RStr::from(topic), RStr::from(payload.to_string().as_str()));
    }

    /// Waits for the next event on the host's bus (service states, model changes,
    /// module loads, task runs…): `{"kind": …, …}`. Each `Host` shares one subscription.
    pub async fn next_event(&self) -> serde_json::Value {
        let event = self.inner.next_event().await;
        serde_json::from_str(event.as_str()).unwrap_or(serde_json::Value::Null)
    }

    /// A store-administration request to the host (`{"op": ...}`), for modules the
    /// host's `modules.store_access` names; `Err` carries the host's code and one-line
    /// reason.
    pub async fn store(&self, request: &serde_json::Value) -> Result<serde_json::Value, StoreCallError> {
        let answer = self.inner.store_call(RStr::from(request.to_string().as_str())).await;
        match answer {
            RResult::ROk(text) => serde_json::from_str(text.as_str())
                .map_err(|e| StoreCallError { code: "internal".into(), message: format!("bad store answer: {e}") }),
            RResult::RErr(text) => Err(serde_json::from_str(text.as_str())
                .unwrap_or_else(|_| StoreCallError { code: "internal".into(), message: text.into_string() })),
        }
    }
}

/// Why the host refused or failed a [`Host::store`] call. `code` is one of
/// `bad_request`, `not_found`, `forbidden`, `unavailable`, `conflict`, `internal`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct StoreCallError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for StoreCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a module author implements. The handler runs on the module's own tokio
/// runtime (a cdylib has its own copy of tokio), so `tokio::spawn` and timers work.
pub trait Module: Sized + Send + Sync + 'static {
    /// The module's name: its routes live under `/api/module/{NAME}/`.
    const NAME: &'static str;
    const VERSION: &'static str;
    const DESCRIPTION: &'static str;

    fn routes() -> Vec<Route>;

    /// Builds the module. `config` is the module's section of the host config (or null).
    fn init(host: Host, config: serde_json::Value) -> Result<Self, String>;

    /// Serves one request; `req.route` says which declared route matched.
    fn handle(&self, req: Request) -> impl Future<Output = Response> + Send;

    /// `Ok(detail)` when healthy.
    fn health(&self) -> Result<String, String> {
        Ok("ok".into())
    }

    /// Called once before the host forgets this instance (reload, disable, shutdown).
    fn shutdown(&self) {}
}
