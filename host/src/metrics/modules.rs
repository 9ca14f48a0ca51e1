//! Scrape-time figures of the loaded modules: the host's own count of requests and
//! panics per module, and the families each module registered through
//! `plugin_api::metrics`, read as a JSON snapshot, checked again (a module is a
//! foreign library), labelled `module="<name>"` and merged by family name across
//! modules. It does not call into a module for anything but that snapshot.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use plugin_api::metrics::{MetricFamily, MetricKind, SampleValue, check_label_name, check_metric_name};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::exemplar::Exemplar;

use super::{Labels, counters};
use crate::modules::{LoadedModule, ModuleTable};

/// What `module` contributes through the SDK, from its `metrics()` snapshot.
pub fn module_families(module: &LoadedModule) -> Vec<MetricFamily> {
    parse_families(&module.name, &module.metrics_json())
}

/// A module's snapshot JSON, or nothing (with a warning) when it does not parse: one
/// module's bad figures must not cost the scrape.
pub fn parse_families(module: &str, json: &str) -> Vec<MetricFamily> {
    serde_json::from_str(json).unwrap_or_else(|e| {
        tracing::warn!(module, "module metrics snapshot is not valid JSON, skipped: {e}");
        Vec::new()
    })
}

/// One family as exposed: the modules' samples with their `module` label first.
#[derive(Debug)]
struct Merged {
    help: String,
    kind: MetricKind,
    samples: Vec<Series>,
}

/// One exposed series.
#[derive(Debug)]
struct Series {
    /// `module` first, then the family's own labels.
    labels: Vec<(String, String)>,
    value: SampleValue,
    /// Histograms: the bounds of the contributing module's family (two modules' copies
    /// of one family may bucket differently).
    bounds: Vec<f64>,
}

/// The modules' figures of one scrape.
#[derive(Debug)]
pub(super) struct ModuleFigures {
    requests: Vec<(Labels, u64)>,
    panics: Vec<(Labels, u64)>,
    families: BTreeMap<String, Merged>,
}

impl ModuleFigures {
    pub(super) fn read(table: &ModuleTable) -> Self {
        let modules: Vec<(&str, Vec<MetricFamily>)> =
            table.modules.values().map(|m| (m.name.as_str(), module_families(m))).collect();
        let mut figures = Self::merge(&modules);
        for m in table.modules.values() {
            figures.requests.push((vec![("module", m.name.clone())], m.requests.load(Ordering::Relaxed)));
            figures.panics.push((vec![("module", m.name.clone())], m.panics.load(Ordering::Relaxed)));
        }
        figures
    }

    /// Merges the modules' families (in the order given: table order, by name). A family
    /// whose kind or help differs from the one already taken under that name is skipped,
    /// as is anything that breaks the naming rules; all of it in one warning.
    fn merge(modules: &[(&str, Vec<MetricFamily>)]) -> Self {
        let mut families: BTreeMap<String, Merged> = BTreeMap::new();
        let mut skipped = Vec::new();
        for (module, contributed) in modules {
            for family in contributed {
                if let Err(why) = check_family(family) {
                    skipped.push(format!("{module}: {}: {why}", family.name));
                    continue;
                }
                let merged = families.entry(family.name.clone()).or_insert_with(|| Merged {
                    help: family.help.clone(),
                    kind: family.kind,
                    samples: Vec::new(),
                });
                if merged.kind != family.kind || merged.help != family.help {
                    skipped.push(format!(
                        "{module}: {}: another module registered it as a {:?} with other help",
                        family.name, merged.kind
                    ));
                    continue;
                }
                for sample in &family.samples {
                    let labels = std::iter::once(("module".to_string(), module.to_string()))
                        .chain(family.label_names.iter().cloned().zip(sample.label_values.iter().cloned()))
                        .collect();
                    merged.samples.push(Series { labels, value: sample.value.clone(), bounds: family.buckets.clone() });
                }
            }
        }
        if !skipped.is_empty() {
            // One line per scrape, however many families are wrong.
            tracing::warn!(skipped = %skipped.join("; "), "module metrics skipped");
        }
        Self { requests: Vec::new(), panics: Vec::new(), families }
    }
}

/// The module SDK refuses all of this at registration; a library built otherwise (or
/// against another SDK) is checked here so it cannot break the exposition.
fn check_family(family: &MetricFamily) -> Result<(), String> {
    check_metric_name(&family.name)?;
    for label in &family.label_names {
        check_label_name(label).map_err(|why| format!("label {label:?} {why}"))?;
    }
    let bounds_ok = family.buckets.iter().all(|b| b.is_finite()) && family.buckets.windows(2).all(|w| w[0] < w[1]);
    if family.kind == MetricKind::Histogram && (family.buckets.is_empty() || !bounds_ok) {
        return Err("histogram bounds must be finite and ascending".into());
    }
    let fits = |value: &SampleValue| match (value, family.kind) {
        (SampleValue::Counter(_), MetricKind::Counter) | (SampleValue::Gauge(_), MetricKind::Gauge) => true,
        (SampleValue::Histogram { counts, count, .. }, MetricKind::Histogram) => {
            counts.len() == family.buckets.len() + 1 && counts.iter().sum::<u64>() == *count
        }
        _ => false,
    };
    if family.samples.iter().any(|s| s.label_values.len() != family.label_names.len() || !fits(&s.value)) {
        return Err("a sample does not fit its family (kind, label count or bucket counts)".into());
    }
    Ok(())
}

impl Collector for ModuleFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        counters(
            &mut encoder,
            "apollo_module_requests",
            "Requests routed to the module (this generation)",
            &self.requests,
        )?;
        counters(&mut encoder, "apollo_module_panics", "Module handler panics (this generation)", &self.panics)?;
        for (name, family) in &self.families {
            let kind = match family.kind {
                MetricKind::Counter => MetricType::Counter,
                MetricKind::Gauge => MetricType::Gauge,
                MetricKind::Histogram => MetricType::Histogram,
            };
            let mut metric = encoder.encode_descriptor(name, &family.help, None, kind)?;
            for Series { labels, value, bounds } in &family.samples {
                let mut series = metric.encode_family(labels)?;
                match value {
                    SampleValue::Counter(v) => {
                        series.encode_counter::<NoLabelSet, _, u64>(v, None::<&Exemplar<NoLabelSet, u64>>)?
                    }
                    SampleValue::Gauge(v) => series.encode_gauge(v)?,
                    SampleValue::Histogram { counts, sum, count } => {
                        // Per-bucket counts; the encoder makes them cumulative and adds
                        // `+Inf` = count (the overflow bucket is implied by it).
                        let buckets: Vec<(f64, u64)> = bounds.iter().copied().zip(counts.iter().copied()).collect();
                        series.encode_histogram::<NoLabelSet>(*sum, *count, &buckets, None)?
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) fn merged_for_test(modules: &[(&str, Vec<MetricFamily>)]) -> impl Collector {
    ModuleFigures::merge(modules)
}
