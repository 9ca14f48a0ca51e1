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

pub use directory::{Collision, Directory, PinProblem};
pub use error::ActError;
pub use message::{clean, message_from_request, parse_query, wire_body};
pub use patrun::Patterns;
pub use pin::{Pattern, parse_pins};
pub use reply::{act_not_found, gateway_id, invalid_json, no_instance, reply_headers, upstream_failure};

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
}

impl Default for Settings {
    fn default() -> Self {
        Self { enabled: true, path: "/act".to_string(), meta_key: "seneca_pin".to_string() }
    }
}
