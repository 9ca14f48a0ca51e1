//! The web dashboard (`/ui/`) against a real host with real services and the real
//! `module_config.so`: the security headers and the cookie session's forgery guard over
//! plain HTTP, then Debian's `chromium` driven headless through `chromium-driver`
//! (WebDriver, fantoccini): log in, stop a service from the page and see it stopped,
//! start it from the API and see the page follow without a reload, follow a log line
//! the service writes, its CPU/RSS charts filling, acknowledge an alarm, run a task and
//! see it in its history, edit and release a config item while a real npm `ctrip-apollo`
//! client long-polls (and see it print the new value), gray release / merge / abandon,
//! access keys and consumers (secrets shown once), a format error shown, an ended session
//! sent back to login, and logout. A second host with module-gateway and module-catalog:
//! the gateway page shows a route, its upstream instance and its live traffic while a
//! client sends requests through the gateway, and adds (a refusal shown first), edits and
//! removes a route; the catalog page an instance with its passing check, put in and out of
//! maintenance and deregistered; the KV page; a backup made from the backups page and
//! restored (after a confirmation, once cancelled); a file viewed, one uploaded, renamed
//! and deleted from the files page. Screenshots of every page at 1280 px and 390 px go to
//! `$APOLLO_SCREENSHOT_DIR` (default: `<temp>/apollo-dashboard-screenshots`), printed
//! at the end.

use crate::common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::config_clients::{self, is};
use common::{ADMIN_PASSWORD, Deployment, components};
use fantoccini::{Client, ClientBuilder, Locator};
use http::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ------------------------------------------------------------------ plain HTTP

/// One HTTP/1.1 request over a fresh connection; the status, headers (lower-cased
/// names) and body. Raw on purpose: the test controls every header the browser would.
async fn raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the host");
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// The status of a websocket handshake on `/api/events` with the cookie and an Origin.
async fn websocket_status(addr: &str, cookie: &str, origin: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the host");
    let request = format!(
        "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap() == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const UI: (&str, &str) = ("X-Requested-With", "apollo-ui");

/// Logs in for the session cookie; returns the `Cookie` header value.
async fn cookie_login(addr: &str) -> String {
    let body = json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
    let (status, headers, text) =
        raw(addr, "POST", "/api/auth/login", &[JSON, ("X-Apollo-Session", "cookie")], &body).await;
    assert_eq!(status, 200, "{text}");
    let login: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(login["token"], "", "a cookie login keeps the token out of the body: {text}");
    let set = header(&headers, "set-cookie").expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{attr} missing: {set}");
    }
    set.split(';').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_headers_cookie_session_and_forgery_guard() {
    let d = Deployment::new();
    let mut svc = common::model("web", "app_web", &[]);
    svc["run_data"]["command"] = json!(["/bin/sleep", "1000"]);
    d.write_model("web.pig", &svc);
    let host = d.start().await;
    let addr = host.host.http_addr.to_string();

    // The page and its assets, with the security headers, without a login.
    for path in ["/ui/", "/ui/app.js", "/ui/app.css", "/ui/nothing-here"] {
        let (status, headers, _) = raw(&addr, "GET", path, &[], "").await;
        assert_eq!(status, if path.ends_with("nothing-here") { 404 } else { 200 }, "{path}");
        let csp = header(&headers, "content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{path}: {csp}"
        );
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(header(&headers, "referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(header(&headers, "x-frame-options"), Some("DENY"), "{path}");
    }
    let (status, headers, _) = raw(&addr, "GET", "/ui", &[], "").await;
    assert_eq!((status, header(&headers, "location")), (308, Some("/ui/")));

    let cookie = cookie_login(&addr).await;
    let with_cookie = ("Cookie", cookie.as_str());
    let (status, _, text) = raw(&addr, "GET", "/api/auth/whoami", &[with_cookie], "").await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"admin\""), "{text}");

    // A change with the cookie alone (a forged form post) is refused, and does nothing.
    let (status, _, text) = raw(&addr, "POST", "/api/apps/web/start", &[with_cookie], "").await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("X-Requested-With"), "{text}");
    let status_now: Value = host.uds().get("/api/apps/web/status").await.unwrap();
    assert_eq!(status_now["state"], "stopped");
    // From another origin, even with the header (and the websocket handshake too).
    let evil = ("Origin", "http://evil.test");
    let (status, _, _) = raw(&addr, "POST", "/api/apps/web/start", &[with_cookie, UI, evil], "").await;
    assert_eq!(status, 403);
    assert_eq!(websocket_status(&addr, &cookie, "http://evil.test").await, 403, "cross-site websocket hijacking");
    let own = format!("http://{addr}");
    assert_eq!(websocket_status(&addr, &cookie, &own).await, 101, "the page's own websocket, with the cookie");
    // The page's own request: the header, its own origin.
    let (status, _, text) = raw(&addr, "POST", "/api/apps/web/start", &[with_cookie, UI, ("Origin", &own)], "").await;
    assert_eq!(status, 200, "{text}");

    // Logout revokes the token and clears the cookie.
    let (status, headers, _) = raw(&addr, "POST", "/api/auth/logout", &[with_cookie, UI], "").await;
    assert_eq!(status, 204);
    assert!(header(&headers, "set-cookie").is_some_and(|c| c.contains("Max-Age=0")), "{headers:?}");
    let (status, _, _) = raw(&addr, "GET", "/api/auth/whoami", &[with_cookie], "").await;
    assert_eq!(status, 401, "the token behind the cookie is revoked");
    host.shutdown().await;
}

// ------------------------------------------------------------------ the browser

/// chromedriver (a child) with one headless chromium session on a fresh profile.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A session, with one retry: a chromium that exits while starting (seen once on a
    /// loaded machine) gets a second chance with a fresh profile; its log is printed.
    async fn start() -> Self {
        match Self::try_start().await {
            Ok(browser) => browser,
            Err(first) => {
                eprintln!("chromium did not start, retrying once: {first}");
                Self::try_start().await.unwrap_or_else(|second| panic!("no chromium session: {second}"))
            }
        }
    }

    async fn try_start() -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let profile = tempfile::tempdir().unwrap();
        let log = profile.path().join("chromedriver.log");
        // Its own process group, which chromium joins: one signal ends both, even when
        // the test fails half-way (Drop).
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .process_group(0)
            // Chromium's scratch folders go with the profile, removed after the test.
            .env("TMPDIR", profile.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().join("profile").display())])
        .collect::<Vec<_>>();
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), json!({"binary": chromium_binary(), "args": args}));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match client {
            Ok(client) => client,
            Err(e) => {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(driver.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let mut driver = driver;
                let _ = driver.wait();
                return Err(format!("{e}\nchromedriver log (end):\n{}", tail.join("\n")));
            }
        };
        Ok(Self { client, driver, _profile: profile })
    }

    async fn close(self) {
        let _ = self.client.clone().close().await;
        // Drop ends chromedriver and whatever is left of chromium.
    }

    /// The text of the first element matching `css`, or empty.
    async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the text of `css` satisfies `pred` (30 s: the suite shares two cores).
    async fn wait_text(&self, css: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text(css).await;
            if pred(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what} ({css}); last text: {text:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until attribute `attr` of the first `css` element satisfies `pred` (30 s).
    async fn wait_attr(&self, css: &str, attr: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let value = match self.client.find(Locator::Css(css)).await {
                Ok(el) => el.attr(attr).await.ok().flatten().unwrap_or_default(),
                Err(_) => String::new(),
            };
            if pred(&value) {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what} ({css} @{attr}); last: {value:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element; found again if a live re-render replaced it meanwhile (a
    /// table re-drawn by an event between the find and the click).
    async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let el = self.client.wait().at_most(Duration::from_secs(30)).for_element(Locator::Css(css)).await;
            match el.unwrap_or_else(|e| panic!("no {css}: {e}")).click().await {
                Ok(()) => return,
                Err(e) if e.to_string().contains("stale element") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    /// Answers the confirmation dialog with its OK button.
    async fn confirm(&self) {
        self.wait_text("#dialog-title", "the confirmation dialog", |t| !t.is_empty()).await;
        self.click("#dialog-ok").await;
    }

    /// Types into the field, waited for as [`Self::click`] waits: a field on a page
    /// just opened by a click is drawn once its data is in, not at the click.
    async fn type_into(&self, css: &str, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let el = self.client.wait().at_most(Duration::from_secs(30)).for_element(Locator::Css(css)).await;
            let el = el.unwrap_or_else(|e| panic!("no {css}: {e}"));
            let typed = async {
                el.clear().await?;
                el.send_keys(text).await
            };
            match typed.await {
                Ok(()) => return,
                Err(e) if e.to_string().contains("stale element") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("type into {css}: {e}"),
            }
        }
    }

    async fn go(&self, base: &str, hash: &str) {
        self.client.goto(&format!("{base}/ui/{hash}")).await.unwrap();
    }

    /// Screenshots of the current page at both widths, as `NAME-1280.png`/`NAME-390.png`.
    async fn shoot(&self, dir: &Path, name: &str) {
        // The notifications of earlier steps would cover the page.
        self.client.execute("document.getElementById('toasts').replaceChildren()", vec![]).await.unwrap();
        for (width, height) in [(1280, 900), (390, 844)] {
            self.client.set_window_size(width, height).await.unwrap();
            tokio::time::sleep(Duration::from_millis(400)).await;
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}-{width}.png")), png).unwrap();
        }
        self.client.set_window_size(1280, 900).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.driver.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.driver.wait();
    }
}

fn chromium_binary() -> &'static str {
    ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("chromium")
}

fn browser_present() -> bool {
    let present = components::on_path("chromedriver") && Path::new(chromium_binary()).exists();
    components::require("chromium + chromium-driver", present, "run ./.ci/browser-up.sh as root (make test-deps does)")
}

fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("APOLLO_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("apollo-dashboard-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A module library next to the binary under test, if it was built.
fn optional_module(package: &str) -> Option<PathBuf> {
    let file = format!("lib{}.so", package.replace('-', "_"));
    let path = PathBuf::from(common::apollo_bin()).parent()?.join(file);
    path.exists().then_some(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_chromium() {
    surfaced("dashboard_in_chromium", dashboard_steps()).await;
}

/// Runs a browser test's steps; a failure's message also goes straight to the process's
/// stderr. libtest holds a failing test's output back to the summary at the end of the
/// whole binary, which a CI excerpt of the lines around `FAILED` does not reach; these
/// tests are long, and the step that failed is what one needs to know.
async fn surfaced(test: &str, steps: impl std::future::Future<Output = ()>) {
    use futures::FutureExt;
    if let Err(panic) = std::panic::AssertUnwindSafe(steps).catch_unwind().await {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(a panic without a message)");
        // `std::io::stderr()` directly: `eprintln!` is what libtest captures.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{test} failed: {message}");
        std::panic::resume_unwind(panic);
    }
}

async fn dashboard_steps() {
    if !browser_present() {
        return;
    }
    // One CPU/RSS sample a second (10 s by default), so the charts fill within the test.
    let d = Deployment::with(json!({"modules": {"dir": "modules"}, "alarms": {"disk_check_secs": 0},
        "metrics": {"history_interval_secs": 1}}));
    std::fs::create_dir_all(d.root().join("modules")).unwrap();
    std::fs::copy(common::module_library("module-config"), d.root().join("modules/module_config.so")).unwrap();
    if let Some(sys) = optional_module("module-sys") {
        std::fs::copy(sys, d.root().join("modules/module_sys.so")).unwrap();
    }
    let mut web = common::model("web", "app_web", &[]);
    web["run_data"]["command"] = json!(["/bin/sleep", "1000"]);
    d.write_model("web.pig", &web);
    let input = d.root().join("tailer-input.txt");
    std::fs::write(&input, "").unwrap();
    let mut tailer = common::model("tailer", "app_tailer", &[]);
    tailer["run_data"]["command"] = json!(["/usr/bin/tail", "-n0", "-F", input.to_str().unwrap()]);
    d.write_model("tailer.pig", &tailer);
    let mut crashy = common::model("crashy", "app_crashy", &[]);
    crashy["run_data"]["command"] = json!(["/bin/sh", "-c", "exit 3"]);
    crashy["supervise"] = json!({"backoff_initial_ms": 50, "min_uptime_ms": 5000, "max_restarts": 2});
    d.write_model("crashy.pig", &crashy);
    d.write_model_text("broken.pig", "{\"name\": \"broken\",");

    let host = d.start().await;
    let api = host.uds();
    for name in ["web", "tailer"] {
        let started: Value = api.post(&format!("/api/apps/{name}/start"), None).await.unwrap();
        assert_eq!(started["state"], "running", "{started}");
    }
    // A config app with a JSON namespace, made through the module's Open API.
    let app = json!({"app": {"appId": "shop", "name": "Shop", "orgId": "default", "orgName": "default", "ownerName": "admin"}, "admins": ["admin"]});
    let _: Value = api.post("/api/module/config/openapi/v1/apps", Some(&app)).await.unwrap();
    let ns = json!({"name": "settings", "appId": "shop", "format": "json", "isPublic": false, "appendNamespacePrefix": true, "dataChangeCreatedBy": "admin"});
    let _: Value = api.post("/api/module/config/openapi/v1/apps/shop/appnamespaces", Some(&ns)).await.unwrap();

    let base = format!("http://{}", host.host.http_addr);
    let shots = screenshot_dir();
    let b = Browser::start().await;

    // Login: the form first, a wrong password refused, then in.
    b.go(&base, "").await;
    b.wait_text("#login-title", "the login form", |t| t == "Apollo").await;
    b.shoot(&shots, "login").await;
    b.type_into("#login-password", "wrong-password").await;
    b.click("#login-submit").await;
    b.wait_text("#login-error", "the refusal", |t| t.contains("wrong user name or password")).await;
    b.type_into("#login-password", ADMIN_PASSWORD).await;
    b.click("#login-submit").await;
    b.wait_text("#whoami", "the signed-in user", |t| t == "admin").await;
    b.wait_text("#live", "the live events connection", |t| t == "live").await;
    let visible = b.client.execute("return document.cookie", vec![]).await.unwrap();
    assert!(
        !visible.as_str().unwrap_or_default().contains("apollo_session"),
        "the session cookie is readable by scripts: {visible}"
    );
    let session = b
        .client
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name() == "apollo_session")
        .expect("the session cookie");
    assert_eq!(session.http_only(), Some(true));
    let token = session.value().to_string();

    // Overview.
    b.wait_text("#main", "the overview", |t| t.contains("Services") && t.contains("Open alarms")).await;
    b.shoot(&shots, "overview").await;

    // Services: stop web from the page (with confirmation) and see it stopped.
    b.go(&base, "#/services").await;
    let web_state = "tr[data-service='web'] td.state";
    b.wait_text(web_state, "web running", |t| t == "running").await;
    b.wait_text("#main", "the model problem, where it is", |t| {
        t.contains("Model problems (1)") && t.contains("broken.pig")
    })
    .await;
    b.shoot(&shots, "services").await;
    b.click("[data-key='stop-web']").await;
    b.confirm().await;
    b.wait_text(web_state, "web stopped in the page", |t| t == "stopped").await;
    let status: Value = api.get("/api/apps/web/status").await.unwrap();
    assert_eq!(status["state"], "stopped");
    // Started elsewhere (the API): the page follows the event, no reload.
    let marker: Value = b.client.execute("window.__noReload = 42; return window.__noReload", vec![]).await.unwrap();
    assert_eq!(marker, json!(42));
    let _: Value = api.post("/api/apps/web/start", None).await.unwrap();
    b.wait_text(web_state, "web running again, live", |t| t == "running").await;
    let still: Value = b.client.execute("return window.__noReload", vec![]).await.unwrap();
    assert_eq!(still, json!(42), "the page was reloaded");

    // A service page: follow a line the service writes.
    b.go(&base, "#/service/tailer").await;
    b.wait_text("#log-state", "the log stream", |t| t.contains("Following")).await;
    b.wait_text("#service-state", "the runtime card", |t| t == "running").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let line = format!("hello from the dashboard test {}", std::process::id());
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&input).unwrap();
        writeln!(f, "{line}").unwrap();
    }
    b.wait_text("#log", "the line the service wrote", |t| t.contains(&line)).await;
    // Its CPU and RSS over the last hour, from the host's samples, redrawn as they come.
    let first = b.wait_attr("#chart-rss", "data-points", "RSS samples charted", |n| n.parse::<u32>().is_ok()).await;
    b.wait_attr("#chart-rss", "data-points", "more RSS samples, live", |n| {
        n.parse::<u32>().is_ok_and(|n| n >= 2 && n > first.parse::<u32>().unwrap_or(0))
    })
    .await;
    b.wait_attr("#chart-cpu", "data-points", "CPU samples charted", |n| n.parse::<u32>().is_ok_and(|n| n >= 1)).await;
    let lines =
        b.client.execute("return document.querySelectorAll('#chart-rss polyline').length", vec![]).await.unwrap();
    assert!(lines.as_u64().unwrap_or(0) >= 1, "a line through the RSS samples: {lines}");
    let axis = b.text("#service-charts").await;
    assert!(axis.contains("MiB") || axis.contains("KiB"), "RSS axis labels: {axis}");
    let history: Value = api.get("/api/apps/tailer/history").await.unwrap();
    assert!(history["points"].as_array().unwrap().iter().all(|p| p["rss_bytes"].as_u64() > Some(0)), "{history}");
    let (status, _, _) = raw(&host.host.http_addr.to_string(), "GET", "/api/apps/tailer/history", &[], "").await;
    assert_eq!(status, 401, "the history needs a token over TCP");
    b.shoot(&shots, "service").await;
    b.client.execute("document.getElementById('charts-title').scrollIntoView()", vec![]).await.unwrap();
    b.shoot(&shots, "service-charts").await;
    // A service that never ran has no samples: the charts say so.
    b.go(&base, "#/service/crashy").await;
    b.wait_text("#service-charts", "the charts' empty state", |t| t.contains("No samples yet")).await;

    // Modules: the loaded config module and its routes.
    b.go(&base, "#/modules").await;
    b.wait_text("#modules-table", "module config listed", |t| t.contains("config") && t.contains("loaded")).await;
    b.shoot(&shots, "modules").await;
    if optional_module("module-sys").is_some() {
        // Disable (confirmed) and enable again, the table following the module events.
        b.click("[data-key='disable-sys']").await;
        b.confirm().await;
        b.click("[data-key='enable-sys']").await;
        b.confirm().await;
        b.wait_text("#modules-table", "sys loaded again", |t| t.contains("sys")).await;
        let modules: Value = api.get("/api/modules").await.unwrap();
        assert!(modules["modules"].as_array().unwrap().iter().any(|m| m["name"] == "sys"), "{modules}");
    }

    // Alarms: crashy exhausts its restarts; acknowledge its alarm in the page.
    let _ = api.send(Method::POST, "/api/apps/crashy/start", None).await.unwrap();
    b.go(&base, "#/alarms").await;
    let row = "tr[data-alarm] td.state";
    b.wait_text("#alarms-table", "crashy's alarm, live", |t| t.contains("crashy")).await;
    b.wait_text(row, "an open alarm", |t| t == "open").await;
    b.shoot(&shots, "alarms").await;
    let id = b.client.find(Locator::Css("tr[data-alarm]")).await.unwrap().attr("data-alarm").await.unwrap().unwrap();
    b.click(&format!("[data-key='ack-{id}']")).await;
    common::eventually("the alarm acknowledged", Duration::from_secs(10), || async {
        let alarm: Value = api.get(&format!("/api/alarms/{id}")).await.ok()?;
        (alarm["state"] == "acked").then_some(())
    })
    .await;
    b.client.find(Locator::Css("#alarm-filter")).await.unwrap().select_by_value("acked").await.unwrap();
    b.wait_text(&format!("tr[data-alarm='{id}'] td.state"), "the acked alarm", |t| t == "acked").await;

    // Tasks: the scheduler's tasks, run one now from the page.
    b.go(&base, "#/tasks").await;
    let tasks: Value = api.get("/api/tasks").await.unwrap();
    if let Some(task) = tasks.as_array().unwrap().iter().find(|t| t["running"] == false) {
        let id = task["id"].as_str().unwrap();
        b.click(&format!("[data-key='run-{id}']")).await;
        common::eventually("the task run from the page", Duration::from_secs(20), || async {
            let history: Value = api.get(&format!("/api/tasks/{id}/history")).await.ok()?;
            (!history.as_array()?.is_empty()).then_some(())
        })
        .await;
        // Its run history, from the page.
        b.click(&format!("[data-key='history-{id}']")).await;
        b.wait_text("#task-history-table", "the manual run in the history", |t| t.contains("manual")).await;
    } else {
        b.wait_text("#main", "no tasks", |t| t.contains("No scheduled tasks")).await;
    }
    b.shoot(&shots, "tasks").await;

    // Audit: what the page did is in the audit log, by the admin.
    b.go(&base, "#/audit").await;
    let audit = b.wait_text("#audit-table", "the page's own actions", |t| t.contains("POST /api/apps/web/stop")).await;
    assert!(audit.lines().any(|l| l.contains("admin")), "{audit}");
    b.shoot(&shots, "audit").await;

    // Config: edit an item, see the diff, release, see a client get it.
    b.go(&base, "#/config").await;
    b.wait_text("#config-apps", "the config apps", |t| t.contains("shop")).await;
    b.shoot(&shots, "config-apps").await;
    b.go(&base, "#/config/shop").await;
    b.wait_text("#main", "the namespaces", |t| t.contains("application") && t.contains("settings")).await;
    b.shoot(&shots, "config-app").await;
    b.go(&base, "#/config/shop/default/application").await;
    b.wait_text("#item-form-title", "the item form", |t| !t.is_empty()).await;
    b.type_into("#item-key", "greeting").await;
    b.type_into("#item-value", "hello-from-the-ui").await;
    b.click("#item-save").await;
    b.wait_text("#changes", "the diff against the last release", |t| t.contains("+ greeting = hello-from-the-ui"))
        .await;
    b.wait_text("#items-table", "the item", |t| t.contains("greeting")).await;
    b.shoot(&shots, "config-items").await;
    b.click("#release").await;
    b.confirm().await;
    b.wait_text("#history-table", "the release in the history", |t| t.contains("latest")).await;
    b.wait_text("#main", "no change left", |t| t.contains("Nothing to release")).await;
    let (status, _, body) =
        raw(&host.host.http_addr.to_string(), "GET", "/api/module/config/configs/shop/default/application", &[], "")
            .await;
    assert_eq!(status, 200, "{body}");
    let released: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(released["configurations"]["greeting"], "hello-from-the-ui", "{released}");
    b.shoot(&shots, "config-released").await;

    // A real long-polling client (npm ctrip-apollo with its defaults) on that namespace:
    // it sees what the page releases from now on.
    let scratch = tempfile::tempdir().unwrap();
    let config_base = format!("{base}/api/module/config");
    let mut client =
        config_clients::node_client().then(|| config_clients::Client::node(scratch.path(), &config_base, "shop", &[]));
    if let Some(client) = client.as_mut() {
        let ready = client.wait_for("the client's ready()", |e| is(e, "ready")).await;
        assert_eq!(ready["config"]["greeting"], "hello-from-the-ui", "{ready}");
        client.mark();
    }

    // A second release, rolled back from the history: clients get the first again.
    b.click("tr[data-item='greeting'] button").await;
    b.type_into("#item-value", "second-value").await;
    b.click("#item-save").await;
    b.wait_text("#changes", "the modification", |t| t.contains("~ greeting: hello-from-the-ui → second-value")).await;
    b.click("#release").await;
    b.confirm().await;
    let client_value = || async {
        let (_, _, body) = raw(
            &host.host.http_addr.to_string(),
            "GET",
            "/api/module/config/configs/shop/default/application",
            &[],
            "",
        )
        .await;
        let got: Value = serde_json::from_str(&body).unwrap_or_default();
        got["configurations"]["greeting"].as_str().unwrap_or_default().to_string()
    };
    common::eventually("the second release served", Duration::from_secs(10), || async {
        (client_value().await == "second-value").then_some(())
    })
    .await;
    if let Some(client) = client.as_mut() {
        let change = client.wait_for("the page's release pushed to the client", |e| is(e, "change")).await;
        assert_eq!(
            (change["key"].as_str(), change["newValue"].as_str()),
            (Some("greeting"), Some("second-value")),
            "{change}"
        );
        client.mark();
    }
    b.wait_text("#history-table", "two releases", |t| t.lines().filter(|l| l.contains("release ")).count() >= 2).await;
    b.click("#history-table button").await;
    b.confirm().await;
    common::eventually("the rollback served", Duration::from_secs(10), || async {
        (client_value().await == "hello-from-the-ui").then_some(())
    })
    .await;
    b.wait_text("#history-table", "the abandoned release", |t| t.contains("abandoned")).await;
    b.shoot(&shots, "config-history").await;
    if let Some(client) = client.as_mut() {
        let change = client.wait_for("the rollback pushed to the client", |e| is(e, "change")).await;
        assert_eq!(change["newValue"], "hello-from-the-ui", "{change}");
        client.mark();
    }

    // Gray release: a branch, an override, a rule for one IP, gray publish; the IP gets the
    // branch, everyone else master; then merged (released to all), and a second abandoned.
    b.click("#gray-create").await;
    b.wait_text("#gray-branch", "the gray branch", |t| !t.is_empty()).await;
    b.type_into("#gray-key", "greeting").await;
    b.type_into("#gray-value", "gray-value").await;
    b.click("#gray-item-save").await;
    b.wait_text("#gray-items", "the override", |t| t.contains("gray-value")).await;
    b.type_into("#gray-rule-app", "shop").await;
    b.type_into("#gray-rule-ips", "10.0.0.7").await;
    b.click("#gray-rule-add").await;
    b.wait_text("#gray-rules", "the rule", |t| t.contains("10.0.0.7")).await;
    b.click("#gray-release").await;
    b.confirm().await;
    let served_to = |query: &'static str| {
        let addr = host.host.http_addr.to_string();
        async move {
            let path = format!("/api/module/config/configs/shop/default/application{query}");
            let (_, _, body) = raw(&addr, "GET", &path, &[], "").await;
            let got: Value = serde_json::from_str(&body).unwrap_or_default();
            got["configurations"]["greeting"].as_str().unwrap_or_default().to_string()
        }
    };
    common::eventually("the gray release served to 10.0.0.7", Duration::from_secs(10), || async {
        (served_to("?ip=10.0.0.7").await == "gray-value").then_some(())
    })
    .await;
    assert_eq!(served_to("?ip=10.0.0.8").await, "hello-from-the-ui", "other clients keep master");
    b.wait_text("#history-table", "the gray release in the history", |t| t.contains("gray")).await;
    b.shoot(&shots, "config-gray").await;
    b.click("#gray-merge").await;
    b.confirm().await;
    b.wait_text("#gray", "the branch merged away", |t| t.contains("No gray branch")).await;
    common::eventually("the merge released to everyone", Duration::from_secs(10), || async {
        (served_to("").await == "gray-value").then_some(())
    })
    .await;
    if let Some(client) = client.as_mut() {
        let change = client.wait_for("the merge pushed to the client", |e| is(e, "change")).await;
        assert_eq!(change["newValue"], "gray-value", "{change}");
        client.mark();
    }
    b.click("#gray-create").await;
    b.wait_text("#gray-branch", "a second branch", |t| !t.is_empty()).await;
    b.click("#gray-abandon").await;
    b.confirm().await;
    b.wait_text("#gray", "the branch abandoned", |t| t.contains("No gray branch")).await;
    drop(client);

    // Access keys of the app: created (the secret shown once), masked in the list,
    // disabled, deleted.
    b.go(&base, "#/config/shop").await;
    b.click("#accesskey-create").await;
    let secret = b.wait_text("#accesskey-secret", "the new secret, once", |t| t.len() > 8).await;
    let row = b.wait_text("#accesskeys tr[data-accesskey]", "the key listed", |t| t.contains("enabled")).await;
    assert!(!row.contains(&secret), "the list masks the secret: {row}");
    b.click("#accesskey-dismiss").await;
    b.client.execute("document.getElementById('accesskeys-title').scrollIntoView()", vec![]).await.unwrap();
    b.shoot(&shots, "config-accesskeys").await;
    let page = b.text("#main").await;
    assert!(!page.contains(&secret), "the secret is not shown again");
    b.click("#accesskeys button[data-action='toggle']").await;
    b.wait_text("#accesskeys td.state", "the key disabled", |t| t == "disabled").await;
    b.click("#accesskeys button[data-action='delete']").await;
    b.confirm().await;
    b.wait_text("#main", "no access keys", |t| t.contains("No access keys")).await;

    // Open API consumers: one created with rights on shop (its token shown once, and it
    // works), its rights narrowed, then deleted (the token refused).
    b.go(&base, "#/config").await;
    b.click("#consumers-link").await;
    b.type_into("#consumer-name", "ci-bot").await;
    b.type_into("#consumer-app", "shop").await;
    b.click("#consumer-release").await;
    b.click("#consumer-create").await;
    let consumer_token = b.wait_text("#consumer-token", "the new token, once", |t| t.len() > 8).await;
    let envclusters = "/api/module/config/openapi/v1/apps/shop/envclusters";
    let addr = host.host.http_addr.to_string();
    let (status, _, body) = raw(&addr, "GET", envclusters, &[("Authorization", &consumer_token)], "").await;
    assert_eq!(status, 200, "the consumer's token reads shop: {body}");
    let row =
        b.wait_text("#consumers tr[data-consumer='ci-bot']", "the consumer listed", |t| t.contains("release")).await;
    assert!(!row.contains(&consumer_token), "the list masks the token: {row}");
    b.click("#consumer-dismiss").await;
    assert!(!b.text("#main").await.contains(&consumer_token), "the token is not shown again");
    b.shoot(&shots, "config-consumers").await;
    b.click("#consumers tr[data-consumer='ci-bot'] button[data-action='scope']").await;
    b.wait_text("#dialog-title", "the rights dialog", |t| t.contains("Rights of ci-bot")).await;
    b.type_into("#dialog-field-0", "shop").await;
    b.click("#dialog-ok").await;
    b.wait_text("#consumers td.apps", "release taken away", |t| t.contains("edit") && !t.contains("release")).await;
    b.click("#consumers tr[data-consumer='ci-bot'] button[data-action='delete']").await;
    b.confirm().await;
    b.wait_text("#main", "no consumers", |t| t.contains("No consumers")).await;
    let (status, _, _) = raw(&addr, "GET", envclusters, &[("Authorization", &consumer_token)], "").await;
    assert_eq!(status, 401, "a deleted consumer's token is refused");

    // A JSON namespace refuses content that does not parse, and the page says where.
    b.go(&base, "#/config/shop").await;
    b.click("a[href*='settings']").await;
    b.wait_text("#item-form-title", "the file form", |t| t.contains("file")).await;
    b.type_into("#item-value", "{\"a\": ").await;
    b.click("#item-save").await;
    let error = b.wait_text("#item-error", "the format error", |t| !t.is_empty()).await;
    assert!(error.to_lowercase().contains("line"), "{error}");
    b.shoot(&shots, "config-format-error").await;

    // Nothing the page did was blocked by its own content security policy.
    let violations =
        b.client.execute("return document.documentElement.dataset.cspViolations || '0'", vec![]).await.unwrap();
    assert_eq!(violations, json!("0"), "CSP violations on the dashboard");

    // The session ends (its token revoked elsewhere): the next call lands on login.
    let (status, _, _) = raw(
        &host.host.http_addr.to_string(),
        "POST",
        "/api/auth/logout",
        &[("Authorization", &format!("Bearer {token}"))],
        "",
    )
    .await;
    assert_eq!(status, 204);
    b.go(&base, "#/alarms").await;
    b.wait_text("#login-error", "the login form again", |t| t.contains("session has ended")).await;
    // In again, then out through the button: the cookie is gone and its token revoked.
    // This time by keyboard: the password and Enter.
    b.type_into("#login-password", &format!("{ADMIN_PASSWORD}\u{E007}")).await;
    b.wait_text("#whoami", "signed in again", |t| t == "admin").await;
    let token = b
        .client
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name() == "apollo_session")
        .unwrap()
        .value()
        .to_string();
    b.click("#logout").await;
    b.wait_text("#login-error", "signed out", |t| t.contains("Signed out")).await;
    let (status, _, _) = raw(
        &host.host.http_addr.to_string(),
        "GET",
        "/api/auth/whoami",
        &[("Authorization", &format!("Bearer {token}"))],
        "",
    )
    .await;
    assert_eq!(status, 401, "logout revoked the token");
    assert!(
        b.client.get_all_cookies().await.unwrap().iter().all(|c| c.name() != "apollo_session" || c.value().is_empty())
    );

    b.close().await;
    host.shutdown().await;
    eprintln!("dashboard screenshots (1280 px and 390 px): {}", shots.display());
}

/// Signs in through the form (the cookie session), waiting for the live connection.
async fn sign_in(b: &Browser, base: &str) {
    b.go(base, "").await;
    b.wait_text("#login-title", "the login form", |t| t == "Apollo").await;
    b.type_into("#login-password", ADMIN_PASSWORD).await;
    b.click("#login-submit").await;
    b.wait_text("#whoami", "the signed-in user", |t| t == "admin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_catalog_backups_and_files_pages_in_chromium() {
    surfaced("gateway_catalog_backups_and_files_pages_in_chromium", gateway_catalog_backups_and_files_steps()).await;
}

async fn gateway_catalog_backups_and_files_steps() {
    if !browser_present() {
        return;
    }
    use crate::module_gateway::{base_gateway, deployment, gateway_addr, start_service, supervised_demo};
    let catalog = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let d = deployment(base_gateway(), Some(catalog));
    supervised_demo(&d, "web-a");
    std::fs::create_dir_all(d.root().join("app/docs")).unwrap();
    std::fs::write(d.root().join("app/docs/notes.txt"), "first line\nsecond line\n").unwrap();
    let host = d.start().await;
    let api = host.uds();
    let (port, _) = start_service(&api, "web-a").await;
    let routes = json!([{"name": "web", "path_prefix": "/", "upstreams": [{"address": format!("127.0.0.1:{port}")}]}]);
    let _ = api.send(Method::PUT, "/api/module/gateway/routes", Some(&routes)).await.unwrap();
    let gw = gateway_addr(&api).await.to_string();
    let (status, _, body) = raw(&gw, "GET", "/", &[], "").await;
    assert_eq!(status, 200, "through the gateway: {body}");
    // A catalog instance with a TTL check, passed (as a client's heartbeat would).
    let registration = json!({"Name": "orders", "ID": "orders-1", "Address": "127.0.0.1", "Port": port,
        "Tags": ["v1"], "Check": {"Name": "orders alive", "TTL": "60s"}});
    let consul = "/api/module/catalog/v1/agent";
    let _ = api.send(Method::PUT, &format!("{consul}/service/register"), Some(&registration)).await.unwrap();
    let _ = api.send(Method::PUT, &format!("{consul}/check/pass/service:orders-1?note=ok"), None).await.unwrap();

    let base = format!("http://{}", host.host.http_addr);
    let shots = screenshot_dir();
    let b = Browser::start().await;
    sign_in(&b, &base).await;

    // Gateway: the route, its upstream instance, then traffic while a client keeps asking.
    b.wait_text("#nav-gateway", "the gateway in the navigation", |t| t == "Gateway").await;
    b.go(&base, "#/gateway").await;
    b.wait_text("tr[data-route='web']", "the route", |t| t.contains(&format!("127.0.0.1:{port}"))).await;
    b.wait_text("table.upstream tr[data-instance]", "the upstream instance", |t| {
        t.contains(&format!("127.0.0.1:{port}")) && t.contains("healthy")
    })
    .await;
    b.wait_text("#gateway-listeners", "the listener", |t| t.contains(&gw)).await;
    let load = {
        let gw = gw.clone();
        tokio::spawn(async move {
            loop {
                let _ = raw(&gw, "GET", "/", &[], "").await;
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        })
    };
    let rate = b
        .wait_text("tr[data-route='web'] td.rps", "requests per second above zero", |t| {
            t.parse::<f64>().is_ok_and(|r| r > 0.0)
        })
        .await;
    let errors = b.text("tr[data-route='web'] td.errors").await;
    let median = b.text("tr[data-route='web'] td.latency").await;
    eprintln!("gateway page: {rate} requests/s, {errors} 5xx, median {median}");
    assert_eq!(errors, "0.0 %", "demo-http answers 200");
    assert!(median.starts_with('≤'), "a median from the histogram: {median}");
    b.shoot(&shots, "gateway").await;
    load.abort();
    let _ = load.await;

    // A route added from the form: a prefix the module refuses (its reason shown inline),
    // then corrected; edited (retries); removed (confirmed).
    let route = |name: &'static str| {
        let api = &api;
        async move {
            let routes: Value = api.get("/api/module/gateway/routes").await.ok()?;
            routes["routes"].as_array()?.iter().find(|r| r["name"] == name).cloned()
        }
    };
    b.click("#route-editor summary").await;
    b.type_into("#route-name", "api").await;
    b.type_into("#route-prefix", "api").await;
    b.type_into("#route-upstreams", &format!("127.0.0.1:{port}")).await;
    b.click("#route-save").await;
    let refusal = b.wait_text("#route-error", "the module's refusal", |t| !t.is_empty()).await;
    assert!(refusal.contains("must start with `/`"), "{refusal}");
    assert!(route("api").await.is_none(), "a refused route is not added");
    b.shoot(&shots, "gateway-route-refused").await;
    b.type_into("#route-prefix", "/api").await;
    b.click("#route-save").await;
    b.wait_text("tr[data-route='api']", "the added route", |t| t.contains("/api")).await;
    assert_eq!(route("api").await.expect("the route")["path_prefix"], "/api");
    b.click("[data-key='edit-route-api']").await;
    b.wait_text("#route-form-title", "the edit form", |t| t == "Edit route api").await;
    b.type_into("#route-retries", "3").await;
    b.click("#route-save").await;
    common::eventually("the edited route stored", Duration::from_secs(10), || async {
        (route("api").await?["retries"] == 3).then_some(())
    })
    .await;
    assert!(route("web").await.is_some(), "editing one route keeps the others");
    b.click("[data-key='remove-route-api']").await;
    b.confirm().await;
    common::eventually("the route removed", Duration::from_secs(10), || async {
        route("api").await.is_none().then_some(())
    })
    .await;

    // Catalog: the registered instance and its passing check.
    b.go(&base, "#/catalog").await;
    b.wait_text("tr[data-instance='orders-1'] td.status", "the instance passing", |t| t == "passing").await;
    let row = b.text("tr[data-instance='orders-1']").await;
    assert!(row.contains("orders alive: passing") && row.contains(&format!("127.0.0.1:{port}")), "{row}");
    b.shoot(&shots, "catalog").await;
    // Maintenance with a reason, and out of it; then deregistered (confirmed).
    b.click("[data-key='maint-orders-1']").await;
    b.wait_text("#dialog-title", "the maintenance dialog", |t| t.contains("Maintenance for orders-1")).await;
    b.type_into("#dialog-field-0", "deploying v2").await;
    b.click("#dialog-ok").await;
    b.wait_text("tr[data-instance='orders-1'] td.status", "the instance in maintenance", |t| t == "critical").await;
    let row = b.text("tr[data-instance='orders-1']").await;
    assert!(row.contains("deploying v2"), "the reason shown: {row}");
    b.shoot(&shots, "catalog-maintenance").await;
    b.click("[data-key='maint-orders-1']").await;
    b.wait_text("tr[data-instance='orders-1'] td.status", "out of maintenance", |t| t == "passing").await;
    b.click("[data-key='deregister-orders-1']").await;
    b.confirm().await;
    b.wait_text("#main", "the instance gone", |t| !t.contains("orders-1")).await;
    let agent = api.send(Method::GET, "/api/module/catalog/v1/agent/services", None).await.unwrap();
    assert!(!String::from_utf8_lossy(&agent.body).contains("orders-1"), "deregistered in the module");

    // KV: write two keys, list by prefix, view, delete (confirmed).
    b.go(&base, "#/kv").await;
    b.wait_text("#main", "the empty store", |t| t.contains("The store is empty")).await;
    for (key, value) in [("app/settings/color", "blue"), ("other/flag", "on")] {
        b.type_into("#kv-key", key).await;
        b.type_into("#kv-value", value).await;
        b.click("#kv-save").await;
        b.wait_text("#kv-content", "the written value", |t| t == value).await;
    }
    let stored = api.send(Method::GET, "/api/module/catalog/v1/kv/app/settings/color?raw", None).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&stored.body), "blue", "stored as sent, not as JSON");
    b.type_into("#kv-prefix", "app/").await;
    b.click("#kv-list").await;
    b.wait_text("#kv-table", "the keys under app/", |t| t.contains("app/settings/color") && !t.contains("other/flag"))
        .await;
    b.click("tr[data-kv='app/settings/color'] button[data-action='view']").await;
    b.wait_text("#kv-content", "the value viewed", |t| t == "blue").await;
    b.shoot(&shots, "kv").await;
    b.click("tr[data-kv='app/settings/color'] button[data-action='delete']").await;
    b.confirm().await;
    b.wait_text("#main", "no key left under app/", |t| t.contains("No key starts with")).await;
    let gone = api.send(Method::GET, "/api/module/catalog/v1/kv/app/settings/color", None).await.unwrap();
    assert_eq!(gone.status.as_u16(), 404);

    // Backups: none, then one made from the page.
    b.go(&base, "#/backups").await;
    b.wait_text("#main", "no backup yet", |t| t.contains("No backup yet")).await;
    b.click("#backup-create").await;
    let listed = b.wait_text("#backups-table", "the new backup", |t| t.contains("apollo-")).await;
    let made: Value = api.get("/api/backups").await.unwrap();
    let id = made[0]["id"].as_str().unwrap();
    assert!(listed.contains(id), "{listed}");
    b.shoot(&shots, "backups").await;
    // Restore asks first; cancelled, nothing happens; confirmed, its report is shown.
    b.click(&format!("[data-key='restore-{id}']")).await;
    b.wait_text("#dialog-title", "the restore confirmation", |t| t.contains("Restore")).await;
    b.click("#dialog-cancel").await;
    std::fs::write(d.root().join("app/docs/notes.txt"), "changed after the backup\n").unwrap();
    b.click(&format!("[data-key='restore-{id}']")).await;
    b.confirm().await;
    let report = b.wait_text("#restore-report", "the restore report", |t| t.contains("Started again")).await;
    assert!(report.contains(&format!("Restored {id}")) && report.contains("web-a"), "{report}");
    b.shoot(&shots, "backups-restored").await;

    // Files: browse into a folder, view a file (as the backup had it), upload one.
    b.go(&base, "#/files").await;
    b.click("tr[data-file='docs'] a").await;
    b.click("tr[data-file='notes.txt'] button").await;
    b.wait_text("#file-content", "the file's text", |t| t.contains("second line")).await;
    let local = tempfile::tempdir().unwrap();
    let upload = local.path().join("uploaded.txt");
    std::fs::write(&upload, "sent from the browser\n").unwrap();
    let input = b.client.find(Locator::Css("#upload-input")).await.unwrap();
    input.send_keys(upload.to_str().unwrap()).await.unwrap();
    b.click("#upload-submit").await;
    b.wait_text("tr[data-file='uploaded.txt']", "the uploaded file listed", |t| t.contains("uploaded.txt")).await;
    assert_eq!(std::fs::read_to_string(d.root().join("app/docs/uploaded.txt")).unwrap(), "sent from the browser\n");
    b.shoot(&shots, "files").await;
    // Rename it (the new name asked for in a dialog), then delete it: cancelled once, confirmed.
    b.click("tr[data-file='uploaded.txt'] button[data-action='rename']").await;
    b.wait_text("#dialog-title", "the rename dialog", |t| t.contains("Rename uploaded.txt")).await;
    b.type_into("#dialog-field-0", "renamed.txt").await;
    b.click("#dialog-ok").await;
    b.wait_text("#files-table", "the renamed file listed", |t| {
        t.contains("renamed.txt") && !t.contains("uploaded.txt")
    })
    .await;
    let docs = d.root().join("app/docs");
    assert_eq!(std::fs::read_to_string(docs.join("renamed.txt")).unwrap(), "sent from the browser\n");
    assert!(!docs.join("uploaded.txt").exists());
    b.click("tr[data-file='renamed.txt'] button[data-action='delete']").await;
    b.wait_text("#dialog-title", "the delete confirmation", |t| t.contains("Delete renamed.txt")).await;
    b.shoot(&shots, "files-delete").await;
    b.click("#dialog-cancel").await;
    assert!(docs.join("renamed.txt").exists(), "cancelled: kept");
    b.click("tr[data-file='renamed.txt'] button[data-action='delete']").await;
    b.confirm().await;
    b.wait_text("#files-table", "the deleted file gone", |t| t.contains("notes.txt") && !t.contains("renamed.txt"))
        .await;
    assert!(!docs.join("renamed.txt").exists(), "deleted from app_root");

    let violations =
        b.client.execute("return document.documentElement.dataset.cspViolations || '0'", vec![]).await.unwrap();
    assert_eq!(violations, json!("0"), "CSP violations on the dashboard");
    b.close().await;
    host.shutdown().await;
    eprintln!("dashboard screenshots (1280 px and 390 px): {}", shots.display());
}

#[tokio::test]
async fn an_expired_cookie_session_is_refused() {
    let d = Deployment::with(json!({"auth": {"token_ttl_secs": 1}}));
    let host = d.start().await;
    let addr = host.host.http_addr.to_string();
    let cookie = cookie_login(&addr).await;
    let (status, _, _) = raw(&addr, "GET", "/api/auth/whoami", &[("Cookie", &cookie)], "").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, _, body) = raw(&addr, "GET", "/api/auth/whoami", &[("Cookie", &cookie)], "").await;
    assert_eq!(status, 401, "{body}");
    host.shutdown().await;
}
