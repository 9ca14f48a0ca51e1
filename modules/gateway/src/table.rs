//! The route table: [`RouteSpec`]s checked and compiled once, then matched per request
//! by host, path prefix, method and headers. A table is immutable; a change builds a new
//! one and swaps it in whole, so a bad edit is refused and the old table keeps serving.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::metrics::RouteSeries;
use crate::settings::{Balance, Fallback, RouteSpec, address_of};
use crate::upstream::Upstream;

/// Gives the upstream a route sends to (shared by routes naming the same service).
pub type Resolve<'a> = &'a dyn Fn(&str, &Target) -> Arc<Upstream>;

/// Where a route's requests go.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Instances of this catalog service.
    Service(String),
    /// Fixed `(address, weight)` pairs.
    Static(Vec<(std::net::SocketAddr, u32)>),
}

impl Target {
    /// The name the upstream set is known by (metrics, admin).
    pub fn upstream_name(&self, route: &str) -> String {
        match self {
            Target::Service(name) => name.clone(),
            Target::Static(_) => format!("static:{route}"),
        }
    }
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    hosts: Vec<HostPattern>,
    prefix: String,
    /// What replaces the prefix when forwarding (None: the path is kept).
    replacement: Option<String>,
    methods: Vec<Method>,
    headers: Vec<(HeaderName, Option<HeaderValue>)>,
    pub upstream: Arc<Upstream>,
    pub balance: Balance,
    pub timeout: Duration,
    pub try_timeout: Duration,
    pub retries: u32,
    pub retry_non_idempotent: bool,
    pub fallback: Option<Fallback>,
    /// This route's request series, made on its first request.
    pub series: OnceLock<RouteSeries>,
}

/// seneca-transport's client gives up after 5555 ms; answer before it does.
const SENECA_TIMEOUT: Duration = Duration::from_millis(5_000);

#[derive(Debug)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: the suffix `.example.com`.
    Subdomains(String),
}

#[derive(Debug, Default)]
pub struct Table {
    routes: Vec<Route>,
    /// As given, for the admin API and storage.
    specs: Vec<RouteSpec>,
}

impl Table {
    /// Checks every route; the first problem refuses the whole table, naming the route
    /// and the field.
    pub fn build(specs: Vec<RouteSpec>, resolve: Resolve<'_>) -> Result<Table, String> {
        let mut names = HashSet::new();
        let mut routes = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let label = if spec.name.is_empty() { format!("routes[{i}]") } else { format!("route `{}`", spec.name) };
            if !names.insert(spec.name.clone()) {
                return Err(format!("{label}: the name is used by an earlier route"));
            }
            routes.push(compile(spec, resolve).map_err(|e| format!("{label}: {e}"))?);
        }
        // Most specific first: longer prefixes, then routes with more conditions; equal
        // ones keep their written order (stable sort).
        routes.sort_by_key(|r| {
            std::cmp::Reverse((r.prefix.len(), !r.hosts.is_empty(), r.methods.len() + r.headers.len()))
        });
        Ok(Table { routes, specs })
    }

    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The first route (most specific first) the request satisfies.
    pub fn find(&self, host: Option<&str>, path: &str, method: &Method, headers: &HeaderMap) -> Option<&Route> {
        let host = host.map(strip_port);
        self.routes.iter().find(|r| r.matches(host, path, method, headers))
    }
}

impl Route {
    /// The route Seneca messages take to a service's listener: whatever path they came
    /// on becomes the transport's `/act`; only connection failures are retried (a
    /// message is not idempotent), within Seneca's own client timeout.
    pub fn seneca(service: &str, came_on: &str, upstream: Arc<Upstream>) -> Route {
        Route {
            name: format!("seneca:{service}"),
            hosts: Vec::new(),
            prefix: came_on.to_owned(),
            replacement: Some("/act".into()),
            methods: Vec::new(),
            headers: Vec::new(),
            upstream,
            balance: Balance::RoundRobin,
            timeout: SENECA_TIMEOUT,
            try_timeout: SENECA_TIMEOUT,
            retries: 2,
            retry_non_idempotent: false,
            fallback: None,
            series: OnceLock::new(),
        }
    }

    fn matches(&self, host: Option<&str>, path: &str, method: &Method, headers: &HeaderMap) -> bool {
        prefix_matches(&self.prefix, path)
            && (self.methods.is_empty() || self.methods.contains(method))
            && (self.hosts.is_empty() || host.is_some_and(|h| self.hosts.iter().any(|p| p.matches(h))))
            && self.headers.iter().all(|(name, value)| match value {
                None => headers.contains_key(name),
                Some(v) => headers.get_all(name).iter().any(|got| got == v),
            })
    }

    /// Whether the path changes on the way upstream (strip or rewrite).
    pub fn rewrites(&self) -> bool {
        self.replacement.is_some()
    }

    /// The path (and query) the upstream gets.
    pub fn upstream_path(&self, path_and_query: &str) -> String {
        let Some(replacement) = &self.replacement else {
            return path_and_query.to_owned();
        };
        let rest = &path_and_query[self.prefix.trim_end_matches('/').len()..];
        let joined = match (replacement.ends_with('/'), rest.starts_with('/')) {
            (true, true) => format!("{replacement}{}", &rest[1..]),
            (false, false) if !rest.is_empty() && !rest.starts_with('?') => format!("{replacement}/{rest}"),
            _ => format!("{replacement}{rest}"),
        };
        if joined.is_empty() || joined.starts_with('?') { format!("/{joined}") } else { joined }
    }
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => host.eq_ignore_ascii_case(h),
            HostPattern::Subdomains(suffix) => {
                host.len() > suffix.len() && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// `/api` matches `/api`, `/api/…` and `/api?…`; `/` matches everything.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path.starts_with(prefix) && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/') | Some(b'?'))
}

fn compile(spec: &RouteSpec, resolve: Resolve<'_>) -> Result<Route, String> {
    if spec.name.is_empty() || !spec.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err("name: give each route a name of letters, digits, `-`, `_`, `.`".into());
    }
    let prefix = if spec.path_prefix.is_empty() { "/".to_owned() } else { spec.path_prefix.clone() };
    if !prefix.starts_with('/') || prefix.contains(['?', '#']) {
        return Err(format!("path_prefix: `{prefix}` must start with `/` and hold no `?` or `#`"));
    }
    let replacement = match (&spec.rewrite, spec.strip_prefix) {
        (Some(r), _) if !r.starts_with('/') => return Err(format!("rewrite: `{r}` must start with `/`")),
        (Some(r), _) => Some(r.clone()),
        (None, true) => Some(String::new()),
        (None, false) => None,
    };
    let hosts = spec
        .hosts
        .iter()
        .map(|h| match h.strip_prefix("*.") {
            Some(rest) if !rest.is_empty() => Ok(HostPattern::Subdomains(format!(".{rest}"))),
            _ if h.is_empty() || h.contains(['*', '/', ' ']) => {
                Err(format!("hosts: `{h}` is not a host name or `*.domain`"))
            }
            _ => Ok(HostPattern::Exact(strip_port(h).to_owned())),
        })
        .collect::<Result<_, _>>()?;
    let methods = spec
        .methods
        .iter()
        .map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| format!("methods: `{m}`")))
        .collect::<Result<_, _>>()?;
    let headers = spec
        .headers
        .iter()
        .map(|(name, value)| {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("headers: `{name}` is no header"))?;
            let value = match value.as_str() {
                "*" => None,
                v => Some(HeaderValue::from_str(v).map_err(|_| format!("headers.{name}: bad value"))?),
            };
            Ok((name, value))
        })
        .collect::<Result<_, String>>()?;
    let target = match (&spec.service, spec.upstreams.is_empty()) {
        (Some(_), false) => return Err("give either `service` or `upstreams`, not both".into()),
        (None, true) => return Err("give `service` (a catalog name) or `upstreams` ([{\"address\": ...}])".into()),
        (Some(s), true) if s.is_empty() => return Err("service: empty".into()),
        (Some(s), true) => Target::Service(s.clone()),
        (None, false) => Target::Static(
            spec.upstreams
                .iter()
                .map(|u| {
                    let addr = address_of(&u.address).map_err(|e| format!("upstreams: {e}"))?;
                    if u.weight == 0 || u.weight > 1000 {
                        return Err(format!("upstreams: weight of {} must be 1..=1000", u.address));
                    }
                    Ok((addr, u.weight))
                })
                .collect::<Result<_, String>>()?,
        ),
    };
    let timeout = if spec.timeout_ms == 0 { 30_000 } else { spec.timeout_ms };
    let try_timeout = if spec.try_timeout_ms == 0 { timeout } else { spec.try_timeout_ms };
    if try_timeout > timeout {
        return Err(format!("try_timeout_ms ({try_timeout}) is above timeout_ms ({timeout})"));
    }
    if spec.retries > 10 {
        return Err("retries: at most 10".into());
    }
    if let Some(f) = &spec.fallback {
        http::StatusCode::from_u16(f.status).map_err(|_| format!("fallback.status: {} is no status", f.status))?;
        for (name, value) in &f.headers {
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("fallback.headers: `{name}`"))?;
            HeaderValue::from_str(value).map_err(|_| format!("fallback.headers.{name}: bad value"))?;
        }
    }
    Ok(Route {
        name: spec.name.clone(),
        upstream: resolve(&spec.name, &target),
        hosts,
        prefix,
        replacement,
        methods,
        headers,
        balance: spec.balance,
        timeout: Duration::from_millis(timeout),
        try_timeout: Duration::from_millis(try_timeout),
        retries: spec.retries,
        retry_non_idempotent: spec.retry_non_idempotent,
        fallback: spec.fallback.clone(),
        series: OnceLock::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{CircuitSettings, OutlierSettings, StaticUpstream};

    fn build(specs: Vec<RouteSpec>) -> Result<Table, String> {
        Table::build(specs, &|_, _| {
            Arc::new(Upstream::new("u".into(), OutlierSettings::default(), CircuitSettings::default()))
        })
    }

    fn spec(name: &str, prefix: &str) -> RouteSpec {
        RouteSpec {
            name: name.into(),
            path_prefix: prefix.into(),
            upstreams: vec![StaticUpstream { address: "127.0.0.1:9".into(), weight: 1 }],
            ..RouteSpec::default()
        }
    }

    #[test]
    fn longest_prefix_wins_and_prefixes_match_by_segment() {
        let table = build(vec![spec("root", "/"), spec("api", "/api"), spec("v2", "/api/v2/")]).unwrap();
        let find = |p: &str| table.find(None, p, &Method::GET, &HeaderMap::new()).map(|r| r.name.as_str());
        assert_eq!(find("/api/v2/x"), Some("v2"));
        assert_eq!(find("/api/v2"), Some("v2"));
        assert_eq!(find("/api?q=1"), Some("api"));
        assert_eq!(find("/apix"), Some("root"));
        assert_eq!(find("/"), Some("root"));
    }

    #[test]
    fn hosts_methods_and_headers_narrow_a_route() {
        let mut a = spec("a", "/");
        a.hosts = vec!["*.example.com".into()];
        a.methods = vec!["post".into()];
        a.headers.insert("x-env".into(), "blue".into());
        let table = build(vec![a, spec("b", "/")]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-env", HeaderValue::from_static("blue"));
        let find = |h: &str, m: &Method, hd: &HeaderMap| table.find(Some(h), "/x", m, hd).unwrap().name.clone();
        assert_eq!(find("api.example.com:8080", &Method::POST, &headers), "a");
        assert_eq!(find("example.com", &Method::POST, &headers), "b");
        assert_eq!(find("api.example.com", &Method::GET, &headers), "b");
        assert_eq!(find("api.example.com", &Method::POST, &HeaderMap::new()), "b");
    }

    #[test]
    fn strip_and_rewrite_replace_the_prefix() {
        let mut strip = spec("s", "/api/");
        strip.strip_prefix = true;
        let mut rewrite = spec("r", "/old");
        rewrite.rewrite = Some("/new/v1".into());
        let table = build(vec![strip, rewrite]).unwrap();
        let path = |p: &str| {
            table.find(None, p.split('?').next().unwrap(), &Method::GET, &HeaderMap::new()).unwrap().upstream_path(p)
        };
        assert_eq!(path("/api/users?x=1"), "/users?x=1");
        assert_eq!(path("/api"), "/");
        assert_eq!(path("/api?x=1"), "/?x=1");
        assert_eq!(path("/old/a/b"), "/new/v1/a/b");
        assert_eq!(path("/old"), "/new/v1");
    }

    #[test]
    fn a_bad_route_is_refused_with_its_name_and_field() {
        let mut bad = spec("bad", "/x");
        bad.upstreams[0].address = "localhost:80".into();
        let err = build(vec![spec("ok", "/"), bad]).unwrap_err();
        assert!(err.contains("route `bad`: upstreams: `localhost:80` is not ip:port"), "{err}");
        let err = build(vec![spec("ok", "/"), spec("ok", "/y")]).unwrap_err();
        assert!(err.contains("used by an earlier route"), "{err}");
        let mut both = spec("both", "/");
        both.service = Some("users".into());
        assert!(build(vec![both]).unwrap_err().contains("either `service` or `upstreams`"));
        let mut slow = spec("slow", "/");
        slow.timeout_ms = 100;
        slow.try_timeout_ms = 200;
        assert!(build(vec![slow]).unwrap_err().contains("above timeout_ms"));
    }
}
