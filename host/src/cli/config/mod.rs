//! The calls behind `apollo config …` (declared in `cli/config_command.rs`):
//! [`ConfigApi`] builds the module's paths and turns its answers into values or clear
//! errors; the files beside it run one area each and print the outcome.
//!
//! It talks HTTP only, through the CLI's [`ApiClient`]; it never reaches the module's
//! storage, and it checks names only as far as needed to build a path.

pub mod access;
pub mod gray;
pub mod namespaces;
pub mod releases;

use http::{Method, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::{ApiClient, CliError, RawResponse};

/// Where the host mounts the module.
pub const MOUNT: &str = "/api/module/config";

/// Everything but RFC 3986 unreserved characters is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `s` as one percent-encoded path segment or query value.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// The module's API as the CLI uses it: the env, cluster and operator of this
/// command line, and how to print (`--json`).
#[derive(Debug)]
pub struct ConfigApi<'a> {
    client: &'a ApiClient,
    pub env: String,
    pub cluster: String,
    pub operator: String,
    pub json: bool,
}

impl<'a> ConfigApi<'a> {
    pub fn new(client: &'a ApiClient, env: &str, cluster: &str, operator: &str, json: bool) -> Result<Self, CliError> {
        check_name("env", env)?;
        check_name("cluster", cluster)?;
        Ok(Self { client, env: env.to_string(), cluster: cluster.to_string(), operator: operator.to_string(), json })
    }

    /// `/openapi/v1/envs/{env}/apps/{app}/clusters/{cluster}/namespaces` under the mount.
    pub fn namespaces_path(&self, app: &str, cluster: &str) -> Result<String, CliError> {
        check_name("app id", app)?;
        check_name("cluster", cluster)?;
        Ok(format!("{MOUNT}/openapi/v1/envs/{}/apps/{app}/clusters/{cluster}/namespaces", self.env))
    }

    /// The Open API path of one namespace in `cluster`.
    pub fn namespace_path(&self, app: &str, cluster: &str, namespace: &str) -> Result<String, CliError> {
        check_name("namespace", namespace)?;
        Ok(format!("{}/{namespace}", self.namespaces_path(app, cluster)?))
    }

    /// The admin path of one namespace in this command's cluster.
    pub fn admin_namespace_path(&self, app: &str, namespace: &str) -> Result<String, CliError> {
        check_name("app id", app)?;
        check_name("namespace", namespace)?;
        Ok(format!("{MOUNT}/admin/apps/{app}/clusters/{}/namespaces/{namespace}", self.cluster))
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::DELETE, path, None).await
    }

    /// One call; a 2xx answer's JSON body (`null` when empty), anything else an error
    /// carrying the module's (or the host's) message.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        let response = self.client.send(method, path, body).await?;
        decode(path, &response)
    }

    /// A GET whose status the caller looks at before [`decode`] (a 404 or 401 that
    /// means something there).
    pub async fn get_raw(&self, path: &str) -> Result<RawResponse, CliError> {
        Ok(self.client.send(Method::GET, path, None).await?)
    }

    /// Prints `value` as JSON when `--json` was given; returns whether it did.
    pub fn printed_json(&self, value: &Value) -> bool {
        if self.json {
            super::output::print_json(value);
        }
        self.json
    }
}

/// A 2xx answer's JSON body (`null` when empty); anything else an error carrying the
/// module's (or the host's) message.
pub fn decode(path: &str, response: &RawResponse) -> Result<Value, CliError> {
    if !response.status.is_success() {
        return Err(answer_error(response.status, &response.body));
    }
    if response.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| CliError::failed(format!("the config module answered {path} with a body that is not JSON: {e}")))
}

/// Whether `response` is the module's own 404 (not the host's for a missing module).
pub fn module_not_found(response: &RawResponse) -> bool {
    response.status == StatusCode::NOT_FOUND
        && response.json()["error"]["message"].as_str().is_none_or(|m| {
            !(m.starts_with("no module named \"config\"") || m.starts_with("module \"config\" is not loaded"))
        })
}

/// The error for a non-2xx answer. The host's own errors are `{"error":{"code",
/// "message"}}`; a 404 of that shape for the mount means the module is not loaded. The
/// module's errors carry a top-level `message` (Ctrip's shape).
pub fn answer_error(status: StatusCode, body: &[u8]) -> CliError {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = status.as_u16();
    if let Some(host_message) = json["error"]["message"].as_str() {
        if status == StatusCode::NOT_FOUND {
            if host_message.starts_with("no module named \"config\"") {
                return CliError::failed(
                    "module config is not loaded on this host (`apollo module list` shows its modules)",
                );
            }
            if let Some(why) = host_message.strip_prefix("module \"config\" is not loaded: ") {
                return CliError::failed(format!("module config is not loaded: {why}"));
            }
        }
        return CliError::failed(format!("{host_message} (HTTP {code})"));
    }
    let text = String::from_utf8_lossy(body);
    let message = json["message"]
        .as_str()
        .map(str::to_string)
        .or_else(|| json.as_str().map(str::to_string))
        .filter(|m| !m.trim().is_empty())
        .or_else(|| (!text.trim().is_empty() && json.is_null()).then(|| text.trim().to_string()))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_lowercase());
    CliError::failed(format!("config module: {message} (HTTP {code})"))
}

/// App ids, clusters, namespaces and envs: Ctrip's `[0-9A-Za-z_.-]`, first char not a
/// dot. Anything else is a typo that would otherwise become a confusing 404.
pub fn check_name(what: &str, name: &str) -> Result<(), CliError> {
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid { Ok(()) } else { Err(CliError::usage(format!("{name:?} is not a valid {what}"))) }
}

/// A JSON scalar as a table cell: strings bare, `null` empty.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value on one table line: newlines and tabs shown escaped.
pub fn one_line(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r").replace('\t', "\\t")
}

/// A time the module sent: text as it is, epoch milliseconds as UTC.
pub fn time(v: &Value) -> String {
    match v.as_i64() {
        Some(ms) => chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| ms.to_string()),
        None => cell(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_404_for_the_mount_says_the_module_is_not_loaded() {
        let body =
            br#"{"error":{"code":"not_found","message":"no module named \"config\"; GET /api/modules lists them"}}"#;
        let e = answer_error(StatusCode::NOT_FOUND, body);
        assert!(e.message.starts_with("module config is not loaded"), "{}", e.message);
        assert_eq!(e.code, 1);
    }

    #[test]
    fn the_module_message_is_shown_with_the_status() {
        let body = br#"{"status":400,"message":"item value too long","timestamp":"x"}"#;
        assert_eq!(
            answer_error(StatusCode::BAD_REQUEST, body).message,
            "config module: item value too long (HTTP 400)"
        );
        assert_eq!(answer_error(StatusCode::FORBIDDEN, b"").message, "config module: forbidden (HTTP 403)");
        assert_eq!(answer_error(StatusCode::UNAUTHORIZED, b"no token").message, "config module: no token (HTTP 401)");
    }

    #[test]
    fn names_are_checked_and_keys_encoded() {
        assert!(check_name("app id", "app-1.x_y").is_ok());
        assert!(check_name("app id", "a/b").is_err());
        assert!(check_name("app id", "").is_err());
        assert_eq!(encode("a b/c+d"), "a%20b%2Fc%2Bd");
    }
}
