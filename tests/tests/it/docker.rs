//! The Docker manager through the real host against a real dockerd (started by
//! `.ci/docker-up.sh`, which `make unit` runs first): a busybox container created,
//! started, logged, stopped and removed over the API; and a host whose engine is
//! missing answers 503 on `/api/docker` while the rest of it keeps working.

use crate::common;

use std::time::Duration;

use apollo_host::cli::ApiClient;
use common::{Deployment, eventually};
use http::{Method, StatusCode};
use serde_json::{Value, json};

const SOCKET: &str = common::components::DOCKER_SOCKET;
const IMAGE: &str = "apollo-test/busybox:1";

async fn send(client: &ApiClient, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
    let r = client.send(method, path, body).await.expect("request");
    let json = if r.body.is_empty() { Value::Null } else { r.json() };
    (r.status, json)
}

/// Fails when the engine answers without the test image.
async fn require_engine(client: &ApiClient) {
    let (status, body) = send(client, Method::GET, "/api/docker/images", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "no Docker engine at unix://{SOCKET}: run `.ci/docker-up.sh` (as root) or `make test-deps` first. Host said: {body}"
    );
    let has_image = body.as_array().unwrap().iter().any(|i| i["repo_tags"].as_array().unwrap().contains(&json!(IMAGE)));
    assert!(has_image, "image {IMAGE} missing: run `.ci/docker-up.sh` to import it. Images: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_lifecycle_through_the_api() {
    if !common::components::docker() {
        return;
    }
    let d = Deployment::with(json!({"ci": {"docker_host": format!("unix://{SOCKET}")}}));
    let host = d.start().await;
    let client = host.uds();
    require_engine(&client).await;

    let name = format!("apollo-test-{}", std::process::id());
    let spec = json!({
        "image": IMAGE, "name": name,
        "cmd": ["sh", "-c", "echo hello-from-container; sleep 30"],
        "env": {"GREETING": "hi"}, "ports": ["8080/tcp"],
        "memory_bytes": 64 * 1024 * 1024, "cpus": 0.5, "restart_policy": "no"
    });
    let (status, created) = send(&client, Method::POST, "/api/docker/containers", Some(&spec)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(created["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("network mode none")));

    let (status, info) = send(&client, Method::GET, &format!("/api/docker/containers/{name}"), None).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["HostConfig"]["NetworkMode"], "none", "{info}");
    assert_eq!(info["HostConfig"]["Memory"], 64 * 1024 * 1024);

    let (status, body) = send(&client, Method::POST, &format!("/api/docker/containers/{id}/start"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let logs_path = format!("/api/docker/containers/{id}/logs?tail=50");
    eventually("container log line", Duration::from_secs(20), || async {
        let (status, logs) = send(&client, Method::GET, &logs_path, None).await;
        (status == StatusCode::OK && logs["lines"].as_array().unwrap().contains(&json!("hello-from-container")))
            .then_some(())
    })
    .await;

    let (status, list) = send(&client, Method::GET, "/api/docker/containers", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mine = list.as_array().unwrap().iter().find(|c| c["id"] == id.as_str()).expect("running container listed");
    assert_eq!(mine["state"], "running", "{mine}");

    let (status, stats) = send(&client, Method::GET, &format!("/api/docker/containers/{id}/stats"), None).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert!(stats.get("memory_stats").is_some(), "{stats}");

    let started_at = |info: &Value| info["State"]["StartedAt"].as_str().unwrap_or_default().to_string();
    let (_, before) = send(&client, Method::GET, &format!("/api/docker/containers/{id}"), None).await;
    let (status, body) = send(&client, Method::POST, &format!("/api/docker/containers/{id}/restart"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, info) = send(&client, Method::GET, &format!("/api/docker/containers/{id}"), None).await;
    assert_eq!(info["State"]["Running"], true, "{info}");
    assert_ne!(started_at(&info), started_at(&before), "a restart starts it again");

    let (status, body) = send(&client, Method::POST, &format!("/api/docker/containers/{id}/kill"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, info) = send(&client, Method::GET, &format!("/api/docker/containers/{id}"), None).await;
    assert_eq!((info["State"]["Running"].as_bool(), info["State"]["ExitCode"].as_i64()), (Some(false), Some(137)));

    let (status, body) = send(&client, Method::POST, &format!("/api/docker/containers/{id}/start"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = send(&client, Method::POST, &format!("/api/docker/containers/{id}/stop"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, info) = send(&client, Method::GET, &format!("/api/docker/containers/{id}"), None).await;
    assert_eq!(info["State"]["Running"], false, "{info}");

    let (status, body) = send(&client, Method::DELETE, &format!("/api/docker/containers/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = send(&client, Method::GET, &format!("/api/docker/containers/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_engine_is_503_and_the_rest_of_the_host_works() {
    let d = Deployment::with(json!({"ci": {"docker_host": "unix:///tmp/apollo-no-such-docker.sock"}}));
    let host = d.start().await;
    let client = host.uds();

    let (status, body) = send(&client, Method::GET, "/api/docker/containers", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("/tmp/apollo-no-such-docker.sock"), "{message}");

    let (status, body) = send(&client, Method::GET, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(&client, Method::GET, "/api/apps", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    host.shutdown().await;
}
