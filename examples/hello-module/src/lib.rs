//! hello-module: the template a new module author copies. It shows routes bound to
//! their handlers, typed config, the module's storage and its change feed, a metric on
//! the host's `/metrics`, reading the services and
//! events, a route the module authenticates itself (an HMAC signature over the raw
//! target, and the peer address), a long poll with its own timeout, a route on the
//! module's own listener, a panicking handler (the host answers 500 and keeps
//! serving), and unit tests against `plugin_api::testing::TestHost`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use plugin_api::tokio::sync::watch;
use plugin_api::{
    Event, HandlerResult, Host, Module, ModuleError, Mount, Request, Response, Route, Routes, export_module, metrics,
    signing,
};
use serde::Deserialize;
use serde_json::json;

/// `modules.config.hello`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// What `/greet/{name}` says (default `hello`).
    pub greeting: Option<String>,
    /// The HMAC-SHA256 key of `/signed/...`; without it those requests are refused.
    pub signing_secret: Option<String>,
    /// Peers allowed on `/signed/...` (any when empty).
    pub allowed_peers: Vec<IpAddr>,
}

#[derive(Debug)]
pub struct Hello {
    host: Host,
    greeting: String,
    signing_secret: Option<String>,
    allowed_peers: Vec<IpAddr>,
    /// Bumped by `POST /release`; `GET /park` waits for it to change.
    releases: watch::Sender<u64>,
    /// `hello_greetings_total` on the host's `/metrics`, labelled `module="hello"`.
    greetings: metrics::Counter,
}

/// How far a signed request's timestamp may be from the module's clock.
const SIGNATURE_WINDOW_SECS: i64 = 300;

impl Module for Hello {
    const NAME: &'static str = "hello";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Greets, counts, lists services: a template for module authors";
    type Config = Config;

    fn routes() -> Routes<Self> {
        Routes::new()
            .add(Route::get("/greet/{name}", "Greet someone (counts greetings in the module's storage)"), Self::greet)
            .add(Route::get("/count", "How many greetings so far"), Self::count)
            .add(Route::post("/echo", "Echo a JSON body"), Self::echo)
            .add(Route::get("/services", "The host's services"), Self::services)
            .add(Route::get("/panic", "Panics on purpose: the host answers 500 and keeps serving"), Self::panic)
            .add(Route::get("/ping", "The smallest answer (benchmark twin of GET /api/ping)"), Self::ping)
            .add(
                Route::get("/sleep/{ms}", "Answers after ms milliseconds (meets the host's handler timeout)")
                    .mount(Mount::Both),
                Self::sleep,
            )
            .add(
                Route::get(
                    "/long-poll/{ms}",
                    "Answers after ms milliseconds, up to 90 s: a route with its own timeout",
                )
                .timeout(Duration::from_secs(95)),
                Self::sleep,
            )
            .add(
                Route::get("/park", "Waits until POST /release (up to 10 min)").timeout(Duration::from_secs(600)),
                Self::park,
            )
            .add(Route::post("/release", "Answers every parked request"), Self::release)
            .add(Route::get("/events/next", "The next host event of ?kind= (waits up to 10 s)"), Self::next_event)
            .add(Route::put("/notes/{key}", "Stores a note: the body, as a new version of the key"), Self::put_note)
            .add(
                Route::get("/notes", "Notes changed after ?since=N, waiting up to 30 s for one (the change feed)")
                    .timeout(Duration::from_secs(35)),
                Self::note_changes,
            )
            .add(
                Route::get("/signed/{*rest}", "Public: checks an HMAC-SHA256 signature over the raw target").public(),
                Self::signed,
            )
            .add(
                Route::get("/whoami", "Public, on the admin API and the module's listener: how the request came")
                    .public()
                    .mount(Mount::Both),
                Self::whoami,
            )
    }

    fn init(host: Host, config: Config) -> Result<Self, ModuleError> {
        let greetings = metrics::counter("hello_greetings", "Greetings served", &[])
            .map_err(|e| ModuleError::internal(e.to_string()))?;
        host.info(&format!("hello-module {} ready", Self::VERSION));
        Ok(Self {
            greetings,
            host,
            greeting: config.greeting.unwrap_or_else(|| "hello".into()),
            signing_secret: config.signing_secret,
            allowed_peers: config.allowed_peers,
            releases: watch::Sender::new(0),
        })
    }
}

impl Hello {
    async fn greet(self: Arc<Self>, req: Request) -> HandlerResult {
        let name = req.required_param("name")?;
        let count = self.greetings().await? + 1;
        self.host.storage().put("greetings", &count.to_string()).await?;
        self.greetings.inc();
        // The module's tracing is forwarded into the host's log.
        plugin_api::tracing::info!(count, "greeted {name}");
        Ok(Response::json(&json!({ "message": format!("{}, {name}!", self.greeting), "count": count })))
    }

    async fn count(self: Arc<Self>, _req: Request) -> HandlerResult {
        Ok(Response::json(&json!({ "count": self.greetings().await? })))
    }

    async fn greetings(&self) -> Result<u64, ModuleError> {
        let stored = self.host.storage().get("greetings").await?;
        Ok(stored.and_then(|e| e.value.parse().ok()).unwrap_or(0))
    }

    async fn echo(self: Arc<Self>, req: Request) -> HandlerResult {
        let body: serde_json::Value = req.json()?;
        Ok(Response::json(&json!({ "echo": body })))
    }

    async fn services(self: Arc<Self>, _req: Request) -> HandlerResult {
        Ok(Response::json(&self.host.services()))
    }

    async fn panic(self: Arc<Self>, _req: Request) -> HandlerResult {
        panic!("asked to panic")
    }

    async fn ping(self: Arc<Self>, _req: Request) -> HandlerResult {
        Ok(Response::json(&json!({ "pong": true })))
    }

    async fn sleep(self: Arc<Self>, req: Request) -> HandlerResult {
        let ms: u64 = req.required_param("ms")?.parse().map_err(|_| ModuleError::bad_request("ms is not a number"))?;
        // The module's own runtime drives the timer.
        plugin_api::tokio::time::sleep(Duration::from_millis(ms.min(90_000))).await;
        Ok(Response::json(&json!({ "slept_ms": ms })))
    }

    /// A parked request costs a future and a watch receiver: no thread.
    async fn park(self: Arc<Self>, _req: Request) -> HandlerResult {
        let mut releases = self.releases.subscribe();
        let release = releases.changed().await.map(|()| *releases.borrow());
        Ok(Response::json(&json!({ "released": release.ok() })))
    }

    async fn release(self: Arc<Self>, _req: Request) -> HandlerResult {
        // Counted before the wake-up: a woken request drops its receiver as it answers.
        let waiting = self.releases.receiver_count();
        self.releases.send_modify(|n| *n += 1);
        Ok(Response::json(&json!({ "released": waiting })))
    }

    async fn next_event(self: Arc<Self>, req: Request) -> HandlerResult {
        let kind = req.query_param("kind");
        let wait = async {
            loop {
                let event: Event = self.host.next_event().await;
                if kind.as_deref().is_none_or(|k| event.kind() == k) {
                    return event;
                }
            }
        };
        match plugin_api::tokio::time::timeout(Duration::from_secs(10), wait).await {
            Ok(event) => Ok(Response::json(&event)),
            Err(_) => Err(ModuleError::new(504, "timeout", "no such event within 10 s")),
        }
    }

    /// Every host sharing this store (a fleet on one MongoDB) sees the note in its feed.
    async fn put_note(self: Arc<Self>, req: Request) -> HandlerResult {
        let key = format!("notes/{}", req.required_param("key")?);
        let written = self.host.storage().put(&key, req.text()?).await?;
        Ok(Response::json(&json!({ "key": key, "version": written.version, "revision": written.revision })))
    }

    /// A long poll on the storage's change feed: answers at once when notes changed
    /// after `since`, else when one does (written here or on another host), else after
    /// 30 s with none.
    async fn note_changes(self: Arc<Self>, req: Request) -> HandlerResult {
        let since = match req.query_param("since") {
            Some(v) => v.parse().map_err(|_| ModuleError::bad_request("since is not a revision number"))?,
            None => 0,
        };
        let changes = self.host.storage().changes(Some("notes/"), since, Duration::from_secs(30)).await?;
        Ok(Response::json(&changes))
    }

    /// `X-Timestamp: <unix seconds>` and `X-Signature: base64(HMAC-SHA256(secret,
    /// "<timestamp>\n<raw target>"))`: the raw target is what the client sent, so an
    /// encoded `%2F` or the order of query parameters are part of what is signed.
    async fn signed(self: Arc<Self>, req: Request) -> HandlerResult {
        let Some(secret) = &self.signing_secret else {
            return Err(ModuleError::forbidden("signed requests are off: set modules.config.hello.signing_secret"));
        };
        let peer = req.peer_addr.ok_or_else(|| ModuleError::forbidden("signed requests come over TCP"))?;
        if !self.allowed_peers.is_empty() && !self.allowed_peers.contains(&peer.ip()) {
            return Err(ModuleError::forbidden(format!("{} is not in modules.config.hello.allowed_peers", peer.ip())));
        }
        let timestamp = req.header("x-timestamp").ok_or_else(|| ModuleError::unauthorized("no X-Timestamp header"))?;
        let at: i64 = timestamp.parse().map_err(|_| ModuleError::unauthorized("X-Timestamp is not unix seconds"))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        if (now - at).abs() > SIGNATURE_WINDOW_SECS {
            return Err(ModuleError::unauthorized("X-Timestamp is more than 5 minutes off"));
        }
        let signature = req.header("x-signature").ok_or_else(|| ModuleError::unauthorized("no X-Signature header"))?;
        let signed = format!("{timestamp}\n{}", req.raw_target);
        if !signing::verify_hmac_sha256_base64(secret.as_bytes(), signed.as_bytes(), signature) {
            return Err(ModuleError::unauthorized("the signature does not match"));
        }
        Ok(Response::json(&json!({ "verified": true, "raw_target": req.raw_target, "peer": peer.to_string() })))
    }

    async fn whoami(self: Arc<Self>, req: Request) -> HandlerResult {
        Ok(Response::json(&json!({
            "via": format!("{:?}", req.via),
            "path": req.path,
            "raw_target": req.raw_target,
            "peer": req.peer_addr.map(|p| p.to_string()),
            "user": req.user,
        })))
    }
}

export_module!(Hello);

#[cfg(test)]
mod tests {
    use plugin_api::testing::{self, TestHost, TestRequest};
    use plugin_api::{Level, ServiceInfo};

    use super::*;

    fn body(response: &Response) -> serde_json::Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn greetings_are_counted_in_storage() {
        testing::run(async {
            let host = TestHost::new();
            let hello = host.start::<Hello>(json!({"greeting": "ahoy"})).unwrap();
            let first = hello.call(TestRequest::get("/greet/ada")).await;
            assert_eq!(body(&first), json!({"message": "ahoy, ada!", "count": 1}));
            hello.call(TestRequest::get("/greet/grace")).await;
            assert_eq!(body(&hello.call(TestRequest::get("/count")).await), json!({"count": 2}));
            assert!(host.logs().iter().any(|(level, line)| *level == Level::Info && line.contains("ready")));
        })
    }

    #[test]
    fn unknown_config_keys_are_warned_and_bad_bodies_are_400() {
        testing::run(async {
            let host = TestHost::new();
            let hello = host.start::<Hello>(json!({"greting": "typo"})).unwrap();
            assert!(host.logs().iter().any(|(level, line)| *level == Level::Warn && line.contains("\"greting\"")));
            let bad = hello.call(TestRequest::post("/echo").body("{not json")).await;
            assert_eq!(bad.status, 400);
            assert_eq!(body(&bad)["error"]["code"], "bad_request");
            assert_eq!(hello.call(TestRequest::get("/nope")).await.status, 404);
            assert_eq!(hello.call(TestRequest::delete("/count")).await.status, 405);
        })
    }

    #[test]
    fn notes_reach_the_change_feed() {
        testing::run(async {
            let host = TestHost::new();
            let hello = host.start::<Hello>(serde_json::Value::Null).unwrap();
            let put = hello.call(TestRequest::put("/notes/a").body("first")).await;
            assert_eq!(body(&put)["version"], 1);
            let changes = body(&hello.call(TestRequest::get("/notes?since=0")).await);
            assert_eq!(changes["changes"][0]["key"], "notes/a");
            assert_eq!(changes["changes"][0]["value"], "first");
            assert_eq!(hello.call(TestRequest::get("/notes?since=x")).await.status, 400);
        })
    }

    #[test]
    fn services_are_the_hosts() {
        testing::run(async {
            let host = TestHost::new();
            host.set_services(vec![ServiceInfo { name: "web".into(), state: "running".into(), ..Default::default() }]);
            let hello = host.start::<Hello>(serde_json::Value::Null).unwrap();
            let services = body(&hello.call(TestRequest::get("/services")).await);
            assert_eq!(services[0]["name"], "web");
        })
    }

    #[test]
    fn a_signature_over_the_raw_target_is_checked() {
        testing::run(async {
            let host = TestHost::new();
            let hello = host.start::<Hello>(json!({"signing_secret": "s3cret"})).unwrap();
            let target = "/signed/a%2Fb?x=1&y=2";
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
            let sign = |message: &str| signing::base64_encode(&signing::hmac_sha256(b"s3cret", message.as_bytes()));
            let good = TestRequest::get(target)
                .header("x-timestamp", &now)
                .header("x-signature", &sign(&format!("{now}\n{target}")));
            assert_eq!(hello.call(good).await.status, 200);
            let decoded = TestRequest::get(target)
                .header("x-timestamp", &now)
                .header("x-signature", &sign(&format!("{now}\n/signed/a/b?x=1&y=2")));
            assert_eq!(hello.call(decoded).await.status, 401);
        })
    }
}
