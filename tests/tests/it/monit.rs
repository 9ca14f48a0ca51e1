//! The PM2-class daily tools with the real binary: `apollo monit` driven in a real
//! terminal (a private tmux server) against a real `apollo serve` child — services and
//! states on screen, selecting and stopping/starting one, quitting restores the screen —
//! and the generated artefacts: shell completions, the systemd unit (printed and
//! installed as a user unit into a temp folder; systemctl is never run), the man page.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Deployment, apollo_bin, eventually, merge, model, run_cli};
use serde_json::{Value, json};

/// Long enough for a cold host and a loaded CI machine; every wait ends at it.
const WAIT: Duration = Duration::from_secs(30);

/// A supervised service that prints a greeting and then idles.
fn idle_service(name: &str, autostart: bool) -> Value {
    let mut m = model(name, &format!("app_{name}"), &[]);
    m["run_data"]["command"] = json!(["/bin/sh", "-c", format!("echo hello from {name}; exec sleep 600")]);
    merge(&mut m, &json!({"supervise": {"autostart": autostart}}));
    m
}

fn deployment() -> Deployment {
    let d = Deployment::new();
    d.write_model("alpha.pig", &idle_service("alpha", true));
    d.write_model("beta.pig", &idle_service("beta", true));
    d.write_model("gamma.pig", &idle_service("gamma", false));
    d
}

/// One private tmux server (its own socket name and an empty config), killed on drop.
struct Tmux {
    socket: String,
    config: PathBuf,
    /// Where the pane's command leaves its exit code.
    exit_file: PathBuf,
}

impl Tmux {
    /// Runs `argv` in a detached 160x45 session, under a `/bin/sh` that only records its
    /// exit code: tmux's own record (`#{pane_dead_status}`) is unreliable under load
    /// (tmux 3.3a can mark the pane dead and never show a status). Panes stay after their
    /// command exits (`remain-on-exit`) so the last screen can be read.
    fn start(dir: &Path, argv: &[&str]) -> Self {
        let config = dir.join("tmux.conf");
        std::fs::write(&config, "set -g remain-on-exit on\nset -g history-limit 0\n").unwrap();
        let id = unique();
        let exit_file = dir.join(format!("tmux-exit-{id}"));
        let tmux = Self { socket: format!("apollo-monit-test-{}-{id}", std::process::id()), config, exit_file };
        let exit_path = tmux.exit_file.to_str().unwrap().to_string();
        let mut args = vec!["new-session", "-d", "-s", "monit", "-x", "160", "-y", "45", "--"];
        // `$0` is the exit file, `"$@"` the command, word for word.
        args.extend_from_slice(&["/bin/sh", "-c", "\"$@\"; echo $? > \"$0\"", &exit_path]);
        args.extend_from_slice(argv);
        let out = tmux.run(&args);
        assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f"])
            .arg(&self.config)
            .args(args)
            // The pane's command gets exactly the flags the test passes.
            .env_remove("APOLLO_CONFIG")
            .env_remove("APOLLO_ADDR")
            .env_remove("APOLLO_TOKEN")
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .expect("tmux runs (the test command installs it: .ci/tmux-up.sh)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "monit"]).stdout).into_owned()
    }

    fn send(&self, key: &str) {
        let out = self.run(&["send-keys", "-t", "monit", key]);
        assert!(out.status.success(), "send-keys {key}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The command's exit code once it has ended ("0", "1", …), else an empty string.
    fn exit_code(&self) -> String {
        std::fs::read_to_string(&self.exit_file).map(|s| s.trim().to_string()).unwrap_or_default()
    }

    /// Polls the screen until `ready` holds; fails with the last screen after [`WAIT`].
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(start.elapsed() < WAIT, "timed out after {WAIT:?} waiting for: {what}\nlast screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Only our own server (its private socket), with whatever still runs in it.
        let _ = self.run(&["kill-server"]);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The table row of `service` (the log pane's title names it too, so skip that line).
fn row<'a>(screen: &'a str, service: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(&format!(" {service} ")) && !l.contains("log:"))
}

fn row_has(screen: &str, service: &str, words: &[&str]) -> bool {
    row(screen, service).is_some_and(|r| words.iter().all(|w| r.contains(w)))
}

async fn wait_running(client: &apollo_host::cli::ApiClient, names: &[&str]) {
    for name in names {
        eventually(&format!("{name} running"), WAIT, || async {
            let s: Value = client.get(&format!("/api/apps/{name}/status")).await.ok()?;
            (s["state"] == "running").then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn monit_shows_services_follows_logs_and_stops_the_selected_one() {
    if !common::components::require("tmux", common::components::on_path("tmux"), "run ./.ci/tmux-up.sh") {
        return;
    }
    let d = deployment();
    let host = d.spawn();
    wait_running(&host.uds(), &["alpha", "beta"]).await;
    let config = d.config_path();
    let tmux = Tmux::start(d.root(), &[apollo_bin(), "--config", config.to_str().unwrap(), "monit"]);

    let screen = tmux.wait_for("three services with their states and figures", |s| {
        row_has(s, "alpha", &["running", "iB", "supervised"])
            && row_has(s, "beta", &["running"])
            && row_has(s, "gamma", &["stopped"])
    });
    assert!(screen.contains("apollo monit") && screen.contains("3 service(s)"), "{screen}");
    for column in ["STATE", "CPU", "MEM", "RESTARTS", "UPTIME", "PORTS"] {
        assert!(screen.contains(column), "{column} missing:\n{screen}");
    }
    // The first service is selected and its log followed.
    tmux.wait_for("alpha's log", |s| s.contains("log: alpha (following)") && s.contains("hello from alpha"));
    // The figure comes from the CPU time the status reports per instance.
    let alpha: Value = host.uds().get("/api/apps/alpha/status").await.unwrap();
    assert!(alpha["instances"][0]["cpu_time_ms"].is_u64(), "{alpha}");
    // CPU needs two readings: a figure replaces the dash after a refresh.
    tmux.wait_for("a CPU figure for alpha", |s| row(s, "alpha").is_some_and(|r| r.contains('%')));

    tmux.send("j");
    tmux.wait_for("beta selected, its log followed", |s| {
        row(s, "beta").is_some_and(|r| r.contains("> beta")) && s.contains("log: beta") && s.contains("hello from beta")
    });

    tmux.send("x");
    tmux.wait_for("the confirmation", |s| s.contains("stop beta? y to confirm"));
    tmux.send("y");
    let screen = tmux
        .wait_for("beta stopped on screen", |s| row_has(s, "beta", &["stopped"]) && s.contains("stop beta: stopped"));
    assert!(row_has(&screen, "alpha", &["running"]), "only beta stops:\n{screen}");
    let status: Value = host.uds().get("/api/apps/beta/status").await.unwrap();
    assert_eq!(status["state"], "stopped", "the host stopped it: {status}");

    // A key other than y cancels.
    tmux.send("r");
    tmux.wait_for("the restart confirmation", |s| s.contains("restart beta? y to confirm"));
    tmux.send("n");
    tmux.wait_for("cancelled", |s| s.contains("restart beta: cancelled"));

    tmux.send("?");
    tmux.wait_for("the help line", |s| s.contains("j/k select") && s.contains("q/Esc quit"));

    tmux.send("q");
    tmux.wait_for("monit gone, the normal screen back", |s| !s.contains("apollo monit"));
    let start = Instant::now();
    while tmux.exit_code() != "0" {
        assert!(start.elapsed() < WAIT, "monit did not exit with 0: {:?}\n{}", tmux.exit_code(), tmux.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn monit_over_tcp_starts_a_service_and_quits_on_escape() {
    if !common::components::require("tmux", common::components::on_path("tmux"), "run ./.ci/tmux-up.sh") {
        return;
    }
    let d = deployment();
    let host = d.spawn();
    wait_running(&host.uds(), &["alpha", "beta"]).await;
    let addr = format!("http://{}", host.http_addr);
    let login =
        run_cli(&["--addr", &addr, "login", "--password-stdin"], Some(&format!("{}\n", common::ADMIN_PASSWORD)));
    assert_eq!(login.code, 0, "{login:?}");
    let token = login.stdout.trim().to_string();

    let tmux = Tmux::start(d.root(), &[apollo_bin(), "--addr", &addr, "--token", &token, "monit"]);
    tmux.wait_for("the services over TCP", |s| s.contains(&addr) && row_has(s, "gamma", &["stopped"]));
    tmux.send("Down");
    tmux.send("Down");
    tmux.wait_for("gamma selected", |s| row(s, "gamma").is_some_and(|r| r.contains("> gamma")));
    tmux.send("s");
    tmux.wait_for("the start confirmation", |s| s.contains("start gamma? y to confirm"));
    tmux.send("y");
    tmux.wait_for("gamma running with its log", |s| {
        row_has(s, "gamma", &["running"]) && s.contains("start gamma: running") && s.contains("hello from gamma")
    });
    tmux.send("Escape");
    tmux.wait_for("monit gone", |s| !s.contains("apollo monit"));
    let start = Instant::now();
    while tmux.exit_code() != "0" {
        assert!(start.elapsed() < WAIT, "monit did not exit with 0: {:?}", tmux.exit_code());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn monit_without_a_terminal_says_what_to_use_instead() {
    let d = deployment();
    let _host = d.spawn();
    let out = d.cli(&["monit"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("needs a terminal") && out.stderr.contains("apollo app status -a"), "{}", out.stderr);
}

#[test]
fn completions_cover_every_subcommand() {
    let bash = run_cli(&["completions", "bash"], None);
    assert_eq!(bash.code, 0, "{bash:?}");
    for word in ["serve", "app", "monit", "startup", "completions", "systemd", "--config", "restart"] {
        assert!(bash.stdout.contains(word), "{word} missing from the bash completions");
    }
    assert!(bash.stdout.contains("complete -F _apollo"), "registers the function");
    for shell in ["zsh", "fish"] {
        let out = run_cli(&["completions", shell], None);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout.contains("monit"), "{shell}: {}", out.stdout);
    }
    let out = run_cli(&["completions", "tcsh"], None);
    assert_eq!(out.code, 2, "an unknown shell is a usage error: {out:?}");
    assert!(out.stderr.contains("bash"), "lists the shells: {}", out.stderr);
}

/// `KEY=value` lines of one `[section]` of a unit file.
fn unit_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut current = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not KEY=value: {line:?}"));
        if current == section {
            out.push((key.to_string(), value.to_string()));
        }
    }
    out
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn startup_systemd_prints_a_unit_for_this_binary_and_config() {
    let d = Deployment::new();
    let out = d.cli(&["startup", "systemd"]);
    assert_eq!(out.code, 0, "{out:?}");
    let binary = std::fs::canonicalize(apollo_bin()).unwrap();
    let config = std::fs::canonicalize(d.config_path()).unwrap();
    let service = unit_section(&out.stdout, "Service");
    assert_eq!(
        value(&service, "ExecStart"),
        Some(format!("{} serve --config {}", binary.display(), config.display()).as_str()),
        "{}",
        out.stdout
    );
    assert_eq!(value(&service, "Restart"), Some("on-failure"));
    assert_eq!(value(&service, "KillMode"), Some("process"), "services outlive a host restart");
    assert!(value(&unit_section(&out.stdout, "Unit"), "Description").is_some());
    assert_eq!(value(&unit_section(&out.stdout, "Install"), "WantedBy"), Some("multi-user.target"));

    // No config to name: refused rather than a unit that runs on defaults.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(apollo_bin())
        .args(["startup", "systemd"])
        .current_dir(empty.path())
        .env_remove("APOLLO_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --config FILE"));
}

#[test]
fn startup_systemd_installs_a_user_unit_once_unless_forced() {
    let d = Deployment::new();
    let xdg = tempfile::tempdir().unwrap();
    let config = d.config_path();
    let install = |extra: &[&str]| {
        let mut args = vec!["--config", config.to_str().unwrap(), "startup", "systemd", "--user", "--install"];
        args.extend_from_slice(extra);
        Command::new(apollo_bin()).args(&args).env("XDG_CONFIG_HOME", xdg.path()).output().unwrap()
    };
    let target = xdg.path().join("systemd/user/apollo.service");
    let out = install(&[]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&target.display().to_string()) && stdout.contains("systemctl --user daemon-reload"));
    let text = std::fs::read_to_string(&target).unwrap();
    assert_eq!(value(&unit_section(&text, "Install"), "WantedBy"), Some("default.target"));
    assert_eq!(value(&unit_section(&text, "Service"), "User"), None);

    std::fs::write(&target, "# edited by hand\n").unwrap();
    let out = install(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "# edited by hand\n", "not overwritten");
    assert!(install(&["--force"]).status.success());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), text);
}

#[test]
fn the_man_page_is_generated_from_the_cli() {
    let out = run_cli(&["man"], None);
    assert_eq!(out.code, 0, "{out:?}");
    // roff's apostrophe preamble (`.ie`/`.el`) comes first, then the title.
    let first_macro = out.stdout.lines().find(|l| !l.starts_with(".ie") && !l.starts_with(".el")).unwrap_or_default();
    assert!(first_macro.starts_with(".TH apollo 1"), "{first_macro:?}");
    for text in [".SH NAME", ".SH SYNOPSIS", "monit", "startup"] {
        assert!(out.stdout.contains(text), "{text} missing:\n{}", out.stdout);
    }
    // `man` is hidden: a page for the tool, not a command people type.
    assert!(!run_cli(&["--help"], None).stdout.contains(" man "));

    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(&["man", "--out-dir", dir.path().to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{out:?}");
    for page in ["apollo.1", "apollo-monit.1", "apollo-startup-systemd.1", "apollo-app-start.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH "), "{page}");
    }
    assert!(!dir.path().join("apollo-man.1").exists(), "no page for the hidden command");
}
