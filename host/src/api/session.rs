//! Login, logout and "who am I". Login is public and throttled; the password is
//! never logged, stored in clear, or echoed.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::guard::{Principal, Transport, bearer_token};
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
    /// Send as `Authorization: Bearer <token>`.
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
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
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
    let mut response = Json(LoginResponse {
        token: session.token,
        token_type: "Bearer".into(),
        user: session.user.clone(),
        expires_at,
    })
    .into_response();
    response.extensions_mut().insert(Principal { user: session.user, via: Transport::Tcp });
    Ok(response)
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204, description = "The token is revoked"), (status = 401, body = super::ErrorBody)))]
pub async fn logout(State(state): State<AppState>, req: Request) -> Result<StatusCode, ApiError> {
    if let Some(token) = bearer_token(&req) {
        state.auth.logout(&token).await?;
    }
    Ok(StatusCode::NO_CONTENT)
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
