//! The catalog's figures on the host's `/metrics` (labelled `module="catalog"` by the
//! host): registrations, checks by status, blocking queries parked and their wake-ups,
//! check runs.

use plugin_api::metrics::{self, Counter, Gauge, MetricError};

#[derive(Debug, Clone)]
pub struct Metrics {
    /// `op` = register | deregister, `origin` = agent | host.
    pub registrations: Counter,
    /// `status` = passing | warning | critical: checks of the whole catalog now.
    pub checks: Gauge,
    pub services: Gauge,
    pub parked: Gauge,
    /// Parked queries woken by a change (one per query per wake).
    pub wakeups: Counter,
    /// `kind`, `status`: results of the checks this host runs.
    pub check_runs: Counter,
    pub kv_entries: Gauge,
}

impl Metrics {
    pub fn register() -> Result<Self, MetricError> {
        Ok(Self {
            registrations: metrics::counter(
                "catalog_registrations",
                "Service registrations and deregistrations",
                &["op", "origin"],
            )?,
            checks: metrics::gauge("catalog_checks", "Health checks in the catalog by status", &["status"])?,
            services: metrics::gauge("catalog_service_instances", "Service instances in the catalog", &[])?,
            parked: metrics::gauge("catalog_blocking_queries_parked", "Blocking queries waiting for a change", &[])?,
            wakeups: metrics::counter("catalog_blocking_wakeups", "Parked blocking queries woken by a change", &[])?,
            check_runs: metrics::counter(
                "catalog_check_runs",
                "Health check runs on this host by kind and result",
                &["kind", "status"],
            )?,
            kv_entries: metrics::gauge("catalog_kv_entries", "Keys in the KV store", &[])?,
        })
    }
}
