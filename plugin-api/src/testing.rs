//! [`TestHost`]: a host in memory, so a module's handlers are unit-tested without the
//! real host: in-memory storage with the real semantics, canned services, captured
//! logs and published events, events fed to `next_event`, and requests routed the way
//! the host routes them.
//!
//! ```rust,ignore
//! #[test]
//! fn greets() {
//!     plugin_api::testing::run(async {
//!         let host = TestHost::new();
//!         let module = host.start::<Greeter>(serde_json::json!({"greeting": "hi"})).unwrap();
//!         let response = module.call(TestRequest::get("/greet/ada")).await;
//!         assert_eq!(response.status, 200);
//!         assert!(host.logs().iter().any(|(_, line)| line.contains("greeted ada")));
//!     })
//! }
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::error::ModuleError;
use crate::host::{Host, HostApi, Level};
use crate::module::Module;
use crate::request::{Request, Via};
use crate::response::Response;
use crate::routes::Routes;
use crate::services::{Event, ServiceInfo};
use crate::storage::{MemoryStorage, StorageTransport};

#[derive(Default)]
struct State {
    services: Vec<ServiceInfo>,
    logs: Vec<(Level, String)>,
    published: Vec<(String, serde_json::Value)>,
    events: VecDeque<Event>,
}

struct TestApi {
    state: Mutex<State>,
    event_ready: tokio::sync::Notify,
    storage: MemoryStorage,
}

impl TestApi {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The handle modules get: the shared state behind an `Arc`, so the futures it
/// returns (`next_event`) own what they wait on.
struct TestLink(Arc<TestApi>);

impl HostApi for TestLink {
    fn log(&self, level: Level, message: &str) {
        self.0.state().logs.push((level, message.to_string()));
    }

    fn services_json(&self) -> String {
        serde_json::to_string(&self.0.state().services).unwrap_or_else(|_| "[]".into())
    }

    fn publish(&self, topic: &str, payload: String) {
        let payload = serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null);
        self.0.state().published.push((topic.to_string(), payload));
    }

    fn next_event(&self) -> BoxFuture<'static, String> {
        let api = Arc::clone(&self.0);
        Box::pin(async move {
            loop {
                let ready = api.event_ready.notified();
                if let Some(event) = api.state().events.pop_front() {
                    return serde_json::to_string(&event).unwrap_or_default();
                }
                ready.await;
            }
        })
    }

    fn store_call(&self, _request: String) -> BoxFuture<'static, Result<String, String>> {
        let error = serde_json::json!({"code": "unavailable", "message": "the test host has no store administration"});
        Box::pin(std::future::ready(Err(error.to_string())))
    }

    fn storage_call(&self, request: String) -> BoxFuture<'static, Result<String, String>> {
        self.0.storage.call(request)
    }
}

/// A host in memory.
#[derive(Clone)]
pub struct TestHost {
    api: Arc<TestApi>,
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestHost")
    }
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHost {
    pub fn new() -> Self {
        let api =
            TestApi { state: Mutex::default(), event_ready: tokio::sync::Notify::new(), storage: MemoryStorage::new() };
        Self { api: Arc::new(api) }
    }

    /// The services `Host::services` answers.
    pub fn set_services(&self, services: Vec<ServiceInfo>) {
        self.api.state().services = services;
    }

    /// Queues an event for `Host::next_event`.
    pub fn send_event(&self, event: Event) {
        self.api.state().events.push_back(event);
        self.api.event_ready.notify_waiters();
    }

    /// Everything the module logged (through `Host::log` and `tracing`), in order.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.api.state().logs.clone()
    }

    /// Every `(topic, payload)` the module published, in order.
    pub fn published(&self) -> Vec<(String, serde_json::Value)> {
        self.api.state().published.clone()
    }

    /// The handle a module gets.
    pub fn host(&self) -> Host {
        Host::from_api(Arc::new(TestLink(Arc::clone(&self.api))))
    }

    /// Builds `M` the way the host does: config parsed (unknown keys logged), `init` run.
    pub fn start<M: Module>(&self, config: serde_json::Value) -> Result<TestModule<M>, ModuleError> {
        let (config, unknown) =
            crate::config::parse::<M::Config>(M::NAME, &config.to_string()).map_err(ModuleError::bad_request)?;
        let host = self.host();
        for key in unknown {
            host.warn(&format!("modules.config.{}: unknown key {key:?} ignored", M::NAME));
        }
        let module = M::init(host.clone(), config)?;
        Ok(TestModule { module: Arc::new(module), routes: M::routes(), host })
    }
}

/// A module started on a [`TestHost`].
pub struct TestModule<M: Module> {
    module: Arc<M>,
    routes: Routes<M>,
    host: Host,
}

impl<M: Module> std::fmt::Debug for TestModule<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestModule").field("name", &M::NAME).field("routes", &self.routes).finish()
    }
}

impl<M: Module> TestModule<M> {
    /// The module itself, for assertions on its state.
    pub fn module(&self) -> &Arc<M> {
        &self.module
    }

    /// Routes `request` as the host would (404 for no route, 405 for another method)
    /// and runs its handler.
    pub async fn call(&self, request: TestRequest) -> Response {
        let TestRequest { mut request, target } = request;
        let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
        let (index, params) = match self.routes.find(&request.method, path) {
            Ok(found) => found,
            Err(404) => return ModuleError::not_found(format!("no route {path}")).to_response(),
            Err(status) => return ModuleError::new(status, "method_not_allowed", "method not allowed").to_response(),
        };
        let route = self.routes.list().nth(index).map(|r| r.path).unwrap_or_default();
        request.route = route.to_string();
        request.path = path.to_string();
        request.query = query.to_string();
        request.raw_target = target.clone();
        request.params = params.into_iter().collect();
        let label = format!("{} {}", request.method, request.path);
        match self.routes.call(index, Arc::clone(&self.module), request) {
            Some(handler) => crate::adapter::finish(handler.await, &self.host, &label),
            None => ModuleError::not_found("no such route").to_response(),
        }
    }
}

/// Runs an async test body on a fresh tokio runtime (the one handlers run on in a
/// real host), so module tests are plain `#[test]` functions.
pub fn run<F: std::future::Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the test")
        .block_on(test)
}

/// A request for [`TestModule::call`].
#[derive(Debug, Clone)]
pub struct TestRequest {
    request: Request,
    target: String,
}

impl TestRequest {
    /// `target`: path and query below the module's mount point, e.g. `/greet/ada?x=1`.
    pub fn new(method: &str, target: &str) -> Self {
        let request = Request {
            method: method.to_uppercase(),
            peer_addr: Some(SocketAddr::from(([127, 0, 0, 1], 40000))),
            user: Some("admin".into()),
            request_id: "test".into(),
            ..Request::default()
        };
        Self { request, target: target.to_string() }
    }
    pub fn get(target: &str) -> Self {
        Self::new("GET", target)
    }
    pub fn post(target: &str) -> Self {
        Self::new("POST", target)
    }
    pub fn put(target: &str) -> Self {
        Self::new("PUT", target)
    }
    pub fn delete(target: &str) -> Self {
        Self::new("DELETE", target)
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request.headers.push((name.to_string(), value.to_string()));
        self
    }
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.request.body = body.to_string().into_bytes();
        self.header("content-type", "application/json")
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.request.body = body.into();
        self
    }
    /// As if it came from `peer`, the host user kept (an operator's token over TCP).
    pub fn from_peer(mut self, peer: SocketAddr) -> Self {
        self.request.peer_addr = Some(peer);
        self
    }
    /// As if it came from `peer` on a public route (no host user).
    pub fn public_from(mut self, peer: SocketAddr) -> Self {
        self.request.peer_addr = Some(peer);
        self.request.user = None;
        self
    }
    pub fn via(mut self, via: Via) -> Self {
        self.request.via = via;
        self
    }
}
