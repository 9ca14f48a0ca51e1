//! Figures a module contributes to the host's `GET /metrics`: counters, gauges and
//! histograms registered in a registry global to the module's library (a `cdylib` has
//! its own statics, so each module has its own), exported as a JSON snapshot the host
//! reads at scrape time. The host adds a `module="<name>"` label to every sample and
//! does the Prometheus text encoding; this file does no encoding and no I/O.
//!
//! ```rust
//! use plugin_api::metrics;
//!
//! let jobs = metrics::counter("jobs", "Jobs run, by queue", &["queue"]).expect("valid metric");
//! jobs.with(&["fast"]).inc();
//! let depth = metrics::gauge("queue_depth", "Jobs waiting", &[]).expect("valid metric");
//! depth.set(3.0);
//! let took = metrics::histogram("job_seconds", "Job run time", &[], metrics::DEFAULT_BUCKETS).expect("valid metric");
//! took.observe(0.042);
//! ```
//!
//! Names follow Prometheus's rules (`[a-zA-Z_][a-zA-Z0-9_]*`; colons are left to
//! recording rules). `apollo_` is the host's prefix and `module`, `le` and `__*` are
//! labels the host or Prometheus set, so a module may not use them. A counter is
//! exposed with a `_total` suffix: `jobs` and `jobs_total` name the same counter.
//! Registering a name again returns the same family when kind, help, labels and buckets
//! match, and an error otherwise. Every distinct set of label values is a series the
//! host scrapes for as long as the module lives: never put unbounded values (ids,
//! paths, user input) in labels.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

/// Prometheus's default histogram buckets (seconds): 5 ms to 10 s.
pub const DEFAULT_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The prefix of the host's own metric names.
pub const HOST_PREFIX: &str = "apollo_";

/// Label names a module may not declare: `module` (the host adds it), `le` (histogram
/// buckets).
pub const RESERVED_LABELS: &[&str] = &["module", "le"];

/// Why a metric could not be registered or a series selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricError {
    /// The metric name breaks the naming rules.
    InvalidName { name: String, reason: String },
    /// A label name breaks the naming rules or is reserved.
    InvalidLabel { metric: String, label: String, reason: String },
    /// Histogram bounds must be finite, ascending and at least one.
    InvalidBuckets { metric: String, reason: String },
    /// The name is registered already with another kind, help, labels or buckets.
    Conflict { name: String, reason: String },
    /// `with` got a different number of label values than the family has labels.
    LabelCount { metric: String, expected: usize, got: usize },
}

impl std::fmt::Display for MetricError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidName { name, reason } => write!(f, "metric name {name:?}: {reason}"),
            Self::InvalidLabel { metric, label, reason } => write!(f, "metric {metric}: label {label:?}: {reason}"),
            Self::InvalidBuckets { metric, reason } => write!(f, "metric {metric}: buckets: {reason}"),
            Self::Conflict { name, reason } => write!(f, "metric {name} is registered already {reason}"),
            Self::LabelCount { metric, expected, got } => {
                write!(f, "metric {metric} has {expected} label(s), got {got} value(s)")
            }
        }
    }
}

impl std::error::Error for MetricError {}

/// Checks a metric name against Prometheus's rules and the host's reserved prefix. The
/// host runs the same check on what it reads from a module.
#[doc(hidden)]
pub fn check_metric_name(name: &str) -> Result<(), String> {
    if !is_identifier(name) {
        return Err("must match [a-zA-Z_][a-zA-Z0-9_]* (colons are for recording rules)".into());
    }
    if name.starts_with(HOST_PREFIX) {
        return Err(format!("the {HOST_PREFIX} prefix is the host's"));
    }
    Ok(())
}

/// Checks a label name a module declares.
#[doc(hidden)]
pub fn check_label_name(label: &str) -> Result<(), String> {
    if !is_identifier(label) {
        return Err("must match [a-zA-Z_][a-zA-Z0-9_]*".into());
    }
    if label.starts_with("__") {
        return Err("names starting with __ are Prometheus's".into());
    }
    if RESERVED_LABELS.contains(&label) {
        return Err("is reserved: the host sets it".into());
    }
    Ok(())
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ---- the snapshot the host reads (serde types, shared with the host) ----

/// What kind of figure a family holds.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric family at the moment of the snapshot.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricFamily {
    /// Without the `_total` a counter is exposed with.
    pub name: String,
    pub help: String,
    pub kind: MetricKind,
    pub label_names: Vec<String>,
    /// Histograms: the finite upper bounds, ascending (`+Inf` is implied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<f64>,
    pub samples: Vec<Sample>,
}

/// One series: its label values (in `label_names` order) and its value.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub label_values: Vec<String>,
    pub value: SampleValue,
}

#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleValue {
    Counter(u64),
    Gauge(#[serde(with = "float")] f64),
    Histogram {
        /// Observations per bucket, not cumulative: one per bound, then the overflow.
        counts: Vec<u64>,
        #[serde(with = "float")]
        sum: f64,
        count: u64,
    },
}

/// Every family this library registered, in name order, series in label order.
#[doc(hidden)]
pub fn snapshot() -> Vec<MetricFamily> {
    let families: Vec<Arc<Family>> = lock(&REGISTRY).values().cloned().collect();
    families.iter().map(|f| f.snapshot()).collect()
}

/// The snapshot as JSON: what the module object hands the host through the FFI.
pub(crate) fn export_json() -> String {
    serde_json::to_string(&snapshot()).unwrap_or_else(|_| "[]".into())
}

// ---- the registry ----

/// Families by name. A `Mutex` is enough: registration is rare (start-up) and a scrape
/// holds it only to clone the `Arc`s.
static REGISTRY: LazyLock<Mutex<BTreeMap<String, Arc<Family>>>> = LazyLock::new(Default::default);

/// A poisoned lock only means another thread panicked mid-update of plain numbers:
/// still safe to read and count.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: MetricKind,
    label_names: Vec<String>,
    /// Histograms: the finite bounds, shared with every series of the family.
    buckets: Arc<[f64]>,
    series: Mutex<BTreeMap<Vec<String>, Cell>>,
}

/// One series' storage; the handles authors hold point at the same `Arc`.
#[derive(Debug, Clone)]
enum Cell {
    Counter(Arc<AtomicU64>),
    /// The `f64`'s bits, updated with compare-and-swap.
    Gauge(Arc<AtomicU64>),
    /// Buckets, sum and count change together under one lock, so a snapshot never shows
    /// a count that disagrees with its buckets.
    Histogram(Arc<Mutex<HistogramCell>>),
}

#[derive(Debug)]
struct HistogramCell {
    bounds: Arc<[f64]>,
    /// One per bound, then the overflow; not cumulative.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Family {
    fn series(&self, values: &[&str]) -> Result<Cell, MetricError> {
        if values.len() != self.label_names.len() {
            return Err(MetricError::LabelCount {
                metric: self.name.clone(),
                expected: self.label_names.len(),
                got: values.len(),
            });
        }
        let key: Vec<String> = values.iter().map(|v| (*v).to_string()).collect();
        let mut series = lock(&self.series);
        let cell = series.entry(key).or_insert_with(|| match self.kind {
            MetricKind::Counter => Cell::Counter(Arc::new(AtomicU64::new(0))),
            MetricKind::Gauge => Cell::Gauge(Arc::new(AtomicU64::new(0f64.to_bits()))),
            MetricKind::Histogram => Cell::Histogram(Arc::new(Mutex::new(HistogramCell {
                bounds: Arc::clone(&self.buckets),
                counts: vec![0; self.buckets.len() + 1],
                sum: 0.0,
                count: 0,
            }))),
        });
        Ok(cell.clone())
    }

    fn snapshot(&self) -> MetricFamily {
        let series: Vec<(Vec<String>, Cell)> = lock(&self.series).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let samples = series
            .into_iter()
            .map(|(label_values, cell)| Sample {
                label_values,
                value: match cell {
                    Cell::Counter(v) => SampleValue::Counter(v.load(Ordering::Relaxed)),
                    Cell::Gauge(v) => SampleValue::Gauge(f64::from_bits(v.load(Ordering::Relaxed))),
                    Cell::Histogram(h) => {
                        let h = lock(&h);
                        SampleValue::Histogram { counts: h.counts.clone(), sum: h.sum, count: h.count }
                    }
                },
            })
            .collect();
        MetricFamily {
            name: self.name.clone(),
            help: self.help.clone(),
            kind: self.kind,
            label_names: self.label_names.clone(),
            buckets: self.buckets.to_vec(),
            samples,
        }
    }
}

fn register(
    name: &str,
    help: &str,
    kind: MetricKind,
    labels: &[&str],
    buckets: &[f64],
) -> Result<Arc<Family>, MetricError> {
    let base = match kind {
        MetricKind::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    };
    check_metric_name(base).map_err(|reason| MetricError::InvalidName { name: name.into(), reason })?;
    for (i, label) in labels.iter().enumerate() {
        let invalid =
            |reason: String| MetricError::InvalidLabel { metric: name.into(), label: (*label).into(), reason };
        check_label_name(label).map_err(invalid)?;
        if labels[..i].contains(label) {
            return Err(invalid("is declared twice".into()));
        }
    }
    let buckets = match kind {
        MetricKind::Histogram => check_buckets(name, buckets)?,
        _ => Vec::new(),
    };
    let mut registry = lock(&REGISTRY);
    if let Some(existing) = registry.get(base) {
        let differs = if existing.kind != kind {
            Some(format!("as a {:?}", existing.kind).to_lowercase())
        } else if existing.help != help {
            Some(format!("with help {:?}", existing.help))
        } else if existing.label_names != labels {
            Some(format!("with labels {:?}", existing.label_names))
        } else if *existing.buckets != *buckets {
            Some(format!("with buckets {:?}", existing.buckets))
        } else {
            None
        };
        return match differs {
            Some(reason) => Err(MetricError::Conflict { name: base.into(), reason }),
            None => Ok(Arc::clone(existing)),
        };
    }
    let family = Arc::new(Family {
        name: base.into(),
        help: help.into(),
        kind,
        label_names: labels.iter().map(|l| (*l).to_string()).collect(),
        buckets: buckets.into(),
        series: Mutex::new(BTreeMap::new()),
    });
    registry.insert(base.into(), Arc::clone(&family));
    Ok(family)
}

/// Finite, strictly ascending, at least one; a trailing `+Inf` is dropped (implied).
fn check_buckets(name: &str, buckets: &[f64]) -> Result<Vec<f64>, MetricError> {
    let invalid = |reason: &str| MetricError::InvalidBuckets { metric: name.into(), reason: reason.into() };
    let bounds: Vec<f64> = match buckets.split_last() {
        Some((last, rest)) if *last == f64::INFINITY => rest.to_vec(),
        _ => buckets.to_vec(),
    };
    if bounds.is_empty() {
        return Err(invalid("give at least one upper bound (or DEFAULT_BUCKETS)"));
    }
    if bounds.iter().any(|b| !b.is_finite()) {
        return Err(invalid("bounds must be finite (+Inf is implied)"));
    }
    if bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid("bounds must be strictly ascending"));
    }
    Ok(bounds)
}

// ---- what authors hold ----

/// A counter family: only goes up. Exposed as `<name>_total`.
#[derive(Debug, Clone)]
pub struct Counter(Arc<Family>);

/// A gauge family: a value that goes up and down.
#[derive(Debug, Clone)]
pub struct Gauge(Arc<Family>);

/// A histogram family: observations counted into buckets, with their sum.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Family>);

/// Registers (or finds) the counter `name` with these label names.
pub fn counter(name: &str, help: &str, labels: &[&str]) -> Result<Counter, MetricError> {
    register(name, help, MetricKind::Counter, labels, &[]).map(Counter)
}

/// Registers (or finds) the gauge `name` with these label names.
pub fn gauge(name: &str, help: &str, labels: &[&str]) -> Result<Gauge, MetricError> {
    register(name, help, MetricKind::Gauge, labels, &[]).map(Gauge)
}

/// Registers (or finds) the histogram `name`: `buckets` are the finite upper bounds,
/// ascending (for seconds, [`DEFAULT_BUCKETS`] is a fair start).
pub fn histogram(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> Result<Histogram, MetricError> {
    register(name, help, MetricKind::Histogram, labels, buckets).map(Histogram)
}

macro_rules! family_methods {
    ($family:ident, $series:ident, $cell:ident) => {
        impl $family {
            /// The series with these label values (in the order the labels were declared).
            ///
            /// # Panics
            /// When the number of values differs from the number of labels: a programming
            /// error, like an index out of bounds. [`Self::try_with`] returns it instead.
            pub fn with(&self, values: &[&str]) -> $series {
                self.try_with(values).unwrap_or_else(|e| panic!("{e}"))
            }

            /// [`Self::with`], with a wrong number of values as an error.
            pub fn try_with(&self, values: &[&str]) -> Result<$series, MetricError> {
                match self.0.series(values)? {
                    Cell::$cell(cell) => Ok($series(cell)),
                    // A family only ever creates cells of its own kind.
                    _ => unreachable!("a {:?} family holds only its own kind", self.0.kind),
                }
            }
        }
    };
}

family_methods!(Counter, CounterSeries, Counter);
family_methods!(Gauge, GaugeSeries, Gauge);
family_methods!(Histogram, HistogramSeries, Histogram);

/// One counter series. Cheap to clone; keep it to skip the label lookup.
#[derive(Debug, Clone)]
pub struct CounterSeries(Arc<AtomicU64>);

/// One gauge series.
#[derive(Debug, Clone)]
pub struct GaugeSeries(Arc<AtomicU64>);

/// One histogram series.
#[derive(Debug, Clone)]
pub struct HistogramSeries(Arc<Mutex<HistogramCell>>);

impl Counter {
    /// Adds one to the series without labels (panics if the family has labels).
    pub fn inc(&self) {
        self.with(&[]).inc();
    }

    /// Adds `n` to the series without labels (panics if the family has labels).
    pub fn inc_by(&self, n: u64) {
        self.with(&[]).inc_by(n);
    }
}

impl CounterSeries {
    pub fn inc(&self) {
        self.inc_by(1);
    }

    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Gauge {
    /// Sets the series without labels (panics if the family has labels).
    pub fn set(&self, value: f64) {
        self.with(&[]).set(value);
    }

    /// Adds `delta` (negative to subtract) to the series without labels.
    pub fn add(&self, delta: f64) {
        self.with(&[]).add(delta);
    }
}

impl GaugeSeries {
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    pub fn add(&self, delta: f64) {
        // The closure always returns `Some`: the update cannot fail.
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + delta).to_bits()));
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

impl Histogram {
    /// Observes `value` in the series without labels (panics if the family has labels).
    pub fn observe(&self, value: f64) {
        self.with(&[]).observe(value);
    }
}

impl HistogramSeries {
    /// Counts `value` in the first bucket whose bound is `>=` it, or in the overflow
    /// bucket (NaN included, as Prometheus's own clients do).
    pub fn observe(&self, value: f64) {
        let mut h = lock(&self.0);
        let index = h.bounds.iter().position(|b| value <= *b).unwrap_or(h.bounds.len());
        h.counts[index] += 1;
        h.sum += value;
        h.count += 1;
    }
}

/// `f64` in JSON, which has no NaN or infinities: those travel as the strings `"NaN"`,
/// `"+Inf"` and `"-Inf"` (Prometheus's spellings); finite values as numbers.
mod float {
    use serde::{Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("+Inf"),
            _ => s.serialize_str("-Inf"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        struct Float;
        impl de::Visitor<'_> for Float {
            type Value = f64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number, \"NaN\", \"+Inf\" or \"-Inf\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
                Ok(v)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
                match v {
                    "NaN" => Ok(f64::NAN),
                    "+Inf" => Ok(f64::INFINITY),
                    "-Inf" => Ok(f64::NEG_INFINITY),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry is global to the test binary: each test uses its own names.
    fn family(name: &str) -> MetricFamily {
        snapshot().into_iter().find(|f| f.name == name).unwrap_or_else(|| panic!("{name} not in the snapshot"))
    }

    #[test]
    fn counters_count_per_label_set_and_drop_the_total_suffix() {
        let jobs = counter("t_jobs_total", "Jobs run", &["queue"]).unwrap();
        jobs.with(&["fast"]).inc();
        jobs.with(&["fast"]).inc_by(2);
        jobs.with(&["slow"]).inc();
        let f = family("t_jobs");
        assert_eq!(f.kind, MetricKind::Counter);
        assert_eq!(f.label_names, ["queue"]);
        assert_eq!(
            f.samples,
            [
                Sample { label_values: vec!["fast".into()], value: SampleValue::Counter(3) },
                Sample { label_values: vec!["slow".into()], value: SampleValue::Counter(1) },
            ]
        );
    }

    #[test]
    fn registering_again_returns_the_same_family_when_compatible() {
        let a = counter("t_again", "Same", &["x"]).unwrap();
        let b = counter("t_again_total", "Same", &["x"]).unwrap();
        a.with(&["1"]).inc();
        b.with(&["1"]).inc();
        assert_eq!(a.with(&["1"]).get(), 2, "both handles count into one series");
        let conflict = |r: Result<(), MetricError>| matches!(r, Err(MetricError::Conflict { .. }));
        assert!(conflict(gauge("t_again", "Same", &["x"]).map(drop)), "another kind");
        assert!(conflict(counter("t_again", "Other help", &["x"]).map(drop)), "another help");
        assert!(conflict(counter("t_again", "Same", &["y"]).map(drop)), "other labels");
        histogram("t_again_h", "H", &[], &[1.0, 2.0]).unwrap();
        assert!(conflict(histogram("t_again_h", "H", &[], &[1.0]).map(drop)), "other buckets");
        assert!(histogram("t_again_h", "H", &[], &[1.0, 2.0, f64::INFINITY]).is_ok(), "+Inf is implied");
    }

    #[test]
    fn names_follow_prometheus_rules_and_reserved_ones_are_refused() {
        let name_err = |name: &str| matches!(gauge(name, "h", &[]), Err(MetricError::InvalidName { .. }));
        for bad in ["", "1st", "with-dash", "with space", "a:b", "apollo_services", "é"] {
            assert!(name_err(bad), "{bad:?} accepted");
        }
        assert!(gauge("_ok_Name9", "h", &[]).is_ok());
        let label_err = |label: &str| matches!(gauge("t_labels", "h", &[label]), Err(MetricError::InvalidLabel { .. }));
        for bad in ["module", "le", "__name__", "a-b", "9a", ""] {
            assert!(label_err(bad), "label {bad:?} accepted");
        }
        assert!(matches!(gauge("t_twice", "h", &["a", "a"]), Err(MetricError::InvalidLabel { .. })));
        for bad in [&[][..], &[2.0, 1.0], &[1.0, 1.0], &[f64::NAN], &[f64::NEG_INFINITY, 1.0]] {
            assert!(
                matches!(histogram("t_buckets", "h", &[], bad), Err(MetricError::InvalidBuckets { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_wrong_number_of_label_values_is_an_error_or_a_panic() {
        let c = counter("t_arity", "h", &["a", "b"]).unwrap();
        assert_eq!(
            c.try_with(&["1"]).unwrap_err(),
            MetricError::LabelCount { metric: "t_arity".into(), expected: 2, got: 1 }
        );
        assert!(std::panic::catch_unwind(|| c.inc()).is_err(), "inc() on a labelled family panics");
    }

    #[test]
    fn gauges_set_and_add() {
        let g = gauge("t_depth", "Queue depth", &[]).unwrap();
        g.set(3.0);
        g.add(-0.5);
        assert_eq!(family("t_depth").samples[0].value, SampleValue::Gauge(2.5));
    }

    #[test]
    fn histograms_count_into_the_first_bucket_at_or_above_the_value() {
        let h = histogram("t_seconds", "Run time", &["op"], &[0.1, 1.0]).unwrap();
        let s = h.with(&["a"]);
        for v in [0.05, 0.1, 0.5, 3.0] {
            s.observe(v);
        }
        let f = family("t_seconds");
        assert_eq!(f.buckets, [0.1, 1.0]);
        assert_eq!(f.samples[0].value, SampleValue::Histogram { counts: vec![2, 1, 1], sum: 3.65, count: 4 });
    }

    #[test]
    fn the_json_snapshot_round_trips_non_finite_values() {
        let g = gauge("t_nan", "h", &["k"]).unwrap();
        g.with(&["nan"]).set(f64::NAN);
        g.with(&["inf"]).set(f64::INFINITY);
        g.with(&["-inf"]).set(f64::NEG_INFINITY);
        let json = export_json();
        let back: Vec<MetricFamily> = serde_json::from_str(&json).unwrap();
        let f = back.into_iter().find(|f| f.name == "t_nan").unwrap();
        let value = |k: &str| match f.samples.iter().find(|s| s.label_values == [k]).unwrap().value {
            SampleValue::Gauge(v) => v,
            ref other => panic!("{other:?}"),
        };
        assert!(value("nan").is_nan());
        assert_eq!(value("inf"), f64::INFINITY);
        assert_eq!(value("-inf"), f64::NEG_INFINITY);
        assert!(json.contains(r#"{"gauge":"NaN"}"#), "{json}");
    }
}
