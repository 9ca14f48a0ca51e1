//! [`ModuleError`]: what a handler returns with `?`. The SDK turns it into the host's
//! error shape (`{"error":{"code","message"}}`) with its status, and logs server-side
//! failures (5xx) once, so handlers neither build error bodies nor log them.

use std::borrow::Cow;

use crate::response::Response;

/// A failed request, with the status and code the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleError {
    pub status: u16,
    /// A stable, machine-readable word: `bad_request`, `not_found`, `conflict`, …
    pub code: Cow<'static, str>,
    /// One line for a person: what is wrong and, where it helps, how to fix it.
    pub message: String,
}

impl ModuleError {
    pub fn new(status: u16, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "conflict", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "unavailable", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    /// The response the client gets.
    pub fn to_response(&self) -> Response {
        Response::error(self.status, &self.code, &self.message)
    }
}

impl std::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ModuleError {}

impl From<crate::storage::StorageError> for ModuleError {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::ErrorCode;
        let status = match e.code {
            ErrorCode::Conflict => 409,
            ErrorCode::BadRequest => 400,
            ErrorCode::TooLarge => 413,
            ErrorCode::Compacted => 410,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        };
        Self::new(status, e.code.as_str(), e.message)
    }
}

impl From<crate::store_admin::StoreCallError> for ModuleError {
    fn from(e: crate::store_admin::StoreCallError) -> Self {
        let status = match e.code.as_str() {
            "bad_request" => 400,
            "not_found" => 404,
            "forbidden" => 403,
            "conflict" => 409,
            "unavailable" => 503,
            _ => 500,
        };
        Self::new(status, e.code, e.message)
    }
}

/// Encoding our own values failed: a bug on the module's side, not the client's.
impl From<serde_json::Error> for ModuleError {
    fn from(e: serde_json::Error) -> Self {
        Self::internal(format!("cannot encode or decode JSON: {e}"))
    }
}

impl From<std::io::Error> for ModuleError {
    fn from(e: std::io::Error) -> Self {
        Self::internal(format!("I/O failed: {e}"))
    }
}
