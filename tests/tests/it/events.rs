//! The event stream: a websocket client (the CLI's, over TCP with a token and over the
//! unix socket) receives service state changes and model changes, filtered by kind and
//! name; without a token it is refused.

use crate::common;

use std::time::Duration;

use apollo_host::cli::ApiClient;
use common::{Deployment, model};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Follows `path` in the background; events arrive on the returned channel.
fn follow(client: ApiClient, path: &str) -> mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    let path = path.to_string();
    tokio::spawn(async move {
        let _ = client
            .websocket(&path, |text| {
                let _ = tx.send(serde_json::from_str(text).unwrap_or(Value::Null));
            })
            .await;
    });
    rx
}

async fn next_matching(rx: &mut mpsc::UnboundedReceiver<Value>, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(event)) if pred(&event) => return event,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended before {what}"),
            Err(_) => panic!("no event for {what} within 10 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_streams_state_changes_with_filters() {
    let d = Deployment::new();
    let mut svc = model("ticker", "app_ticker", &[]);
    svc["run_data"]["command"] = json!(["/bin/sleep", "1000"]);
    d.write_model("ticker.pig", &svc);
    let host = d.start().await;

    // Without a token: refused before the upgrade.
    let refused = host.tcp().websocket("/api/events", |_| {}).await.unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");

    let token = host.login().await;
    let mut all = follow(host.tcp().with_token(Some(token)), "/api/events");
    let mut states = follow(host.uds(), "/api/events?kinds=service_state&name=ticker");
    let mut models = follow(host.uds(), "/api/events?kinds=model_added");
    tokio::time::sleep(Duration::from_millis(200)).await; // let the subscriptions start

    let _: Value = host.uds().post("/api/apps/ticker/start", None).await.unwrap();
    let running = next_matching(&mut states, "ticker running", |e| e["state"] == "running").await;
    assert_eq!(running["kind"], "service_state");
    assert!(running["pid"].as_i64().unwrap() > 0);
    next_matching(&mut all, "the same change on the unfiltered stream", |e| e["kind"] == "service_state").await;

    d.write_model("other.pig", &model("other", "app_other", &[]));
    let added = next_matching(&mut models, "model_added", |_| true).await;
    assert_eq!(added["name"], "other");
    // The kind filter kept everything else out of that stream.
    while let Ok(e) = models.try_recv() {
        assert_eq!(e["kind"], "model_added", "{e}");
    }
    host.shutdown().await;
}

#[tokio::test]
async fn cli_follows_events() {
    let d = Deployment::new();
    let mut svc = model("ticker", "app_ticker", &[]);
    svc["run_data"]["command"] = json!(["/bin/sleep", "1000"]);
    d.write_model("ticker.pig", &svc);
    let host = d.spawn();
    let config = d.config_path();
    let mut cli = tokio::process::Command::new(common::apollo_bin())
        .args(["--config", config.to_str().unwrap(), "events", "--name", "ticker"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _: Value = host.uds().post("/api/apps/ticker/start", None).await.unwrap();
    let stdout = cli.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["name"], "ticker");
    cli.kill().await.unwrap();
}
