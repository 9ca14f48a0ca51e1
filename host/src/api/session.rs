//! Login, logout and "who am I". Login is public and throttled; the password is
//! never logged, stored in clear, or echoed.
//!
//! The dashboard logs in with `X-Apollo-Session: cookie`: the token then goes into the
//! `HttpOnly; SameSite=Strict; Path=/` session cookie (see `guard.rs`) and the body's
//! `token` is empty, so no script of the page can read it. Logout revokes the token the
//! request authenticated with (header or cookie) and clears the cookie.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::guard::{Principal, SESSION_COOKIE, Transport, credential_of};
use super::{ApiError, ApiJson};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes, for `api_routes`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login)).routes(routes!(logout)).routes(routes!(whoami))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Hand-written so the password can never reach a log through `{:?}`.
impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`. Empty when the login asked for the
    /// session cookie (`X-Apollo-Session: cookie`): the token is then only in the cookie.
    pub token: String,
    pub token_type: String,
    pub user: String,
    /// RFC 3339.
    pub expires_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub user: String,
    /// `tcp` or `unix_socket`.
    pub via: String,
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 401, description = "Wrong user name or password", body = super::ErrorBody),
        (status = 429, description = "Too many failed logins; see Retry-After", body = super::ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let as_cookie = headers.get(SESSION_MODE_HEADER).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cookie"));
    let client = connect.map(|Extension(c)| c.0.ip().to_string()).unwrap_or_else(|| "unix".into());
    let session = match state.auth.login(&client, &body.username, &body.password).await {
        Ok(s) => s,
        Err(e) => {
            // The attempted name is attacker-controlled (and sometimes a mistyped
            // password): log only whether it was the admin account.
            let known_user = body.username == state.auth.admin_user();
            tracing::warn!(known_user, %client, "login refused: {e}");
            return Err(e.into());
        }
    };
    tracing::info!(user = %session.user, %client, "login");
    let expires_at = chrono::DateTime::from_timestamp_millis(session.expires_at_ms).unwrap_or_default().to_rfc3339();
    let cookie = as_cookie.then(|| {
        let max_age = (session.expires_at_ms - crate::store::now_ms()).max(0) / 1000;
        session_cookie(&session.token, max_age)
    });
    let mut response = Json(LoginResponse {
        token: if as_cookie { String::new() } else { session.token },
        token_type: "Bearer".into(),
        user: session.user.clone(),
        expires_at,
    })
    .into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response.extensions_mut().insert(Principal { user: session.user, via: Transport::Tcp });
    Ok(response)
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204, description = "The token is revoked and the session cookie cleared"), (status = 401, body = super::ErrorBody)))]
pub async fn logout(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    if let Some(credential) = credential_of(req.headers()) {
        state.auth.logout(credential.token()).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    // Cleared whatever authenticated the call: a browser keeps no dead session.
    response.headers_mut().insert(header::SET_COOKIE, session_cookie("", 0));
    Ok(response)
}

/// The header a login sends to get its token as the session cookie instead of in the body.
pub const SESSION_MODE_HEADER: &str = "x-apollo-session";

/// `Set-Cookie` for the session. Not `Secure`: the host serves plain HTTP (on
/// 127.0.0.1 by default) and a `Secure` cookie would never come back over it; behind a
/// TLS proxy the browser still keeps it to this site only (`SameSite=Strict`).
fn session_cookie(token: &str, max_age_secs: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("apollo_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"))
}

#[utoipa::path(get, path = "/api/auth/whoami", tag = "auth",
    responses((status = 200, body = WhoAmI), (status = 401, body = super::ErrorBody)))]
pub async fn whoami(Extension(principal): Extension<Principal>) -> Json<WhoAmI> {
    let via = match principal.via {
        Transport::Tcp => "tcp",
        Transport::UnixSocket => "unix_socket",
    };
    Json(WhoAmI { user: principal.user, via: via.into() })
}
