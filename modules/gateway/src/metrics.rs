//! The gateway's figures on the host's `/metrics` (labelled `module="gateway"` by the
//! host): requests by route/method/status and their latency, tries per upstream
//! instance, retries, fallbacks, ejections, circuit overflows, connections and pools.
//! Series are looked up once and kept by the route and the instance they count, so a
//! request costs no label allocation, lock or map lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use http::Method;
use plugin_api::metrics::{self, Counter, CounterSeries, Gauge, Histogram, HistogramSeries, MetricError};

#[derive(Debug)]
pub struct Metrics {
    requests: Counter,
    duration: Histogram,
    tries: Counter,
    try_duration: Histogram,
    retries: Counter,
    fallbacks: Counter,
    ejections: Counter,
    overflows: Counter,
    pub open_connections: Gauge,
    pub ejected: Gauge,
    pub pool_connections: Gauge,
    pub instances: Gauge,
    /// The series of route names that have no route to keep them (Seneca's, a 404's).
    request_series: Mutex<HashMap<String, Arc<RouteSeries>>>,
}

/// A route's request series: its latency, and counts by method and status.
#[derive(Debug)]
pub struct RouteSeries {
    route: String,
    duration: HistogramSeries,
    by_code: Keyed<(Method, u16)>,
    family: Counter,
}

impl RouteSeries {
    pub fn record(&self, method: &Method, code: u16, seconds: f64) {
        self.duration.observe(seconds);
        self.by_code
            .inc(&(method.clone(), code), || self.family.with(&[&self.route, method.as_str(), &code.to_string()]));
    }
}

/// An upstream instance's try series: the upstream's latency, and the instance's counts
/// by status (0: no response).
#[derive(Debug)]
pub struct InstanceSeries {
    upstream: String,
    instance: String,
    duration: HistogramSeries,
    by_code: Keyed<u16>,
    family: Counter,
}

impl InstanceSeries {
    pub fn record(&self, code: u16, seconds: f64) {
        self.duration.observe(seconds);
        self.by_code.inc(&code, || self.family.with(&[&self.upstream, &self.instance, &code.to_string()]));
    }
}

/// Counter series by a small key, found without a hash under a read lock (two atomic
/// operations, uncontended but for the first requests of a new status); an `ArcSwap`
/// of the list cost a thread-local debt slot per look-up, two per request. Keys are
/// added, never removed, as the statuses a route answers settle after its first
/// requests.
#[derive(Debug)]
struct Keyed<K> {
    list: RwLock<Vec<(K, CounterSeries)>>,
}

impl<K> Default for Keyed<K> {
    fn default() -> Self {
        Self { list: RwLock::new(Vec::new()) }
    }
}

impl<K: PartialEq + Clone> Keyed<K> {
    /// Adds one to the series of `key`, made by `make` the first time (the family hands
    /// out the same cell for the same labels, so a race makes no second series).
    fn inc(&self, key: &K, make: impl FnOnce() -> CounterSeries) {
        if let Some((_, counter)) = self.list.read().unwrap_or_else(|e| e.into_inner()).iter().find(|(k, _)| k == key) {
            counter.inc();
            return;
        }
        let counter = make();
        counter.inc();
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        if !list.iter().any(|(k, _)| k == key) {
            list.push((key.clone(), counter));
        }
    }
}

/// Latency buckets (seconds): a proxy hop lives in the sub-millisecond range.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Metrics {
    pub fn register() -> Result<Self, MetricError> {
        Ok(Self {
            requests: metrics::counter(
                "gateway_requests",
                "Requests answered by route, method and status",
                &["route", "method", "code"],
            )?,
            duration: metrics::histogram(
                "gateway_request_duration_seconds",
                "Time to the response head by route",
                &["route"],
                BUCKETS,
            )?,
            tries: metrics::counter(
                "gateway_upstream_requests",
                "Tries sent upstream by upstream, instance and status (0: no response)",
                &["upstream", "instance", "code"],
            )?,
            try_duration: metrics::histogram(
                "gateway_upstream_request_duration_seconds",
                "Time of one try to its response head by upstream",
                &["upstream"],
                BUCKETS,
            )?,
            retries: metrics::counter(
                "gateway_retries",
                "Tries after the first by route and reason",
                &["route", "reason"],
            )?,
            fallbacks: metrics::counter(
                "gateway_fallbacks",
                "Requests the gateway answered itself by route and reason",
                &["route", "reason"],
            )?,
            ejections: metrics::counter(
                "gateway_ejections",
                "Instances ejected by passive health checks",
                &["upstream"],
            )?,
            overflows: metrics::counter(
                "gateway_circuit_overflows",
                "Requests refused because an upstream's limit was reached",
                &["upstream", "limit"],
            )?,
            open_connections: metrics::gauge("gateway_open_connections", "Client connections open", &[])?,
            ejected: metrics::gauge("gateway_ejections_active", "Instances ejected now by upstream", &["upstream"])?,
            pool_connections: metrics::gauge(
                "gateway_upstream_connections",
                "Connections to upstream instances by state (open, idle)",
                &["upstream", "state"],
            )?,
            instances: metrics::gauge("gateway_upstream_instances", "Instances known by upstream", &["upstream"])?,
            request_series: Mutex::default(),
        })
    }

    /// A route's series, made once and kept by the route (see [`RouteSeries`]).
    pub fn route(&self, route: &str) -> RouteSeries {
        RouteSeries {
            route: route.to_owned(),
            duration: self.duration.with(&[route]),
            by_code: Keyed::default(),
            family: self.requests.clone(),
        }
    }

    /// An answered request counted for a route name that has no [`RouteSeries`] of its
    /// own (Seneca's, or none at all: a 404).
    pub fn request(&self, route: &str, method: &Method, code: u16, seconds: f64) {
        let series = {
            let mut all = self.request_series.lock().unwrap_or_else(|e| e.into_inner());
            match all.get(route) {
                Some(series) => Arc::clone(series),
                None => Arc::clone(all.entry(route.to_owned()).or_insert_with(|| Arc::new(self.route(route)))),
            }
        };
        series.record(method, code, seconds);
    }

    /// An upstream instance's try series, made once and kept by the instance.
    pub fn instance(&self, upstream: &str, instance: &str) -> InstanceSeries {
        InstanceSeries {
            upstream: upstream.to_owned(),
            instance: instance.to_owned(),
            duration: self.try_duration.with(&[upstream]),
            by_code: Keyed::default(),
            family: self.tries.clone(),
        }
    }

    pub fn retry(&self, route: &str, reason: &str) {
        self.retries.with(&[route, reason]).inc();
    }

    pub fn fallback(&self, route: &str, reason: &str) {
        self.fallbacks.with(&[route, reason]).inc();
    }

    pub fn ejection(&self, upstream: &str) {
        self.ejections.with(&[upstream]).inc();
    }

    pub fn overflow(&self, upstream: &str, limit: &str) {
        self.overflows.with(&[upstream, limit]).inc();
    }
}
