//! module-influx end to end: the real `.so` (modules/influx) loaded by the real host,
//! writing to a real InfluxDB 1.x (`influxd` from Debian's `influxdb` package, see
//! `.ci/influx-up.sh`) that this test starts as its own child on 127.0.0.1 with a
//! private data directory. The test reads InfluxDB directly to check what arrived,
//! kills it (SIGKILL, as a crash would) to make the module buffer, restarts it on the
//! same data and port, and checks that every sampling round arrived exactly once and
//! that the module's series route reads the outage window back.

use crate::common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Deployment, eventually, model};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DATABASE: &str = "apollo_test";
/// Sent as credentials (this influxd has auth off, so it ignores them); must never
/// appear in an answer of the module.
const USERNAME: &str = "influx-writer-name";
const PASSWORD: &str = "influx-password-not-for-eyes";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// An `influxd` child with its own config and data under `dir`; killed (by pid) on drop.
struct Influxd {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Influxd {
    async fn start(dir: &Path) -> Self {
        let port = free_port();
        let rpc_port = loop {
            let p = free_port();
            if p != port {
                break p;
            }
        };
        let config = dir.join("influxdb.conf");
        let d = dir.display();
        // Only the HTTP API, on loopback; no reporting, monitor store, UDP or graphite
        // listeners (those are off unless configured), no continuous queries.
        std::fs::write(
            &config,
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc_port}\"\n\
                 [meta]\n  dir = \"{d}/meta\"\n\
                 [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
                 [http]\n  enabled = true\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n\
                 [monitor]\n  store-enabled = false\n\
                 [continuous_queries]\n  enabled = false\n\
                 [subscriber]\n  enabled = false\n"
            ),
        )
        .unwrap();
        let mut influxd = Self { child: None, config, log: dir.join("influxd.log"), port };
        influxd.spawn().await;
        influxd
    }

    async fn spawn(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new("influxd")
            .args(["run", "-config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run influxd ({e}): run ./.ci/influx-up.sh (make test-deps does)"));
        self.child = Some(child);
        let port = self.port;
        eventually("influxd answers /ping", Duration::from_secs(30), || async move {
            matches!(http_get(port, "/ping").await, Some((204, _))).then_some(())
        })
        .await;
    }

    /// SIGKILL to our own child, by pid, and reap it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn query(&self, q: &str) -> Value {
        let path = format!("/query?db={DATABASE}&epoch=ms&q={}", encode(q));
        let (status, body) = http_get(self.port, &path).await.expect("influxd answers");
        assert_eq!(status, 200, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(v["results"][0]["error"].is_null(), "{q}: {v}");
        v["results"][0].clone()
    }

    /// The single number a `SELECT count(…)` answers (0 when there is no series).
    async fn count(&self, q: &str) -> i64 {
        self.query(q).await["series"][0]["values"][0][1].as_i64().unwrap_or(0)
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A plain HTTP/1.0 GET (the answer is then neither chunked nor kept alive).
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        Some((head.split_whitespace().nth(1)?.parse().ok()?, body.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange).await.ok().flatten()
}

fn encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_reach_influxdb_survive_its_restart_and_read_back() {
    let present = common::components::on_path("influxd");
    if !common::components::require("influxd", present, "run ./.ci/influx-up.sh (make test-deps does)") {
        return;
    }
    let influx_dir = tempfile::tempdir().unwrap();
    let mut influxd = Influxd::start(influx_dir.path()).await;

    let d = Deployment::with(json!({"modules": {"dir": "modules", "config": {"influx": {
        "url": format!("http://127.0.0.1:{}", influxd.port),
        "database": DATABASE,
        "username": USERNAME,
        "password": PASSWORD,
        "interval_secs": 1,
        "timeout_secs": 2,
        "retry_initial_ms": 100,
        "retry_max_secs": 1
    }}}}));
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(common::module_library("module-influx"), d.root().join("modules/influx.so")).unwrap();
    let mut sleeper = model("sleeper", "app_sleeper", &[]);
    sleeper["run_data"]["command"] = json!(["/bin/sleep", "1000"]);
    d.write_model("sleeper.pig", &sleeper);
    let host = d.start().await;
    let client = host.uds();
    let status = || async { client.get::<Value>("/api/module/influx/status").await.expect("status answers") };

    let modules: Value = client.get("/api/modules").await.unwrap();
    let influx = modules["modules"].as_array().unwrap().iter().find(|m| m["name"] == "influx");
    assert!(influx.is_some(), "influx not loaded: {modules:#}");
    let _: Value = client.post("/api/apps/sleeper/start", None).await.unwrap();

    // Points of the running service arrive, with its memory.
    let influx = &influxd;
    eventually("a point of the running sleeper in InfluxDB", Duration::from_secs(30), || async move {
        let r = influx
            .query(r#"SELECT "rss_bytes", "up", "state" FROM "apollo_service" WHERE "service" = 'sleeper' ORDER BY time DESC LIMIT 1"#)
            .await;
        let row = r["series"][0]["values"][0].clone();
        (row[2] == 1 && row[1].as_i64().is_some_and(|rss| rss > 0) && row[3] == "running").then_some(())
    })
    .await;
    assert!(influxd.count(r#"SELECT count("load_1m") FROM "apollo_host""#).await > 0);
    assert!(influxd.count(r#"SELECT count("rss_bytes") FROM "apollo_instance" WHERE "service" = 'sleeper'"#).await > 0);

    // The status route: counters, and the config without the credentials.
    let s = status().await;
    assert!(s["written"].as_u64().unwrap() > 0, "{s:#}");
    assert_eq!(s["config"]["database"], DATABASE);
    assert_eq!(s["config"]["authenticated"], true);
    let text = s.to_string();
    assert!(!text.contains(PASSWORD) && !text.contains(USERNAME), "credentials leaked: {text}");

    // The series route reads them back for a chart.
    let series = eventually("the series route returns points", Duration::from_secs(30), || async {
        let v: Value = client.get("/api/module/influx/series/sleeper?field=rss_bytes&from=-5m").await.ok()?;
        (v["points"].as_array()?.len() >= 2).then_some(v)
    })
    .await;
    assert_eq!((series["service"].as_str(), series["field"].as_str()), (Some("sleeper"), Some("rss_bytes")));
    // The newest point is the running sleeper (older ones may predate its start).
    assert!(series["points"].as_array().unwrap().last().unwrap()[1].as_f64().unwrap() > 0.0, "{series:#}");
    let bad = client.get::<Value>("/api/module/influx/series/sleeper?field=password").await;
    assert!(format!("{bad:?}").contains("bad_request"), "{bad:?}");

    // InfluxDB goes away: rounds keep their timestamps and pile up in the buffer.
    let written_before = status().await["written"].as_u64().unwrap();
    influxd.kill();
    let outage_from = now_ms();
    // One round may have been timed before `outage_from` and counted after it: four
    // more rounds make at least three timed inside the outage.
    let samples_at_kill = status().await["samples"].as_u64().unwrap();
    let during = eventually("points buffer while InfluxDB is down", Duration::from_secs(30), || async {
        let s = status().await;
        (s["samples"].as_u64()? >= samples_at_kill + 4
            && s["buffered"].as_u64()? >= 9
            && s["consecutive_failures"].as_u64()? > 0)
            .then_some(s)
    })
    .await;
    assert!(during["last_error"]["message"].as_str().unwrap().contains(&influxd.port.to_string()), "{during:#}");
    let text = during.to_string();
    assert!(!text.contains(PASSWORD) && !text.contains(USERNAME), "credentials leaked: {text}");
    let outage_to = now_ms();

    // It comes back on the same data and port: the buffer drains into it.
    influxd.spawn().await;
    let settled = eventually("the buffer drains after InfluxDB is back", Duration::from_secs(60), || async {
        let s = status().await;
        (s["buffered"] == 0 && s["written"].as_u64()? > written_before + 9).then_some(s)
    })
    .await;
    assert_eq!((settled["dropped"].as_u64(), settled["rejected"].as_u64()), (Some(0), Some(0)), "{settled:#}");

    // Every round up to the last one the status accounts for is in InfluxDB exactly
    // once: as many host points (and sleeper points) as rounds, none lost, none doubled.
    let rounds = settled["samples"].as_i64().unwrap();
    let last = settled["last_sample_ms"].as_i64().unwrap();
    let host_points =
        influxd.count(&format!(r#"SELECT count("services") FROM "apollo_host" WHERE time <= {last}ms"#)).await;
    assert_eq!(host_points, rounds, "{settled:#}");
    let sleeper_points = influxd
        .count(&format!(r#"SELECT count("up") FROM "apollo_service" WHERE "service" = 'sleeper' AND time <= {last}ms"#))
        .await;
    assert_eq!(sleeper_points, rounds, "{settled:#}");
    let in_outage = influxd
        .count(&format!(
            r#"SELECT count("services") FROM "apollo_host" WHERE time >= {outage_from}ms AND time <= {outage_to}ms"#
        ))
        .await;
    assert!(in_outage >= 3, "rounds sampled while InfluxDB was down arrived: {in_outage}");

    // The series route returns the outage window too, in order, once each.
    let window: Value = client
        .get(&format!("/api/module/influx/series/sleeper?field=up&from={outage_from}&to={outage_to}"))
        .await
        .unwrap();
    let points = window["points"].as_array().unwrap();
    assert_eq!(points.len() as i64, in_outage, "{window:#}");
    let times: Vec<i64> = points.iter().map(|p| p[0].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "strictly increasing, no duplicates: {times:?}");
    assert!(times.iter().all(|t| (outage_from..=outage_to).contains(t)));
    assert!(points.iter().all(|p| p[1] == 1.0), "the sleeper was up throughout: {window:#}");

    // A forced flush answers with what it did.
    let flushed: Value = client.post("/api/module/influx/flush", None).await.unwrap();
    assert!(flushed["error"].is_null(), "{flushed:#}");

    let _: Value = client.post("/api/apps/sleeper/stop", None).await.unwrap();
    host.shutdown().await;
    drop(influxd);
}
