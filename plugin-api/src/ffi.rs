//! The FFI-safe boundary between the host and a module, in abi_stable types. Authors
//! never touch this: the SDK (`crate::sdk`) converts to and from ordinary Rust types.
//! Everything here is part of the ABI: change it only together with the crate version.
// abi_stable's derives and `#[sabi_trait]` expand to unsafe FFI glue (vtables, layout
// constants); this file is the one place that glue lives.
#![allow(unsafe_code, non_local_definitions)]

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, RResult, RStr, RString, RVec, Tuple2};
use abi_stable::{StableAbi, declare_root_module_statics, package_version_strings, sabi_trait};
use async_ffi::FfiFuture;

/// One HTTP request routed to a module.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiRequest {
    pub method: RString,
    /// The path below `/api/module/{name}`, e.g. `/greet/ada`.
    pub path: RString,
    /// The matched route pattern, e.g. `/greet/{name}`.
    pub route: RString,
    /// The index of the matched route in the manifest's route list: the module
    /// dispatches on it, never on strings.
    pub route_index: u32,
    pub params: RVec<Tuple2<RString, RString>>,
    /// The raw query string, without `?`.
    pub query: RString,
    /// The request target exactly as the client sent it (path and query, still
    /// percent-encoded, with any host prefix): what client signatures are computed over.
    pub raw_target: RString,
    /// `ip:port` of the TCP peer; empty on the unix socket.
    pub peer_addr: RString,
    /// Where it arrived: 0 the admin API over TCP, 1 the admin API over the unix
    /// socket, 2 the module's own listener.
    pub via: u8,
    /// The host user the token gate authenticated; empty on public routes.
    pub user: RString,
    pub headers: RVec<Tuple2<RString, RString>>,
    pub body: RVec<u8>,
    pub request_id: RString,
}

#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiResponse {
    pub status: u16,
    pub headers: RVec<Tuple2<RString, RString>>,
    pub body: RVec<u8>,
}

#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiRoute {
    /// `GET`, `POST`, …
    pub method: RString,
    /// Relative to `/api/module/{name}` (or to the root of the module's own
    /// listener), with `{param}` and `{*rest}` segments.
    pub path: RString,
    pub summary: RString,
    /// The module authenticates these requests itself: the host's token gate lets
    /// them through (body limits, timeouts and audit still apply).
    pub public: bool,
    /// Bit 0: served on the admin API under `/api/module/{name}`; bit 1: served on
    /// the module's own listener, when the operator gives it one.
    pub mount: u8,
    /// The handler's own timeout in milliseconds; 0 means the host's default.
    pub timeout_ms: u64,
}

#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiManifest {
    pub name: RString,
    pub version: RString,
    pub description: RString,
    /// What the module expects of the host beyond the ABI (`crate::API_LEVEL`).
    pub api_level: u32,
    pub routes: RVec<FfiRoute>,
}

/// The module object the host holds. Every method is wrapped by the SDK in
/// `catch_unwind`: a panic never crosses this boundary.
#[sabi_trait]
pub trait ModuleObj: Send + Sync {
    fn manifest(&self) -> FfiManifest;
    /// Runs on the module's own runtime; the host only polls the returned future.
    fn handle(&self, request: FfiRequest) -> FfiFuture<FfiResponse>;
    /// `Ok(detail)` when healthy.
    fn health(&self) -> RResult<RString, RString>;
    /// The module's own metric families, as JSON (`crate::metrics`).
    fn metrics(&self) -> RString;
    /// Called once, after the last request, before the host forgets the module.
    #[sabi(last_prefix_field)]
    fn shutdown(&self);
}

pub type ModuleBox = ModuleObj_TO<'static, RBox<()>>;

/// What the host offers a module. Implemented by the host; called from module threads.
#[sabi_trait]
pub trait HostObj: Send + Sync {
    /// `level`: 1 error, 2 warn, 3 info, 4 debug, 5 trace. Logged with the module's name.
    fn log(&self, level: u8, message: RStr<'_>);
    /// The registered services with state, pid and ports, as a JSON array.
    fn services_json(&self) -> RString;
    /// Publishes an event (`topic`, JSON `payload`) on the host's event bus.
    fn publish(&self, topic: RStr<'_>, payload: RStr<'_>);
    /// The next event on the host's bus (JSON), waiting for one. A module that falls
    /// behind gets `{"kind":"lagged","missed":N}` and continues with newer events.
    fn next_event(&self) -> FfiFuture<RString>;
    /// A store-administration request (JSON; see the host's `modules/store_service.rs`),
    /// answered `Ok(JSON)` or `Err(message)`. Only for modules the host's config grants
    /// it (`modules.store_access`); others get an error saying so.
    fn store_call(&self, request: RStr<'_>) -> FfiFuture<RResult<RString, RString>>;
    /// A request on the module's own storage (JSON; `crate::storage`), answered
    /// `Ok(JSON)` or `Err(JSON {"code","message"})`.
    #[sabi(last_prefix_field)]
    fn storage_call(&self, request: RStr<'_>) -> FfiFuture<RResult<RString, RString>>;
}

pub type HostBox = HostObj_TO<'static, RBox<()>>;

/// The root module every module library exports (through `export_module!`).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ModuleRootRef)))]
#[sabi(missing_field(panic))]
pub struct ModuleRoot {
    /// The module's manifest, readable before `init`: the host names the module's
    /// services, config and store after it.
    pub manifest: extern "C" fn() -> FfiManifest,
    /// Builds the module with the host's services and the module's config (JSON).
    #[sabi(last_prefix_field)]
    pub init: extern "C" fn(host: HostBox, config: RString) -> RResult<ModuleBox, RString>,
}

impl std::fmt::Debug for ModuleRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ModuleRoot")
    }
}

impl RootModule for ModuleRootRef {
    declare_root_module_statics! {ModuleRootRef}
    const BASE_NAME: &'static str = "apollo_module";
    const NAME: &'static str = "apollo_module";
    // The plugin-api crate version: a module built against another one is refused.
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
