//! Runtime modules with real `.so` files built in this workspace (examples/hello-module):
//! load from the modules folder, call routes through the auth gate, per-module store,
//! a panicking handler (500, host keeps serving), reload of a changed file as a new
//! generation, and libraries that must be refused with one clear line each.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::Deployment;
use http::Method;
use serde_json::{Value, json};

fn hello_so() -> PathBuf {
    let path = PathBuf::from(common::apollo_bin()).parent().unwrap().join("libhello_module.so");
    assert!(path.exists(), "build it first: cargo build -p hello-module (cargo test --workspace does)");
    path
}

fn deployment() -> Deployment {
    let d = Deployment::with(json!({"modules": {"dir": "modules", "config": {"hello": {"greeting": "ahoy"}}}}));
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(hello_so(), d.root().join("modules/hello.so")).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_load_serve_and_survive_bad_neighbours() {
    let d = deployment();
    let dir = d.root().join("modules");
    std::fs::write(dir.join("junk.so"), "this is not a library").unwrap();
    let bytes = std::fs::read(hello_so()).unwrap();
    std::fs::write(dir.join("truncated.so"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::copy(hello_so(), dir.join("zz-duplicate.so")).unwrap();
    let host = d.start().await;

    let listed: Value = host.uds().get("/api/modules").await.unwrap();
    let modules = listed["modules"].as_array().unwrap();
    assert_eq!(modules.len(), 1, "{listed:#}");
    assert_eq!(modules[0]["name"], "hello");
    assert_eq!(modules[0]["routes"].as_array().unwrap().len(), 5);
    let problems = listed["problems"].as_array().unwrap();
    let problem = |file: &str| {
        problems
            .iter()
            .find(|p| p["file"].as_str().unwrap().ends_with(file))
            .unwrap_or_else(|| panic!("{file}: {listed:#}"))["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(problem("junk.so").starts_with("not a loadable shared library"), "{}", problem("junk.so"));
    assert!(problem("truncated.so").starts_with("not a loadable shared library"), "{}", problem("truncated.so"));
    assert!(problem("zz-duplicate.so").contains("duplicate module name \"hello\""));
    assert!(problems.iter().all(|p| !p["error"].as_str().unwrap().contains('\n')), "one line each");

    // Behind the same gate as the rest of /api.
    let anonymous = host.tcp().send(Method::GET, "/api/module/hello/greet/ada", None).await.unwrap();
    assert_eq!(anonymous.status, 401);
    let client = host.authed().await;
    let greeted: Value = client.get("/api/module/hello/greet/ada").await.unwrap();
    assert_eq!(greeted, json!({"message": "ahoy, ada!", "count": 1}), "module config reaches init");
    let _: Value = client.get("/api/module/hello/greet/grace").await.unwrap();
    let count: Value = client.get("/api/module/hello/count").await.unwrap();
    assert_eq!(count["count"], 2, "the module's key-value store");
    let echoed: Value = client.post("/api/module/hello/echo", Some(&json!({"x": [1, 2]}))).await.unwrap();
    assert_eq!(echoed, json!({"echo": {"x": [1, 2]}}));
    let services: Value = client.get("/api/module/hello/services").await.unwrap();
    assert!(services.is_array());

    // A panicking handler is a 500 naming the module; the host and module keep serving.
    let panicked = client.send(Method::GET, "/api/module/hello/panic", None).await.unwrap();
    assert_eq!(panicked.status, 500);
    assert_eq!(panicked.json()["error"]["code"], "module_panic");
    assert!(panicked.json()["error"]["message"].as_str().unwrap().contains("module hello panicked: asked to panic"));
    assert!(panicked.headers.get(plugin_api::PANIC_HEADER).is_none(), "the internal marker is stripped");
    let count: Value = client.get("/api/module/hello/count").await.unwrap();
    assert_eq!(count["count"], 2);
    let _: Value = client.get("/healthz").await.unwrap();

    assert_eq!(client.send(Method::GET, "/api/module/hello/nope", None).await.unwrap().status, 404);
    assert_eq!(client.send(Method::DELETE, "/api/module/hello/count", None).await.unwrap().status, 405);
    assert_eq!(client.send(Method::GET, "/api/module/ghost/x", None).await.unwrap().status, 404);

    let listed: Value = client.get("/api/modules").await.unwrap();
    assert_eq!(listed["modules"][0]["panics"], 1);
    assert!(listed["modules"][0]["requests"].as_u64().unwrap() >= 7);

    // Reload: unchanged files stay as they are; a changed file is a new generation,
    // served at once, with the module's data intact.
    let first_generation = listed["modules"][0]["generation"].as_u64().unwrap();
    let same: Value = client.post("/api/modules/reload", None).await.unwrap();
    assert_eq!(same["modules"][0]["generation"].as_u64().unwrap(), first_generation);
    let mut changed = bytes.clone();
    changed.extend_from_slice(b"\0rebuilt");
    let tmp = dir.join(".hello.so.tmp");
    std::fs::write(&tmp, &changed).unwrap();
    std::fs::rename(&tmp, dir.join("hello.so")).unwrap();
    let reloaded: Value = client.post("/api/modules/reload", None).await.unwrap();
    assert!(reloaded["modules"][0]["generation"].as_u64().unwrap() > first_generation, "{reloaded:#}");
    assert!(reloaded["leaked_generations"].as_u64().unwrap() >= 1);
    let greeted: Value = client.get("/api/module/hello/greet/linus").await.unwrap();
    assert_eq!(greeted["count"], 3);
    host.shutdown().await;
}

#[tokio::test]
async fn module_logs_reach_the_host_log_tagged_with_the_module() {
    let d = deployment();
    let mut command = Command::new(common::apollo_bin());
    command.env("APOLLO_ADMIN_PASSWORD", common::ADMIN_PASSWORD).env("RUST_LOG", "info").stderr(Stdio::piped());
    let mut host = common::HostProcess::spawn_with(&d.config_path(), command);
    let _: Value = host.uds().get("/api/module/hello/greet/ada").await.unwrap();
    let mut stderr = host.child.stderr.take().unwrap();
    nix::sys::signal::kill(host.pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    let line = log.lines().find(|l| l.contains("greeted ada")).unwrap_or_else(|| panic!("no module line in:\n{log}"));
    assert!(line.contains("module=\"hello\"") || line.contains("module=hello"), "{line}");
}
