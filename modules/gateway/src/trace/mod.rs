//! W3C trace context at the gateway (contract §3.6) and the gateway's spans, exported
//! over OTLP/HTTP as protobuf. A request gets a server span from its incoming context;
//! each upstream try gets a client span whose id goes upstream in `traceparent`.
//! Ending a span never waits: it is queued for the exporter task or dropped and counted.

mod context;
mod export;
mod otlp;
mod span;
#[cfg(test)]
mod tests;

use serde::Deserialize;

pub use context::{FLAG_RANDOM_TRACE_ID, FLAG_SAMPLED, TRACEPARENT, TRACEPARENT_NAME, TRACESTATE, TraceContext};
pub use export::{TraceStats, Tracer};
pub use span::{ActiveSpan, AttrValue, Span, SpanKind, SpanStatus};

/// `modules.config.gateway.tracing`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where spans go (`http://127.0.0.1:4318/v1/traces`; an empty path means
    /// `/v1/traces`); none: propagate only, record nothing.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute of every exported span.
    pub service_name: String,
    /// The share of traces started here that are sampled (0..=1). Traces that arrive
    /// with a valid `traceparent` follow its `sampled` flag instead.
    pub sample_ratio: f64,
    /// Ended spans waiting for the exporter; when full, new ones are dropped.
    pub queue_size: usize,
    /// Spans per export request at most.
    pub batch_size: usize,
    /// How long a partial batch waits before it is sent anyway.
    pub flush_interval_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            otlp_endpoint: None,
            service_name: "apollo-gateway".to_string(),
            sample_ratio: 1.0,
            queue_size: 2048,
            batch_size: 512,
            flush_interval_ms: 1000,
        }
    }
}

impl Settings {
    /// What is wrong with these settings, said for the operator.
    pub fn check(&self) -> Result<(), String> {
        if let Some(endpoint) = &self.otlp_endpoint {
            export::Endpoint::parse(endpoint).map_err(|e| format!("tracing.otlp_endpoint: {e}"))?;
        }
        if self.service_name.is_empty() {
            return Err("tracing.service_name must not be empty".to_string());
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(format!("tracing.sample_ratio must be within 0..=1, not {}", self.sample_ratio));
        }
        for (name, value) in [("queue_size", self.queue_size), ("batch_size", self.batch_size)] {
            if value == 0 {
                return Err(format!("tracing.{name} must be above 0"));
            }
        }
        if self.flush_interval_ms == 0 {
            return Err("tracing.flush_interval_ms must be above 0".to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod settings_tests {
    use super::Settings;

    #[test]
    fn settings_are_checked() {
        let good = Settings { otlp_endpoint: Some("http://127.0.0.1:4318/v1/traces".into()), ..Settings::default() };
        assert_eq!(good.check(), Ok(()));
        assert_eq!(Settings::default().check(), Ok(()));
        let bad = [
            Settings { otlp_endpoint: Some("https://x/".into()), ..Settings::default() },
            Settings { sample_ratio: 1.5, ..Settings::default() },
            Settings { sample_ratio: -0.1, ..Settings::default() },
            Settings { sample_ratio: f64::NAN, ..Settings::default() },
            Settings { queue_size: 0, ..Settings::default() },
            Settings { batch_size: 0, ..Settings::default() },
            Settings { flush_interval_ms: 0, ..Settings::default() },
            Settings { service_name: String::new(), ..Settings::default() },
        ];
        for settings in bad {
            assert!(settings.check().is_err(), "{settings:?}");
        }
    }

    #[test]
    fn settings_deserialize_with_defaults_and_refuse_unknown_keys() {
        let parsed: Settings =
            serde_json::from_str(r#"{"otlp_endpoint":"http://c:4318","sample_ratio":0.25}"#).unwrap();
        assert_eq!(parsed.sample_ratio, 0.25);
        assert_eq!(parsed.queue_size, 2048);
        assert_eq!(parsed.batch_size, 512);
        assert_eq!(parsed.flush_interval_ms, 1000);
        assert_eq!(parsed.service_name, "apollo-gateway");
        assert!(serde_json::from_str::<Settings>(r#"{"endpoint":"x"}"#).is_err());
    }
}
