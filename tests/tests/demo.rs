//! The shipped demo deployment stays loadable: its config and every model pass
//! `apollo check`, and a host serving its models lists all four services.

mod common;

use std::path::PathBuf;

use common::{Deployment, run_cli};
use serde_json::{Value, json};

fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/demo")
}

#[test]
fn demo_config_and_models_check_clean() {
    let config = demo_dir().join("apollo.pig");
    let out = run_cli(&["check", "--config", config.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("4 loadable, 0 problem(s)"), "{}", out.stdout);
    assert!(!out.stdout.contains("warning"), "the demo config has no unknown keys: {}", out.stdout);
}

#[tokio::test]
async fn a_host_serves_the_demo_models() {
    let apps = demo_dir().join("apps").canonicalize().unwrap();
    let d = Deployment::with(json!({"app_root": apps}));
    let host = d.spawn();
    let out = d.cli(&["--json", "app", "list"]);
    assert_eq!(out.code, 0, "{out:?}");
    let listed: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    let names: Vec<&str> = listed.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["api", "cron", "web", "worker"]);
    let worker = listed.iter().find(|a| a["name"] == "worker").unwrap();
    assert_eq!(worker["run_dep"], json!(["web"]));
    let health: Value = host.tcp().get("/healthz").await.unwrap();
    assert_eq!(health["services"], 4);
}
