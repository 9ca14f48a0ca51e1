//! The router tested in-process with `oneshot` on a cheap state (SQLite in a temp
//! dir, no services, no modules, no listeners): the gate, the error shape and a few
//! routes, fast enough to run with the unit tests.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::{Transport, router};
use crate::config::Config;
use crate::state::AppState;

/// A host state over a temp dir; the dir and the task owners live as long as it.
struct Cheap {
    state: AppState,
    _dir: tempfile::TempDir,
    _tasks: tokio_util::task::TaskTracker,
    cancel: tokio_util::sync::CancellationToken,
}

impl Drop for Cheap {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn cheap_state() -> Cheap {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = r#"{"service_root": ".", "log": {"enable_log": false}, "registry": {"watch": false}}"#;
    let mut config = Config::parse(text, "cheap.pig").expect("config").config;
    config.resolve(dir.path());
    let lock = crate::data_dir::lock_data_dir(&config.data_dir).expect("lock");
    let tasks = tokio_util::task::TaskTracker::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let (state, _) =
        crate::server::build_state(config, Some("cheap-password-123".into()), lock, &tasks, cancel.clone())
            .await
            .expect("state");
    Cheap { state, _dir: dir, _tasks: tasks, cancel }
}

async fn call(state: &AppState, path: &str, via: Option<Transport>) -> (StatusCode, serde_json::Value) {
    let mut request = Request::get(path).body(Body::empty()).expect("request");
    if let Some(via) = via {
        request.extensions_mut().insert(via);
    }
    let response = router(state.clone()).oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_fails_closed_and_trusts_the_unix_socket() {
    let cheap = cheap_state().await;
    // No transport marker: treated as TCP, so a token is needed.
    let (status, body) = call(&cheap.state, "/api/apps", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(call(&cheap.state, "/metrics", Some(Transport::Tcp)).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = call(&cheap.state, "/api/apps", Some(Transport::UnixSocket)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::json!([]));
    // A module that is not loaded has no public routes: the gate answers first.
    assert_eq!(
        call(&cheap.state, "/api/module/hello/signed/x", Some(Transport::Tcp)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_answer_in_the_error_shape() {
    let cheap = cheap_state().await;
    let (status, body) = call(&cheap.state, "/api/nope", Some(Transport::UnixSocket)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("/api/nope"), "{body}");
    let (status, body) = call(&cheap.state, "/api/module/nope/x", Some(Transport::UnixSocket)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("no module named"), "{body}");
}
