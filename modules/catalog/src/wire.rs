//! Consul's HTTP conventions (contract §1.1): plain-text errors with Consul's status
//! codes, JSON only when a body is written, `X-Consul-KnownLeader`/`LastContact` on
//! reads and `X-Consul-Index` on blocking-capable answers (never 0), empty 200s for
//! writes. Handlers return [`Fail`] and never build an error body themselves.

use plugin_api::{ModuleError, Response};
use serde::Serialize;

/// A failed Consul call: its status and Consul's message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    pub status: u16,
    pub message: String,
}

pub type Answer = Result<Response, Fail>;

impl Fail {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }
    pub fn forbidden() -> Self {
        Self::new(403, "Permission denied: token lacks the rights for this operation (send X-Consul-Token)")
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, message)
    }

    pub fn to_response(&self) -> Response {
        Response::text(self.message.clone()).with_status(self.status)
    }
}

/// Storage and planning failures keep their status; the text is the message alone.
impl From<ModuleError> for Fail {
    fn from(e: ModuleError) -> Self {
        Self::new(e.status, e.message)
    }
}

/// 200 with a JSON body and the read headers.
pub fn json<T: Serialize>(value: &T) -> Response {
    read_headers(Response::json(value))
}

/// 200 with a JSON body and `X-Consul-Index`.
pub fn json_indexed<T: Serialize>(value: &T, index: u64) -> Response {
    indexed(json(value), index)
}

pub fn read_headers(response: Response) -> Response {
    response.with_header("X-Consul-KnownLeader", "true").with_header("X-Consul-LastContact", "0")
}

pub fn indexed(response: Response, index: u64) -> Response {
    response.with_header("X-Consul-Index", index.max(1).to_string())
}

/// A write's answer: 200 with an empty body and no content type.
pub fn empty() -> Response {
    Response::empty(200)
}

/// Whether a query flag is present (`?passing`, `?recurse=`, `?keys=true`): Consul
/// treats a bare flag as true; an explicit `false`/`0` as false.
pub fn flag(req: &plugin_api::Request, name: &str) -> Result<bool, Fail> {
    match req.query_param(name) {
        None => Ok(false),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "" | "1" | "true" | "t" => Ok(true),
            "0" | "false" | "f" => Ok(false),
            _ => Err(Fail::bad_request(format!("Invalid value for '{name}' parameter: {v:?}"))),
        },
    }
}
