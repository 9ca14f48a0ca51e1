//! Authentication through the real host: every protected route in the OpenAPI document
//! refuses a missing token, login/logout/expiry, the login throttle, the trusted unix
//! socket, and the audit log of mutating calls.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use apollo_host::cli::ApiClient;
use common::{ADMIN_PASSWORD, Deployment};
use http::Method;
use serde_json::{Value, json};

/// Every operation in the document, with whether it declares itself public
/// (`security: [{}]`).
fn operations(doc: &Value) -> Vec<(Method, String, bool)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
            let public = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty())));
            ops.push((method, path.replace("{name}", "web"), public));
        }
    }
    ops
}

#[tokio::test]
async fn every_protected_route_needs_a_token() {
    let d = Deployment::new();
    d.write_model("web.pig", &common::model("web", "app_web", &[]));
    let host = d.start().await;
    let anonymous = host.tcp();
    let doc: Value = anonymous.get("/api/openapi.json").await.expect("the document is public");
    let ops = operations(&doc);
    assert!(ops.len() >= 10, "expected the whole API in the document, got {ops:?}");
    let mut protected = 0;
    for (method, path, public) in &ops {
        let response = anonymous.send(method.clone(), path, None).await.unwrap();
        if *public {
            assert_ne!(response.status, 401, "{method} {path} is documented as public");
            continue;
        }
        protected += 1;
        assert_eq!(response.status, 401, "{method} {path} without a token");
        assert_eq!(response.json()["error"]["code"], "unauthorized");
        assert_eq!(response.headers["www-authenticate"], "Bearer");
        let forged = anonymous.clone().with_token(Some("apo_not-a-real-token".into()));
        assert_eq!(
            forged.send(method.clone(), path, None).await.unwrap().status,
            401,
            "{method} {path} with a forged token"
        );
    }
    assert!(protected >= 8);
    // Routes that are not documented are refused too (fail closed), and /healthz is public.
    assert_eq!(anonymous.send(Method::GET, "/api/not-a-route", None).await.unwrap().status, 401);
    assert_eq!(anonymous.send(Method::GET, "/healthz", None).await.unwrap().status, 200);
    assert_eq!(anonymous.send(Method::GET, "/swagger/", None).await.unwrap().status, 200);
    host.shutdown().await;
}

#[tokio::test]
async fn login_logout_and_token_use() {
    let d = Deployment::new();
    let host = d.start().await;
    let client = host.tcp();

    let wrong = client
        .send(Method::POST, "/api/auth/login", Some(&json!({"username": "admin", "password": "nope"})))
        .await
        .unwrap();
    assert_eq!(wrong.status, 401);
    assert!(!String::from_utf8_lossy(&wrong.body).contains("nope"));

    let token = host.login().await;
    assert!(token.starts_with("apo_"));
    let authed = client.clone().with_token(Some(token.clone()));
    let me: Value = authed.get("/api/auth/whoami").await.unwrap();
    assert_eq!(me, json!({"user": "admin", "via": "tcp"}));
    let _: Vec<Value> = authed.get("/api/apps").await.unwrap();

    // The store keeps only a hash of the token.
    let stored = host.host.state.store.find_token(&token).await.unwrap();
    assert!(stored.is_none(), "tokens must not be stored in clear");

    let out = authed.send(Method::POST, "/api/auth/logout", None).await.unwrap();
    assert_eq!(out.status, 204);
    assert_eq!(authed.get::<Value>("/api/apps").await.unwrap_err().status(), Some(401));
    host.shutdown().await;
}

#[tokio::test]
async fn tokens_expire() {
    let d = Deployment::with(json!({"auth": {"token_ttl_secs": 1}}));
    let host = d.start().await;
    let authed = host.authed().await;
    let _: Vec<Value> = authed.get("/api/apps").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(authed.get::<Value>("/api/apps").await.unwrap_err().status(), Some(401));
    host.shutdown().await;
}

#[tokio::test]
async fn repeated_failed_logins_are_slowed_down() {
    let d = Deployment::with(json!({"auth": {"max_failed_logins": 3, "lockout_base_secs": 30}}));
    let host = d.start().await;
    let client = host.tcp();
    let attempt = |password: &'static str| {
        let client = client.clone();
        async move {
            client
                .send(Method::POST, "/api/auth/login", Some(&json!({"username": "admin", "password": password})))
                .await
                .unwrap()
        }
    };
    assert_eq!(attempt("a").await.status, 401);
    assert_eq!(attempt("b").await.status, 401);
    let locked = attempt("c").await;
    assert_eq!(locked.status, 429);
    assert_eq!(locked.headers["retry-after"], "30");
    // Even the right password waits out the lockout.
    let right = client
        .send(Method::POST, "/api/auth/login", Some(&json!({"username": "admin", "password": ADMIN_PASSWORD})))
        .await
        .unwrap();
    assert_eq!(right.status, 429);
    host.shutdown().await;
}

#[tokio::test]
async fn unix_socket_is_trusted_and_private() {
    let d = Deployment::new();
    let host = d.start().await;
    let mode = std::fs::metadata(&host.host.uds_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let me: Value = host.uds().get("/api/auth/whoami").await.unwrap();
    assert_eq!(me, json!({"user": "unix-socket", "via": "unix_socket"}));
    host.shutdown().await;
}

#[tokio::test]
async fn mutating_calls_are_audited() {
    let d = Deployment::new();
    let host = d.start().await;
    let authed = host.authed().await;
    let _: Value = authed.post("/api/reload", None).await.unwrap();
    let _: Value = host.uds().post("/api/reload", None).await.unwrap();
    let denied = host.tcp().send(Method::POST, "/api/reload", None).await.unwrap();
    assert_eq!(denied.status, 401);
    let entries: Vec<Value> = authed.get("/api/audit?limit=10").await.unwrap();
    let summary: Vec<(String, String, u64)> = entries
        .iter()
        .map(|e| {
            (e["actor"].as_str().unwrap().into(), e["path"].as_str().unwrap().into(), e["status"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("anonymous".into(), "/api/reload".into(), 401),
            ("unix-socket".into(), "/api/reload".into(), 200),
            ("admin".into(), "/api/reload".into(), 200),
            ("admin".into(), "/api/auth/login".into(), 200),
        ]
    );
    assert_eq!(entries[1]["remote"], "unix");
    host.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let d = Deployment::with(json!({"server": {"body_limit_bytes": 4096}}));
    let host = d.start().await;
    let client: ApiClient = host.tcp();
    let big = json!({"username": "admin", "password": "x".repeat(10_000)});
    let r = client.send(Method::POST, "/api/auth/login", Some(&big)).await.unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], "payload_too_large");

    let r = client.send(Method::POST, "/api/auth/login", Some(&json!({"user": "x"}))).await.unwrap();
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("username"));

    let authed = host.authed().await;
    let r = authed.send(Method::GET, "/api/nope", None).await.unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "not_found");
    let r = authed.send(Method::DELETE, "/api/apps", None).await.unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["error"]["code"], "method_not_allowed");
    let r = authed.send(Method::GET, "/api/audit?limit=notanumber", None).await.unwrap();
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].is_string());
    host.shutdown().await;
}

/// Defence in depth behind the 0600 mode: even if an operator loosens the socket's
/// mode, a connection from another user id is closed unanswered (SO_PEERCRED).
// Multi-threaded: the blocking client processes below must not stall the in-process host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_users_are_refused_even_on_a_loosened_socket() {
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run a client as another user");
        return;
    }
    let d = Deployment::new();
    let host = d.start().await;
    for dir in [d.root().to_path_buf(), d.root().join("data")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&host.host.uds_path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let addr = format!("unix:{}", host.host.uds_path.display());
    let run_as = |uid: u32| {
        let out = std::process::Command::new(common::apollo_bin())
            .args(["--addr", &addr, "app", "list"])
            .uid(uid)
            .env("HOME", "/")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stderr) = run_as(65534);
    assert_eq!(code, Some(1), "another user must not be served: {stderr}");
    assert!(stderr.contains("talking to the host"), "{stderr}");
    assert_eq!(run_as(0).0, Some(0), "the owner (root) is served");
    host.shutdown().await;
}
