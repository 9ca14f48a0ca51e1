//! `GET /api/events`: a websocket streaming the host's events (service state changes,
//! model changes, module loads, restart limits, health failures, and whatever later
//! subsystems publish) as JSON text frames, optionally filtered by kind and name.
//! A client that falls behind is told how many events it missed, then continues.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes, for `api_routes`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Comma-separated event kinds (`service_state,model_added`); empty: all.
    pub kinds: Option<String>,
    /// Only events about this service or module.
    pub name: Option<String>,
}

impl EventFilter {
    fn accepts(&self, event: &serde_json::Value) -> bool {
        let kind_ok = match self.kinds.as_deref().filter(|k| !k.is_empty()) {
            Some(kinds) => kinds.split(',').any(|k| event["kind"] == k.trim()),
            None => true,
        };
        let name_ok = match self.name.as_deref() {
            Some(name) => event["name"] == name || event["module"] == name,
            None => true,
        };
        kind_ok && name_ok
    }
}

#[utoipa::path(get, path = "/api/events", tag = "events", params(EventFilter),
    responses((status = 101, description = "Switches to a websocket of JSON events"), (status = 401, body = super::ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    Query(filter): Query<EventFilter>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.on_upgrade(move |socket| stream(state, filter, socket))
}

async fn stream(state: AppState, filter: EventFilter, mut socket: WebSocket) {
    let mut events = state.events.subscribe();
    let shutdown = state.shutdown.clone();
    loop {
        let outgoing = tokio::select! {
            () = shutdown.cancelled() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            incoming = socket.recv() => match incoming {
                // The client closed, or the connection broke.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            },
            event = events.recv() => match event {
                Ok(event) => {
                    let value = serde_json::to_value(&event).unwrap_or_default();
                    if !filter.accepts(&value) {
                        continue;
                    }
                    value.to_string()
                }
                Err(RecvError::Lagged(missed)) => serde_json::json!({"kind": "lagged", "missed": missed}).to_string(),
                Err(RecvError::Closed) => return,
            },
        };
        if socket.send(Message::Text(outgoing.into())).await.is_err() {
            return;
        }
    }
}
