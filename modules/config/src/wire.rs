//! Response shapes Ctrip's services answer with: JSON with `charset=UTF-8`, Spring
//! Boot's error body on the config service, the portal's on the Open API, and Gson's
//! date format.

use plugin_api::{ModuleError, Response};
use serde::Serialize;

pub const JSON_UTF8: &str = "application/json;charset=UTF-8";

/// 200 with `value` as JSON, typed as Ctrip types it.
pub fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(body),
        // What `Response::json` answers when a value does not encode.
        Err(_) => Response::json(value),
    }
}

/// 200 with `body`, JSON already encoded, typed as [`json`] types it.
pub fn json_bytes(body: Vec<u8>) -> Response {
    Response { status: 200, headers: vec![("Content-Type".into(), JSON_UTF8.into())], body }
}

/// A body of text with its content type.
pub fn text(body: String, content_type: &str) -> Response {
    Response { status: 200, headers: vec![("Content-Type".into(), content_type.into())], body: body.into_bytes() }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// The config service's error: `{"timestamp","status","error","message","path"}`.
pub fn spring_error(status: u16, message: &str, path: &str) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        timestamp: String,
        status: u16,
        error: &'static str,
        message: &'a str,
        path: &'a str,
    }
    let body = Body {
        timestamp: gson_date(chrono::Utc::now().timestamp_millis()),
        status,
        error: reason(status),
        message,
        path,
    };
    json(&body).with_status(status)
}

/// The portal's (Open API) error: `{"status","message","timestamp","exception"}`.
pub fn portal_error(error: &ModuleError) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        status: u16,
        message: &'a str,
        timestamp: String,
        exception: &'static str,
    }
    let exception = match error.status {
        400 => "BadRequestException",
        401 | 403 => "AccessDeniedException",
        404 => "NotFoundException",
        _ => "ServiceException",
    };
    json(&Body {
        status: error.status,
        message: &error.message,
        timestamp: gson_date(chrono::Utc::now().timestamp_millis()),
        exception,
    })
    .with_status(error.status)
}

/// `yyyy-MM-dd'T'HH:mm:ss.SSSZ`, e.g. `2024-05-01T10:20:30.123+0000`.
pub fn gson_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_look_like_gsons() {
        assert_eq!(gson_date(1_714_558_830_123), "2024-05-01T10:20:30.123+0000");
    }

    #[test]
    fn errors_carry_springs_fields() {
        let response = spring_error(404, "not found", "/configs/a/default/x");
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(
            (response.status, body["error"].as_str(), body["path"].as_str()),
            (404, Some("Not Found"), Some("/configs/a/default/x"))
        );
    }
}
