//! module-catalog through the real host and the real `.so`, driven by real Consul
//! clients: PyPI py-consul 1.8 (installed by `.ci/python-clients-up.sh` into the test
//! venv) runs the behaviours py-consul's own suite checks; a seed-style script
//! registers an HTTP check the way node-consul sends it and watches it go critical;
//! the module's listener and the admin mount answer alike; and two hosts sharing one
//! MongoDB see each other's services, a blocking query on one woken by the other.

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Deployment;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn venv_python() -> PathBuf {
    let venv = std::env::var("APOLLO_TEST_VENV").unwrap_or_else(|_| "/var/tmp/apollo-test-venv".into());
    Path::new(&venv).join("bin/python")
}

/// Whether py-consul is installed, or else skip/fail as `components::require` does.
fn py_consul() -> bool {
    let present =
        Command::new(venv_python()).args(["-c", "import consul, requests"]).output().is_ok_and(|o| o.status.success());
    common::components::require("py-consul", present, "run ./.ci/python-clients-up.sh (make test-deps does)")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/catalog").join(name)
}

fn deployment(overrides: Value) -> Deployment {
    let mut config = json!({"modules": {"dir": "modules", "listeners": {"catalog": "127.0.0.1:0"}}});
    common::merge(&mut config, &overrides);
    let d = Deployment::with(config);
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(common::module_library("module-catalog"), d.root().join("modules/module_catalog.so")).unwrap();
    d
}

/// The address the catalog's own listener is bound to.
async fn listener(host: &common::TestHost) -> SocketAddr {
    common::eventually("the catalog listener is bound", Duration::from_secs(15), || async {
        let listed: Value = host.uds().get("/api/modules").await.ok()?;
        let module = listed["modules"].as_array()?.iter().find(|m| m["name"] == "catalog")?.clone();
        module["listener"]["bound"].as_str()?.parse().ok()
    })
    .await
}

/// Runs a fixture script with the venv's python against `addr`; its output on failure.
fn run_script(script: &str, addr: SocketAddr) -> String {
    let output = Command::new(venv_python())
        .arg(fixture(script))
        .env("CONSUL_HTTP_ADDR", addr.to_string())
        .output()
        .expect("python runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && text.contains("ALL OK"), "{script} failed:\n{text}");
    text
}

/// One HTTP/1.1 request; returns status, headers (lower-case names) and body.
async fn http(addr: SocketAddr, method: &str, target: &str, body: &str) -> (u16, Vec<(String, String)>, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_consul_runs_the_behaviours_of_its_own_suite() {
    if !py_consul() {
        return;
    }
    let d = deployment(json!({"modules": {"config": {"catalog": {"node_name": "node-a"}}}}));
    let host = d.start().await;
    let addr = listener(&host).await;
    let out = tokio::task::spawn_blocking(move || run_script("py_consul_suite.py", addr)).await.unwrap();
    eprintln!("{out}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_style_http_check_goes_critical_within_interval_plus_a_second() {
    if !py_consul() {
        return;
    }
    let d = deployment(json!({}));
    let host = d.start().await;
    let addr = listener(&host).await;
    let out = tokio::task::spawn_blocking(move || run_script("seed_http_check.py", addr)).await.unwrap();
    eprintln!("{out}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_and_the_admin_mount_speak_consul_and_operators_manage_tokens() {
    let d = deployment(json!({}));
    let host = d.start().await;
    let addr = listener(&host).await;
    // On the listener, at the root, as clients expect.
    let (status, headers, body) = http(addr, "GET", "/v1/kv/nope", "").await;
    assert_eq!((status, body.as_str()), (404, ""));
    assert!(header(&headers, "x-consul-index").is_some_and(|i| i != "0"), "{headers:?}");
    let (status, headers, body) = http(addr, "PUT", "/v1/agent/service/register", r#"{"Name":"web","Port":80}"#).await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert!(header(&headers, "content-type").is_none(), "an empty write answer has no content type");
    let (status, _, body) = http(addr, "PUT", "/v1/agent/service/register", "{bad").await;
    assert_eq!(status, 400);
    // Consul's text, inside the host's error JSON: the host rewrites a module's
    // plain-text error bodies on every mount (see the module README).
    assert!(body.contains("Request decode failed"), "{body}");
    // The admin API mount needs no host token for Consul routes: the module checks.
    let admin = host.host.http_addr;
    let (status, headers, body) = http(admin, "GET", "/api/module/catalog/v1/health/service/web", "").await;
    assert_eq!(status, 200, "{body}");
    assert!(header(&headers, "x-consul-index").is_some());
    let entries: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(entries[0]["Service"]["Port"], 80);
    // Operators manage tokens behind the host's gate.
    let (status, _, _) = http(admin, "GET", "/api/module/catalog/admin/tokens", "").await;
    assert_eq!(status, 401);
    let made = host
        .authed()
        .await
        .send(http::Method::POST, "/api/module/catalog/admin/tokens", Some(&json!({"rights": "write"})))
        .await
        .unwrap();
    assert_eq!(made.status, 201);
    let listed: Value = host.uds().get("/api/module/catalog/admin/tokens").await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    // A blocking query parks and returns by its wait with the same index.
    let (_, headers, _) = http(addr, "GET", "/v1/catalog/services", "").await;
    let index = header(&headers, "x-consul-index").unwrap().to_string();
    let started = Instant::now();
    let (status, headers, _) = http(addr, "GET", &format!("/v1/catalog/services?index={index}&wait=1s"), "").await;
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert!(took >= Duration::from_secs(1) && took < Duration::from_millis(1000 + 63 + 500), "{took:?}");
    assert_eq!(header(&headers, "x-consul-index"), Some(index.as_str()));
    // The module's figures are on the host's /metrics.
    let scrape = host.uds().send(http::Method::GET, "/metrics", None).await.unwrap();
    let text = String::from_utf8_lossy(&scrape.body);
    let registered = text
        .lines()
        .find(|l| {
            l.starts_with("catalog_registrations_total{")
                && l.contains(r#"op="register""#)
                && l.contains(r#"origin="agent""#)
        })
        .unwrap_or_else(|| panic!("no catalog_registrations_total in:\n{text}"));
    assert!(registered.ends_with(" 1"), "{registered}");
    assert!(text.contains("catalog_blocking_queries_parked"), "{text}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_one_mongodb_share_the_catalog_and_wake_each_others_queries() {
    if !common::components::mongo() {
        return;
    }
    let mongo = common::mongo::MongoServer::start();
    let on_the_shared_store = |scope: &str, node: &str| {
        json!({"db": {"mongo": {"url": mongo.url, "name": mongo.database, "scope": scope}},
               "modules": {"config": {"catalog": {"node_name": node}}}})
    };
    let (one, two) =
        (deployment(on_the_shared_store("one", "node-one")), deployment(on_the_shared_store("two", "node-two")));
    let (host_one, host_two) = (one.start().await, two.start().await);
    let (a, b) = (listener(&host_one).await, listener(&host_two).await);

    let registration = r#"{"Name":"shared","ID":"shared-1","Port":9000}"#;
    let (status, _, body) = http(a, "PUT", "/v1/agent/service/register", registration).await;
    assert_eq!(status, 200, "{body}");
    let entries = common::eventually("host two sees host one's service", Duration::from_secs(15), || async {
        let (_, _, body) = http(b, "GET", "/v1/health/service/shared", "").await;
        let entries: Value = serde_json::from_str(&body).ok()?;
        (entries.as_array()?.len() == 1).then_some(entries)
    })
    .await;
    assert_eq!(entries[0]["Node"]["Node"], "node-one");
    assert_eq!(entries[0]["Service"]["Port"], 9000);

    // A blocking query on host two, woken by a change on host one.
    let (_, headers, _) = http(b, "GET", "/v1/health/service/shared", "").await;
    let index: u64 = header(&headers, "x-consul-index").unwrap().parse().unwrap();
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let answer = http(b, "GET", &format!("/v1/health/service/shared?index={index}&wait=30s"), "").await;
        (answer, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let written_at = Instant::now();
    let (status, _, _) =
        http(a, "PUT", "/v1/agent/service/register", r#"{"Name":"shared","ID":"shared-2","Port":9001}"#).await;
    assert_eq!(status, 200);
    let ((status, headers, body), took) = waiting.await.unwrap();
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(20), "woken by the write, not by the wait: {took:?}");
    let new_index: u64 = header(&headers, "x-consul-index").unwrap().parse().unwrap();
    assert!(new_index > index);
    let entries: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 2, "{entries}");
    eprintln!(
        "a registration on host one woke host two's blocking query {} ms later",
        written_at.elapsed().as_millis()
    );
    let (_, _, body) = http(b, "GET", "/v1/catalog/nodes", "").await;
    let nodes: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = nodes.as_array().unwrap().iter().filter_map(|n| n["Node"].as_str()).collect();
    assert_eq!(names, ["node-one", "node-two"]);
    host_one.shutdown().await;
    host_two.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_own_services_are_instances_with_the_supervisors_status() {
    let d = deployment(json!({"modules": {"config": {"catalog": {"node_name": "node-a"}}}}));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut model = common::model("shop", "app_shop", &[]);
    model["run_data"]["command"] = json!(["/bin/sh", "-c", "exec sleep 1000"]);
    model["run_data"]["ports"] = json!([port]);
    d.write_model("shop.pig", &model);
    let host = d.start().await;
    let addr = listener(&host).await;
    let client = host.authed().await;
    let started = client.send(http::Method::POST, "/api/apps/shop/start", None).await.unwrap();
    assert!(started.status.is_success(), "{:?}", started.json());
    let status_of = |wanted: &'static str| async move {
        let (_, _, body) = http(addr, "GET", "/v1/health/service/shop", "").await;
        let entries: Value = serde_json::from_str(&body).ok()?;
        let check = entries[0]["Checks"].as_array()?.iter().find(|c| c["CheckID"] == "service:apollo-shop")?.clone();
        (check["Status"] == wanted).then_some(entries)
    };
    let entries =
        common::eventually("the running service is passing", Duration::from_secs(20), || status_of("passing")).await;
    assert_eq!(entries[0]["Service"]["ID"], "apollo-shop");
    assert_eq!(entries[0]["Service"]["Port"], port);
    assert_eq!(entries[0]["Node"]["Node"], "node-a");
    let stopped = client.send(http::Method::POST, "/api/apps/shop/stop", None).await.unwrap();
    assert!(stopped.status.is_success(), "{:?}", stopped.json());
    common::eventually("the stopped service is critical", Duration::from_secs(20), || status_of("critical")).await;
    host.shutdown().await;
}
