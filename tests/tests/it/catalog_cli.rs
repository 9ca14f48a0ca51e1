//! `apollo catalog …`: the real CLI binary against a real `apollo serve` with the real
//! `module_catalog.so` loaded, over the unix socket: the services the catalog lists
//! (the host's own, with their model's tags), one service's instances with their check
//! status, the KV store — and the error when the module is not there.

use crate::common;

use std::time::{Duration, Instant};

use common::Deployment;
use serde_json::{Value, json};

fn deployment(with_catalog: bool) -> Deployment {
    let d = Deployment::with(json!({"modules": {"dir": "modules"}}));
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    if with_catalog {
        std::fs::copy(common::module_library("module-catalog"), d.root().join("modules/module_catalog.so")).unwrap();
    }
    d
}

/// Runs `apollo catalog ARGS…`, expecting success; returns stdout.
fn ok(d: &Deployment, args: &[&str]) -> String {
    let mut full = vec!["catalog"];
    full.extend_from_slice(args);
    let out = d.cli(&full);
    assert_eq!(out.code, 0, "apollo catalog {args:?}: {out:?}");
    out.stdout
}

/// Retries `check` on the output of `apollo catalog ARGS…` for a few seconds (the
/// catalog lists the host's services shortly after start).
fn eventually(d: &Deployment, args: &[&str], check: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let out = ok(d, args);
        if check(&out) {
            return out;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "apollo catalog {args:?} never satisfied the check: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn services_instances_and_kv_from_the_command_line() {
    let d = deployment(true);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut web = common::model("web", "app_web", &[]);
    web["run_data"]["command"] = json!(["sleep", "300"]);
    web["run_data"]["ports"] = json!([port]);
    web["run_data"]["tags"] = json!(["edge"]);
    d.write_model("web.pig", &web);
    let _host = d.spawn();
    let started = d.cli(&["app", "start", "web"]);
    assert_eq!(started.code, 0, "{started:?}");

    let out = eventually(&d, &["services"], |out| out.lines().any(|l| l.starts_with("web ")));
    assert!(out.lines().any(|l| l.starts_with("web ") && l.contains("apollo,edge")), "{out}");
    let out = eventually(&d, &["instances", "web"], |out| out.contains("passing"));
    let row = out.lines().find(|l| l.starts_with("apollo-web")).unwrap();
    assert!(row.contains(&format!(":{port}")), "{out}");
    let stopped = d.cli(&["app", "stop", "web"]);
    assert_eq!(stopped.code, 0, "{stopped:?}");
    eventually(&d, &["instances", "web"], |out| out.contains("critical"));
    let out = ok(&d, &["instances", "web", "--passing"]);
    assert!(out.contains("no instances of web pass their checks"), "{out}");
    let listed: Value = serde_json::from_str(&ok(&d, &["--json", "instances", "web"])).unwrap();
    assert_eq!(listed[0]["Service"]["Tags"], json!(["apollo", "edge"]), "{listed:#}");

    assert_eq!(ok(&d, &["kv", "put", "app/db url", "postgres://x?a=1&b=2"]).trim(), "stored app/db url");
    let file = d.root().join("value.txt");
    std::fs::write(&file, "line one\nline two").unwrap();
    ok(&d, &["kv", "put", "app/notes", "--file", file.to_str().unwrap()]);
    assert_eq!(ok(&d, &["kv", "get", "app/db url"]).trim_end(), "postgres://x?a=1&b=2", "stored as given, not as JSON");
    assert_eq!(ok(&d, &["kv", "get", "app/notes"]).trim_end(), "line one\nline two");
    assert_eq!(ok(&d, &["kv", "list", "app/"]).lines().collect::<Vec<_>>(), vec!["app/db url", "app/notes"]);
    ok(&d, &["kv", "delete", "app/", "--recurse"]);
    assert_eq!(ok(&d, &["kv", "list"]).trim(), "");
    let out = d.cli(&["catalog", "kv", "get", "app/notes"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no key \"app/notes\""), "{out:?}");
}

#[tokio::test]
async fn without_the_module_the_cli_says_so() {
    let d = deployment(false);
    let _host = d.spawn();
    let out = d.cli(&["catalog", "services"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("module catalog is not loaded"), "{out:?}");
}
