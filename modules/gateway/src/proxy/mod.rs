//! The data plane: what every request on the gateway's listeners shares (the route
//! table, upstreams, limits, budget, metrics, log) and the per-request path from the
//! client's head to a route, Seneca's `/act`, or a 404.

mod body;
mod forward;
mod headers;
pub mod replies;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http::{Request, Response, header};
use hyper::body::Incoming;
use tower::retry::budget::TpsBudget;

use self::body::Outgoing;
use self::forward::{Outcome, forward};
use self::replies::{Failure, ResponseBody};
use crate::access_log::{AccessLog, Line};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::settings::{LimitSettings, OutlierSettings};
use crate::table::Table;

pub struct DataPlane {
    pub table: ArcSwap<Table>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub access_log: AccessLog,
    pub budget: TpsBudget,
    pub limits: LimitSettings,
    pub outlier: OutlierSettings,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane").field("routes", &self.table.load().specs().len()).finish_non_exhaustive()
    }
}

impl DataPlane {
    pub async fn handle(self: Arc<Self>, client: SocketAddr, mut request: Request<Incoming>) -> Response<ResponseBody> {
        let started = Instant::now();
        let client_upgrade = headers::is_upgrade(request.headers()).then(|| hyper::upgrade::on(&mut request));
        let (parts, body) = request.into_parts();
        let host = parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()).or(parts.uri.host());
        let table = self.table.load();
        let route = table.find(host, parts.uri.path(), &parts.method, &parts.headers);
        let mut outcome = Outcome::default();
        let response = match route {
            None => {
                outcome.failure = Some(Failure::NoRoute);
                replies::failure(Failure::NoRoute, None, 0, "no route matches this request")
            }
            Some(route) => match Outgoing::ready(body, &parts.headers, self.limits.retry_buffer_bytes).await {
                Ok(outgoing) => forward(&self, route, &parts, outgoing, client, client_upgrade, &mut outcome).await,
                Err(e) => {
                    outcome.failure = Some(Failure::BadRequest);
                    replies::failure(Failure::BadRequest, Some(&route.name), 0, &format!("request body: {e}"))
                }
            },
        };
        let route_name = route.map_or("", |r| r.name.as_str());
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.request(route_name, &parts.method, response.status().as_u16(), seconds);
        if self.access_log.enabled() {
            self.access_log.record(Line {
                time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                trace_id: String::new(),
                client: client.ip().to_string(),
                method: parts.method.to_string(),
                host: host.unwrap_or("").to_owned(),
                path: parts.uri.path().to_owned(),
                route: route.map(|r| r.name.clone()),
                upstream: route.map(|r| r.upstream.name.clone()),
                instance: outcome.instance,
                status: response.status().as_u16(),
                attempts: outcome.attempts,
                duration_ms: seconds * 1000.0,
                reason: outcome.failure.map(Failure::reason),
            });
        }
        response
    }
}
