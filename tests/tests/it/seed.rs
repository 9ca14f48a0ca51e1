//! The seed's own files (`tests/fixtures/seed/`: its README's config and octopus model, its
//! repo's `conf/apollo.pig`), read by the real `apollo` binary: `apollo check` passes
//! on each config with the model, and `apollo serve` on the README config serves the
//! README model. Only paths, the listen address and the seed's two remote addresses
//! are rewritten, in the parsed JSON (tests/fixtures/seed/README.md says which and why); every
//! other value is the seed's, as written.

use crate::common;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use common::mongo::MongoServer;
use common::{ADMIN_PASSWORD, HostProcess, run_cli};
use serde_json::{Value, json};

/// The seed's path keys, all absolute `/renj.io/...` in its files.
const PATH_KEYS: &[&str] = &[
    "service_root",
    "app_root",
    "app_manager",
    "app_cache_dir",
    "app_log_dir",
    "app_tmp_dir",
    "app_back_up",
    "app_pids",
];

fn seed_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/seed").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where the rewritten addresses point.
struct Targets<'a> {
    mongo_url: &'a str,
    mongo_name: Option<&'a str>,
    docker_host: &'a str,
}

/// A seed config moved under `root` and onto 127.0.0.1; written to `root/apollo.pig`.
/// Returns the config file and the model folder (`<app_root>/<models>`).
fn localise(text: &str, root: &Path, targets: &Targets, models: &str) -> (PathBuf, PathBuf) {
    let mut config: Value = serde_json::from_str(text).unwrap();
    for key in PATH_KEYS {
        let seed_path = config[key].as_str().unwrap_or_else(|| panic!("the seed sets {key}"));
        assert!(seed_path.starts_with("/renj.io"), "{key} = {seed_path}");
        // `/renj.io/app` -> `<root>/renj.io/app`: the seed's layout, inside the temp dir.
        config[key] = json!(root.join(seed_path.trim_start_matches('/')));
    }
    // The seed listens on 0.0.0.0:9090 and a fixed socket; a test listens on loopback
    // with a port of the OS's choosing and a socket of its own.
    assert_eq!(config["server"]["host"], "0.0.0.0");
    config["server"]["host"] = json!("127.0.0.1");
    config["server"]["port"] = json!(0);
    config["server"]["uds"] = json!(root.join("Apollo.sock"));
    // The seed's remote machine: traffic from a test goes to 127.0.0.1 only.
    assert_eq!(config["db"]["mongo"]["url"], "192.168.100.10:27017");
    config["db"]["mongo"]["url"] = json!(targets.mongo_url);
    if let Some(name) = targets.mongo_name {
        config["db"]["mongo"]["name"] = json!(name);
    }
    assert_eq!(config["ci"]["docker_host"], "tcp://192.168.100.10:2375");
    config["ci"]["docker_host"] = json!(targets.docker_host);

    let models_dir = root.join("renj.io/app").join(models);
    std::fs::create_dir_all(&models_dir).unwrap();
    std::fs::write(models_dir.join("demo.pig"), seed_file("demo.pig")).unwrap();
    let config_path = root.join("apollo.pig");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    (config_path, models_dir)
}

/// `apollo check` on a seed config with the seed model, offline: exit 0, the model
/// loadable, and not one connection made, even to the addresses the config names (both
/// point at a loopback listener nobody accepts on; a connect attempt would sit in its
/// queue).
fn check_passes_offline(config_file: &str, models: &str) -> String {
    let root = tempfile::tempdir().unwrap();
    let witness = TcpListener::bind("127.0.0.1:0").unwrap();
    witness.set_nonblocking(true).unwrap();
    let port = witness.local_addr().unwrap().port();
    let (mongo_url, docker_host) = (format!("127.0.0.1:{port}"), format!("tcp://127.0.0.1:{port}"));
    let targets = Targets { mongo_url: &mongo_url, mongo_name: None, docker_host: &docker_host };
    let (config, models_dir) = localise(&seed_file(config_file), root.path(), &targets, models);

    let out = run_cli(&["--config", config.to_str().unwrap(), "check"], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(&format!("config {}: ok", config.display())), "{}", out.stdout);
    let models_line = format!("models {}: 1 loadable, 0 problem(s)", models_dir.display());
    assert!(out.stdout.contains(&models_line), "{}", out.stdout);
    match witness.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("apollo check connected to {mongo_url}: {other:?}"),
    }
    out.stdout
}

#[test]
fn check_passes_on_the_seed_readme_config_and_model() {
    let stdout = check_passes_offline("readme-apollo.pig", ".octopus");
    assert!(!stdout.contains("warning"), "every key of the README config is known: {stdout}");
}

#[test]
fn check_passes_on_the_seed_repo_config_and_warns_about_its_other_keys() {
    // The seed's own folder name for models, octopusMeta/, is found too.
    let stdout = check_passes_offline("repo-apollo.pig", "octopusMeta");
    for key in ["app_bridge", "db.tidb", "server.grpc", "server.oauth", "module", "grpc", "aes", "experiment"] {
        assert!(stdout.contains(&format!(": {key}: unknown key, ignored")), "{key}: {stdout}");
    }
    assert!(stdout.contains("server.passwd: ignored: clear-text passwords are not read"), "{stdout}");
}

#[test]
fn check_lists_problems_apart_from_its_summary() {
    let root = tempfile::tempdir().unwrap();
    let targets = Targets { mongo_url: "", mongo_name: None, docker_host: "" };
    let (config, models_dir) = localise(&seed_file("readme-apollo.pig"), root.path(), &targets, ".octopus");
    std::fs::write(models_dir.join("broken.pig"), "{\"name\": \"broken\", \"id\": 7}").unwrap();
    let out = run_cli(&["--config", config.to_str().unwrap(), "check"], None);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.ends_with("1:20: id: invalid type: integer `7`, expected a string\n\n"), "{:?}", out.stdout);
    assert_eq!(out.stderr, "error: 1 model file(s) would not load\n");
}

#[tokio::test]
async fn serve_on_the_seed_readme_config_serves_the_seed_model() {
    if !common::components::mongo() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mongo = MongoServer::start();
    // No engine listens here: a port that was free a moment ago, on loopback.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let docker_host = format!("tcp://127.0.0.1:{closed}");
    let targets = Targets { mongo_url: &mongo.url, mongo_name: Some(&mongo.database), docker_host: &docker_host };
    let (config, _) = localise(&seed_file("readme-apollo.pig"), root.path(), &targets, ".octopus");

    let host = HostProcess::spawn(&config);
    let login: Value = host
        .tcp()
        .post("/api/auth/login", Some(&json!({"username": "admin", "password": ADMIN_PASSWORD})))
        .await
        .expect("login");
    let client = host.tcp().with_token(Some(login["token"].as_str().unwrap().to_string()));
    let apps: Vec<Value> = client.get("/api/apps").await.unwrap();
    let demo = apps.iter().find(|a| a["name"] == "demo").unwrap_or_else(|| panic!("demo in {apps:#?}"));
    assert_eq!(demo["id"], "app_demo");
    let problems: Value = client.get("/api/models/problems").await.unwrap();
    assert_eq!(problems["problems"], json!([]), "{problems:#}");
    let info: Value = client.get("/api/apps/demo").await.unwrap();
    assert_eq!(info["model"]["type"], "app", "{info:#}");
    assert_eq!(info["model"]["meta"]["language"], json!([]), "null read as an empty list: {info:#}");
    assert!(host.terminate().success());
    let sqlite = root.path().join("renj.io/data/apollo.db");
    assert!(!sqlite.exists(), "the store is the MongoDB-wire server the config names, not SQLite");
    assert!(root.path().join("renj.io/data").is_dir(), "the data directory follows service_root");
}
