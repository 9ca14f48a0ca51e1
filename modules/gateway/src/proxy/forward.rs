//! One request through a route: admit it against the upstream's limits, try an
//! instance, and on a failure that allows it try a *different* one — connect failures
//! for any method (nothing left), resets, 502/503/504 and try timeouts only for
//! idempotent methods (or routes that opt in) whose body can be sent again — within the
//! route's retries, its overall deadline and the gateway's retry budget. Every try
//! feeds the instance's passive health. Nothing is retried once the response head went
//! to the client, since a try's response is only returned when it is kept.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Response, StatusCode, Uri};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use super::DataPlane;
use super::body::Outgoing;
use super::headers::strip_hop_by_hop;
use super::replies::{self, Failure, ResponseBody};
use super::try_timer::TryTimer;
use crate::metrics::InstanceSeries;
use crate::table::Route;
use crate::trace::ActiveSpan;
use crate::upstream::{
    Instance, PooledBody, RequestBody, RequestHead, SendError, Switched, Upstream, UpstreamError, ms_at,
};

/// What happened, for the access log and metrics.
#[derive(Debug, Default)]
pub struct Outcome {
    pub attempts: u32,
    /// The instance of the last try (an `Arc`: no copy of its id per request).
    pub instance: Option<Arc<Instance>>,
    /// Set when the gateway answered itself.
    pub failure: Option<Failure>,
    /// When the last try ended (its clock reading serves the request's duration too).
    pub ended: Option<Instant>,
}

enum TryError {
    /// No connection could be made: nothing was sent.
    Connect(String),
    /// The request left; the upstream reset or broke its response.
    Sent(UpstreamError),
    /// `circuit.max_pending` connections are being made already.
    Pending,
}

pub static X_APOLLO_ATTEMPTS: http::HeaderName = http::HeaderName::from_static("x-apollo-attempts");

/// The `X-Apollo-Attempts` value: a static string for any count a route allows (at
/// most 11 tries), so no request formats one.
fn attempts_value(attempts: u32) -> HeaderValue {
    const COUNTS: [&str; 12] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"];
    match COUNTS.get(attempts as usize) {
        Some(count) => HeaderValue::from_static(count),
        None => HeaderValue::from(attempts),
    }
}

/// RFC 9110 §9.2.2.
fn idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE)
}

/// The client's request as the route gets it.
pub struct Incoming<'a> {
    pub parts: &'a Parts,
    pub body: Outgoing,
    pub client: SocketAddr,
    /// The client's side of a protocol switch it asked for.
    pub client_upgrade: Option<OnUpgrade>,
    /// The client connection's try deadline.
    pub timer: &'a mut TryTimer,
    /// When the gateway began on this request: the route's deadline and the first try
    /// start there (one clock reading serves the request and its first try).
    pub arrived: Instant,
}

pub async fn forward(
    plane: &DataPlane,
    route: &Route,
    request: Incoming<'_>,
    span: &ActiveSpan,
    outcome: &mut Outcome,
) -> Response<ResponseBody> {
    let Incoming { parts, body, client, client_upgrade, timer, arrived } = request;
    let upstream = &route.upstream;
    let _admitted = match upstream.admit() {
        Ok(admitted) => admitted,
        Err(limit) => {
            plane.metrics.overflow(&upstream.name, limit.as_str());
            return local(plane, route, outcome, Failure::Overloaded, "the upstream's request limit is reached");
        }
    };
    // One clock reading counts the request in the retry budget and starts the deadline
    // and the first try; each try's end is the next one's start.
    let mut now = arrived;
    // The module clock's reading of `now`, taken once per try (each costs a subtraction
    // of two timespecs).
    let mut now_ms = ms_at(now);
    plane.budget.deposit(now_ms);
    let deadline = now + route.timeout;
    let Some(target) = upstream_target(route, &parts.uri) else {
        return local(plane, route, outcome, Failure::BadRequest, "the rewritten path is not a valid URI");
    };
    let upgrading = client_upgrade.is_some();
    let may_repeat = idempotent(&parts.method) || route.retry_non_idempotent;

    // At most 11 tries (retries ≤ 10): kept on the stack.
    let mut tried = [SocketAddr::from(([0, 0, 0, 0], 0)); 11];
    let mut last: (Failure, Cow<'static, str>) = (Failure::NoInstance, "no instance of the upstream is known".into());
    while let Some(instance) = upstream.pick(route.balance, &tried[..outcome.attempts as usize], now_ms) {
        if now >= deadline {
            last = (Failure::Timeout, "the route's deadline passed".into());
            break;
        }
        tried[outcome.attempts as usize] = instance.addr;
        outcome.attempts += 1;
        outcome.instance = Some(Arc::clone(&instance));
        let try_deadline = deadline.min(now + route.try_timeout);
        // Span names are made only for spans that are exported.
        let mut try_span = match span.is_recording() {
            true => span.child(&format!("{} {}", parts.method, upstream.name)),
            false => span.child(""),
        };
        let in_flight = instance.enter();
        // The try's head is written from the client's straight into the connection's
        // buffer: no header map is copied per try.
        let head = RequestHead {
            method: &parts.method,
            target: &target,
            headers: &parts.headers,
            client: client.ip(),
            upgrading,
            traceparent: try_span.traceparent_bytes(),
            tracestate: try_span.tracestate(),
        };
        let result = {
            // Pinned where it is made, and dropped (with its borrow of the head) here.
            let attempt = std::pin::pin!(one_try(upstream, &instance, &head, body.for_try(), upgrading, now));
            timer.run(try_deadline, attempt).await
        };
        drop(in_flight);
        if try_span.is_recording() {
            try_span.set_attribute("server.address", instance.addr.to_string());
            try_span.set_attribute("apollo.instance", instance.id.as_str());
            match &result {
                Ok(Ok(response)) => try_span.set_attribute("http.response.status_code", response.status().as_u16()),
                Ok(Err(TryError::Connect(why))) => try_span.set_error(why.as_str()),
                Ok(Err(TryError::Sent(e))) => try_span.set_error(e.to_string()),
                Ok(Err(TryError::Pending)) => try_span.set_error("pending connection limit"),
                Err(_) => try_span.set_error("try timed out"),
            }
        }
        try_span.end();
        let ended = Instant::now();
        let seconds = ended.saturating_duration_since(now).as_secs_f64();
        now = ended;
        now_ms = ms_at(now);
        outcome.ended = Some(ended);
        let retry_reason = match result {
            Ok(Ok(response)) => {
                let code = response.status().as_u16();
                try_series(plane, upstream, &instance).record(code, seconds);
                if matches!(code, 502..=504) {
                    note_failure(plane, upstream, &instance);
                    if may_repeat && body.can_resend() && may_retry(plane, route, outcome, now, deadline) {
                        plane.metrics.retry(&route.name, "status");
                        continue;
                    }
                } else {
                    instance.outlier.success(&plane.outlier, now_ms);
                }
                return relay(response, outcome.attempts, client_upgrade);
            }
            Ok(Err(TryError::Pending)) => {
                plane.metrics.overflow(&upstream.name, "pending");
                return local(
                    plane,
                    route,
                    outcome,
                    Failure::Overloaded,
                    "the upstream's pending connection limit is reached",
                );
            }
            Ok(Err(TryError::Connect(why))) => {
                last = (Failure::Upstream, why.into());
                "connect"
            }
            Ok(Err(TryError::Sent(e))) => {
                last = (Failure::Upstream, format!("upstream {}: {e}", instance.addr).into());
                if !may_repeat {
                    try_series(plane, upstream, &instance).record(0, seconds);
                    note_failure(plane, upstream, &instance);
                    break;
                }
                "reset"
            }
            Err(_) => {
                last = (Failure::Timeout, format!("upstream {} did not answer in time", instance.addr).into());
                if !may_repeat {
                    try_series(plane, upstream, &instance).record(0, seconds);
                    note_failure(plane, upstream, &instance);
                    break;
                }
                "timeout"
            }
        };
        try_series(plane, upstream, &instance).record(0, seconds);
        note_failure(plane, upstream, &instance);
        if !(body.can_resend() && may_retry(plane, route, outcome, now, deadline)) {
            break;
        }
        plane.metrics.retry(&route.name, retry_reason);
    }
    let (why, detail) = last;
    local(plane, route, outcome, why, &detail)
}

/// The target the upstream gets: the client's own (origin-form) when the route keeps
/// the path, else the rewritten one (checked to be a valid path and query).
fn upstream_target<'a>(route: &Route, client: &'a Uri) -> Option<Cow<'a, str>> {
    let own = client.path_and_query().map_or("/", |p| p.as_str());
    if !route.rewrites() && client.scheme().is_none() {
        return Some(Cow::Borrowed(own));
    }
    let rewritten = route.upstream_path(own);
    PathAndQuery::try_from(rewritten.as_str()).ok()?;
    Some(Cow::Owned(rewritten))
}

/// Whether one more try fits the route's retries, its deadline and the budget (asked
/// last: asking spends it).
fn may_retry(plane: &DataPlane, route: &Route, outcome: &Outcome, now: Instant, deadline: Instant) -> bool {
    outcome.attempts <= route.retries && now < deadline && plane.budget.withdraw(ms_at(now))
}

fn try_series<'i>(plane: &DataPlane, upstream: &Upstream, instance: &'i Instance) -> &'i InstanceSeries {
    instance.series.get_or_init(|| plane.metrics.instance(&upstream.name, &instance.id))
}

fn note_failure(plane: &DataPlane, upstream: &Upstream, instance: &Instance) {
    if upstream.record_failure(instance) {
        plane.metrics.ejection(&upstream.name);
    }
}

/// One try on one instance: an idle kept-alive connection (one found closed before the
/// request left is passed over), else a new one. A protocol switch always gets a new one.
async fn one_try(
    upstream: &Arc<Upstream>,
    instance: &Instance,
    head: &RequestHead<'_>,
    mut body: RequestBody,
    upgrading: bool,
    now: Instant,
) -> Result<Response<PooledBody>, TryError> {
    if !upgrading {
        while let Some(connection) = instance.pool.checkout(now) {
            match connection.send(head, body).await {
                Ok(response) => return Ok(response),
                Err(SendError::NotSent(back)) => body = back,
                Err(SendError::Sent(e)) => return Err(TryError::Sent(e)),
            }
        }
    }
    let connecting = upstream.admit_connect().map_err(|_| TryError::Pending)?;
    let connection = instance.pool.connect().await.map_err(|e| TryError::Connect(e.0))?;
    drop(connecting);
    connection.send(head, body).await.map_err(|e| match e {
        SendError::NotSent(_) => TryError::Connect(format!("{}: closed before the request left", instance.addr)),
        SendError::Sent(e) => TryError::Sent(e),
    })
}

/// The upstream's response on its way to the client; a 101 joins the client's upgraded
/// connection and the upstream's socket into a tunnel.
fn relay(response: Response<PooledBody>, attempts: u32, client_upgrade: Option<OnUpgrade>) -> Response<ResponseBody> {
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let (mut parts, mut body) = response.into_parts();
    if switching
        && let Some(client_upgrade) = client_upgrade
        && let Some(upstream) = body.take_switched()
    {
        tokio::spawn(async move {
            let Ok(client) = client_upgrade.await else { return };
            let mut client = TokioIo::new(client);
            let Switched { stream: mut upstream, already_read, open } = upstream;
            // What the upstream sent right after its 101 belongs to the new protocol.
            if client.write_all(&already_read).await.is_ok() {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
            drop(open);
        });
    }
    // Other responses lost their hop-by-hop fields as their heads were parsed
    // (`response_head.rs`); a 101 kept them for this switch.
    if switching {
        strip_hop_by_hop(&mut parts.headers, true);
    }
    parts.headers.insert(&X_APOLLO_ATTEMPTS, attempts_value(attempts));
    Response::from_parts(parts, ResponseBody::Relayed(body))
}

/// The route's fallback when it has one, else the gateway's own error.
fn local(
    plane: &DataPlane,
    route: &Route,
    outcome: &mut Outcome,
    why: Failure,
    detail: &str,
) -> Response<ResponseBody> {
    outcome.failure = Some(why);
    plane.metrics.fallback(&route.name, why.reason());
    let mut response = match &route.fallback {
        Some(f) if why != Failure::BadRequest => replies::fallback(f),
        _ => replies::failure(why, Some(&route.name), outcome.attempts, detail),
    };
    response.headers_mut().insert(&X_APOLLO_ATTEMPTS, attempts_value(outcome.attempts));
    response
}
