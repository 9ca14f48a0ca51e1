//! Backup and restore through the real host: backup → delete a file and change a model
//! → restore → the file and the model are back and the service that was running runs
//! again; retention; a crafted archive with `../escape` refused with nothing changed;
//! ids with path characters refused; auth over TCP; the `apollo backup` CLI.

use crate::common;

use std::path::Path;
use std::time::Duration;

use apollo_host::cli::ApiClient;
use common::{Deployment, eventually};
use http::{Method, StatusCode};
use serde_json::{Value, json};

fn sleeper(name: &str) -> Value {
    let mut m = common::model(name, &format!("app_{name}"), &[]);
    m["run_data"]["command"] = json!(["/bin/sleep", "1000"]);
    m
}

async fn send(client: &ApiClient, method: Method, path: &str) -> (StatusCode, Value) {
    let r = client.send(method, path, None).await.expect("request");
    (r.status, r.json())
}

async fn wait_state(client: &ApiClient, name: &str, want: &str) {
    let path = format!("/api/apps/{name}/status");
    eventually(&format!("{name} {want}"), Duration::from_secs(20), || async {
        let (status, body) = send(client, Method::GET, &path).await;
        (status == StatusCode::OK && body["state"] == want).then_some(())
    })
    .await;
}

async fn create(client: &ApiClient) -> Value {
    let (status, entry) = send(client, Method::POST, "/api/backups").await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    entry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_brings_back_files_models_and_running_services() {
    let d = Deployment::new();
    d.write_model("web.pig", &sleeper("web"));
    let data = d.root().join("app/web/data.txt");
    std::fs::create_dir_all(data.parent().unwrap()).unwrap();
    std::fs::write(&data, "precious").unwrap();
    std::fs::create_dir_all(d.root().join("manager/web")).unwrap();
    std::fs::write(d.root().join("manager/web/start.sh"), "#!/bin/sh\n").unwrap();
    let host = d.start().await;
    let client = host.uds();
    let (status, body) = send(&client, Method::POST, "/api/apps/web/start").await;
    assert!(status.is_success(), "{body}");
    wait_state(&client, "web", "running").await;

    let entry = create(&client).await;
    let id = entry["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("apollo-"), "{entry}");
    assert_eq!(entry["services"], json!(["web"]));
    assert!(d.root().join(format!("backup/{id}.tar.gz")).is_file());
    let (_, listed) = send(&client, Method::GET, "/api/backups").await;
    assert_eq!(listed[0]["id"], id.as_str());

    // Damage: a file gone, a model changed (and picked up), a script gone.
    std::fs::remove_file(&data).unwrap();
    std::fs::remove_file(d.root().join("manager/web/start.sh")).unwrap();
    let mut changed = sleeper("web");
    changed["eng_des"] = json!("changed after the backup");
    d.write_model("web.pig", &changed);
    eventually("the changed model is loaded", Duration::from_secs(20), || async {
        let (_, app) = send(&client, Method::GET, "/api/apps/web").await;
        (app["model"]["eng_des"] == "changed after the backup").then_some(())
    })
    .await;
    wait_state(&client, "web", "running").await;

    let (status, report) = send(&client, Method::POST, &format!("/api/backups/{id}/restore")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["stopped"], json!(["web"]), "{report}");
    assert_eq!(report["restarted"], json!(["web"]), "{report}");
    assert!(report["store"].as_str().unwrap().contains("not replaced"), "{report}");

    assert_eq!(std::fs::read_to_string(&data).unwrap(), "precious");
    assert!(d.root().join("manager/web/start.sh").is_file());
    let (_, app) = send(&client, Method::GET, "/api/apps/web").await;
    assert_eq!(app["model"]["eng_des"], "web service", "the model is back: {app}");
    wait_state(&client, "web", "running").await;
    // No staging or moved-aside directories are left next to the targets.
    let leftovers: Vec<String> = std::fs::read_dir(d.root())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".restore-") || n.contains(".old-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Download streams the archive itself.
    let r = client.send(Method::GET, &format!("/api/backups/{id}/download"), None).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/gzip");
    assert_eq!(r.body.len() as u64, std::fs::metadata(d.root().join(format!("backup/{id}.tar.gz"))).unwrap().len());
    assert_eq!(&r.body[..2], &[0x1f, 0x8b], "gzip magic");

    let (status, _) = send(&client, Method::DELETE, &format!("/api/backups/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(&client, Method::DELETE, &format!("/api/backups/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_newest_n() {
    let d = Deployment::with(json!({"backup": {"retention": 2}}));
    let host = d.start().await;
    let client = host.uds();
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(create(&client).await["id"].as_str().unwrap().to_string());
    }
    let (_, listed) = send(&client, Method::GET, "/api/backups").await;
    let listed: Vec<&str> = listed.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(listed, vec![ids[3].as_str(), ids[2].as_str()]);
    let files = std::fs::read_dir(d.root().join("backup")).unwrap().count();
    assert_eq!(files, 2, "no partial files left behind either");
    // The built-in task is registered with its daily default.
    let (status, task) = send(&client, Method::GET, "/api/tasks/backup").await;
    assert_eq!(status, StatusCode::OK, "{task}");
    host.shutdown().await;
}

/// Writes `apollo-…-evil.tar.gz` into the backup folder with GNU tar `-P`, which keeps
/// the `../escape` member name (the tar crate refuses to write one).
fn plant_traversal_archive(d: &Deployment) -> String {
    let work = d.root().join("craft");
    let inner = work.join("inner");
    std::fs::create_dir_all(inner.join("app")).unwrap();
    std::fs::write(inner.join("app/planted"), "x").unwrap();
    std::fs::write(work.join("escape"), "outside").unwrap();
    let tree = json!({"source": "", "files": 0, "dirs": 0, "symlinks": 0, "bytes": 0, "skipped": 0});
    let manifest = json!({
        "version": 1, "id": "evil", "created_at": "2024-01-01T00:00:00.000Z", "host_version": "0",
        "services": [], "app": tree, "manager": tree,
        "store": {"path": "store/apollo.db", "bytes": 0, "sha256": ""}
    });
    std::fs::write(inner.join("manifest.json"), manifest.to_string()).unwrap();
    let id = "apollo-20240101T000000.000Z-e0e0e0".to_string();
    let out = d.root().join(format!("backup/{id}.tar.gz"));
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&inner)
        .arg("-czPf")
        .arg(&out)
        .args(["manifest.json", "app", "../escape"])
        .status()
        .expect("GNU tar");
    assert!(status.success());
    std::fs::remove_file(work.join("escape")).unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_traversal_archive_is_refused_and_nothing_changes() {
    let d = Deployment::new();
    d.write_model("web.pig", &sleeper("web"));
    std::fs::write(d.root().join("app/marker"), "before").unwrap();
    let id = plant_traversal_archive(&d);
    let host = d.start().await;
    let client = host.uds();
    send(&client, Method::POST, "/api/apps/web/start").await;
    wait_state(&client, "web", "running").await;

    let (status, body) = send(&client, Method::POST, &format!("/api/backups/{id}/restore")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("../escape") && message.contains("nothing was changed"), "{message}");
    for outside in ["escape", "craft/escape", "app/escape"] {
        assert!(!d.root().join(outside).exists(), "{outside} was written");
    }
    assert_eq!(std::fs::read_to_string(d.root().join("app/marker")).unwrap(), "before");
    assert!(!d.root().join("app/planted").exists());
    assert!(d.root().join("app/.octopus/web.pig").is_file());
    let (_, s) = send(&client, Method::GET, "/api/apps/web/status").await;
    assert_eq!(s["state"], "running", "the refused restore stopped nothing: {s}");
    assert!(
        !std::fs::read_dir(d.root()).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains(".restore-")),
        "staging removed"
    );

    // Ids are file-name stems only.
    for (path, want) in [
        ("/api/backups/..%2F..%2Fetc%2Fpasswd/download", StatusCode::BAD_REQUEST),
        ("/api/backups/apollo-..%2Fx/download", StatusCode::BAD_REQUEST),
        ("/api/backups/notes.txt", StatusCode::BAD_REQUEST),
        ("/api/backups/apollo-20990101T000000.000Z-000000/download", StatusCode::NOT_FOUND),
    ] {
        let (status, body) = send(&client, Method::GET, path).await;
        assert_eq!(status, want, "{path}: {body}");
    }
    let (status, _) = send(&client, Method::POST, "/api/backups/apollo-nope/restore").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_without_a_token_is_refused() {
    let d = Deployment::new();
    let host = d.start().await;
    for (method, path) in [(Method::GET, "/api/backups"), (Method::POST, "/api/backups")] {
        let (status, _) = send(&host.tcp(), method, path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    assert!(!d.root().join("backup").exists() || std::fs::read_dir(d.root().join("backup")).unwrap().count() == 0);
    let (status, _) = send(&host.authed().await, Method::GET, "/api/backups").await;
    assert_eq!(status, StatusCode::OK);
    host.shutdown().await;
}

#[test]
fn cli_backup_and_backup_list() {
    let d = Deployment::new();
    d.write_model("web.pig", &common::model("web", "app_web", &[]));
    let _host = d.spawn();
    let made = d.cli(&["backup"]);
    assert_eq!(made.code, 0, "{made:?}");
    let id = made.stdout.split_whitespace().nth(1).expect("backup <id> written").to_string();
    assert!(id.starts_with("apollo-"), "{made:?}");
    assert!(Path::new(&d.root().join(format!("backup/{id}.tar.gz"))).is_file());

    let listed = d.cli(&["backup", "list"]);
    assert_eq!(listed.code, 0, "{listed:?}");
    assert!(listed.stdout.starts_with("ID"), "{listed:?}");
    assert!(listed.stdout.contains(&id) && listed.stdout.contains("web"), "{listed:?}");

    let json = d.cli(&["--json", "backup", "list"]);
    let parsed: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(parsed[0]["id"], id.as_str());

    let bad = d.cli(&["backup", "restore", "../etc"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    let missing = d.cli(&["backup", "restore", "apollo-nope"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stderr.contains("no backup"), "{missing:?}");
}
