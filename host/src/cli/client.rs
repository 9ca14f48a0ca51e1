//! The CLI's HTTP client: one request per connection over the unix socket (trusted, the
//! default) or TCP (`--addr http://host:port --token T`). Plain HTTP/1.1 on hyper, so
//! the CLI and the tests speak to the host exactly as any other client would.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Where the host is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

impl Endpoint {
    /// `http://host:port`, `unix:/path` or a bare `/path` to a socket.
    pub fn parse(addr: &str) -> Result<Self, ClientError> {
        if let Some(rest) = addr.strip_prefix("http://") {
            let authority = rest.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') {
                return Err(ClientError::Usage(format!("--addr {addr:?}: expected http://HOST:PORT")));
            }
            Ok(Self::Tcp(authority.to_string()))
        } else if addr.starts_with("https://") {
            Err(ClientError::Usage(
                "--addr: https is not supported by the CLI; reach a remote host through an SSH tunnel or a local TLS proxy".into(),
            ))
        } else if let Some(path) = addr.strip_prefix("unix:") {
            Ok(Self::Unix(PathBuf::from(path)))
        } else if addr.starts_with('/') {
            Ok(Self::Unix(PathBuf::from(addr)))
        } else {
            Err(ClientError::Usage(format!("--addr {addr:?}: expected http://HOST:PORT or unix:/path/to/apollo.sock")))
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::Tcp(a) => write!(f, "http://{a}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Usage(String),
    #[error(
        "cannot reach the host at {endpoint}: {source} (is `apollo serve` running? use --config to pick its config, or --addr)"
    )]
    Connect {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{message} (HTTP {status}, {code})")]
    Api { status: u16, code: String, message: String },
    #[error("talking to the host: {0}")]
    Protocol(String),
    #[error("the host did not answer within {0:?}")]
    Timeout(Duration),
}

impl ClientError {
    /// The HTTP status for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A response whose status is not checked yet.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl RawResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Clone)]
pub struct ApiClient {
    endpoint: Endpoint,
    token: Option<String>,
    timeout: Duration,
}

impl ApiClient {
    pub fn new(endpoint: Endpoint, token: Option<String>) -> Self {
        Self { endpoint, token, timeout: Duration::from_secs(60) }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Sends one request and returns whatever came back, error statuses included.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<RawResponse, ClientError> {
        let payload = match body {
            Some(v) => {
                Some(("application/json", serde_json::to_vec(v).map_err(|e| ClientError::Protocol(e.to_string()))?))
            }
            None => None,
        };
        self.send_payload(method, path, payload.map(|(kind, bytes)| (kind, Bytes::from(bytes)))).await
    }

    /// [`Self::send`] with a body sent as given (a KV value is bytes, not JSON).
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        content_type: &'static str,
        body: Bytes,
    ) -> Result<RawResponse, ClientError> {
        self.send_payload(method, path, Some((content_type, body))).await
    }

    async fn send_payload(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<RawResponse, ClientError> {
        tokio::time::timeout(self.timeout, self.send_inner(method, path, body))
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
    }

    async fn send_inner(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<RawResponse, ClientError> {
        let connect_err = |source| ClientError::Connect { endpoint: self.endpoint.to_string(), source };
        let host = match &self.endpoint {
            Endpoint::Unix(_) => "localhost".to_string(),
            Endpoint::Tcp(a) => a.clone(),
        };
        let mut builder = Request::builder().method(method).uri(path).header(header::HOST, host);
        if let Some(token) = &self.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let payload = match body {
            Some((content_type, bytes)) => {
                builder = builder.header(header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = builder.body(Full::new(payload)).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let response = match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(connect_err)?;
                exchange(stream, request).await?
            }
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr).await.map_err(connect_err)?;
                exchange(stream, request).await?
            }
        };
        Ok(response)
    }

    /// Sends and decodes a 2xx JSON body; any other status becomes `ClientError::Api`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        let response = self.send(method, path, body).await?;
        if !response.status.is_success() {
            let json = response.json();
            let code = json["error"]["code"].as_str().unwrap_or("unknown").to_string();
            let message = json["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&response.body).into_owned());
            return Err(ClientError::Api { status: response.status.as_u16(), code, message });
        }
        let bytes = if response.body.is_empty() { Bytes::from_static(b"null") } else { response.body };
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(format!("unexpected response body: {e}")))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: Option<&Value>) -> Result<T, ClientError> {
        self.call(Method::POST, path, body).await
    }
}

impl ApiClient {
    /// Follows a server-sent-event stream, calling `on_data` with each event's data,
    /// until the server ends it. No overall timeout: following is meant to last.
    pub async fn stream_events(&self, path: &str, mut on_data: impl FnMut(&str)) -> Result<(), ClientError> {
        let connect_err = |source| ClientError::Connect { endpoint: self.endpoint.to_string(), source };
        let mut builder = Request::builder().method(Method::GET).uri(path).header(header::ACCEPT, "text/event-stream");
        builder = builder.header(
            header::HOST,
            match &self.endpoint {
                Endpoint::Unix(_) => "localhost".to_string(),
                Endpoint::Tcp(a) => a.clone(),
            },
        );
        if let Some(token) = &self.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = builder.body(Full::new(Bytes::new())).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let protocol = |e: hyper::Error| ClientError::Protocol(e.to_string());
        let mut response = match &self.endpoint {
            Endpoint::Unix(p) => {
                let stream = tokio::net::UnixStream::connect(p).await.map_err(connect_err)?;
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(protocol)?;
                tokio::spawn(conn);
                sender.send_request(request).await.map_err(protocol)?
            }
            Endpoint::Tcp(a) => {
                let stream = tokio::net::TcpStream::connect(a).await.map_err(connect_err)?;
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(protocol)?;
                tokio::spawn(conn);
                sender.send_request(request).await.map_err(protocol)?
            }
        };
        if !response.status().is_success() {
            let body = response.into_body().collect().await.map_err(protocol)?.to_bytes();
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            return Err(ClientError::Api {
                status: 0,
                code: json["error"]["code"].as_str().unwrap_or("unknown").into(),
                message: json["error"]["message"].as_str().unwrap_or_default().into(),
            });
        }
        let mut pending = String::new();
        while let Some(frame) = response.body_mut().frame().await {
            let frame = frame.map_err(protocol)?;
            if let Some(data) = frame.data_ref() {
                pending.push_str(&String::from_utf8_lossy(data));
                while let Some(i) = pending.find('\n') {
                    let line: String = pending.drain(..=i).collect();
                    if let Some(data) = line.trim_end_matches(['\r', '\n']).strip_prefix("data:") {
                        on_data(data.strip_prefix(' ').unwrap_or(data));
                    }
                }
            }
        }
        Ok(())
    }
}

impl ApiClient {
    /// Opens the websocket at `path` and calls `on_text` with every text frame until
    /// the server closes it.
    pub async fn websocket(&self, path: &str, mut on_text: impl FnMut(&str)) -> Result<(), ClientError> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;

        let connect_err = |source| ClientError::Connect { endpoint: self.endpoint.to_string(), source };
        let host = match &self.endpoint {
            Endpoint::Unix(_) => "localhost".to_string(),
            Endpoint::Tcp(a) => a.clone(),
        };
        let mut request =
            format!("ws://{host}{path}").into_client_request().map_err(|e| ClientError::Protocol(e.to_string()))?;
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| ClientError::Usage("the token is not a valid header value".into()))?;
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        let ws_err = |e: tokio_tungstenite::tungstenite::Error| match e {
            tokio_tungstenite::tungstenite::Error::Http(response) => ClientError::Api {
                status: response.status().as_u16(),
                code: "websocket".into(),
                message: String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
            },
            other => ClientError::Protocol(other.to_string()),
        };
        let mut socket = match &self.endpoint {
            Endpoint::Unix(p) => {
                let stream = tokio::net::UnixStream::connect(p).await.map_err(connect_err)?;
                tokio_tungstenite::client_async(request, tokio_util::either::Either::Left(stream))
                    .await
                    .map_err(ws_err)?
                    .0
            }
            Endpoint::Tcp(a) => {
                let stream = tokio::net::TcpStream::connect(a).await.map_err(connect_err)?;
                tokio_tungstenite::client_async(request, tokio_util::either::Either::Right(stream))
                    .await
                    .map_err(ws_err)?
                    .0
            }
        };
        while let Some(frame) = socket.next().await {
            match frame.map_err(ws_err)? {
                Message::Text(text) => on_text(text.as_str()),
                Message::Close(_) => break,
                _ => {}
            }
        }
        Ok(())
    }
}

async fn exchange<S>(stream: S, request: Request<Full<Bytes>>) -> Result<RawResponse, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let protocol = |e: hyper::Error| ClientError::Protocol(e.to_string());
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(protocol)?;
    // The connection future drives the socket; it ends when the response is read and
    // `sender` is dropped, so this task cannot outlive the call by more than that.
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(protocol)?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(protocol)?.to_bytes();
    drop(sender);
    let _ = driver.await;
    Ok(RawResponse { status: parts.status, headers: parts.headers, body })
}
