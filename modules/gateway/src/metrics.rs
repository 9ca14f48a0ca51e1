//! The gateway's figures on the host's `/metrics` (labelled `module="gateway"` by the
//! host): requests by route/method/status and their latency, tries per upstream
//! instance, retries, fallbacks, ejections, circuit overflows, connections and pools.
//! Series are looked up once and kept, so a request costs no label allocation.

use std::collections::HashMap;
use std::sync::Mutex;

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
    /// `route` → (`method`, `code`) → series; `route` → duration.
    request_series: Mutex<HashMap<String, RouteSeries>>,
    /// `upstream` → (`instance`, `code`) → series.
    try_series: Mutex<HashMap<String, UpstreamSeries>>,
}

#[derive(Debug)]
struct RouteSeries {
    duration: HistogramSeries,
    by_code: HashMap<(Method, u16), CounterSeries>,
}

#[derive(Debug)]
struct UpstreamSeries {
    duration: HistogramSeries,
    /// `instance` → `code` → series.
    by_code: HashMap<String, HashMap<u16, CounterSeries>>,
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
            try_series: Mutex::default(),
        })
    }

    pub fn request(&self, route: &str, method: &Method, code: u16, seconds: f64) {
        let mut all = self.request_series.lock().unwrap_or_else(|e| e.into_inner());
        let series = match all.get_mut(route) {
            Some(s) => s,
            None => all
                .entry(route.to_owned())
                .or_insert_with(|| RouteSeries { duration: self.duration.with(&[route]), by_code: HashMap::new() }),
        };
        series.duration.observe(seconds);
        match series.by_code.get(&(method.clone(), code)) {
            Some(counter) => counter.inc(),
            None => {
                let counter = self.requests.with(&[route, method.as_str(), &code.to_string()]);
                counter.inc();
                series.by_code.insert((method.clone(), code), counter);
            }
        }
    }

    pub fn try_done(&self, upstream: &str, instance: &str, code: u16, seconds: f64) {
        let mut all = self.try_series.lock().unwrap_or_else(|e| e.into_inner());
        let series = match all.get_mut(upstream) {
            Some(s) => s,
            None => all.entry(upstream.to_owned()).or_insert_with(|| UpstreamSeries {
                duration: self.try_duration.with(&[upstream]),
                by_code: HashMap::new(),
            }),
        };
        series.duration.observe(seconds);
        let by_code = match series.by_code.get_mut(instance) {
            Some(by_code) => by_code,
            None => series.by_code.entry(instance.to_owned()).or_default(),
        };
        by_code.entry(code).or_insert_with(|| self.tries.with(&[upstream, instance, &code.to_string()])).inc();
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
