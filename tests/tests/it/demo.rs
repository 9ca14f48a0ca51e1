//! The shipped demo deployment stays loadable: its config and every model pass
//! `apollo check`, and a host serving its models lists all four services.

use crate::common;

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

/// Runs the demo's manage scripts the way the host will (directly, cwd = APP_ROOT, the
/// seed's environment contract) against the real demo-http binary.
#[test]
fn demo_scripts_manage_real_processes() {
    use std::io::{Read, Write};
    use std::process::Command;

    use apollo_host::model::{parse_model, script_env};

    let bin_dir = PathBuf::from(common::apollo_bin()).parent().unwrap().to_path_buf();
    let demo_http = bin_dir.join("demo-http");
    assert!(demo_http.exists(), "build it first: cargo build -p demo-http (cargo test --workspace does)");
    let d = Deployment::with(json!({"app_manager": demo_dir().join("manager").canonicalize().unwrap()}));
    let config = d.config();
    let lookup = |name: &str| (name == "DEMO_HTTP_BIN").then(|| demo_http.display().to_string());
    let load = |name: &str| {
        let text = std::fs::read_to_string(demo_dir().join(format!("apps/.octopus/{name}.pig"))).unwrap();
        parse_model(&text, &lookup).unwrap()
    };
    // Ports of our own, so a running demo on this machine does not interfere.
    let (web_port, worker_port) = (18180u16, 18181u16);
    let run = |name: &str, script: &str, port: u16| {
        let model = load(name);
        let mut env = script_env(&config, &model, &[port]);
        if name == "worker" {
            // Later entries win: point the worker at our web instead of the model's port.
            env.push(("DEMO_UPSTREAM".into(), format!("127.0.0.1:{web_port}")));
        }
        let app_root = config.app_root.join(name);
        std::fs::create_dir_all(&app_root).unwrap();
        let out = Command::new(config.app_manager.join(name).join(script))
            .current_dir(&app_root)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(env)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let get = |port: u16| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    };
    struct Cleanup<F: Fn()>(F);
    impl<F: Fn()> Drop for Cleanup<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let _cleanup = Cleanup(|| {
        run("worker", "kill.sh", worker_port);
        run("web", "kill.sh", web_port);
    });

    assert_eq!(run("web", "check.sh", web_port).0, Some(101));
    let started = run("web", "start.sh", web_port);
    assert_eq!(started.0, Some(0), "{}", started.1);
    let started = run("worker", "start.sh", worker_port);
    assert_eq!(started.0, Some(0), "{}", started.1);
    assert!(get(worker_port).contains("\"upstream\":\"ok\""));

    assert_eq!(run("web", "stop.sh", web_port).0, Some(0));
    assert_eq!(run("web", "check.sh", web_port).0, Some(101));
    assert!(get(worker_port).contains("\"upstream\":\"down\""), "the worker sees its dependency go");

    let restarted = run("worker", "restart.sh", worker_port);
    assert_eq!(restarted.0, Some(0), "{}", restarted.1);
    assert_eq!(run("worker", "kill.sh", worker_port).0, Some(0));
    assert_eq!(run("worker", "check.sh", worker_port).0, Some(101));
    let log = std::fs::read_to_string(config.app_log_dir.join("worker/worker.log")).unwrap();
    assert!(log.contains(&format!("listening on 127.0.0.1:{worker_port}")), "{log}");
}
