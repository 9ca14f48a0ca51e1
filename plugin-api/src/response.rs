//! [`Response`]: what a handler answers: status, headers, body, with constructors for
//! JSON, text and the host's error shape.

use serde::Serialize;

/// A response from the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// 200 with `value` as JSON (500 if it cannot be encoded).
    pub fn json<T: Serialize>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self { status: 200, headers: vec![("content-type".into(), "application/json".into())], body },
            Err(e) => Self::error(500, "internal", &format!("cannot encode the response: {e}")),
        }
    }

    /// 200 with a UTF-8 text body.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: text.into().into_bytes(),
        }
    }

    /// A status with no body (`204`, `304`, …).
    pub fn empty(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new() }
    }

    /// The host's error shape: `{"error":{"code","message"}}`.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Self::json(&serde_json::json!({"error": {"code": code, "message": message}})).with_status(status)
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header (a second one of the same name is sent too).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}
