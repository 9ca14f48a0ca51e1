//! Seneca messages through the gateway: `POST|GET {seneca.path}` (default `/act`) is
//! read as a listener reads it, matched by patrun against the pins the catalog's
//! services declare, and forwarded to an instance of the winning service's `/act`;
//! seneca-web routes (`GET /user/:id`) become messages the same way, with the action's
//! result as the HTTP answer. Replies the gateway makes itself are shaped as a Seneca
//! listener's, echoing `seneca-id` and `seneca-origin`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::DataPlane;
use super::body::Outgoing;
use super::forward::{self, Outcome, forward};
use super::replies::{Failure, ResponseBody, full};
use crate::seneca::{self, Directory, WebTable};
use crate::table::Route;
use crate::trace::ActiveSpan;

#[derive(Debug)]
pub struct SenecaPlane {
    pub path: String,
    pub web: WebTable,
    /// Pattern → service, rebuilt when the catalog's pins change.
    pub directory: ArcSwap<Directory>,
    /// One route per service messages go to (made on first use).
    routes: Mutex<HashMap<String, Arc<Route>>>,
}

/// What kind of Seneca request this is, if any.
pub enum Kind {
    Act,
    Web(seneca::WebMatch),
}

impl SenecaPlane {
    pub fn new(path: String, web: WebTable) -> Self {
        Self { path, web, directory: ArcSwap::from_pointee(Directory::build(Vec::new())), routes: Mutex::default() }
    }

    pub fn kind(&self, method: &Method, path: &str) -> Option<Kind> {
        if path == self.path {
            return Some(Kind::Act);
        }
        self.web.find(method, path).map(Kind::Web)
    }

    fn route(&self, plane: &DataPlane, service: &str) -> Arc<Route> {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let route = routes
            .entry(service.to_owned())
            .or_insert_with(|| Arc::new(Route::seneca(service, &self.path, plane.registry.service(service))));
        Arc::clone(route)
    }
}

fn to_body(response: Response<Bytes>) -> Response<ResponseBody> {
    response.map(full)
}

/// Handles a Seneca request end to end; `route_name` is what metrics and the log say.
/// The client's request, as Seneca handling takes it.
pub struct SenecaRequest<'a> {
    pub kind: Kind,
    pub parts: &'a Parts,
    pub body: Incoming,
    pub client: std::net::SocketAddr,
    pub timer: &'a mut super::TryTimer,
}

pub async fn handle(
    plane: &DataPlane,
    seneca: &SenecaPlane,
    request: SenecaRequest<'_>,
    span: &ActiveSpan,
    outcome: &mut Outcome,
) -> (Response<ResponseBody>, String) {
    let SenecaRequest { kind, parts, body, client, timer } = request;
    let bytes = match Limited::new(body, plane.limits.max_act_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            outcome.failure = Some(Failure::BadRequest);
            let why =
                format!("the message is over limits.max_act_bytes ({}) or broke off: {e}", plane.limits.max_act_bytes);
            let mut response = super::replies::failure(Failure::BadRequest, Some("seneca"), 0, &why);
            *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            return (response, "seneca".into());
        }
    };
    let query = parts.uri.query();
    match kind {
        Kind::Act => {
            let message = match seneca::message_from_request(query, &bytes) {
                Ok(message) => message,
                Err(e) => return (to_body(seneca::invalid_json(&parts.headers, &e)), "seneca".into()),
            };
            let directory = seneca.directory.load();
            let Some(service) = directory.find(&message) else {
                outcome.failure = Some(Failure::NoRoute);
                return (to_body(seneca::act_not_found(&parts.headers, &message)), "seneca".into());
            };
            let route = seneca.route(plane, service);
            let request = forward::Incoming {
                parts,
                body: Outgoing::Held(bytes),
                client,
                client_upgrade: None,
                timer,
                arrived: Instant::now(),
            };
            let response = forward(plane, &route, request, span, outcome).await;
            let response = match outcome.failure {
                None => response,
                Some(Failure::NoInstance) => to_body(seneca::no_instance(&parts.headers, service)),
                Some(why) => to_body(seneca::upstream_failure(&parts.headers, service, why.reason())),
            };
            (response, route.name.clone())
        }
        Kind::Web(matched) => {
            let message = match seneca::web_message(&matched, query, &bytes) {
                Ok(message) => message,
                Err(e) => return (to_body(seneca::web_bad_request(&e)), "seneca-web".into()),
            };
            let directory = seneca.directory.load();
            let Some(service) = directory.find(&message) else {
                outcome.failure = Some(Failure::NoRoute);
                return (to_body(seneca::act_not_found(&parts.headers, &message)), "seneca-web".into());
            };
            let route = seneca.route(plane, service);
            // The action is called as a seneca client would: POST /act with the message.
            let wire = serde_json::to_vec(&seneca::wire_body(&message)).unwrap_or_default();
            let mut act = Parts::clone(parts);
            act.method = Method::POST;
            act.uri = seneca.path.parse::<Uri>().unwrap_or_else(|_| Uri::from_static("/act"));
            act.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            act.headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
            act.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(wire.len()));
            act.headers.remove(header::TRANSFER_ENCODING);
            let request = forward::Incoming {
                parts: &act,
                body: Outgoing::Held(wire.into()),
                client,
                client_upgrade: None,
                timer,
                arrived: Instant::now(),
            };
            let response = forward(plane, &route, request, span, outcome).await;
            if outcome.failure.is_some() {
                return (response, route.name.clone());
            }
            let status = response.status();
            let answer = read_reply(response.into_body(), plane.limits.max_act_bytes).await;
            (to_body(seneca::web_reply(status, &answer, &matched)), route.name.clone())
        }
    }
}

/// The action's reply, up to `limit` bytes (empty beyond it or when it broke off).
async fn read_reply(mut body: ResponseBody, limit: usize) -> Bytes {
    let mut reply = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return Bytes::new() };
        if let Ok(data) = frame.into_data() {
            if reply.len() + data.len() > limit {
                return Bytes::new();
            }
            reply.extend_from_slice(&data);
        }
    }
    reply.freeze()
}
