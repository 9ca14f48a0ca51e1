//! `GET /metrics` end to end: a real Prometheus (Debian's `prometheus`, see
//! `.ci/prometheus-up.sh`), started by this test on 127.0.0.1 with a private config and
//! TSDB folder, scrapes the real host every second with a host token, and its query
//! API must return the host's series and the one a module contributes. Also the gate:
//! a token over TCP unless `metrics.public`, trusted over the unix socket.
//!
//! Without `prometheus` on PATH the Prometheus test says so in one line and passes,
//! unless `APOLLO_REQUIRE_COMPONENTS=1` (as `make unit` sets), where it fails.

use crate::common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apollo_host::cli::{ApiClient, Endpoint};
use common::{Deployment, model};
use http::Method;
use serde_json::{Value, json};

/// How long Prometheus gets to scrape and answer (it scrapes every second).
const WAIT: Duration = Duration::from_secs(60);

fn deployment(overrides: Value) -> Deployment {
    let mut config = json!({"modules": {"dir": "modules"}});
    common::merge(&mut config, &overrides);
    let d = Deployment::with(config);
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(common::module_library("fixture-metrics-module"), d.root().join("modules/metered.so")).unwrap();
    let mut sleeper = model("sleeper", "app_sleeper", &[]);
    sleeper["run_data"]["command"] = json!(["sleep", "300"]);
    d.write_model("sleeper.pig", &sleeper);
    d.write_model("idle.pig", &model("idle", "app_idle", &[]));
    d
}

pub(crate) fn prometheus_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("prometheus")).find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `prometheus` child scraping `target` with the token in `credentials`; killed (by
/// its pid) on drop. Its log is kept for failure messages.
pub(crate) struct Prometheus {
    child: Child,
    log: PathBuf,
    api: ApiClient,
}

impl Prometheus {
    pub(crate) fn start(binary: &Path, dir: &Path, target: &str, credentials: &Path) -> Self {
        let port = free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: apollo\n    metrics_path: /metrics\n\
                 \x20   authorization:\n      credentials_file: {}\n\
                 \x20   static_configs:\n      - targets: ['{target}']\n",
                credentials.display()
            ),
        )
        .unwrap();
        let log = dir.join("prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus starts");
        Self { child, log, api: ApiClient::new(Endpoint::Tcp(format!("127.0.0.1:{port}")), None) }
    }

    /// The instant vector of `query`, or `None` while Prometheus is not answering.
    async fn query(&self, query: &str) -> Option<Vec<Value>> {
        let answer = self.api.send(Method::GET, &format!("/api/v1/query?query={}", percent(query)), None).await.ok()?;
        let body = answer.json();
        (body["status"] == "success").then(|| body["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until `query` returns a series whose value satisfies `accept`; fails with
    /// what Prometheus last said about the target.
    pub(crate) async fn wait_for(&self, query: &str, accept: impl Fn(f64) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(series) = self.query(query).await
                && let Some(found) = series.into_iter().find(|s| value(s).is_some_and(&accept))
            {
                return found;
            }
            if start.elapsed() > WAIT {
                let targets = self.api.send(Method::GET, "/api/v1/targets", None).await.map(|r| r.json());
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                panic!(
                    "Prometheus did not return {query} within {WAIT:?}.\nlast answer: {:?}\ntargets: {targets:?}\nlog tail:\n{}",
                    self.query(query).await,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn value(series: &Value) -> Option<f64> {
    series["value"][1].as_str()?.parse().ok()
}

/// Percent-encodes everything but unreserved characters (a PromQL query has braces,
/// quotes and spaces).
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `promtool check metrics` (shipped beside `prometheus`) reads the exposition on stdin
/// and lints it: names, HELP/TYPE order, histogram suffixes, duplicate families.
pub(crate) fn lint_with_promtool(prometheus: &Path, exposition: &[u8]) {
    use std::io::Write;
    let promtool = prometheus.with_file_name("promtool");
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", promtool.display()));
    child.stdin.take().unwrap().write_all(exposition).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_host_and_module_series() {
    let binary = prometheus_binary();
    if !common::components::require("prometheus", binary.is_some(), "run .ci/prometheus-up.sh (make test-deps)") {
        return;
    }
    let binary = binary.expect("checked above");
    let d = deployment(json!({}));
    let host = d.start().await;
    let client = host.authed().await;
    let _: Value = client.post("/api/apps/sleeper/start", None).await.unwrap();
    for kind in ["fast", "fast", "fast", "slow"] {
        let _: Value = client.get(&format!("/api/module/metered/hit/{kind}")).await.unwrap();
    }
    lint_with_promtool(&binary, &host.uds().send(Method::GET, "/metrics", None).await.unwrap().body);
    let credentials = d.root().join("prometheus-token");
    std::fs::write(&credentials, host.login().await).unwrap();
    let prometheus = Prometheus::start(&binary, d.root(), &host.host.http_addr.to_string(), &credentials);

    let up = prometheus.wait_for(r#"up{job="apollo"}"#, |v| v == 1.0).await;
    assert_eq!(up["metric"]["instance"], host.host.http_addr.to_string());
    prometheus.wait_for(r#"apollo_services{state="running"}"#, |v| v == 1.0).await;
    prometheus.wait_for(r#"apollo_services{state="stopped"}"#, |v| v == 1.0).await;
    prometheus.wait_for(r#"apollo_service_state{service="sleeper",state="running"}"#, |v| v == 1.0).await;
    prometheus
        .wait_for(r#"apollo_service_resident_memory_bytes{service="sleeper",instance_id="0"}"#, |v| v > 0.0)
        .await;
    prometheus.wait_for(r#"apollo_service_uptime_seconds{service="sleeper"}"#, |v| v >= 0.0).await;
    prometheus.wait_for(r#"apollo_service_cpu_seconds_total{service="sleeper"}"#, |v| v >= 0.0).await;
    prometheus.wait_for(r#"apollo_service_restarts_total{service="sleeper"}"#, |v| v == 0.0).await;
    prometheus.wait_for(r#"apollo_module_requests_total{module="metered"}"#, |v| v == 4.0).await;
    prometheus.wait_for(r#"apollo_module_panics_total{module="metered"}"#, |v| v == 0.0).await;
    prometheus
        .wait_for(r#"apollo_module_request_duration_seconds_count{module="metered",status_class="2xx"}"#, |v| v == 4.0)
        .await;
    prometheus
        .wait_for(r#"apollo_http_requests_total{route="/api/module/{name}/{*rest}",method="GET",status="200"}"#, |v| {
            v == 4.0
        })
        .await;
    prometheus.wait_for(r#"apollo_http_request_duration_seconds_count{route="/metrics"}"#, |v| v >= 1.0).await;
    prometheus.wait_for(r#"apollo_store_operation_duration_seconds_count{operation="find_token"}"#, |v| v >= 1.0).await;
    // The module's own series, through the SDK, the FFI boundary and the host's text.
    prometheus.wait_for(r#"fixture_hits_total{module="metered",kind="fast"}"#, |v| v == 3.0).await;
    prometheus.wait_for(r#"fixture_hits_total{module="metered",kind="other"}"#, |v| v == 1.0).await;
    // Figures for the record (the test's output with --nocapture).
    let scrape = prometheus.wait_for(r#"scrape_duration_seconds{job="apollo"}"#, |v| v > 0.0).await;
    let samples = prometheus.wait_for(r#"scrape_samples_scraped{job="apollo"}"#, |v| v > 0.0).await;
    eprintln!(
        "prometheus scraped the host in {:?} s, {:?} samples",
        value(&scrape).unwrap_or_default(),
        value(&samples).unwrap_or_default()
    );
    drop(prometheus);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_a_token_over_tcp_and_are_trusted_over_the_socket() {
    let d = deployment(json!({}));
    let host = d.start().await;
    let refused = host.tcp().send(Method::GET, "/metrics", None).await.unwrap();
    assert_eq!(refused.status, 401, "{:?}", refused.body);
    assert_eq!(refused.json()["error"]["code"], "unauthorized", "the host's error shape");
    let wrong = host.tcp().with_token(Some("not-a-token".into())).send(Method::GET, "/metrics", None).await.unwrap();
    assert_eq!(wrong.status, 401);
    let authed = host.authed().await.send(Method::GET, "/metrics", None).await.unwrap();
    assert_eq!(authed.status, 200);
    assert_eq!(authed.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let socket = host.uds().send(Method::GET, "/metrics", None).await.unwrap();
    assert_eq!(socket.status, 200);
    let text = String::from_utf8(socket.body.to_vec()).unwrap();
    assert!(text.contains("# TYPE apollo_services gauge\n"), "{text}");
    assert!(text.contains("apollo_services{state=\"stopped\"} 2\n"), "{text}");
    assert!(text.contains("# TYPE apollo_module_requests_total counter\n"), "{text}");
    // Unmatched paths are one series, whatever the path.
    for path in ["/no/such/path/1", "/no/such/path/2"] {
        let _ = host.uds().send(Method::GET, path, None).await.unwrap();
    }
    let text = String::from_utf8(host.uds().send(Method::GET, "/metrics", None).await.unwrap().body.to_vec()).unwrap();
    assert!(text.contains(r#"apollo_http_requests_total{method="GET",route="unmatched",status="404"} 2"#), "{text}");
    assert!(!text.contains("/no/such/path"), "raw paths never become labels");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_public_and_metrics_disabled() {
    let d = deployment(json!({"metrics": {"public": true}}));
    let host = d.start().await;
    let open = host.tcp().send(Method::GET, "/metrics", None).await.unwrap();
    assert_eq!(open.status, 200, "metrics.public serves without a token");
    let api = host.tcp().send(Method::GET, "/api/apps", None).await.unwrap();
    assert_eq!(api.status, 401, "the rest of the API still needs one");
    host.shutdown().await;

    let d = deployment(json!({"metrics": {"enabled": false}}));
    let host = d.start().await;
    let gone = host.uds().send(Method::GET, "/metrics", None).await.unwrap();
    assert_eq!(gone.status, 404);
    host.shutdown().await;
}
