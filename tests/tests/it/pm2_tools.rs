//! PM2-class daily tools, end to end: the real `apollo serve` child and the real CLI.
//! `apollo start NAME -- CMD` registers (over `PUT /api/apps/{name}/model`) and starts a
//! supervised service; `apollo delete` stops it and archives its model; a service with
//! `supervise.watch` restarts once per burst of file changes, never for ignored paths
//! or its own log and pid files, and not once it stops watching.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use apollo_host::model::parse_model;
use common::{Deployment, HostProcess, eventually, model};
use serde_json::{Value, json};

/// Longer than any debounce window used here plus a restart: a change that was going
/// to restart the service has done so by then.
const SETTLE: Duration = Duration::from_millis(1500);

fn status(d: &Deployment, name: &str) -> Value {
    let out = d.cli(&["--json", "app", "status", name]);
    assert_eq!(out.code, 0, "{out:?}");
    let list: Vec<Value> = serde_json::from_str(&out.stdout).expect("--json status is JSON");
    list.into_iter().next().expect("one status")
}

fn pids(status: &Value) -> Vec<i64> {
    status["instances"].as_array().unwrap().iter().filter_map(|i| i["pid"].as_i64()).collect()
}

async fn running(d: &Deployment, name: &str) -> Value {
    eventually(&format!("{name} running"), Duration::from_secs(20), || async {
        let s = status(d, name);
        (s["state"] == "running").then_some(s)
    })
    .await
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

fn model_file(d: &Deployment, name: &str) -> PathBuf {
    d.models_dir().join(format!("{name}.pig"))
}

#[tokio::test]
async fn start_registers_and_runs_instances_with_their_env() {
    let d = Deployment::new();
    let _host: HostProcess = d.spawn();

    let script = "echo \"instance=$INSTANCE_ID greeting=$GREETING\"; exec sleep 300";
    let out = d.cli(&[
        "start",
        "web",
        "--instances",
        "2",
        "--env",
        "GREETING=hello pm2",
        "--max-memory",
        "200M",
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("web: model registered"), "{}", out.stdout);

    // The model is an ordinary octopus file in the model folder, argv and all.
    let text = std::fs::read_to_string(model_file(&d, "web")).expect("model written to the model folder");
    let written = parse_model(&text, &|_| None).expect("the written model parses");
    assert_eq!(written.run_data.command, ["sh", "-c", script]);
    assert_eq!(written.run_data.envs, ["GREETING=hello pm2"]);
    assert_eq!(written.supervise.instances, 2);
    assert_eq!(written.supervise.max_memory_restart, 200 * 1024 * 1024);

    let s = running(&d, "web").await;
    let both = pids(&s);
    assert_eq!(both.len(), 2, "{s}");
    assert_ne!(both[0], both[1]);
    assert!(both.iter().all(|p| alive(*p)));

    let out = d.cli(&["app", "status", "web"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.lines().nth(1).is_some_and(|l| l.starts_with("web") && l.contains("running")), "{}", out.stdout);

    // The env reached each child (its output is the service log).
    eventually("both instances logged their env", Duration::from_secs(10), || async {
        let out = d.cli(&["app", "logs", "web", "-n", "50"]);
        (out.stdout.contains("instance=0 greeting=hello pm2") && out.stdout.contains("instance=1 greeting=hello pm2"))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn start_of_an_existing_name_needs_force_and_loses_nothing() {
    let d = Deployment::new();
    let _host = d.spawn();
    assert_eq!(d.cli(&["start", "web", "--", "sleep", "300"]).code, 0);
    let first_pid = pids(&running(&d, "web").await)[0];
    let original = std::fs::read(model_file(&d, "web")).unwrap();

    // A different model under the same name: refused, nothing touched.
    let out = d.cli(&["start", "web", "--", "sleep", "400"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("already has a different model") && out.stderr.contains("--force"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    assert_eq!(std::fs::read(model_file(&d, "web")).unwrap(), original);
    let s = status(&d, "web");
    assert_eq!((s["state"].as_str(), pids(&s)[0]), (Some("running"), first_pid));

    // The same model again is fine and leaves the running service alone.
    let out = d.cli(&["start", "web", "--", "sleep", "300"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("model unchanged"), "{}", out.stdout);
    assert_eq!(pids(&status(&d, "web"))[0], first_pid);

    // A name taken by a model that does not load is not overwritten either.
    std::fs::write(model_file(&d, "broken"), "{ not json").unwrap();
    let out = d.cli(&["start", "broken", "--", "sleep", "300"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("not loaded"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(model_file(&d, "broken")).unwrap(), "{ not json");

    // --force replaces it, archives the old file and restarts the running service.
    let out = d.cli(&["start", "web", "--force", "--", "sleep", "400"]);
    assert_eq!(out.code, 0, "{out:?}");
    let archive = out
        .stdout
        .split("archived at ")
        .nth(1)
        .map(|rest| PathBuf::from(rest.lines().next().unwrap().trim()))
        .unwrap_or_else(|| panic!("the output names the archive: {}", out.stdout));
    assert!(archive.starts_with(d.root().join("data/deleted-models")), "{}", archive.display());
    assert_eq!(std::fs::read(&archive).unwrap(), original, "the replaced model is archived byte for byte");
    let s = running(&d, "web").await;
    assert_ne!(pids(&s)[0], first_pid, "a replaced model of a running service applies at once");
    let text = std::fs::read_to_string(model_file(&d, "web")).unwrap();
    assert_eq!(parse_model(&text, &|_| None).unwrap().run_data.command, ["sleep", "400"]);
}

#[tokio::test]
async fn delete_stops_the_service_and_archives_its_model() {
    let d = Deployment::new();
    let _host = d.spawn();
    assert_eq!(d.cli(&["start", "web", "--", "sleep", "300"]).code, 0);
    let pid = pids(&running(&d, "web").await)[0];
    let original = std::fs::read(model_file(&d, "web")).unwrap();

    // Another service depends on it: refused, nothing stopped or moved.
    let mut worker = model("worker", "app_worker", &["web"]);
    worker["manage_cmd"] = json!({});
    d.write_model("worker.pig", &worker);
    eventually("worker loaded", Duration::from_secs(10), || async {
        (d.cli(&["app", "status", "worker"]).code == 0).then_some(())
    })
    .await;
    let out = d.cli(&["delete", "web"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("worker") && out.stderr.contains("run_dep"), "{}", out.stderr);
    assert!(model_file(&d, "web").exists() && alive(pid));
    d.remove_model("worker.pig");
    eventually("worker gone", Duration::from_secs(10), || async {
        (d.cli(&["app", "status", "worker"]).code == 1).then_some(())
    })
    .await;

    let out = d.cli(&["delete", "web"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("stopped (was running)"), "{}", out.stdout);
    let archive = out
        .stdout
        .split("archived at ")
        .nth(1)
        .and_then(|rest| rest.split(" (").next())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("the output names the archive: {}", out.stdout));
    assert!(archive.starts_with(d.root().join("data/deleted-models")), "{}", archive.display());
    assert_eq!(std::fs::read(&archive).unwrap(), original);
    assert!(!model_file(&d, "web").exists());
    assert!(!alive(pid), "the service's process is gone");
    let out = d.cli(&["app", "status", "web"]);
    assert_eq!(out.code, 1, "{out:?}");

    let out = d.cli(&["delete", "web"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no service named \"web\""), "{}", out.stderr);

    // Archived, not lost: the same name can be started again.
    assert_eq!(d.cli(&["start", "web", "--", "sleep", "300"]).code, 0);
    running(&d, "web").await;
}

fn touch(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("{:?}\n", std::time::SystemTime::now())).unwrap();
}

fn append(path: &Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).expect("file exists");
    writeln!(f, "{line}").unwrap();
}

async fn restarts_reach(d: &Deployment, name: &str, count: u64) -> Value {
    eventually(&format!("{name} restarted {count} time(s) and running"), Duration::from_secs(20), || async {
        let s = status(d, name);
        (s["restarts"].as_u64() == Some(count) && s["state"] == "running").then_some(s)
    })
    .await
}

#[tokio::test]
async fn a_watched_service_restarts_once_per_burst_and_never_for_its_own_files() {
    // The service's log and pid files live inside its own directory here, so the
    // service writing its log (it ticks) would restart it in a loop if they counted.
    let d = Deployment::with(json!({"app_log_dir": "app/svc", "app_pids": "app/svc"}));
    let dir = d.root().join("app/svc");
    // Made up front: a new directory is itself a change.
    std::fs::create_dir_all(dir.join("src/deep")).unwrap();
    std::fs::create_dir_all(dir.join("cache")).unwrap();
    let _host = d.spawn();

    let out = d.cli(&[
        "start",
        "svc",
        "--watch",
        "--ignore",
        "*.tmp",
        "--ignore",
        "cache",
        "--watch-debounce-ms",
        "200",
        "--",
        "sh",
        "-c",
        "echo up; while :; do echo tick; sleep 0.1; done",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let first = running(&d, "svc").await;
    let first_pid = pids(&first)[0];
    let log = dir.join("svc/svc.log");
    let pid_file = dir.join("svc.pid");
    assert!(log.is_file() && pid_file.is_file(), "log and pid file are inside the watched directory");

    // Five files at once: one restart.
    for i in 0..5 {
        touch(&dir.join(format!("src/f{i}.js")));
    }
    let after = restarts_reach(&d, "svc", 1).await;
    assert_ne!(pids(&after)[0], first_pid);
    tokio::time::sleep(SETTLE).await;
    let s = status(&d, "svc");
    assert_eq!(s["restarts"], 1, "still one restart after the debounce window: {s}");
    let second_pid = pids(&s)[0];

    // Ignored paths, the log and the pid file: no restart.
    touch(&dir.join("x.tmp"));
    touch(&dir.join("src/deep/y.tmp"));
    touch(&dir.join("cache/blob"));
    append(&log, "written by the operator");
    append(&pid_file, "");
    tokio::time::sleep(SETTLE).await;
    let s = status(&d, "svc");
    assert_eq!((s["restarts"].as_u64(), pids(&s)[0]), (Some(1), second_pid), "{s}");

    // The watcher is still live: a real change restarts it again.
    touch(&dir.join("src/f0.js"));
    restarts_reach(&d, "svc", 2).await;
    let out = d.cli(&["app", "logs", "svc", "-n", "2000"]);
    assert!(out.stdout.contains("watch: ") && out.stdout.contains("changed; restarting"), "{}", out.stdout);

    // A stopped service stays stopped whatever changes.
    assert_eq!(d.cli(&["app", "stop", "svc"]).code, 0);
    touch(&dir.join("src/f1.js"));
    tokio::time::sleep(SETTLE).await;
    assert_eq!(status(&d, "svc")["state"], "stopped");

    // The watcher follows the model: without --watch, changes no longer restart it.
    let out = d.cli(&["start", "svc", "--force", "--", "sh", "-c", "echo up; exec sleep 300"]);
    assert_eq!(out.code, 0, "{out:?}");
    let unwatched_pid = pids(&running(&d, "svc").await)[0];
    touch(&dir.join("src/f2.js"));
    tokio::time::sleep(SETTLE).await;
    let s = status(&d, "svc");
    assert_eq!((s["restarts"].as_u64(), pids(&s)[0]), (Some(0), unwatched_pid), "{s}");
}

/// The endpoint behind `apollo start` (and importers): validation with the registry's
/// parser, rollback of what the cross-file checks refuse, and the audit trail.
#[tokio::test]
async fn the_model_endpoint_validates_rolls_back_and_is_audited() {
    use http::Method;
    let d = Deployment::new();
    let host = d.start().await;
    let api = host.authed().await;
    let put = |name: &str, body: Value| {
        let api = api.clone();
        let path = format!("/api/apps/{name}/model");
        async move { api.send(Method::PUT, &path, Some(&body)).await.unwrap() }
    };

    let r = put("web", json!({"model": {"name": "other", "id": "x"}})).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("must be the same"), "{:?}", r.json());
    let r = put("web", json!({"model": {"id": "app_web", "supervise": {"watch": {"paths": ["../up"]}}}})).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("supervise.watch.paths[0]"), "{:?}", r.json());
    let r = put("../etc", json!({"model": {"id": "x"}})).await;
    assert!(r.status == 400 || r.status == 404, "{}", r.status);

    // Valid alone, refused with the others (unknown run_dep): nothing is left behind.
    let r = put("web", json!({"model": {"id": "app_web", "run_data": {"command": ["sleep", "5"], "run_dep": ["db"]}}}))
        .await;
    assert_eq!(r.status, 409, "{:?}", r.json());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("db"), "{:?}", r.json());
    assert!(!model_file(&d, "web").exists());
    assert!(std::fs::read_dir(d.models_dir()).unwrap().next().is_none(), "no temp file left either");

    let r = put("web", json!({"model": {"id": "app_web", "run_data": {"command": ["sleep", "5"]}}})).await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    assert_eq!(r.json()["outcome"], "created");
    let r = put("api", json!({"model": {"id": "app_web", "run_data": {"command": ["sleep", "5"]}}})).await;
    assert_eq!(r.status, 409);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("already used by service \"web\""));
    let app: Value = api.get("/api/apps/web").await.unwrap();
    assert_eq!(app["model"]["run_data"]["command"], json!(["sleep", "5"]));

    let audit: Vec<Value> = api.get("/api/audit?limit=20").await.unwrap();
    assert!(
        audit.iter().any(|e| e["method"] == "PUT" && e["path"] == "/api/apps/web/model" && e["status"] == 201),
        "{audit:?}"
    );

    // A forced replacement the registry would refuse (a cycle with a running dependant)
    // is refused before anything is written: both services keep running, same pids.
    let r = put(
        "worker",
        json!({"model": {"id": "app_worker", "run_data": {"command": ["sleep", "600"], "run_dep": ["web"]}}}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    for name in ["web", "worker"] {
        let r = api.send(Method::POST, &format!("/api/apps/{name}/start"), None).await.unwrap();
        assert!(r.status.is_success(), "{name}: {:?}", r.json());
    }
    let pids = || async {
        let mut pids = Vec::new();
        for name in ["web", "worker"] {
            let status: Value = api.get(&format!("/api/apps/{name}/status")).await.unwrap();
            assert_eq!(status["state"], "running", "{status}");
            pids.push(status["instances"][0]["pid"].clone());
        }
        pids
    };
    let before = pids().await;
    let web_file = std::fs::read(model_file(&d, "web")).unwrap();
    let cyclic = json!({"model": {"id": "app_web", "run_data": {"command": ["sleep", "600"], "run_dep": ["worker"]}}, "force": true});
    let r = put("web", cyclic).await;
    assert_eq!(r.status, 409, "{:?}", r.json());
    assert_eq!(std::fs::read(model_file(&d, "web")).unwrap(), web_file, "nothing written");
    assert_eq!(pids().await, before, "no service was stopped or restarted");
    for name in ["worker", "web"] {
        api.send(Method::POST, &format!("/api/apps/{name}/stop"), None).await.unwrap();
    }
    host.shutdown().await;
}
