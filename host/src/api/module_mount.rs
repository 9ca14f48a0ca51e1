//! The admin API's module routes (`/api/module/{name}/{*rest}`) for the requests the
//! audit trail does not record (GET, HEAD, OPTIONS: long polls and blocking queries
//! among them), served without axum's router: of the edge's steps (`edge.rs`) those
//! that apply — request metrics, the gate (`guard::admit`), JSON errors — then the
//! module's handler in a [`ModuleRequest`]. Module routes have no request deadline
//! (`limits.rs`): the route's own timeout applies, as in the dispatcher. Mutating calls
//! (audited) and every other path go through the router as before.

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use futures::future::{Either, Map};
use http::Request;
use hyper::body::Incoming;
use tower::ServiceExt;
use tower::util::Oneshot;

use super::module_request::{ModuleBody, ModuleRequest, Parked, read_body};
use super::modules::{admin_route, admin_via, module_call};
use super::{ApiError, Principal, Transport, audit_trail, guard, limits};
use crate::metrics::RequestTimer;
use crate::state::AppState;

/// The router's pattern for module routes (the metrics' route label).
const PATTERN: &str = "/api/module/{name}/{*rest}";

/// A request on an admin listener: a module's, or the router's.
pub type AdminCall = Either<ModuleRequest, RouterCall>;
type RouterCall = Map<Oneshot<Router, Request<Body>>, fn(Result<Response, Infallible>) -> AdminAnswer>;
type AdminAnswer = Result<Response<ModuleBody>, Infallible>;

/// The request handler of an admin listener: `router` (the whole API, marked with
/// `transport`) except the module routes served here.
pub fn admin_service(
    state: AppState,
    router: Router,
    transport: Transport,
) -> impl Fn(Request<Incoming>) -> AdminCall + Clone + Send + Sync + 'static {
    move |request| {
        if !audit_trail::audits(request.method()) && module_target(request.uri().path()).is_some() {
            Either::Left(ModuleRequest::new(prepare(state.clone(), transport, request)))
        } else {
            let answer: fn(Result<Response, Infallible>) -> AdminAnswer =
                |r| r.map(|r| r.map(http_body_util::Either::Right));
            Either::Right(router.clone().oneshot(request.map(Body::new)).map(answer))
        }
    }
}

/// `{name}` and `{*rest}` of a module route's path, still percent-encoded; `None` where
/// the router's pattern would not match (an empty name or rest).
fn module_target(path: &str) -> Option<(&str, &str)> {
    let (name, rest) = path.strip_prefix("/api/module/")?.split_once('/')?;
    (!name.is_empty() && !rest.is_empty()).then_some((name, rest))
}

/// Times the request and gets it to the module's handler, or answers it.
async fn prepare(state: AppState, transport: Transport, request: Request<Incoming>) -> Result<Parked, Response> {
    let timer = RequestTimer::start_on(&state, request.method(), PATTERN);
    let mut request = request.map(Body::new);
    request.extensions_mut().insert(transport);
    match admitted(&state, request).await {
        Ok(parked) => Ok(parked.timed(timer)),
        Err(refusal) => {
            let refusal = limits::as_json_error(refusal).await;
            if let Some(timer) = timer {
                timer.finish(&state, refusal.status());
            }
            Err(refusal)
        }
    }
}

/// The gate, then what the dispatcher's extractors did: the decoded path, the body
/// within the limit; then the route and the handler's start.
async fn admitted(state: &AppState, request: Request<Body>) -> Result<Parked, Response> {
    let (request, _principal) = guard::admit(state, request).await?;
    let (parts, body) = request.into_parts();
    let decode = |raw: &str| {
        let decoded = percent_encoding::percent_decode_str(raw).decode_utf8();
        decoded
            .map(|s| s.into_owned())
            .map_err(|_| ApiError::BadRequest("the path is not valid UTF-8 once decoded".into()))
    };
    let (name, rest) = module_target(parts.uri.path()).unwrap_or_default();
    let (name, path) = match (decode(name), decode(rest)) {
        (Ok(name), Ok(rest)) => (name, format!("/{rest}")),
        (Err(e), _) | (_, Err(e)) => return Err(e.into_response()),
    };
    let body = read_body(body, state.config.server.body_limit_bytes).await.map_err(IntoResponse::into_response)?;
    let via = admin_via(&parts);
    let (module, matched) =
        admin_route(state, &name, &path, &parts.method, via).map_err(IntoResponse::into_response)?;
    let user = parts.extensions.get::<Principal>().map(|p| p.user.clone());
    let call = module_call(parts, path, via, user, body);
    Ok(Parked::start(state.clone(), module, matched, call))
}
