//! W3C trace context at the gateway and spans exported over OTLP/HTTP. (Filled in by
//! the tracing work.)

use serde::Deserialize;

/// `modules.config.gateway.tracing`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where spans go (`http://127.0.0.1:4318/v1/traces`); none: propagate only.
    pub otlp_endpoint: Option<String>,
}
