//! The host side of `plugin_api::ffi::HostObj`: what a module may ask of the host —
//! log (into the host's tracing, tagged with the module), its own storage
//! (`storage_service.rs`), a read-only view of the services, publishing events, and (for the modules
//! granted it) store administration (`store_service.rs`). Calls come from a
//! host worker (handlers are polled there) or from the module's own threads, so async
//! host work runs under `block_in_place` + `Handle::block_on`: the worker is handed
//! over for the moment and no runtime is started inside another. (The host therefore
//! needs the multi-threaded runtime, which `apollo serve` uses.) No call may unwind into
//! the module: every method catches panics and answers an error or an empty value.

use std::sync::Arc;

use abi_stable::std_types::{RResult, RStr, RString};
use plugin_api::ffi::HostObj;

use super::store_service::StoreAdmin;
use crate::events::{Event, EventBus};
use crate::store::Store;
use crate::supervisor::Supervisor;

#[derive(Clone)]
pub struct HostServices {
    pub module: String,
    /// This module's subscription to the event bus (for `next_event`).
    pub subscription: Arc<tokio::sync::Mutex<tokio::sync::broadcast::Receiver<Event>>>,
    pub store: Arc<dyn Store>,
    pub supervisor: Arc<Supervisor>,
    pub events: EventBus,
    pub runtime: tokio::runtime::Handle,
    /// Store administration, for the modules `modules.store_access` names.
    pub store_admin: Arc<StoreAdmin>,
}

impl std::fmt::Debug for HostServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostServices").field("module", &self.module).finish()
    }
}

impl HostServices {
    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        tokio::task::block_in_place(|| self.runtime.block_on(future))
    }
}

/// Runs `f`, turning a panic into `fallback` (a panic must not cross the FFI boundary).
fn guarded<T>(what: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!("host service {what} panicked; answered with a fallback");
        fallback
    })
}

impl HostObj for HostServices {
    fn log(&self, level: u8, message: RStr<'_>) {
        guarded("log", (), || {
            let module = self.module.as_str();
            let message = message.as_str();
            match level {
                1 => tracing::error!(target: "module", module, "{message}"),
                2 => tracing::warn!(target: "module", module, "{message}"),
                3 => tracing::info!(target: "module", module, "{message}"),
                4 => tracing::debug!(target: "module", module, "{message}"),
                _ => tracing::trace!(target: "module", module, "{message}"),
            }
        })
    }

    fn services_json(&self) -> RString {
        guarded("services_json", RString::from("[]"), || {
            let statuses = self.block_on(self.supervisor.statuses());
            serde_json::to_string(&statuses).unwrap_or_else(|_| "[]".into()).into()
        })
    }

    fn publish(&self, topic: RStr<'_>, payload: RStr<'_>) {
        guarded("publish", (), || {
            self.events.publish(Event::ModuleEvent {
                module: self.module.clone(),
                topic: topic.as_str().to_string(),
                payload: payload.as_str().to_string(),
            })
        })
    }

    fn next_event(&self) -> async_ffi::FfiFuture<RString> {
        use async_ffi::FutureExt;
        use tokio::sync::broadcast::error::RecvError;
        let subscription = Arc::clone(&self.subscription);
        async move {
            let mut receiver = subscription.lock().await;
            let text = match receiver.recv().await {
                Ok(event) => serde_json::to_string(&event).unwrap_or_default(),
                Err(RecvError::Lagged(missed)) => serde_json::json!({"kind": "lagged", "missed": missed}).to_string(),
                Err(RecvError::Closed) => serde_json::json!({"kind": "closed"}).to_string(),
            };
            RString::from(text)
        }
        .into_ffi()
    }

    fn store_call(&self, request: RStr<'_>) -> async_ffi::FfiFuture<RResult<RString, RString>> {
        use async_ffi::FutureExt;
        let (admin, module, request) = (Arc::clone(&self.store_admin), self.module.clone(), request.to_string());
        // The work (database I/O, blocking-pool SQLite calls) needs the host's runtime,
        // but the module polls this future on its own: run it there and await the handle.
        let work = self.runtime.spawn(async move { admin.call(&module, &request).await });
        async move {
            match work.await {
                Ok(Ok(value)) => RResult::ROk(RString::from(value.to_string())),
                Ok(Err(error)) => RResult::RErr(RString::from(error.to_json())),
                Err(e) => {
                    let error = super::store_service::CallError {
                        code: "internal",
                        message: format!("store call failed in the host: {e}"),
                    };
                    RResult::RErr(RString::from(error.to_json()))
                }
            }
        }
        .into_ffi()
    }

    fn storage_call(&self, request: RStr<'_>) -> async_ffi::FfiFuture<RResult<RString, RString>> {
        use async_ffi::FutureExt;
        let (store, module, request) = (Arc::clone(&self.store), self.module.clone(), request.to_string());
        // Same as `store_call`: the work runs on the host's runtime, the module awaits it.
        let work =
            self.runtime.spawn(async move { super::storage_service::call(store.as_ref(), &module, &request).await });
        async move {
            match work.await {
                Ok(Ok(answer)) => RResult::ROk(RString::from(answer)),
                Ok(Err(error)) => RResult::RErr(RString::from(error)),
                Err(e) => RResult::RErr(RString::from(
                    serde_json::json!({"code": "internal", "message": format!("storage call failed in the host: {e}")})
                        .to_string(),
                )),
            }
        }
        .into_ffi()
    }
}
