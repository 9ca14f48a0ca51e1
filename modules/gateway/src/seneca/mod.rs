//! Seneca pattern routing: patrun's matching, the HTTP transport's message and reply
//! shapes, and seneca-web's REST mapping. Pure logic; the proxy does the networking.
//!
//! - `pin`: patterns and the `seneca_pin` meta services declare;
//! - `patrun`: patrun's trie, ported;
//! - `directory`: pattern → service, from the catalog;
//! - `message` / `reply`: `/act` requests in, listener-shaped replies out;
//! - `web`: seneca-web routes (`GET /user/:id` → `module:user,if:load`);
//! - `js`: how node prints values, where seneca's behaviour depends on it.

mod directory;
mod error;
mod js;
mod message;
mod patrun;
mod pin;
mod reply;
mod web;

pub use directory::{Collision, Directory, PinProblem};
pub use error::ActError;
pub use message::{clean, message_from_request, parse_query, wire_body};
pub use patrun::Patterns;
pub use pin::{Pattern, parse_pins};
pub use reply::{act_not_found, gateway_id, invalid_json, no_instance, reply_headers, upstream_failure};
pub use web::{
    RouteMap, RouteOptions, RouteSpec, WebMatch, WebRoute, WebRoutes, WebTable, web_bad_request, web_message, web_reply,
};

use serde::Deserialize;

/// `modules.config.gateway.seneca`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Serve `/act` on the gateway's listeners.
    pub enabled: bool,
    /// The path seneca clients post to (seneca-transport's default `/act`).
    pub path: String,
    /// The catalog instance meta key holding a service's pins.
    pub meta_key: String,
    /// seneca-web route plans, written as seneca-web's `routes` option.
    pub web: Vec<WebRoutes>,
}

impl Settings {
    /// What the settings cannot mean: a path that is not absolute, an empty meta key,
    /// web routes that do not map (see `WebTable::build`). Returns the web table, which
    /// is what the proxy routes with.
    pub fn check(&self) -> Result<WebTable, String> {
        if !self.path.starts_with('/') {
            return Err(format!("seneca.path {:?} must start with `/`", self.path));
        }
        if self.meta_key.trim().is_empty() {
            return Err("seneca.meta_key is empty".to_string());
        }
        WebTable::build(&self.web).map_err(|e| format!("seneca.web: {e}"))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self { enabled: true, path: "/act".to_string(), meta_key: "seneca_pin".to_string(), web: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_and_deserialize() {
        let empty: Settings = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, Settings::default());
        assert!(empty.enabled && empty.path == "/act" && empty.meta_key == "seneca_pin" && empty.web.is_empty());
        let full: Settings = serde_json::from_str(
            r#"{"enabled": false, "path": "/seneca", "meta_key": "pins",
                "web": [{"prefix": "/user", "pin": "module:user,if:*", "map": {"list": true}}]}"#,
        )
        .unwrap();
        assert!(!full.enabled);
        assert_eq!(full.web[0].map.0[0], ("list".to_string(), RouteSpec::Get));
        assert_eq!(full.check().unwrap().routes().count(), 1);
        let bad_path = Settings { path: "act".to_string(), ..Settings::default() };
        assert!(bad_path.check().unwrap_err().contains("must start with `/`"));
        let bad_web: Settings =
            serde_json::from_str(r#"{"web": [{"pin": "a:*", "map": {"x": {"name": "x"}}}]}"#).unwrap();
        assert!(bad_web.check().unwrap_err().starts_with("seneca.web: web route `x`"));
        assert!(serde_json::from_str::<Settings>(r#"{"pathh": "/x"}"#).is_err());
    }
}
