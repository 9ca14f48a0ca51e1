//! The authentication gate in front of `/api` and `/metrics`: a bearer token over TCP,
//! trust over the unix socket (mode 0600, so only its owner can connect). Public paths are
//! listed here and nowhere else; beyond them, only module routes a module declares
//! public (it authenticates them itself) pass without a token.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use percent_encoding::percent_decode_str;

use super::ApiError;
use crate::modules::Via;
use crate::state::AppState;

/// Paths under `/api` that need no token.
pub const PUBLIC_API_PATHS: &[&str] = &["/api/auth/login", "/api/openapi.json"];

/// Which listener a request came in on; set by the server per listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    UnixSocket,
}

/// Who is calling. Put in the request (for handlers) and the response (for the audit
/// layer, which sits outside this one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub via: Transport,
}

/// The actor name recorded for unix-socket callers.
pub const UNIX_SOCKET_ACTOR: &str = "unix-socket";

pub async fn require_auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // `/metrics` is gated like `/api` unless the operator made it public.
    let gated = path.starts_with("/api/") || path == "/api" || path == crate::metrics::PATH && !state.metrics.public();
    if !gated || PUBLIC_API_PATHS.contains(&path) {
        return next.run(req).await;
    }
    // A request without the marker is treated as TCP: forgetting to mark a listener
    // must fail closed, not open.
    let via = req.extensions().get::<Transport>().copied().unwrap_or(Transport::Tcp);
    if via == Transport::Tcp && is_public_module_route(&state, &req) {
        // The module authenticates it (access keys, signatures, its own tokens). An
        // operator's valid host token still names them (the module sees the user and
        // not the header); any other credentials are the module's to judge.
        let operator = match bearer_token(&req) {
            Some(token) => state.auth.authenticate(&token).await.ok(),
            None => None,
        };
        let Some(user) = operator else {
            return next.run(req).await;
        };
        let principal = Principal { user, via };
        req.extensions_mut().insert(principal.clone());
        let mut response = next.run(req).await;
        response.extensions_mut().insert(principal);
        return response;
    }
    let principal = if via == Transport::UnixSocket {
        Principal { user: UNIX_SOCKET_ACTOR.into(), via }
    } else {
        let Some(token) = bearer_token(&req) else {
            return ApiError::Unauthorized(
                "this route needs Authorization: Bearer <token>; get one from POST /api/auth/login".into(),
            )
            .into_response();
        };
        match state.auth.authenticate(&token).await {
            Ok(user) => Principal { user, via },
            Err(e) => return ApiError::from(e).into_response(),
        }
    };
    req.extensions_mut().insert(principal.clone());
    let mut response = next.run(req).await;
    response.extensions_mut().insert(principal);
    response
}

/// `/api/module/{name}/{rest}` where the module declares `rest` public for this method.
fn is_public_module_route(state: &AppState, req: &Request) -> bool {
    let Some((name, rest)) = req.uri().path().strip_prefix("/api/module/").and_then(|r| r.split_once('/')) else {
        return false;
    };
    // Decoded as the router decodes path parameters, so both see the same route; a
    // path that does not decode is not public.
    let (Ok(name), Ok(rest)) = (percent_decode_str(name).decode_utf8(), percent_decode_str(rest).decode_utf8()) else {
        return false;
    };
    state.modules.route_is_public(&name, req.method().as_str(), &format!("/{rest}"), Via::AdminTcp)
}

pub fn bearer_token(req: &Request) -> Option<String> {
    bearer_token_of(req.headers())
}

pub fn bearer_token_of(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string()).filter(|t| !t.is_empty())
}
