//! The figures the module adds to the host's `/metrics` (each labelled
//! `module="config"` by the host).

use plugin_api::metrics::{self, Counter, CounterSeries, GaugeSeries, HistogramSeries, MetricError};

/// Push latency buckets (seconds): a push should take well under a millisecond.
const PUSH_BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// The series without labels are held as series: a release answers thousands of held
/// polls at once, each touching three of them, and a family would look its one series
/// up (a lock and a map) every time.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `config_parked_polls`: `/notifications` polls held now.
    pub parked_polls: GaugeSeries,
    /// `config_pushes_total`: held polls answered because a release arrived.
    pub pushes: CounterSeries,
    /// `config_push_seconds`: from this host learning of a release message to a held
    /// poll's answer.
    pub push_seconds: HistogramSeries,
    /// `config_configs_requests_total{status}`: `/configs` answers by status.
    pub configs_requests: Counter,
    /// `config_releases_total{kind}`: releases made (normal, gray, rollback, merge).
    pub releases: Counter,
    /// `config_access_key_failures_total{reason}`.
    pub access_key_failures: Counter,
}

impl Metrics {
    pub fn register() -> Result<Self, MetricError> {
        Ok(Self {
            parked_polls: metrics::gauge("config_parked_polls", "Long polls held now", &[])?.try_with(&[])?,
            pushes: metrics::counter("config_pushes", "Held polls answered by a release", &[])?.try_with(&[])?,
            push_seconds: metrics::histogram(
                "config_push_seconds",
                "From a release message reaching this host to a held poll's answer",
                &[],
                PUSH_BUCKETS,
            )?
            .try_with(&[])?,
            configs_requests: metrics::counter("config_configs_requests", "/configs answers by status", &["status"])?,
            releases: metrics::counter("config_releases", "Releases made, by kind", &["kind"])?,
            access_key_failures: metrics::counter(
                "config_access_key_failures",
                "Requests refused by access keys, by reason",
                &["reason"],
            )?,
        })
    }
}
