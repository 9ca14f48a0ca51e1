//! Container mode against the real dockerd of `.ci/docker-up.sh`: a `type: Container`
//! model started through the API runs as `apollo-<name>` (seen in the engine's list),
//! its output reaches the service log, a `docker kill` from outside is a crash our
//! supervisor restarts, and stop removes the container. Without an engine a start fails
//! with a message naming the engine's address while the rest of the host works; bad
//! container sections are model problems naming file and key.

use crate::common;

use std::time::Duration;

use apollo_host::cli::ApiClient;
use common::{Deployment, eventually, merge};
use http::{Method, StatusCode};
use serde_json::{Value, json};

const SOCKET: &str = common::components::DOCKER_SOCKET;
const IMAGE: &str = "apollo-test/busybox:1";
const WAIT: Duration = Duration::from_secs(30);

async fn send(client: &ApiClient, method: Method, path: &str) -> (StatusCode, Value) {
    let r = client.send(method, path, None).await.expect("request");
    let json = if r.body.is_empty() { Value::Null } else { r.json() };
    (r.status, json)
}

/// Fails when the engine answers without the test image.
async fn require_engine(client: &ApiClient) {
    let (status, body) = send(client, Method::GET, "/api/docker/images").await;
    assert_eq!(status, StatusCode::OK, "no Docker engine at unix://{SOCKET}: run `.ci/docker-up.sh` first: {body}");
    let has_image = body.as_array().unwrap().iter().any(|i| i["repo_tags"].as_array().unwrap().contains(&json!(IMAGE)));
    assert!(has_image, "image {IMAGE} missing: run `.ci/docker-up.sh` to import it");
}

/// A container-mode model (seed fields plus the `container` section).
fn container_model(name: &str, extra: Value) -> Value {
    let mut m = json!({
        "name": name, "id": format!("app_{name}"), "type": "Container", "release_status": "published",
        "eng_des": "a service in a container", "chs_des": "", "link": "",
        "manage_cmd": {"start": "", "stop": "", "restart": "", "force_kill": "", "check": ""},
        "meta": {"author": "t", "domain": "", "language": [], "create_date": "", "version": "1.0.0",
                 "dynamic_conf": false, "conf_type": "", "conf_path": ""},
        "run_data": {"envs": ["GREETING=hello"], "ports": [], "random_port": false, "host": "127.0.0.1",
                     "run_dep": [], "stop_chain": []},
        "supervise": {"kill_timeout_ms": 1000},
        "container": {
            "image": IMAGE,
            // argv for the container's own shell, not a host shell string.
            "cmd": ["sh", "-c", "echo $GREETING from $APP; while true; do echo tick; sleep 1; done"],
            "mounts": [{"source": "data", "target": "/data", "read_only": true}]
        }
    });
    merge(&mut m, &extra);
    m
}

async fn status(client: &ApiClient, name: &str) -> Value {
    let (code, body) = send(client, Method::GET, &format!("/api/apps/{name}/status")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

/// The engine's containers (all states) named `name`.
async fn engine_containers(client: &ApiClient, name: &str) -> Vec<Value> {
    let (code, list) = send(client, Method::GET, "/api/docker/containers?all=true").await;
    assert_eq!(code, StatusCode::OK, "{list}");
    list.as_array().unwrap().iter().filter(|c| c["names"].as_array().unwrap().contains(&json!(name))).cloned().collect()
}

async fn log_lines(client: &ApiClient, name: &str) -> Vec<String> {
    let (_, body) = send(client, Method::GET, &format!("/api/apps/{name}/logs?tail=200")).await;
    body["lines"]
        .as_array()
        .map(|l| l.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// `docker kill` from outside the host, by argv (the CLI of the test engine).
fn docker_kill(id: &str) {
    let out = std::process::Command::new("docker")
        .args(["-H", &format!("unix://{SOCKET}"), "kill", id])
        .output()
        .expect("run the docker CLI");
    assert!(out.status.success(), "docker kill {id}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Removes the test's container (by its own name) however the test ends.
struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["-H", &format!("unix://{SOCKET}"), "rm", "-f", &self.0])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_service_runs_restarts_after_a_kill_and_stops() {
    if !common::components::docker() {
        return;
    }
    let d = Deployment::with(json!({"ci": {"docker_host": format!("unix://{SOCKET}")}}));
    let name = format!("ctr-{}", std::process::id());
    let container = format!("apollo-{name}");
    let _cleanup = RemoveOnDrop(container.clone());
    d.write_model(&format!("{name}.pig"), &container_model(&name, json!({})));
    let host = d.start().await;
    let client = host.uds();
    require_engine(&client).await;

    let (code, started) = send(&client, Method::POST, &format!("/api/apps/{name}/start")).await;
    assert_eq!(code, StatusCode::OK, "{started}");
    let running = eventually("the service running", WAIT, || async {
        let s = status(&client, &name).await;
        (s["state"] == "running").then_some(s)
    })
    .await;
    assert_eq!(running["mode"], "container", "{running}");
    assert_eq!(running["container"]["name"], container.as_str(), "{running}");
    assert_eq!(running["container"]["image"], IMAGE, "{running}");
    let first_id = running["container"]["id"].as_str().unwrap().to_string();

    let listed = engine_containers(&client, &container).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], first_id.as_str());
    assert_eq!(listed[0]["state"], "running");
    let (_, info) = send(&client, Method::GET, &format!("/api/docker/containers/{first_id}")).await;
    assert_eq!(info["HostConfig"]["NetworkMode"], "none", "{info}");
    assert_eq!(info["HostConfig"]["RestartPolicy"]["Name"], "no", "restarts are ours: {info}");
    assert_eq!(info["Config"]["Labels"]["apollo.service"], name.as_str(), "{info}");
    assert!(d.root().join(format!("app/{name}/data")).is_dir(), "a relative mount source is created");

    // The container's output goes to the service log, read through the usual route.
    eventually("container output in the service log", WAIT, || async {
        let lines = log_lines(&client, &name).await;
        (lines.iter().any(|l| l == &format!("hello from {name}")) && lines.iter().any(|l| l == "tick")).then_some(())
    })
    .await;

    // Killed from outside: a crash, restarted by our supervisor in a new container.
    docker_kill(&first_id);
    let restarted = eventually("a restarted container", WAIT, || async {
        let s = status(&client, &name).await;
        let new_id = s["container"]["id"].as_str().is_some_and(|id| id != first_id);
        (s["state"] == "running" && new_id).then_some(s)
    })
    .await;
    assert_eq!(restarted["restarts"], 1, "{restarted}");
    let listed = engine_containers(&client, &container).await;
    assert_eq!(listed.len(), 1, "the killed container was replaced, not kept: {listed:?}");
    let lines = log_lines(&client, &name).await;
    assert!(lines.iter().any(|l| l.contains("exited with code 137")), "{lines:#?}");

    // Stop through the API: the container is stopped and removed.
    let (code, stopped) = send(&client, Method::POST, &format!("/api/apps/{name}/stop")).await;
    assert_eq!(code, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert!(stopped.get("container").is_none_or(Value::is_null), "{stopped}");
    assert!(engine_containers(&client, &container).await.is_empty(), "the container is gone after stop");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autostarted_container_is_readopted_after_a_host_crash() {
    if !common::components::docker() {
        return;
    }
    let d = Deployment::with(json!({"ci": {"docker_host": format!("unix://{SOCKET}")}}));
    let name = format!("adopt-{}", std::process::id());
    let container = format!("apollo-{name}");
    let _cleanup = RemoveOnDrop(container.clone());
    d.write_model(&format!("{name}.pig"), &container_model(&name, json!({"supervise": {"autostart": true}})));

    let first = d.spawn();
    let client = first.uds();
    require_engine(&client).await;
    let running = eventually("the autostarted service running", WAIT, || async {
        let s = status(&client, &name).await;
        (s["state"] == "running").then_some(s)
    })
    .await;
    let id = running["container"]["id"].as_str().unwrap().to_string();
    first.crash();

    // The container outlives the host and the next host adopts it: same container.
    let second = d.spawn();
    let client = second.uds();
    let adopted = eventually("the container re-adopted", WAIT, || async {
        let s = status(&client, &name).await;
        (s["state"] == "running").then_some(s)
    })
    .await;
    assert_eq!(adopted["container"]["id"], id.as_str(), "{adopted}");
    assert_eq!(adopted["instances"][0]["adopted"], true, "{adopted}");
    assert_eq!(engine_containers(&client, &container).await.len(), 1);
    // Its output keeps reaching the log after adoption.
    let before = log_lines(&client, &name).await.iter().filter(|l| *l == "tick").count();
    eventually("more output after adoption", WAIT, || async {
        let now = log_lines(&client, &name).await.iter().filter(|l| *l == "tick").count();
        (now > before).then_some(())
    })
    .await;
    second.crash();

    // Dead while the host was down: the stale container is replaced by a new one.
    docker_kill(&id);
    let third = d.spawn();
    let client = third.uds();
    let fresh = eventually("a new container", WAIT, || async {
        let s = status(&client, &name).await;
        let new_id = s["container"]["id"].as_str().is_some_and(|c| c != id);
        (s["state"] == "running" && new_id).then_some(s)
    })
    .await;
    assert_eq!(engine_containers(&client, &container).await.len(), 1, "{fresh}");
    // A clean shutdown with stop_services_on_exit stops and removes it.
    assert!(third.terminate().success());
    let probe = Deployment::with(json!({"ci": {"docker_host": format!("unix://{SOCKET}")}}));
    let host = probe.start().await;
    assert!(engine_containers(&host.uds(), &container).await.is_empty(), "removed with the host's services");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_engine_the_start_fails_clearly_and_the_host_works() {
    let missing = format!("/tmp/apollo-no-such-docker-{}.sock", std::process::id());
    let d = Deployment::with(json!({"ci": {"docker_host": format!("unix://{missing}")}}));
    d.write_model("ghost.pig", &container_model("ghost", json!({})));
    let host = d.start().await;
    let client = host.uds();

    let (code, body) = send(&client, Method::POST, "/api/apps/ghost/start").await;
    assert!(code.is_server_error(), "{code}: {body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&missing) && message.contains("unavailable"), "{message}");
    let s = status(&client, "ghost").await;
    assert_eq!(s["state"], "errored", "{s}");
    assert_eq!(s["mode"], "container", "{s}");
    assert!(s["message"].as_str().unwrap().contains(&missing), "{s}");

    let (code, _) = send(&client, Method::GET, "/healthz").await;
    assert_eq!(code, StatusCode::OK);
    let (code, stopped) = send(&client, Method::POST, "/api/apps/ghost/stop").await;
    assert_eq!(code, StatusCode::OK, "nothing ran, so stopping succeeds: {stopped}");
    host.shutdown().await;
}

#[tokio::test]
async fn bad_container_sections_are_model_problems() {
    let d = Deployment::new();
    d.write_model("good.pig", &container_model("good", json!({})));
    d.write_model("no-image.pig", &container_model("noimage", json!({"container": {"image": ""}})));
    let escaping = json!({"container": {"mounts": [{"source": "../../../etc", "target": "/etc2"}]}});
    d.write_model("escape.pig", &container_model("escape", escaping));
    let mut no_section = container_model("nosection", json!({}));
    no_section.as_object_mut().unwrap().remove("container");
    d.write_model("no-section.pig", &no_section);
    // A seed NoEngine model without a section keeps loading as before.
    let mut seed = container_model("seed", json!({"type": "NoEngine"}));
    seed.as_object_mut().unwrap().remove("container");
    d.write_model("seed.pig", &seed);
    // The shipped example stays valid.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/container/ticker.pig");
    d.write_model_text("ticker.pig", &std::fs::read_to_string(example).unwrap());
    let host = d.start().await;
    let client = host.uds();

    let (_, problems) = send(&client, Method::GET, "/api/models/problems").await;
    let problems = problems["problems"].as_array().unwrap().clone();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let problem = |file: &str| {
        problems
            .iter()
            .find(|p| p["file"].as_str().unwrap().ends_with(file))
            .unwrap_or_else(|| panic!("no problem for {file}: {problems:#?}"))
            .clone()
    };
    assert_eq!(problem("no-image.pig")["key"], "container.image");
    let escape = problem("escape.pig");
    assert_eq!(escape["key"], "container.mounts[0].source", "{escape}");
    assert!(escape["message"].as_str().unwrap().contains("no '..'"), "{escape}");
    let no_section = problem("no-section.pig");
    assert_eq!(no_section["key"], "container");
    assert!(no_section["message"].as_str().unwrap().contains("needs a container section"), "{no_section}");

    let (_, apps) = send(&client, Method::GET, "/api/apps").await;
    let mut names: Vec<&str> = apps.as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, vec!["good", "seed", "ticker"]);
    let seed = status(&client, "seed").await;
    assert_eq!(seed["mode"], "unmanaged", "a seed NoEngine model without a section is not a container: {seed}");
    host.shutdown().await;

    // `apollo check` names file, position and key.
    let out = d.cli(&["check"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("escape.pig: ") && out.stdout.contains("container.mounts[0].source: "), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_takes_over_our_running_container() {
    if !common::components::docker() {
        return;
    }
    // The engine is reached through a symlink the test removes and puts back, so the
    // next host starts while the engine seems gone and sees it return.
    let link = format!("/tmp/apollo-test-docker-link-{}.sock", std::process::id());
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(SOCKET, &link).unwrap();
    let d = Deployment::with(json!({"ci": {"docker_host": format!("unix://{link}")}}));
    let name = format!("takeover-{}", std::process::id());
    let _cleanup = RemoveOnDrop(format!("apollo-{name}"));
    d.write_model(&format!("{name}.pig"), &container_model(&name, json!({})));

    let first = d.spawn();
    let client = first.uds();
    require_engine(&client).await;
    let (code, body) = send(&client, Method::POST, &format!("/api/apps/{name}/start")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let id = eventually("running", WAIT, || async {
        let s = status(&client, &name).await;
        (s["state"] == "running").then(|| s["container"]["id"].as_str().unwrap().to_string())
    })
    .await;
    first.crash();

    // The next host cannot reach the engine: the container is not re-adopted.
    std::fs::remove_file(&link).unwrap();
    let second = d.spawn();
    let client = second.uds();
    eventually("the service not running", WAIT, || async {
        let s = status(&client, &name).await;
        (s["state"] != "running" && !s["message"].as_str().unwrap_or_default().is_empty()).then_some(())
    })
    .await;

    // The engine is back: a start takes over the container that kept running.
    std::os::unix::fs::symlink(SOCKET, &link).unwrap();
    let (code, body) = send(&client, Method::POST, &format!("/api/apps/{name}/start")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let s = status(&client, &name).await;
    assert_eq!((s["state"].as_str(), s["container"]["id"].as_str()), (Some("running"), Some(id.as_str())), "{s}");
    assert_eq!(s["instances"][0]["adopted"], true, "{s}");
    assert_eq!(engine_containers(&client, &format!("apollo-{name}")).await.len(), 1);
    let (code, body) = send(&client, Method::POST, &format!("/api/apps/{name}/stop")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(engine_containers(&client, &format!("apollo-{name}")).await.is_empty());
    drop(second);
    let _ = std::fs::remove_file(&link);
}
