//! Unit tests of the exposition: what Prometheus reads (`# HELP`, `# TYPE`, histogram
//! buckets, label escaping, the `module` label and the merge of module families).

use prometheus_client::registry::Registry;

use super::*;

fn encode(collector: impl Collector) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).unwrap();
    out
}

fn live_text(metrics: &Metrics) -> String {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &metrics.registry).unwrap();
    out
}

#[test]
fn http_figures_are_per_route_pattern_with_histogram_buckets() {
    let m = Metrics::new(&MetricsConfig::default());
    m.observe_http(&axum::http::Method::GET, "/api/apps/{name}".into(), 200, Duration::from_millis(3));
    m.observe_http(&axum::http::Method::GET, "/api/apps/{name}".into(), 200, Duration::from_millis(40));
    m.observe_http(
        &axum::http::Method::from_bytes(b"BREW").unwrap(),
        "unmatched".into(),
        404,
        Duration::from_micros(50),
    );
    let text = live_text(&m);
    assert!(text.contains("# TYPE apollo_http_requests_total counter\n"), "{text}");
    assert!(text.contains("# HELP apollo_http_request_duration_seconds "), "{text}");
    assert!(text.contains("# TYPE apollo_http_request_duration_seconds histogram\n"), "{text}");
    assert!(
        text.contains(r#"apollo_http_requests_total{method="GET",route="/api/apps/{name}",status="200"} 2"#),
        "{text}"
    );
    assert!(text.contains(r#"apollo_http_requests_total{method="other",route="unmatched",status="404"} 1"#), "{text}");
    let bucket = |le: &str| {
        format!(r#"apollo_http_request_duration_seconds_bucket{{method="GET",route="/api/apps/{{name}}",le="{le}"}} "#)
    };
    let count_at = |le: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(&bucket(le))).unwrap_or_else(|| panic!("no le={le} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!((count_at("0.0025"), count_at("0.005"), count_at("0.05"), count_at("+Inf")), (0, 1, 2, 2), "cumulative");
    assert!(text.contains(r#"apollo_http_request_duration_seconds_count{method="GET",route="/api/apps/{name}"} 2"#));
    assert!(
        text.contains(r#"apollo_http_request_duration_seconds_sum{method="GET",route="/api/apps/{name}"} 0.043"#),
        "{text}"
    );
}

#[test]
fn module_calls_and_store_operations_are_timed() {
    let m = Metrics::new(&MetricsConfig::default());
    m.observe_module_request("hello", 0.002, 201);
    m.observe_module_request("hello", 30.0, 504);
    m.observe_store("find_token", Duration::from_micros(120), false);
    m.observe_store("find_token", Duration::from_micros(90), true);
    let text = live_text(&m);
    assert!(
        text.contains(r#"apollo_module_request_duration_seconds_count{module="hello",status_class="2xx"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"apollo_module_request_duration_seconds_count{module="hello",status_class="5xx"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"apollo_store_operation_duration_seconds_count{operation="find_token"} 2"#), "{text}");
    assert!(text.contains(r#"apollo_store_errors_total{operation="find_token"} 1"#), "{text}");
}

fn family(name: &str, help: &str, kind: MetricKind, labels: &[&str], samples: Vec<Sample>) -> MetricFamily {
    MetricFamily {
        name: name.into(),
        help: help.into(),
        kind,
        label_names: labels.iter().map(|l| l.to_string()).collect(),
        buckets: if kind == MetricKind::Histogram { vec![0.1, 1.0] } else { Vec::new() },
        samples,
    }
}

fn sample(values: &[&str], value: SampleValue) -> Sample {
    Sample { label_values: values.iter().map(|v| v.to_string()).collect(), value }
}

use plugin_api::metrics::{MetricFamily, MetricKind, Sample, SampleValue};

#[test]
fn module_families_get_the_module_label_and_escaped_values() {
    let jobs = family(
        "jobs",
        "Jobs run\nby queue \\ kind",
        MetricKind::Counter,
        &["queue"],
        vec![sample(&["a \"quoted\" \\ back\nslash"], SampleValue::Counter(7))],
    );
    let took = family(
        "job_seconds",
        "Run time",
        MetricKind::Histogram,
        &[],
        vec![sample(&[], SampleValue::Histogram { counts: vec![1, 2, 1], sum: 3.5, count: 4 })],
    );
    let text = encode(modules::merged_for_test(&[("worker", vec![jobs, took])]));
    assert!(text.contains("# HELP jobs_total Jobs run\\nby queue \\\\ kind\n"), "{text}");
    assert!(text.contains("# TYPE jobs_total counter\n"), "{text}");
    assert!(text.contains(r#"jobs_total{module="worker",queue="a \"quoted\" \\ back\nslash"} 7"#), "{text}");
    assert!(text.contains("# TYPE job_seconds histogram\n"), "{text}");
    for line in [
        r#"job_seconds_bucket{module="worker",le="0.1"} 1"#,
        r#"job_seconds_bucket{module="worker",le="1"} 3"#,
        r#"job_seconds_bucket{module="worker",le="+Inf"} 4"#,
        r#"job_seconds_sum{module="worker"} 3.5"#,
        r#"job_seconds_count{module="worker"} 4"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn the_same_family_from_two_modules_merges_and_a_mismatch_is_skipped() {
    let gauge =
        |help: &str, v: f64| family("depth", help, MetricKind::Gauge, &[], vec![sample(&[], SampleValue::Gauge(v))]);
    let clash = family("depth", "Depth", MetricKind::Counter, &[], vec![sample(&[], SampleValue::Counter(1))]);
    let text = encode(modules::merged_for_test(&[
        ("a", vec![gauge("Depth", 1.0)]),
        ("b", vec![gauge("Depth", 2.0)]),
        ("c", vec![gauge("Other help", 3.0)]),
        ("d", vec![clash]),
    ]));
    assert_eq!(text.matches("# TYPE depth gauge").count(), 1, "{text}");
    assert!(text.contains("depth{module=\"a\"} 1") && text.contains("depth{module=\"b\"} 2"), "{text}");
    assert!(!text.contains("module=\"c\"") && !text.contains("module=\"d\""), "{text}");
}

#[test]
fn families_that_break_the_rules_are_skipped() {
    let bad = vec![
        family("apollo_services", "h", MetricKind::Gauge, &[], vec![sample(&[], SampleValue::Gauge(1.0))]),
        family("ok_gauge", "h", MetricKind::Gauge, &["module"], vec![sample(&["x"], SampleValue::Gauge(1.0))]),
        family("bad-name", "h", MetricKind::Gauge, &[], vec![]),
        family("arity", "h", MetricKind::Gauge, &["a"], vec![sample(&[], SampleValue::Gauge(1.0))]),
        family("kind", "h", MetricKind::Gauge, &[], vec![sample(&[], SampleValue::Counter(1))]),
        family(
            "hist",
            "h",
            MetricKind::Histogram,
            &[],
            vec![sample(&[], SampleValue::Histogram { counts: vec![1, 1, 1], sum: 1.0, count: 2 })],
        ),
        family("fine", "h", MetricKind::Gauge, &[], vec![sample(&[], SampleValue::Gauge(4.0))]),
    ];
    let text = encode(modules::merged_for_test(&[("m", bad)]));
    let families: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).collect();
    assert_eq!(families, ["apollo_module_requests_total counter", "apollo_module_panics_total counter", "fine gauge"]);
}

#[test]
fn what_the_module_sdk_exports_is_what_the_host_renders() {
    // The host links plugin-api too: its registry stands in for a module's here.
    let c = plugin_api::metrics::counter("sdk_roundtrip", "Through JSON", &["k"]).unwrap();
    c.with(&["v"]).inc_by(5);
    let json = serde_json::to_string(&plugin_api::metrics::snapshot()).unwrap();
    let families = modules::parse_families("sdk", &json);
    let text = encode(modules::merged_for_test(&[("sdk", families)]));
    assert!(text.contains(r#"sdk_roundtrip_total{module="sdk",k="v"} 5"#), "{text}");
}

#[test]
fn host_figures_say_version_and_uptime() {
    let text = encode(HostFigures { uptime: Duration::from_millis(1500) });
    assert!(text.contains(&format!(r#"apollo_build_info{{version="{}","#, env!("CARGO_PKG_VERSION"))), "{text}");
    assert!(text.contains("apollo_host_uptime_seconds 1.5\n"), "{text}");
}
