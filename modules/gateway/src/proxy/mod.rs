//! The data plane: what every request on the gateway's listeners shares (the route
//! table, upstreams, limits, budget, metrics, log) and the per-request path from the
//! client's head to a route, Seneca's `/act`, or a 404.

mod body;
mod budget;
mod connection_state;
mod forward;
mod head_watch;
pub(crate) mod headers;
pub mod replies;
pub mod seneca;
pub mod server;
mod side_wake;
mod try_timer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http::{Request, Response, header};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

use self::body::Outgoing;
pub use self::budget::RetryBudget;
pub use self::connection_state::{ConnectionState, Slot};
use self::forward::{Outcome, forward};
use self::replies::{Failure, ResponseBody};
pub use self::try_timer::TryTimer;
use crate::access_log::{AccessLog, Line};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::settings::{LimitSettings, OutlierSettings};
use crate::table::Table;
use crate::trace::{TRACEPARENT_NAME, TraceContext, Tracer};

pub struct DataPlane {
    pub table: ArcSwap<Table>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub access_log: AccessLog,
    pub budget: RetryBudget,
    pub limits: LimitSettings,
    pub outlier: OutlierSettings,
    pub tracer: Tracer,
    /// Seneca `/act` and seneca-web routes, when `seneca.enabled`.
    pub seneca: Option<seneca::SenecaPlane>,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane").field("routes", &self.table.load().specs().len()).finish_non_exhaustive()
    }
}

impl DataPlane {
    /// `connection`: the client connection's own state (`connection_state.rs`): its
    /// copy of the route table and its try timer, re-armed by every try.
    pub async fn handle(
        self: Arc<Self>,
        client: SocketAddr,
        request: Request<Incoming>,
        connection: &mut ConnectionState,
    ) -> Response<ResponseBody> {
        let started = Instant::now();
        let (mut parts, body) = request.into_parts();
        // The fields this hop reads, found in one pass over the head (most heads have a
        // few fields; each lookup in the map would hash its name).
        let (mut host, mut upgrade, mut traced) = (None, false, false);
        for (name, value) in &parts.headers {
            if name == header::HOST {
                host = host.or(Some(value));
            } else if name == header::UPGRADE {
                upgrade = true;
            } else if *name == TRACEPARENT_NAME {
                traced = true;
            }
        }
        let client_upgrade = match upgrade && headers::is_upgrade(&parts.headers) {
            true => parts.extensions.remove::<OnUpgrade>(),
            false => None,
        };
        let host = host.and_then(|v| v.to_str().ok()).or(parts.uri.host());
        let (table, timer) = connection.table_and_timer();
        let route = table.find(host, parts.uri.path(), &parts.method, &parts.headers);
        // Span names are made only when spans are exported.
        let span_name = match self.tracer.is_exporting() {
            true => format!("{} {}", parts.method, route.map_or("(no route)", |r| r.name.as_str())),
            false => String::new(),
        };
        let context = match traced {
            true => TraceContext::from_headers(&parts.headers),
            false => TraceContext::new_trace(),
        };
        let mut span = self.tracer.server_span(&context, &span_name);
        let mut outcome = Outcome::default();
        let seneca_kind = self.seneca.as_ref().and_then(|s| s.kind(&parts.method, parts.uri.path()));
        let mut seneca_route = None;
        let response = match (seneca_kind, route) {
            (Some(kind), _) => {
                let seneca = self.seneca.as_ref().expect("kind came from it");
                let request = seneca::SenecaRequest { kind, parts: &parts, body, client, timer };
                // Boxed: a Seneca message's future is several times a proxied request's, and
                // every request's future would carry its size otherwise.
                let (response, name) = Box::pin(seneca::handle(&self, seneca, request, &span, &mut outcome)).await;
                // Its reply was read and rewritten after its try ended: its time runs to now.
                outcome.ended = None;
                seneca_route = Some(name);
                response
            }
            (None, route) => match route {
                None => {
                    outcome.failure = Some(Failure::NoRoute);
                    replies::failure(Failure::NoRoute, None, 0, "no route matches this request")
                }
                Some(route) => match Outgoing::ready(body, &parts.headers, self.limits.retry_buffer_bytes).await {
                    Ok(outgoing) => {
                        // Without a body nothing was awaited: the request's first clock
                        // reading starts its route deadline too. A body held first was
                        // the client's time, not the route's.
                        let arrived = match outgoing {
                            Outgoing::Empty => started,
                            _ => Instant::now(),
                        };
                        let request =
                            forward::Incoming { parts: &parts, body: outgoing, client, client_upgrade, timer, arrived };
                        forward(&self, route, request, &span, &mut outcome).await
                    }
                    Err(e) => {
                        outcome.failure = Some(Failure::BadRequest);
                        replies::failure(Failure::BadRequest, Some(&route.name), 0, &format!("request body: {e}"))
                    }
                },
            },
        };
        let route = if seneca_route.is_some() { None } else { route };
        let route_name = seneca_route.as_deref().unwrap_or(route.map_or("", |r| r.name.as_str()));
        let ended = outcome.ended.unwrap_or_else(Instant::now);
        let seconds = ended.saturating_duration_since(started).as_secs_f64();
        let status = response.status().as_u16();
        match route {
            Some(route) => {
                route.series.get_or_init(|| self.metrics.route(&route.name)).record(&parts.method, status, seconds)
            }
            None => self.metrics.request(route_name, &parts.method, status, seconds),
        }
        if span.is_recording() {
            span.set_attribute("http.request.method", parts.method.as_str());
            span.set_attribute("url.path", parts.uri.path());
            span.set_attribute("http.route", route_name);
            span.set_attribute("client.address", client.ip().to_string());
            span.set_attribute("http.response.status_code", status);
            if status >= 500 {
                span.set_error(outcome.failure.map_or("upstream answered 5xx", Failure::reason));
            }
        }
        let trace_id = self.access_log.enabled().then(|| span.trace_id_hex());
        span.end();
        if let Some(trace_id) = trace_id {
            self.access_log.record(Line {
                time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                trace_id,
                client: client.ip().to_string(),
                method: parts.method.to_string(),
                host: host.unwrap_or("").to_owned(),
                path: parts.uri.path().to_owned(),
                route: (!route_name.is_empty()).then(|| route_name.to_owned()),
                upstream: route.map(|r| r.upstream.name.clone()),
                instance: outcome.instance.as_ref().map(|i| i.id.clone()),
                status,
                attempts: outcome.attempts,
                duration_ms: seconds * 1000.0,
                reason: outcome.failure.map(Failure::reason),
            });
        }
        response
    }
}
