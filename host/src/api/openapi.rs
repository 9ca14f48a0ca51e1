//! The OpenAPI document's frame: title, version, tags and the bearer security scheme.
//! Paths are not listed here: `utoipa_axum::routes!` collects them from the handlers
//! as they are mounted, so the document cannot drift from the router.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Apollo host API", description = "Register, supervise and inspect services. Every /api route except login and this document needs `Authorization: Bearer <token>` over TCP; the unix socket is trusted."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "host", description = "Liveness and version"),
        (name = "auth", description = "Login, logout"),
        (name = "apps", description = "Registered services"),
        (name = "control", description = "Start, stop, restart, kill, logs"),
        (name = "models", description = "Model files and reload"),
                        (name = "audit", description = "Log of mutating calls"),
                (name = "events", description = "Websocket of host events"),
                (name = "files", description = "File manager over app_root"),
        (name = "backups", description = "Backups of app_root, the manage scripts and the store; restore"),
        (name = "alarms", description = "Alarms raised from host events and the disk check; ack, delete"),
        (name = "tasks", description = "Scheduled tasks: cron, interval, one-shot"),
        (name = "docker", description = "Containers and images of the Docker engine at ci.docker_host"),
        (name = "modules", description = "Runtime modules and their routes"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.info.version = crate::VERSION.to_string();
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("apo_ token").build()),
        );
    }
}

/// `GET /api/openapi.json`: the generated document plus the routes of every module
/// loaded right now (they change with reloads, so they are merged per request).
pub async fn document(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    base: std::sync::Arc<[u8]>,
) -> axum::Json<serde_json::Value> {
    // The text was written by serde_json from a typed document: it always reads back.
    let mut doc: serde_json::Value = serde_json::from_slice(&base).unwrap_or_default();
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        paths.extend(state.modules.openapi_paths());
    }
    axum::Json(doc)
}
