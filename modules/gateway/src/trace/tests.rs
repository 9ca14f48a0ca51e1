//! The exporter end to end: spans go to an in-test OTLP/HTTP receiver (a small hyper
//! server on 127.0.0.1) that decodes the real protobuf; plus the failure paths — a full
//! queue, an unreachable collector, a collector answering 500.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as OtlpKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::context::hex;
use super::{Settings, TRACEPARENT, TRACESTATE, TraceContext, TraceStats, Tracer};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

/// What the receiver saw of one export request.
#[derive(Debug)]
struct Received {
    path: String,
    content_type: Option<String>,
    request: ExportTraceServiceRequest,
}

/// A collector stand-in: decodes every POST as `ExportTraceServiceRequest` and
/// answers with the status it is told to.
struct Receiver {
    endpoint: String,
    received: Arc<Mutex<Vec<Received>>>,
    answer_status: Arc<AtomicU16>,
    accept_loop: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let answer_status = Arc::new(AtomicU16::new(200));
        let accept_loop = tokio::spawn(Self::accept(listener, received.clone(), answer_status.clone()));
        Receiver { endpoint, received, answer_status, accept_loop }
    }

    async fn accept(listener: TcpListener, received: Arc<Mutex<Vec<Received>>>, status: Arc<AtomicU16>) {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (received, status) = (received.clone(), status.clone());
            let service = service_fn(move |request: http::Request<Incoming>| {
                let (received, status) = (received.clone(), status.clone());
                async move {
                    let path = request.uri().path().to_string();
                    let content_type =
                        request.headers().get(http::header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string());
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let decoded = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
                    received.lock().unwrap().push(Received { path, content_type, request: decoded });
                    let answer = ExportTraceServiceResponse::default().encode_to_vec();
                    let response = http::Response::builder()
                        .status(status.load(Ordering::SeqCst))
                        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                        .body(Full::new(Bytes::from(answer)))
                        .unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    }

    fn spans(&self) -> Vec<OtlpSpan> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .flat_map(|r| &r.request.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| ss.spans.clone())
            .collect()
    }
}

fn settings(endpoint: &str) -> Settings {
    Settings { otlp_endpoint: Some(endpoint.to_string()), flush_interval_ms: 20, ..Settings::default() }
}

/// Collects what the tracer logs.
fn log_lines() -> (Arc<Mutex<Vec<String>>>, impl Fn(&str) + Send + Sync + 'static) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    (lines, move |line: &str| sink.lock().unwrap().push(line.to_string()))
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn caller_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(TRACEPARENT, HeaderValue::from_str(&format!("00-{TRACE}-{CALLER}-01")).unwrap());
    headers.insert(TRACESTATE, HeaderValue::from_static("congo=t61rcWkgMzE"));
    headers
}

#[tokio::test]
async fn a_request_and_its_two_tries_reach_the_collector() {
    let receiver = Receiver::start().await;
    let tracer = Tracer::start(&settings(&receiver.endpoint), |_| {});
    let ctx = TraceContext::from_headers(&caller_headers());

    let mut server = tracer.server_span(&ctx, "GET /users");
    server.set_attribute("http.request.method", "GET");
    let mut first = server.child("upstream try 1");
    first.set_attribute("server.address", "10.0.0.1");
    first.set_attribute("http.response.status_code", 503u16);
    first.set_error("upstream answered 503");
    let mut upstream_headers = HeaderMap::new();
    first.inject(&mut upstream_headers);
    first.end();
    let mut second = server.child("upstream try 2");
    second.set_attribute("http.response.status_code", 200u16);
    second.set_attribute("http.response.status_code", 201u16); // replaces
    // What went upstream as the parent: `00-<trace>-<parent>-<flags>`.
    let sent_upstream = upstream_headers[TRACEPARENT].to_str().unwrap().to_string();
    let first_id = sent_upstream.split('-').nth(2).unwrap().to_string();
    let (second_id, server_id) = (second.span_id(), server.span_id());
    second.end();
    server.set_attribute("http.response.status_code", 201u16);
    server.end();

    eventually("three spans", || receiver.spans().len() == 3).await;
    tracer.shutdown().await;
    assert_eq!(tracer.stats().exported, 3);

    {
        let received = receiver.received.lock().unwrap();
        let first_request = &received[0];
        assert_eq!(first_request.path, "/v1/traces");
        assert_eq!(first_request.content_type.as_deref(), Some("application/x-protobuf"));
        let resource_spans = &first_request.request.resource_spans[0];
        let resource = resource_spans.resource.as_ref().unwrap();
        assert_eq!(attribute(&resource.attributes, "service.name"), Some(&Value::StringValue("apollo-gateway".into())));
        assert_eq!(resource_spans.scope_spans[0].scope.as_ref().unwrap().name, "apollo-gateway");
    }

    let spans = receiver.spans();
    let by_name = |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span {name}"));
    let (server, first, second) = (by_name("GET /users"), by_name("upstream try 1"), by_name("upstream try 2"));
    for span in [server, first, second] {
        assert_eq!(hex(&span.trace_id), TRACE, "{}", span.name);
        assert_eq!(span.span_id.len(), 8);
        assert_eq!(span.trace_state, "congo=t61rcWkgMzE");
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
        assert_eq!(span.flags & 0xff, 0x01);
    }
    assert_eq!(hex(&server.parent_span_id), CALLER);
    assert_eq!(server.span_id, server_id.to_vec());
    assert_eq!(server.kind, OtlpKind::Server as i32);
    assert_eq!(server.flags & 0x300, 0x300, "the server span's parent is remote");
    assert_eq!(attribute(&server.attributes, "http.request.method"), Some(&Value::StringValue("GET".into())));
    assert_eq!(server.status.as_ref().unwrap().code, StatusCode::Ok as i32);

    for child in [first, second] {
        assert_eq!(child.kind, OtlpKind::Client as i32);
        assert_eq!(child.parent_span_id, server_id.to_vec(), "{} hangs under the server span", child.name);
        assert_eq!(child.flags & 0x300, 0x100, "a child's parent is local");
    }
    assert_eq!(hex(&first.span_id), first_id, "the id sent upstream is the try's span");
    assert_eq!(second.span_id, second_id.to_vec());
    assert_eq!(attribute(&first.attributes, "http.response.status_code"), Some(&Value::IntValue(503)));
    assert_eq!(attribute(&first.attributes, "server.address"), Some(&Value::StringValue("10.0.0.1".into())));
    let status = first.status.as_ref().unwrap();
    assert_eq!((status.code, status.message.as_str()), (StatusCode::Error as i32, "upstream answered 503"));
    assert_eq!(second.attributes.len(), 1);
    assert_eq!(attribute(&second.attributes, "http.response.status_code"), Some(&Value::IntValue(201)));
}

#[tokio::test]
async fn a_dropped_span_records_once_and_unsampled_traces_never_queue() {
    let receiver = Receiver::start().await;
    let tracer = Tracer::start(&settings(&receiver.endpoint), |_| {});
    let aborted = tracer.server_span(&TraceContext::from_headers(&caller_headers()), "aborted request");
    drop(aborted);
    let mut unsampled_headers = HeaderMap::new();
    unsampled_headers.insert(TRACEPARENT, HeaderValue::from_str(&format!("00-{TRACE}-{CALLER}-00")).unwrap());
    let unsampled = tracer.server_span(&TraceContext::from_headers(&unsampled_headers), "unsampled");
    assert!(!unsampled.is_recording());
    unsampled.child("try").end();
    unsampled.end();
    tracer.shutdown().await;
    let names: Vec<String> = receiver.spans().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["aborted request"]);
    assert_eq!(tracer.stats(), TraceStats { exported: 1, dropped: 0, failed: 0 });
}

/// `#[tokio::test]` runs on one thread: the exporter cannot drain the queue while this
/// test does not yield, so the queue fills exactly — and `end` must still return at once.
#[tokio::test]
async fn a_full_queue_drops_spans_without_waiting() {
    let receiver = Receiver::start().await;
    let settings = Settings { queue_size: 4, batch_size: 512, ..settings(&receiver.endpoint) };
    let tracer = Tracer::start(&settings, |_| {});
    let ctx = TraceContext::from_headers(&caller_headers());
    let mut slowest = Duration::ZERO;
    for i in 0..1000 {
        let span = tracer.server_span(&ctx, &format!("request {i}"));
        let started = Instant::now();
        span.end();
        slowest = slowest.max(started.elapsed());
    }
    // `end` is a plain fn (it cannot await); the bound only allows for a busy machine.
    assert!(slowest < Duration::from_millis(250), "end() took {slowest:?}");
    assert_eq!(tracer.stats().dropped, 996);
    // Nor does it need the runtime: a thread outside it ends a span into the full queue.
    let outside = tracer.server_span(&ctx, "ended outside the runtime");
    std::thread::spawn(move || outside.end()).join().unwrap();
    assert_eq!(tracer.stats().dropped, 997);
    let in_flight = tracer.server_span(&ctx, "in flight at shutdown");
    tracer.shutdown().await;
    assert_eq!(tracer.stats(), TraceStats { exported: 4, dropped: 997, failed: 0 });
    assert_eq!(receiver.spans().len(), 4);
    // After shutdown nothing is queued any more: a span that was in flight is dropped
    // (counted), one started afterwards does not record at all.
    in_flight.end();
    assert_eq!(tracer.stats().dropped, 998);
    assert!(!tracer.server_span(&ctx, "late").is_recording());
}

#[tokio::test]
async fn an_unreachable_collector_is_counted_logged_once_and_survived() {
    // A port that was just free: connecting is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (lines, log) = log_lines();
    let tracer = Tracer::start(&settings(&format!("http://127.0.0.1:{port}/v1/traces")), log);
    let ctx = TraceContext::from_headers(&caller_headers());
    tracer.server_span(&ctx, "first").end();
    eventually("the first failure", || tracer.stats().failed == 1).await;
    tracer.server_span(&ctx, "second").end();
    tracer.server_span(&ctx, "third").end();
    eventually("the next failures", || tracer.stats().failed == 3).await;
    assert!(tracer.is_exporting(), "the exporter is still running");
    let logged = lines.lock().unwrap().clone();
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains(&format!("127.0.0.1:{port}")), "{}", logged[0]);
    let started = Instant::now();
    tracer.shutdown().await;
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn a_collector_answering_500_is_counted_and_later_exports_go_through() {
    let receiver = Receiver::start().await;
    receiver.answer_status.store(500, Ordering::SeqCst);
    let (lines, log) = log_lines();
    let tracer = Tracer::start(&settings(&receiver.endpoint), log);
    let ctx = TraceContext::from_headers(&caller_headers());
    tracer.server_span(&ctx, "refused").end();
    eventually("the refused export", || tracer.stats().failed == 1).await;
    assert!(lines.lock().unwrap()[0].contains("500"), "{:?}", lines.lock().unwrap());

    receiver.answer_status.store(200, Ordering::SeqCst);
    tracer.server_span(&ctx, "accepted").end();
    eventually("the accepted export", || tracer.stats().exported == 1).await;
    tracer.shutdown().await;
    assert_eq!(tracer.stats(), TraceStats { exported: 1, dropped: 0, failed: 1 });
    assert_eq!(receiver.received.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn shutdown_sends_what_is_queued_before_the_flush_interval() {
    let receiver = Receiver::start().await;
    let settings = Settings { flush_interval_ms: 60_000, ..settings(&receiver.endpoint) };
    let tracer = Tracer::start(&settings, |_| {});
    let ctx = TraceContext::from_headers(&caller_headers());
    for i in 0..3 {
        tracer.server_span(&ctx, &format!("request {i}")).end();
    }
    tracer.shutdown().await;
    tracer.shutdown().await; // Idempotent.
    assert_eq!(tracer.stats().exported, 3);
    assert_eq!(receiver.spans().len(), 3);
}

#[tokio::test]
async fn batches_hold_at_most_batch_size_spans() {
    let receiver = Receiver::start().await;
    let settings = Settings { batch_size: 2, flush_interval_ms: 60_000, ..settings(&receiver.endpoint) };
    let tracer = Tracer::start(&settings, |_| {});
    let ctx = TraceContext::from_headers(&caller_headers());
    for i in 0..5 {
        tracer.server_span(&ctx, &format!("request {i}")).end();
    }
    eventually("two full batches", || receiver.received.lock().unwrap().len() == 2).await;
    tracer.shutdown().await;
    let sizes: Vec<usize> = receiver
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.request.resource_spans[0].scope_spans[0].spans.len())
        .collect();
    assert_eq!(sizes, [2, 2, 1]);
}
