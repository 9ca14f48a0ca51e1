//! The real `apollo` binary against a running host: over the unix socket by default,
//! over TCP with --addr/--token, JSON output, exit codes, the scaffolder (whose scripts
//! must work as written), `passwd`, and the interactive shell fed through a pipe.

use crate::common;

use std::process::Command;
use std::time::Duration;

use apollo_host::model::{parse_model, script_env};
use common::{Deployment, eventually, model, run_cli};
use serde_json::{Value, json};

fn deployment() -> Deployment {
    let d = Deployment::new();
    d.write_model("web.pig", &model("web", "app_web", &[]));
    let mut worker = model("worker", "app_worker", &["web"]);
    worker["run_data"]["ports"] = json!([18200]);
    d.write_model("worker.pig", &worker);
    d
}

#[tokio::test]
async fn app_commands_over_the_socket() {
    let d = deployment();
    let _host = d.spawn();

    let out = d.cli(&["app", "list"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("STATE"), "{}", out.stdout);
    assert!(lines[1].starts_with("web ") && lines[1].contains("stopped"), "{}", out.stdout);
    assert!(lines[2].starts_with("worker") && lines[2].contains("18200") && lines[2].contains("web"), "{}", out.stdout);

    let out = d.cli(&["--json", "app", "list"]);
    let apps: Vec<Value> = serde_json::from_str(&out.stdout).expect("--json prints JSON");
    assert_eq!(apps.len(), 2);

    let out = d.cli(&["app", "info", "worker"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("run_dep") && out.stdout.contains("app_worker"), "{}", out.stdout);

    let out = d.cli(&["app", "status", "-a"]);
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout.lines().count(), 3);

    let out = d.cli(&["app", "status", "ghost"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no service named \"ghost\""), "{}", out.stderr);

    let out = d.cli(&["reload"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("0 added"), "{}", out.stdout);

    let out = d.cli(&["version"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("apollo host 0."), "{}", out.stdout);

    let out = d.cli(&["check"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("2 loadable, 0 problem(s)"), "{}", out.stdout);
}

#[tokio::test]
async fn remote_access_needs_a_token() {
    let d = deployment();
    let host = d.spawn();
    let addr = format!("http://{}", host.http_addr);
    let out = run_cli(&["--addr", &addr, "app", "list"], None);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("HTTP 401"), "{}", out.stderr);

    let out = run_cli(&["--addr", &addr, "login", "--password-stdin"], Some(&format!("{}\n", common::ADMIN_PASSWORD)));
    assert_eq!(out.code, 0, "{out:?}");
    let token = out.stdout.trim().to_string();
    let out = run_cli(&["--addr", &addr, "--token", &token, "app", "list"], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("worker"));

    let out = run_cli(&["--addr", "https://example.invalid", "app", "list"], None);
    assert_eq!(out.code, 2);
    let out = run_cli(&["--addr", "unix:/nonexistent/apollo.sock", "app", "list"], None);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("cannot reach the host"), "{}", out.stderr);
}

#[tokio::test]
async fn new_scaffolds_a_service_whose_scripts_work() {
    let d = deployment();
    let host = d.spawn();
    let out = d.cli(&["new", "hello"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(d.cli(&["new", "hello"]).stderr.contains("already exists"));
    assert_eq!(d.cli(&["new", "../evil"]).code, 1);

    // The running host picks the new model up by itself.
    eventually("hello registered", Duration::from_secs(10), || async {
        let apps: Vec<Value> = host.uds().get("/api/apps").await.ok()?;
        apps.iter().any(|a| a["name"] == "hello").then_some(())
    })
    .await;

    // Run the scripts as the host will: directly, cwd = APP_ROOT, with the env contract.
    let config = d.config();
    let text = std::fs::read_to_string(d.models_dir().join("hello.pig")).unwrap();
    let hello = parse_model(&text, &|_| None).unwrap();
    let env = script_env(&config, &hello, &[18210]);
    let app_root = config.app_root.join("hello");
    std::fs::create_dir_all(&app_root).unwrap();
    let script = |name: &str| {
        Command::new(config.app_manager.join("hello").join(name))
            .current_dir(&app_root)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap()
    };
    assert_eq!(script("check.sh").status.code(), Some(101), "not running yet");
    // Whatever happens below, the heartbeat loop must not outlive the test.
    struct KillOnDrop(std::path::PathBuf, Vec<(String, String)>, std::path::PathBuf);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = Command::new(&self.0).current_dir(&self.2).envs(self.1.iter().map(|(k, v)| (k, v))).output();
        }
    }
    let _guard = KillOnDrop(config.app_manager.join("hello/kill.sh"), env.clone(), app_root.clone());
    let started = script("start.sh");
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    assert_eq!(script("check.sh").status.code(), Some(0));
    let pid_file = config.app_pids.join("hello.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(apollo_host::supervisor::procfs::alive(pid));
    assert!(script("restart.sh").status.success());
    let restarted: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert_ne!(restarted, pid);
    assert!(!apollo_host::supervisor::procfs::alive(pid), "restart stopped the old process");
    let stopped = script("stop.sh");
    assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    assert_eq!(script("check.sh").status.code(), Some(101));
    assert!(!apollo_host::supervisor::procfs::alive(restarted));
    assert!(!pid_file.exists());
    let log = std::fs::read_to_string(config.app_log_dir.join("hello/hello.log")).unwrap();
    assert!(log.contains("hello alive on ports: 18210"), "{log}");
}

#[test]
fn passwd_prints_a_verifiable_hash() {
    let out = run_cli(&["passwd", "--stdin"], Some("a-long-password\n"));
    assert_eq!(out.code, 0, "{out:?}");
    let hash = out.stdout.trim();
    assert!(apollo_host::auth::verify_password("a-long-password", hash));
    assert!(!out.stdout.contains("a-long-password"));
    assert_eq!(run_cli(&["passwd", "--stdin"], Some("short\n")).code, 2);
}

#[tokio::test]
async fn shell_runs_apollocli_commands() {
    let d = deployment();
    let _host = d.spawn();
    let config = d.config_path();
    let out = run_cli(
        &["--config", config.to_str().unwrap(), "shell"],
        Some("help\napp list\nstatus worker\nstart web\nbackup list\nfrobnicate\ncheck\nversion\nexit\n"),
    );
    assert_eq!(out.code, 0, "{out:?}");
    for command in ["address", "reconnect", "sync", "backup", "restart", "logs"] {
        assert!(out.stdout.contains(command), "help lists {command}: {}", out.stdout);
    }
    assert!(out.stdout.contains("worker"), "{}", out.stdout);
    assert!(out.stderr.contains("start.sh: not found"), "the shell really asked the host to start web: {}", out.stderr);
    assert!(out.stdout.contains("ID") || out.stdout.contains("no backups"), "backup list answers: {}", out.stdout);
    assert!(out.stderr.contains("unknown command"), "{}", out.stderr);
    assert!(out.stdout.contains("0 problem(s)"), "{}", out.stdout);
}

#[tokio::test]
async fn control_commands_start_stop_and_show_logs() {
    let d = Deployment::new();
    let mut svc = model("ticker", "app_ticker", &[]);
    svc["run_data"]["command"] = json!(["/bin/sh", "-c", "echo hello from ticker; exec sleep 1000"]);
    d.write_model("ticker.pig", &svc);
    let mut dep = model("after", "app_after", &["ticker"]);
    dep["run_data"]["command"] = json!(["/bin/sleep", "1000"]);
    d.write_model("after.pig", &dep);
    let _host = d.spawn();

    let out = d.cli(&["app", "start", "after"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("after") && out.stdout.contains("running"), "{}", out.stdout);
    let out = d.cli(&["--json", "app", "status", "ticker"]);
    let status: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(status[0]["state"], "running", "run_dep started first");

    let logs = eventually("the log line", Duration::from_secs(10), || async {
        let out = d.cli(&["app", "logs", "ticker", "-n", "5"]);
        out.stdout.contains("hello from ticker").then_some(out)
    })
    .await;
    assert_eq!(logs.code, 0);

    let out = d.cli(&["app", "restart", "ticker"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = d.cli(&["app", "stop", "-a"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.matches("stopped").count(), 2, "{}", out.stdout);
    let out = d.cli(&["app", "start", "-a"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = d.cli(&["app", "kill", "ticker"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = d.cli(&["app", "start", "ghost"]);
    assert_eq!(out.code, 1);
}

#[tokio::test]
async fn alarms_from_the_cli() {
    // Without the disk check: this machine's own disk filling up is not what is tested
    // here, and its alarm would be in the list that must start empty.
    let d = Deployment::with(json!({"alarms": {"disk_check_secs": 0}}));
    let _host = d.spawn();
    let out = d.cli(&["alarm", "list"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("ID"), "{}", out.stdout);
    let out = d.cli(&["--json", "alarm", "list", "--state", "all"]);
    assert_eq!(serde_json::from_str::<Value>(&out.stdout).unwrap(), json!([]));
    assert_eq!(d.cli(&["alarm", "list", "--state", "bogus"]).code, 2);
    let out = d.cli(&["alarm", "ack", "999"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("HTTP 404"), "{}", out.stderr);
}
