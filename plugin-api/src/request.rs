//! [`Request`]: one HTTP request routed to the module, with what a module that
//! authenticates its clients itself needs: the peer address, the raw target as
//! received (for signatures) and every header.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::de::DeserializeOwned;

use crate::error::ModuleError;

/// Where a request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Via {
    /// The host's admin API over TCP, under `/api/module/{name}`.
    #[default]
    AdminTcp,
    /// The host's admin API over its owner-only unix socket.
    AdminUnixSocket,
    /// The module's own listener (`modules.listeners`).
    Listener,
}

impl Via {
    pub(crate) fn from_wire(value: u8) -> Self {
        match value {
            1 => Self::AdminUnixSocket,
            2 => Self::Listener,
            _ => Self::AdminTcp,
        }
    }
}

/// A request routed to the module.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// Below `/api/module/{name}` (or the root of the module's listener), decoded.
    pub path: String,
    /// The matched route pattern, as declared.
    pub route: String,
    pub params: HashMap<String, String>,
    /// The query string without `?`, as received.
    pub query: String,
    /// The request target exactly as the client sent it (path and query, still
    /// percent-encoded, including the `/api/module/{name}` prefix on the admin API):
    /// compute client signatures over this.
    pub raw_target: String,
    /// The TCP peer; `None` on the unix socket.
    pub peer_addr: Option<SocketAddr>,
    pub via: Via,
    /// The host user the token gate authenticated: `None` on a public route called
    /// without a valid host token (then `Authorization`, if any, is in `headers`).
    pub user: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The host's id of this request, for logs.
    pub request_id: String,
}

impl Request {
    /// A `{param}` of the matched route.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A `{param}` the route declares, or a 400 naming it (a route always has its own
    /// params, so this only fails when the name is mistyped).
    pub fn required_param(&self, name: &str) -> Result<&str, ModuleError> {
        self.param(name).ok_or_else(|| ModuleError::bad_request(format!("missing path parameter {name:?}")))
    }

    /// The first value of a query-string parameter, percent-decoded (`+` is a space).
    /// Only that value is copied: a handler asks for several parameters, and decoding
    /// every pair into owned strings for each question made a fifth of the allocations
    /// a Ctrip long poll cost the host (counted with a probe on `malloc`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// Every query-string pair, percent-decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes()).into_owned().collect()
    }

    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or a 400 saying what is wrong with it.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ModuleError> {
        serde_json::from_slice(&self.body).map_err(|e| ModuleError::bad_request(format!("invalid JSON body: {e}")))
    }

    /// The body as UTF-8 text, or a 400.
    pub fn text(&self) -> Result<&str, ModuleError> {
        std::str::from_utf8(&self.body).map_err(|e| ModuleError::bad_request(format!("the body is not UTF-8: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn query_param_is_the_first_value_decoded_and_none_when_absent() {
        let req = Request {
            query: "appId=shop&ip=10.0.0.7&label=a+b%2Cc&app%49d=second&empty=&n%61me=x".into(),
            ..Request::default()
        };
        assert_eq!(req.query_param("appId").as_deref(), Some("shop"));
        assert_eq!(req.query_param("label").as_deref(), Some("a b,c"));
        assert_eq!(req.query_param("empty").as_deref(), Some(""));
        assert_eq!(req.query_param("name").as_deref(), Some("x"), "the name is decoded too");
        assert_eq!(req.query_param("cluster"), None);
        assert_eq!(req.query_pairs().len(), 6);
    }
}
