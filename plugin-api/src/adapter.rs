//! The glue `export_module!` installs: wraps an author's [`Module`] in the FFI module
//! object, gives it its own tokio runtime (a cdylib has its own copy of tokio, which
//! the host's runtime does not drive), and catches every panic at the boundary
//! (a panic unwinding through an abi_stable shim would abort the host).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RString, RVec, Tuple2};
use async_ffi::{FfiFuture, FutureExt};

use crate::ffi::{FfiManifest, FfiRequest, FfiResponse, FfiRoute, HostBox, ModuleBox, ModuleObj, ModuleObj_TO};
use crate::sdk::{Host, Module, Request, Response};

/// The header a host reads to learn that a response came from a panicking handler.
pub const PANIC_HEADER: &str = "x-apollo-module-panic";

/// One runtime per module library, built on first use, with few threads: modules are
/// mostly I/O-bound and the host's own runtime does the heavy lifting.
fn runtime(name: &str) -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(format!("module-{name}"))
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the module's runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

struct Adapter<M: Module> {
    module: Arc<M>,
    runtime: &'static tokio::runtime::Runtime,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".into())
}

fn panic_response(module: &str, message: &str) -> FfiResponse {
    let mut r = to_ffi(Response::error(500, "module_panic", &format!("module {module} panicked: {message}")));
    r.headers.push(Tuple2(PANIC_HEADER.into(), "1".into()));
    r
}

fn to_ffi(r: Response) -> FfiResponse {
    FfiResponse {
        status: r.status,
        headers: r.headers.into_iter().map(|(k, v)| Tuple2(k.into(), v.into())).collect(),
        body: RVec::from(r.body),
    }
}

fn from_ffi(r: FfiRequest) -> Request {
    let pairs =
        |v: RVec<Tuple2<RString, RString>>| v.into_iter().map(|Tuple2(k, v)| (k.into_string(), v.into_string()));
    Request {
        method: r.method.into(),
        path: r.path.into(),
        route: r.route.into(),
        params: pairs(r.params).collect(),
        query: r.query.into(),
        headers: pairs(r.headers).collect(),
        body: r.body.into_vec(),
        request_id: r.request_id.into(),
    }
}

pub(crate) fn manifest<M: Module>() -> FfiManifest {
    FfiManifest {
        name: M::NAME.into(),
        version: M::VERSION.into(),
        description: M::DESCRIPTION.into(),
        api_level: crate::API_LEVEL,
        routes: M::routes()
            .into_iter()
            .map(|r| FfiRoute { method: r.method.into(), path: r.path.into(), summary: r.summary.into() })
            .collect(),
    }
}

impl<M: Module> ModuleObj for Adapter<M> {
    fn manifest(&self) -> FfiManifest {
        catch_unwind(manifest::<M>).unwrap_or_else(|p| FfiManifest {
            name: M::NAME.into(),
            version: M::VERSION.into(),
            description: format!("routes() panicked: {}", panic_message(&*p)).into(),
            api_level: crate::API_LEVEL,
            routes: RVec::new(),
        })
    }

    fn handle(&self, request: FfiRequest) -> FfiFuture<FfiResponse> {
        let module = Arc::clone(&self.module);
        let request = from_ffi(request);
        // A panic in the handler is caught by the module's runtime (JoinError) and
        // turned into a 500; it never unwinds into the host.
        let task = self.runtime.spawn(async move { module.handle(request).await });
        async move {
            match task.await {
                Ok(response) => to_ffi(response),
                Err(e) if e.is_panic() => panic_response(M::NAME, &panic_message(&*e.into_panic())),
                Err(_) => to_ffi(Response::error(503, "cancelled", "the module is shutting down")),
            }
        }
        .into_ffi()
    }

    fn health(&self) -> RResult<RString, RString> {
        match catch_unwind(AssertUnwindSafe(|| self.module.health())) {
            Ok(Ok(detail)) => RResult::ROk(detail.into()),
            Ok(Err(e)) => RResult::RErr(e.into()),
            Err(p) => RResult::RErr(format!("health() panicked: {}", panic_message(&*p)).into()),
        }
    }

    fn shutdown(&self) {
        let _ = catch_unwind(AssertUnwindSafe(|| self.module.shutdown()));
    }
}

/// The body of the `init` entry point `export_module!` generates.
pub fn init<M: Module>(host: HostBox, config: RString) -> RResult<ModuleBox, RString> {
    let built = catch_unwind(AssertUnwindSafe(|| -> Result<ModuleBox, String> {
        let runtime = runtime(M::NAME)?;
        let config = serde_json::from_str(config.as_str()).unwrap_or(serde_json::Value::Null);
        // Inside the module's runtime, so `init` may spawn tasks or start timers.
        let _entered = runtime.enter();
        let module = M::init(Host::new(host), config)?;
        Ok(ModuleObj_TO::from_value(Adapter { module: Arc::new(module), runtime }, TD_Opaque))
    }));
    match built {
        Ok(Ok(module)) => RResult::ROk(module),
        Ok(Err(e)) => RResult::RErr(e.into()),
        Err(p) => RResult::RErr(format!("init panicked: {}", panic_message(&*p)).into()),
    }
}
