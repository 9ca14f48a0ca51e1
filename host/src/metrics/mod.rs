//! The host's Prometheus figures, served as `GET /metrics` in the text format 0.0.4.
//! Two kinds: instruments updated as things happen (HTTP requests per route pattern,
//! module calls, store operations), held in [`Metrics`]; and figures read at scrape
//! time (services from the supervisor, module counters, what each module contributes).
//! prometheus-client does the encoding; this module picks names, labels and buckets.
//! It pushes nothing anywhere; the only history kept is `history.rs`'s last hour of each
//! service's CPU and RSS for the dashboard's charts (longer ones: Prometheus).

mod history;
mod http;
mod modules;
mod services;
mod store;

pub use history::{HistoryPoint, ServiceHistory, ServiceHistoryView};
pub use http::{PATH, RequestTimer, mount};
pub use modules::module_families;
pub use store::InstrumentedStore;

use std::borrow::Cow;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::config::MetricsConfig;
use crate::state::AppState;

/// The `Content-Type` of what `/metrics` serves.
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Bounds of every latency histogram, in seconds: 100 µs (a SQLite read) to 30 s (a
/// module handler's default timeout), roughly ×2.5 per step. One set for all, so
/// latencies of different layers can be compared bucket by bucket.
const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS.iter().copied())
}

type LatencyFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_family<L: Clone + std::hash::Hash + Eq>() -> LatencyFamily<L> {
    Family::new_with_constructor(latency_histogram as fn() -> Histogram)
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    /// The route pattern (`/api/apps/{name}`), never the raw path: one series per
    /// route, whatever callers put in the URL. Borrowed where the pattern is static
    /// (the module mount's): no copy per request.
    route: Cow<'static, str>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpStatusLabels {
    method: &'static str,
    route: Cow<'static, str>,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModuleCallLabels {
    module: String,
    /// `2xx`…`5xx`: a module may answer any status, the class keeps the series few.
    status_class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    operation: &'static str,
}

/// The live instruments, shared by the request layer, the module dispatcher and the
/// store wrapper. Each field is a prometheus-client family (an `Arc` inside), also
/// registered in `registry`, which encodes them.
#[derive(Debug)]
pub struct Metrics {
    config: MetricsConfig,
    /// What the fields below are registered in; encoded on every scrape.
    registry: Registry,
    http_requests: Family<HttpStatusLabels, Counter>,
    http_duration: LatencyFamily<HttpLabels>,
    module_duration: LatencyFamily<ModuleCallLabels>,
    store_duration: LatencyFamily<StoreLabels>,
    store_errors: Family<StoreLabels, Counter>,
}

impl Metrics {
    pub fn new(config: &MetricsConfig) -> Self {
        let mut m = Self {
            config: config.clone(),
            registry: Registry::default(),
            http_requests: Family::default(),
            http_duration: latency_family(),
            module_duration: latency_family(),
            store_duration: latency_family(),
            store_errors: Family::default(),
        };
        let r = &mut m.registry;
        r.register(
            "apollo_http_requests",
            "HTTP requests answered, by route pattern and status",
            m.http_requests.clone(),
        );
        r.register(
            "apollo_http_request_duration_seconds",
            "Time to the response head, by route pattern (unmatched: no route)",
            m.http_duration.clone(),
        );
        r.register(
            "apollo_module_request_duration_seconds",
            "Time a module took to answer (timeouts count as 5xx at the timeout)",
            m.module_duration.clone(),
        );
        r.register(
            "apollo_store_operation_duration_seconds",
            "Time of one store call, by Store method",
            m.store_duration.clone(),
        );
        r.register(
            "apollo_store_errors",
            "Store calls that returned an error, by Store method",
            m.store_errors.clone(),
        );
        m
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// `/metrics` over TCP without a token.
    pub fn public(&self) -> bool {
        self.config.public
    }

    /// One HTTP request answered. `route` is the matched pattern or `unmatched`.
    pub fn observe_http(&self, method: &axum::http::Method, route: Cow<'static, str>, status: u16, took: Duration) {
        let method = http::method_label(method);
        self.http_requests.get_or_create(&HttpStatusLabels { method, route: route.clone(), status }).inc();
        self.http_duration.get_or_create(&HttpLabels { method, route }).observe(took.as_secs_f64());
    }

    /// One module request answered: `status` is what the module returned, or 504 when
    /// it did not answer in time. Call it only with the name of a loaded module (the
    /// label must not come from the URL of a request for a module that does not exist).
    pub fn observe_module_request(&self, module: &str, seconds: f64, status: u16) {
        let status_class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.module_duration
            .get_or_create(&ModuleCallLabels { module: module.to_string(), status_class })
            .observe(seconds);
    }

    /// Records a module call that started at `started` and ended with `status` (504:
    /// no answer in time), when metrics are on; for callers that poll the call
    /// themselves rather than through [`Self::time_module_request`].
    pub fn module_request_done(&self, module: &str, started: std::time::Instant, status: u16) {
        if self.config.enabled {
            self.observe_module_request(module, started.elapsed().as_secs_f64(), status);
        }
    }

    /// Times a module call (the dispatcher's `timeout(…, handle(…))` future) and
    /// records it with [`Self::observe_module_request`]; hands the outcome back as is.
    pub async fn time_module_request<E>(
        &self,
        module: &str,
        call: impl Future<Output = Result<crate::modules::ModuleReply, E>>,
    ) -> Result<crate::modules::ModuleReply, E> {
        if !self.config.enabled {
            return call.await;
        }
        let start = std::time::Instant::now();
        let outcome = call.await;
        let status = outcome.as_ref().map_or(504, |answer| answer.status);
        self.observe_module_request(module, start.elapsed().as_secs_f64(), status);
        outcome
    }

    fn observe_store(&self, operation: &'static str, took: Duration, failed: bool) {
        let labels = StoreLabels { operation };
        self.store_duration.get_or_create(&labels).observe(took.as_secs_f64());
        if failed {
            self.store_errors.get_or_create(&labels).inc();
        }
    }

    /// The whole exposition: the live instruments, then what is read now from the
    /// supervisor and the modules. Two registries encoded one after the other make one
    /// valid document: the 0.0.4 format has no end marker.
    pub async fn render(&self, state: &AppState) -> String {
        let mut scrape = Registry::default();
        scrape.register_collector(Box::new(HostFigures { uptime: state.started_at.elapsed() }));
        scrape.register_collector(Box::new(services::ServiceFigures::read(&state.supervisor).await));
        scrape.register_collector(Box::new(modules::ModuleFigures::read(&state.modules.table())));
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error would be a bug in the
        // figures (never seen), and a partial page is still better than none.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &scrape);
        out
    }
}

/// Figures about the host process itself.
#[derive(Debug)]
struct HostFigures {
    uptime: Duration,
}

impl Collector for HostFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let info = [("version", env!("CARGO_PKG_VERSION")), ("abi_version", plugin_api::ABI_VERSION)];
        encoder
            .encode_descriptor(
                "apollo_build_info",
                "The host's version and plugin ABI version",
                None,
                MetricType::Gauge,
            )?
            .encode_family(&info)?
            .encode_gauge(&1u64)?;
        encoder
            .encode_descriptor("apollo_host_uptime_seconds", "Seconds since the host started", None, MetricType::Gauge)?
            .encode_gauge(&self.uptime.as_secs_f64())
    }
}

/// Label pairs of a sample written by hand (scrape-time figures).
type Labels = Vec<(&'static str, String)>;

/// Writes one gauge family of scrape-time samples.
fn gauges<V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, V)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        family.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
}

/// Writes one counter family of scrape-time samples (`name` without `_total`).
fn counters<V: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, V)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        family
            .encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(value, None::<&Exemplar<NoLabelSet, u64>>)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
