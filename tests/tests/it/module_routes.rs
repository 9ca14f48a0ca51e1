//! plugin-api 0.2 route features through the real host and the real hello-module
//! `.so`: a public route the module authenticates itself (an HMAC signature over the
//! raw target, and the peer address), a long poll past the default handler timeout,
//! a module's own listener that serves its routes at the root (its errors in the host's
//! JSON shape: 404, 405, 413, 401, 504) and stops with it, and
//! module storage shared by two hosts on one MongoDB: a write through one host wakes
//! the module's change-feed long poll on the other.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Deployment;
use http::Method;
use plugin_api::signing;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn deployment(overrides: Value) -> Deployment {
    let mut config = json!({"modules": {"dir": "modules"}});
    common::merge(&mut config, &overrides);
    let d = Deployment::with(config);
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(common::module_library("hello-module"), d.root().join("modules/hello_module.so")).unwrap();
    d
}

/// One HTTP/1.1 request written byte for byte (so the target reaches the host exactly
/// as written); returns the status, the body and the client's own address.
async fn raw_get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> (u16, Value, SocketAddr) {
    raw_exchange(addr, "GET", target, headers).await
}

/// `POST target` with `body` (as `application/json`), `Connection: close`; returns the
/// status and the body as JSON (`Null` when it is not JSON).
async fn raw_post(addr: SocketAddr, target: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The host may answer (and close) before reading all of an over-limit body.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    status_and_json(&response)
}

/// The status and the JSON body (`null` if none) of a raw HTTP/1.1 response.
fn status_and_json(response: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(response);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn now_secs() -> String {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string()
}

fn sign(secret: &str, timestamp: &str, target: &str) -> String {
    signing::base64_encode(&signing::hmac_sha256(secret.as_bytes(), format!("{timestamp}\n{target}").as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_route_verifies_a_signature_over_the_raw_target_and_sees_the_peer() {
    let d = deployment(
        json!({"modules": {"config": {"hello": {"signing_secret": "s3cret", "allowed_peers": ["127.0.0.1"]}}}}),
    );
    let host = d.start().await;
    let addr = host.host.http_addr;
    // Encoded slash and an unsorted query: both are part of what the client signed.
    let target = "/api/module/hello/signed/a%2Fb?y=2&x=1";
    let ts = now_secs();
    let signature = sign("s3cret", &ts, target);
    let (status, body, local) = raw_get(addr, target, &[("X-Timestamp", &ts), ("X-Signature", &signature)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["raw_target"], target, "the raw target as sent");
    assert_eq!(body["peer"], local.to_string(), "the peer address of this very connection");

    // The module refuses what its check refuses; the host's gate never saw a token.
    let (status, body, _) =
        raw_get(addr, target, &[("X-Timestamp", &ts), ("X-Signature", &sign("wrong", &ts, target))]).await;
    assert_eq!((status, body["error"]["message"].as_str()), (401, Some("the signature does not match")));
    let decoded = sign("s3cret", &ts, "/api/module/hello/signed/a/b?y=2&x=1");
    let (status, _, _) = raw_get(addr, target, &[("X-Timestamp", &ts), ("X-Signature", &decoded)]).await;
    assert_eq!(status, 401, "a signature over the decoded path is not the one over the raw target");
    let (status, body, _) = raw_get(addr, target, &[]).await;
    assert_eq!((status, body["error"]["message"].as_str()), (401, Some("no X-Timestamp header")));

    // Every other route of the module stays behind the token gate.
    let (status, body, _) = raw_get(addr, "/api/module/hello/count", &[]).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("Bearer"), "{body}");
    // An unknown route of the module is not public either: no route list for strangers.
    let (status, _, _) = raw_get(addr, "/api/module/hello/signedx", &[]).await;
    assert_eq!(status, 401);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_route_holds_past_the_default_handler_timeout() {
    let d = deployment(json!({"modules": {"handler_timeout_secs": 2}}));
    let host = d.start().await;
    let client = host.authed().await;
    let cut = client.send(Method::GET, "/api/module/hello/sleep/3000", None).await.unwrap();
    assert_eq!(cut.status, 504, "a route without its own timeout meets modules.handler_timeout_secs");
    // Written by hand: the CLI's client gives up after 60 s, a long-poll client does not.
    let bearer = format!("Bearer {}", host.login().await);
    let started = Instant::now();
    let (status, body, _) =
        raw_get(host.host.http_addr, "/api/module/hello/long-poll/61000", &[("Authorization", &bearer)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() >= Duration::from_secs(61));
    assert_eq!(body["slept_ms"], 61000);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_listener_serves_at_its_root_and_stops_with_the_module() {
    let d =
        deployment(json!({"modules": {"listeners": {"hello": "127.0.0.1:0"}}, "server": {"body_limit_bytes": 1024}}));
    let host = d.start().await;
    let client = host.authed().await;
    let bound = |listed: &Value| -> Option<SocketAddr> {
        listed["modules"][0]["listener"]["bound"].as_str().and_then(|a| a.parse().ok())
    };
    let addr = common::eventually("the module listener is bound", Duration::from_secs(10), || async {
        bound(&host.uds().get::<Value>("/api/modules").await.unwrap())
    })
    .await;
    assert_ne!(addr, host.host.http_addr);

    let (status, body, local) = raw_get(addr, "/whoami?x=1", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["via"], "Listener");
    assert_eq!(body["raw_target"], "/whoami?x=1", "no /api/module prefix on the module's own listener");
    assert_eq!(body["peer"], local.to_string());
    // Admin-only routes are not on the listener; the admin API is not there either.
    assert_eq!(raw_get(addr, "/greet/ada", &[]).await.0, 404);
    assert_eq!(raw_get(addr, "/api/apps", &[]).await.0, 404);
    // A body over server.body_limit_bytes gets the host's JSON error, not axum's text.
    let (status, body) = raw_post(addr, "/echo", &vec![b'x'; 4096]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("payload_too_large")), "{body}");
    // The same public route on the admin API, without a token.
    let (status, body, _) = raw_get(host.host.http_addr, "/api/module/hello/whoami", &[]).await;
    assert_eq!((status, body["via"].as_str()), (200, Some("AdminTcp")));

    let disabled = client.send(Method::POST, "/api/modules/hello/disable", None).await.unwrap();
    assert_eq!(disabled.status, 200);
    common::eventually("the listener closes with the module", Duration::from_secs(15), || async {
        tokio::net::TcpStream::connect(addr).await.is_err().then_some(())
    })
    .await;
    let listed: Value = host.uds().get("/api/modules").await.unwrap();
    assert!(listed["modules"].as_array().unwrap().is_empty());

    let enabled = client.send(Method::POST, "/api/modules/hello/enable", None).await.unwrap();
    assert_eq!(enabled.status, 200);
    let again = common::eventually("the listener opens again", Duration::from_secs(10), || async {
        bound(&host.uds().get::<Value>("/api/modules").await.unwrap())
    })
    .await;
    assert_eq!(raw_get(again, "/whoami", &[]).await.0, 200);
    host.shutdown().await;
}

/// `method target` with `body` and `headers`, `Connection: close`; the status and the
/// body as JSON (`Null` when it is not JSON).
async fn raw_request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let (status, body, _) = raw_exchange(addr, method, target, headers).await;
    (status, body)
}

/// One request with an empty body on a connection of its own; the status, the JSON
/// body and the client's own address.
async fn raw_exchange(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, Value, SocketAddr) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let local = stream.local_addr().unwrap();
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let (status, body) = status_and_json(&response);
    (status, body, local)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_listener_answers_the_hosts_json_errors_and_deadlines() {
    let d = deployment(json!({
        "modules": {"listeners": {"hello": "127.0.0.1:0"}, "handler_timeout_secs": 1},
        "server": {"body_limit_bytes": 1024}
    }));
    let host = d.start().await;
    let addr = common::eventually("the module listener is bound", Duration::from_secs(10), || async {
        let listed = host.uds().get::<Value>("/api/modules").await.unwrap();
        listed["modules"][0]["listener"]["bound"].as_str().and_then(|a| a.parse::<SocketAddr>().ok())
    })
    .await;
    let code = |answer: &(u16, Value)| (answer.0, answer.1["error"]["code"].as_str().map(str::to_string));
    let expect = |status: u16, code: &str| (status, Some(code.to_string()));

    let unknown = raw_request(addr, "GET", "/no/such/route", &[]).await;
    assert_eq!(code(&unknown), expect(404, "not_found"), "{}", unknown.1);
    let wrong_method = raw_request(addr, "DELETE", "/whoami", &[]).await;
    assert_eq!(code(&wrong_method), expect(405, "method_not_allowed"), "{}", wrong_method.1);
    // The body is read (and refused) before the route is looked at, as on the admin API.
    let (status, body) = raw_post(addr, "/whoami", &vec![b'x'; 4096]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("payload_too_large")), "{body}");

    // A route the module does not declare public needs the host's token here too.
    let anonymous = raw_request(addr, "GET", "/sleep/10", &[]).await;
    assert_eq!(code(&anonymous), expect(401, "unauthorized"), "{}", anonymous.1);
    let bearer = format!("Bearer {}", host.login().await);
    let wrong = raw_request(addr, "GET", "/sleep/10", &[("Authorization", "Bearer apo_not-a-token")]).await;
    assert_eq!(wrong.0, 401, "{}", wrong.1);
    let (status, body) = raw_request(addr, "GET", "/sleep/10", &[("Authorization", &bearer)]).await;
    assert_eq!((status, &body["slept_ms"]), (200, &json!(10)), "{body}");
    // Past modules.handler_timeout_secs the host answers for the module, and the
    // listener serves on.
    let late = raw_request(addr, "GET", "/sleep/3000", &[("Authorization", &bearer)]).await;
    assert_eq!(code(&late), expect(504, "timeout"), "{}", late.1);
    let message = late.1["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("did not answer within 1 s"), "{message}");
    assert_eq!(raw_request(addr, "GET", "/whoami", &[]).await.0, 200);
    host.shutdown().await;
}

/// `GET target` carrying a body of `size` bytes, `Connection: close`: the status and
/// the body as JSON.
async fn get_with_body(addr: SocketAddr, target: &str, size: usize) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {size}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(&vec![b'x'; size]).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    status_and_json(&response)
}

/// Unaudited module requests on the admin API skip axum's router: the gate, the JSON
/// errors and the transport are still the API's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_reads_on_the_admin_api_keep_the_gate_and_the_json_errors() {
    let d = deployment(json!({"server": {"body_limit_bytes": 1024}}));
    let host = d.start().await;
    let addr = host.host.http_addr;
    let bearer = format!("Bearer {}", host.login().await);
    let auth = [("Authorization", bearer.as_str())];
    let code = |answer: &(u16, Value)| (answer.0, answer.1["error"]["code"].as_str().map(str::to_string));
    let expect = |status: u16, code: &str| (status, Some(code.to_string()));

    let anonymous = raw_request(addr, "GET", "/api/module/hello/count", &[]).await;
    assert_eq!(code(&anonymous), expect(401, "unauthorized"), "{}", anonymous.1);
    let unknown_module = raw_request(addr, "GET", "/api/module/nope/count", &auth).await;
    assert_eq!(code(&unknown_module), expect(404, "not_found"), "{}", unknown_module.1);
    let unknown_route = raw_request(addr, "GET", "/api/module/hello/no-such", &auth).await;
    assert_eq!(code(&unknown_route), expect(404, "not_found"), "{}", unknown_route.1);
    let wrong_method = raw_request(addr, "OPTIONS", "/api/module/hello/count", &auth).await;
    assert_eq!(code(&wrong_method), expect(405, "method_not_allowed"), "{}", wrong_method.1);
    let too_big = get_with_body(addr, "/api/module/hello/whoami", 4096).await;
    assert_eq!(code(&too_big), expect(413, "payload_too_large"), "{}", too_big.1);
    // Decoded below the mount point, as the router's path parameters were.
    let (status, body) = raw_request(addr, "GET", "/api/module/hello/sleep/%31%30", &auth).await;
    assert_eq!((status, &body["slept_ms"]), (200, &json!(10)), "{body}");
    let bad = raw_request(addr, "GET", "/api/module/hello/sleep/%ff", &auth).await;
    assert_eq!(code(&bad), expect(400, "bad_request"), "{}", bad.1);
    // The unix socket is trusted and says so to the module.
    let whoami: Value = host.uds().get("/api/module/hello/whoami").await.unwrap();
    assert_eq!(whoami["via"], "AdminUnixSocket", "{whoami}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_written_on_one_host_reaches_the_module_feed_on_another() {
    if !common::components::mongo() {
        return;
    }
    let mongo = common::mongo::MongoServer::start();
    let on_the_shared_store =
        |scope: &str| json!({"db": {"mongo": {"url": mongo.url, "name": mongo.database, "scope": scope}}});
    let (one, two) = (deployment(on_the_shared_store("one")), deployment(on_the_shared_store("two")));
    let (host_one, host_two) = (one.start().await, two.start().await);
    let (client_one, client_two) = (host_one.authed().await, host_two.authed().await);

    // The second host's module waits on its feed before the first host writes.
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let answer = client_two.send(Method::GET, "/api/module/hello/notes?since=0", None).await.unwrap();
        (answer.status, answer.json(), started)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let written_at = Instant::now();
    let body = json!("shared across the fleet");
    let put = client_one.send(Method::PUT, "/api/module/hello/notes/release-1", Some(&body)).await.unwrap();
    assert_eq!(put.status, 200, "{:?}", put.json());
    let (status, changes, started) = waiting.await.unwrap();
    assert_eq!(status, 200, "{changes}");
    assert_eq!(changes["changes"][0]["key"], "notes/release-1", "{changes}");
    assert_eq!(changes["changes"][0]["value"], body.to_string());
    assert!(started.elapsed() < Duration::from_secs(25), "woken by the write, not by the 30 s timeout");
    eprintln!("a write on host one reached host two's module feed {} ms later", written_at.elapsed().as_millis());
    host_one.shutdown().await;
    host_two.shutdown().await;
}
