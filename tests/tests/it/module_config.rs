//! module-config (the Ctrip Apollo configuration center) through the real host and the
//! real `module_config.so`, at the prefixed mount `/api/module/config`, driven by the
//! real unmodified clients as subprocesses (npm `ctrip-apollo` through
//! `tests/clients/ctrip_apollo_client.js`, PyPI `apollo-client-python` through
//! `tests/clients/apollo_client_python.py`, installed by `.ci/node-clients-up.sh` and
//! `.ci/python-clients-up.sh`)
//! and by hand-written HTTP for the protocol's edge cases
//! (`shared/ctrip-apollo-protocol.md`). Configuration is written the way operators do,
//! through the Open API (host token or consumer tokens) and the module's admin routes.
//! A test whose client package is missing skips with one line, or fails under
//! `APOLLO_REQUIRE_COMPONENTS=1`. Holds are short (1–4 s) wherever a test may meet a
//! timeout; the few long holds are there to show a push did not wait for one.
//!
//! Areas: the real clients (values, pushes across 304s, cache fallback, access-key
//! signing, several namespaces, gray ips, public namespaces, clusters, the module's own
//! listener, a module reload, a second host on a shared MongoDB); the protocol over
//! plain HTTP (`/notifications/v2` and v1, `/configs`, `/configfiles`, access keys,
//! meta); the Open API (token scopes, items, releases, rollback, gray rules, DTO shapes,
//! concurrent edits); the admin routes; restarts and shutdown.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::config_clients::{Client, is, is_poll_304, node_client, python_client};
use common::{Deployment, TestHost};
use plugin_api::signing;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where the host mounts the module; every client is pointed below it.
const MOUNT: &str = "/api/module/config";
const ENV: &str = "DEV";
/// How long a test waits for a client event or an HTTP answer before it fails.
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Deployment and plain HTTP
// ---------------------------------------------------------------------------------------

/// A deployment loading `module_config.so`, with `module` merged over the module's
/// config (`modules.config.config`).
fn deployment(module: Value) -> Deployment {
    deployment_with(module, json!({}))
}

/// The same, with `host` merged over the host's config.
fn deployment_with(module: Value, host: Value) -> Deployment {
    let mut module_config = json!({"envs": [ENV], "long_poll_timeout_secs": 2});
    common::merge(&mut module_config, &module);
    let mut config = json!({"modules": {"dir": "modules", "config": {"config": module_config}}});
    common::merge(&mut config, &host);
    let d = Deployment::with(config);
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(common::module_library("module-config"), d.root().join("modules/module_config.so")).unwrap();
    d
}

/// The host started with the module mounted, and an Open API / admin caller holding the
/// host token (`Authorization: Bearer <host token>`).
async fn start(d: &Deployment) -> (TestHost, Api) {
    let host = d.start().await;
    let addr = host.host.http_addr;
    common::eventually("module-config is mounted", WAIT, || async move {
        (http(addr, "GET", &format!("{MOUNT}/services/config"), &[], None).await.status == 200).then_some(())
    })
    .await;
    let admin = Api { addr, authorization: Some(format!("Bearer {}", host.login().await)) };
    (host, admin)
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 exchange written byte for byte (the target reaches the host exactly as
/// written, which signatures depend on), bounded by [`WAIT`] plus the longest hold.
async fn http(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Answer {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let payload = body.map(Value::to_string).unwrap_or_default();
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if body.is_some() {
            request.push_str("Content-Type: application/json\r\n");
        }
        if body.is_some() || method != "GET" {
            request.push_str(&format!("Content-Length: {}\r\n", payload.len()));
        }
        request.push_str("\r\n");
        request.push_str(&payload);
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        parse_response(&response)
    };
    tokio::time::timeout(WAIT, exchange).await.unwrap_or_else(|_| panic!("{method} {target}: no answer in {WAIT:?}"))
}

fn parse_response(raw: &[u8]) -> Answer {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked =
        headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Answer { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&rest[start..(start + size).min(rest.len())]);
        rest = &rest[(start + size + 2).min(rest.len())..];
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters (as Node's
/// `querystring` does for JSON).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An Open API / admin caller: `authorization` is the whole header value (`Bearer <host
/// token>` or a raw consumer token), or none.
#[derive(Debug, Clone)]
struct Api {
    addr: SocketAddr,
    authorization: Option<String>,
}

impl Api {
    fn consumer(&self, token: &str) -> Api {
        Api { addr: self.addr, authorization: Some(token.to_string()) }
    }

    fn anonymous(&self) -> Api {
        Api { addr: self.addr, authorization: None }
    }

    /// `path` is relative to the mount.
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        let headers: Vec<(&str, &str)> = self.authorization.iter().map(|a| ("Authorization", a.as_str())).collect();
        http(self.addr, method, &format!("{MOUNT}{path}"), &headers, body).await
    }

    /// The call must answer 200; returns its JSON body (`Null` for an empty one).
    async fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let answer = self.call(method, path, body).await;
        assert_eq!(answer.status, 200, "{method} {path} {body:?}: {}", answer.body);
        answer.json()
    }

    /// A client-protocol GET (no token), path relative to the mount.
    async fn get(&self, path: &str) -> Answer {
        http(self.addr, "GET", &format!("{MOUNT}{path}"), &[], None).await
    }
}

/// `P` of the protocol doc §4, plus the namespace.
fn ns_path(app: &str, cluster: &str, namespace: &str) -> String {
    format!("/openapi/v1/envs/{ENV}/apps/{app}/clusters/{cluster}/namespaces/{namespace}")
}

async fn create_app(api: &Api, app: &str) {
    let body = json!({
        "app": {"appId": app, "name": app, "orgId": "TEST", "orgName": "test", "ownerName": "apollo",
                "ownerEmail": "apollo@example.com"},
        "admins": ["apollo"]
    });
    let created = api.ok("POST", "/openapi/v1/apps", Some(&body)).await;
    assert_eq!(created["appId"], app, "{created}");
}

async fn add_item(api: &Api, app: &str, cluster: &str, namespace: &str, key: &str, value: &str) {
    let body = json!({"key": key, "value": value, "comment": "", "dataChangeCreatedBy": "apollo"});
    let item = api.ok("POST", &format!("{}/items", ns_path(app, cluster, namespace)), Some(&body)).await;
    assert_eq!((item["key"].as_str(), item["value"].as_str()), (Some(key), Some(value)), "{item}");
}

async fn update_item(api: &Api, app: &str, namespace: &str, key: &str, value: &str) {
    let body = json!({"key": key, "value": value, "comment": "", "dataChangeLastModifiedBy": "apollo"});
    api.ok("PUT", &format!("{}/items/{key}", ns_path(app, "default", namespace)), Some(&body)).await;
}

async fn release(api: &Api, app: &str, namespace: &str, title: &str) -> Value {
    release_in(api, app, "default", namespace, title).await
}

async fn release_in(api: &Api, app: &str, cluster: &str, namespace: &str, title: &str) -> Value {
    let body = json!({"releaseTitle": title, "releaseComment": "", "releasedBy": "apollo"});
    let released = api.ok("POST", &format!("{}/releases", ns_path(app, cluster, namespace)), Some(&body)).await;
    assert!(released["id"].is_i64(), "an OpenReleaseDTO: {released}");
    released
}

/// An app whose `application` namespace holds `items`, released once.
async fn published_app(api: &Api, app: &str, items: &[(&str, &str)]) {
    create_app(api, app).await;
    for (key, value) in items {
        add_item(api, app, "default", "application", key, value).await;
    }
    release(api, app, "application", "first").await;
}

/// Creates a consumer (host token) and returns its token.
async fn consumer(admin: &Api, name: &str, apps: Value) -> String {
    let created = admin.ok("POST", "/admin/consumers", Some(&json!({"name": name, "apps": apps}))).await;
    assert_eq!(created["name"], name, "{created}");
    created["token"].as_str().unwrap_or_else(|| panic!("a consumer token: {created}")).to_string()
}

/// `Authorization` and `Timestamp` headers of an access-key signature (protocol §3).
fn apollo_signature(secret: &str, timestamp: &str, path_with_query: &str) -> String {
    signing::base64_encode(&signing::hmac_sha1(secret.as_bytes(), format!("{timestamp}\n{path_with_query}").as_bytes()))
}

fn now_millis() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

/// `/notifications/v2` for `app` on `default` with the given entries.
fn v2_target(app: &str, notifications: &Value) -> String {
    format!("{MOUNT}/notifications/v2?appId={app}&cluster=default&notifications={}", encode(&notifications.to_string()))
}

// ---------------------------------------------------------------------------------------
// npm ctrip-apollo
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrip_apollo_gets_releases_pushed_across_304s_and_falls_back_to_its_cache() {
    if !node_client() {
        return;
    }
    let d = deployment(json!({"long_poll_timeout_secs": 1}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    create_app(&admin, "node-app").await;
    // Edits and releases through a consumer token scoped to the app.
    let token = consumer(&admin, "node-ci", json!({"node-app": {"edit": true, "release": true}})).await;
    let api = admin.consumer(&token);
    add_item(&api, "node-app", "default", "application", "timeout", "100").await;
    add_item(&api, "node-app", "default", "application", "color", "blue").await;
    release(&api, "node-app", "application", "first").await;

    let scratch = tempfile::tempdir().unwrap();
    let cache = scratch.path().join("cache");
    let cache_arg = format!("--cache-path={}", cache.display());
    let base = format!("http://{addr}{MOUNT}");
    let mut client = Client::node(scratch.path(), &base, "node-app", std::slice::from_ref(&cache_arg));
    let ready = client.wait_for("ready()", |e| is(e, "ready")).await;
    assert_eq!(ready["config"], json!({"timeout": "100", "color": "blue"}), "the released values");
    client.wait_for("the cache file written after the first fetch", |e| is(e, "saved")).await;

    // The hold (1 s) runs out: the module answers 304 and the client polls again.
    client.mark();
    client.wait_for("a 304 on the long poll", is_poll_304).await;
    client.mark();
    update_item(&api, "node-app", "application", "timeout", "200").await;
    release(&api, "node-app", "application", "second").await;
    let change = client.wait_for("the change pushed by the release", |e| is(e, "change")).await;
    assert_eq!(
        change,
        json!({"event": "change", "namespace": "application", "key": "timeout", "oldValue": "100", "newValue": "200"})
    );
    client.wait_for("the cache file rewritten", |e| is(e, "saved")).await;

    // More 304s, and the poll still delivers: a deleted key.
    client.mark();
    client.wait_for("another 304 after the change", is_poll_304).await;
    client.mark();
    let item = format!("{}/items/color?operator=apollo", ns_path("node-app", "default", "application"));
    api.ok("DELETE", &item, None).await;
    release(&api, "node-app", "application", "third").await;
    let deleted = client.wait_for("the deletion pushed by the release", |e| is(e, "delete")).await;
    assert_eq!((deleted["key"].as_str(), deleted["value"].as_str()), (Some("color"), Some("blue")), "{deleted}");
    let updated = client.wait_for("the updated event", |e| is(e, "updated")).await;
    assert_eq!(updated["config"], json!({"timeout": "200"}));
    client.wait_for("the cache file rewritten", |e| is(e, "saved")).await;
    drop(client);

    // The host is gone: a new client fails to fetch and serves its cache file. The port
    // is held by a listener that hangs up on every connection, so that no other test's
    // host can take it meanwhile.
    host.shutdown().await;
    let dead = tokio::net::TcpListener::bind(addr).await.ok().map(|listener| {
        tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                drop(connection);
            }
        })
    });
    let mut offline = Client::node(scratch.path(), &base, "node-app", &[cache_arg]);
    let ready = offline.wait_for("ready() from the cache", |e| is(e, "ready") || is(e, "error")).await;
    assert!(is(&ready, "ready"), "{}", offline.report());
    assert_eq!(ready["config"], json!({"timeout": "200"}), "the last release, from the cache file");
    let failed = offline.seen().iter().find(|e| is(e, "fetch-error")).cloned();
    assert_eq!(failed.map(|e| e["code"].clone()), Some(json!("FETCH_REQUEST_ERROR")), "{}", offline.report());
    if let Some(dead) = dead {
        dead.abort();
    }
}

// ---------------------------------------------------------------------------------------
// PyPI apollo-client-python
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apollo_client_python_signs_with_its_access_key_and_keeps_its_cache_on_a_wrong_secret() {
    if !python_client() {
        return;
    }
    let d = deployment(json!({"long_poll_timeout_secs": 2}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    published_app(&admin, "py-app", &[("db.url", "jdbc:one"), ("pool", "8")]).await;
    let key = admin.ok("POST", "/admin/apps/py-app/accesskeys", Some(&json!({"mode": 0}))).await;
    assert_eq!(key["enabled"], true, "{key}");
    let secret = key["secret"].as_str().unwrap_or_else(|| panic!("the secret, shown once: {key}")).to_string();
    let unsigned = admin.get("/configs/py-app/default/application").await;
    assert_eq!(unsigned.status, 401, "an enabled FILTER key refuses unsigned requests: {}", unsigned.body);

    // The client signs over the URL minus its base (the mount-relative path) and long-polls.
    let home = tempfile::tempdir().unwrap();
    let base = format!("http://{addr}{MOUNT}");
    let mut client = Client::python(home.path(), &base, "py-app", &["--secret", &secret, "--watch"]);
    let fetched = client.wait_for("the first fetch", |e| is(e, "http")).await;
    assert_eq!((&fetched["status"], &fetched["signed"]), (&json!(200), &json!(true)), "{}", client.report());
    let ready = client.wait_for("the constructor's values", |e| is(e, "ready")).await;
    assert_eq!(ready["configs"]["application"], json!({"db.url": "jdbc:one", "pool": "8"}));
    client
        .wait_for("a signed long poll answered", |e| {
            is(e, "http") && e["path"].as_str().is_some_and(|p| p.contains("/notifications/v2?")) && e["status"] == 200
        })
        .await;
    client.mark();
    update_item(&admin, "py-app", "application", "pool", "16").await;
    release(&admin, "py-app", "application", "second").await;
    let change = client.wait_for("the change pushed to the signed poll", |e| is(e, "change")).await;
    assert_eq!(
        (change["action"].as_str(), change["key"].as_str(), change["value"].as_str(), change["old_value"].as_str()),
        (Some("update"), Some("pool"), Some("16"), Some("8")),
        "{change}"
    );
    // The change went to the cache file (same HOME for the next client).
    let cache_file = home.path().join("data/apollo/cache/py-app_configuration_application.txt");
    common::eventually("the cache file holds the change", WAIT, || async {
        std::fs::read_to_string(&cache_file).ok().filter(|t| t.contains("\"16\"")).map(|_| ())
    })
    .await;
    drop(client);

    // A wrong secret: 401, and the client keeps its cached copy.
    let mut wrong = Client::python(home.path(), &base, "py-app", &["--secret", "not-the-secret"]);
    let refused = wrong.wait_for("the refused fetch", |e| is(e, "http")).await;
    assert_eq!((&refused["status"], &refused["signed"]), (&json!(401), &json!(true)), "{}", wrong.report());
    let ready = wrong.wait_for("the constructor's values", |e| is(e, "ready")).await;
    assert_eq!(ready["configs"]["application"], json!({"db.url": "jdbc:one", "pool": "16"}), "the cached copy");
    drop(wrong);
    host.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Gray release
// ---------------------------------------------------------------------------------------

/// Creates a gray branch of `app`'s application namespace holding `key=value`, with a rule
/// for `ip`, and gray-publishes it; returns the branch name.
async fn gray_publish(api: &Api, app: &str, ip: &str, key: &str, value: &str) -> String {
    gray_publish_for(api, app, "application", app, ip, key, value).await
}

/// The same on `namespace`, with a rule for clients of `client_app` at `ip`.
async fn gray_publish_for(
    api: &Api,
    app: &str,
    namespace: &str,
    client_app: &str,
    ip: &str,
    key: &str,
    value: &str,
) -> String {
    let p = ns_path(app, "default", namespace);
    let branch = api.ok("POST", &format!("{p}/branches?operator=apollo"), None).await;
    let name = branch["clusterName"].as_str().unwrap_or_else(|| panic!("the branch cluster: {branch}")).to_string();
    assert_ne!(name, "default", "{branch}");
    let listed = api.ok("GET", &format!("{p}/branches"), None).await;
    assert_eq!(listed["clusterName"], name.as_str(), "GET branches shows the active branch: {listed}");
    add_item(api, app, &name, namespace, key, value).await;
    let rules = json!({
        "appId": app, "clusterName": "default", "namespaceName": namespace, "branchName": name,
        "ruleItems": [{"clientAppId": client_app, "clientIpList": [ip], "clientLabelList": []}]
    });
    api.ok("PUT", &format!("{p}/branches/{name}/rules?operator=apollo"), Some(&rules)).await;
    let read = api.ok("GET", &format!("{p}/branches/{name}/rules"), None).await;
    assert_eq!(read["ruleItems"][0]["clientIpList"], json!([ip]), "{read}");
    let body = json!({"releaseTitle": "gray", "releaseComment": "", "releasedBy": "apollo"});
    api.ok("POST", &format!("{p}/branches/{name}/releases"), Some(&body)).await;
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gray_release_reaches_only_matching_clients_and_abandon_or_merge_pushes_again() {
    if !node_client() {
        return;
    }
    let d = deployment(json!({"long_poll_timeout_secs": 2}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    published_app(&admin, "gray-app", &[("feature", "master")]).await;
    let base = format!("http://{addr}{MOUNT}");
    let scratch = tempfile::tempdir().unwrap();
    let mut gray = Client::node(scratch.path(), &base, "gray-app", &["--ip=10.1.1.1".to_string()]);
    let mut plain = Client::node(scratch.path(), &base, "gray-app", &["--ip=10.2.2.2".to_string()]);
    for client in [&mut gray, &mut plain] {
        let ready = client.wait_for("ready()", |e| is(e, "ready")).await;
        assert_eq!(ready["config"], json!({"feature": "master"}));
        client.mark();
    }
    let configs = |ip: &'static str| {
        let admin = admin.clone();
        async move { admin.get(&format!("/configs/gray-app/default/application?ip={ip}")).await.json() }
    };
    let is_change_to = |value: &'static str| move |e: &Value| is(e, "change") && e["newValue"] == value;

    // Gray publish: the matching client is pushed the gray value, the other keeps master.
    let branch = gray_publish(&admin, "gray-app", "10.1.1.1", "feature", "gray").await;
    gray.wait_for("the gray value pushed to the matching ip", is_change_to("gray")).await;
    let served = configs("10.1.1.1").await;
    assert_eq!((&served["configurations"]["feature"], &served["cluster"]), (&json!("gray"), &json!(branch)));
    let served = configs("10.2.2.2").await;
    assert_eq!((&served["configurations"]["feature"], &served["cluster"]), (&json!("master"), &json!("default")));

    // Abandoning the branch pushes master back to the gray client.
    gray.mark();
    admin
        .ok(
            "DELETE",
            &format!("{}/branches/{branch}?operator=apollo", ns_path("gray-app", "default", "application")),
            None,
        )
        .await;
    let back = gray.wait_for("master pushed back after the abandon", is_change_to("master")).await;
    assert_eq!(back["oldValue"], "gray");
    assert_eq!(configs("10.1.1.1").await["configurations"]["feature"], "master");

    // A second branch, merged into master: now every client is pushed its value.
    gray.mark();
    let branch = gray_publish(&admin, "gray-app", "10.1.1.1", "feature", "merged").await;
    gray.wait_for("the second gray value", is_change_to("merged")).await;
    plain.mark();
    let p = ns_path("gray-app", "default", "application");
    let body =
        json!({"releaseTitle": "merge", "releaseComment": "", "releasedBy": "apollo", "isEmergencyPublish": false});
    admin.ok("POST", &format!("{p}/branches/{branch}/merge?deleteBranch=true&operator=apollo"), Some(&body)).await;
    let merged = plain.wait_for("the merged value pushed to the other client", is_change_to("merged")).await;
    assert_eq!(merged["oldValue"], "master");
    let served = configs("10.1.1.1").await;
    assert_eq!((&served["configurations"]["feature"], &served["cluster"]), (&json!("merged"), &json!("default")));
    assert!(
        !plain.seen().iter().any(|e| is(e, "change") && e["newValue"] == "gray"),
        "the non-matching client never saw the gray value\n{}",
        plain.report()
    );
    drop((gray, plain));
    host.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Open API tokens
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_tokens_keep_edit_and_release_apart() {
    let d = deployment(json!({}));
    let (host, admin) = start(&d).await;
    create_app(&admin, "scope-app").await;
    create_app(&admin, "other-app").await;
    let token = consumer(&admin, "editor", json!({"scope-app": {"edit": true, "release": false}})).await;
    let editor = admin.consumer(&token);
    let items = format!("{}/items", ns_path("scope-app", "default", "application"));
    let releases = format!("{}/releases", ns_path("scope-app", "default", "application"));
    let item = json!({"key": "k", "value": "v", "dataChangeCreatedBy": "apollo"});
    let publish = json!({"releaseTitle": "r", "releasedBy": "apollo"});

    assert_eq!(admin.anonymous().call("POST", &items, Some(&item)).await.status, 401, "no token");
    assert_eq!(admin.consumer("not-a-token").call("POST", &items, Some(&item)).await.status, 401, "unknown token");
    assert_eq!(admin.anonymous().call("GET", &items, None).await.status, 401, "reads need a token too");
    editor.ok("POST", &items, Some(&item)).await;
    let refused = editor.call("POST", &releases, Some(&publish)).await;
    assert_eq!(refused.status, 403, "edit without release: {}", refused.body);
    let first = admin.ok("POST", &releases, Some(&publish)).await;
    admin.ok("POST", &releases, Some(&publish)).await;
    let rollback = format!("/openapi/v1/envs/{ENV}/releases/{}/rollback?operator=apollo", first["id"]);
    assert_eq!(editor.call("PUT", &rollback, None).await.status, 403, "a rollback needs the release right");
    let latest = format!("{}/releases/latest", ns_path("scope-app", "default", "application"));
    assert_eq!(editor.call("GET", &latest, None).await.status, 200, "reading needs any right on the app");
    let other = format!("{}/items", ns_path("other-app", "default", "application"));
    assert_eq!(editor.call("POST", &other, Some(&item)).await.status, 403, "a token is scoped to its apps");
    assert_eq!(editor.call("GET", &other, None).await.status, 403, "reads too");
    let app = json!({"app": {"appId": "x-app", "name": "x", "orgId": "T", "orgName": "t", "ownerName": "o",
                             "ownerEmail": "o@e"}});
    assert_eq!(
        editor.call("POST", "/openapi/v1/apps", Some(&app)).await.status,
        403,
        "apps are created with the host token"
    );

    // The listing never shows tokens; the admin routes need the host token.
    assert_eq!(admin.anonymous().call("GET", "/admin/consumers", None).await.status, 401);
    assert_eq!(editor.call("GET", "/admin/consumers", None).await.status, 401, "a consumer token is no admin");
    let listed = admin.ok("GET", "/admin/consumers", None).await;
    let entry = listed.as_array().and_then(|l| l.iter().find(|c| c["name"] == "editor")).cloned();
    let entry = entry.unwrap_or_else(|| panic!("editor listed: {listed}"));
    assert_eq!(entry["apps"]["scope-app"], json!({"edit": true, "release": false}), "{entry}");
    assert!(!listed.to_string().contains(&token), "no token in the listing: {listed}");

    // Granting release lets the same token publish.
    admin.ok("PUT", "/admin/consumers/editor/apps/scope-app", Some(&json!({"edit": true, "release": true}))).await;
    editor
        .call(
            "PUT",
            &format!("{}/items/k", ns_path("scope-app", "default", "application")),
            Some(&json!({"key": "k", "value": "v2"})),
        )
        .await;
    editor.ok("POST", &releases, Some(&publish)).await;
    let served = admin.get("/configs/scope-app/default/application").await;
    assert_eq!((served.status, &served.json()["configurations"]), (200, &json!({"k": "v2"})), "{}", served.body);
    let deleted = admin.call("DELETE", "/admin/consumers/editor", None).await;
    assert!(matches!(deleted.status, 200 | 204), "{}: {}", deleted.status, deleted.body);
    assert_eq!(editor.call("GET", &items, None).await.status, 401, "a deleted consumer's token is dead");
    host.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Protocol edge cases over plain HTTP
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_v2_refuses_bad_input_answers_at_once_when_behind_and_304_on_timeout() {
    // A 4 s hold: long enough that the release below lands inside it on a loaded machine.
    let d = deployment(json!({"long_poll_timeout_secs": 4}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    published_app(&admin, "poll-app", &[("k", "v1")]).await;
    let poll = |notifications: Value| {
        let target = v2_target("poll-app", &notifications);
        async move { (http(addr, "GET", &target, &[], None).await, Instant::now()) }
    };

    // Bad input: 400.
    for target in [
        format!("{MOUNT}/notifications/v2?appId=poll-app&cluster=default&notifications=not-json"),
        format!(
            "{MOUNT}/notifications/v2?appId=poll-app&cluster=default&notifications={}",
            encode("[{\"namespaceName\":")
        ),
        format!("{MOUNT}/notifications/v2?appId=poll-app&cluster=default&notifications=%5B%5D"),
        format!("{MOUNT}/notifications/v2?appId=poll-app&cluster=default"),
        format!(
            "{MOUNT}/notifications/v2?cluster=default&notifications={}",
            encode(r#"[{"namespaceName":"application","notificationId":-1}]"#)
        ),
        v2_target("poll-app", &json!([{"namespaceName": "", "notificationId": -1}])),
    ] {
        let answer = http(addr, "GET", &target, &[], None).await;
        assert_eq!(answer.status, 400, "{target}: {}", answer.body);
    }

    // Behind (-1 as the Python clients send, 0 as ctrip-apollo does): 200 at once.
    let mut latest = 0;
    for first in [-1, 0] {
        let (answer, _) = poll(json!([{"namespaceName": "application", "notificationId": first}])).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let entries = answer.json();
        assert_eq!(entries.as_array().map(Vec::len), Some(1), "{entries}");
        assert_eq!(entries[0]["namespaceName"], "application");
        latest = entries[0]["notificationId"].as_i64().unwrap_or_else(|| panic!("an id: {entries}"));
        assert!(latest > 0, "a published namespace has an id > 0: {entries}");
        assert_eq!(entries[0]["messages"]["details"]["poll-app+default+application"], latest, "{entries}");
    }
    // The client's spelling comes back: case kept, `.properties` stripped.
    for (given, echoed) in [("Application", "Application"), ("application.properties", "application")] {
        let (answer, _) = poll(json!([{"namespaceName": given, "notificationId": -1}])).await;
        assert_eq!(
            (answer.status, &answer.json()[0]["namespaceName"]),
            (200, &json!(echoed)),
            "{given}: {}",
            answer.body
        );
    }

    // Up to date: held, then 304 with an empty body.
    let started = Instant::now();
    let (answer, done) = poll(json!([{"namespaceName": "application", "notificationId": latest}])).await;
    assert_eq!((answer.status, answer.body.as_str()), (304, ""), "timeout answer");
    assert!(done - started >= Duration::from_millis(3500), "held about the 4 s hold, not answered at once");

    // Up to date and waiting, in the client's spelling: a release wakes it with one entry.
    let waiting = tokio::spawn(poll(json!([{"namespaceName": "Application", "notificationId": latest}])));
    common::eventually("the poll is parked", WAIT, || async {
        (admin.ok("GET", "/admin/status", None).await["parked_polls"].as_i64() >= Some(1)).then_some(())
    })
    .await;
    update_item(&admin, "poll-app", "application", "k", "v2").await;
    release(&admin, "poll-app", "application", "second").await;
    let (answer, _) = waiting.await.unwrap();
    assert_eq!(answer.status, 200, "woken by the release, not the hold's end: {}", answer.body);
    let entries = answer.json();
    assert_eq!(entries.as_array().map(Vec::len), Some(1), "{entries}");
    assert_eq!(entries[0]["namespaceName"], "Application", "the waiter's spelling: {entries}");
    assert!(entries[0]["notificationId"].as_i64() > Some(latest), "{entries}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_echo_the_spelling_answer_304_on_the_same_release_key_and_404_the_unknown() {
    let d = deployment(json!({}));
    let (host, admin) = start(&d).await;
    published_app(&admin, "cfg-app", &[("a", "1"), ("b", "x=y")]).await;
    let config = json!({"a": "1", "b": "x=y"});

    let first = admin.get("/configs/cfg-app/default/application").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.header("content-type").is_some_and(|t| t.starts_with("application/json")), "{:?}", first.headers);
    let body = first.json();
    assert_eq!(
        (&body["appId"], &body["cluster"], &body["namespaceName"], &body["configurations"]),
        (&json!("cfg-app"), &json!("default"), &json!("application"), &config),
        "{body}"
    );
    let key = body["releaseKey"].as_str().filter(|k| !k.is_empty()).unwrap_or_else(|| panic!("{body}")).to_string();
    assert!(body.get("configSyncType").is_none(), "no incremental sync unless asked: {body}");

    // The namespace segment comes back as sent.
    for spelling in ["application.properties", "Application", "APPLICATION.PROPERTIES"] {
        let answer = admin.get(&format!("/configs/cfg-app/default/{spelling}")).await;
        let body = answer.json();
        assert_eq!(
            (answer.status, &body["namespaceName"], &body["configurations"]),
            (200, &json!(spelling), &config),
            "{spelling}: {}",
            answer.body
        );
    }
    // Same release key: 304, empty body; empty / other keys and odd params: 200.
    let same = admin.get(&format!("/configs/cfg-app/default/application?releaseKey={}", encode(&key))).await;
    assert_eq!((same.status, same.body.as_str()), (304, ""));
    for query in ["releaseKey=", "releaseKey=-1&ip=undefined&messages=not-json&whatever=1", "releaseKey=old&label=x"] {
        let answer = admin.get(&format!("/configs/cfg-app/default/application?{query}")).await;
        assert_eq!((answer.status, &answer.json()["releaseKey"]), (200, &json!(key)), "{query}: {}", answer.body);
    }
    // A cluster without releases falls back to default.
    let fallback = admin.get("/configs/cfg-app/sh-cluster/application").await.json();
    assert_eq!((&fallback["cluster"], &fallback["configurations"]), (&json!("default"), &config), "{fallback}");

    // Unknown app, unknown namespace, a namespace never released: 404.
    let created = json!({"name": "unreleased", "appId": "cfg-app", "format": "properties", "isPublic": false,
                         "comment": "", "dataChangeCreatedBy": "apollo"});
    admin.ok("POST", "/openapi/v1/apps/cfg-app/appnamespaces", Some(&created)).await;
    for path in
        ["/configs/no-app/default/application", "/configs/cfg-app/default/nope", "/configs/cfg-app/default/unreleased"]
    {
        let answer = admin.get(path).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }

    // The cached variants.
    let json_file = admin.get("/configfiles/json/cfg-app/default/application").await;
    assert_eq!((json_file.status, json_file.json()), (200, config.clone()), "{}", json_file.body);
    let text = admin.get("/configfiles/cfg-app/default/application").await;
    assert_eq!(text.status, 200, "{}", text.body);
    let mut lines: Vec<&str> = text.body.lines().filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    assert_eq!(lines, ["a=1", "b=x\\=y"], "properties text, `=` escaped: {:?}", text.body);
    assert_eq!(admin.get("/configfiles/json/cfg-app/default/nope").await.status, 404);
    // Java's Properties.store escaping, non-ASCII raw.
    create_app(&admin, "esc-app").await;
    for (key, value) in [("a key", " lead"), ("uni", "日本"), ("nl", "a\nb"), ("k#!", "v:1")] {
        add_item(&admin, "esc-app", "default", "application", key, value).await;
    }
    release(&admin, "esc-app", "application", "first").await;
    let text = admin.get("/configfiles/esc-app/default/application").await;
    let mut lines: Vec<&str> = text.body.lines().filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    assert_eq!(lines, ["a\\ key=\\ lead", "k\\#\\!=v\\:1", "nl=a\\nb", "uni=日本"], "{:?}", text.body);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_keys_verify_the_upstream_test_vector_over_full_and_mount_relative_paths() {
    // The signature this test computes is upstream's (protocol doc §3 test vector).
    let vector = apollo_signature("someSecret", "1575018989200", "/configs/someAppId/default/application?ip=10.0.0.1");
    assert_eq!(vector, "WYjjyJFei6DYiaMlwZjew2O/Yqk=");

    let d = deployment(json!({"access_key_tolerance_secs": 5}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    published_app(&admin, "key-app", &[("k", "v")]).await;
    published_app(&admin, "open-app", &[("k", "v")]).await;
    let relative = "/configs/key-app/default/application?ip=10.0.0.1";
    let full = format!("{MOUNT}{relative}");
    assert_eq!(http(addr, "GET", &full, &[], None).await.status, 200, "no key yet: open");

    let key = admin.ok("POST", "/admin/apps/key-app/accesskeys", Some(&json!({"mode": 0}))).await;
    let secret = key["secret"].as_str().unwrap_or_else(|| panic!("{key}")).to_string();
    let listed = admin.ok("GET", "/admin/apps/key-app/accesskeys", None).await;
    assert!(!listed.to_string().contains(&secret), "the listing masks secrets: {listed}");
    let get = |target: String, timestamp: String, signature: Option<String>| async move {
        let authorization = signature.map(|s| format!("Apollo key-app:{s}"));
        let mut headers = vec![("Timestamp", timestamp.as_str())];
        if let Some(a) = &authorization {
            headers.push(("Authorization", a.as_str()));
        }
        http(addr, "GET", &target, &headers, None).await
    };
    let now = now_millis().to_string();

    assert_eq!(get(full.clone(), now.clone(), None).await.status, 401, "unsigned");
    let operator = admin.call("GET", relative, None).await;
    assert_eq!(operator.status, 200, "the host's operator (its token) reads without signing: {}", operator.body);
    // Signed over the full received path (apollo-java) or the mount-relative one (Python).
    for signed_over in [full.as_str(), relative] {
        let answer = get(full.clone(), now.clone(), Some(apollo_signature(&secret, &now, signed_over))).await;
        assert_eq!(answer.status, 200, "signed over {signed_over}: {}", answer.body);
        assert_eq!(answer.json()["configurations"], json!({"k": "v"}));
    }
    let wrong = get(full.clone(), now.clone(), Some(apollo_signature("wrong", &now, relative))).await;
    assert_eq!(wrong.status, 401, "wrong secret");
    // access_key_tolerance_secs = 5: 10 s off either way is refused, 2 s is fine.
    for (offset, status) in [(-10_000_i128, 401), (10_000, 401), (-2_000, 200)] {
        let at = (now_millis() as i128 + offset).to_string();
        let answer = get(full.clone(), at.clone(), Some(apollo_signature(&secret, &at, relative))).await;
        assert_eq!(answer.status, status, "a timestamp {offset} ms off: {}", answer.body);
    }
    let answer = get(full.clone(), "soon".into(), Some(apollo_signature(&secret, "soon", relative))).await;
    assert_eq!(answer.status, 401, "a timestamp that is no number");
    let other_query = get(format!("{full}&x=1"), now.clone(), Some(apollo_signature(&secret, &now, relative))).await;
    assert_eq!(other_query.status, 401, "the query is signed too");

    // Verified over the raw query: Python's `+` for spaces and Node's `%20` both pass.
    let raw = "%5B%7B%22namespaceName%22%3A+%22application%22%2C+%22notificationId%22%3A+-1%7D%5D";
    for notifications in [raw.to_string(), raw.replace('+', "%20")] {
        let relative = format!("/notifications/v2?appId=key-app&cluster=default&notifications={notifications}");
        let answer =
            get(format!("{MOUNT}{relative}"), now.clone(), Some(apollo_signature(&secret, &now, &relative))).await;
        assert_eq!(answer.status, 200, "{relative}: {}", answer.body);
        assert_eq!(answer.json()[0]["namespaceName"], "application");
    }
    // The other routes in scope, and what is out of scope.
    let configfiles = "/configfiles/json/key-app/default/application";
    assert_eq!(get(format!("{MOUNT}{configfiles}"), now.clone(), None).await.status, 401);
    let answer =
        get(format!("{MOUNT}{configfiles}"), now.clone(), Some(apollo_signature(&secret, &now, configfiles))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let meta = admin.get("/services/config?appId=key-app&ip=10.0.0.1").await;
    assert_eq!(meta.status, 200, "meta is outside access keys: {}", meta.body);
    let homepage = meta.json()[0]["homepageUrl"].as_str().map(str::to_string);
    assert_eq!(homepage, Some(format!("http://{addr}{MOUNT}/")), "the prefix and a trailing slash: {}", meta.body);
    assert_eq!(admin.get("/configs/open-app/default/application").await.status, 200, "keys are per app");
    for path in ["/configs/bad!app/default/application", "/configfiles/json/.app/default/application"] {
        let answer = admin.get(path).await;
        assert_eq!(answer.status, 400, "an invalid appId: {path}: {}", answer.body);
    }
    let meta = admin.get("/services/meta").await;
    assert_eq!((meta.status, meta.json()), (200, json!([])));
    let admin_service = admin.get("/services/admin").await.json();
    assert_eq!(admin_service[0]["homepageUrl"], format!("http://{addr}{MOUNT}/"));

    // OBSERVER mode only logs; a disabled key does not count.
    let id = key["id"].clone();
    let id = id.as_i64().map(|i| i.to_string()).or_else(|| id.as_str().map(str::to_string)).expect("a key id");
    let path = format!("/admin/apps/key-app/accesskeys/{id}");
    admin.ok("PUT", &path, Some(&json!({"enabled": true, "mode": 1}))).await;
    assert_eq!(get(full.clone(), now.clone(), None).await.status, 200, "observer mode");
    admin.ok("PUT", &path, Some(&json!({"enabled": true, "mode": 0}))).await;
    assert_eq!(get(full.clone(), now.clone(), None).await.status, 401, "filter mode again");
    admin.ok("PUT", &path, Some(&json!({"enabled": false, "mode": 0}))).await;
    assert_eq!(get(full.clone(), now.clone(), None).await.status, 200, "disabled");
    admin.ok("PUT", &path, Some(&json!({"enabled": true, "mode": 0}))).await;

    // The appId inside the header is not checked (upstream reads what follows the first ':').
    let signature = apollo_signature(&secret, &now, relative);
    let other = format!("Apollo some-other-app:{signature}");
    let answer = http(addr, "GET", &full, &[("Timestamp", &now), ("Authorization", &other)], None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // The legacy /notifications is in scope too.
    let v1 = "/notifications?appId=key-app&cluster=default&namespace=application&notificationId=-1";
    assert_eq!(get(format!("{MOUNT}{v1}"), now.clone(), None).await.status, 401);
    let answer = get(format!("{MOUNT}{v1}"), now.clone(), Some(apollo_signature(&secret, &now, v1))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Up to five keys an app; deleting the enforced one opens the app again.
    for _ in 1..5 {
        admin.ok("POST", "/admin/apps/key-app/accesskeys", Some(&json!({"mode": 1}))).await;
    }
    let sixth = admin.call("POST", "/admin/apps/key-app/accesskeys", Some(&json!({"mode": 1}))).await;
    assert_eq!(sixth.status, 400, "a sixth key: {}", sixth.body);
    let deleted = admin.call("DELETE", &path, None).await;
    assert!(matches!(deleted.status, 200 | 204), "{}: {}", deleted.status, deleted.body);
    assert_eq!(get(full.clone(), now.clone(), None).await.status, 200, "only observer keys are left");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_namespace_refuses_invalid_json_at_edit_time_with_line_and_column() {
    let d = deployment(json!({}));
    let (host, admin) = start(&d).await;
    create_app(&admin, "json-app").await;
    let body = json!({"name": "datasources", "appId": "json-app", "format": "json", "isPublic": false,
                      "comment": "", "dataChangeCreatedBy": "apollo"});
    let created = admin.ok("POST", "/openapi/v1/apps/json-app/appnamespaces", Some(&body)).await;
    assert_eq!(created["name"], "datasources.json", "non-properties names carry the format: {created}");
    assert_eq!(created["format"], "json", "{created}");
    let items = format!("{}/items", ns_path("json-app", "default", "datasources.json"));

    // `b` has no value: the parser stops at the `}` on line 4, column 1.
    let invalid = "{\n  \"a\": 1,\n  \"b\": \n}";
    let refused = admin
        .call("POST", &items, Some(&json!({"key": "content", "value": invalid, "dataChangeCreatedBy": "apollo"})))
        .await;
    assert_eq!(refused.status, 400, "invalid JSON refused: {}", refused.body);
    assert!(
        refused.body.contains("4:1") || refused.body.contains("line 4 column 1"),
        "the message names line:column: {}",
        refused.body
    );
    assert_eq!(admin.get("/configs/json-app/default/datasources.json").await.status, 404, "nothing released");

    let valid = "{\n  \"url\": \"jdbc:x\",\n  \"pool\": 8\n}";
    let content = json!({"key": "content", "value": valid, "dataChangeCreatedBy": "apollo"});
    admin.ok("POST", &items, Some(&content)).await;
    let update = json!({"key": "content", "value": "[1, 2", "dataChangeLastModifiedBy": "apollo"});
    let refused = admin.call("PUT", &format!("{items}/content"), Some(&update)).await;
    assert_eq!(refused.status, 400, "an update is checked as well: {}", refused.body);
    release(&admin, "json-app", "datasources.json", "first").await;

    let served = admin.get("/configs/json-app/default/datasources.json").await;
    let body = served.json();
    assert_eq!((served.status, &body["configurations"]), (200, &json!({"content": valid})), "{}", served.body);
    assert_eq!(body["namespaceName"], "datasources.json");
    let raw = admin.get("/configfiles/raw/json-app/default/datasources.json").await;
    assert_eq!((raw.status, raw.body.as_str()), (200, valid), "verbatim");
    assert!(raw.header("content-type").is_some_and(|t| t.starts_with("application/json")), "{:?}", raw.headers);

    // YAML and XML files: checked the same way, served with their own content types.
    for (name, format, invalid, valid, content_type) in [
        ("rules", "yml", "a: [1, 2\nb: 3\n", "a:\n  - 1\n  - 2\n", "application/yaml"),
        ("layout", "xml", "<a>\n<b></a>", "<a><b/></a>", "application/xml"),
    ] {
        let body = json!({"name": name, "appId": "json-app", "format": format, "isPublic": false,
                          "comment": "", "dataChangeCreatedBy": "apollo"});
        let created = admin.ok("POST", "/openapi/v1/apps/json-app/appnamespaces", Some(&body)).await;
        let namespace = format!("{name}.{format}");
        assert_eq!(created["name"], namespace.as_str(), "{created}");
        let items = format!("{}/items", ns_path("json-app", "default", &namespace));
        let refused = admin.call("POST", &items, Some(&json!({"key": "content", "value": invalid}))).await;
        assert_eq!(refused.status, 400, "{namespace}: {}", refused.body);
        assert!(refused.body.contains("line 2"), "{namespace}: the message names the line: {}", refused.body);
        admin.ok("POST", &items, Some(&json!({"key": "content", "value": valid}))).await;
        release(&admin, "json-app", &namespace, "first").await;
        let raw = admin.get(&format!("/configfiles/raw/json-app/default/{namespace}")).await;
        assert_eq!((raw.status, raw.body.as_str()), (200, valid), "{namespace}");
        assert!(raw.header("content-type").is_some_and(|t| t.starts_with(content_type)), "{:?}", raw.headers);
    }
    host.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Public namespaces, clusters, rollback, the module's own listener
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_namespace_reaches_other_apps_and_their_overrides_win() {
    if !node_client() {
        return;
    }
    let d = deployment(json!({"long_poll_timeout_secs": 2}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    create_app(&admin, "pub-owner").await;
    create_app(&admin, "pub-user").await;
    let public = json!({"name": "shared", "appId": "pub-owner", "format": "properties", "isPublic": true,
                        "appendNamespacePrefix": true, "comment": "", "dataChangeCreatedBy": "apollo"});
    let created = admin.ok("POST", "/openapi/v1/apps/pub-owner/appnamespaces", Some(&public)).await;
    assert_eq!(created["name"], "TEST.shared", "public names get the owner's orgId: {created}");
    add_item(&admin, "pub-owner", "default", "TEST.shared", "x", "public").await;
    add_item(&admin, "pub-owner", "default", "TEST.shared", "y", "public").await;
    release(&admin, "pub-owner", "TEST.shared", "first").await;

    // Another app reads it without any namespace of its own, in any spelling.
    let served = admin.get("/configs/pub-user/default/TEST.shared").await.json();
    assert_eq!(served["configurations"], json!({"x": "public", "y": "public"}), "{served}");
    assert_eq!((&served["appId"], &served["cluster"]), (&json!("pub-user"), &json!("default")), "{served}");
    let lower = admin.get("/configs/pub-user/default/test.shared").await.json();
    assert_eq!((&lower["namespaceName"], &lower["configurations"]), (&json!("test.shared"), &served["configurations"]));

    let placeholder = admin.get("/configs/ApolloNoAppIdPlaceHolder/default/TEST.shared").await.json();
    assert_eq!(placeholder["configurations"], served["configurations"], "clients without an appId: {placeholder}");

    let scratch = tempfile::tempdir().unwrap();
    let base = format!("http://{addr}{MOUNT}");
    let mut client = Client::node(scratch.path(), &base, "pub-user", &["--namespace=TEST.shared".to_string()]);
    let ready = client.wait_for("ready()", |e| is(e, "ready")).await;
    assert_eq!(ready["config"], json!({"x": "public", "y": "public"}));
    // The owner's release reaches the other app's client (it watches the owner's key too).
    client.mark();
    update_item(&admin, "pub-owner", "TEST.shared", "y", "public-2").await;
    release(&admin, "pub-owner", "TEST.shared", "second").await;
    let change = client.wait_for("the owner's release", |e| is(e, "change")).await;
    assert_eq!((&change["key"], &change["newValue"]), (&json!("y"), &json!("public-2")), "{change}");

    // The other app associates the namespace and overrides one key: its value wins.
    let associate = json!({"name": "TEST.shared", "appId": "pub-user", "format": "properties", "isPublic": false,
                           "comment": "", "dataChangeCreatedBy": "apollo"});
    admin.ok("POST", "/openapi/v1/apps/pub-user/appnamespaces", Some(&associate)).await;
    client.mark();
    add_item(&admin, "pub-user", "default", "TEST.shared", "y", "own").await;
    release(&admin, "pub-user", "TEST.shared", "override").await;
    let change = client.wait_for("the override", |e| is(e, "change")).await;
    assert_eq!((&change["key"], &change["newValue"]), (&json!("y"), &json!("own")), "{change}");
    let served = admin.get("/configs/pub-user/default/TEST.shared").await.json();
    assert_eq!(served["configurations"], json!({"x": "public", "y": "own"}), "{served}");
    let merged_key = served["releaseKey"].as_str().unwrap_or_default().to_string();
    assert_eq!(merged_key.split('+').count(), 2, "own and public release keys: {served}");
    let same = admin.get(&format!("/configs/pub-user/default/TEST.shared?releaseKey={}", encode(&merged_key))).await;
    assert_eq!(same.status, 304, "the merged key is the one to send back");

    // A poll names both apps' keys.
    let target = v2_target("pub-user", &json!([{"namespaceName": "TEST.shared", "notificationId": -1}]));
    let polled = http(addr, "GET", &target, &[], None).await.json();
    let details = &polled[0]["messages"]["details"];
    assert!(
        details.get("pub-user+default+TEST.shared").is_some() && details.get("pub-owner+default+TEST.shared").is_some(),
        "{polled}"
    );
    drop(client);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_its_own_cluster_falls_back_to_default_until_that_cluster_is_released() {
    if !node_client() {
        return;
    }
    let d = deployment(json!({"long_poll_timeout_secs": 2}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    published_app(&admin, "dc-app", &[("k", "default")]).await;
    let cluster = json!({"name": "sh", "appId": "dc-app", "dataChangeCreatedBy": "apollo"});
    let created = admin.ok("POST", &format!("/openapi/v1/envs/{ENV}/apps/dc-app/clusters"), Some(&cluster)).await;
    assert_eq!(created["name"], "sh", "{created}");
    let scratch = tempfile::tempdir().unwrap();
    let base = format!("http://{addr}{MOUNT}");
    let mut client = Client::node(scratch.path(), &base, "dc-app", &["--cluster=sh".to_string()]);
    let ready = client.wait_for("ready()", |e| is(e, "ready")).await;
    assert_eq!(ready["config"], json!({"k": "default"}), "the default cluster's release");

    client.mark();
    add_item(&admin, "dc-app", "sh", "application", "k", "sh").await;
    release_in(&admin, "dc-app", "sh", "application", "sh first").await;
    let change = client.wait_for("the own cluster's first release", |e| is(e, "change")).await;
    assert_eq!((&change["oldValue"], &change["newValue"]), (&json!("default"), &json!("sh")), "{change}");
    let served = admin.get("/configs/dc-app/sh/application").await.json();
    assert_eq!((&served["cluster"], &served["configurations"]["k"]), (&json!("sh"), &json!("sh")), "{served}");
    // A data center: its cluster is tried before default.
    let served = admin.get("/configs/dc-app/unknown/application?dataCenter=sh").await.json();
    assert_eq!((&served["cluster"], &served["configurations"]["k"]), (&json!("sh"), &json!("sh")), "{served}");
    drop(client);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_pushes_the_previous_release_and_a_master_release_rebases_the_gray_branch() {
    if !node_client() {
        return;
    }
    let d = deployment(json!({"long_poll_timeout_secs": 2}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    published_app(&admin, "roll-app", &[("a", "1"), ("b", "1")]).await;
    update_item(&admin, "roll-app", "application", "a", "2").await;
    let second = release(&admin, "roll-app", "application", "second").await;
    let scratch = tempfile::tempdir().unwrap();
    let base = format!("http://{addr}{MOUNT}");
    let mut plain = Client::node(scratch.path(), &base, "roll-app", &["--ip=10.4.4.4".to_string()]);
    let mut gray = Client::node(scratch.path(), &base, "roll-app", &["--ip=10.3.3.3".to_string()]);
    for client in [&mut plain, &mut gray] {
        let ready = client.wait_for("ready()", |e| is(e, "ready")).await;
        assert_eq!(ready["config"], json!({"a": "2", "b": "1"}));
        client.mark();
    }
    gray_publish(&admin, "roll-app", "10.3.3.3", "b", "gray").await;
    gray.wait_for("the gray value", |e| is(e, "change") && e["newValue"] == "gray").await;
    // The cached /configfiles variant serves gray clients their branch too.
    let file = admin.get("/configfiles/json/roll-app/default/application?ip=10.3.3.3").await.json();
    assert_eq!(file, json!({"a": "2", "b": "gray"}));

    // A master release reaches both; the gray client keeps its override over it.
    gray.mark();
    update_item(&admin, "roll-app", "application", "a", "3").await;
    let third = release(&admin, "roll-app", "application", "third").await;
    for client in [&mut plain, &mut gray] {
        let change = client.wait_for("the master release", |e| is(e, "change") && e["key"] == "a").await;
        assert_eq!((&change["oldValue"], &change["newValue"]), (&json!("2"), &json!("3")), "{change}");
        client.mark();
    }
    let served = admin.get("/configs/roll-app/default/application?ip=10.3.3.3").await.json();
    assert_eq!(served["configurations"], json!({"a": "3", "b": "gray"}), "the branch over the new master");

    // Rolling the third release back pushes the second again, to gray clients too.
    let rollback = |id: &Value| format!("/openapi/v1/envs/{ENV}/releases/{id}/rollback?operator=apollo");
    admin.ok("PUT", &rollback(&third["id"]), None).await;
    for client in [&mut plain, &mut gray] {
        let change = client.wait_for("the rollback", |e| is(e, "change")).await;
        assert_eq!((&change["key"], &change["oldValue"], &change["newValue"]), (&json!("a"), &json!("3"), &json!("2")));
    }
    let served = admin.get("/configs/roll-app/default/application?ip=10.3.3.3").await.json();
    assert_eq!(served["configurations"], json!({"a": "2", "b": "gray"}), "the branch over the rolled-back master");
    let latest =
        admin.ok("GET", &format!("{}/releases/latest", ns_path("roll-app", "default", "application")), None).await;
    assert_eq!(latest["id"], second["id"], "{latest}");
    let again = admin.call("PUT", &rollback(&third["id"]), None).await;
    assert_eq!(again.status, 400, "already rolled back: {}", again.body);
    admin.ok("PUT", &rollback(&second["id"]), None).await;
    let first_only = admin.get("/configs/roll-app/default/application?ip=10.4.4.4").await.json();
    assert_eq!(first_only["configurations"], json!({"a": "1", "b": "1"}));
    let last =
        admin.ok("GET", &format!("{}/releases/latest", ns_path("roll-app", "default", "application")), None).await;
    let only = admin.call("PUT", &rollback(&last["id"]), None).await;
    assert_eq!(only.status, 400, "the only active release stays: {}", only.body);
    drop((plain, gray));
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_rollback_also_rolls_the_gray_branch_back() {
    // Upstream's ReleaseService.rollback re-merges the branch over the release rolled
    // back to (rollbackChildNamespace): gray clients must not keep master values that
    // everyone else has lost.
    let d = deployment(json!({}));
    let (host, admin) = start(&d).await;
    published_app(&admin, "rb-app", &[("a", "1"), ("b", "1")]).await;
    update_item(&admin, "rb-app", "application", "a", "2").await;
    let second = release(&admin, "rb-app", "application", "second").await;
    gray_publish(&admin, "rb-app", "10.5.5.5", "b", "gray").await;
    let path = format!("/openapi/v1/envs/{ENV}/releases/{}/rollback?operator=apollo", second["id"]);
    admin.ok("PUT", &path, None).await;
    let master = admin.get("/configs/rb-app/default/application?ip=10.6.6.6").await.json();
    assert_eq!(master["configurations"], json!({"a": "1", "b": "1"}), "{master}");
    let gray = admin.get("/configs/rb-app/default/application?ip=10.5.5.5").await.json();
    assert_eq!(
        gray["configurations"],
        json!({"a": "1", "b": "gray"}),
        "the branch over the rolled-back master: {gray}"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_module_listener_serves_the_same_protocol_at_its_root() {
    if !python_client() || !node_client() {
        return;
    }
    let d = deployment_with(
        json!({"long_poll_timeout_secs": 2}),
        json!({"modules": {"listeners": {"config": "127.0.0.1:0"}}}),
    );
    let (host, admin) = start(&d).await;
    let listener: SocketAddr = common::eventually("the module listener is bound", WAIT, || async {
        let listed: Value = host.uds().get("/api/modules").await.unwrap();
        let modules = listed["modules"].as_array().cloned().unwrap_or_default();
        let config = modules.iter().find(|m| m["name"] == "config")?.clone();
        config["listener"]["bound"].as_str().and_then(|a| a.parse().ok())
    })
    .await;
    published_app(&admin, "root-app", &[("k", "v1")]).await;
    let key = admin.ok("POST", "/admin/apps/root-app/accesskeys", Some(&json!({"mode": 0}))).await;
    let secret = key["secret"].as_str().unwrap().to_string();

    let meta = http(listener, "GET", "/services/config?appId=root-app", &[], None).await;
    assert_eq!(meta.json()[0]["homepageUrl"], format!("http://{listener}/"), "no prefix at the root: {}", meta.body);
    assert_eq!(http(listener, "GET", "/configs/root-app/default/application", &[], None).await.status, 401);
    // apollo-client-python signs the path after its base: here the full path.
    let home = tempfile::tempdir().unwrap();
    let base = format!("http://{listener}");
    let mut python = Client::python(home.path(), &base, "root-app", &["--secret", &secret]);
    let fetched = python.wait_for("the first fetch", |e| is(e, "http")).await;
    assert_eq!(fetched["status"], 200, "{}", python.report());
    let ready = python.wait_for("ready", |e| is(e, "ready")).await;
    assert_eq!(ready["configs"]["application"], json!({"k": "v1"}));
    drop(python);

    // ctrip-apollo cannot sign: without the key it is refused, with the key disabled it reads and follows.
    let id = key["id"].as_str().map(str::to_string).unwrap_or_else(|| key["id"].to_string());
    admin
        .ok("PUT", &format!("/admin/apps/root-app/accesskeys/{id}"), Some(&json!({"enabled": false, "mode": 0})))
        .await;
    let mut node = Client::node(home.path(), &base, "root-app", &[]);
    let ready = node.wait_for("ready()", |e| is(e, "ready")).await;
    assert_eq!(ready["config"], json!({"k": "v1"}));
    node.mark();
    update_item(&admin, "root-app", "application", "k", "v2").await;
    release(&admin, "root-app", "application", "second").await;
    let change = node.wait_for("the release, pushed through the listener", |e| is(e, "change")).await;
    assert_eq!(change["newValue"], "v2");
    drop(node);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_are_validated_and_legacy_notifications_answer() {
    let d = deployment(json!({"item_value_max_chars": 10, "long_poll_timeout_secs": 1}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    create_app(&admin, "item-app").await;
    let p = ns_path("item-app", "default", "application");
    let latest = admin.call("GET", &format!("{p}/releases/latest"), None).await;
    assert_eq!((latest.status, latest.body.as_str()), (200, ""), "no release yet: an empty 200");

    let long = admin.call("POST", &format!("{p}/items"), Some(&json!({"key": "k", "value": "12345678901"}))).await;
    assert_eq!(long.status, 400, "longer than item_value_max_chars: {}", long.body);
    let comment = "c".repeat(257);
    let answer =
        admin.call("POST", &format!("{p}/items"), Some(&json!({"key": "k", "value": "v", "comment": comment}))).await;
    assert_eq!(answer.status, 400, "a comment over 256 characters: {}", answer.body);
    assert_eq!(admin.call("GET", &format!("{p}/items/k"), None).await.status, 404);
    assert_eq!(admin.call("DELETE", &format!("{p}/items/k?operator=apollo"), None).await.status, 404);
    add_item(&admin, "item-app", "default", "application", "k", "v").await;
    let twice = admin.call("POST", &format!("{p}/items"), Some(&json!({"key": "k", "value": "w"}))).await;
    assert_eq!(twice.status, 400, "POST creates: {}", twice.body);
    let missing = admin.call("PUT", &format!("{p}/items/new"), Some(&json!({"key": "new", "value": "w"}))).await;
    assert_eq!(missing.status, 404, "PUT without createIfNotExists updates only: {}", missing.body);
    let body =
        json!({"key": "new", "value": "w", "dataChangeLastModifiedBy": "apollo", "dataChangeCreatedBy": "apollo"});
    admin.ok("PUT", &format!("{p}/items/new?createIfNotExists=true"), Some(&body)).await;
    // A key with a space, percent-encoded in the path.
    let body = json!({"key": "a b", "value": "space", "dataChangeLastModifiedBy": "apollo"});
    admin.ok("PUT", &format!("{p}/items/a%20b?createIfNotExists=true"), Some(&body)).await;
    assert_eq!(admin.ok("GET", &format!("{p}/items/a%20b"), None).await["key"], "a b");
    admin.ok("DELETE", &format!("{p}/items/a%20b?operator=apollo"), None).await;
    // A key a path cannot carry, through encodedItems (standard base64).
    let encoded = signing::base64_encode(b"a/b c");
    let body = json!({"key": "a/b c", "value": "slash", "dataChangeLastModifiedBy": "apollo"});
    admin.ok("PUT", &format!("{p}/encodedItems/{encoded}?createIfNotExists=true"), Some(&body)).await;
    let item = admin.ok("GET", &format!("{p}/encodedItems/{encoded}"), None).await;
    assert_eq!((&item["key"], &item["value"]), (&json!("a/b c"), &json!("slash")), "{item}");
    let page = admin.ok("GET", &format!("{p}/items?page=0&size=2"), None).await;
    assert_eq!((&page["total"], page["content"].as_array().map(Vec::len)), (&json!(3), Some(2)), "{page}");
    let env_case = "/openapi/v1/envs/dev/apps/item-app/clusters/default/namespaces/application/items/k";
    assert_eq!(admin.ok("GET", env_case, None).await["value"], "v", "env names are case-insensitive");
    assert_eq!(admin.get("/configs/item-app/default/application").await.status, 404, "edits are not served unreleased");
    release(&admin, "item-app", "application", "first").await;
    let served = admin.get("/configs/item-app/default/application").await.json();
    assert_eq!(served["configurations"], json!({"k": "v", "new": "w", "a/b c": "slash"}), "{served}");

    // v1: one object; at once when the id differs, 304 after the hold when it does not.
    let v1 = |id: &str| {
        format!("{MOUNT}/notifications?appId=item-app&cluster=default&namespace=application&notificationId={id}")
    };
    let answer = http(addr, "GET", &v1("-1"), &[], None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let id = answer.json()["notificationId"].as_i64().unwrap_or_else(|| panic!("{}", answer.body));
    assert_eq!(answer.json()["namespaceName"], "application");
    let held = http(addr, "GET", &v1(&id.to_string()), &[], None).await;
    assert_eq!((held.status, held.body.as_str()), (304, ""));
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_release_wakes_every_parked_poll_at_once() {
    const POLLS: usize = 50;
    // Woken polls share one written answer where they spell the namespace alike: each
    // must still get its own spelling back.
    const SPELLINGS: [&str; 2] = ["application", "Application"];
    let d = deployment(json!({"long_poll_timeout_secs": 10}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    published_app(&admin, "fan-app", &[("k", "v1")]).await;
    let first = http(addr, "GET", &v2_target("fan-app", &json!([{"namespaceName": "application"}])), &[], None).await;
    let latest = first.json()[0]["notificationId"].as_i64().unwrap_or_else(|| panic!("{}", first.body));
    let polls: Vec<_> = (0..POLLS)
        .map(|i| {
            let spelling = SPELLINGS[i % 2];
            let target = v2_target("fan-app", &json!([{"namespaceName": spelling, "notificationId": latest}]));
            tokio::spawn(async move { (spelling, http(addr, "GET", &target, &[], None).await) })
        })
        .collect();
    common::eventually("every poll is parked", WAIT, || async {
        (admin.ok("GET", "/admin/status", None).await["parked_polls"].as_u64() >= Some(POLLS as u64)).then_some(())
    })
    .await;
    let released_at = Instant::now();
    update_item(&admin, "fan-app", "application", "k", "v2").await;
    release(&admin, "fan-app", "application", "second").await;
    for poll in polls {
        let (spelling, answer) = poll.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        let notification = &answer.json()[0];
        let id = notification["notificationId"].as_i64();
        assert!(id > Some(latest), "{}", answer.body);
        assert_eq!(notification["namespaceName"], json!(spelling), "{}", answer.body);
        assert_eq!(notification["messages"]["details"]["fan-app+default+application"].as_i64(), id, "{}", answer.body);
    }
    eprintln!("one release answered {POLLS} parked polls in {} ms", released_at.elapsed().as_millis());
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gray_rules_match_labels_wildcards_and_the_app_in_any_case() {
    let d = deployment(json!({}));
    let (host, admin) = start(&d).await;
    published_app(&admin, "label-app", &[("a", "master")]).await;
    let p = ns_path("label-app", "default", "application");
    let branch = admin.ok("POST", &format!("{p}/branches?operator=apollo"), None).await;
    let name = branch["clusterName"].as_str().unwrap().to_string();
    add_item(&admin, "label-app", &name, "application", "a", "gray").await;
    let rules = |items: Value| {
        json!({"appId": "label-app", "clusterName": "default", "namespaceName": "application", "branchName": name,
               "ruleItems": items})
    };
    let set = |items: Value| {
        let (admin, path, body) = (admin.clone(), format!("{p}/branches/{name}/rules?operator=apollo"), rules(items));
        async move { admin.call("PUT", &path, Some(&body)).await }
    };
    for bad in [
        json!([{"clientAppId": "label-app", "clientIpList": [], "clientLabelList": []}]),
        json!([{"clientAppId": "label-app", "clientIpList": ["not-an-ip"], "clientLabelList": []}]),
    ] {
        let answer = set(bad.clone()).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.body);
    }
    let answer = set(json!([{"clientAppId": "LABEL-APP", "clientIpList": [], "clientLabelList": ["canary"]}])).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = json!({"releaseTitle": "gray", "releasedBy": "apollo"});
    admin.ok("POST", &format!("{p}/branches/{name}/releases"), Some(&body)).await;
    let served = |query: &'static str| {
        let admin = admin.clone();
        async move { admin.get(&format!("/configs/label-app/default/application?{query}")).await.json() }
    };
    assert_eq!(served("label=canary").await["configurations"]["a"], "gray", "label match, appId in another case");
    assert_eq!(served("label=stable").await["configurations"]["a"], "master");
    assert_eq!(served("ip=10.9.9.9").await["configurations"]["a"], "master");
    // Without `ip`, the first X-Forwarded-For hop, else the peer address, meets the IP rules.
    let answer =
        set(json!([{"clientAppId": "label-app", "clientIpList": ["10.8.8.8", "127.0.0.1"], "clientLabelList": []}]))
            .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let target = format!("{MOUNT}/configs/label-app/default/application");
    let forwarded = http(admin.addr, "GET", &target, &[("X-Forwarded-For", "10.8.8.8, 10.0.0.1")], None).await;
    assert_eq!(forwarded.json()["configurations"]["a"], "gray", "{}", forwarded.body);
    let forwarded = http(admin.addr, "GET", &target, &[("X-Forwarded-For", "10.7.7.7")], None).await;
    assert_eq!(forwarded.json()["configurations"]["a"], "master", "{}", forwarded.body);
    assert_eq!(served("").await["configurations"]["a"], "gray", "the peer, 127.0.0.1");
    assert_eq!(served("ip=10.7.7.7").await["configurations"]["a"], "master", "`ip` first");
    let answer = set(json!([{"clientAppId": "LABEL-APP", "clientIpList": [], "clientLabelList": ["canary"]}])).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let gray_key = served("label=canary").await["releaseKey"].clone();
    assert_ne!(gray_key, served("").await["releaseKey"], "gray clients have their own release key");

    let answer = set(json!([{"clientAppId": "label-app", "clientIpList": ["*"], "clientLabelList": []}])).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(served("ip=10.9.9.9").await["configurations"]["a"], "gray", "`*` matches every ip");
    let other_app = admin.get("/configs/other-app/default/application?ip=10.9.9.9").await;
    assert_eq!(other_app.status, 404, "rules never serve another app's namespace");

    admin.ok("DELETE", &format!("{p}/branches/{name}?operator=apollo"), None).await;
    let none = admin.call("GET", &format!("{p}/branches"), None).await;
    assert_eq!((none.status, none.body.as_str()), (200, ""), "no branch: an empty 200");
    assert_eq!(served("ip=10.9.9.9").await["configurations"]["a"], "master");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_routes_show_history_differences_pending_changes_and_the_audit() {
    let d = deployment(json!({}));
    let (host, admin) = start(&d).await;
    published_app(&admin, "adm-app", &[("a", "1")]).await;
    update_item(&admin, "adm-app", "application", "a", "2").await;
    add_item(&admin, "adm-app", "default", "application", "b", "x").await;
    release(&admin, "adm-app", "application", "second").await;

    let history = admin.ok("GET", "/admin/apps/adm-app/clusters/default/namespaces/application/releases", None).await;
    let names: Vec<&str> = history.as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["second", "first"], "newest first: {history}");
    for field in ["id", "releaseKey", "name", "comment", "author", "time", "abandoned"] {
        assert!(history[0].get(field).is_some(), "{field} in {}", history[0]);
    }
    let (first, second) = (&history[1]["id"], &history[0]["id"]);
    let full = admin.ok("GET", &format!("/admin/releases/{second}"), None).await;
    assert_eq!(full["configurations"], json!({"a": "2", "b": "x"}), "{full}");
    let compared = admin.ok("GET", &format!("/admin/releases/compare?base={first}&to={second}"), None).await;
    assert_eq!(
        compared,
        json!({"added": {"b": "x"}, "modified": {"a": {"old": "1", "new": "2"}}, "deleted": {}}),
        "{compared}"
    );
    update_item(&admin, "adm-app", "application", "a", "3").await;
    let item = format!("{}/items/b?operator=apollo", ns_path("adm-app", "default", "application"));
    admin.ok("DELETE", &item, None).await;
    let pending = admin.ok("GET", "/admin/apps/adm-app/clusters/default/namespaces/application/changes", None).await;
    assert_eq!(pending, json!({"added": {}, "modified": {"a": {"old": "2", "new": "3"}}, "deleted": {"b": "x"}}));

    let audit = admin.ok("GET", "/admin/audit?limit=100", None).await;
    let entries = audit.as_array().cloned().unwrap_or_default();
    assert!(
        entries.iter().any(|e| e["action"] == "release" && e["target"].as_str().is_some_and(|t| t.contains("adm-app"))),
        "{audit}"
    );
    assert!(entries.iter().all(|e| e.get("time").is_some() && e.get("actor").is_some()), "{audit}");
    assert_eq!(entries[0]["action"], "delete-item", "newest first: {audit}");
    let status = admin.ok("GET", "/admin/status", None).await;
    for field in ["parked_polls", "watch_keys", "notification_head", "envs"] {
        assert!(status.get(field).is_some(), "{field} in {status}");
    }
    // Operators only.
    assert_eq!(admin.anonymous().call("GET", "/admin/audit", None).await.status, 401);
    let token = consumer(&admin, "reader", json!({"adm-app": {"edit": true, "release": true}})).await;
    assert_eq!(admin.consumer(&token).call("GET", "/admin/status", None).await.status, 401);
    // Credentials are shown once, never written to the audit.
    let key = admin.ok("POST", "/admin/apps/adm-app/accesskeys", Some(&json!({"mode": 0}))).await;
    let secret = key["secret"].as_str().unwrap().to_string();
    let audit = admin.ok("GET", "/admin/audit?limit=100", None).await.to_string();
    assert!(!audit.contains(&token) && !audit.contains(&secret), "no token or secret in the audit: {audit}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_through_one_host_reaches_a_client_of_another_on_a_shared_store() {
    if !common::components::mongo() || !node_client() {
        return;
    }
    let mongo = common::mongo::MongoServer::start();
    let shared = |scope: &str| json!({"db": {"mongo": {"url": mongo.url, "name": mongo.database, "scope": scope}}});
    let (one, two) = (deployment_with(json!({}), shared("one")), deployment_with(json!({}), shared("two")));
    let ((host_one, admin_one), (host_two, admin_two)) = (start(&one).await, start(&two).await);
    published_app(&admin_one, "fleet-app", &[("k", "v1")]).await;
    common::eventually("host two serves what host one released", WAIT, || async {
        (admin_two.get("/configs/fleet-app/default/application").await.status == 200).then_some(())
    })
    .await;

    let scratch = tempfile::tempdir().unwrap();
    let base = format!("http://{}{MOUNT}", host_two.host.http_addr);
    let mut client = Client::node(scratch.path(), &base, "fleet-app", &[]);
    let ready = client.wait_for("ready() on host two", |e| is(e, "ready")).await;
    assert_eq!(ready["config"], json!({"k": "v1"}));
    client.mark();
    let released_at = Instant::now();
    update_item(&admin_one, "fleet-app", "application", "k", "v2").await;
    release(&admin_one, "fleet-app", "application", "second").await;
    let change = client.wait_for("host one's release, pushed by host two", |e| is(e, "change")).await;
    assert_eq!(change["newValue"], "v2");
    eprintln!("a release on host one reached a client of host two in {} ms", released_at.elapsed().as_millis());
    drop(client);
    host_one.shutdown().await;
    host_two.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrip_apollo_follows_several_namespaces_in_its_own_spelling_on_one_poll() {
    if !node_client() {
        return;
    }
    let d = deployment(json!({"long_poll_timeout_secs": 2}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    published_app(&admin, "multi-app", &[("a", "1")]).await;
    let extra = json!({"name": "extra", "appId": "multi-app", "format": "properties", "isPublic": false,
                       "comment": "", "dataChangeCreatedBy": "apollo"});
    admin.ok("POST", "/openapi/v1/apps/multi-app/appnamespaces", Some(&extra)).await;
    add_item(&admin, "multi-app", "default", "extra", "e", "1").await;
    release(&admin, "multi-app", "extra", "first").await;

    let scratch = tempfile::tempdir().unwrap();
    let base = format!("http://{addr}{MOUNT}");
    // "Application": the client keys its state by its own spelling, the module must echo it.
    let mut client = Client::node(scratch.path(), &base, "multi-app", &["--namespace=Application,extra".to_string()]);
    for namespace in ["Application", "extra"] {
        let ready = client.wait_for("ready()", |e| is(e, "ready") && e["namespace"] == namespace).await;
        assert_eq!(ready["config"].as_object().map(|c| c.len()), Some(1), "{ready}");
    }
    client.mark();
    update_item(&admin, "multi-app", "extra", "e", "2").await;
    release(&admin, "multi-app", "extra", "second").await;
    let change = client.wait_for("the extra namespace's release", |e| is(e, "change")).await;
    assert_eq!((&change["namespace"], &change["newValue"]), (&json!("extra"), &json!("2")), "{change}");
    client.mark();
    update_item(&admin, "multi-app", "application", "a", "2").await;
    release(&admin, "multi-app", "application", "second").await;
    let change = client.wait_for("the application namespace's release", |e| is(e, "change")).await;
    assert_eq!((&change["namespace"], &change["newValue"]), (&json!("Application"), &json!("2")), "{change}");
    drop(client);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apollo_client_python_follows_two_namespaces_released_together() {
    if !python_client() {
        return;
    }
    let d = deployment(json!({"long_poll_timeout_secs": 2}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    published_app(&admin, "pair-app", &[("a", "1")]).await;
    let second = json!({"name": "second", "appId": "pair-app", "format": "properties", "isPublic": false,
                        "comment": "", "dataChangeCreatedBy": "apollo"});
    admin.ok("POST", "/openapi/v1/apps/pair-app/appnamespaces", Some(&second)).await;
    add_item(&admin, "pair-app", "default", "second", "b", "1").await;
    release(&admin, "pair-app", "second", "first").await;

    let home = tempfile::tempdir().unwrap();
    let base = format!("http://{addr}{MOUNT}");
    let mut client = Client::python(home.path(), &base, "pair-app", &["--namespaces", "application,second", "--watch"]);
    let ready = client.wait_for("the constructor's values", |e| is(e, "ready")).await;
    assert_eq!(ready["configs"], json!({"application": {"a": "1"}, "second": {"b": "1"}}));
    // Its poll is answered once with both ids: it handles the first entry only, so the
    // second comes from the next poll, which must answer at once.
    client
        .wait_for("a long poll answered", |e| {
            is(e, "http") && e["path"].as_str().is_some_and(|p| p.contains("/notifications/v2?")) && e["status"] == 200
        })
        .await;
    client.mark();
    update_item(&admin, "pair-app", "application", "a", "2").await;
    update_item(&admin, "pair-app", "second", "b", "2").await;
    release(&admin, "pair-app", "application", "second").await;
    release(&admin, "pair-app", "second", "second").await;
    for namespace in ["application", "second"] {
        let change = client.wait_for("both releases", |e| is(e, "change") && e["namespace"] == namespace).await;
        assert_eq!(change["value"], "2", "{change}");
    }
    drop(client);
    host.shutdown().await;
}

/// Every value in `value`, recursively, is not null (Gson omits null fields).
fn no_nulls(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Array(items) => items.iter().all(no_nulls),
        Value::Object(map) => map.values().all(no_nulls),
        _ => true,
    }
}

/// `yyyy-MM-dd'T'HH:mm:ss.SSSZ`, e.g. `2024-05-01T10:20:30.123+0800`.
fn is_gson_date(value: &Value) -> bool {
    let Some(text) = value.as_str() else { return false };
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| range.into_iter().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() == 28
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && (b[23] == b'+' || b[23] == b'-')
        && digits(24..28)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_api_reads_answer_ctrips_dto_shapes() {
    let d = deployment(json!({"envs": ["DEV", "PRO"]}));
    let (host, admin) = start(&d).await;
    published_app(&admin, "dto-app", &[("n", "42"), ("flag", "true"), ("s", "text")]).await;
    published_app(&admin, "dto-other", &[("k", "v")]).await;
    let p = ns_path("dto-app", "default", "application");
    // A branch is a child cluster: it is not one of the app's clusters.
    admin.ok("POST", &format!("{p}/branches?operator=apollo"), None).await;

    let apps = admin.ok("GET", "/openapi/v1/apps?appIds=dto-app,dto-other", None).await;
    let mut ids: Vec<&str> = apps.as_array().unwrap().iter().filter_map(|a| a["appId"].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["dto-app", "dto-other"], "{apps}");
    let envs = admin.ok("GET", "/openapi/v1/apps/dto-app/envclusters", None).await;
    assert_eq!(
        envs,
        json!([{"env": "DEV", "clusters": ["default"]}, {"env": "PRO", "clusters": ["default"]}]),
        "every env served; branches are not listed"
    );
    let fat = admin
        .call("GET", &format!("{}/items/n", ns_path("dto-app", "default", "application").replace(ENV, "FAT")), None)
        .await;
    assert!((400..500).contains(&fat.status), "an env not served: {} {}", fat.status, fat.body);
    let cluster = admin.ok("GET", &format!("/openapi/v1/envs/{ENV}/apps/dto-app/clusters/default"), None).await;
    assert_eq!((&cluster["name"], &cluster["appId"]), (&json!("default"), &json!("dto-app")), "{cluster}");
    let namespace = admin.ok("GET", &format!("{p}?fillItemDetail=true"), None).await;
    assert_eq!(
        (&namespace["namespaceName"], &namespace["format"], &namespace["isPublic"]),
        (&json!("application"), &json!("properties"), &json!(false)),
        "{namespace}"
    );
    let types: Vec<(String, Value)> = namespace["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["key"].as_str().unwrap_or_default().to_string(), i["type"].clone()))
        .collect();
    assert!(types.contains(&("n".into(), json!(1))) && types.contains(&("flag".into(), json!(2))), "{namespace}");
    let listed = admin.ok("GET", ns_path("dto-app", "default", "").trim_end_matches('/'), None).await;
    assert!(listed.as_array().is_some_and(|l| l.iter().any(|n| n["namespaceName"] == "application")), "{listed}");
    let lock = admin.ok("GET", &format!("{p}/lock"), None).await;
    assert_eq!((&lock["namespaceName"], &lock["isLocked"]), (&json!("application"), &json!(false)), "{lock}");
    let item = admin.ok("GET", &format!("{p}/items/n"), None).await;
    let latest = admin.ok("GET", &format!("{p}/releases/latest"), None).await;
    assert_eq!(latest["configurations"], json!({"n": "42", "flag": "true", "s": "text"}), "{latest}");

    for (what, dto) in
        [("apps", &apps), ("namespace", &namespace), ("item", &item), ("release", &latest), ("cluster", &cluster)]
    {
        assert!(no_nulls(dto), "{what}: Gson omits nulls: {dto}");
    }
    for (what, dto) in [("item", &item), ("release", &latest), ("cluster", &cluster), ("app", &apps[0])] {
        for field in ["dataChangeCreatedTime", "dataChangeLastModifiedTime"] {
            assert!(is_gson_date(&dto[field]), "{what}.{field} in Gson's date format: {dto}");
        }
    }
    let served = admin.get("/configs/dto-app/default/application").await;
    assert!(no_nulls(&served.json()), "{}", served.body);
    let missing = admin.call("GET", &ns_path("dto-app", "default", "nope"), None).await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(admin.call("GET", "/openapi/v1/apps/nope-app/envclusters", None).await.status, 404);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_and_releases_lose_nothing() {
    const WRITERS: usize = 20;
    let d = deployment(json!({}));
    let (host, admin) = start(&d).await;
    create_app(&admin, "busy-app").await;
    let p = ns_path("busy-app", "default", "application");
    // Twenty keys of one namespace written at once: every one must survive.
    let writes: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (admin, path) = (admin.clone(), format!("{p}/items/k{i}?createIfNotExists=true"));
            tokio::spawn(async move {
                let body =
                    json!({"key": format!("k{i}"), "value": i.to_string(), "dataChangeLastModifiedBy": "apollo"});
                admin.call("PUT", &path, Some(&body)).await
            })
        })
        .collect();
    for write in writes {
        let answer = write.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let page = admin.ok("GET", &format!("{p}/items?page=0&size=100"), None).await;
    assert_eq!(page["total"], WRITERS, "no lost update: {page}");
    // Releases at once: distinct ids, one history, the last one served.
    let releases: Vec<_> = (0..5)
        .map(|i| {
            let admin = admin.clone();
            tokio::spawn(async move { release(&admin, "busy-app", "application", &format!("r{i}")).await })
        })
        .collect();
    let mut ids = Vec::new();
    for r in releases {
        ids.push(r.await.unwrap()["id"].as_i64().unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "five distinct release ids: {ids:?}");
    let history = admin.ok("GET", "/admin/apps/busy-app/clusters/default/namespaces/application/releases", None).await;
    assert_eq!(history.as_array().map(Vec::len), Some(5), "{history}");
    let served = admin.get("/configs/busy-app/default/application").await.json();
    assert_eq!(served["configurations"].as_object().map(|c| c.len()), Some(WRITERS), "{served}");
    assert_eq!(served["releaseKey"], history[0]["releaseKey"], "the newest release is served");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gray_rule_on_a_public_namespace_matches_the_consuming_app() {
    if !node_client() {
        return;
    }
    let d = deployment(json!({"long_poll_timeout_secs": 2}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    create_app(&admin, "gp-owner").await;
    create_app(&admin, "gp-user").await;
    let public = json!({"name": "common", "appId": "gp-owner", "format": "properties", "isPublic": true,
                        "appendNamespacePrefix": true, "comment": "", "dataChangeCreatedBy": "apollo"});
    admin.ok("POST", "/openapi/v1/apps/gp-owner/appnamespaces", Some(&public)).await;
    add_item(&admin, "gp-owner", "default", "TEST.common", "x", "public").await;
    release(&admin, "gp-owner", "TEST.common", "first").await;

    let scratch = tempfile::tempdir().unwrap();
    let base = format!("http://{addr}{MOUNT}");
    let extra = ["--namespace=TEST.common".to_string(), "--ip=10.2.3.4".to_string()];
    let mut client = Client::node(scratch.path(), &base, "gp-user", &extra);
    let ready = client.wait_for("ready()", |e| is(e, "ready")).await;
    assert_eq!(ready["config"], json!({"x": "public"}));
    client.mark();
    // The rule lives on the owner's namespace and names the consuming app.
    let branch = gray_publish_for(&admin, "gp-owner", "TEST.common", "gp-user", "10.2.3.4", "x", "gray").await;
    let change = client.wait_for("the owner's gray release", |e| is(e, "change")).await;
    assert_eq!(change["newValue"], "gray", "{change}");
    let served = |app: &'static str, ip: &'static str| {
        let admin = admin.clone();
        async move { admin.get(&format!("/configs/{app}/default/TEST.common?ip={ip}")).await.json() }
    };
    assert_eq!(served("gp-user", "10.2.3.4").await["configurations"]["x"], "gray");
    assert_eq!(served("gp-user", "10.9.9.9").await["configurations"]["x"], "public", "another ip");
    assert_eq!(served("gp-owner", "10.2.3.4").await["configurations"]["x"], "public", "another app");

    client.mark();
    let p = ns_path("gp-owner", "default", "TEST.common");
    admin.ok("DELETE", &format!("{p}/branches/{branch}?operator=apollo"), None).await;
    let change = client.wait_for("the public value back", |e| is(e, "change")).await;
    assert_eq!(change["newValue"], "public", "{change}");
    drop(client);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_polls_do_not_hold_up_the_hosts_shutdown() {
    // Stopping a host (SIGTERM, a deploy) must not wait out every client's 60 s hold:
    // Ctrip clients simply poll again, elsewhere. (A 2 s drain keeps the test short.)
    let d = deployment_with(json!({"long_poll_timeout_secs": 60}), json!({"server": {"shutdown_drain_secs": 2}}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    published_app(&admin, "stop-app", &[("k", "v")]).await;
    let first = http(addr, "GET", &v2_target("stop-app", &json!([{"namespaceName": "application"}])), &[], None).await;
    let latest = first.json()[0]["notificationId"].as_i64().unwrap();
    let target = v2_target("stop-app", &json!([{"namespaceName": "application", "notificationId": latest}]));
    let parked = tokio::spawn(async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response).into_owned()
    });
    common::eventually("the poll is parked", WAIT, || async {
        (admin.ok("GET", "/admin/status", None).await["parked_polls"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    let stopping = Instant::now();
    tokio::time::timeout(Duration::from_secs(15), host.shutdown())
        .await
        .expect("the host stops within 15 s although a poll is held for 60 s");
    let answered = tokio::time::timeout(Duration::from_secs(5), parked).await;
    assert!(answered.is_ok(), "the parked poll ends with the host");
    eprintln!("shutdown with a parked poll took {} ms", stopping.elapsed().as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_ids_only_grow_across_a_restart() {
    // Clients keep their ids across a server restart: ids that went back would make
    // `latest > clientId` false, and releases would go unnoticed.
    let d = deployment(json!({"long_poll_timeout_secs": 1}));
    let (host, admin) = start(&d).await;
    published_app(&admin, "restart-app", &[("k", "v1")]).await;
    let poll = |addr: SocketAddr, id: i64| async move {
        let target = v2_target("restart-app", &json!([{"namespaceName": "application", "notificationId": id}]));
        http(addr, "GET", &target, &[], None).await
    };
    let before = poll(host.host.http_addr, -1).await.json()[0]["notificationId"].as_i64().unwrap();
    host.shutdown().await;

    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    let after = poll(addr, -1).await;
    assert_eq!(
        after.json()[0]["notificationId"].as_i64(),
        Some(before),
        "the same id after the restart: {}",
        after.body
    );
    assert_eq!(poll(addr, before).await.status, 304, "a client up to date stays up to date");
    update_item(&admin, "restart-app", "application", "k", "v2").await;
    release(&admin, "restart-app", "application", "after the restart").await;
    let behind = poll(addr, before).await;
    assert_eq!(behind.status, 200, "{}", behind.body);
    assert!(behind.json()[0]["notificationId"].as_i64() > Some(before), "{}", behind.body);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_reload_keeps_clients_served_and_pushed() {
    if !node_client() {
        return;
    }
    // Polls held 20 s: a push that waited for the hold to end would be late.
    let d = deployment(json!({"long_poll_timeout_secs": 20}));
    let (host, admin) = start(&d).await;
    let addr = host.host.http_addr;
    published_app(&admin, "reload-app", &[("k", "v1")]).await;
    let scratch = tempfile::tempdir().unwrap();
    let base = format!("http://{addr}{MOUNT}");
    let mut client = Client::node(scratch.path(), &base, "reload-app", &[]);
    let ready = client.wait_for("ready()", |e| is(e, "ready")).await;
    assert_eq!(ready["config"], json!({"k": "v1"}));
    common::eventually("the client's poll is parked", WAIT, || async {
        (admin.ok("GET", "/admin/status", None).await["parked_polls"].as_u64() >= Some(1)).then_some(())
    })
    .await;

    // A new generation of the module takes over while the client's poll is parked.
    let operator = host.authed().await;
    let reloading = Instant::now();
    let reloaded = operator.send(http::Method::POST, "/api/modules/reload?name=config", None).await.unwrap();
    assert_eq!(reloaded.status, 200, "{:?}", reloaded.json());
    let took = reloading.elapsed();
    let table = reloaded.json();
    let generation = table["modules"].as_array().and_then(|m| m.iter().find(|m| m["name"] == "config")).cloned();
    assert_eq!(generation.map(|m| m["generation"].clone()), Some(json!(2)), "a new generation: {table}");
    assert!(took < Duration::from_secs(10), "the reload waited {took:?} for the parked poll's 20 s hold");
    client.mark();
    let released_at = Instant::now();
    update_item(&admin, "reload-app", "application", "k", "v2").await;
    release(&admin, "reload-app", "application", "after the reload").await;
    let change = client.wait_for("the release after the reload", |e| is(e, "change")).await;
    assert_eq!(change["newValue"], "v2");
    let late = released_at.elapsed();
    assert!(late < Duration::from_secs(10), "pushed {late:?} after the release: the parked poll was not woken");
    drop(client);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gray_delete_release_removes_keys_for_gray_clients_only() {
    // Protocol §4: `POST P/{ns}/branches/{b}/gray-del-releases` with `grayDelKeys`
    // publishes the branch without those keys (deleting a branch item only brings the
    // master's value back).
    let d = deployment(json!({}));
    let (host, admin) = start(&d).await;
    published_app(&admin, "del-app", &[("a", "1"), ("b", "1")]).await;
    let branch = gray_publish(&admin, "del-app", "10.6.6.6", "a", "gray").await;
    let p = ns_path("del-app", "default", "application");
    let body = json!({"releaseTitle": "drop b", "releaseComment": "", "releasedBy": "apollo",
                      "isEmergencyPublish": false, "grayDelKeys": ["b"]});
    let released = admin.call("POST", &format!("{p}/branches/{branch}/gray-del-releases"), Some(&body)).await;
    assert_eq!(released.status, 200, "{}", released.body);
    let gray = admin.get("/configs/del-app/default/application?ip=10.6.6.6").await.json();
    assert_eq!(gray["configurations"], json!({"a": "gray"}), "b is gone for gray clients: {gray}");
    let master = admin.get("/configs/del-app/default/application?ip=10.7.7.7").await.json();
    assert_eq!(master["configurations"], json!({"a": "1", "b": "1"}), "{master}");
    // A master release re-publishes the branch over it: the deletion stays.
    add_item(&admin, "del-app", "default", "application", "c", "1").await;
    release(&admin, "del-app", "application", "second").await;
    let gray = admin.get("/configs/del-app/default/application?ip=10.6.6.6").await.json();
    assert_eq!(gray["configurations"], json!({"a": "gray", "c": "1"}), "{gray}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_a_shared_store_never_hand_out_one_release_id_twice() {
    if !common::components::mongo() {
        return;
    }
    const EACH: usize = 5;
    let mongo = common::mongo::MongoServer::start();
    let shared = |scope: &str| json!({"db": {"mongo": {"url": mongo.url, "name": mongo.database, "scope": scope}}});
    let (one, two) = (deployment_with(json!({}), shared("one")), deployment_with(json!({}), shared("two")));
    let ((host_one, admin_one), (host_two, admin_two)) = (start(&one).await, start(&two).await);
    create_app(&admin_one, "race-app").await;
    common::eventually("host two knows the app", WAIT, || async {
        let envs = admin_two.call("GET", "/openapi/v1/apps/race-app/envclusters", None).await;
        (envs.status == 200).then_some(())
    })
    .await;
    // Both hosts edit one namespace and release it at the same time.
    let mut tasks = Vec::new();
    for (host, admin) in [("one", &admin_one), ("two", &admin_two)] {
        for i in 0..EACH {
            let admin = admin.clone();
            tasks.push(tokio::spawn(async move {
                let p = ns_path("race-app", "default", "application");
                let body = json!({"key": format!("{host}{i}"), "value": "v", "dataChangeLastModifiedBy": "apollo"});
                let key = format!("{host}{i}");
                admin.ok("PUT", &format!("{p}/items/{key}?createIfNotExists=true"), Some(&body)).await;
                release(&admin, "race-app", "application", &format!("{host} {i}")).await["id"].as_i64().unwrap()
            }));
        }
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 2 * EACH, "distinct release ids across hosts: {ids:?}");
    // Each host reads its own replica, which learns the other host's last commits from
    // the change feed a moment later: a lost edit is one that never arrives.
    let newest = *ids.last().unwrap();
    let items_path = format!("{}/items?size=100", ns_path("race-app", "default", "application"));
    for admin in [&admin_one, &admin_two] {
        common::eventually("both hosts hold every edit and serve the newest release", WAIT, || async {
            let items = admin.ok("GET", &items_path, None).await;
            let history =
                admin.ok("GET", "/admin/apps/race-app/clusters/default/namespaces/application/releases", None).await;
            let releases = history.as_array().map(Vec::len);
            (items["total"] == 2 * EACH && history[0]["id"] == newest && releases == Some(2 * EACH)).then_some(())
        })
        .await;
    }
    host_one.shutdown().await;
    host_two.shutdown().await;
}
