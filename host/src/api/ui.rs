//! `/ui/`: the web dashboard, plain HTML/CSS/JS embedded in the binary (`host/ui/`),
//! served with a strict content security policy. The page is only a client of the
//! documented API: it logs in through `POST /api/auth/login` into the session cookie
//! (`guard.rs` says how that cookie is accepted and guarded against forgery), reads the
//! same routes the CLI reads, and follows `/api/events`. Serving the files needs no
//! login: they hold no data.
//!
//! Deliberately does not render data on the server, hold sessions of its own, or load
//! anything from another origin.

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::state::AppState;

/// Every file of the dashboard: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("../../ui/index.html")),
    ("app.css", "text/css; charset=utf-8", include_str!("../../ui/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../ui/app.js")),
    // One file per page family; each registers its pages with app.js (`window.apollo`).
    ("gateway.js", "text/javascript; charset=utf-8", include_str!("../../ui/gateway.js")),
    ("gateway-form.js", "text/javascript; charset=utf-8", include_str!("../../ui/gateway-form.js")),
    ("catalog.js", "text/javascript; charset=utf-8", include_str!("../../ui/catalog.js")),
    ("kv.js", "text/javascript; charset=utf-8", include_str!("../../ui/kv.js")),
    ("backups.js", "text/javascript; charset=utf-8", include_str!("../../ui/backups.js")),
    ("files.js", "text/javascript; charset=utf-8", include_str!("../../ui/files.js")),
    ("charts.js", "text/javascript; charset=utf-8", include_str!("../../ui/charts.js")),
    ("config-gray.js", "text/javascript; charset=utf-8", include_str!("../../ui/config-gray.js")),
    ("access-keys.js", "text/javascript; charset=utf-8", include_str!("../../ui/access-keys.js")),
    ("consumers.js", "text/javascript; charset=utf-8", include_str!("../../ui/consumers.js")),
    ("favicon.svg", "image/svg+xml", include_str!("../../ui/favicon.svg")),
];

/// No inline script or style, nothing from another origin, no framing, no plugins.
/// `connect-src 'self'` covers the events websocket (same host, `ws:`/`wss:`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The dashboard's routes (not part of the OpenAPI document: they are pages).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|| async { asset("index.html") }))
        .route("/ui/{file}", get(|Path(file): Path<String>| async move { asset(&file) }))
        .layer(from_fn(security_headers))
}

fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => {
            // The HTML names its assets without a version: always revalidate.
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *body).into_response()
        }
        None => (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "not found\n")
            .into_response(),
    }
}

/// The security headers, on every UI response (errors and redirects included).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=()"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_served() {
        let html = asset_text("index.html");
        for (name, _, _) in ASSETS.iter().filter(|(n, _, _)| *n != "index.html") {
            assert!(html.contains(&format!("/ui/{name}")), "index.html does not reference {name}");
        }
        // No inline script or style attribute: the CSP would block them.
        assert!(!html.contains("<script>") && !html.contains(" style=") && !html.contains(" onclick="));
        for (name, _, body) in ASSETS.iter().filter(|(n, _, _)| n.ends_with(".js")) {
            assert!(!body.contains("innerHTML"), "{name}: build DOM nodes, never HTML strings");
        }
    }

    fn asset_text(name: &str) -> &'static str {
        ASSETS.iter().find(|(n, _, _)| *n == name).map(|(_, _, body)| *body).unwrap()
    }
}
