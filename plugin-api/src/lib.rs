//! The only crate Apollo modules depend on. A module is a `cdylib` that implements
//! [`Module`] and calls [`export_module!`] once; the host loads it from its modules
//! folder and mounts its routes under `/api/module/{name}/`.
//!
//! A complete module:
//!
//! ```rust,no_run
//! use plugin_api::{Host, Module, Request, Response, Route, export_module};
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
//!
//!     fn routes() -> Vec<Route> {
//!         vec![Route::get("/hello/{name}", "Greet someone"), Route::get("/visits", "Count of greetings")]
//!     }
//!
//!     fn init(host: Host, config: serde_json::Value) -> Result<Self, String> {
//!         let greeting = config["greeting"].as_str().unwrap_or("hello").to_string();
//!         Ok(Self { host, greeting })
//!     }
//!
//!     async fn handle(&self, req: Request) -> Response {
//!         match req.route.as_str() {
//!             "/hello/{name}" => {
//!                 let name = req.param("name").unwrap_or("stranger");
//!                 let visits = self.host.kv_get("visits").ok().flatten().and_then(|v| v.parse().ok()).unwrap_or(0u64) + 1;
//!                 let _ = self.host.kv_set("visits", &visits.to_string());
//!                 self.host.info(&format!("greeted {name}"));
//!                 Response::json(&serde_json::json!({ "message": format!("{}, {name}!", self.greeting) }))
//!             }
//!             "/visits" => Response::json(&serde_json::json!({ "visits": self.host.kv_get("visits").ok().flatten() })),
//!             _ => Response::not_found(),
//!         }
//!     }
//! }
//!
//! export_module!(Greeter);
//! # fn main() {}
//! ```
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
pub mod digest;
pub mod ffi;
mod logging;
mod sdk;
pub mod storage;

pub use adapter::PANIC_HEADER;
pub use sdk::{Host, Level, Module, Request, Response, Route, StoreCallError};
/// The tokio the module's runtime is built with: use this one (timers, spawn, I/O) so
/// handlers run on the runtime that drives them.
pub use tokio;
/// The `tracing` whose events are forwarded to the host's log (INFO and above).
pub use tracing;

/// Host features a module may rely on beyond the ABI itself. Bumped when the host
/// starts offering something new that modules can check for; a host refuses, at load
/// and in one line, a module built for a higher level than its own.
/// 1: log, kv, services, publish, next_event. 2: store_call (store administration).
pub const API_LEVEL: u32 = 2;

/// The plugin ABI version: this crate's version.
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
