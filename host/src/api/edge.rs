//! The one middleware in front of every route, doing in order what the API promises
//! of each request: request metrics (outermost, so they see what the client sees), JSON
//! errors, the audit of mutating calls, the auth gate, the request deadline.
//!
//! One function rather than a stack of `from_fn` layers: each such layer costs every
//! request a boxed future, a boxed copy of the service below it and the boxed call into
//! it, all held for as long as the request runs — a long poll parked for a minute on a
//! module route held five of them. The steps themselves live where they always did
//! (`metrics/http.rs`, `limits.rs`, `audit_trail.rs`, `guard.rs`); this file only
//! orders them. The module requests that skip the router (`module_mount.rs`: unaudited,
//! so possibly parked) take the steps that apply to them there, in the same order.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::audit_trail::PendingAudit;
use super::{guard, limits};
use crate::metrics::RequestTimer;
use crate::state::AppState;

pub async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let timer = RequestTimer::start(&state, &req);
    let audit = PendingAudit::of(&req);
    let mut response = match guard::admit(&state, req).await {
        Ok((req, principal)) => {
            let mut response = limits::within_deadline(&state, req, next).await;
            // For the audit entry: who did it.
            if let Some(principal) = principal {
                response.extensions_mut().insert(principal);
            }
            response
        }
        Err(refusal) => refusal,
    };
    if let Some(audit) = audit {
        response = audit.record(&state, response).await;
    }
    let response = limits::as_json_error(response).await;
    if let Some(timer) = timer {
        timer.finish(&state, response.status());
    }
    response
}
