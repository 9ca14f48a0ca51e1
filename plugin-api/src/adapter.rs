//! The glue `export_module!` installs: wraps an author's [`Module`] in the FFI module
//! object, gives it its own tokio runtime (a cdylib has its own copy of tokio, which
//! the host's runtime does not drive) in whose context every handler is polled, and
//! catches every panic at the boundary (a panic unwinding through an abi_stable shim
//! would abort the host). Handlers must not block their thread (it is a host worker
//! while they are polled): blocking work goes to `plugin_api::tokio::task::spawn_blocking`.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use std::task::{Context, Poll};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RString, RVec, Tuple2};
use async_ffi::{FfiFuture, FutureExt};
use futures::future::BoxFuture;

use crate::error::ModuleError;
use crate::ffi::{FfiManifest, FfiRequest, FfiResponse, FfiRoute, HostBox, ModuleBox, ModuleObj, ModuleObj_TO};
use crate::host::Host;
use crate::module::Module;
use crate::request::{Request, Via};
use crate::response::Response;
use crate::routes::{HandlerResult, Routes};

/// The header a host reads to learn that a response came from a panicking handler.
pub const PANIC_HEADER: &str = "x-apollo-module-panic";

/// One runtime per module library (each loaded generation is a separate copy of the
/// library, so a separate runtime), built on first use, with one worker thread:
/// modules are mostly I/O-bound and their handlers are polled on the host's threads
/// anyway; the worker drives the module's own timers, I/O and spawned tasks. Every
/// thread costs the host memory (a stack, and a malloc arena of its own), times the
/// number of modules. Shut down when the module is (or when its init fails), so
/// retired generations leave no threads behind.
static RUNTIME: Mutex<Option<tokio::runtime::Runtime>> = Mutex::new(None);
/// Set once the runtime is shut down: a handler still held by the host (a parked
/// request on the module's listener) must then not be polled, as its timers and I/O
/// belong to a runtime that is gone — it is answered 503 instead.
static STOPPED: AtomicBool = AtomicBool::new(false);

fn runtime(name: &str) -> Result<tokio::runtime::Handle, String> {
    let _ = MODULE_NAME.set(name.to_string());
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() {
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("module-{name}"))
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the module's runtime: {e}"))?;
        *slot = Some(built);
        STOPPED.store(false, Ordering::Release);
    }
    Ok(slot.as_ref().map(|rt| rt.handle().clone()).expect("just built"))
}

/// Stops the module's runtime without waiting for its tasks (they belong to a module
/// the host no longer serves).
fn stop_runtime() {
    STOPPED.store(true, Ordering::Release);
    if let Some(rt) = RUNTIME.lock().unwrap_or_else(|p| p.into_inner()).take() {
        rt.shutdown_background();
    }
}

struct Adapter<M: Module> {
    module: Arc<M>,
    routes: Routes<M>,
    host: Host,
    runtime: tokio::runtime::Handle,
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
        raw_target: r.raw_target.into(),
        peer_addr: r.peer_addr.parse().ok(),
        via: Via::from_wire(r.via),
        user: Some(r.user.into_string()).filter(|u| !u.is_empty()),
        headers: pairs(r.headers).collect(),
        body: r.body.into_vec(),
        request_id: r.request_id.into(),
    }
}

/// A handler's error as the client sees it; server-side failures are logged here,
/// once, so handlers only return them.
pub(crate) fn finish(result: HandlerResult, host: &Host, request: &str) -> Response {
    match result {
        Ok(response) => response,
        Err(error) => {
            if error.status >= 500 {
                host.warn(&format!("{request}: {error}"));
            }
            error.to_response()
        }
    }
}

pub(crate) fn manifest<M: Module>() -> FfiManifest {
    FfiManifest {
        name: M::NAME.into(),
        version: M::VERSION.into(),
        description: M::DESCRIPTION.into(),
        api_level: crate::API_LEVEL,
        routes: M::routes()
            .list()
            .map(|r| FfiRoute {
                method: r.method.into(),
                path: r.path.into(),
                summary: r.summary.into(),
                public: r.public,
                mount: r.mount.bits(),
                timeout_ms: r.timeout.map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)),
            })
            .collect(),
    }
}

impl<M: Module> ModuleObj for Adapter<M> {
    fn manifest(&self) -> FfiManifest {
        manifest_entry::<M>()
    }

    fn handle(&self, request: FfiRequest) -> FfiFuture<FfiResponse> {
        let index = request.route_index as usize;
        let request = from_ffi(request);
        let label = format!("{} {}", request.method, request.path);
        let inner: BoxFuture<'static, HandlerResult> = match self.routes.call(index, Arc::clone(&self.module), request)
        {
            Some(handler) => handler,
            None => {
                let error = ModuleError::not_found(format!("this module declares no route #{index}"));
                Box::pin(std::future::ready(Err(error)))
            }
        };
        InModuleRuntime { inner: Some(inner), host: self.host.clone(), label, runtime: self.runtime.clone() }.into_ffi()
    }

    fn health(&self) -> RResult<RString, RString> {
        match catch_unwind(AssertUnwindSafe(|| self.module.health())) {
            Ok(Ok(detail)) => RResult::ROk(detail.into()),
            Ok(Err(e)) => RResult::RErr(e.into()),
            Err(p) => RResult::RErr(format!("health() panicked: {}", panic_message(&*p)).into()),
        }
    }

    fn metrics(&self) -> RString {
        catch_unwind(crate::metrics::export_json).unwrap_or_else(|_| "[]".into()).into()
    }

    fn shutdown(&self) {
        let _entered = self.runtime.enter();
        let _ = catch_unwind(AssertUnwindSafe(|| self.module.shutdown()));
        drop(_entered);
        stop_runtime();
    }
}

/// A handler's future, polled on the host's thread (no hand-off to another thread per
/// request: that doubled the cost of a trivial route) but always inside the module's
/// runtime context, so its timers, I/O and spawns belong to the module's own tokio.
/// Each poll is guarded by `catch_unwind`: a panic ends the future with a 500. It holds
/// the handler's own future and what [`finish`] needs (no async block around them: a
/// parked request would hold that in a box of its own).
struct InModuleRuntime {
    inner: Option<BoxFuture<'static, HandlerResult>>,
    host: Host,
    /// `METHOD path`, for the log line of a server-side error.
    label: String,
    runtime: tokio::runtime::Handle,
}

/// A handler dropped before it finished (timeout, client gone) is dropped inside the
/// module's context and under `catch_unwind`: async-ffi aborts the process if a drop
/// unwinds through it.
impl Drop for InModuleRuntime {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let _entered = self.runtime.enter();
            let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
        }
    }
}

impl Future for InModuleRuntime {
    type Output = FfiResponse;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<FfiResponse> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(to_ffi(Response::error(500, "internal", "polled after completion")));
        };
        if STOPPED.load(Ordering::Acquire) {
            let unloaded = this.inner.take();
            let _ = catch_unwind(AssertUnwindSafe(move || drop(unloaded)));
            return Poll::Ready(to_ffi(Response::error(503, "unavailable", "the module was unloaded")));
        }
        let _entered = this.runtime.enter();
        let (host, label) = (&this.host, &this.label);
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx).map(|result| finish(result, host, label)))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(response)) => {
                this.inner = None;
                Poll::Ready(to_ffi(response))
            }
            Err(payload) => {
                // Drop the half-run future now, still inside the module's context.
                let broken = this.inner.take();
                let _ = catch_unwind(AssertUnwindSafe(move || drop(broken)));
                Poll::Ready(panic_response(&module_name(), &panic_message(&*payload)))
            }
        }
    }
}

/// The module's name for messages, recorded when the runtime is built.
fn module_name() -> String {
    MODULE_NAME.get().cloned().unwrap_or_else(|| "module".into())
}

static MODULE_NAME: OnceLock<String> = OnceLock::new();

/// The body of the `manifest` entry point: never unwinds (a panicking `routes()`
/// yields a manifest without routes that says so).
pub fn manifest_entry<M: Module>() -> FfiManifest {
    catch_unwind(manifest::<M>).unwrap_or_else(|p| FfiManifest {
        name: M::NAME.into(),
        version: M::VERSION.into(),
        description: format!("routes() panicked: {}", panic_message(&*p)).into(),
        api_level: crate::API_LEVEL,
        routes: RVec::new(),
    })
}

/// The body of the `init` entry point `export_module!` generates.
pub fn init<M: Module>(host: HostBox, config: RString) -> RResult<ModuleBox, RString> {
    let built = catch_unwind(AssertUnwindSafe(|| -> Result<ModuleBox, String> {
        let runtime = runtime(M::NAME)?;
        let (config, unknown) = crate::config::parse::<M::Config>(M::NAME, config.as_str())?;
        // Inside the module's runtime, so `init` may spawn tasks or start timers.
        let _entered = runtime.enter();
        let host = Host::from_ffi(host);
        crate::logging::install(host.clone());
        for key in unknown {
            host.warn(&format!("modules.config.{}: unknown key {key:?} ignored", M::NAME));
        }
        let module = M::init(host.clone(), config).map_err(|e| e.message)?;
        let adapter = Adapter { module: Arc::new(module), routes: M::routes(), host, runtime: runtime.clone() };
        Ok(ModuleObj_TO::from_value(adapter, TD_Opaque))
    }));
    match built {
        Ok(Ok(module)) => RResult::ROk(module),
        Ok(Err(e)) => {
            stop_runtime();
            RResult::RErr(e.into())
        }
        Err(p) => {
            stop_runtime();
            RResult::RErr(format!("init panicked: {}", panic_message(&*p)).into())
        }
    }
}
