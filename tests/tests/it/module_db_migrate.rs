//! module-db-migrate end to end: the real `.so` in the real host (on SQLite), a
//! populated store copied to a MongoDB-wire server (nx-27017, or APOLLO_TEST_MONGO_URL)
//! and back into a SQLite file with every record intact; an interrupted copy resumed;
//! migrations of fresh SQLite and MongoDB stores (status, dry run, up); archives
//! exported, checked and imported, a tampered one refused whole.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use apollo_host::cli::{ApiClient, ClientError};
use common::mongo::MongoServer;
use common::{Deployment, TestHost, eventually, model};
use serde_json::{Value, json};

const BASE: &str = "/api/module/db-migrate";

/// A host with the module and a populated store: models, a running service's
/// runtime record, a login token, settings, audit entries, task runs, an alarm.
async fn populated_host() -> (Deployment, TestHost) {
    let d = Deployment::with(json!({"modules": {"dir": "modules"}}));
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(common::module_library("module-db-migrate"), d.root().join("modules/db-migrate.so")).unwrap();
    let mut sleeper = model("sleeper", "app_sleeper", &[]);
    sleeper["run_data"]["command"] = json!(["/bin/sleep", "1000"]);
    d.write_model("sleeper.pig", &sleeper);
    let mut crasher = model("crasher", "app_crasher", &[]);
    crasher["run_data"]["command"] = json!(["/bin/sh", "-c", "exit 3"]);
    crasher["supervise"] = json!({"backoff_initial_ms": 50, "min_uptime_ms": 5000, "max_restarts": 1});
    d.write_model("crasher.pig", &crasher);
    let host = d.start().await;
    let client = host.uds();
    let _: Value = client.post("/api/apps/sleeper/start", None).await.unwrap();
    let _: Value = client.post("/api/apps/crasher/start", None).await.unwrap();
    let _token = host.login().await;
    let tasks: Value = client.get("/api/tasks").await.unwrap();
    let first = tasks["tasks"][0]["id"].as_str().or(tasks[0]["id"].as_str()).map(str::to_string);
    if let Some(id) = first {
        let _: Result<Value, _> = client.post(&format!("/api/tasks/{id}/run"), None).await;
    }
    eventually("an alarm and a running service", Duration::from_secs(30), || async {
        let alarms: Value = client.get("/api/alarms").await.ok()?;
        let status: Value = client.get("/api/apps/sleeper/status").await.ok()?;
        let any_alarm = alarms["alarms"].as_array().or(alarms.as_array()).is_some_and(|a| !a.is_empty());
        (any_alarm && status["state"] == "running").then_some(())
    })
    .await;
    (d, host)
}

async fn wait_copy(client: &ApiClient) -> Value {
    eventually("the copy job to finish", Duration::from_secs(120), || async {
        let copy: Value = client.get(&format!("{BASE}/copy")).await.ok()?;
        let state = copy["copy"]["state"].as_str()?.to_string();
        (!matches!(state.as_str(), "running" | "verifying")).then_some(copy["copy"].clone())
    })
    .await
}

async fn api_error(client: &ApiClient, path: &str, body: &Value) -> (u16, String) {
    match client.post::<Value>(path, Some(body)).await {
        Err(ClientError::Api { status, message, .. }) => (status, message),
        other => panic!("{path}: expected an API error, got {other:?}"),
    }
}

/// An archive's records by collection, keyed by their JSON (order-free comparison).
fn records(archive: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (name, section) in archive["collections"].as_object().unwrap() {
        let mut list: Vec<String> = section["records"].as_array().unwrap().iter().map(Value::to_string).collect();
        list.sort();
        out.insert(name.clone(), list);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_sqlite_to_mongodb_and_back_keeps_every_record() {
    if !common::components::mongo() {
        return;
    }
    let mongo = MongoServer::start();
    let (_d, host) = populated_host().await;
    let client = host.uds();
    let mongo_target = json!({"mongo": {"url": mongo.url, "name": mongo.database}});

    let started: Value = client
        .post(&format!("{BASE}/copy"), Some(&json!({"from": "active", "to": mongo_target, "page_size": 7})))
        .await
        .unwrap();
    assert_eq!(started["state"], "running", "{started:#}");
    let there = wait_copy(&client).await;
    assert_eq!(there["state"], "done", "{there:#}");
    for c in there["collections"].as_array().unwrap() {
        assert_eq!(c["verified"], true, "{c}");
    }
    let counts = |copy: &Value| -> BTreeMap<String, u64> {
        copy["collections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().into(), c["copied"].as_u64().unwrap()))
            .collect()
    };
    let copied = counts(&there);
    for populated in ["models", "runtime", "tokens", "settings", "audit", "alarms"] {
        assert!(copied[populated] > 0, "{populated} copied nothing: {there:#}");
    }

    let back: Value = client
        .post(&format!("{BASE}/copy"), Some(&json!({"from": mongo_target, "to": {"sqlite": "roundtrip.db"}})))
        .await
        .unwrap();
    assert_eq!(back["from"], format!("mongo:{}/{}", mongo.url.trim_start_matches("mongodb://"), mongo.database));
    let back = wait_copy(&client).await;
    assert_eq!(back["state"], "done", "{back:#}");

    // Every record of the host's store is in the round-tripped file, unchanged. The
    // host kept working meanwhile: later audit entries, and this module's own
    // checkpoint (cleared when a copy is done), are the only differences allowed.
    let original: Value = client.get(&format!("{BASE}/export")).await.unwrap();
    let round: Value =
        client.post(&format!("{BASE}/export"), Some(&json!({"target": {"sqlite": "roundtrip.db"}}))).await.unwrap();
    let (original, round) = (records(&original), records(&round));
    for (name, list) in &original {
        match name.as_str() {
            "audit" => {
                let max_id = round[name]
                    .iter()
                    .map(|r| serde_json::from_str::<Value>(r).unwrap()["id"].as_i64().unwrap())
                    .max()
                    .unwrap();
                let expected: Vec<&String> = list
                    .iter()
                    .filter(|r| serde_json::from_str::<Value>(r).unwrap()["id"].as_i64().unwrap() <= max_id)
                    .collect();
                assert_eq!(expected, round[name].iter().collect::<Vec<_>>(), "audit entries up to id {max_id}");
            }
            // The module's own checkpoint: its key and its head revision moved on.
            "module_data" | "module_heads" => {
                let other =
                    |l: &Vec<String>| l.iter().filter(|r| !r.contains("\"db-migrate\"")).cloned().collect::<Vec<_>>();
                assert_eq!(other(list), other(&round[name]));
            }
            _ => assert_eq!(list, &round[name], "collection {name} differs after SQLite -> MongoDB -> SQLite"),
        }
    }
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_copy_resumes_where_it_stopped() {
    let (_d, host) = populated_host().await;
    let client = host.uds();
    let plan = json!({"from": "active", "to": {"sqlite": "resume.db"}, "page_size": 2, "max_pages": 3});
    let _: Value = client.post(&format!("{BASE}/copy"), Some(&plan)).await.unwrap();
    let paused = wait_copy(&client).await;
    assert_eq!(paused["state"], "paused", "{paused:#}");
    assert_eq!(paused["pages"], 3);
    let status: Value = client.get(&format!("{BASE}/copy")).await.unwrap();
    assert_eq!(status["checkpoint"]["to"], "sqlite:resume.db", "{status:#}");

    // Resuming needs the same stores.
    let (code, message) =
        api_error(&client, &format!("{BASE}/copy"), &json!({"to": {"sqlite": "other.db"}, "resume": true})).await;
    assert_eq!(code, 400);
    assert!(message.contains("sqlite:resume.db"), "{message}");

    let resume = json!({"from": "active", "to": {"sqlite": "resume.db"}, "page_size": 2, "resume": true});
    let started: Value = client.post(&format!("{BASE}/copy"), Some(&resume)).await.unwrap();
    assert_eq!(started["resumed"], true);
    // The pages written before the interruption count: they are not copied again.
    let before: u64 = paused["collections"].as_array().unwrap().iter().map(|c| c["copied"].as_u64().unwrap()).sum();
    assert_eq!(
        started["collections"].as_array().unwrap().iter().map(|c| c["copied"].as_u64().unwrap()).sum::<u64>(),
        before
    );
    let done = wait_copy(&client).await;
    assert_eq!(done["state"], "done", "{done:#}");
    assert!(done["collections"].as_array().unwrap().iter().all(|c| c["verified"] == true), "{done:#}");
    let status: Value = client.get(&format!("{BASE}/copy")).await.unwrap();
    assert_eq!(status["checkpoint"], Value::Null, "nothing left to resume");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_status_dry_run_and_up_on_sqlite_and_mongodb() {
    if !common::components::mongo() {
        return;
    }
    let mongo = MongoServer::start();
    let (_d, host) = populated_host().await;
    let client = host.uds();

    let active: Value = client.get(&format!("{BASE}/migrations")).await.unwrap();
    assert_eq!((active["backend"].as_str(), active["pending"].as_u64()), (Some("sqlite"), Some(0)), "{active:#}");
    let latest = active["latest"].as_u64().unwrap();

    for (target, backend) in [
        (json!({"sqlite": "fresh.db"}), "sqlite"),
        (json!({"mongo": {"url": mongo.url, "name": format!("{}_fresh", mongo.database)}}), "mongodb"),
    ] {
        let status: Value = client.post(&format!("{BASE}/migrations"), Some(&json!({"target": target}))).await.unwrap();
        assert_eq!(status["backend"], backend);
        assert_eq!(status["version"], 0, "{status:#}");
        if backend == "sqlite" {
            assert_eq!(status["exists"], false, "looking does not create it: {status:#}");
        }
        let pending = status["pending"].as_u64().unwrap();
        assert!(pending >= 1 && status["steps"].as_array().unwrap().iter().all(|s| s["applied"] == false));

        let dry: Value = client
            .post(&format!("{BASE}/migrations/up"), Some(&json!({"target": target, "dry_run": true})))
            .await
            .unwrap();
        let would = dry["would_apply"].as_array().unwrap();
        assert_eq!(would.len() as u64, pending, "{dry:#}");
        let statements = would[0]["statements"].as_str().unwrap();
        assert!(statements.contains("CREATE TABLE") || statements.contains("createIndex"), "{statements}");
        let still: Value = client.post(&format!("{BASE}/migrations"), Some(&json!({"target": target}))).await.unwrap();
        assert_eq!(still["version"], 0, "a dry run changes nothing");

        let up: Value = client.post(&format!("{BASE}/migrations/up"), Some(&json!({"target": target}))).await.unwrap();
        assert_eq!(up["applied"].as_array().unwrap().len() as u64, pending, "{up:#}");
        let again: Value =
            client.post(&format!("{BASE}/migrations/up"), Some(&json!({"target": target}))).await.unwrap();
        assert_eq!(again["applied"], json!([]));
        if backend == "sqlite" {
            assert_eq!(again["version"].as_u64(), Some(latest));
        }
    }

    for bad in ["../escape.db", "/tmp/abs.db"] {
        let (code, message) =
            api_error(&client, &format!("{BASE}/migrations"), &json!({"target": {"sqlite": bad}})).await;
        assert_eq!(code, 400, "{bad}: {message}");
        assert!(message.contains("relative path"), "{message}");
    }

    // A MongoDB that does not answer: 503 naming it, within a few seconds, no password echoed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead =
        json!({"target": {"mongo": {"url": format!("127.0.0.1:{port}"), "user": "u", "pass_wd": "hunter2-secret"}}});
    let (code, message) = api_error(&client, &format!("{BASE}/migrations"), &dead).await;
    assert_eq!(code, 503, "{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}/apollo")) && !message.contains("hunter2"), "{message}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_are_checked_whole_before_import() {
    let (_d, host) = populated_host().await;
    let client = host.uds();
    let archive: Value = client.get(&format!("{BASE}/export")).await.unwrap();
    assert_eq!(archive["format"], "apollo-store-archive");
    assert!(archive["collections"]["models"]["count"].as_u64().unwrap() >= 2);

    let mut tampered = archive.clone();
    tampered["collections"]["models"]["records"][0]["hash"] = json!("edited");
    let target = json!({"sqlite": "imported.db"});
    let (code, message) =
        api_error(&client, &format!("{BASE}/import"), &json!({"target": target, "archive": tampered})).await;
    assert_eq!(code, 400);
    assert!(message.contains("models") && message.contains("checksum"), "{message}");
    // Nothing written from a refused archive: the target was not even created.
    let (code, message) = api_error(&client, &format!("{BASE}/export"), &json!({"target": target})).await;
    assert_eq!(code, 404, "{message}");

    let dry: Value = client
        .post(&format!("{BASE}/import"), Some(&json!({"target": target, "archive": archive, "dry_run": true})))
        .await
        .unwrap();
    assert_eq!(dry["collections"]["models"]["written"], 0);
    let report: Value =
        client.post(&format!("{BASE}/import"), Some(&json!({"target": target, "archive": archive}))).await.unwrap();
    assert_eq!(report["verified"], true);
    let imported: Value = client.post(&format!("{BASE}/export"), Some(&json!({"target": target}))).await.unwrap();
    for (name, section) in archive["collections"].as_object().unwrap() {
        assert_eq!(imported["collections"][name]["checksum"], section["checksum"], "{name}");
        assert_eq!(report["collections"][name]["written"], section["count"], "{name}");
    }
    host.shutdown().await;
}
