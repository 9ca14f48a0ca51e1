//! The host as an operator runs it: `apollo serve` as a child process. Store contents
//! survive a `kill -9`, the stale socket is replaced, SIGTERM shuts down cleanly, and
//! a bad config stops the start with a message naming file, line:column and key.

mod common;

use common::{Deployment, HostProcess, model, run_cli};
use serde_json::{Value, json};

#[tokio::test]
async fn store_survives_kill_9_and_restart() {
    let d = Deployment::new();
    d.write_model("web.pig", &model("web", "app_web", &[]));
    let first = d.spawn();
    let login: Value = first
        .tcp()
        .post("/api/auth/login", Some(&json!({"username": "admin", "password": common::ADMIN_PASSWORD})))
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_string();
    let _: Value = first.uds().post("/api/reload", None).await.unwrap();
    let socket = first.socket.clone();
    first.crash();
    assert!(socket.exists(), "a crash leaves the socket file behind");

    let second = HostProcess::spawn(&d.config_path());
    let authed = second.tcp().with_token(Some(token));
    // The token issued before the crash is still valid: it was committed to the store.
    let apps: Vec<Value> = authed.get("/api/apps").await.unwrap();
    assert_eq!(apps.len(), 1);
    let audit: Vec<Value> = authed.get("/api/audit").await.unwrap();
    let paths: Vec<&str> = audit.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, vec!["/api/reload", "/api/auth/login"], "audit from before the crash");
    let status = second.terminate();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status:?}");
    assert!(!socket.exists(), "a clean shutdown removes the socket");
}

#[tokio::test]
async fn a_live_socket_is_never_stolen() {
    let d = Deployment::new();
    let first = d.spawn();
    // A second host on the same socket (and a free TCP port) must refuse to start.
    let out = run_cli(&["serve", "--config", d.config_path().to_str().unwrap()], None);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("another host is already serving"), "{}", out.stderr);
    // And the first still answers.
    let _: Value = first.uds().get("/healthz").await.unwrap();
}

#[test]
fn bad_config_is_reported_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("apollo.pig");
    std::fs::write(&path, "{\n  \"server\": {\n    \"host\": \"127.0.0.1\",\n    \"port\": 70000\n  }\n}\n").unwrap();
    let out = run_cli(&["serve", "--config", path.to_str().unwrap()], None);
    assert_eq!(out.code, 2);
    let expected = format!("{}:4:17: server.port: invalid value", path.display());
    assert!(out.stderr.contains(&expected), "{}", out.stderr);

    std::fs::write(&path, "{\n  \"app_root\": \"a\"\n  \"log\": {}\n}\n").unwrap();
    let out = run_cli(&["check", "--config", path.to_str().unwrap()], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains(&format!("{}:3:3:", path.display())), "{}", out.stderr);

    std::fs::write(&path, "{\"auth\": {\"admin_password_hash\": \"plaintext\"}}").unwrap();
    let out = run_cli(&["check", "--config", path.to_str().unwrap()], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("auth.admin_password_hash: is not an argon2 hash"), "{}", out.stderr);
}

#[test]
fn unknown_keys_warn_but_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("apollo.pig");
    // The seed's own config: extra keys, a clear-text password we refuse to read.
    std::fs::write(
        &path,
        r#"{"service_root": ".", "app_bridge": "rainbow_bridge",
            "server": {"host": "127.0.0.1", "port": 9090, "account": "landers", "passwd": "123456"},
            "db": {"mongo": {"name": "ApolloMongo", "url": "127.0.0.1:27017", "user": "", "passwd": ""}}}"#,
    )
    .unwrap();
    let out = run_cli(&["check", "--config", path.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("app_bridge: unknown key"), "{}", out.stdout);
    assert!(out.stdout.contains("server.passwd: ignored: clear-text passwords are not read"), "{}", out.stdout);
}
