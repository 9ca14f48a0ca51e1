//! `apollo import supervisord|pm2`: the real CLI converts the realistic files in
//! `tests/fixtures/import/` and hands the models to the real `apollo serve` over its API
//! (the socket, or `--addr` with a token), or writes them offline with `--out`; unmapped
//! keys are listed by program and key, a second import refuses and changes nothing, and
//! `--force` replaces what changed, the host archiving the old models.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use apollo_host::cli::ApiClient;
use apollo_host::model::{RestartPolicy, parse_model};
use common::{Deployment, eventually};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/import").join(name)
}

/// Copies a fixture into the deployment's root (supervisord's `%(here)s`, PM2's base
/// for `cwd`) and returns its path there.
fn install(d: &Deployment, name: &str) -> String {
    let target = d.root().join(name);
    std::fs::copy(fixture(name), &target).unwrap();
    target.to_str().unwrap().to_string()
}

fn model_file(d: &Deployment, name: &str) -> PathBuf {
    d.models_dir().join(format!("{name}.pig"))
}

/// Waits until `name` runs with `instances` live processes; returns its status.
async fn running(client: &ApiClient, name: &str, instances: usize) -> Value {
    eventually(&format!("{name} running with {instances} instance(s)"), Duration::from_secs(20), || async {
        let status: Value = client.get(&format!("/api/apps/{name}/status")).await.ok()?;
        let live = status["instances"].as_array().map(|a| a.iter().filter(|i| i["pid"].as_i64().is_some()).count());
        (status["state"] == "running" && live == Some(instances)).then_some(status)
    })
    .await
}

fn pid_of(status: &Value) -> i32 {
    status["pid"].as_i64().expect("a running service has a pid") as i32
}

#[tokio::test]
async fn a_supervisord_config_becomes_services_that_apollo_serve_runs() {
    let d = Deployment::new();
    let conf = install(&d, "supervisord.conf");

    // No host yet: --out writes the model files offline, here into its model folder.
    let models = d.models_dir();
    let out = d.cli(&["import", "supervisord", &conf, "--out", models.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("imported 3 service(s) from supervisord file"), "{}", out.stdout);
    // Every key that did not map is listed by program and key, with the reason.
    let listed = |program: &str, key: &str, why: &str| {
        out.stdout.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.first() == Some(&program) && cells.get(1) == Some(&key) && l.contains(why)
        })
    };
    assert!(listed("ticker", "user", "its own user"), "{}", out.stdout);
    assert!(listed("ticker", "stdout_logfile", "<app_log_dir>/<name>/"), "{}", out.stdout);
    assert!(listed("ticker", "priority", "run_dep"), "{}", out.stdout);
    assert!(listed("sleeper", "retries", "a typo?"), "{}", out.stdout);
    assert!(listed("sleeper", "stdout_events_enabled", "events"), "{}", out.stdout);
    assert!(listed("[group:shop]", "*", "run_dep/stop_chain"), "{}", out.stdout);
    assert!(listed("[eventlistener:crashmail]", "*", "/api/events"), "{}", out.stdout);
    assert!(listed("[supervisord]", "*", "apollo.pig"), "{}", out.stdout);
    assert!(listed("pipeline", "command", "/bin/sh -c"), "{}", out.stdout);
    assert!(listed("sleeper", "directory", "its own working directory"), "{}", out.stdout);
    assert!(out.stdout.contains("no host was told"), "{}", out.stdout);

    // The files are what the host's own parser accepts, with supervisord's semantics.
    let parse = |name: &str| parse_model(&std::fs::read_to_string(model_file(&d, name)).unwrap(), &|_| None).unwrap();
    let ticker = parse("ticker");
    assert_eq!(ticker.run_data.command[..2], ["/bin/sh", "-c"]);
    assert!(ticker.run_data.command[2].contains("echo \"ticker: $GREETING"), "{:?}", ticker.run_data.command);
    assert_eq!(ticker.run_data.envs, ["GREETING=hello, world", "MODE=prod"]);
    assert_eq!((ticker.supervise.restart, ticker.supervise.max_restarts), (RestartPolicy::Always, 5));
    assert_eq!((ticker.supervise.kill_timeout_ms, ticker.supervise.log_max_bytes), (5000, 1 << 20));
    let sleeper = parse("sleeper");
    assert_eq!(sleeper.run_data.command, ["/bin/sleep", "600"]);
    assert_eq!((sleeper.supervise.instances, sleeper.supervise.restart), (2, RestartPolicy::OnFailure));
    let pipeline = parse("pipeline");
    assert_eq!(pipeline.run_data.command[..2], ["/bin/sh", "-c"]);
    assert_eq!(pipeline.supervise.stop_signal, "SIGINT");

    let check = d.cli(&["check"]);
    assert!(check.stdout.contains("3 loadable, 0 problem(s)"), "{check:?}");

    // autostart=true: `apollo serve` starts all three.
    let host = d.spawn();
    let client = host.uds();
    let ticker_status = running(&client, "ticker", 1).await;
    running(&client, "sleeper", 2).await;
    let pipeline_status = running(&client, "pipeline", 1).await;
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", pid_of(&ticker_status))).unwrap();
    assert_eq!(cwd, d.root().join("app/ticker"), "supervisord's directory is the service's cwd");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid_of(&pipeline_status))).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).starts_with("/bin/sh\0-c\0tail -F "), "{cmdline:?}");
    eventually("the ticker's greeting in its log", Duration::from_secs(20), || async {
        let logs: Value = client.get("/api/apps/ticker/logs?tail=20").await.ok()?;
        let lines = logs["lines"].as_array()?;
        let wanted = format!("ticker: hello, world from {}", d.root().join("app/ticker").display());
        lines.iter().any(|l| l.as_str().is_some_and(|l| l.contains(&wanted))).then_some(())
    })
    .await;

    // Into the running host (over its socket): every name is checked first, so a
    // refusal writes nothing, not even the service the host no longer has.
    let delete = d.cli(&["delete", "sleeper"]);
    assert_eq!(delete.code, 0, "{delete:?}");
    let ticker_before = std::fs::read(model_file(&d, "ticker")).unwrap();
    let out = d.cli(&["import", "supervisord", &conf]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("the host already has ticker (") && out.stderr.contains("pipeline ("),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was written") && out.stderr.contains("--force"), "{}", out.stderr);
    assert!(!out.stderr.contains("sleeper"), "{}", out.stderr);
    assert!(client.get::<Value>("/api/apps/sleeper").await.unwrap_err().status() == Some(404));
    assert!(!model_file(&d, "sleeper").exists(), "a refused import wrote a model");
    assert_eq!(std::fs::read(model_file(&d, "ticker")).unwrap(), ticker_before);
    let still: Value = client.get("/api/apps/ticker/status").await.unwrap();
    assert_eq!(pid_of(&still), pid_of(&ticker_status), "a refused import touched a running service");

    // --force: the deleted one is created, the same ones are left unchanged.
    let out = d.cli(&["import", "supervisord", &conf, "--force"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("imported 3 service(s) from supervisord file") && out.stdout.contains("into the host"));
    let row = |name: &str, outcome: &str| out.stdout.lines().any(|l| l.split_whitespace().take(2).eq([name, outcome]));
    assert!(row("sleeper", "created") && row("ticker", "unchanged") && row("pipeline", "unchanged"), "{}", out.stdout);
    let sleeper: Value = client.get("/api/apps/sleeper").await.unwrap();
    assert_eq!(sleeper["model"]["supervise"]["instances"], 2);
    assert_eq!(std::fs::read(model_file(&d, "ticker")).unwrap(), ticker_before);
}

#[tokio::test]
async fn a_pm2_ecosystem_imports_into_a_running_host() {
    let d = Deployment::new();
    let file = install(&d, "ecosystem.json");
    std::fs::create_dir_all(d.root().join("app/api")).unwrap();
    std::fs::copy(fixture("server.sh"), d.root().join("app/api/server.sh")).unwrap();
    let host = d.spawn();
    let client = host.uds();

    // --dry-run shows the models and writes nothing.
    let out = d.cli(&["import", "pm2", &file, "--dry-run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("\"command\": [\n      \"bash\",\n      \"server.sh\""), "{}", out.stdout);
    assert!(!model_file(&d, "api").exists());

    // Over TCP, as to a remote host: without a token it is refused and nothing is written.
    let addr = format!("http://{}", host.http_addr);
    let out = d.cli(&["--addr", &addr, "import", "pm2", &file]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("HTTP 401"), "{}", out.stderr);
    assert!(!model_file(&d, "api").exists());
    let login = common::run_cli(
        &["--addr", &addr, "login", "--password-stdin"],
        Some(&format!("{}\n", common::ADMIN_PASSWORD)),
    );
    assert_eq!(login.code, 0, "{login:?}");
    let token = login.stdout.trim().to_string();
    let remote = |args: &[&str]| {
        let mut full = vec!["--addr", addr.as_str(), "--token", token.as_str()];
        full.extend_from_slice(args);
        d.cli(&full)
    };

    // A same-named model file the host could not load counts as taken too: refused
    // before the first write, so nothing changes.
    std::fs::write(model_file(&d, "nightly"), "{ not json").unwrap();
    assert_eq!(d.cli(&["reload"]).code, 0);
    let out = remote(&["import", "pm2", &file]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("nightly") && out.stderr.contains("not loaded"), "{}", out.stderr);
    assert!(!model_file(&d, "api").exists(), "nothing written");
    std::fs::remove_file(model_file(&d, "nightly")).unwrap();
    assert_eq!(d.cli(&["reload"]).code, 0);

    let out = remote(&["import", "pm2", &file]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("imported 3 service(s) from PM2 file"), "{}", out.stdout);
    assert!(out.stdout.contains("into the host"), "{}", out.stdout);
    for name in ["api", "nightly", "sleep"] {
        let created = out.stdout.lines().any(|l| l.split_whitespace().take(2).eq([name, "created"]));
        assert!(created, "{name} not created:\n{}", out.stdout);
        assert!(model_file(&d, name).exists(), "the host wrote {name}'s model into its folder");
    }
    for (app, key, why) in [
        ("api", "ignore_watch", "is outside the service's directory"),
        ("api", "env_staging", "--env staging"),
        ("api", "out_file", "<app_log_dir>/<name>/"),
        ("nightly", "cron_restart", "host task"),
        ("(file)", "deploy", "deployment"),
    ] {
        let hit = out.stdout.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.first() == Some(&app) && cells.get(1) == Some(&key) && l.contains(why)
        });
        assert!(hit, "{app} {key} not listed:\n{}", out.stdout);
    }
    assert!(out.stdout.contains("one per CPU"), "{}", out.stdout);

    // Models added to a running host wait for an operator's start.
    let start = d.cli(&["app", "start", "api"]);
    assert_eq!(start.code, 0, "{start:?}");
    let start = d.cli(&["app", "start", "sleep"]);
    assert_eq!(start.code, 0, "{start:?}");
    running(&client, "api", 2).await;
    let cpus = std::thread::available_parallelism().unwrap().get().min(64);
    running(&client, "sleep", cpus).await;
    eventually("both api instances in the log", Duration::from_secs(20), || async {
        let logs: Value = client.get("/api/apps/api/logs?tail=50").await.ok()?;
        let text = logs["lines"].as_array()?.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n");
        let both = text.contains("api instance 0 (production) port 4000 args: --listen 127.0.0.1")
            && text.contains("api instance 1 (production) port 4001");
        both.then_some(())
    })
    .await;
    let api: Value = client.get("/api/apps/api").await.unwrap();
    assert_eq!(api["model"]["supervise"]["max_memory_restart"], 200 << 20);
    assert_eq!(api["model"]["supervise"]["stop_signal"], "SIGINT");
    let nightly: Value = client.get("/api/apps/nightly/status").await.unwrap();
    assert_eq!(nightly["state"], "stopped", "autostart: false");

    // PM2's watch: the app's directory (the service's own), its globs inside it.
    let watch = &api["model"]["supervise"]["watch"];
    assert_eq!(
        *watch,
        serde_json::json!({"enabled": true, "paths": [], "ignore": ["node_modules", "*.log"], "debounce_ms": 300})
    );
    let before: Value = client.get("/api/apps/api/status").await.unwrap();
    std::fs::write(d.root().join("app/api/debug.log"), "ignored\n").unwrap();
    std::fs::write(d.root().join("app/api/settings.conf"), "changed\n").unwrap();
    eventually("api restarted by the file change", Duration::from_secs(20), || async {
        let now: Value = client.get("/api/apps/api/status").await.ok()?;
        (now["restarts"].as_u64()? > before["restarts"].as_u64()?).then_some(())
    })
    .await;

    // A second import refuses, naming each service, and changes nothing.
    let api_before = std::fs::read(model_file(&d, "api")).unwrap();
    let out = remote(&["import", "pm2", &file]);
    assert_eq!(out.code, 1, "{out:?}");
    for name in ["api (", "nightly (", "sleep ("] {
        assert!(out.stderr.contains(name), "{name} not named:\n{}", out.stderr);
    }
    assert!(out.stderr.contains("nothing was written") && out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(std::fs::read(model_file(&d, "api")).unwrap(), api_before);

    // --force replaces what changed (the host archives the old model) and leaves the rest.
    let text = std::fs::read_to_string(&file).unwrap().replace("\"max_restarts\": 10", "\"max_restarts\": 12");
    std::fs::write(&file, text).unwrap();
    let out = remote(&["--json", "import", "pm2", &file, "--force"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let outcome = |name: &str| report["models"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap().clone();
    assert_eq!(
        (outcome("nightly")["outcome"].clone(), outcome("sleep")["outcome"].clone()),
        ("unchanged".into(), "unchanged".into())
    );
    let replaced = outcome("api");
    assert_eq!(replaced["outcome"], "replaced");
    let archived = replaced["archived_to"].as_str().expect("the old model is archived");
    assert_eq!(std::fs::read(archived).unwrap(), api_before, "the archive holds the old model");
    let api: Value = client.get("/api/apps/api").await.unwrap();
    assert_eq!(api["model"]["supervise"]["max_restarts"], 12);

    // --out elsewhere: written there offline, the host is not asked.
    let elsewhere = d.root().join("converted");
    let out = d.cli(&["--addr", "http://127.0.0.1:9", "import", "pm2", &file, "--out", elsewhere.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(elsewhere.join("api.pig").exists() && elsewhere.join("sleep.pig").exists());
    assert!(out.stdout.contains("no host was told"), "{}", out.stdout);

    // Bad input: the file, line and key, and nothing written.
    let broken = d.root().join("broken.json");
    std::fs::write(
        &broken,
        "{\"apps\": [\n  {\"name\": \"x\",\n   \"script\": \"/bin/true\",\n   \"kill_timeout\": \"soon\"}\n]}",
    )
    .unwrap();
    let out = d.cli(&["import", "pm2", broken.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(&format!("{}:4: [x] kill_timeout: \"soon\" is not a duration", broken.display())),
        "{}",
        out.stderr
    );
    assert!(!model_file(&d, "x").exists());
}
