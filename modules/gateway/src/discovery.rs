//! Instances from the catalog, live: for each service a route (or, with Seneca on,
//! the catalog itself) names, a Consul blocking query on
//! `/v1/health/service/<name>?passing` parks until the set changes and the answer
//! replaces the upstream's members — a watch, never a periodic re-read. It speaks the
//! Consul agent API, so module-catalog's listener or a real Consul agent both serve.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use plugin_api::Host;
use serde::Deserialize;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::registry::Registry;
use crate::upstream::Member;

/// How long one blocking query parks (Consul caps `wait` at 10 min).
const WAIT: &str = "5m";
/// A query that has not answered by then is abandoned and asked again.
const QUERY_DEADLINE: Duration = Duration::from_secs(5 * 60 + 30);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// An unreachable catalog is said once per this.
const COMPLAIN_EVERY: Duration = Duration::from_secs(60);

/// The Seneca pins each catalog service's passing instances declare.
pub type Pins = BTreeMap<String, Vec<String>>;

#[derive(Debug)]
pub struct Discovery {
    agent: SocketAddr,
    token: Option<String>,
    registry: Arc<Registry>,
    host: Host,
    /// Instance meta key holding Seneca pins; None: Seneca is off.
    pin_key: Option<String>,
    pins: watch::Sender<Pins>,
    /// Every service the catalog lists (followed only when Seneca is on).
    listed: watch::Sender<BTreeSet<String>>,
}

impl Discovery {
    pub fn new(
        agent: SocketAddr,
        token: Option<String>,
        registry: Arc<Registry>,
        host: Host,
        pin_key: Option<String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            agent,
            token,
            registry,
            host,
            pin_key,
            pins: watch::Sender::new(Pins::new()),
            listed: watch::Sender::new(BTreeSet::new()),
        })
    }

    /// Follows the pins services declare, for the Seneca directory.
    pub fn pins(&self) -> watch::Receiver<Pins> {
        self.pins.subscribe()
    }

    /// Runs until the runtime stops: one watch per wanted service.
    pub async fn run(self: Arc<Self>) {
        if self.pin_key.is_some() {
            tokio::spawn(Arc::clone(&self).follow_service_list());
        }
        let mut wanted = self.registry.wanted();
        let mut listed = self.listed.subscribe();
        let mut watches: HashMap<String, JoinHandle<()>> = HashMap::new();
        loop {
            let mut names: BTreeSet<String> = wanted.borrow_and_update().clone();
            names.extend(listed.borrow_and_update().iter().cloned());
            watches.retain(|name, task| {
                let keep = names.contains(name);
                if !keep {
                    task.abort();
                    self.pins.send_if_modified(|pins| pins.remove(name).is_some());
                }
                keep
            });
            for name in names {
                if let std::collections::hash_map::Entry::Vacant(slot) = watches.entry(name) {
                    let task = tokio::spawn(Arc::clone(&self).follow_service(slot.key().clone()));
                    slot.insert(task);
                }
            }
            tokio::select! {
                changed = wanted.changed() => if changed.is_err() { return },
                changed = listed.changed() => if changed.is_err() { return },
            }
        }
    }

    async fn follow_service_list(self: Arc<Self>) {
        let mut agent = Agent::new(self.agent, self.token.clone());
        let mut index = 0;
        loop {
            let path = format!("/v1/catalog/services?index={index}&wait={WAIT}");
            match agent.get(&path).await {
                Ok((next, body)) => {
                    index = if next < index { 0 } else { next };
                    match serde_json::from_slice::<BTreeMap<String, Value>>(&body) {
                        Ok(services) => {
                            let names: BTreeSet<String> = services.into_keys().collect();
                            self.listed.send_if_modified(|listed| std::mem::replace(listed, names.clone()) != names);
                        }
                        Err(e) => agent.failed(&self.host, &format!("the service list is not JSON: {e}")).await,
                    }
                }
                Err(e) => {
                    index = 0;
                    agent.failed(&self.host, &e).await;
                }
            }
        }
    }

    async fn follow_service(self: Arc<Self>, name: String) {
        let upstream = self.registry.service(&name);
        let mut agent = Agent::new(self.agent, self.token.clone());
        let mut index = 0;
        let path_name = escape(&name);
        loop {
            let path = format!("/v1/health/service/{path_name}?passing=1&index={index}&wait={WAIT}");
            let answer = match agent.get(&path).await {
                Ok(answer) => answer,
                Err(e) => {
                    index = 0;
                    agent.failed(&self.host, &e).await;
                    continue;
                }
            };
            let (next, body) = answer;
            // Consul: an index going backwards means start over.
            index = if next < index { 0 } else { next };
            let entries = match serde_json::from_slice::<Vec<HealthEntry>>(&body) {
                Ok(entries) => entries,
                Err(e) => {
                    agent.failed(&self.host, &format!("/v1/health/service/{name} is not Consul's shape: {e}")).await;
                    continue;
                }
            };
            let mut members = Vec::with_capacity(entries.len());
            let mut pins = Vec::new();
            for entry in entries {
                let address = if entry.service.address.is_empty() { entry.node.address } else { entry.service.address };
                let Some(addr) = resolve(&address, entry.service.port).await else {
                    self.host.warn(&format!(
                        "gateway: instance {} of {name} has an address that does not resolve: {address}",
                        entry.service.id
                    ));
                    continue;
                };
                if let Some(key) = &self.pin_key
                    && let Some(pin) = entry.service.meta.get(key)
                {
                    pins.push(pin.clone());
                }
                let weight = entry.service.weights.map_or(1, |w| w.passing.max(1));
                members.push(Member { addr, id: entry.service.id, weight });
            }
            members.sort_by(|a, b| a.id.cmp(&b.id));
            if upstream.members() != members {
                upstream.set_members(&members);
            }
            pins.sort();
            pins.dedup();
            self.pins.send_if_modified(|all| {
                let changed = all.get(&name) != Some(&pins);
                if pins.is_empty() {
                    all.remove(&name);
                } else {
                    all.insert(name.clone(), pins.clone());
                }
                changed
            });
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthEntry {
    node: NodeEntry,
    service: ServiceEntry,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeEntry {
    #[serde(default)]
    address: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceEntry {
    #[serde(rename = "ID")]
    id: String,
    #[serde(default)]
    address: String,
    port: u16,
    #[serde(default)]
    meta: BTreeMap<String, String>,
    #[serde(default)]
    weights: Option<Weights>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Weights {
    passing: u32,
}

/// An IP as is; a name through the resolver (here, off the request path).
async fn resolve(address: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = address.parse::<std::net::IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((address, port)).await.ok()?.next()
}

/// Everything but RFC 3986 unreserved characters is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A service name as one path segment.
fn escape(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// One kept connection to the agent, with the back-off of a watch that failed.
struct Agent {
    addr: SocketAddr,
    token: Option<String>,
    sender: Option<SendRequest<Empty<Bytes>>>,
    backoff: Duration,
    complained: Option<Instant>,
}

impl Agent {
    fn new(addr: SocketAddr, token: Option<String>) -> Self {
        Self { addr, token, sender: None, backoff: Duration::from_millis(250), complained: None }
    }

    /// `GET path` → (`X-Consul-Index`, body).
    async fn get(&mut self, path: &str) -> Result<(u64, Bytes), String> {
        let answer = tokio::time::timeout(QUERY_DEADLINE, self.try_get(path))
            .await
            .unwrap_or_else(|_| Err(format!("{path}: no answer in {QUERY_DEADLINE:?}")));
        if answer.is_err() {
            self.sender = None;
        } else {
            self.backoff = Duration::from_millis(250);
            self.complained = None;
        }
        answer
    }

    async fn try_get(&mut self, path: &str) -> Result<(u64, Bytes), String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("the catalog at {} cannot be reached: {e}", self.addr))?;
            let (sender, connection) =
                http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("catalog handshake: {e}"))?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("connected above");
        sender.ready().await.map_err(|e| format!("catalog connection: {e}"))?;
        let mut request = Request::get(path).header(http::header::HOST, self.addr.to_string());
        if let Some(token) = &self.token {
            request = request.header("x-consul-token", token);
        }
        let request = request.body(Empty::new()).map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| format!("catalog {path}: {e}"))?;
        let status = response.status();
        let index = response
            .headers()
            .get("x-consul-index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let body = response.into_body().collect().await.map_err(|e| format!("catalog {path}: {e}"))?.to_bytes();
        if status != StatusCode::OK {
            let text = String::from_utf8_lossy(&body);
            return Err(format!("catalog {path}: {status} {}", text.trim()));
        }
        Ok((index, body))
    }

    /// Waits out the back-off, saying the problem once a minute.
    async fn failed(&mut self, host: &Host, problem: &str) {
        if self.complained.is_none_or(|at| at.elapsed() > COMPLAIN_EVERY) {
            host.warn(&format!("gateway: {problem} (retrying)"));
            self.complained = Some(Instant::now());
        }
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_name_becomes_one_path_segment() {
        assert_eq!(escape("web-api.v1"), "web-api.v1");
        assert_eq!(escape("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn consul_health_entries_parse() {
        let body = r#"[{"Node":{"Node":"n1","Address":"127.0.0.1"},
            "Service":{"ID":"web-1","Service":"web","Address":"","Port":8080,"Meta":{"seneca_pin":"role:math"},
            "Weights":{"Passing":3,"Warning":1},"Tags":[]},"Checks":[]}]"#;
        let entries: Vec<HealthEntry> = serde_json::from_str(body).unwrap();
        assert_eq!(entries[0].service.port, 8080);
        assert_eq!(entries[0].node.address, "127.0.0.1");
        assert_eq!(entries[0].service.weights.as_ref().unwrap().passing, 3);
        assert_eq!(entries[0].service.meta["seneca_pin"], "role:math");
    }
}
