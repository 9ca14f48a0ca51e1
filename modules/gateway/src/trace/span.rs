//! A span's life: a server span per request (from the context it arrived with), a
//! client span per upstream try (its id is what goes upstream as the parent), ended
//! exactly once — by `end` or, for an aborted request, on drop — and handed to the
//! exporter without waiting. Sampling is parent-based; new traces follow the ratio.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};

use super::Tracer;
use super::context::{self, FLAG_SAMPLED, TRACEPARENT, TRACESTATE, TraceContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// The gateway serving a caller's request.
    Server,
    /// One try of that request against an upstream instance.
    Client,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
}

impl From<&str> for AttrValue {
    fn from(value: &str) -> Self {
        AttrValue::Str(value.to_string())
    }
}

impl From<String> for AttrValue {
    fn from(value: String) -> Self {
        AttrValue::Str(value)
    }
}

impl From<i64> for AttrValue {
    fn from(value: i64) -> Self {
        AttrValue::Int(value)
    }
}

impl From<u16> for AttrValue {
    fn from(value: u16) -> Self {
        AttrValue::Int(i64::from(value))
    }
}

impl From<u32> for AttrValue {
    fn from(value: u32) -> Self {
        AttrValue::Int(i64::from(value))
    }
}

impl From<usize> for AttrValue {
    fn from(value: usize) -> Self {
        AttrValue::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SpanStatus {
    #[default]
    Ok,
    Error(String),
}

/// An ended span, as the exporter sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    /// The parent is the caller's span (from `traceparent`), not one of ours.
    pub parent_is_remote: bool,
    /// The trace flags this span propagated.
    pub flags: u8,
    pub tracestate: Option<String>,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<(String, AttrValue)>,
    pub status: SpanStatus,
}

/// A span in progress. Its ids are always there for propagation; it records (and is
/// exported when it ends) only when the trace is sampled and the tracer exports.
#[derive(Debug)]
pub struct ActiveSpan {
    tracer: Tracer,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
    /// Shared with child spans: forwarded unchanged on every try.
    tracestate: Option<Arc<str>>,
    /// `None` when not recording, and once ended (so it ends only once).
    recording: Option<Recording>,
}

#[derive(Debug)]
struct Recording {
    span: Span,
    /// The end time is start + elapsed on the monotonic clock: a wall-clock step in
    /// the middle of a request cannot make a span negative.
    started: Instant,
}

fn unix_nanos_now() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

impl Tracer {
    /// The span of the gateway serving one request. A trace started here is sampled
    /// by `sample_ratio`; a continued one keeps the caller's `sampled` flag.
    pub fn server_span(&self, ctx: &TraceContext, name: &str) -> ActiveSpan {
        let flags = match ctx.parent_id {
            Some(_) => ctx.flags,
            None if self.samples_new_trace(&ctx.trace_id) => ctx.flags | FLAG_SAMPLED,
            None => ctx.flags & !FLAG_SAMPLED,
        };
        let tracestate = ctx.tracestate.as_deref().map(Arc::from);
        ActiveSpan::start(self.clone(), SpanKind::Server, name, ctx.trace_id, ctx.parent_id, flags, tracestate)
    }

    /// Head sampling of a trace started here, decided from the trace id's random
    /// rightmost 7 bytes (W3C level 2), so the same id always gets the same answer.
    fn samples_new_trace(&self, trace_id: &[u8; 16]) -> bool {
        let ratio = self.sample_ratio();
        if ratio >= 1.0 {
            return true;
        }
        if ratio.is_nan() || ratio <= 0.0 {
            return false;
        }
        let mut low = [0u8; 8];
        low[1..].copy_from_slice(&trace_id[9..]);
        let random = u64::from_be_bytes(low) as f64;
        random < ratio * (1u64 << 56) as f64
    }
}

impl ActiveSpan {
    fn start(
        tracer: Tracer,
        kind: SpanKind,
        name: &str,
        trace_id: [u8; 16],
        parent_span_id: Option<[u8; 8]>,
        flags: u8,
        tracestate: Option<Arc<str>>,
    ) -> ActiveSpan {
        let span_id = context::random_nonzero();
        let recording = (flags & FLAG_SAMPLED != 0 && tracer.is_exporting()).then(|| Recording {
            span: Span {
                trace_id,
                span_id,
                parent_span_id,
                parent_is_remote: kind == SpanKind::Server && parent_span_id.is_some(),
                flags,
                tracestate: tracestate.as_deref().map(str::to_string),
                name: name.to_string(),
                kind,
                start_unix_nanos: unix_nanos_now(),
                end_unix_nanos: 0,
                attributes: Vec::new(),
                status: SpanStatus::Ok,
            },
            started: Instant::now(),
        });
        ActiveSpan { tracer, trace_id, span_id, flags, tracestate, recording }
    }

    /// A client span under this one, for one upstream try.
    pub fn child(&self, name: &str) -> ActiveSpan {
        ActiveSpan::start(
            self.tracer.clone(),
            SpanKind::Client,
            name,
            self.trace_id,
            Some(self.span_id),
            self.flags,
            self.tracestate.clone(),
        )
    }

    /// Puts this span into outgoing headers as the parent: `traceparent` version 00
    /// with this span's id, and the incoming `tracestate` unchanged (any other
    /// `tracestate` is removed: it would not belong to this trace).
    pub fn inject(&self, headers: &mut HeaderMap) {
        if let Ok(value) = HeaderValue::from_str(&self.traceparent()) {
            headers.insert(TRACEPARENT, value);
        }
        match self.tracestate.as_deref().map(HeaderValue::from_str) {
            Some(Ok(value)) => {
                headers.insert(TRACESTATE, value);
            }
            _ => {
                headers.remove(TRACESTATE);
            }
        }
    }

    /// [`Self::traceparent`] on the stack, for a head written without strings.
    pub fn traceparent_bytes(&self) -> [u8; 55] {
        let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
        // Field by field into fixed slices: one chained iterator over all three ran a
        // few times slower (it is written on every try).
        put_hex(&mut out[3..35], &self.trace_id);
        put_hex(&mut out[36..52], &self.span_id);
        put_hex(&mut out[53..55], &[self.flags]);
        out
    }

    /// The incoming `tracestate`, forwarded unchanged.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// `00-<trace id>-<this span's id>-<flags>`, lower case.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", context::hex(&self.trace_id), context::hex(&self.span_id), self.flags)
    }

    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    pub fn trace_id_hex(&self) -> String {
        context::hex(&self.trace_id)
    }

    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    pub fn flags(&self) -> u8 {
        self.flags
    }

    pub fn is_sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// Whether attributes and status are kept (sampled, and there is an exporter).
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// Sets an attribute, replacing one of the same key. Free when not recording.
    pub fn set_attribute(&mut self, key: &str, value: impl Into<AttrValue>) {
        let Some(recording) = &mut self.recording else { return };
        let value = value.into();
        let attributes = &mut recording.span.attributes;
        match attributes.iter_mut().find(|(k, _)| k == key) {
            Some((_, old)) => *old = value,
            None => attributes.push((key.to_string(), value)),
        }
    }

    pub fn set_error(&mut self, message: impl Into<String>) {
        if let Some(recording) = &mut self.recording {
            recording.span.status = SpanStatus::Error(message.into());
        }
    }

    /// Ends the span now. Never waits: a full export queue drops it (counted).
    pub fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(Recording { mut span, started }) = self.recording.take() {
            let elapsed = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            span.end_unix_nanos = span.start_unix_nanos.saturating_add(elapsed);
            self.tracer.submit(span);
        }
    }
}

/// A request that is aborted (its future dropped) still records its spans.
impl Drop for ActiveSpan {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Lower-case hex of `bytes` into `out` (two digits a byte).
fn put_hex(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, &byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{FLAG_RANDOM_TRACE_ID, Settings};

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const PARENT: &str = "b7ad6b7169203331";

    fn incoming(flags: &str, tracestate: Option<&str>) -> TraceContext {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_str(&format!("00-{TRACE}-{PARENT}-{flags}")).unwrap());
        if let Some(state) = tracestate {
            headers.insert(TRACESTATE, HeaderValue::from_str(state).unwrap());
        }
        TraceContext::from_headers(&headers)
    }

    fn parts(traceparent: &str) -> Vec<String> {
        traceparent.split('-').map(str::to_string).collect()
    }

    #[test]
    fn a_child_carries_the_trace_a_new_parent_and_the_flags() {
        let tracer = Tracer::propagate_only();
        let server = tracer.server_span(&incoming("03", Some("rojo=00f067aa0ba902b7")), "GET /");
        let try_one = server.child("try 1");
        let try_two = server.child("try 2");
        let mut upstream = HeaderMap::new();
        upstream.insert(TRACESTATE, HeaderValue::from_static("stale=1"));
        upstream.append(TRACEPARENT, HeaderValue::from_static("00-stale-stale-00"));
        upstream.append(TRACEPARENT, HeaderValue::from_static("00-stale2-stale-00"));
        try_one.inject(&mut upstream);
        let sent = upstream.get(TRACEPARENT).unwrap().to_str().unwrap();
        assert_eq!(upstream.get_all(TRACEPARENT).iter().count(), 1);
        let fields = parts(sent);
        assert_eq!(fields, ["00", TRACE, &context::hex(&try_one.span_id()), "03"]);
        assert_ne!(fields[2], PARENT, "the caller's id is not reused");
        assert_ne!(try_one.span_id(), try_two.span_id());
        assert_ne!(try_one.span_id(), server.span_id());
        assert_eq!(upstream.get(TRACESTATE).unwrap(), "rojo=00f067aa0ba902b7");
        assert_eq!(sent.len(), 55);
    }

    #[test]
    fn an_unsampled_caller_stays_unsampled_and_still_propagates() {
        let tracer = Tracer::propagate_only();
        let server = tracer.server_span(&incoming("00", None), "GET /");
        let child = server.child("try");
        let mut upstream = HeaderMap::new();
        upstream.insert(TRACESTATE, HeaderValue::from_static("from=elsewhere"));
        child.inject(&mut upstream);
        assert_eq!(parts(upstream.get(TRACEPARENT).unwrap().to_str().unwrap())[3], "00");
        assert!(upstream.get(TRACESTATE).is_none(), "no tracestate came in, none goes out");
        assert!(!child.is_sampled());
    }

    #[test]
    fn new_traces_follow_the_sample_ratio_and_keep_random_trace_id() {
        let all = Tracer::propagate_only();
        let span = all.server_span(&TraceContext::new_trace(), "GET /");
        assert_eq!(span.flags(), FLAG_RANDOM_TRACE_ID | FLAG_SAMPLED);
        let child = span.child("try");
        assert_eq!(parts(&child.traceparent())[3], "03");
        assert_eq!(&child.traceparent_bytes()[..], child.traceparent().as_bytes());

        let none = Tracer::start(&Settings { sample_ratio: 0.0, ..Settings::default() }, |_| {});
        assert_eq!(none.server_span(&TraceContext::new_trace(), "GET /").flags(), FLAG_RANDOM_TRACE_ID);

        let half = Tracer::start(&Settings { sample_ratio: 0.5, ..Settings::default() }, |_| {});
        let sampled = (0..2000).filter(|_| half.server_span(&TraceContext::new_trace(), "x").is_sampled()).count();
        assert!((800..1200).contains(&sampled), "{sampled} of 2000 sampled at 0.5");
    }

    /// The proxy holds spans across `.await` in futures hyper runs on any worker.
    #[test]
    fn spans_and_tracers_can_cross_threads() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<Tracer>();
        send_and_sync::<ActiveSpan>();
    }

    #[test]
    fn without_an_exporter_nothing_records() {
        let tracer = Tracer::propagate_only();
        let mut span = tracer.server_span(&incoming("01", None), "GET /");
        assert!(span.is_sampled());
        assert!(!span.is_recording());
        span.set_attribute("http.response.status_code", 200u16);
        span.end();
        assert_eq!(tracer.stats(), Default::default());
    }
}
