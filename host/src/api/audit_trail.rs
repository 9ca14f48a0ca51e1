//! Records every mutating API call (POST, PUT, PATCH, DELETE), allowed or not, in the
//! store's audit log: who, from where, what, when, and the resulting status. Bodies are
//! never recorded (they may hold passwords). The entry is written before the response
//! leaves, so an acknowledged change is always audited.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::Method;
use axum::response::Response;

use super::guard::{Principal, Transport};
use crate::state::AppState;
use crate::store::{AuditDetail, AuditEntry, now_ms};

/// A mutating call, noted when it arrives and recorded with its outcome (by the API's
/// edge middleware, `api/edge.rs`).
#[derive(Debug)]
pub struct PendingAudit {
    method: String,
    path: String,
    remote: String,
}

/// Whether calls with this method are audited: the mutating ones.
pub fn audits(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
}

impl PendingAudit {
    /// `None` for reads: only mutating methods are audited.
    pub fn of(req: &Request) -> Option<Self> {
        if !audits(req.method()) {
            return None;
        }
        // With the query: for the file manager it names the file acted on.
        let path = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
        let remote = match req.extensions().get::<Transport>() {
            Some(Transport::UnixSocket) => "unix".to_string(),
            _ => req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.to_string())
                .unwrap_or_else(|| "unknown".into()),
        };
        Some(Self { method: req.method().to_string(), path, remote })
    }

    /// Writes the entry before the response leaves; hands the response back.
    pub async fn record(self, state: &AppState, response: Response) -> Response {
        let actor =
            response.extensions().get::<Principal>().map(|p| p.user.clone()).unwrap_or_else(|| "anonymous".into());
        let status = response.status();
        let entry = AuditEntry {
            id: 0,
            at_ms: now_ms(),
            actor,
            remote: self.remote,
            method: self.method,
            path: self.path,
            status: status.as_u16(),
            result: if status.is_success() { "ok" } else { "error" }.into(),
            detail: response.extensions().get::<AuditDetail>().map(|d| d.0.clone()).unwrap_or_default(),
        };
        if let Err(e) = state.store.append_audit(&entry).await {
            // The change itself happened; losing its audit line is logged loudly rather than
            // turning a success into an error the client would retry.
            tracing::error!(method = %entry.method, path = %entry.path, "audit entry not stored: {e}");
        }
        response
    }
}
