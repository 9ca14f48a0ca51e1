//! The module on a `TestHost`: the Consul API end to end in memory (registration
//! spellings, check ids, health filtering, TTL expiry, KV with cas, blocking queries
//! woken by a change, ACL for remote peers, the host's own services).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use plugin_api::testing::{self, TestHost, TestModule, TestRequest};
use plugin_api::{Event, Response, ServiceInfo};
use serde_json::{Value, json};

use crate::Catalog;

fn body(response: &Response) -> Value {
    serde_json::from_slice(&response.body).unwrap_or(Value::Null)
}

fn text(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

async fn start(host: &TestHost, config: Value) -> TestModule<Catalog> {
    let mut config = config;
    if config.is_null() {
        config = json!({});
    }
    config["node_name"] = json!("node-a");
    let catalog = host.start::<Catalog>(config).unwrap();
    // The first load happens in the background: the first request waits for it.
    assert_eq!(catalog.call(TestRequest::get("/v1/status/leader")).await.status, 200);
    catalog
}

#[test]
fn a_registration_reads_back_with_consuls_shapes_and_check_ids() {
    testing::run(async {
        let host = TestHost::new();
        let c = start(&host, Value::Null).await;
        let py = json!({"name": "web", "id": "web-1", "port": 8080, "address": "10.0.0.5", "tags": ["v1"],
            "checks": [{"ttl": "10s"}, {"ttl": "20s", "check_id": "extra"}, {"ttl": "30s"}]});
        let put = c.call(TestRequest::put("/v1/agent/service/register").json(&py)).await;
        assert_eq!((put.status, put.body.len()), (200, 0), "{}", text(&put));
        assert!(header(&put, "content-type").is_none(), "writes answer an empty body");

        let services = body(&c.call(TestRequest::get("/v1/agent/services")).await);
        let web = &services["web-1"];
        assert_eq!(web["Service"], "web");
        assert_eq!((web["Address"].as_str(), web["Port"].as_u64()), (Some("10.0.0.5"), Some(8080)));
        assert_eq!(web["Weights"], json!({"Passing": 1, "Warning": 1}));
        assert_eq!(web["Meta"], json!({}));
        let checks = body(&c.call(TestRequest::get("/v1/agent/checks")).await);
        let ids: Vec<&str> = checks.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(ids, ["extra", "service:web-1:1", "service:web-1:3"]);
        assert_eq!(checks["service:web-1:1"]["Status"], "critical");
        assert_eq!(checks["service:web-1:1"]["ServiceTags"], json!(["v1"]));
        assert_eq!(checks["service:web-1:1"]["Type"], "ttl");

        let health = c.call(TestRequest::get("/v1/health/service/web")).await;
        let index: u64 = header(&health, "x-consul-index").unwrap().parse().unwrap();
        assert!(index >= 1);
        let entries = body(&health);
        assert_eq!(entries[0]["Checks"][0]["CheckID"], "serfHealth");
        assert_eq!(entries[0]["Node"]["Node"], "node-a");
        let passing = body(&c.call(TestRequest::get("/v1/health/service/web?passing")).await);
        assert_eq!(passing, json!([]), "a critical check drops the instance");
        for id in ["service:web-1:1", "extra", "service:web-1:3"] {
            let pass = c.call(TestRequest::put(&format!("/v1/agent/check/pass/{id}?note=ok"))).await;
            assert_eq!(pass.status, 200, "{}", text(&pass));
        }
        let passing = body(&c.call(TestRequest::get("/v1/health/service/web?passing=true")).await);
        assert_eq!(passing[0]["Service"]["ID"], "web-1");
        assert_eq!(body(&c.call(TestRequest::get("/v1/health/service/web?tag=v2")).await), json!([]));
        assert_eq!(body(&c.call(TestRequest::get("/v1/catalog/services")).await), json!({"web": ["v1"]}));
        assert_eq!(body(&c.call(TestRequest::get("/v1/catalog/service/nope")).await), json!([]));
        let cat = body(&c.call(TestRequest::get("/v1/catalog/service/web")).await);
        assert_eq!((cat[0]["ServiceID"].as_str(), cat[0]["ServicePort"].as_u64()), (Some("web-1"), Some(8080)));

        let filtered = body(&c.call(TestRequest::get("/v1/agent/services?filter=Service%20%3D%3D%20%22nope%22")).await);
        assert_eq!(filtered, json!({}), "?filter= keeps only what matches");
        let filtered = body(&c.call(TestRequest::get("/v1/agent/checks?filter=CheckID%20%3D%3D%20%22extra%22")).await);
        assert_eq!(filtered.as_object().unwrap().keys().collect::<Vec<_>>(), ["extra"]);
        let tagged =
            body(&c.call(TestRequest::get("/v1/health/service/web?filter=%22v1%22%20in%20Service.Tags")).await);
        assert_eq!(tagged.as_array().unwrap().len(), 1);
        let bad = c.call(TestRequest::get("/v1/agent/services?filter=Service%20%3D")).await;
        assert_eq!(bad.status, 400);
        let gone = c.call(TestRequest::put("/v1/agent/service/deregister/web-1")).await;
        assert_eq!(gone.status, 200);
        assert_eq!(body(&c.call(TestRequest::get("/v1/agent/checks")).await), json!({}), "its checks go too");
        let unknown = c.call(TestRequest::put("/v1/agent/service/deregister/web-1")).await;
        assert_eq!(unknown.status, 404);
        assert_eq!(
            text(&unknown),
            "Unknown service ID \"web-1\". Ensure that the service ID is passed, not the service name."
        );
        assert_eq!(header(&unknown, "content-type"), Some("text/plain; charset=utf-8"));
    })
}

#[test]
fn bad_input_gets_consuls_status_and_text() {
    testing::run(async {
        let host = TestHost::new();
        let c = start(&host, Value::Null).await;
        let bad = c.call(TestRequest::put("/v1/agent/service/register").body("{nope")).await;
        assert_eq!(bad.status, 400);
        assert!(text(&bad).starts_with("Request decode failed"), "{}", text(&bad));
        let nameless = c.call(TestRequest::put("/v1/agent/service/register").json(&json!({"Port": 1}))).await;
        assert_eq!((nameless.status, text(&nameless).as_str()), (400, "Missing service name"));
        let bad_ttl = json!({"Name": "x", "Check": {"TTL": "10"}});
        let r = c.call(TestRequest::put("/v1/agent/service/register").json(&bad_ttl)).await;
        assert_eq!(r.status, 400);
        assert!(text(&r).contains("invalid duration \"10\""), "{}", text(&r));
        let script = json!({"Name": "x", "Check": {"Args": ["/bin/touch", "/tmp/pwned"], "Interval": "1s"}});
        let r = c.call(TestRequest::put("/v1/agent/service/register").json(&script)).await;
        assert_eq!(r.status, 400, "script checks are off by default");
        assert_eq!(c.call(TestRequest::get("/v1/kv/a?index=x")).await.status, 400);
        let r = c.call(TestRequest::get("/v1/health/service/x?index=1&wait=5")).await;
        assert_eq!(r.status, 400);
        assert!(text(&r).starts_with("Invalid wait time"));
        let r = c.call(TestRequest::put("/v1/agent/check/pass/nope")).await;
        assert_eq!(r.status, 404);
        let manual = json!({"Name": "m", "TTL": "10s"});
        assert_eq!(c.call(TestRequest::put("/v1/agent/check/register").json(&manual)).await.status, 200);
        let r = c.call(TestRequest::put("/v1/agent/check/update/m").json(&json!({"Status": "fine"}))).await;
        assert_eq!((r.status, text(&r).as_str()), (400, "Invalid check status: 'fine'"));
        let orphan = json!({"Name": "o", "TTL": "10s", "ServiceID": "ghost"});
        let r = c.call(TestRequest::put("/v1/agent/check/register").json(&orphan)).await;
        assert_eq!((r.status, text(&r).as_str()), (404, "ServiceID \"ghost\" does not exist"));
    })
}

#[test]
fn a_ttl_check_expires_on_time() {
    testing::run(async {
        let host = TestHost::new();
        let c = start(&host, Value::Null).await;
        let reg = json!({"name": "t", "checks": [{"ttl": "100ms"}]});
        assert_eq!(c.call(TestRequest::put("/v1/agent/service/register").json(&reg)).await.status, 200);
        assert_eq!(c.call(TestRequest::put("/v1/agent/check/pass/service:t?note=alive")).await.status, 200);
        async fn status(c: &TestModule<Catalog>) -> Value {
            body(&c.call(TestRequest::get("/v1/agent/checks")).await)["service:t"].clone()
        }
        assert_eq!(status(&c).await["Status"], "passing");
        plugin_api::tokio::time::sleep(Duration::from_millis(120)).await;
        let check = status(&c).await;
        assert_eq!(check["Status"], "critical", "{check}");
        assert_eq!(check["Output"], "TTL expired (last output before timeout follows): alive");
    })
}

#[test]
fn kv_with_cas_flags_recurse_and_keys() {
    testing::run(async {
        let host = TestHost::new();
        let c = start(&host, Value::Null).await;
        let missing = c.call(TestRequest::get("/v1/kv/app/x")).await;
        assert_eq!(missing.status, 404);
        assert!(header(&missing, "x-consul-index").is_some_and(|i| i != "0"), "a 404 still carries the index");
        let put = c.call(TestRequest::put("/v1/kv/app/x?flags=42").body("hello")).await;
        assert_eq!(body(&put), json!(true));
        let got = body(&c.call(TestRequest::get("/v1/kv/app/x")).await);
        assert_eq!(got[0]["Value"], "aGVsbG8=");
        assert_eq!(got[0]["Flags"], 42);
        let modify = got[0]["ModifyIndex"].as_u64().unwrap();
        assert_eq!(body(&c.call(TestRequest::put("/v1/kv/app/x?cas=0").body("no")).await), json!(false));
        let stale = format!("/v1/kv/app/x?cas={}", modify + 100);
        assert_eq!(body(&c.call(TestRequest::put(&stale).body("no")).await), json!(false));
        let fresh = format!("/v1/kv/app/x?cas={modify}");
        assert_eq!(body(&c.call(TestRequest::put(&fresh).body("yes")).await), json!(true));
        let raw = c.call(TestRequest::get("/v1/kv/app/x?raw")).await;
        assert_eq!(raw.body, b"yes");
        c.call(TestRequest::put("/v1/kv/app/sub/y").body("")).await;
        c.call(TestRequest::put("/v1/kv/other").body("z")).await;
        let listed = body(&c.call(TestRequest::get("/v1/kv/app/?recurse")).await);
        assert_eq!(listed.as_array().unwrap().len(), 2);
        assert_eq!(listed[0]["Key"], "app/sub/y", "sorted by key");
        assert_eq!(listed[0]["Value"], Value::Null, "an empty value is null");
        let keys = body(&c.call(TestRequest::get("/v1/kv/?keys&separator=/")).await);
        assert_eq!(keys, json!(["app/", "other"]));
        assert_eq!(body(&c.call(TestRequest::delete("/v1/kv/app?recurse")).await), json!(true));
        assert_eq!(body(&c.call(TestRequest::get("/v1/kv/?keys")).await), json!(["other"]));
    })
}

#[test]
fn a_blocking_query_wakes_on_a_change_and_returns_by_its_wait() {
    testing::run(async {
        let host = TestHost::new();
        let c = std::sync::Arc::new(start(&host, Value::Null).await);
        let first = c.call(TestRequest::get("/v1/health/service/api")).await;
        let index: u64 = header(&first, "x-consul-index").unwrap().parse().unwrap();

        // Nothing changes: answered after wait (+ at most wait/16) with the same index.
        let started = Instant::now();
        let idle = c.call(TestRequest::get(&format!("/v1/health/service/api?index={index}&wait=320ms"))).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(320) && took < Duration::from_millis(320 + 20 + 100), "{took:?}");
        assert_eq!(header(&idle, "x-consul-index").unwrap(), index.to_string());

        let waiting = {
            let c = std::sync::Arc::clone(&c);
            plugin_api::tokio::spawn(async move {
                let started = Instant::now();
                let r = c.call(TestRequest::get(&format!("/v1/health/service/api?index={index}&wait=30s"))).await;
                (r, started.elapsed())
            })
        };
        plugin_api::tokio::time::sleep(Duration::from_millis(50)).await;
        // A change to another service does not wake it.
        c.call(TestRequest::put("/v1/agent/service/register").json(&json!({"Name": "other"}))).await;
        c.call(TestRequest::put("/v1/agent/service/register").json(&json!({"Name": "api", "Port": 1}))).await;
        let (r, took) = waiting.await.unwrap();
        assert!(took < Duration::from_secs(5), "woken by the registration, {took:?}");
        let new_index: u64 = header(&r, "x-consul-index").unwrap().parse().unwrap();
        assert!(new_index > index);
        assert_eq!(body(&r)[0]["Service"]["Service"], "api");
    })
}

#[test]
fn agent_self_has_the_keys_clients_check_and_status_endpoints_answer() {
    testing::run(async {
        let host = TestHost::new();
        let c = start(&host, Value::Null).await;
        let me = body(&c.call(TestRequest::get("/v1/agent/self")).await);
        let mut keys: Vec<&str> = me.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["Config", "Coord", "DebugConfig", "Member", "Meta", "Stats", "xDS"]);
        assert_eq!(me["Config"]["NodeName"], "node-a");
        assert_eq!(me["Config"]["Revision"], "apollo");
        assert_eq!(body(&c.call(TestRequest::get("/v1/status/leader")).await), json!("127.0.0.1:8300"));
        assert_eq!(body(&c.call(TestRequest::get("/v1/catalog/datacenters")).await), json!(["dc1"]));
        let members = body(&c.call(TestRequest::get("/v1/agent/members")).await);
        assert_eq!(members[0]["Name"], "node-a");
    })
}

#[test]
fn remote_writes_need_a_token_the_operator_made() {
    testing::run(async {
        let host = TestHost::new();
        let c = start(&host, json!({"acl": {"default_read": "deny"}})).await;
        let remote: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let reg = json!({"Name": "x"});
        let r = c.call(TestRequest::put("/v1/agent/service/register").json(&reg).public_from(remote)).await;
        assert_eq!(r.status, 403);
        assert_eq!(c.call(TestRequest::get("/v1/agent/services").public_from(remote)).await.status, 403);
        let r =
            c.call(TestRequest::get("/v1/agent/services").header("X-Consul-Token", "bogus").public_from(remote)).await;
        assert_eq!((r.status, text(&r).as_str()), (403, "ACL not found"));
        let r = c
            .call(
                TestRequest::get("/v1/agent/services").header("Authorization", "Bearer host-token").public_from(remote),
            )
            .await;
        assert_eq!(r.status, 403, "an unknown bearer is no token: reads are denied here");
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let r = c
            .call(
                TestRequest::get("/v1/agent/services").header("Authorization", "Bearer host-token").public_from(local),
            )
            .await;
        assert_eq!(r.status, 200, "an unknown bearer is not refused as an unknown Consul token");
        let r =
            c.call(TestRequest::put("/v1/agent/service/register").json(&json!({"Name": "op"})).from_peer(remote)).await;
        assert_eq!(r.status, 200, "the host's operator (its token over TCP) may write from anywhere: {}", text(&r));
        let made = body(&c.call(TestRequest::post("/admin/tokens").json(&json!({"rights": "write"}))).await);
        let secret = made["SecretID"].as_str().unwrap();
        let r = c
            .call(
                TestRequest::put("/v1/agent/service/register")
                    .json(&reg)
                    .header("X-Consul-Token", secret)
                    .public_from(remote),
            )
            .await;
        assert_eq!(r.status, 200, "{}", text(&r));
        let reader = body(&c.call(TestRequest::post("/admin/tokens").json(&json!({"rights": "read"}))).await);
        let read_secret = reader["SecretID"].as_str().unwrap();
        let target = format!("/v1/agent/services?token={read_secret}");
        assert_eq!(c.call(TestRequest::get(&target).public_from(remote)).await.status, 200);
        let target = format!("/v1/agent/service/deregister/x?token={read_secret}");
        assert_eq!(c.call(TestRequest::put(&target).public_from(remote)).await.status, 403);
        let listed = body(&c.call(TestRequest::get("/admin/tokens")).await);
        assert_eq!(listed.as_array().unwrap().len(), 2);
        assert!(listed.to_string().find(secret).is_none(), "no secrets listed");
    })
}

#[test]
fn the_hosts_services_appear_with_the_supervisors_status() {
    testing::run(async {
        let host = TestHost::new();
        host.set_services(vec![ServiceInfo {
            name: "shop".into(),
            state: "running".into(),
            mode: "supervised".into(),
            ports: vec![7070],
            ..Default::default()
        }]);
        let c = start(&host, Value::Null).await;
        async fn health(c: &TestModule<Catalog>) -> Value {
            body(&c.call(TestRequest::get("/v1/health/service/shop")).await)
        }
        for _ in 0..100 {
            if health(&c).await.as_array().is_some_and(|a| !a.is_empty()) {
                break;
            }
            plugin_api::tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let entries = health(&c).await;
        assert_eq!(entries[0]["Service"]["ID"], "apollo-shop");
        assert_eq!(entries[0]["Service"]["Port"], 7070);
        assert_eq!(entries[0]["Checks"][1]["Status"], "passing");
        host.set_services(vec![ServiceInfo {
            name: "shop".into(),
            state: "errored".into(),
            mode: "supervised".into(),
            ports: vec![7070],
            ..Default::default()
        }]);
        host.send_event(Event::ServiceState {
            name: "shop".into(),
            state: "errored".into(),
            pid: None,
            message: String::new(),
        });
        let mut status = Value::Null;
        for _ in 0..100 {
            status = health(&c).await[0]["Checks"][1]["Status"].clone();
            if status == "critical" {
                break;
            }
            plugin_api::tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(status, "critical");
    })
}

#[test]
fn maintenance_and_local_health_follow_consul() {
    testing::run(async {
        let host = TestHost::new();
        let c = start(&host, Value::Null).await;
        let reg = json!({"Name": "api", "ID": "api-1", "Check": {"TTL": "30s", "Status": "passing"}});
        assert_eq!(c.call(TestRequest::put("/v1/agent/service/register").json(&reg)).await.status, 200);
        let ok = c.call(TestRequest::get("/v1/agent/health/service/id/api-1")).await;
        assert_eq!((ok.status, body(&ok)["AggregatedStatus"].as_str()), (200, Some("passing")));
        let r = c.call(TestRequest::put("/v1/agent/service/maintenance/api-1?enable=true&reason=deploying")).await;
        assert_eq!(r.status, 200);
        let checks = body(&c.call(TestRequest::get("/v1/agent/checks")).await);
        assert_eq!(checks["_service_maintenance:api-1"]["Notes"], "deploying");
        let down = c.call(TestRequest::get("/v1/agent/health/service/name/api?format=text")).await;
        assert_eq!((down.status, text(&down).as_str()), (503, "critical"));
        assert_eq!(body(&c.call(TestRequest::get("/v1/health/service/api?passing")).await), json!([]));
        let critical = body(&c.call(TestRequest::get("/v1/health/state/critical")).await);
        assert!(critical.as_array().unwrap().iter().any(|c| c["CheckID"] == "_service_maintenance:api-1"));
        c.call(TestRequest::put("/v1/agent/service/maintenance/api-1?enable=false")).await;
        c.call(TestRequest::put("/v1/agent/maintenance?enable=true")).await;
        let node_checks = body(&c.call(TestRequest::get("/v1/health/node/node-a")).await);
        assert_eq!(node_checks[1]["CheckID"], "_node_maintenance");
        c.call(TestRequest::put("/v1/agent/maintenance?enable=false")).await;
        let ok = c.call(TestRequest::get("/v1/agent/health/service/name/api")).await;
        assert_eq!(ok.status, 200, "{}", text(&ok));
        assert_eq!(c.call(TestRequest::put("/v1/agent/maintenance")).await.status, 400, "enable is required");
        let unknown = c.call(TestRequest::get("/v1/agent/health/service/id/nope")).await;
        assert_eq!(unknown.status, 404);
        assert_eq!(c.call(TestRequest::get("/v1/health/state/sideways")).await.status, 400);
    })
}

#[test]
fn a_node_that_stops_heart_beating_goes_critical_then_away() {
    testing::run(async {
        // Two nodes on one storage: what two hosts on one MongoDB share.
        let host = TestHost::new();
        let fast = |node: &str| {
            json!({"node_name": node, "heartbeat_interval": "100ms", "node_critical_after": "400ms",
                   "node_remove_after": "1s"})
        };
        let a = host.start::<Catalog>(fast("node-a")).unwrap();
        let b = host.start::<Catalog>(fast("node-b")).unwrap();
        let reg = json!({"Name": "svc", "ID": "on-b", "Check": {"TTL": "1h", "Status": "passing"}});
        assert_eq!(b.call(TestRequest::put("/v1/agent/service/register").json(&reg)).await.status, 200);
        async fn passing(c: &TestModule<Catalog>) -> usize {
            body(&c.call(TestRequest::get("/v1/health/service/svc?passing")).await).as_array().map_or(0, Vec::len)
        }
        let mut seen = false;
        for _ in 0..100 {
            if passing(&a).await == 1 {
                seen = true;
                break;
            }
            plugin_api::tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(seen, "node-a sees node-b's passing instance");
        // node-b goes away (its module stops heart-beating).
        plugin_api::Module::shutdown(b.module().as_ref());
        let stopped = Instant::now();
        let mut serf = Value::Null;
        while stopped.elapsed() < Duration::from_secs(3) {
            let all = body(&a.call(TestRequest::get("/v1/health/service/svc")).await);
            serf = all[0]["Checks"][0].clone();
            if serf["Status"] == "critical" {
                break;
            }
            plugin_api::tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(serf["CheckID"], "serfHealth");
        assert_eq!(serf["Status"], "critical", "{serf}");
        assert_eq!(passing(&a).await, 0, "?passing drops the silent node's instances");
        let mut gone = false;
        while stopped.elapsed() < Duration::from_secs(5) {
            if body(&a.call(TestRequest::get("/v1/health/service/svc")).await) == json!([]) {
                gone = true;
                break;
            }
            plugin_api::tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "removed past node_remove_after");
        let nodes = body(&a.call(TestRequest::get("/v1/catalog/nodes")).await);
        assert_eq!(nodes.as_array().unwrap().len(), 1, "{nodes}");
    })
}

#[test]
fn a_newer_instance_on_the_same_node_takes_its_checks_over() {
    testing::run(async {
        // A reloaded generation (or a second host given the same node_name).
        let host = TestHost::new();
        let old = start(&host, Value::Null).await;
        let reg = json!({"Name": "t", "Check": {"TTL": "150ms", "Status": "passing"}});
        assert_eq!(old.call(TestRequest::put("/v1/agent/service/register").json(&reg)).await.status, 200);
        let new = start(&host, Value::Null).await;
        let mut owners = 0;
        for _ in 0..100 {
            let (a, b) = (old.module().replica.owns("node-a"), new.module().replica.owns("node-a"));
            owners = usize::from(a) + usize::from(b);
            if b && !a {
                break;
            }
            plugin_api::tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(new.module().replica.owns("node-a") && !old.module().replica.owns("node-a"), "{owners} owners");
        // The new owner runs the TTL check: it expires.
        let mut status = Value::Null;
        for _ in 0..100 {
            status = body(&new.call(TestRequest::get("/v1/agent/checks")).await)["service:t"]["Status"].clone();
            if status == "critical" {
                break;
            }
            plugin_api::tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(status, "critical");
        assert!(host.logs().iter().any(|(_, line)| line.contains("was taken over")), "the old one says so");
    })
}
