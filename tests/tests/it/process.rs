//! The host as an operator runs it: `apollo serve` as a child process. Store contents
//! survive a `kill -9`, the stale socket is replaced, SIGTERM shuts down cleanly, and
//! a bad config stops the start with a message naming file, line:column and key.

use crate::common;

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

    // What was committed before the crash is in the store file, read without a host.
    let store = apollo_host::store::SqliteStore::open(&d.config().db.sqlite.path).unwrap();
    use apollo_host::store::Store;
    let models = store.list_models().await.unwrap();
    assert_eq!(models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), vec!["web"]);
    let runtime = store.get_runtime("web").await.unwrap().expect("runtime row for a registered service");
    assert_eq!(runtime.last_status, "stopped");
    drop(store);
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
    // A second host on the same data directory must refuse to start, and touch nothing.
    let out = run_cli(&["serve", "--config", d.config_path().to_str().unwrap()], None);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("another host already uses this data directory"), "{}", out.stderr);
    // A second host with its own data directory but the same socket path: refused too.
    let other = Deployment::with(json!({"server": {"uds": d.socket()}}));
    let out = run_cli(&["serve", "--config", other.config_path().to_str().unwrap()], None);
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

#[tokio::test]
async fn first_start_generates_a_password_shown_once() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let d = Deployment::new();
    let start = |d: &Deployment| {
        let mut command = Command::new(common::apollo_bin());
        command.env_remove("APOLLO_ADMIN_PASSWORD").stderr(Stdio::piped());
        HostProcess::spawn_with(&d.config_path(), command)
    };
    let mut first = start(&d);
    let stderr = first.child.stderr.take().unwrap();
    let mut password = None;
    for line in BufReader::new(stderr).lines().take(10) {
        let line = line.unwrap();
        if let Some(p) = line.trim().strip_prefix("password: ") {
            password = Some(p.trim().to_string());
            break;
        }
    }
    let password = password.expect("the generated password is printed on the first start");
    let login = first
        .tcp()
        .send(http::Method::POST, "/api/auth/login", Some(&json!({"username": "admin", "password": password})))
        .await
        .unwrap();
    assert_eq!(login.status, 200);
    assert_eq!(first.terminate().code(), Some(0));

    let mut second = start(&d);
    let ok: Value =
        second.tcp().post("/api/auth/login", Some(&json!({"username": "admin", "password": password}))).await.unwrap();
    assert!(ok["token"].is_string(), "the generated password stays valid across restarts");
    let mut stderr = second.child.stderr.take().unwrap();
    nix::sys::signal::kill(second.pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(!rest.contains(&password), "shown only once: {rest}");
    assert!(!rest.contains("First start"), "{rest}");
}
