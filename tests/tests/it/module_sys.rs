//! module-sys end to end: the real `.so` (modules/sys) loaded by the real host, one
//! supervised service running and one registered but stopped, and the module's routes
//! answering with figures read from this machine's `/proc`.

use crate::common;

use std::time::Duration;

use apollo_host::cli::{ApiClient, ClientError};
use common::{Deployment, eventually, model};
use serde_json::{Value, json};

fn supervised(name: &str, argv: &[&str]) -> Value {
    let mut m = model(name, &format!("app_{name}"), &[]);
    m["run_data"]["command"] = json!(argv);
    m
}

async fn api_error(client: &ApiClient, path: &str) -> (u16, String) {
    match client.get::<Value>(path).await {
        Err(ClientError::Api { status, code, .. }) => (status, code),
        other => panic!("{path}: expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_and_service_stats_from_the_real_module() {
    let d = Deployment::with(json!({"modules": {"dir": "modules"}}));
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(common::module_library("module-sys"), d.root().join("modules/sys.so")).unwrap();
    d.write_model("sleeper.pig", &supervised("sleeper", &["/bin/sleep", "1000"]));
    d.write_model("idle.pig", &supervised("idle", &["/bin/sleep", "1000"]));
    let host = d.start().await;
    let client = host.uds();

    let modules: Value = client.get("/api/modules").await.unwrap();
    let sys = modules["modules"].as_array().unwrap().iter().find(|m| m["name"] == "sys");
    assert_eq!(sys.unwrap_or_else(|| panic!("sys not loaded: {modules:#}"))["routes"].as_array().unwrap().len(), 9);

    let _: Value = client.post("/api/apps/sleeper/start", None).await.unwrap();
    let status = eventually("sleeper running with a pid", Duration::from_secs(20), || async {
        let s: Value = client.get("/api/apps/sleeper/status").await.ok()?;
        (s["state"] == "running" && s["pid"].as_i64().is_some()).then_some(s)
    })
    .await;
    let pid = status["pid"].as_i64().unwrap();

    // The whole system in one answer.
    let system: Value = client.get("/api/module/sys/system").await.unwrap();
    assert!(system["memory"]["ram"]["total_bytes"].as_u64().unwrap() > 0, "{system:#}");
    let ram = &system["memory"]["ram"];
    assert_eq!(
        ram["used_bytes"].as_u64().unwrap() + ram["available_bytes"].as_u64().unwrap(),
        ram["total_bytes"].as_u64().unwrap()
    );
    let cpu = &system["cpu"];
    assert!(cpu["count"].as_u64().unwrap() >= 1, "{cpu:#}");
    assert_eq!(cpu["cores"].as_array().unwrap().len() as u64, cpu["count"].as_u64().unwrap());
    let busy = cpu["total"]["busy_percent"].as_f64().expect("a total CPU percentage");
    assert!((0.0..=100.0).contains(&busy), "{cpu:#}");
    assert!(system["uptime_secs"].as_f64().unwrap() > 0.0);
    assert!(system["load"]["load_1m"].as_f64().unwrap() >= 0.0);
    assert!(system["network"]["interfaces"].as_array().unwrap().iter().any(|i| i["interface"] == "lo"), "{system:#}");
    assert!(system["disks"]["note"].as_str().unwrap().contains("statvfs"));
    let processes = &system["processes"];
    assert_eq!(processes["by_rss"].as_array().unwrap().len(), 10.min(processes["count"].as_u64().unwrap() as usize));
    // This test process runs the host in-process: it holds memory and must be listed.
    assert!(processes["count"].as_u64().unwrap() >= 2);

    // The parts on their own.
    let memory: Value = client.get("/api/module/sys/system/memory").await.unwrap();
    assert!(memory["ram"]["total_bytes"].as_u64().unwrap() > 0);
    let load: Value = client.get("/api/module/sys/system/load").await.unwrap();
    assert!(load["total_tasks"].as_u64().unwrap() > 0);
    let cpu: Value = client.get("/api/module/sys/system/cpu").await.unwrap();
    assert!(cpu["sample_ms"].as_u64().unwrap() >= 150, "{cpu:#}");
    let top: Value = client.get("/api/module/sys/system/processes?limit=3").await.unwrap();
    assert_eq!(top["by_cpu_time"].as_array().unwrap().len(), 3);
    let me = std::process::id() as i64;
    let everyone: Value = client.get("/api/module/sys/system/processes?limit=100").await.unwrap();
    let listed = |rows: &Value| rows.as_array().unwrap().iter().any(|r| r["pid"] == me);
    assert!(
        listed(&everyone["by_rss"]) || everyone["count"].as_u64().unwrap() > 100,
        "the test process (the host) is among the top 100 by RSS: {everyone:#}"
    );
    let _: Value = client.get("/api/module/sys/system/network").await.unwrap();
    let _: Value = client.get("/api/module/sys/system/disks").await.unwrap();
    assert_eq!(api_error(&client, "/api/module/sys/system/processes?limit=0").await, (400, "bad_request".into()));

    // Every registered service, the running one with its process figures.
    let services: Value = client.get("/api/module/sys/services").await.unwrap();
    let list = services["services"].as_array().unwrap();
    let find = |name: &str| list.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name}: {services:#}"));
    let sleeper = find("sleeper");
    assert_eq!(sleeper["running"], true, "{sleeper:#}");
    assert_eq!(sleeper["state"], "running");
    let instance = &sleeper["instances"][0];
    assert_eq!(instance["pid"], pid, "{sleeper:#}");
    assert_eq!(instance["running"], true);
    assert!(instance["rss_bytes"].as_u64().unwrap() > 0, "{instance:#}");
    assert_eq!(instance["threads"], 1, "sleep is single-threaded: {instance:#}");
    assert!(instance["open_files"].as_u64().unwrap() >= 1, "at least stdout/stderr to the log: {instance:#}");
    assert!(instance["uptime_secs"].as_f64().unwrap() > 0.0, "{instance:#}");
    assert!(instance["cpu_percent"].as_f64().unwrap() < 50.0, "sleep is idle: {instance:#}");
    assert!(instance["cpu_secs"].as_f64().unwrap() >= 0.0);
    assert_eq!(sleeper["rss_bytes"], instance["rss_bytes"]);
    let idle = find("idle");
    assert_eq!(idle["running"], false, "{idle:#}");
    assert_eq!(idle["state"], "stopped");
    assert_eq!(idle["rss_bytes"], 0);

    // One service, and one that does not exist.
    let one: Value = client.get("/api/module/sys/services/sleeper").await.unwrap();
    assert_eq!(one["name"], "sleeper");
    assert_eq!(one["instances"][0]["pid"], pid);
    assert_eq!(api_error(&client, "/api/module/sys/services/nope").await, (404, "not_found".into()));

    let _: Value = client.post("/api/apps/sleeper/stop", None).await.unwrap();
    host.shutdown().await;
}
