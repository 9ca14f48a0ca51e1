//! Routes bound to their handlers in one place. A module's [`Routes`] is both its
//! manifest (what the host mounts) and its dispatch table: the host sends the index
//! of the route it matched, so a route string is written once and a typo cannot
//! become a silent 404.
//!
//! ```rust,ignore
//! fn routes() -> Routes<Self> {
//!     Routes::new()
//!         .add(Route::get("/greet/{name}", "Greet someone"), Self::greet)
//!         .add(Route::get("/notifications", "Long poll").public().timeout(Duration::from_secs(90)), Self::poll)
//! }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::ModuleError;
use crate::request::Request;
use crate::response::Response;

/// What a handler answers.
pub type HandlerResult = Result<Response, ModuleError>;

/// Where a route is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// The host's admin API, under `/api/module/{name}` (the default).
    Admin,
    /// Only the module's own listener, at its root (`modules.listeners`).
    Listener,
    /// Both.
    Both,
}

impl Mount {
    pub(crate) fn bits(self) -> u8 {
        match self {
            Self::Admin => 1,
            Self::Listener => 2,
            Self::Both => 3,
        }
    }
}

/// One route a module serves: method, path pattern, summary, and how the host treats it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// `/greet/{name}`, `/files/{*rest}`; relative to the mount point.
    pub path: &'static str,
    /// One line for the OpenAPI document and `GET /api/modules`.
    pub summary: &'static str,
    /// The module authenticates these requests itself (see [`Route::public`]).
    pub public: bool,
    pub mount: Mount,
    /// The handler's own timeout; `None` uses the host's `modules.handler_timeout_secs`.
    pub timeout: Option<Duration>,
}

impl Route {
    pub const fn new(method: &'static str, path: &'static str, summary: &'static str) -> Self {
        Self { method, path, summary, public: false, mount: Mount::Admin, timeout: None }
    }
    pub const fn get(path: &'static str, summary: &'static str) -> Self {
        Self::new("GET", path, summary)
    }
    pub const fn post(path: &'static str, summary: &'static str) -> Self {
        Self::new("POST", path, summary)
    }
    pub const fn put(path: &'static str, summary: &'static str) -> Self {
        Self::new("PUT", path, summary)
    }
    pub const fn delete(path: &'static str, summary: &'static str) -> Self {
        Self::new("DELETE", path, summary)
    }
    pub const fn patch(path: &'static str, summary: &'static str) -> Self {
        Self::new("PATCH", path, summary)
    }
    /// Every method (a gateway's catch-all); a route for one method on the same path
    /// takes precedence.
    pub const fn any(path: &'static str, summary: &'static str) -> Self {
        Self::new("*", path, summary)
    }

    /// The host's token gate lets these requests through and the module checks them
    /// itself (access keys, consumer tokens, HMAC signatures): the request carries the
    /// peer address, the raw target and every header. Body limits, timeouts and the
    /// audit of mutating calls still apply.
    pub const fn public(mut self) -> Self {
        self.public = true;
        self
    }

    /// The handler may take this long (a long poll), instead of the host's default.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Where the route is served (default: the admin API only).
    pub const fn mount(mut self, mount: Mount) -> Self {
        self.mount = mount;
        self
    }
}

type Handler<M> = Box<dyn Fn(Arc<M>, Request) -> BoxFuture<'static, HandlerResult> + Send + Sync>;

/// A module's routes with their handlers, in declaration order.
pub struct Routes<M> {
    entries: Vec<(Route, Handler<M>)>,
}

impl<M> std::fmt::Debug for Routes<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|(route, _)| route)).finish()
    }
}

impl<M> Default for Routes<M> {
    fn default() -> Self {
        Self { entries: Vec::new() }
    }
}

impl<M: Send + Sync + 'static> Routes<M> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `route` to `handler`, an `async fn(self: Arc<Self>, Request) -> HandlerResult`.
    pub fn add<F, Fut>(mut self, route: Route, handler: F) -> Self
    where
        F: Fn(Arc<M>, Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.entries.push((route, Box::new(move |module, request| Box::pin(handler(module, request)))));
        self
    }

    /// The declared routes, in order (their index is what the host dispatches on).
    pub fn list(&self) -> impl Iterator<Item = &Route> {
        self.entries.iter().map(|(route, _)| route)
    }

    /// Starts the handler of route `index`; `None` for an index the module never declared.
    pub(crate) fn call(
        &self,
        index: usize,
        module: Arc<M>,
        request: Request,
    ) -> Option<BoxFuture<'static, HandlerResult>> {
        self.entries.get(index).map(|(_, handler)| handler(module, request))
    }

    /// The index of the route matching `method` and `path`, with its params: what the
    /// host does, for [`crate::testing`]. A method route beats `*` on the same pattern.
    pub(crate) fn find(&self, method: &str, path: &str) -> Result<(usize, Vec<(String, String)>), u16> {
        let mut router = matchit::Router::new();
        let mut patterns: Vec<&str> = Vec::new();
        for (route, _) in &self.entries {
            if !patterns.contains(&route.path) {
                patterns.push(route.path);
                let _ = router.insert(route.path, route.path);
            }
        }
        let matched = router.at(path).map_err(|_| 404u16)?;
        let pattern = *matched.value;
        let params = matched.params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let on_pattern = || self.entries.iter().enumerate().filter(|(_, (r, _))| r.path == pattern);
        let index = on_pattern()
            .find(|(_, (r, _))| r.method.eq_ignore_ascii_case(method))
            .or_else(|| on_pattern().find(|(_, (r, _))| r.method == "*"))
            .map(|(i, _)| i)
            .ok_or(405u16)?;
        Ok((index, params))
    }
}
