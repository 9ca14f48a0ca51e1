//! The InfluxDB 1.x HTTP API as this module uses it: `POST /write` (gzip'd line
//! protocol, millisecond precision), `GET /query` (InfluxQL, epoch-millisecond times)
//! and `POST /query` for `CREATE DATABASE`. Credentials travel as a Basic
//! `Authorization` header, never in a URL (URLs end up in logs and error messages).
//! It also decides which failed writes are worth retrying (see [`WriteError`]).

use std::io::Write as _;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;

use crate::config::Config;
use crate::transport::{self, Answer, encode_component};

/// Answers to queries are bounded: a chart never needs more.
const MAX_QUERY_ANSWER: usize = 32 * 1024 * 1024;
/// Write and admin answers are a short JSON error at most.
const MAX_SMALL_ANSWER: usize = 64 * 1024;

/// Where InfluxDB listens: `http://host[:port][/base-path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
    /// Empty, or `/prefix` without a trailing slash (InfluxDB behind a path-routing proxy).
    base: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("not a URL ({e}): {url:?}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err("https is not supported (no TLS in this module); use http://".into()),
            _ => return Err(format!("expected http://host:port, got {url:?}")),
        }
        let authority = uri.authority().ok_or_else(|| format!("no host in {url:?}"))?;
        if authority.as_str().contains('@') {
            return Err("credentials do not belong in the URL; set username and password".into());
        }
        if uri.query().is_some() {
            return Err(format!("no query string expected in {url:?}"));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        let base = uri.path().trim_end_matches('/').to_string();
        Ok(Self { host, port: authority.port_u16().unwrap_or(8086), base })
    }

    pub fn url(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("http://{host}:{}{}", self.port, self.base)
    }
}

/// Why a write did not succeed, and so what the writer does with the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// Worth another try later: InfluxDB is down, overloaded or refusing the
    /// credentials (they may be fixed).
    Retry(String),
    /// 404: the database does not exist (yet, or any more). Retried too, after
    /// creating it when the config allows.
    NoDatabase(String),
    /// The points themselves were refused (bad line, field type conflict, beyond the
    /// retention policy): retrying would fail forever, so the batch is dropped.
    Rejected(String),
}

#[derive(Clone)]
pub struct Client {
    endpoint: Endpoint,
    database: String,
    retention_policy: Option<String>,
    authorization: Option<String>,
    timeout: Duration,
}

/// Hand-written: the `Authorization` value is the password in base64.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.endpoint.url())
            .field("database", &self.database)
            .field("authorization", &self.authorization.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: &Config) -> Self {
        let authorization = config.credentials.as_ref().map(|c| {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
            format!("Basic {token}")
        });
        Self {
            endpoint: config.endpoint.clone(),
            database: config.database.clone(),
            retention_policy: config.retention_policy.clone(),
            authorization,
            timeout: config.timeout,
        }
    }

    /// Where the writes go (no credentials: they never appear in a URL here).
    pub fn url(&self) -> String {
        self.endpoint.url()
    }

    /// `CREATE DATABASE` is a no-op in 1.x when the database exists.
    pub async fn create_database(&self) -> Result<(), String> {
        let q = format!("CREATE DATABASE {}", crate::query::identifier(&self.database));
        let answer = self.send("POST", &format!("/query?q={}", encode_component(&q)), None, MAX_SMALL_ANSWER).await?;
        match answer.status {
            200..=299 => statement_error(&answer.body).map_or(Ok(()), Err),
            status => Err(format!("CREATE DATABASE answered HTTP {status}: {}", error_text(&answer.body))),
        }
    }

    /// Writes newline-separated lines, gzip'd.
    pub async fn write(&self, lines: &str) -> Result<(), WriteError> {
        let body = gzip(lines.as_bytes()).map_err(|e| WriteError::Retry(format!("gzip failed: {e}")))?;
        let mut path = format!("/write?db={}&precision=ms", encode_component(&self.database));
        if let Some(rp) = &self.retention_policy {
            path.push_str(&format!("&rp={}", encode_component(rp)));
        }
        let answer = self.send("POST", &path, Some(body), MAX_SMALL_ANSWER).await.map_err(WriteError::Retry)?;
        let detail = || format!("InfluxDB answered HTTP {}: {}", answer.status, error_text(&answer.body));
        match answer.status {
            200..=299 => Ok(()),
            401 | 403 => Err(WriteError::Retry(format!("{} (check username/password)", detail()))),
            404 => Err(WriteError::NoDatabase(detail())),
            408 | 429 => Err(WriteError::Retry(detail())),
            400..=499 => Err(WriteError::Rejected(detail())),
            _ => Err(WriteError::Retry(detail())),
        }
    }

    /// Runs one InfluxQL read query; returns the first statement's result object.
    pub async fn query(&self, q: &str) -> Result<Value, String> {
        let path = format!("/query?db={}&epoch=ms&q={}", encode_component(&self.database), encode_component(q));
        let answer = self.send("GET", &path, None, MAX_QUERY_ANSWER).await?;
        if !(200..=299).contains(&answer.status) {
            return Err(format!("InfluxDB answered HTTP {}: {}", answer.status, error_text(&answer.body)));
        }
        let value: Value =
            serde_json::from_slice(&answer.body).map_err(|e| format!("InfluxDB sent invalid JSON: {e}"))?;
        if let Some(e) = value["error"].as_str() {
            return Err(format!("InfluxDB: {e}"));
        }
        let result = value["results"][0].clone();
        match result["error"].as_str() {
            Some(e) => Err(format!("InfluxDB: {e}")),
            None => Ok(result),
        }
    }

    async fn send(&self, method: &str, path: &str, gzip_body: Option<Vec<u8>>, max: usize) -> Result<Answer, String> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint.base))
            .header(http::header::HOST, format!("{}:{}", self.endpoint.host, self.endpoint.port))
            .header(http::header::CONNECTION, "close")
            .header(http::header::USER_AGENT, concat!("apollo-module-influx/", env!("CARGO_PKG_VERSION")));
        if let Some(auth) = &self.authorization {
            builder = builder.header(http::header::AUTHORIZATION, auth);
        }
        let body = match gzip_body {
            Some(bytes) => {
                builder = builder
                    .header(http::header::CONTENT_ENCODING, "gzip")
                    .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8");
                Bytes::from(bytes)
            }
            None => Bytes::new(),
        };
        let request = builder.body(Full::new(body)).map_err(|e| format!("cannot build the request: {e}"))?;
        transport::send(&self.endpoint.host, self.endpoint.port, request, self.timeout, max).await
    }
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    // Fast level: line protocol is repetitive, so even this shrinks it several times
    // over, and the writer should not spend its time compressing.
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4), flate2::Compression::fast());
    encoder.write_all(data)?;
    encoder.finish()
}

/// InfluxDB's `{"error": "..."}`, or the start of whatever else it sent, on one line.
fn error_text(body: &[u8]) -> String {
    let text = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 300 { format!("{}…", line.chars().take(300).collect::<String>()) } else { line }
}

fn statement_error(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v["results"][0]["error"].as_str().map(|e| format!("InfluxDB: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:18086").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.base.as_str()), ("127.0.0.1", 18086, ""));
        assert_eq!(Endpoint::parse("http://db/").unwrap().url(), "http://db:8086");
        assert_eq!(Endpoint::parse("http://[::1]:9/influx/").unwrap().url(), "http://[::1]:9/influx");
        for bad in ["https://db", "db:8086", "http://u:p@db", "http://db?x=1", "ftp://db", ""] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read as _;
        let lines = "m v=1i 1\n".repeat(100);
        let packed = gzip(lines.as_bytes()).unwrap();
        assert!(packed.len() < lines.len() / 4);
        let mut out = String::new();
        flate2::read::GzDecoder::new(&packed[..]).read_to_string(&mut out).unwrap();
        assert_eq!(out, lines);
    }

    #[test]
    fn error_text_is_one_short_line() {
        assert_eq!(error_text(br#"{"error":"unable to parse 'x': bad\nline"}"#), "unable to parse 'x': bad line");
        assert_eq!(error_text(b"plain\n text"), "plain text");
        assert_eq!(error_text(&[b'a'; 400]).chars().count(), 301);
    }
}
