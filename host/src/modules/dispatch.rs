//! Calling into a module: which declared route a request matches on which mount
//! point, and the FFI request and reply. The API layer deals only in the plain
//! [`ModuleCall`] and [`ModuleReply`]; abi_stable stays inside `modules/`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use abi_stable::std_types::{RString, RVec, Tuple2};
use async_ffi::FfiFuture;
use plugin_api::ffi::{FfiRequest, FfiResponse};

use super::loader::LoadedModule;

/// Where a request reached the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    AdminTcp,
    AdminUnixSocket,
    /// The module's own listener.
    Listener,
}

impl Via {
    fn wire(self) -> u8 {
        match self {
            Self::AdminTcp => 0,
            Self::AdminUnixSocket => 1,
            Self::Listener => 2,
        }
    }

    fn on_listener(self) -> bool {
        self == Self::Listener
    }
}

/// A declared route that matched.
#[derive(Debug, Clone)]
pub struct Matched {
    pub index: usize,
    pub params: Vec<(String, String)>,
}

/// Why nothing matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No route of this mount point has the path.
    NoRoute,
    /// The path exists, not for this method.
    Method,
}

/// A request for a module, in plain types.
#[derive(Debug, Clone)]
pub struct ModuleCall {
    pub method: String,
    /// Below the mount point, decoded.
    pub path: String,
    /// Without `?`.
    pub query: String,
    /// The target exactly as received (for signatures).
    pub raw_target: String,
    pub peer_addr: Option<SocketAddr>,
    pub via: Via,
    /// The user the token gate authenticated; `None` on public routes.
    pub user: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The module's answer, its headers already in the response's types: a release wakes
/// thousands of held requests at once, and each reply is read once, into these.
#[derive(Debug, Clone)]
pub struct ModuleReply {
    pub status: u16,
    /// The headers the module set, less any name or value HTTP does not allow.
    pub headers: http::HeaderMap,
    /// The module's own buffer, not a copy: freed through the module's allocator once
    /// the connection has written it (a library is never unloaded, see `loader.rs`).
    pub body: bytes::Bytes,
    /// The handler panicked (the SDK answered 500 for it).
    pub panicked: bool,
}

impl LoadedModule {
    /// The route `method path` matches among those served `via` this mount point. A
    /// route for the method beats a `*` route on the same pattern.
    pub fn match_route(&self, method: &str, path: &str, via: Via) -> Result<Matched, Miss> {
        let matched = self.router.at(path).map_err(|_| Miss::NoRoute)?;
        let mounted = |index: &usize| {
            let route = &self.routes[*index];
            if via.on_listener() { route.on_listener } else { route.on_admin }
        };
        let candidates: Vec<&(String, usize)> = matched.value.iter().filter(|(_, i)| mounted(i)).collect();
        if candidates.is_empty() {
            return Err(Miss::NoRoute);
        }
        let index = candidates
            .iter()
            .find(|(m, _)| m == method)
            .or_else(|| candidates.iter().find(|(m, _)| m == "*"))
            .map(|(_, i)| *i)
            .ok_or(Miss::Method)?;
        let params = matched.params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Ok(Matched { index, params })
    }

    /// Whether the route `method path` on this mount point is one the module
    /// authenticates itself. Anything unknown is not (the gate fails closed).
    pub fn is_public(&self, method: &str, path: &str, via: Via) -> bool {
        self.match_route(method, path, via).is_ok_and(|m| self.routes[m.index].public)
    }

    /// The route's own timeout, if it declares one.
    pub fn route_timeout(&self, index: usize) -> Option<Duration> {
        self.routes.get(index).and_then(|r| r.timeout_ms).map(Duration::from_millis)
    }

    /// Starts the module's handler for `matched`; counts the request. The returned
    /// future owns everything it needs.
    pub fn call(&self, matched: Matched, call: ModuleCall) -> PendingReply {
        let pairs = |v: Vec<(String, String)>| -> RVec<Tuple2<RString, RString>> {
            v.into_iter().map(|(k, v)| Tuple2(k.into(), v.into())).collect()
        };
        let request = FfiRequest {
            method: call.method.into(),
            path: call.path.into(),
            route: self.routes.get(matched.index).map(|r| r.path.clone()).unwrap_or_default().into(),
            route_index: u32::try_from(matched.index).unwrap_or(u32::MAX),
            params: pairs(matched.params),
            query: call.query.into(),
            raw_target: call.raw_target.into(),
            peer_addr: call.peer_addr.map(|a| a.to_string()).unwrap_or_default().into(),
            via: call.via.wire(),
            user: call.user.unwrap_or_default().into(),
            headers: pairs(call.headers),
            body: RVec::from(call.body),
            request_id: format!("{:x}", rand::random::<u64>()).into(),
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        PendingReply { answer: self.object.handle(request) }
    }

    /// Counts a panic reported by [`ModuleReply::panicked`]; returns the new total.
    pub fn count_panic(&self) -> u64 {
        self.panics.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The module's own metric families (JSON, see `plugin_api::metrics`).
    pub fn metrics_json(&self) -> String {
        self.object.metrics().into_string()
    }
}

/// A module's answer in the making: the FFI future, turned into a [`ModuleReply`] when
/// it resolves. Written out rather than an async block, so a parked request holds only
/// the FFI future's three words.
pub struct PendingReply {
    answer: FfiFuture<FfiResponse>,
}

impl std::fmt::Debug for PendingReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingReply")
    }
}

impl Future for PendingReply {
    type Output = ModuleReply;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ModuleReply> {
        let answer = ready!(Pin::new(&mut self.answer).poll(cx));
        let mut panicked = false;
        let mut headers = http::HeaderMap::with_capacity(answer.headers.len());
        for Tuple2(k, v) in &answer.headers {
            if k.as_str().eq_ignore_ascii_case(plugin_api::PANIC_HEADER) {
                panicked = true;
            } else if let (Ok(k), Ok(v)) =
                (http::HeaderName::from_bytes(k.as_bytes()), http::HeaderValue::from_bytes(v.as_bytes()))
            {
                headers.append(k, v);
            }
        }
        let body = if answer.body.is_empty() { bytes::Bytes::new() } else { bytes::Bytes::from_owner(answer.body) };
        Poll::Ready(ModuleReply { status: answer.status, headers, body, panicked })
    }
}
