//! The task manager against the real host: a cron task with seconds fires on schedule
//! and shows in the history, interval and one-shot tasks, pause/resume (kept across a
//! restart), run now, disabled tasks, and a bad cron expression refused at config load
//! (`apollo check` and `apollo serve` load the config the same way).
//! Overlap (409 while running, `skipped` overruns) and failing runs are covered by the
//! scheduler's unit tests with closures (host/src/tasks/scheduler.rs): no built-in task
//! is slow or failing on demand, and the product has no test-only tasks.

use crate::common;

use std::time::Duration;

use common::{Deployment, eventually};
use http::Method;
use serde_json::{Value, json};

/// One registered (never started) service, so the built-ins have something to count.
fn deployment(tasks: Value) -> Deployment {
    let d = Deployment::with(json!({ "tasks": tasks }));
    d.write_model("alpha.pig", &common::model("alpha", "1", &[]));
    d
}

fn task<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|t| t["id"] == id).unwrap_or_else(|| panic!("{id} not listed: {list:#}"))
}

async fn history(client: &apollo_host::cli::ApiClient, id: &str) -> Vec<Value> {
    let runs: Value = client.get(&format!("/api/tasks/{id}/history?limit=1000")).await.unwrap();
    runs.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_interval_and_one_shot_tasks_fire_and_show_in_history() {
    let d = deployment(json!({
        "recheck_services": {"cron": "*/1 * * * * *"},
        "sync_runtime": {"every_secs": 1},
        "log_rotation": {"once_after_secs": 1},
                "reload_models": {"enabled": false},
        "backup": {"enabled": false},
        "housekeeping": {"enabled": false}
    }));
    let host = d.start().await;
    let client = host.uds();

    let list: Value = client.get("/api/tasks").await.unwrap();
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["sync-runtime", "log-rotation", "recheck-services"], "disabled tasks are not listed");
    let recheck = task(&list, "recheck-services");
    assert_eq!((recheck["kind"].as_str(), recheck["schedule"].as_str()), (Some("cron"), Some("*/1 * * * * *")));
    assert_eq!(recheck["paused"], false);
    assert!(recheck["next_run"].as_str().unwrap().ends_with(".000Z"), "on a whole second: {recheck}");
    assert!(!recheck["description"].as_str().unwrap().is_empty());
    assert_eq!(task(&list, "sync-runtime")["kind"], "interval");
    assert_eq!(task(&list, "sync-runtime")["schedule"], "every 1s");
    assert_eq!(task(&list, "log-rotation")["kind"], "once");

    // The cron task fires every second: several scheduled runs, one second apart.
    let runs = eventually("three cron runs", Duration::from_secs(10), || async {
        let runs = history(&client, "recheck-services").await;
        (runs.len() >= 3).then_some(runs)
    })
    .await;
    for run in &runs {
        assert_eq!((run["result"].as_str(), run["trigger"].as_str()), (Some("ok"), Some("schedule")), "{run}");
        assert_eq!(run["message"], "1 services: 0 running, 0 errored, 0 unhealthy, 1 stopped");
    }
    let starts: Vec<&str> = runs.iter().map(|r| r["started_at"].as_str().unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[0] > w[1]), "newest first, distinct seconds: {starts:?}");

    let interval = eventually("two interval runs", Duration::from_secs(10), || async {
        let runs = history(&client, "sync-runtime").await;
        (runs.len() >= 2).then_some(runs)
    })
    .await;
    assert_eq!(interval[0]["result"], "ok", "{interval:?}");
    assert_eq!(interval[0]["message"], "1 services; store in step with the supervisor");

    // The one-shot task ran once, and is not scheduled again.
    let once = eventually("the one-shot run", Duration::from_secs(10), || async {
        let runs = history(&client, "log-rotation").await;
        (!runs.is_empty()).then_some(runs)
    })
    .await;
    assert!(once[0]["message"].as_str().unwrap().contains(" in "), "{once:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(history(&client, "log-rotation").await.len(), 1);
    let list: Value = client.get("/api/tasks").await.unwrap();
    let spent = task(&list, "log-rotation");
    assert!(spent["next_run"].is_null() && spent["last_result"] == "ok", "{spent}");
    assert!(spent["last_run"].as_str().is_some() && spent["last_duration_ms"].as_i64().is_some());

    let limited: Value = client.get("/api/tasks/recheck-services/history?limit=1").await.unwrap();
    assert_eq!(limited.as_array().unwrap().len(), 1);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_runs_resume_restarts_them_and_pause_survives_a_restart() {
    let d = deployment(json!({"recheck_services": {"cron": "* * * * * *"}}));
    let host = d.start().await;
    let client = host.uds();
    eventually("a first run", Duration::from_secs(10), || async {
        (!history(&client, "recheck-services").await.is_empty()).then_some(())
    })
    .await;

    let paused: Value = client.post("/api/tasks/recheck-services/pause", None).await.unwrap();
    assert_eq!(paused["paused"], true);
    assert!(paused["next_run"].is_null(), "{paused}");
    // A run that was already going may still finish; after that, nothing.
    eventually("idle", Duration::from_secs(5), || async {
        let t: Value = client.get("/api/tasks/recheck-services").await.unwrap();
        (t["running"] == false).then_some(())
    })
    .await;
    let frozen = history(&client, "recheck-services").await.len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(history(&client, "recheck-services").await.len(), frozen, "a paused task ran");

    // Paused is an operator decision: it survives a host restart.
    host.shutdown().await;
    let host = d.start().await;
    let client = host.uds();
    let restored: Value = client.get("/api/tasks/recheck-services").await.unwrap();
    assert_eq!(restored["paused"], true, "{restored}");
    assert_eq!(restored["last_result"], "ok", "the last run is restored from the store: {restored}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(history(&client, "recheck-services").await.len(), frozen);

    let resumed: Value = client.post("/api/tasks/recheck-services/resume", None).await.unwrap();
    assert_eq!(resumed["paused"], false);
    assert!(resumed["next_run"].is_string(), "{resumed}");
    eventually("runs after resume", Duration::from_secs(10), || async {
        (history(&client, "recheck-services").await.len() >= frozen + 2).then_some(())
    })
    .await;
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_runs_a_task_outside_its_schedule() {
    // reload-models keeps its default (every 300 s): it will not fire by itself here.
    let d = deployment(json!({}));
    let host = d.start().await;
    let client = host.uds();
    let before: Value = client.get("/api/tasks/reload-models").await.unwrap();
    assert_eq!((before["kind"].as_str(), before["schedule"].as_str()), (Some("interval"), Some("every 300s")));
    assert!(before["last_result"].is_null(), "{before}");
    assert_eq!(task(&client.get::<Value>("/api/tasks").await.unwrap(), "log-rotation")["schedule"], "0 0 * * * *");

    let started = client.send(Method::POST, "/api/tasks/reload-models/run", None).await.unwrap();
    assert_eq!(started.status, 202, "{:?}", started.json());
    assert_eq!(started.json()["id"], "reload-models");
    let run = eventually("the manual run", Duration::from_secs(10), || async {
        history(&client, "reload-models").await.into_iter().next()
    })
    .await;
    assert_eq!((run["trigger"].as_str(), run["result"].as_str()), (Some("manual"), Some("ok")), "{run}");
    assert!(run["message"].as_str().unwrap().starts_with("1 services (0 added, 0 changed, 0 removed)"), "{run}");
    let after: Value = client.get("/api/tasks/reload-models").await.unwrap();
    assert_eq!((after["last_result"].as_str(), after["last_trigger"].as_str()), (Some("ok"), Some("manual")));
    assert!(after["next_run"].is_string(), "a manual run leaves the schedule alone");

    // Paused tasks can still be run by hand.
    client.post::<Value>("/api/tasks/reload-models/pause", None).await.unwrap();
    let manual = client.send(Method::POST, "/api/tasks/reload-models/run", None).await.unwrap();
    assert_eq!(manual.status, 202);
    eventually("the second manual run", Duration::from_secs(10), || async {
        (history(&client, "reload-models").await.len() == 2).then_some(())
    })
    .await;
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_disabled_tasks_are_404() {
    let d = deployment(json!({"log_rotation": {"enabled": false}}));
    let host = d.start().await;
    let client = host.uds();
    for (method, path) in [
        (Method::GET, "/api/tasks/nope"),
        (Method::GET, "/api/tasks/nope/history"),
        (Method::POST, "/api/tasks/log-rotation/run"),
        (Method::POST, "/api/tasks/nope/pause"),
        (Method::POST, "/api/tasks/nope/resume"),
    ] {
        let r = client.send(method.clone(), path, None).await.unwrap();
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(r.json()["error"]["code"], "not_found");
    }
    let r = client.send(Method::POST, "/api/tasks/log-rotation/run", None).await.unwrap();
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("disabled in tasks.*"));
    // Over TCP the routes are behind the token like the rest of /api.
    assert_eq!(host.tcp().send(Method::GET, "/api/tasks", None).await.unwrap().status, 401);
    let authed = host.authed().await;
    assert_eq!(authed.send(Method::GET, "/api/tasks", None).await.unwrap().status, 200);
    host.shutdown().await;
}

#[test]
fn a_bad_cron_expression_is_refused_at_config_load_with_file_line_and_key() {
    let d = Deployment::with(json!({"tasks": {"recheck_services": {"cron": "*/5 * * * *"}}}));
    let config = d.config_path();
    let out = common::run_cli(&["--config", config.to_str().unwrap(), "check"], None);
    assert_ne!(out.code, 0, "{out:?}");
    let file = config.display().to_string();
    let line =
        out.stderr.lines().find(|l| l.contains("tasks.recheck_services.cron")).unwrap_or_else(|| panic!("{out:?}"));
    assert!(line.contains(&format!("{file}:")), "{line}");
    assert!(
        line.contains("\"*/5 * * * *\" is not a cron expression (5 fields: this cron needs the seconds field first)"),
        "{line}"
    );
}
