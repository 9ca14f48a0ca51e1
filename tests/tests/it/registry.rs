//! Model loading through the real host: one bad file never blocks the others, every
//! problem is reported with its reason, and the folder is live (add, change, remove).

use crate::common;

use std::time::Duration;

use common::{Deployment, eventually, model};
use serde_json::{Value, json};

async fn names(client: &apollo_host::cli::ApiClient) -> Vec<String> {
    let apps: Vec<Value> = client.get("/api/apps").await.unwrap();
    apps.iter().map(|a| a["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn bad_files_are_reported_and_good_ones_load() {
    let d = Deployment::new();
    d.write_model("a-good.pig", &model("web", "app_web", &[]));
    d.write_model("b-good.pig", &model("worker", "app_worker", &["web"]));
    d.write_model_text(
        "c-malformed.pig",
        "{\n  \"name\": \"broken\",\n  \"id\": \"app_broken\"\n  \"type\": \"Service\"\n}",
    );
    d.write_model("d-dup.pig", &model("web2", "app_web", &[]));
    d.write_model("e-cycle1.pig", &model("ping", "app_ping", &["pong"]));
    d.write_model("f-cycle2.pig", &model("pong", "app_pong", &["ping"]));
    let host = d.start().await;
    let client = host.uds();

    assert_eq!(names(&client).await, vec!["web", "worker"]);

    let body: Value = client.get("/api/models/problems").await.unwrap();
    let problems = body["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let by_kind = |kind: &str| {
        problems.iter().find(|p| p["kind"] == kind).unwrap_or_else(|| panic!("no {kind} in {problems:#?}"))
    };

    let malformed = by_kind("invalid");
    assert!(malformed["file"].as_str().unwrap().ends_with("c-malformed.pig"));
    assert_eq!(malformed["line"], 4, "the missing comma is reported where the parser stopped");
    assert!(malformed["message"].as_str().unwrap().contains("not valid JSON"));

    let dup = by_kind("duplicate_id");
    assert!(dup["file"].as_str().unwrap().ends_with("d-dup.pig"));
    assert!(dup["message"].as_str().unwrap().contains("a-good.pig"), "names the file that keeps the id");

    let cycle = by_kind("dependency_cycle");
    assert_eq!(cycle["cycle"], json!(["ping", "pong"]));
    assert!(cycle["message"].as_str().unwrap().contains("ping -> pong -> ping"));

    let health: Value = host.tcp().get("/healthz").await.unwrap();
    assert_eq!(health["services"], 2);
    assert_eq!(health["model_problems"], 3);
    host.shutdown().await;
}

#[tokio::test]
async fn validation_problems_name_the_key() {
    let d = Deployment::new();
    let mut bad_port = model("api", "app_api", &[]);
    bad_port["run_data"]["ports"] = json!([8080, 70000]);
    d.write_model("api.pig", &bad_port);
    d.write_model("orphan.pig", &model("orphan", "app_orphan", &["ghost"]));
    let mut secret = model("leak", "app_leak", &[]);
    secret["link"] = json!("$APOLLO_ADMIN_PASSWORD");
    d.write_model("leak.pig", &secret);
    let mut escape = model("esc", "app_esc", &[]);
    escape["manage_cmd"]["start"] = json!("../../../bin/sh");
    d.write_model("esc.pig", &escape);
    let host = d.start().await;
    let body: Value = host.uds().get("/api/models/problems").await.unwrap();
    let problems = body["problems"].as_array().unwrap();
    let find = |file: &str| problems.iter().find(|p| p["file"].as_str().unwrap().ends_with(file)).unwrap();
    assert_eq!(find("api.pig")["key"], "run_data.ports[1]");
    assert!(find("api.pig")["message"].as_str().unwrap().contains("70000 is out of range"));
    assert_eq!(find("orphan.pig")["kind"], "unknown_dependency");
    assert!(find("orphan.pig")["message"].as_str().unwrap().contains("\"ghost\""));
    assert_eq!(find("esc.pig")["key"], "manage_cmd.start");
    assert!(find("leak.pig")["message"].as_str().unwrap().contains("belong to the host"));
    assert!(names(&host.uds()).await.is_empty());
    host.shutdown().await;
}

#[tokio::test]
async fn seed_fallback_folder_and_env_substitution() {
    let d = Deployment::new();
    std::fs::remove_dir(d.models_dir()).unwrap();
    let seed_dir = d.root().join("app/octopusMeta");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let mut m = model("Blog", "app_blog", &[]);
    // The seed wrote runtime.pid as a string and had no run_dep/stop_chain keys at all.
    m["runtime"] = json!({"pid": "", "ports": [], "stop_operation": false});
    m["run_data"] = json!({"envs": ["HOME_DIR=${HOME:-/nowhere}", "MODE=${ZZ_APOLLO_TEST_UNSET_VAR:-prod}"], "ports": [], "random_port": true, "host": "localhost"});
    std::fs::write(seed_dir.join("Blog.pig"), serde_json::to_vec(&m).unwrap()).unwrap();
    let host = d.start().await;
    let detail: Value = host.uds().get("/api/apps/Blog").await.unwrap();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/nowhere".into());
    assert_eq!(detail["model"]["run_data"]["envs"][0], format!("HOME_DIR={home}"), "read from the host's environment");
    assert_eq!(detail["model"]["run_data"]["envs"][1], "MODE=prod");
    assert!(detail["file"].as_str().unwrap().contains("octopusMeta"));
    host.shutdown().await;
}

#[tokio::test]
async fn folder_changes_apply_live() {
    let d = Deployment::new();
    d.write_model("web.pig", &model("web", "app_web", &[]));
    let host = d.start().await;
    let client = host.uds();
    let wait = Duration::from_secs(10);

    // Add: a new file shows up without a reload call.
    d.write_model("worker.pig", &model("worker", "app_worker", &["web"]));
    eventually("worker to appear", wait, || async { (names(&client).await.len() == 2).then_some(()) }).await;

    // Change: ports, envs and run_dep are live (the seed needed a restart for these).
    let mut changed = model("worker", "app_worker", &[]);
    changed["run_data"]["ports"] = json!([9301]);
    changed["run_data"]["envs"] = json!(["LEVEL=debug"]);
    d.write_model("worker.pig", &changed);
    eventually("worker's new ports", wait, || async {
        let detail: Value = client.get("/api/apps/worker").await.ok()?;
        let run_data = &detail["model"]["run_data"];
        (run_data["ports"] == json!([9301])
            && run_data["run_dep"] == json!([])
            && run_data["envs"] == json!(["LEVEL=debug"]))
        .then_some(())
    })
    .await;

    // Break it: the live set drops it and the problem is listed; fix it: it is back.
    d.write_model_text("worker.pig", "{ not json");
    eventually("worker to be dropped", wait, || async { (names(&client).await == vec!["web"]).then_some(()) }).await;
    let problems: Value = client.get("/api/models/problems").await.unwrap();
    assert_eq!(problems["problems"][0]["kind"], "invalid");
    let err = client.get::<Value>("/api/apps/worker").await.unwrap_err();
    assert!(err.to_string().contains("has a problem"), "{err}");
    d.write_model("worker.pig", &changed);
    eventually("worker to come back", wait, || async { (names(&client).await.len() == 2).then_some(()) }).await;

    // Remove.
    d.remove_model("worker.pig");
    eventually("worker to go", wait, || async { (names(&client).await == vec!["web"]).then_some(()) }).await;
    assert_eq!(client.get::<Value>("/api/apps/worker").await.unwrap_err().status(), Some(404));

    // The store mirrors the live set (written right after the in-memory swap).
    let store = &host.host.state.store;
    eventually("the store to follow", wait, || async {
        let stored = store.list_models().await.unwrap();
        (stored.iter().map(|m| m.name.as_str()).collect::<Vec<_>>() == vec!["web"]).then_some(())
    })
    .await;
    host.shutdown().await;
}

#[tokio::test]
async fn reload_endpoint_reports_the_difference() {
    let d = Deployment::with(json!({"registry": {"watch": false, "rescan_secs": 3600}}));
    d.write_model("web.pig", &model("web", "app_web", &[]));
    let host = d.start().await;
    let client = host.uds();
    d.write_model("api.pig", &model("api", "app_api", &[]));
    d.remove_model("web.pig");
    let report: Value = client.post("/api/reload", None).await.unwrap();
    assert_eq!(report["added"], json!(["api"]));
    assert_eq!(report["removed"], json!(["web"]));
    assert_eq!(report["problems"], 0);
    host.shutdown().await;
}
