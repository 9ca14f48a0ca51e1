//! The config service clients call (protocol §1, §3): `/configs`, `/configfiles`,
//! `/notifications/v2` (and v1), and the meta server's `/services/...`.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use plugin_api::{HandlerResult, ModuleError, Request, Response, Via};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::ConfigCenter;
use crate::access_keys;
use crate::names::{self, Format, strip_properties_suffix};
use crate::properties;
use crate::replica::now_ms;
use crate::resolve::{self, ClientQuery, Resolved};
use crate::watchers::Watch;
use crate::wire;

/// The legacy `/notifications` holds at most this long (Ctrip's v1 did 30 s).
const V1_HOLD: Duration = Duration::from_secs(30);

/// A query parameter clients may send empty or as the JavaScript `undefined`.
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty() && v != "undefined" && v != "null")
}

/// The client's IP for gray rules: `ip`, else the first `X-Forwarded-For` hop, else the peer.
fn client_ip(req: &Request) -> Option<String> {
    present(req.query_param("ip"))
        .or_else(|| {
            req.header("x-forwarded-for")
                .and_then(|v| v.split(',').next())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        })
        .or_else(|| req.peer_addr.map(|p| canonical_ip(p.ip()).to_string()))
}

/// `::ffff:10.0.0.1` → `10.0.0.1`, as rules list IPv4 addresses.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApolloConfig<'a> {
    app_id: &'a str,
    cluster: &'a str,
    namespace_name: &'a str,
    configurations: &'a BTreeMap<String, String>,
    release_key: &'a str,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PollEntry {
    #[serde(default)]
    namespace_name: Option<String>,
    #[serde(default = "unknown_id")]
    notification_id: i64,
}

fn unknown_id() -> i64 {
    -1
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    namespace_name: String,
    notification_id: i64,
    messages: Messages,
}

#[derive(Debug, Serialize)]
struct Messages {
    details: BTreeMap<String, i64>,
}

/// A held v2 poll's namespaces as the client spelled them, by the tag its watch keys
/// were registered with; inline for the usual poll of one namespace.
type Givens = SmallVec<[String; 1]>;

/// One namespace a poll watches.
struct Watched {
    /// The client's spelling minus `.properties`: what responses name.
    given: String,
    client_id: i64,
    /// Lowercase watch keys.
    keys: Vec<String>,
}

impl ConfigCenter {
    /// The target below the mount point, as received: what a client signs when it signs
    /// relative to its base URL (the module's own listener has no mount prefix).
    fn mount_relative<'a>(&self, req: &'a Request) -> &'a str {
        req.raw_target.strip_prefix(&self.mount_prefix).filter(|rest| rest.starts_with('/')).unwrap_or(&req.raw_target)
    }

    /// Access keys of `app` (protocol §3); `Err` is the response to send.
    fn authenticate_client(&self, req: &Request, app: &str) -> Result<(), Response> {
        let path = req.raw_target.split('?').next().unwrap_or_default();
        if !names::is_valid_name(app) {
            return Err(wire::spring_error(400, "InvalidAppId", path));
        }
        // The host's operators (its token, its unix socket) read without signing.
        if req.user.is_some() {
            return Ok(());
        }
        let state = self.replica.read();
        let full = req.raw_target.as_str();
        let relative = self.mount_relative(req);
        let verdict = access_keys::check(
            state.access_keys_of(app),
            req,
            &[full, relative],
            now_ms(),
            self.settings.access_key_tolerance_ms,
        );
        if verdict.observed_mismatch {
            self.host.warn(&format!("config: access key (observer) mismatch for app {app} on {path}"));
        }
        match verdict.refusal {
            None => Ok(()),
            Some(refusal) => {
                self.metrics.access_key_failures.with(&[refusal.message()]).inc();
                Err(wire::spring_error(401, refusal.message(), path))
            }
        }
    }

    fn resolve_request(&self, req: &Request) -> Result<(Option<Resolved>, String, String), Response> {
        let app = req.required_param("appId").map_err(|e| e.to_response())?;
        self.authenticate_client(req, app)?;
        let cluster = req.required_param("cluster").map_err(|e| e.to_response())?;
        let given = req.required_param("namespace").map_err(|e| e.to_response())?;
        let state = self.replica.read();
        let namespace = state.normalize_namespace(app, given);
        let ip = client_ip(req);
        let label = present(req.query_param("label"));
        let data_center = present(req.query_param("dataCenter"));
        let query = ClientQuery {
            app,
            cluster,
            namespace: &namespace,
            data_center: data_center.as_deref(),
            ip: ip.as_deref(),
            label: label.as_deref(),
        };
        Ok((resolve::resolve(&state, &query), namespace, given.to_string()))
    }

    pub(crate) async fn configs(self: Arc<Self>, req: Request) -> HandlerResult {
        let response = match self.resolve_request(&req) {
            Err(response) => response,
            Ok((None, namespace, _)) => {
                let app = req.param("appId").unwrap_or_default();
                let cluster = req.param("cluster").unwrap_or_default();
                let message = format!(
                    "Could not load configurations with appId: {app}, clusterName: {cluster}, namespace: {namespace}"
                );
                wire::spring_error(404, &message, req.raw_target.split('?').next().unwrap_or_default())
            }
            Ok((Some(resolved), _, given)) => {
                let client_key = present(req.query_param("releaseKey"));
                if client_key.as_deref() == Some(resolved.release_key.as_str()) {
                    Response::empty(304)
                } else {
                    wire::json(&ApolloConfig {
                        app_id: req.param("appId").unwrap_or_default(),
                        cluster: &resolved.cluster,
                        namespace_name: &given,
                        configurations: &resolved.configurations,
                        release_key: &resolved.release_key,
                    })
                }
            }
        };
        self.metrics.configs_requests.with(&[&response.status.to_string()]).inc();
        Ok(response)
    }

    fn config_file(&self, req: &Request) -> Result<Resolved, Response> {
        match self.resolve_request(req)? {
            (Some(resolved), _, _) => Ok(resolved),
            (None, _, _) => Err(Response::empty(404)),
        }
    }

    /// Properties text of the merged configurations.
    pub(crate) async fn config_file_properties(self: Arc<Self>, req: Request) -> HandlerResult {
        Ok(match self.config_file(&req) {
            Ok(resolved) => wire::text(properties::render(&resolved.configurations), "text/plain;charset=UTF-8"),
            Err(response) => response,
        })
    }

    pub(crate) async fn config_file_json(self: Arc<Self>, req: Request) -> HandlerResult {
        Ok(match self.config_file(&req) {
            Ok(resolved) => wire::json(&resolved.configurations),
            Err(response) => response,
        })
    }

    /// The file itself: a non-properties namespace's content, verbatim.
    pub(crate) async fn config_file_raw(self: Arc<Self>, req: Request) -> HandlerResult {
        Ok(match self.config_file(&req) {
            Ok(resolved) if resolved.format == Format::Properties => {
                wire::text(properties::render(&resolved.configurations), Format::Properties.content_type())
            }
            Ok(resolved) => {
                let content = resolved.configurations.get("content").cloned().unwrap_or_default();
                wire::text(content, resolved.format.content_type())
            }
            Err(response) => response,
        })
    }

    /// `/notifications/v2` (protocol §1.3). The request is read to the end before the
    /// returned future exists: a held poll keeps only what its answer needs (the
    /// namespaces and its watch), not the request nor the locals that read it.
    pub(crate) fn notifications_v2(
        self: Arc<Self>,
        req: Request,
    ) -> impl Future<Output = HandlerResult> + Send + 'static {
        let prepared = self.prepare_v2(&req);
        drop(req);
        async move {
            match prepared {
                Ok((givens, watch)) => self.hold_v2(givens, watch).await,
                Err(answer) => answer,
            }
        }
    }

    /// A poll's namespaces as it spelled them and its registered watch (each key tagged
    /// with its namespace's index), or the answer due at once (a bad request, or a
    /// client that is behind).
    fn prepare_v2(&self, req: &Request) -> Result<(Givens, Watch), HandlerResult> {
        let path = req.raw_target.split('?').next().unwrap_or_default().to_string();
        let bad = |message: &str| Err(Ok(wire::spring_error(400, message, &path)));
        let Some(app) = req.query_param("appId").filter(|a| !a.is_empty()) else {
            return Err(Ok(wire::spring_error(400, "InvalidAppId", &path)));
        };
        if let Err(response) = self.authenticate_client(req, &app) {
            return Err(Ok(response));
        }
        let Some(cluster) = req.query_param("cluster").filter(|c| !c.is_empty()) else {
            return bad("Required request parameter 'cluster' is not present");
        };
        let Some(text) = req.query_param("notifications") else {
            return bad("Required request parameter 'notifications' is not present");
        };
        let Ok(entries) = serde_json::from_str::<Vec<PollEntry>>(&text) else {
            return bad(
                "Invalid format of notifications: expected [{\"namespaceName\":\"application\",\"notificationId\":-1}]",
            );
        };
        let data_center = present(req.query_param("dataCenter"));
        let watched = {
            let state = self.replica.read();
            // Several spellings of one namespace keep the smallest id (the client knows least).
            let mut by_namespace: BTreeMap<String, Watched> = BTreeMap::new();
            for entry in entries {
                let Some(name) = entry.namespace_name.filter(|n| !n.is_empty()) else { continue };
                let given = strip_properties_suffix(&name).to_string();
                let normalized = state.normalize_namespace(&app, &given);
                let keys = resolve::watch_keys(&state, &app, &cluster, data_center.as_deref(), &normalized);
                let slot =
                    by_namespace.entry(normalized).or_insert(Watched { given, client_id: entry.notification_id, keys });
                slot.client_id = slot.client_id.min(entry.notification_id);
            }
            by_namespace.into_values().collect::<Vec<_>>()
        };
        if watched.is_empty() {
            return bad("Invalid format of notifications: no namespace named");
        }
        // Registered before the check: a release between the two still wakes us.
        let keys = watched.iter().enumerate().flat_map(|(tag, w)| w.keys.iter().map(move |key| (tag, key.as_str())));
        let watch = self.replica.watchers.watch(keys);
        let behind: Vec<Notification> = {
            let state = self.replica.read();
            watched
                .iter()
                .filter_map(|w| {
                    let details: BTreeMap<String, i64> = w
                        .keys
                        .iter()
                        .filter_map(|key| state.message_id(key).map(|id| (self.stored_key(&state, key), id)))
                        .collect();
                    let latest = details.values().copied().max()?;
                    (latest > w.client_id).then(|| Notification {
                        namespace_name: w.given.clone(),
                        notification_id: latest,
                        messages: Messages { details },
                    })
                })
                .collect()
        };
        if !behind.is_empty() {
            return Err(Ok(wire::json(&behind)));
        }
        // The held poll keeps only the spellings: the rest was for the check above.
        Ok((watched.into_iter().map(|w| w.given).collect(), watch))
    }

    /// Holds a poll until a release of one of its namespaces, or answers 304.
    async fn hold_v2(&self, givens: Givens, mut watch: Watch) -> HandlerResult {
        let _parked = Parked::new(self);
        let hold = self.settings.long_poll_hold;
        let Ok((tag, published)) = plugin_api::tokio::time::timeout(hold, watch.changed()).await else {
            return Ok(Response::empty(304));
        };
        self.metrics.pushes.inc();
        self.metrics.push_seconds.observe(published.at.elapsed().as_secs_f64());
        let given = givens.get(tag).map_or("", String::as_str);
        // A release wakes thousands of polls at once, nearly all spelling the namespace
        // alike: the first writes the answer, the others send its bytes. The message's
        // spelling came with it, so none of them reads the configuration.
        if let Some((for_given, body)) = published.answer.get()
            && for_given == given
        {
            return Ok(wire::json_bytes(body.clone()));
        }
        let notification = Notification {
            namespace_name: given.to_string(),
            notification_id: published.id,
            messages: Messages { details: BTreeMap::from([(published.spelling.to_string(), published.id)]) },
        };
        let answer = wire::json(&[notification]);
        if answer.status == 200 {
            let _ = published.answer.set((given.to_string(), answer.body.clone()));
        }
        Ok(answer)
    }

    /// A lowercase watch key in the spelling its message was written with.
    fn stored_key(&self, state: &crate::state::State, key: &str) -> String {
        state.message_key_spelling(key).unwrap_or_else(|| key.to_string())
    }

    /// The deprecated `/notifications` (v1): one namespace, an object not a list.
    pub(crate) async fn notifications_v1(self: Arc<Self>, req: Request) -> HandlerResult {
        let path = req.raw_target.split('?').next().unwrap_or_default().to_string();
        let (Some(app), Some(cluster)) = (present(req.query_param("appId")), present(req.query_param("cluster")))
        else {
            return Ok(wire::spring_error(400, "appId and cluster are required", &path));
        };
        if let Err(response) = self.authenticate_client(&req, &app) {
            return Ok(response);
        }
        let given = present(req.query_param("namespace")).unwrap_or_else(|| names::APPLICATION_NAMESPACE.into());
        let given = strip_properties_suffix(&given).to_string();
        let client_id: i64 = present(req.query_param("notificationId")).and_then(|v| v.parse().ok()).unwrap_or(-1);
        let data_center = present(req.query_param("dataCenter"));
        let keys = {
            let state = self.replica.read();
            let normalized = state.normalize_namespace(&app, &given);
            resolve::watch_keys(&state, &app, &cluster, data_center.as_deref(), &normalized)
        };
        let mut watch = self.replica.watchers.watch(keys.iter().map(|key| (0, key.as_str())));
        let latest = {
            let state = self.replica.read();
            keys.iter().filter_map(|k| state.message_id(k)).max()
        };
        let answer = |id: i64| wire::json(&serde_json::json!({"namespaceName": given, "notificationId": id}));
        if let Some(latest) = latest.filter(|latest| *latest != client_id) {
            return Ok(answer(latest));
        }
        let _parked = Parked::new(&self);
        match plugin_api::tokio::time::timeout(V1_HOLD.min(self.settings.long_poll_hold), watch.changed()).await {
            Ok((_, published)) => Ok(answer(published.id)),
            Err(_) => Ok(Response::empty(304)),
        }
    }

    /// The meta server (protocol §1.7): this very service, at the address the client
    /// used, with the mount prefix and a trailing `/`.
    pub(crate) async fn services_config(self: Arc<Self>, req: Request) -> HandlerResult {
        Ok(wire::json(&[self.service_dto(&req, "APOLLO-CONFIGSERVICE")?]))
    }

    pub(crate) async fn services_admin(self: Arc<Self>, req: Request) -> HandlerResult {
        Ok(wire::json(&[self.service_dto(&req, "APOLLO-ADMINSERVICE")?]))
    }

    pub(crate) async fn services_meta(self: Arc<Self>, _req: Request) -> HandlerResult {
        Ok(wire::json(&Vec::<()>::new()))
    }

    fn service_dto(&self, req: &Request, app_name: &str) -> Result<serde_json::Value, ModuleError> {
        // The address the client reached us by is the one to give back (behind a proxy
        // too); HTTP/1.1 always sends it.
        let authority = req.header("host").ok_or_else(|| {
            ModuleError::bad_request("no Host header: cannot tell clients where to find this service")
        })?;
        let prefix = if req.via == Via::Listener { "" } else { self.mount_prefix.as_str() };
        let homepage = format!("http://{authority}{prefix}/");
        Ok(serde_json::json!({
            "appName": app_name,
            "instanceId": format!("{authority}:{}", app_name.to_ascii_lowercase()),
            "homepageUrl": homepage,
        }))
    }
}

/// Counts a held poll for as long as it is held.
struct Parked<'a>(&'a ConfigCenter);

impl<'a> Parked<'a> {
    fn new(center: &'a ConfigCenter) -> Self {
        let now = center.parked.fetch_add(1, Ordering::Relaxed) + 1;
        center.metrics.parked_polls.set(now as f64);
        Self(center)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        let now = self.0.parked.fetch_sub(1, Ordering::Relaxed) - 1;
        self.0.metrics.parked_polls.set(now as f64);
    }
}
