//! [`Host`]: the host's services as a module sees them — logging, the services, the
//! event bus, the module's own storage, and (for modules the operator grants it)
//! store administration. Behind it is either the real host across the FFI boundary
//! or [`crate::testing::TestHost`]; authors see the same handle.

use std::sync::Arc;

use abi_stable::std_types::{RResult, RStr};
use futures::future::BoxFuture;
use serde::Serialize;

use crate::ffi::HostBox;
use crate::services::{Event, ServiceInfo};
use crate::storage::{Storage, StorageTransport};
use crate::store_admin::StoreAdmin;

/// Log levels for [`Host::log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// What a host offers, in plain Rust: implemented over the FFI object and by the
/// test host.
pub(crate) trait HostApi: Send + Sync {
    fn log(&self, level: Level, message: &str);
    fn services_json(&self) -> String;
    fn publish(&self, topic: &str, payload: String);
    fn next_event(&self) -> BoxFuture<'static, String>;
    fn store_call(&self, request: String) -> BoxFuture<'static, Result<String, String>>;
    fn storage_call(&self, request: String) -> BoxFuture<'static, Result<String, String>>;
}

/// The host's services. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    api: Arc<dyn HostApi>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host")
    }
}

impl Host {
    pub(crate) fn from_ffi(inner: HostBox) -> Self {
        Self::from_api(Arc::new(FfiHost(inner)))
    }

    pub(crate) fn from_api(api: Arc<dyn HostApi>) -> Self {
        Self { api }
    }

    /// Logs through the host's logger, tagged with the module's name. (`tracing`'s
    /// macros at INFO and above land there too.)
    pub fn log(&self, level: Level, message: &str) {
        self.api.log(level, message);
    }

    pub fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }

    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message);
    }

    pub fn error(&self, message: &str) {
        self.log(Level::Error, message);
    }

    /// The registered services, as the supervisor sees them now.
    pub fn services(&self) -> Vec<ServiceInfo> {
        serde_json::from_str(&self.api.services_json()).unwrap_or_default()
    }

    /// Publishes an event (`module_event` with this topic and payload) on the host's bus.
    pub fn publish<T: Serialize>(&self, topic: &str, payload: &T) {
        let payload = serde_json::to_string(payload).unwrap_or_else(|_| "null".into());
        self.api.publish(topic, payload);
    }

    /// Waits for the next event on the host's bus. Clones of a `Host` share one
    /// subscription.
    pub async fn next_event(&self) -> Event {
        let text = self.api.next_event().await;
        serde_json::from_str(&text).unwrap_or(Event::Other)
    }

    /// The module's own storage: ordered keys, versioned writes, atomic multi-key
    /// commits and a change feed, on whichever store the host runs (shared by every
    /// host of a fleet on MongoDB).
    pub fn storage(&self) -> Storage {
        Storage::new(Arc::new(StorageLink(Arc::clone(&self.api))))
    }

    /// The host's store administration, as typed calls (record pages, imports,
    /// counts, checksums, migrations; see [`crate::store_admin`]), for modules the
    /// host's `modules.store_access` names.
    pub fn store_admin(&self) -> StoreAdmin {
        StoreAdmin::new(Arc::clone(&self.api))
    }
}

struct StorageLink(Arc<dyn HostApi>);

impl StorageTransport for StorageLink {
    fn call(&self, request: String) -> BoxFuture<'static, Result<String, String>> {
        self.0.storage_call(request)
    }
}

/// The real host, across the FFI boundary.
struct FfiHost(HostBox);

fn answer(result: RResult<abi_stable::std_types::RString, abi_stable::std_types::RString>) -> Result<String, String> {
    match result {
        RResult::ROk(text) => Ok(text.into_string()),
        RResult::RErr(text) => Err(text.into_string()),
    }
}

impl HostApi for FfiHost {
    fn log(&self, level: Level, message: &str) {
        self.0.log(level as u8, RStr::from(message));
    }

    fn services_json(&self) -> String {
        self.0.services_json().into_string()
    }

    fn publish(&self, topic: &str, payload: String) {
        self.0.publish(RStr::from(topic), RStr::from(payload.as_str()));
    }

    fn next_event(&self) -> BoxFuture<'static, String> {
        let event = self.0.next_event();
        Box::pin(async move { event.await.into_string() })
    }

    fn store_call(&self, request: String) -> BoxFuture<'static, Result<String, String>> {
        let call = self.0.store_call(RStr::from(request.as_str()));
        Box::pin(async move { answer(call.await) })
    }

    fn storage_call(&self, request: String) -> BoxFuture<'static, Result<String, String>> {
        let call = self.0.storage_call(RStr::from(request.as_str()));
        Box::pin(async move { answer(call.await) })
    }
}
