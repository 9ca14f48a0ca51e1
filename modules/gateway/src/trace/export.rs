//! The tracer and its exporter: ended spans wait in a bounded queue (full: dropped and
//! counted — the request path never waits), one task owned by the tracer batches them
//! and POSTs each batch to the OTLP/HTTP endpoint as protobuf over HTTP/1.1. A failed
//! export loses its batch (counted) and is logged at most once per 10 s.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, timeout};

use super::Settings;
use super::otlp;
use super::span::Span;

/// How long one export may take (connect, send, answer) before it counts as failed.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `shutdown` waits for the queue to be sent before giving up on it.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(1);
/// Export failures are logged at most this often (a dead collector is one message).
const LOG_EVERY: Duration = Duration::from_secs(10);
/// A collector's answer is read (so the connection can be reused) up to this size.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Where the host's log lines go.
type Log = dyn Fn(&str) + Send + Sync;

/// Starts spans and hands ended ones to the exporter. Cheap to clone; all clones share
/// one queue and one exporter task.
#[derive(Clone)]
pub struct Tracer {
    inner: Arc<Inner>,
}

struct Inner {
    /// `Settings::sample_ratio`, for traces started here.
    sample_ratio: f64,
    /// Ended spans on their way to the exporter; `None`: propagate only.
    queue: Option<mpsc::Sender<Span>>,
    /// Shared with the exporter task, which counts exported and failed spans.
    counters: Arc<Counters>,
    /// Tells the exporter task to send what is queued and stop.
    stop: Arc<Notify>,
    /// The exporter task, owned here so `shutdown` can wait for it (or abort it).
    exporter: Mutex<Option<JoinHandle<()>>>,
}

/// Counts in spans.
#[derive(Debug, Default)]
struct Counters {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// What happened to ended, sampled spans so far (in spans).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceStats {
    /// Accepted by the collector (a 2xx answer).
    pub exported: u64,
    /// Not queued: the queue was full, or the exporter had stopped.
    pub dropped: u64,
    /// Lost with an export that failed (no connection, timeout, non-2xx answer).
    pub failed: u64,
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracer")
            .field("sample_ratio", &self.inner.sample_ratio)
            .field("exporting", &self.is_exporting())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Tracer {
    /// A tracer for these settings. With an `otlp_endpoint` it spawns its exporter on
    /// the current tokio runtime; without one (or outside a runtime, or with an
    /// endpoint that does not parse: said through `log`) it only propagates.
    /// `log` receives export failures, at most one line per 10 s.
    pub fn start(settings: &Settings, log: impl Fn(&str) + Send + Sync + 'static) -> Tracer {
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(Notify::new());
        let mut queue = None;
        let mut exporter = None;
        if let Some(endpoint_text) = &settings.otlp_endpoint {
            match (Endpoint::parse(endpoint_text), tokio::runtime::Handle::try_current()) {
                (Ok(endpoint), Ok(runtime)) => {
                    let (sender, receiver) = mpsc::channel(settings.queue_size.max(1));
                    let task = Exporter {
                        endpoint,
                        service_name: settings.service_name.clone(),
                        batch_size: settings.batch_size.max(1),
                        flush_every: Duration::from_millis(settings.flush_interval_ms.max(1)),
                        counters: counters.clone(),
                        log: Box::new(log),
                        last_logged: None,
                        failures_since_logged: 0,
                        connection: None,
                    };
                    exporter = Some(runtime.spawn(task.run(receiver, stop.clone())));
                    queue = Some(sender);
                }
                (Err(e), _) => log(&format!("tracing: not exporting spans: otlp_endpoint: {e}")),
                (_, Err(_)) => log("tracing: not exporting spans: no tokio runtime to run the exporter on"),
            }
        }
        Tracer {
            inner: Arc::new(Inner {
                sample_ratio: settings.sample_ratio,
                queue,
                counters,
                stop,
                exporter: Mutex::new(exporter),
            }),
        }
    }

    /// Propagates `traceparent`/`tracestate`, samples every new trace, records nothing.
    pub fn propagate_only() -> Tracer {
        Tracer::start(&Settings::default(), |_| {})
    }

    /// Whether sampled spans record and go to an exporter.
    pub fn is_exporting(&self) -> bool {
        self.inner.queue.as_ref().is_some_and(|q| !q.is_closed())
    }

    pub fn stats(&self) -> TraceStats {
        let c = &self.inner.counters;
        TraceStats {
            exported: c.exported.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// Sends what is queued and stops the exporter, within 1 s; what is not sent by
    /// then is lost. Afterwards spans do not record, and those that were in flight are
    /// dropped (counted) when they end. Idempotent.
    pub async fn shutdown(&self) {
        let task = self.inner.exporter.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        let Some(task) = task else { return };
        self.inner.stop.notify_one();
        let abort = task.abort_handle();
        if timeout(SHUTDOWN_DEADLINE, task).await.is_err() {
            abort.abort();
        }
    }

    pub(crate) fn sample_ratio(&self) -> f64 {
        self.inner.sample_ratio
    }

    /// Queues an ended span without waiting; a full or closed queue drops it.
    pub(crate) fn submit(&self, span: Span) {
        if let Some(queue) = &self.inner.queue
            && queue.try_send(span).is_err()
        {
            self.inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An `http://host:port/path` OTLP/HTTP traces endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// For `Host:` and messages.
    authority: String,
    /// Without IPv6 brackets, for connecting.
    host: String,
    port: u16,
    path: String,
}

impl Endpoint {
    pub(crate) fn parse(text: &str) -> Result<Endpoint, String> {
        let uri: http::Uri = text.parse().map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("{text:?}: only http:// endpoints are supported"));
        }
        let authority = uri.authority().ok_or_else(|| format!("{text:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("{text:?}: credentials in the URL are not supported"));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        // The OTLP default path when none is given.
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") | Some("/") => "/v1/traces",
            Some(path) => path,
        };
        Ok(Endpoint {
            authority: authority.as_str().to_string(),
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(80),
            path: path.to_string(),
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

/// An open HTTP/1.1 connection to the collector, reused between exports.
struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    /// Drives the connection; ends when `sender` is dropped, aborted with it anyway.
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// The exporter task's state; only that task touches it.
struct Exporter {
    endpoint: Endpoint,
    service_name: String,
    batch_size: usize,
    flush_every: Duration,
    counters: Arc<Counters>,
    log: Box<Log>,
    last_logged: Option<Instant>,
    /// Failed exports not yet mentioned in a log line.
    failures_since_logged: u64,
    connection: Option<Connection>,
}

impl Exporter {
    /// Sends full batches at once and partial ones every `flush_every`; on `stop` (or
    /// when every tracer is gone) sends what is queued and returns.
    async fn run(mut self, mut queue: mpsc::Receiver<Span>, stop: Arc<Notify>) {
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut flush = tokio::time::interval(self.flush_every);
        flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
        flush.tick().await; // The first tick is immediate.
        loop {
            // `batch` is below `batch_size` here (full ones are sent at once), so
            // there is room for at least one span.
            let room = self.batch_size - batch.len();
            tokio::select! {
                biased;
                () = stop.notified() => break,
                received = queue.recv_many(&mut batch, room) => {
                    if received == 0 {
                        break;
                    }
                    if batch.len() >= self.batch_size {
                        self.export(&mut batch).await;
                    }
                }
                _ = flush.tick() => {
                    if !batch.is_empty() {
                        self.export(&mut batch).await;
                    }
                }
            }
        }
        queue.close();
        while let Some(span) = queue.recv().await {
            batch.push(span);
            if batch.len() >= self.batch_size {
                self.export(&mut batch).await;
            }
        }
        if !batch.is_empty() {
            self.export(&mut batch).await;
        }
    }

    async fn export(&mut self, batch: &mut Vec<Span>) {
        let count = batch.len() as u64;
        let body = otlp::encode(&self.service_name, batch);
        batch.clear();
        let outcome = match timeout(EXPORT_TIMEOUT, self.post(body)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {EXPORT_TIMEOUT:?}")),
        };
        match outcome {
            Ok(()) => {
                self.counters.exported.fetch_add(count, Ordering::Relaxed);
            }
            Err(why) => {
                // A timed-out or broken connection is not reused.
                self.connection = None;
                self.counters.failed.fetch_add(count, Ordering::Relaxed);
                self.report_failure(count, &why);
            }
        }
    }

    fn report_failure(&mut self, spans: u64, why: &str) {
        self.failures_since_logged += 1;
        if self.last_logged.is_some_and(|at| at.elapsed() < LOG_EVERY) {
            return;
        }
        (self.log)(&format!(
            "tracing: exporting {spans} spans to {} failed: {why} ({} failed exports since the last such message)",
            self.endpoint, self.failures_since_logged
        ));
        self.last_logged = Some(Instant::now());
        self.failures_since_logged = 0;
    }

    async fn connect(&self) -> Result<Connection, String> {
        let stream = TcpStream::connect((self.endpoint.host.as_str(), self.endpoint.port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("HTTP handshake: {e}"))?;
        let driver = tokio::spawn(async move {
            // Its errors surface on the request that was using it.
            let _ = connection.await;
        });
        Ok(Connection { sender, driver })
    }

    async fn post(&mut self, body: Vec<u8>) -> Result<(), String> {
        let reusable = self.connection.take().filter(|c| !c.sender.is_closed());
        let mut connection = match reusable {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        connection.sender.ready().await.map_err(|e| format!("connection closed: {e}"))?;
        let request = http::Request::post(self.endpoint.path.as_str())
            .header(HOST, self.endpoint.authority.as_str())
            .header(CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let answer = connection.sender.send_request(request).await.map_err(|e| format!("sending: {e}"))?;
        let status = answer.status();
        let body = Limited::new(answer.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        // The answer was read whole: the connection can carry the next export.
        self.connection = Some(connection);
        if status.is_success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            Err(format!("the collector answered {status}: {text:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_to_host_port_and_path() {
        let e = Endpoint::parse("http://127.0.0.1:4318/v1/traces").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.path.as_str()), ("127.0.0.1", 4318, "/v1/traces"));
        let e = Endpoint::parse("http://collector:4318").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.path.as_str()), ("collector", 4318, "/v1/traces"));
        let e = Endpoint::parse("http://[::1]/otlp/traces?x=1").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.path.as_str()), ("::1", 80, "/otlp/traces?x=1"));
        assert_eq!(e.authority, "[::1]");
        for bad in ["https://collector:4318/v1/traces", "collector:4318", "/v1/traces", "http://u:p@h/", "not a url"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn outside_a_runtime_the_tracer_only_propagates_and_says_why() {
        let said = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = {
            let said = said.clone();
            move |line: &str| said.lock().unwrap().push(line.to_string())
        };
        let settings = Settings { otlp_endpoint: Some("http://127.0.0.1:4318".into()), ..Settings::default() };
        let tracer = Tracer::start(&settings, log);
        assert!(!tracer.is_exporting());
        assert_eq!(said.lock().unwrap().len(), 1);
    }
}
