//! Runtime modules with real `.so` files built in this workspace (examples/hello-module):
//! load from the modules folder, call routes through the auth gate, per-module store,
//! a panicking handler (500, host keeps serving), reload of a changed file as a new
//! generation, and libraries that must be refused with one clear line each.

use crate::common;

use std::process::{Command, Stdio};

use common::Deployment;
use http::Method;
use serde_json::{Value, json};

fn deployment() -> Deployment {
    let d = Deployment::with(json!({"modules": {"dir": "modules", "config": {"hello": {"greeting": "ahoy"}}}}));
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(common::module_library("hello-module"), d.root().join("modules/hello_module.so")).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_load_serve_and_survive_bad_neighbours() {
    let d = deployment();
    let dir = d.root().join("modules");
    std::fs::write(dir.join("junk.so"), "this is not a library").unwrap();
    let bytes = std::fs::read(common::module_library("hello-module")).unwrap();
    std::fs::write(dir.join("truncated.so"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::copy(common::module_library("hello-module"), dir.join("zz-duplicate.so")).unwrap();
    let sys_so = common::module_library("module-sys");
    std::fs::copy(sys_so, dir.join("sys.so")).unwrap();
    let host = d.start().await;

    let listed: Value = host.uds().get("/api/modules").await.unwrap();
    let modules = listed["modules"].as_array().unwrap();
    assert_eq!(modules.len(), 2, "{listed:#}");
    assert_eq!(modules[0]["name"], "hello");
    assert_eq!(modules[1]["name"], "sys");
    assert_eq!(modules[0]["routes"].as_array().unwrap().len(), 15);
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
    let load: Value = client.get("/api/module/sys/system/load").await.unwrap();
    assert!(load["load_1m"].is_number(), "the next request, to another module, succeeds: {load}");
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
    std::fs::rename(&tmp, dir.join("hello_module.so")).unwrap();
    let reloaded: Value = client.post("/api/modules/reload", None).await.unwrap();
    assert!(reloaded["modules"][0]["generation"].as_u64().unwrap() > first_generation, "{reloaded:#}");
    assert!(reloaded["leaked_generations"].as_u64().unwrap() >= 1);
    let greeted: Value = client.get("/api/module/hello/greet/linus").await.unwrap();
    assert_eq!(greeted["count"], 3);

    // A real new build (same name, changed code) replaces the old one: new answers, no
    // host restart; the old generation is retired once its requests are done.
    let tmp = dir.join(".hello.so.tmp");
    std::fs::copy(common::module_library("fixture-hello-v2"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("hello_module.so")).unwrap();
    let reloaded: Value = client.post("/api/modules/reload", None).await.unwrap();
    assert_eq!(reloaded["modules"][0]["version"], "2.0.0");
    let pong: Value = client.get("/api/module/hello/ping").await.unwrap();
    assert_eq!(pong, json!({"pong": "v2"}));
    assert_eq!(
        client.send(Method::GET, "/api/module/hello/count", None).await.unwrap().status,
        404,
        "old routes are gone"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_modules_are_refused_with_one_line_each() {
    let d = deployment();
    let dir = d.root().join("modules");
    for name in ["bad_init", "overlap", "plain", "old_abi"] {
        std::fs::copy(common::module_library(&format!("fixture-{name}")), dir.join(format!("{name}.so"))).unwrap();
    }
    let host = d.start().await;
    let listed: Value = host.uds().get("/api/modules").await.unwrap();
    let error = |file: &str| {
        listed["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["file"].as_str().unwrap().ends_with(file))
            .unwrap_or_else(|| panic!("{file} not refused: {listed:#}"))["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(error("bad_init.so"), "module bad-init: its init failed: database unreachable at db.invalid:5432");
    assert!(error("overlap.so").starts_with("module overlap: route /item/{name} conflicts"), "{}", error("overlap.so"));
    assert!(error("plain.so").starts_with("not an Apollo module"), "{}", error("plain.so"));
    let old = error("old_abi.so");
    assert!(
        old.contains("built against plugin-api 0.1.0") && old.contains(plugin_api::ABI_VERSION),
        "names both versions: {old}"
    );
    assert!(listed["problems"].as_array().unwrap().iter().all(|p| !p["error"].as_str().unwrap().contains('\n')));
    // The good module next to them is in service.
    let greeted: Value = host.uds().get("/api/module/hello/greet/ada").await.unwrap();
    assert_eq!(greeted["count"], 1);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_limits_degradation_and_openapi() {
    let d = Deployment::with(json!({
        "server": {"body_limit_bytes": 4096},
        "modules": {"dir": "modules", "handler_timeout_secs": 1, "degraded_after_panics": 2}
    }));
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(common::module_library("hello-module"), d.root().join("modules/hello.so")).unwrap();
    let host = d.start().await;
    let client = host.uds();

    let slow = client.send(Method::GET, "/api/module/hello/sleep/3000", None).await.unwrap();
    assert_eq!(slow.status, 504);
    assert!(slow.json()["error"]["message"].as_str().unwrap().contains("module hello did not answer within 1 s"));
    let quick: Value = client.get("/api/module/hello/sleep/10").await.unwrap();
    assert_eq!(quick["slept_ms"], 10);

    let big = json!({"blob": "x".repeat(10_000)});
    let r = client.send(Method::POST, "/api/module/hello/echo", Some(&big)).await.unwrap();
    assert_eq!(r.status, 413);
    assert!(r.json()["error"]["code"].is_string(), "JSON error shape");

    for _ in 0..2 {
        assert_eq!(client.send(Method::GET, "/api/module/hello/panic", None).await.unwrap().status, 500);
    }
    let listed: Value = client.get("/api/modules").await.unwrap();
    assert_eq!(listed["modules"][0]["state"], "degraded");
    let ping: Value = client.get("/api/module/hello/ping").await.unwrap();
    assert_eq!(ping, json!({"pong": true}), "a degraded module keeps serving");

    let doc: Value = host.tcp().get("/api/openapi.json").await.unwrap();
    let op = &doc["paths"]["/api/module/hello/greet/{name}"]["get"];
    assert_eq!(op["summary"], "Greet someone (counts greetings in the module's storage)");
    assert_eq!(op["security"], json!([{"bearer": []}]));
    let public = &doc["paths"]["/api/module/hello/signed/{rest}"]["get"];
    assert_eq!(public["security"], json!([]), "public routes need no host token: {public}");
    assert_eq!(op["parameters"][0]["name"], "name");
    assert!(doc["paths"]["/api/module/hello/echo"]["post"].is_object());
    host.shutdown().await;
}

#[tokio::test]
async fn drop_in_reload_and_enable_disable_survive_restarts() {
    let d = Deployment::with(json!({"modules": {"dir": "modules"}}));
    let dir = d.root().join("modules");
    std::fs::create_dir_all(&dir).unwrap();
    let host = d.spawn();
    let client = host.uds();
    let listed: Value = client.get("/api/modules").await.unwrap();
    assert!(listed["modules"].as_array().unwrap().is_empty());

    // Dropped in (copy + rename, as `make modules` does): live without a reload call.
    let tmp = dir.join(".hello.tmp");
    std::fs::copy(common::module_library("hello-module"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("hello.so")).unwrap();
    common::eventually("hello to load by itself", std::time::Duration::from_secs(10), || async {
        client.get::<Value>("/api/module/hello/ping").await.ok()
    })
    .await;

    // Loading reads the file: that must not look like a change (no reload loop).
    let before: Value = client.get("/api/modules").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let after: Value = client.get("/api/modules").await.unwrap();
    assert_eq!(before["modules"][0]["generation"], after["modules"][0]["generation"], "{after:#}");
    assert_eq!(after["leaked_generations"], 0);

    // The CLI sees it, and can disable it; disabled stays disabled across a restart.
    let out = d.cli(&["module", "list"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("hello") && out.stdout.contains("loaded"), "{}", out.stdout);
    let out = d.cli(&["module", "disable", "hello"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("disabled: hello"), "{}", out.stdout);
    assert_eq!(client.send(Method::GET, "/api/module/hello/ping", None).await.unwrap().status, 404);
    assert!(host.terminate().success());

    let host = d.spawn();
    let client = host.uds();
    let listed: Value = client.get("/api/modules").await.unwrap();
    assert!(listed["modules"].as_array().unwrap().is_empty(), "{listed:#}");
    assert_eq!(listed["disabled"][0]["name"], "hello");
    let out = d.cli(&["module", "enable", "hello"]);
    assert_eq!(out.code, 0, "{out:?}");
    let ping: Value = client.get("/api/module/hello/ping").await.unwrap();
    assert_eq!(ping, json!({"pong": true}));
    let out = d.cli(&["module", "reload", "hello"]);
    assert_eq!(out.code, 0, "{out:?}");
    let listed: Value = client.get("/api/modules").await.unwrap();
    assert!(listed["modules"][0]["generation"].as_u64().unwrap() >= 2, "a named reload loads the file again");
    assert_eq!(d.cli(&["module", "disable", "ghost"]).code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_subscribe_to_host_events() {
    let d = deployment();
    let host = d.start().await;
    let client = host.uds();
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.get::<Value>("/api/module/hello/events/next?kind=model_added").await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    d.write_model("fresh.pig", &common::model("fresh", "app_fresh", &[]));
    let event = waiting.await.unwrap().unwrap();
    assert_eq!(event["kind"], "model_added");
    assert_eq!(event["name"], "fresh");
    host.shutdown().await;
}
