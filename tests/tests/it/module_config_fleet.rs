//! module-config beyond one process: released configuration survives `kill -9` of its
//! host (it lives in the host's store), and hosts sharing one MongoDB serve one
//! configuration: a release on one host wakes a client's long poll parked on another.

use crate::common;

use std::time::{Duration, Instant};

use apollo_host::cli::ApiClient;
use common::Deployment;
use http::Method;
use serde_json::{Value, json};

const MOUNT: &str = "/api/module/config";

fn deployment(overrides: Value) -> Deployment {
    let mut config = json!({"modules": {"dir": "modules", "config": {"config": {"long_poll_timeout_secs": 20}}}});
    common::merge(&mut config, &overrides);
    let d = Deployment::with(config);
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(common::module_library("module-config"), d.root().join("modules/module_config.so")).unwrap();
    d
}

fn namespace_path(rest: &str) -> String {
    format!("{MOUNT}/openapi/v1/envs/DEV/apps/fleet-app/clusters/default/namespaces/application{rest}")
}

/// Creates `fleet-app` and releases `timeout = value` through the Open API (as the
/// host's operator, over the unix socket).
async fn create_and_release(client: &ApiClient, value: &str) -> Value {
    let app = json!({"app": {"appId": "fleet-app", "name": "Fleet", "orgId": "ops"}});
    let created = client.send(Method::POST, &format!("{MOUNT}/openapi/v1/apps"), Some(&app)).await.unwrap();
    assert!(created.status == 200 || created.status == 400, "{:?}", created.json());
    release(client, value).await
}

async fn release(client: &ApiClient, value: &str) -> Value {
    let item = json!({"key": "timeout", "value": value});
    let set =
        client.send(Method::PUT, &namespace_path("/items/timeout?createIfNotExists=true"), Some(&item)).await.unwrap();
    assert_eq!(set.status, 200, "{:?}", set.json());
    let body = json!({"releaseTitle": format!("timeout {value}"), "releasedBy": "fleet-test"});
    let released = client.send(Method::POST, &namespace_path("/releases"), Some(&body)).await.unwrap();
    assert_eq!(released.status, 200, "{:?}", released.json());
    released.json()
}

fn poll_path(notification_id: i64) -> String {
    let notifications = json!([{"namespaceName": "application", "notificationId": notification_id}]).to_string();
    let encoded: String = form_urlencoded_byte_serialize(&notifications);
    format!("{MOUNT}/notifications/v2?appId=fleet-app&cluster=default&notifications={encoded}")
}

/// Percent-encodes a query value (every byte but unreserved ones).
fn form_urlencoded_byte_serialize(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_configuration_survives_kill_9_of_its_host() {
    let d = deployment(json!({}));
    let host = d.spawn();
    let released = create_and_release(&host.uds(), "250").await;
    let configs = format!("{MOUNT}/configs/fleet-app/default/application");
    host.crash();

    let again = d.spawn();
    let answer = common::eventually("the module serves after the restart", Duration::from_secs(20), || async {
        let answer = again.tcp().send(Method::GET, &configs, None).await.ok()?;
        (answer.status == 200).then(|| answer.json())
    })
    .await;
    assert_eq!(answer["configurations"]["timeout"], "250", "{answer}");
    let history = again
        .uds()
        .send(
            Method::GET,
            &format!("{MOUNT}/admin/apps/fleet-app/clusters/default/namespaces/application/releases"),
            None,
        )
        .await
        .unwrap()
        .json();
    assert_eq!(history[0]["id"], released["id"], "{history}");
    // A fresh client's first poll returns at once: the namespace has a notification id.
    let first = again.tcp().send(Method::GET, &poll_path(-1), None).await.unwrap();
    assert_eq!(first.status, 200);
    assert!(first.json()[0]["notificationId"].as_i64().unwrap() > 0, "{:?}", first.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_on_one_host_wakes_a_poll_parked_on_another() {
    if !common::components::mongo() {
        return;
    }
    let mongo = common::mongo::MongoServer::start();
    let on_the_shared_store =
        |scope: &str| json!({"db": {"mongo": {"url": mongo.url, "name": mongo.database, "scope": scope}}});
    let (one, two) = (deployment(on_the_shared_store("one")), deployment(on_the_shared_store("two")));
    let (host_one, host_two) = (one.start().await, two.start().await);
    create_and_release(&host_one.uds(), "100").await;

    // Host two learns of the first release through the feed; a client there catches up.
    let caught_up = common::eventually("host two serves host one's release", Duration::from_secs(20), || async {
        let answer = host_two.tcp().send(Method::GET, &poll_path(-1), None).await.ok()?;
        (answer.status == 200).then(|| answer.json())
    })
    .await;
    let known = caught_up[0]["notificationId"].as_i64().unwrap();

    // Parked on host two, then a release on host one.
    let client_two = host_two.tcp();
    let parked = tokio::spawn(async move {
        let answer = client_two.send(Method::GET, &poll_path(known), None).await.unwrap();
        (answer.status, answer.json(), Instant::now())
    });
    common::eventually("the poll is parked on host two", Duration::from_secs(10), || async {
        let status = host_two.uds().send(Method::GET, &format!("{MOUNT}/admin/status"), None).await.ok()?.json();
        (status["parked_polls"] == 1).then_some(())
    })
    .await;
    release(&host_one.uds(), "200").await;
    let released_at = Instant::now();
    let (status, body, answered_at) = parked.await.unwrap();
    assert_eq!(status, 200, "woken by the release, not the 20 s hold: {body}");
    assert!(body[0]["notificationId"].as_i64().unwrap() > known, "{body}");
    eprintln!(
        "a release on host one woke a poll parked on host two {} ms after the release call returned",
        answered_at.saturating_duration_since(released_at).as_millis()
    );
    let configs = host_two
        .tcp()
        .send(Method::GET, &format!("{MOUNT}/configs/fleet-app/default/application"), None)
        .await
        .unwrap();
    assert_eq!(configs.json()["configurations"]["timeout"], "200");
    host_one.shutdown().await;
    host_two.shutdown().await;
}
