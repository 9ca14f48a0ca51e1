//! Seneca pattern routing: patrun's matching, the HTTP transport's message and reply
//! shapes, and seneca-web's REST mapping. (Filled in by the seneca work.)

use serde::Deserialize;

/// `modules.config.gateway.seneca`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Serve `/act` on the gateway's listeners.
    pub enabled: bool,
    /// The catalog instance meta key holding a service's pins.
    pub meta_key: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self { enabled: true, meta_key: "seneca_pin".into() }
    }
}
