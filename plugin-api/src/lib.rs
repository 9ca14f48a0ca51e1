//! The only crate Apollo modules depend on. A module is a `cdylib` that implements
//! [`Module`] and calls [`export_module!`] once; the host loads it from its modules
//! folder and mounts its routes under `/api/module/{name}/`.
//!
//! A complete module:
//!
//! ```rust,no_run
//! use std::sync::Arc;
//!
//! use plugin_api::{Host, HandlerResult, Module, ModuleError, Request, Response, Route, Routes, export_module};
//!
//! #[derive(Default, serde::Deserialize)]
//! #[serde(default)]
//! pub struct Config {
//!     greeting: Option<String>,
//! }
//!
//! pub struct Greeter {
//!     host: Host,
//!     greeting: String,
//! }
//!
//! impl Module for Greeter {
//!     const NAME: &'static str = "greeter";
//!     const VERSION: &'static str = "1.0.0";
//!     const DESCRIPTION: &'static str = "Greets people and counts visits";
//!     type Config = Config;
//!
//!     fn routes() -> Routes<Self> {
//!         Routes::new()
//!             .add(Route::get("/hello/{name}", "Greet someone"), Self::hello)
//!             .add(Route::get("/visits", "Count of greetings"), Self::visits)
//!     }
//!
//!     fn init(host: Host, config: Config) -> Result<Self, ModuleError> {
//!         Ok(Self { host, greeting: config.greeting.unwrap_or_else(|| "hello".into()) })
//!     }
//! }
//!
//! impl Greeter {
//!     async fn hello(self: Arc<Self>, req: Request) -> HandlerResult {
//!         let name = req.required_param("name")?;
//!         let storage = self.host.storage();
//!         let visits = storage.get("visits").await?.map_or(0, |e| e.value.parse().unwrap_or(0)) + 1;
//!         storage.put("visits", &visits.to_string()).await?;
//!         self.host.info(&format!("greeted {name}"));
//!         Ok(Response::json(&serde_json::json!({ "message": format!("{}, {name}!", self.greeting) })))
//!     }
//!
//!     async fn visits(self: Arc<Self>, _req: Request) -> HandlerResult {
//!         let visits = self.host.storage().get("visits").await?.map(|e| e.value);
//!         Ok(Response::json(&serde_json::json!({ "visits": visits })))
//!     }
//! }
//!
//! export_module!(Greeter);
//! # fn main() {}
//! ```
//!
//! Beyond that: [`Route::public`] for routes the module authenticates itself (the
//! request carries the peer address and the raw target for signatures, see
//! [`signing`]), [`Route::timeout`] for long polls, [`Mount`] for the module's own
//! listener, [`metrics`] for figures on the host's `/metrics`, [`Storage`] for
//! versioned writes, atomic commits and a change feed, [`replica::Replica`] to serve
//! from an in-memory copy of the storage kept current by that feed, and
//! [`testing::TestHost`] to unit-test handlers without a host.
//!
//! What the SDK does for you: every entry point catches panics (a handler panic becomes
//! a 500 naming the module; the host keeps serving), handlers run on the module's own
//! small tokio runtime, and the version of this crate is checked by the host when it
//! loads the library (a module built against another plugin-api version is refused with
//! one line naming both versions).
//!
//! What in-process loading cannot contain: a segfault, an `abort`, or an infinite loop
//! that never yields takes the host (or one of its threads) down with it. Only load
//! modules you trust.

mod adapter;
mod config;
#[doc(hidden)]
pub mod digest;
mod error;
#[doc(hidden)]
pub mod ffi;
mod host;
mod logging;
pub mod metrics;
mod module;
pub mod replica;
mod request;
mod response;
mod routes;
mod services;
pub mod signing;
pub mod storage;
pub mod store_admin;
pub mod testing;

#[doc(hidden)]
pub use adapter::PANIC_HEADER;
pub use error::ModuleError;
pub use host::{Host, Level};
pub use module::{Module, NoConfig};
pub use request::{Request, Via};
pub use response::Response;
pub use routes::{HandlerResult, Mount, Route, Routes};
pub use services::{Event, InstanceInfo, ServiceInfo};
pub use storage::Storage;
pub use store_admin::StoreCallError;
/// The tokio the module's runtime is built with: use this one (timers, spawn, I/O) so
/// handlers run on the runtime that drives them.
pub use tokio;
/// The `tracing` whose events are forwarded to the host's log (INFO and above).
pub use tracing;

/// Host features a module may rely on beyond the ABI itself. Bumped when the host
/// starts offering something new that modules can check for; a host refuses, at load
/// and in one line, a module built for a higher level than its own.
/// Levels within this ABI version (plugin-api 0.2): 1: log, services, events, store
/// administration, storage, metrics, public/listener routes, route timeouts.
#[doc(hidden)]
pub const API_LEVEL: u32 = 1;

/// The plugin ABI version: this crate's version.
#[doc(hidden)]
pub const ABI_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The symbol abi_stable looks up in a library (`ROOT_MODULE_LOADER_NAME`); a test
/// keeps this literal in step with the abi_stable in use.
#[doc(hidden)]
#[macro_export]
macro_rules! __root_module_symbol {
    () => {
        "_1as_0lib_1header_0root_bmodule_bloader"
    };
}

/// Items `export_module!` expands to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::adapter::{init, manifest_entry};
    pub use crate::ffi::{FfiManifest, HostBox, ModuleBox, ModuleRoot, ModuleRootRef};
    pub use abi_stable::library::{__call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult};
    pub use abi_stable::prefix_type::PrefixTypeTrait;
    pub use abi_stable::std_types::{RResult, RString};
}

/// Exports a [`Module`] implementation as the library's root module. Call it once, at
/// the crate root of the module's `cdylib`.
#[macro_export]
macro_rules! export_module {
    ($module:ty) => {
        #[doc(hidden)]
        #[allow(unsafe_code)]
        mod __apollo_module_export {
            use super::*;
            use p::PrefixTypeTrait as _;
            use $crate::__private as p;

            extern "C" fn init(host: p::HostBox, config: p::RString) -> p::RResult<p::ModuleBox, p::RString> {
                p::init::<$module>(host, config)
            }

            extern "C" fn manifest() -> p::FfiManifest {
                p::manifest_entry::<$module>()
            }

            fn root_module() -> p::ModuleRootRef {
                p::ModuleRoot { manifest, init }.leak_into_prefix()
            }

            extern "C" fn load_root_module() -> p::RootModuleResult {
                p::__call_root_module_loader(root_module)
            }

            // SAFETY: the header is what abi_stable's loader expects under this symbol:
            // built by abi_stable itself from our root module type, whose layout
            // constants let the host check the library before calling into it.
            #[unsafe(export_name = $crate::__root_module_symbol!())]
            pub static LIB_HEADER: p::LibHeader = unsafe {
                p::LibHeader::from_constructor::<p::ModuleRootRef>(load_root_module, p::CheckTypeLayout::Yes)
            };
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_exported_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(crate::__root_module_symbol!(), abi_stable::library::ROOT_MODULE_LOADER_NAME);
    }
}
