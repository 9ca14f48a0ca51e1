//! The authentication gate in front of `/api` and `/metrics`: a bearer token over TCP,
//! trust over the unix socket (mode 0600, so only its owner can connect). Public paths are
//! listed here and nowhere else; beyond them, only module routes a module declares
//! public (it authenticates them itself) pass without a token.
//!
//! The dashboard (`/ui/`) holds the same token in the `apollo_session` cookie
//! (`HttpOnly; SameSite=Strict; Path=/`, set by `POST /api/auth/login` when asked with
//! `X-Apollo-Session: cookie`), accepted here when no `Authorization` header is sent.
//! A cookie is sent by the browser on its own, so a cookie-authenticated request must
//! also prove it was made by our page (cross-site request forgery), in three layers:
//! - `SameSite=Strict`: the browser attaches the cookie only to requests started by a
//!   page of this same site, never to a form, link or fetch from another site;
//! - for every mutating method (not GET/HEAD/OPTIONS), the custom header
//!   `X-Requested-With: apollo-ui`: a page of another origin cannot set a custom header
//!   on a cross-origin request without a CORS preflight, which this host never
//!   answers, so a forged form post or `fetch(..., {mode: "no-cors"})` lacks it;
//! - and, whenever the browser sends an `Origin` header (always for a websocket
//!   handshake, which the custom header cannot cover, and for a cross-origin fetch), it
//!   must name this host (`Host`): that closes cross-site websocket hijacking of
//!   `/api/events` and same-site-but-other-port pages (cookies ignore ports).
//!
//! A refused cookie request is answered 403 and the token is left alone. Bearer tokens
//! are not ambient credentials, so none of this applies to them.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
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

/// The dashboard's session cookie: the login token itself, never readable by scripts.
pub const SESSION_COOKIE: &str = "apollo_session";

/// The header (and value) the dashboard sends with every request; required of
/// cookie-authenticated mutations (see the module doc).
pub const UI_REQUEST_HEADER: &str = "x-requested-with";
pub const UI_REQUEST_VALUE: &str = "apollo-ui";

/// Where a request's token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Bearer(String),
    Cookie(String),
}

impl Credential {
    pub fn token(&self) -> &str {
        match self {
            Self::Bearer(t) | Self::Cookie(t) => t,
        }
    }
}

/// The bearer token if there is an `Authorization` header, else the session cookie.
pub fn credential_of(headers: &HeaderMap) -> Option<Credential> {
    if let Some(token) = bearer_token_of(headers) {
        return Some(Credential::Bearer(token));
    }
    session_cookie_of(headers).map(Credential::Cookie)
}

/// The value of the `apollo_session` cookie, if any.
pub fn session_cookie_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `Some(reason)` when a cookie-authenticated request may be forged (see the module doc).
pub fn cookie_request_refusal(method: &Method, headers: &HeaderMap) -> Option<&'static str> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("http://").or_else(|| o.strip_prefix("https://")))
            .unwrap_or_default();
        if host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
            return Some("cross-origin request with the session cookie refused");
        }
    }
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let marked = headers.get(UI_REQUEST_HEADER).is_some_and(|v| v.as_bytes() == UI_REQUEST_VALUE.as_bytes());
    if !safe && !marked {
        return Some("a change with the session cookie needs the header X-Requested-With: apollo-ui");
    }
    None
}

/// The user behind a request's credential, or the response refusing it. A cookie
/// that fails the forgery checks is refused before its token is even looked up.
async fn authenticate(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    credential: &Credential,
) -> Result<String, Response> {
    if let Credential::Cookie(_) = credential
        && let Some(reason) = cookie_request_refusal(method, headers)
    {
        return Err(ApiError::Forbidden(reason.into()).into_response());
    }
    state.auth.authenticate(credential.token()).await.map_err(|e| ApiError::from(e).into_response())
}

/// The gate: `Ok` with the request (carrying its [`Principal`], if anyone was
/// authenticated) and that principal, which the caller puts in the response for the
/// audit layer; `Err` with the refusal.
pub async fn admit(state: &AppState, mut req: Request) -> Result<(Request, Option<Principal>), Response> {
    let path = req.uri().path();
    // `/metrics` is gated like `/api` unless the operator made it public.
    let gated = path.starts_with("/api/") || path == "/api" || path == crate::metrics::PATH && !state.metrics.public();
    if !gated || PUBLIC_API_PATHS.contains(&path) {
        return Ok((req, None));
    }
    // A request without the marker is treated as TCP: forgetting to mark a listener
    // must fail closed, not open.
    let via = req.extensions().get::<Transport>().copied().unwrap_or(Transport::Tcp);
    if via == Transport::Tcp && is_public_module_route(state, &req) {
        // The module authenticates it (access keys, signatures, its own tokens). An
        // operator's valid host token still names them (the module sees the user and
        // not the header); any other credentials are the module's to judge.
        // The session cookie names an operator too (the dashboard's config pages), under
        // the same forgery checks; a cookie failing them names nobody.
        let operator = match credential_of(req.headers()) {
            Some(credential) => authenticate(state, req.method(), req.headers(), &credential).await.ok(),
            None => None,
        };
        let Some(user) = operator else {
            return Ok((req, None));
        };
        let principal = Principal { user, via };
        req.extensions_mut().insert(principal.clone());
        return Ok((req, Some(principal)));
    }
    let principal = if via == Transport::UnixSocket {
        Principal { user: UNIX_SOCKET_ACTOR.into(), via }
    } else {
        let Some(credential) = credential_of(req.headers()) else {
            return Err(ApiError::Unauthorized(
                "this route needs Authorization: Bearer <token>; get one from POST /api/auth/login".into(),
            )
            .into_response());
        };
        Principal { user: authenticate(state, req.method(), req.headers(), &credential).await?, via }
    };
    req.extensions_mut().insert(principal.clone());
    Ok((req, Some(principal)))
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

pub fn bearer_token_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_bearer_header_wins_over_the_cookie() {
        let both = headers(&[("authorization", "Bearer apo_a"), ("cookie", "x=1; apollo_session=apo_b")]);
        assert_eq!(credential_of(&both), Some(Credential::Bearer("apo_a".into())));
        let cookie = headers(&[("cookie", "x=1"), ("cookie", "apollo_session=apo_b; y=2")]);
        assert_eq!(credential_of(&cookie), Some(Credential::Cookie("apo_b".into())));
        assert_eq!(credential_of(&headers(&[("cookie", "apollo_session=; other=apo_c")])), None);
        assert_eq!(credential_of(&headers(&[("cookie", "xapollo_session=apo_d")])), None);
    }

    #[test]
    fn cookie_mutations_need_the_header_and_the_own_origin() {
        let host = ("host", "127.0.0.1:9090");
        assert_eq!(cookie_request_refusal(&Method::GET, &headers(&[host])), None);
        assert!(cookie_request_refusal(&Method::POST, &headers(&[host])).is_some());
        assert_eq!(cookie_request_refusal(&Method::POST, &headers(&[host, ("x-requested-with", "apollo-ui")])), None);
        assert!(
            cookie_request_refusal(&Method::DELETE, &headers(&[host, ("x-requested-with", "XMLHttpRequest")]))
                .is_some()
        );
        let own = ("origin", "http://127.0.0.1:9090");
        let other_port = ("origin", "http://127.0.0.1:8080");
        assert_eq!(cookie_request_refusal(&Method::GET, &headers(&[host, own])), None);
        assert!(cookie_request_refusal(&Method::GET, &headers(&[host, other_port])).is_some());
        assert!(cookie_request_refusal(&Method::GET, &headers(&[host, ("origin", "null")])).is_some());
    }
}
