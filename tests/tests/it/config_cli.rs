//! `apollo config …`: the real CLI binary against a real `apollo serve` with the real
//! `module_config.so` loaded, over the unix socket (the host authenticates the caller,
//! the module takes them as the operator): apps, namespaces, items, releases as
//! clients get them (`/configs`), history, diff, rollback, gray branches, consumers
//! and access keys — and the error when the module is not there.

use crate::common;

use common::{Deployment, run_cli};
use serde_json::{Value, json};

fn deployment() -> Deployment {
    let d = Deployment::with(json!({"modules": {"dir": "modules"}}));
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(common::module_library("module-config"), d.root().join("modules/module_config.so")).unwrap();
    d
}

/// Runs `apollo config ARGS…`, expecting success; returns stdout.
fn ok(d: &Deployment, args: &[&str]) -> String {
    let mut full = vec!["config"];
    full.extend_from_slice(args);
    let out = d.cli(&full);
    assert_eq!(out.code, 0, "apollo config {args:?}: {out:?}");
    out.stdout
}

/// `--json` output of `apollo config ARGS…`.
fn json_of(d: &Deployment, args: &[&str]) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let text = ok(d, &full);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {text}"))
}

#[tokio::test]
async fn create_set_release_get_history_diff_rollback() {
    let d = deployment();
    let _host = d.spawn();

    let out = ok(&d, &["apps", "--create", "app1", "--name", "App One", "--org", "ORG"]);
    assert!(out.contains("created app app1"), "{out}");
    let out = ok(&d, &["apps"]);
    assert!(out.lines().any(|l| l.starts_with("app1 ") && l.contains("App One") && l.contains("ORG")), "{out}");

    ok(&d, &["clusters", "app1", "--create", "sh"]);
    let out = ok(&d, &["clusters", "app1"]);
    assert!(out.lines().any(|l| l.starts_with("DEV ") && l.contains("default, sh")), "{out}");

    let out = ok(&d, &["namespaces", "app1", "--create", "db"]);
    assert!(out.contains("namespace db"), "{out}");
    let out = ok(&d, &["namespaces", "app1"]);
    assert!(out.lines().any(|l| l.starts_with("db ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("application ")), "{out}");

    ok(&d, &["set", "app1", "db", "url", "jdbc:one", "--comment", "first"]);
    ok(&d, &["set", "app1", "db", "pool", "-5"]);
    // Not released yet: clients get nothing, and the CLI says why.
    let out = d.cli(&["config", "get", "app1", "db"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("has no release"), "{}", out.stderr);
    let out = ok(&d, &["get", "--working", "app1", "db"]);
    assert!(out.contains("jdbc:one") && out.contains("first"), "{out}");
    let out = ok(&d, &["diff", "app1", "db"]);
    assert!(out.contains("+ url = jdbc:one") && out.contains("+ pool = -5"), "{out}");

    let out = ok(&d, &["release", "app1", "db", "--title", "r1"]);
    assert!(out.contains("released app1/default/db"), "{out}");
    assert_eq!(ok(&d, &["get", "app1", "db", "url"]).trim(), "jdbc:one");
    // Cluster sh has no release of its own: its clients get default's.
    assert_eq!(ok(&d, &["get", "--cluster", "sh", "app1", "db", "url"]).trim(), "jdbc:one");
    let out = ok(&d, &["get", "app1", "db"]);
    assert!(out.lines().any(|l| l.starts_with("url ") && l.contains("jdbc:one")), "{out}");
    let released = json_of(&d, &["get", "app1", "db"]);
    assert_eq!(released["configurations"], json!({"url": "jdbc:one", "pool": "-5"}), "{released}");
    assert!(ok(&d, &["diff", "app1", "db"]).contains("no changes"));

    ok(&d, &["set", "app1", "db", "url", "jdbc:two"]);
    ok(&d, &["delete", "app1", "db", "pool"]);
    let out = ok(&d, &["diff", "app1", "db"]);
    assert!(out.contains("~ url: jdbc:one -> jdbc:two") && out.contains("- pool = -5"), "{out}");
    // Edits reach clients only with a release.
    assert_eq!(ok(&d, &["get", "app1", "db", "url"]).trim(), "jdbc:one");
    ok(&d, &["release", "app1", "db", "--title", "r2", "--comment", "second"]);
    assert_eq!(ok(&d, &["get", "app1", "db", "url"]).trim(), "jdbc:two");
    let out = d.cli(&["config", "get", "app1", "db", "pool"]);
    assert_eq!(out.code, 1, "{out:?}");

    let history = json_of(&d, &["history", "app1", "db"]);
    let history = history.as_array().expect("history is a list");
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0]["name"], "r2", "newest first: {history:?}");
    let (r2, r1) = (history[0]["id"].as_i64().unwrap(), history[1]["id"].as_i64().unwrap());
    let out = ok(&d, &["history", "app1", "db"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[1].starts_with(&r2.to_string()), "{out}");
    assert!(lines[1].contains("r2") && lines[1].contains("latest") && lines[2].contains("r1"), "{out}");

    let (r1s, r2s) = (r1.to_string(), r2.to_string());
    let out = ok(&d, &["diff", "app1", "db", "--base", &r1s, "--to", &r2s]);
    assert!(out.contains("~ url: jdbc:one -> jdbc:two") && out.contains("- pool = -5"), "{out}");
    assert_eq!(ok(&d, &["diff", "app1", "db", "--to", &r2s]), out, "--to alone compares with the release before");

    let out = ok(&d, &["rollback", &r2s]);
    assert!(out.contains(&format!("release {r2} rolled back")), "{out}");
    assert_eq!(ok(&d, &["get", "app1", "db", "url"]).trim(), "jdbc:one");
    let out = ok(&d, &["history", "app1", "db"]);
    assert!(out.lines().nth(1).is_some_and(|l| l.contains("abandoned")), "{out}");
    assert!(out.lines().nth(2).is_some_and(|l| l.contains("latest")), "{out}");

    // Module errors come through with the module's message and status.
    let out = d.cli(&["config", "get", "--working", "app1", "db", "ghost"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("HTTP 404"), "{}", out.stderr);
    let out = d.cli(&["config", "set", "app1", "bad/ns", "k", "v"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("not a valid namespace"), "{}", out.stderr);
}

#[tokio::test]
async fn gray_branches_consumers_and_access_keys() {
    let d = deployment();
    let host = d.spawn();
    ok(&d, &["apps", "--create", "app2"]);
    ok(&d, &["set", "app2", "application", "color", "blue"]);
    ok(&d, &["release", "app2", "application", "--title", "main"]);

    let out = ok(&d, &["gray", "app2", "application", "create"]);
    assert!(out.contains("opened gray branch"), "{out}");
    ok(&d, &["gray", "app2", "application", "rules", "--ip", "10.9.8.7", "--label", "canary"]);
    let out = ok(&d, &["gray", "app2", "application", "rules"]);
    assert!(out.contains("10.9.8.7") && out.contains("canary") && out.contains("app2"), "{out}");
    ok(&d, &["gray", "app2", "application", "set", "color", "green"]);
    ok(&d, &["gray", "app2", "application", "release", "--title", "try green"]);
    assert_eq!(ok(&d, &["get", "app2", "application", "color", "--ip", "10.9.8.7"]).trim(), "green");
    assert_eq!(ok(&d, &["get", "app2", "application", "color", "--label", "canary"]).trim(), "green");
    assert_eq!(ok(&d, &["get", "app2", "application", "color", "--ip", "10.0.0.1"]).trim(), "blue");
    ok(&d, &["set", "app2", "application", "shape", "round"]);
    ok(&d, &["release", "app2", "application", "--title", "shape"]);
    ok(&d, &["gray", "app2", "application", "release", "--delete", "shape"]);
    let out = d.cli(&["config", "get", "app2", "application", "shape", "--ip", "10.9.8.7"]);
    assert_eq!(out.code, 1, "a gray-delete release takes the key from gray clients: {out:?}");
    assert_eq!(ok(&d, &["get", "app2", "application", "shape"]).trim(), "round");
    let out = ok(&d, &["gray", "app2", "application", "show"]);
    assert!(out.contains("color") && out.contains("green") && out.contains("10.9.8.7"), "{out}");
    ok(&d, &["gray", "app2", "application", "merge", "--title", "green for all"]);
    assert_eq!(ok(&d, &["get", "app2", "application", "color"]).trim(), "green");
    assert!(ok(&d, &["gray", "app2", "application", "show"]).contains("no gray branch"));

    let out = d.cli(&["config", "consumers", "create", "ci", "--edit", "app2"]);
    assert_eq!(out.code, 0, "{out:?}");
    let token = out.stdout.trim().to_string();
    assert!(!token.is_empty() && out.stderr.contains("shown only now"), "{out:?}");
    let out = ok(&d, &["consumers"]);
    assert!(out.lines().any(|l| l.starts_with("ci ") && l.contains("app2:edit")), "{out}");
    // Over TCP the host hands a token that is not its own to the module: a consumer
    // may edit app2 but not release it.
    let addr = format!("http://{}", host.http_addr);
    let as_ci = |args: &[&str]| {
        let mut full = vec!["--addr", addr.as_str(), "--token", token.as_str(), "config"];
        full.extend_from_slice(args);
        run_cli(&full, None)
    };
    let by_ci = as_ci(&["set", "app2", "application", "size", "9"]);
    assert_eq!(by_ci.code, 0, "{by_ci:?}");
    let by_ci = as_ci(&["release", "app2", "application", "--title", "not mine"]);
    assert_eq!(by_ci.code, 1, "{by_ci:?}");
    assert!(by_ci.stderr.contains("HTTP 403"), "{}", by_ci.stderr);
    assert!(!out.contains(&token), "tokens are never listed: {out}");
    let out = ok(&d, &["consumers", "grant", "ci", "app2", "--edit", "--release"]);
    assert!(out.contains("edit+release"), "{out}");
    assert!(ok(&d, &["consumers", "list"]).contains("app2:edit+release"));

    let out = d.cli(&["config", "accesskeys", "app2", "create"]);
    assert_eq!(out.code, 0, "{out:?}");
    let secret = out.stdout.trim().to_string();
    assert!(!secret.is_empty(), "{out:?}");
    // The host's operator (here: the unix socket) reads /configs without signing.
    let out = d.cli(&["config", "get", "app2", "application", "color"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "green"), "{out:?}");
    assert!(!out.stderr.contains("has access keys"), "{}", out.stderr);
    // A consumer is no operator: /configs refuses its unsigned read, and the CLI shows
    // the latest release through the Open API instead, saying so.
    let by_ci = as_ci(&["get", "app2", "application", "color"]);
    assert_eq!((by_ci.code, by_ci.stdout.trim()), (0, "green"), "{by_ci:?}");
    assert!(by_ci.stderr.contains("has access keys"), "{}", by_ci.stderr);
    ok(&d, &["consumers", "delete", "ci"]);
    assert!(!ok(&d, &["consumers"]).contains("ci "));
    let keys = json_of(&d, &["accesskeys", "app2"]);
    let id = common_id(&keys[0]["id"]);
    let out = ok(&d, &["accesskeys", "app2"]);
    assert!(out.contains("enabled") && !out.contains(&secret), "secrets are masked: {out}");
    ok(&d, &["accesskeys", "app2", "disable", &id]);
    assert!(ok(&d, &["accesskeys", "app2", "list"]).contains("disabled"));
    ok(&d, &["accesskeys", "app2", "enable", &id]);
    ok(&d, &["accesskeys", "app2", "delete", &id]);
    assert_eq!(json_of(&d, &["accesskeys", "app2"]), json!([]));
}

fn common_id(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

#[tokio::test]
async fn without_the_module_the_cli_says_it_is_not_loaded() {
    let d = Deployment::new();
    let _host = d.spawn();
    let out = d.cli(&["config", "apps"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("module config is not loaded"), "{}", out.stderr);
    let out = run_cli(&["config", "--addr", "https://example.invalid", "apps"], None);
    assert_eq!(out.code, 2, "{out:?}");
}
