//! module-gateway through the real host and the real `.so`: upstreams are demo-http
//! instances the host supervises (one killed mid-load must cost no client an error),
//! routes change through the admin API (a bad table refused, the old one serving),
//! a catalog service's instances are followed live, spans reach a real OTLP/HTTP
//! receiver decoding the protobuf, WebSocket upgrades pass through, and bad input —
//! oversized heads, slowloris clients, hanging upstreams, huge uploads — is bounded.

use crate::common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use apollo_host::cli::ApiClient;
use bytes::Bytes;
use common::Deployment;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn demo_http() -> String {
    let path = PathBuf::from(common::apollo_bin()).parent().unwrap().join("demo-http");
    assert!(path.exists(), "build it first: cargo build -p demo-http (make test does)");
    path.display().to_string()
}

/// A host with module-gateway (and module-catalog when `catalog` is set) loaded.
pub(crate) fn deployment(gateway: Value, catalog: Option<SocketAddr>) -> Deployment {
    // A gateway's blocking query parks on the catalog's listener until the host's drain
    // deadline at shutdown; a short deadline keeps the tests quick.
    let mut config = json!({"modules": {"dir": "modules", "config": {"gateway": gateway}},
        "server": {"shutdown_drain_secs": 1}});
    if let Some(addr) = catalog {
        common::merge(&mut config, &json!({"modules": {"listeners": {"catalog": addr.to_string()}}}));
    }
    let d = Deployment::with(config);
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(common::module_library("module-gateway"), d.root().join("modules/module_gateway.so")).unwrap();
    if catalog.is_some() {
        std::fs::copy(common::module_library("module-catalog"), d.root().join("modules/module_catalog.so")).unwrap();
    }
    d
}

pub(crate) fn base_gateway() -> Value {
    json!({"listen": ["127.0.0.1:0"], "catalog": {"address": null}, "access_log": {"enabled": false}})
}

/// A demo-http service the host supervises, on a port the host picks.
pub(crate) fn supervised_demo(d: &Deployment, name: &str) {
    let mut m = common::model(name, &format!("app_{name}"), &[]);
    m["run_data"]["command"] = json!([demo_http(), "--name", name]);
    m["run_data"]["random_port"] = json!(true);
    d.write_model(&format!("{name}.pig"), &m);
}

/// Starts a service and waits until it accepts connections ("running" comes at spawn).
pub(crate) async fn start_service(client: &ApiClient, name: &str) -> (u16, i32) {
    let _: Value = client.post(&format!("/api/apps/{name}/start"), None).await.unwrap();
    common::eventually(&format!("{name} runs and listens"), Duration::from_secs(20), || async {
        let s: Value = client.get(&format!("/api/apps/{name}/status")).await.ok()?;
        let (port, pid) = (s["ports"][0].as_u64()? as u16, s["pid"].as_i64()? as i32);
        let listening = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok();
        (s["state"] == "running" && listening).then_some((port, pid))
    })
    .await
}

/// The gateway's data-plane address.
pub(crate) async fn gateway_addr(client: &ApiClient) -> SocketAddr {
    common::eventually("the gateway listens", Duration::from_secs(15), || async {
        let v: Value = client.get("/api/module/gateway/listeners").await.ok()?;
        v["listeners"][0].as_str()?.parse().ok()
    })
    .await
}

async fn put_routes(client: &ApiClient, routes: Value) -> Result<Value, apollo_host::cli::ClientError> {
    client.call(http::Method::PUT, "/api/module/gateway/routes", Some(&routes)).await
}

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get(client: &HttpClient, url: &str) -> Result<(u16, Value), String> {
    let response = client.get(url.parse().unwrap()).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// Raw bytes to the gateway; what came back before it closed (or `wait` passed).
async fn raw(addr: SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut got)).await;
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_costs_no_client_an_error_and_both_instances_serve() {
    let mut gateway = base_gateway();
    gateway["outlier"] = json!({"consecutive_failures": 1, "base_ejection_ms": 2000});
    let d = deployment(gateway, None);
    supervised_demo(&d, "web-a");
    supervised_demo(&d, "web-b");
    let host = d.start().await;
    let api = host.uds();
    let (port_a, pid_a) = start_service(&api, "web-a").await;
    let (port_b, _) = start_service(&api, "web-b").await;
    let routes = json!([{"name": "web", "path_prefix": "/", "retries": 2, "try_timeout_ms": 2000,
        "upstreams": [{"address": format!("127.0.0.1:{port_a}")}, {"address": format!("127.0.0.1:{port_b}")}]}]);
    put_routes(&api, routes).await.unwrap();
    let gw = gateway_addr(&api).await;
    let client = http_client();

    let mut names = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (status, body) = get(&client, &format!("http://{gw}/")).await.unwrap();
        assert_eq!(status, 200, "{body}");
        names.insert(body["name"].as_str().unwrap().to_owned());
    }
    assert_eq!(names.len(), 2, "round robin reaches both instances: {names:?}");

    // Four clients keep GETting while web-a is killed (the host restarts it).
    let errors = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs(3);
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, errors, served) = (client.clone(), Arc::clone(&errors), Arc::clone(&served));
        load.push(tokio::spawn(async move {
            while Instant::now() < until {
                match get(&client, &format!("http://{gw}/")).await {
                    Ok((200, _)) => served.fetch_add(1, Ordering::Relaxed),
                    Ok((status, body)) => {
                        eprintln!("non-200 through the gateway: {status} {body}");
                        errors.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        eprintln!("client error through the gateway: {e}");
                        errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid_a), nix::sys::signal::Signal::SIGKILL).unwrap();
    for task in load {
        task.await.unwrap();
    }
    eprintln!(
        "killed web-a mid-load: {} served, {} errors",
        served.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed)
    );
    assert_eq!(errors.load(Ordering::Relaxed), 0, "idempotent requests are retried on the other instance");
    assert!(served.load(Ordering::Relaxed) > 50, "the load ran");

    let upstreams: Value = api.get("/api/module/gateway/upstreams").await.unwrap();
    let instances = &upstreams["upstreams"][0]["instances"];
    assert_eq!(instances.as_array().unwrap().len(), 2, "{upstreams:#}");
    let metrics = api.send(http::Method::GET, "/metrics", None).await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(text.contains("gateway_requests_total{") && text.contains("route=\"web\""), "{text}");
    assert!(text.contains("gateway_retries_total{"), "the kill made retries:\n{text}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_change_at_run_time_a_bad_table_is_refused_and_the_change_outlives_a_restart() {
    let d = deployment(base_gateway(), None);
    supervised_demo(&d, "api");
    let host = d.start().await;
    let api = host.uds();
    let (port, _) = start_service(&api, "api").await;
    let gw = gateway_addr(&api).await;
    let client = http_client();
    let (status, body) = get(&client, &format!("http://{gw}/v1/healthz")).await.unwrap();
    assert_eq!((status, body["reason"].as_str()), (404, Some("no_route")), "{body}");

    let good = json!({"name": "v1", "path_prefix": "/v1", "strip_prefix": true,
        "upstreams": [{"address": format!("127.0.0.1:{port}")}]});
    let created: Value = api.post("/api/module/gateway/routes", Some(&good)).await.unwrap();
    assert_eq!(created["source"], "api");
    let (status, body) = get(&client, &format!("http://{gw}/v1/healthz")).await.unwrap();
    assert_eq!((status, body["name"].as_str()), (200, Some("api")), "prefix stripped: {body}");

    let bad = json!([good, {"name": "broken", "path_prefix": "/x", "upstreams": [{"address": "localhost:80"}]}]);
    let err = put_routes(&api, bad).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("route `broken`: upstreams: `localhost:80` is not ip:port"), "{err}");
    let (status, _) = get(&client, &format!("http://{gw}/v1/healthz")).await.unwrap();
    assert_eq!(status, 200, "the old table keeps serving");
    let err = api.post::<Value>("/api/module/gateway/routes", Some(&good)).await.unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    let err = api.call::<Value>(http::Method::DELETE, "/api/module/gateway/routes/nope", None).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    host.shutdown().await;

    let host = d.start().await;
    let api = host.uds();
    let listed: Value = api.get("/api/module/gateway/routes").await.unwrap();
    assert_eq!((listed["source"].as_str(), listed["routes"][0]["name"].as_str()), (Some("api"), Some("v1")));
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_service_is_followed_live() {
    let catalog = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut gateway = base_gateway();
    gateway["catalog"] = json!({"address": catalog.to_string()});
    gateway["routes"] = json!([{"name": "orders", "path_prefix": "/", "service": "orders"}]);
    let d = deployment(gateway, Some(catalog));
    supervised_demo(&d, "orders-1");
    let host = d.start().await;
    let api = host.uds();
    let (port, _) = start_service(&api, "orders-1").await;
    let gw = gateway_addr(&api).await;
    let client = http_client();
    let (status, body) = get(&client, &format!("http://{gw}/")).await.unwrap();
    assert_eq!((status, body["reason"].as_str()), (503, Some("no_healthy_upstream")), "{body}");

    let consul = ApiClient::new(apollo_host::cli::Endpoint::Tcp(catalog.to_string()), None);
    let registration = json!({"Name": "orders", "ID": "orders-1", "Address": "127.0.0.1", "Port": port});
    let registered = Instant::now();
    consul.send(http::Method::PUT, "/v1/agent/service/register", Some(&registration)).await.unwrap();
    common::eventually("the gateway routes to the registered instance", Duration::from_secs(10), || {
        let client = client.clone();
        async move {
            let (status, body) = get(&client, &format!("http://{gw}/")).await.ok()?;
            (status == 200 && body["name"] == "orders-1").then_some(())
        }
    })
    .await;
    eprintln!("registration to first routed request: {:?}", registered.elapsed());

    consul.send(http::Method::PUT, "/v1/agent/service/deregister/orders-1", None).await.unwrap();
    common::eventually("the deregistered instance leaves the rotation", Duration::from_secs(10), || {
        let client = client.clone();
        async move { (get(&client, &format!("http://{gw}/")).await.ok()?.0 == 503).then_some(()) }
    })
    .await;
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_bounded_and_answered_clearly() {
    let mut gateway = base_gateway();
    gateway["limits"] = json!({"header_read_timeout_ms": 500, "max_header_bytes": 8192});
    let d = deployment(gateway, None);
    supervised_demo(&d, "slow");
    let host = d.start().await;
    let api = host.uds();
    let (port, _) = start_service(&api, "slow").await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let routes = json!([
        {"name": "slow", "path_prefix": "/", "retries": 1, "try_timeout_ms": 300, "timeout_ms": 1000,
         "upstreams": [{"address": format!("127.0.0.1:{port}")}]},
        {"name": "upload", "path_prefix": "/upload", "upstreams": [{"address": format!("127.0.0.1:{port}")}]},
        {"name": "gone", "path_prefix": "/gone", "upstreams": [{"address": dead.to_string()}],
         "fallback": {"status": 503, "headers": {"content-type": "text/plain"}, "body": "down for maintenance"}},
    ]);
    put_routes(&api, routes).await.unwrap();
    let gw = gateway_addr(&api).await;
    let client = http_client();

    // A hanging upstream: each try is cut at 300 ms, the GET tried twice, then 504.
    let started = Instant::now();
    let (status, body) = get(&client, &format!("http://{gw}/sleep/5000")).await.unwrap();
    assert_eq!((status, body["reason"].as_str(), body["attempts"].as_u64()), (504, Some("timeout"), Some(2)), "{body}");
    assert!(started.elapsed() < Duration::from_secs(3), "bounded by the route's deadline");

    // Nothing listens: the route's fallback answers.
    let response = client.get(format!("http://{gw}/gone/x").parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), 503);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"down for maintenance");

    // A head larger than the limit: 431, and the gateway goes on serving.
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    let answer = raw(gw, big.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // A client that never finishes its head is cut off after header_read_timeout_ms.
    let started = Instant::now();
    let answer = raw(gw, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "slowloris connection closed after {took:?}: {answer}");

    // A 256 MiB upload streams through (POST, above the retry buffer) without the host
    // holding it: its resident memory grows far less than the body (the bound leaves
    // room for the other tests running in this process; holding it would add 256 MiB).
    let before = resident_bytes();
    let chunk = Bytes::from(vec![b'x'; 1 << 20]);
    let chunks =
        futures::stream::iter((0..256).map(move |_| Ok::<_, std::io::Error>(hyper::body::Frame::data(chunk.clone()))));
    let upload = hyper::Request::post(format!("http://{gw}/upload"))
        .header("content-length", (256u64 << 20).to_string())
        .body(StreamBody::new(chunks))
        .unwrap();
    let streaming: Client<_, StreamBody<_>> = Client::builder(TokioExecutor::new()).build_http();
    let response = streaming.request(upload).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["bytes"], 256u64 << 20);
    let grew = resident_bytes().saturating_sub(before);
    eprintln!("resident memory grew {} KiB over a 256 MiB upload", grew >> 10);
    assert!(grew < 160 << 20, "resident memory grew {grew} bytes for a 256 MiB upload");

    let (status, _) = get(&client, &format!("http://{gw}/healthz")).await.unwrap();
    assert_eq!(status, 200, "still serving");
    host.shutdown().await;
}

/// This process's resident set (the host runs in it).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB");
    kib.trim().parse::<u64>().unwrap() * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_pass_through_both_ways() {
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let echo = tokio::spawn(async move {
        let (stream, _) = upstream.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        while let Some(Ok(message)) = ws.next().await {
            if message.is_text() {
                ws.send(message).await.unwrap();
            }
        }
    });
    let mut gateway = base_gateway();
    gateway["routes"] =
        json!([{"name": "ws", "path_prefix": "/ws", "upstreams": [{"address": upstream_addr.to_string()}]}]);
    let d = deployment(gateway, None);
    let host = d.start().await;
    let gw = gateway_addr(&host.uds()).await;
    let (mut ws, response) = tokio_tungstenite::connect_async(format!("ws://{gw}/ws/chat")).await.unwrap();
    assert_eq!(response.status(), 101);
    for n in 0..3 {
        ws.send(tokio_tungstenite::tungstenite::Message::text(format!("hello {n}"))).await.unwrap();
        let back = ws.next().await.unwrap().unwrap();
        assert_eq!(back.into_text().unwrap().as_str(), format!("hello {n}"));
    }
    ws.close(None).await.unwrap();
    drop(ws);
    let _ = tokio::time::timeout(Duration::from_secs(5), echo).await;
    host.shutdown().await;
}

/// An OTLP/HTTP receiver: takes `POST /v1/traces` protobuf bodies (keep-alive, by
/// `Content-Length`) and decodes them with the real opentelemetry-proto types.
async fn otlp_receiver() -> (SocketAddr, Arc<std::sync::Mutex<Vec<ExportTraceServiceRequest>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sink = Arc::clone(&sink);
            tokio::spawn(async move {
                let mut reader = tokio::io::BufReader::new(stream);
                while let Some((_, body)) = common::http_receiver::read_request(&mut reader).await {
                    sink.lock().unwrap().push(ExportTraceServiceRequest::decode(&body[..]).expect("OTLP protobuf"));
                    reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await.unwrap();
                }
            });
        }
    });
    (addr, got)
}

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_carry_the_callers_trace_to_a_real_otlp_receiver() {
    let (receiver, got) = otlp_receiver().await;
    let mut gateway = base_gateway();
    gateway["tracing"] = json!({"otlp_endpoint": format!("http://{receiver}/v1/traces"), "flush_interval_ms": 100});
    let log_dir = tempfile::tempdir().unwrap();
    let access_log = log_dir.path().join("access.log");
    gateway["access_log"] = json!({"enabled": true, "path": access_log.display().to_string()});
    let d = deployment(gateway, None);
    supervised_demo(&d, "traced");
    let host = d.start().await;
    let api = host.uds();
    let (port, _) = start_service(&api, "traced").await;
    put_routes(
        &api,
        json!([{"name": "traced", "path_prefix": "/", "upstreams": [{"address": format!("127.0.0.1:{port}")}]}]),
    )
    .await
    .unwrap();
    let gw = gateway_addr(&api).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let request = hyper::Request::get(format!("http://{gw}/healthz"))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = http_client().request(request).await.unwrap();
    assert_eq!(response.status(), 200);

    let spans = common::eventually("both spans reach the receiver", Duration::from_secs(10), || async {
        let spans: Vec<_> = got
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| r.resource_spans.iter())
            .flat_map(|r| r.scope_spans.iter())
            .flat_map(|s| s.spans.iter().cloned())
            .collect();
        (spans.len() >= 2).then_some(spans)
    })
    .await;
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let server = spans.iter().find(|s| s.kind == 2).expect("a server span");
    let client = spans.iter().find(|s| s.kind == 3).expect("a client span per try");
    assert_eq!(hex(&server.trace_id), trace_id);
    assert_eq!(hex(&server.parent_span_id), caller_span, "the caller's span is the parent");
    assert_eq!(hex(&client.trace_id), trace_id);
    assert_eq!(client.parent_span_id, server.span_id, "the try is a child of the request");

    // The access log line of that request carries the trace id.
    let line: Value = common::eventually("the access log line is written", Duration::from_secs(10), || async {
        let text = std::fs::read_to_string(&access_log).ok()?;
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|l| l["path"] == "/healthz")
    })
    .await;
    assert_eq!((line["trace_id"].as_str(), line["status"].as_u64()), (Some(trace_id), Some(200)), "{line}");
    assert_eq!((line["route"].as_str(), line["attempts"].as_u64()), (Some("traced"), Some(1)), "{line}");
    host.shutdown().await;
}

/// Whether the npm seneca packages are installed (`.ci/node-clients-up.sh`).
fn seneca_installed() -> bool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/node/node_modules/seneca");
    common::components::require("npm seneca", dir.exists(), "run ./.ci/node-clients-up.sh (make test-deps does)")
}

fn seneca_script(name: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients").join(name)
}

/// A real `seneca().listen()` service; dropped with the returned child (stdin closes).
fn seneca_listener(port: u16, tag: &str) -> std::process::Child {
    let mut child = std::process::Command::new("node")
        .arg(seneca_script("seneca_service.js"))
        .args([port.to_string(), tag.to_owned()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert!(line.starts_with("listening"), "seneca listener: {line}");
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_seneca_client_calls_patterns_through_the_gateway() {
    if !seneca_installed() {
        return;
    }
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let catalog = free();
    let mut gateway = base_gateway();
    gateway["catalog"] = json!({"address": catalog.to_string()});
    gateway["seneca"] = json!({"web": [{"prefix": "/user", "pin": "module:user,if:*",
        "map": {"list": {"GET": true, "name": ""}, "load": {"GET": true, "name": "", "suffix": "/:id"}}}]});
    let d = deployment(gateway, Some(catalog));
    // A seneca service the host supervises, declaring its pattern in its model: the
    // catalog lists it with that meta, the gateway routes to it.
    let node = String::from_utf8(std::process::Command::new("which").arg("node").output().unwrap().stdout).unwrap();
    let mut greeter = common::model("greeter", "app_greeter", &[]);
    greeter["run_data"]["command"] = json!([node.trim(), seneca_script("seneca_service.js").display().to_string()]);
    greeter["run_data"]["random_port"] = json!(true);
    greeter["run_data"]["meta"] = json!({"seneca_pin": "role:greet"});
    greeter["run_data"]["tags"] = json!(["seneca", "v1"]);
    d.write_model("greeter.pig", &greeter);
    let host = d.start().await;
    let gw = gateway_addr(&host.uds()).await;
    start_service(&host.uds(), "greeter").await;
    let consul = ApiClient::new(apollo_host::cli::Endpoint::Tcp(catalog.to_string()), None);
    let listed: Value =
        common::eventually("the catalog lists the supervised service", Duration::from_secs(10), || async {
            let entries: Value = consul.get("/v1/catalog/service/greeter").await.ok()?;
            entries.as_array().filter(|e| !e.is_empty()).map(|e| e[0].clone())
        })
        .await;
    assert_eq!(listed["ServiceTags"], json!(["apollo", "seneca", "v1"]), "the model's tags: {listed:#}");
    assert_eq!(listed["ServiceMeta"]["seneca_pin"], "role:greet", "the model's meta: {listed:#}");
    let (math_port, users_port) = (free().port(), free().port());
    let mut math = seneca_listener(math_port, "math-1");
    let mut users = seneca_listener(users_port, "users-1");

    for (name, port, pin) in [("math", math_port, "role:math"), ("users", users_port, "module:user")] {
        let registration = json!({"Name": name, "ID": format!("{name}-1"), "Address": "127.0.0.1", "Port": port, "Meta": {"seneca_pin": pin}});
        consul.send(http::Method::PUT, "/v1/agent/service/register", Some(&registration)).await.unwrap();
    }
    let client = http_client();
    for probe in [r#"{"role":"math","cmd":"sum","left":1,"right":2}"#, r#"{"role":"greet","name":"x"}"#] {
        common::eventually("the gateway knows the patterns", Duration::from_secs(15), || {
            let client = client.clone();
            async move {
                let request = hyper::Request::post(format!("http://{gw}/act"))
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(probe)))
                    .unwrap();
                (client.request(request).await.ok()?.status() == 200).then_some(())
            }
        })
        .await;
    }

    let view: Value = host.uds().get("/api/module/gateway/seneca").await.unwrap();
    let patterns = view["patterns"].as_array().unwrap();
    assert!(patterns.iter().any(|p| p["pattern"] == "role:math" && p["service"] == "math"), "{view:#}");
    assert_eq!(view["web"].as_array().unwrap().len(), 2, "{view:#}");

    // The real client, through the gateway: a match, a handler error, no match.
    let messages = [
        json!({"role": "greet", "name": "ann"}),
        json!({"role": "math", "cmd": "sum", "left": 20, "right": 22, "extra$": "dropped"}),
        json!({"role": "math", "cmd": "fail"}),
        json!({"role": "nope"}),
    ];
    let input: String = messages.iter().map(|m| format!("{m}\n")).collect();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new("node")
            .arg(seneca_script("seneca_client.js"))
            .arg(gw.port().to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("node runs");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0]["ok"]["greeting"], "hello ann", "the supervised service, by its model's pin: {lines:?}");
    assert_eq!(lines[1]["ok"]["answer"], 42, "{lines:?}");
    assert_eq!(lines[1]["ok"]["served_by"], "math-1");
    assert_eq!(lines[2]["err"]["code"], "act_execute", "{lines:?}");
    assert_eq!(lines[3]["err"]["code"], "act_execute", "a non-200 reaches a seneca caller as act_execute: {lines:?}");

    // What the gateway said about the unmatched pattern: Seneca's act_not_found shape.
    let request = hyper::Request::post(format!("http://{gw}/act"))
        .header("content-type", "application/json")
        .header("seneca-id", "abc/def")
        .header("seneca-origin", "test-origin")
        .body(Full::new(Bytes::from(r#"{"role":"nope"}"#)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["seneca-id"], "abc/def");
    assert_eq!(response.headers()["seneca-origin"], "test-origin");
    let body: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["code"], "act_not_found", "{body}");

    // seneca-web mapping: REST in, a message to the service that declared module:user.
    let (status, list) = get(&client, &format!("http://{gw}/user")).await.unwrap();
    assert_eq!(status, 200, "{list}");
    assert!(list.as_array().is_some_and(|l| l.len() == 2 && l[0]["served_by"] == "users-1"), "{list}");
    let (status, one) = get(&client, &format!("http://{gw}/user/2")).await.unwrap();
    assert_eq!((status, one["name"].as_str()), (200, Some("bob")), "{one}");

    let _ = math.kill();
    let _ = users.kill();
    let _ = (math.wait(), users.wait());
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_gateways_series() {
    use crate::metrics::{Prometheus, lint_with_promtool, prometheus_binary};
    let binary = prometheus_binary();
    if !common::components::require("prometheus", binary.is_some(), "run .ci/prometheus-up.sh (make test-deps)") {
        return;
    }
    let binary = binary.expect("checked above");
    let d = deployment(base_gateway(), None);
    supervised_demo(&d, "metered");
    let host = d.start().await;
    let api = host.uds();
    let (port, _) = start_service(&api, "metered").await;
    let routes =
        json!([{"name": "metered", "path_prefix": "/", "upstreams": [{"address": format!("127.0.0.1:{port}")}]}]);
    put_routes(&api, routes).await.unwrap();
    let gw = gateway_addr(&api).await;
    let client = http_client();
    for _ in 0..3 {
        assert_eq!(get(&client, &format!("http://{gw}/healthz")).await.unwrap().0, 200);
    }
    assert_eq!(get(&client, &format!("http://{gw}/status/503")).await.unwrap().0, 503);
    lint_with_promtool(&binary, &api.send(http::Method::GET, "/metrics", None).await.unwrap().body);
    let credentials = d.root().join("prometheus-token");
    std::fs::write(&credentials, host.login().await).unwrap();
    let prometheus = Prometheus::start(&binary, d.root(), &host.host.http_addr.to_string(), &credentials);
    prometheus
        .wait_for(r#"gateway_requests_total{module="gateway",route="metered",method="GET",code="200"}"#, |v| v == 3.0)
        .await;
    prometheus.wait_for(r#"gateway_requests_total{module="gateway",route="metered",code="503"}"#, |v| v == 1.0).await;
    prometheus
        .wait_for(r#"gateway_request_duration_seconds_count{module="gateway",route="metered"}"#, |v| v == 4.0)
        .await;
    prometheus
        .wait_for(r#"gateway_upstream_instances{module="gateway",upstream="static:metered"}"#, |v| v == 1.0)
        .await;
    prometheus
        .wait_for(r#"gateway_upstream_connections{module="gateway",upstream="static:metered",state="idle"}"#, |v| {
            v >= 1.0
        })
        .await;
    drop(prometheus);
    host.shutdown().await;
}
