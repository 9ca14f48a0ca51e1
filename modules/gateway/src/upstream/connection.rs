//! One upstream HTTP/1.1 connection in use, driven by the request that uses it (no task
//! of its own, no cross-task wake-ups): the request head is written into the
//! connection's reusable write buffer and sent with a small held body in one write; the
//! response head is read into its reusable read buffer and parsed there; the body is
//! handed out as slices of that buffer while the server half relays it. The connection
//! goes back to its pool when the body was read to its end and the upstream keeps it
//! alive; one given up mid-body is dropped, which closes it. A large or streamed request
//! body is sent while the response head is watched for, so an upstream that answers
//! early (a 413) and closes has its answer relayed. A 101 hands the socket over whole
//! for the protocol it switched to (WebSocket).

use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::UpstreamError;
use super::framing::{Framing, Piece};
use super::pool::Pool;
use super::request_head::{BodyLength, RequestHead};
use super::response_head::{self, ResponseHead};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Room made in the read buffer when it runs low: a typical response in one read.
const READ_CHUNK: usize = 16 * 1024;
/// Reads go into what is left of the buffer while this much is: the heads and bodies
/// handed out are slices of it, and those of the previous response may still be queued
/// at the client's side, so making room each time would allocate a buffer per request.
const READ_ROOM: usize = 4 * 1024;

/// Makes room for the next read only when little is left.
fn make_room(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < READ_ROOM {
        buf.reserve(READ_CHUNK);
    }
}
/// A held body up to this size goes out in the head's write.
const INLINE_BODY: usize = 16 * 1024;

/// What a try sends after its head.
pub enum RequestBody {
    Empty,
    /// A body held in memory: any try may send it again.
    Held(Bytes),
    /// The client's stream, with its declared length (else it goes out chunked).
    Stream {
        body: UnsyncBoxBody<Bytes, BoxError>,
        length: Option<u64>,
    },
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestBody::Empty => f.write_str("Empty"),
            RequestBody::Held(bytes) => write!(f, "Held({} bytes)", bytes.len()),
            RequestBody::Stream { length, .. } => write!(f, "Stream(length {length:?})"),
        }
    }
}

impl RequestBody {
    fn length(&self, head: &RequestHead<'_>) -> BodyLength {
        match self {
            // As hyper's client did: a zero length where a body is expected (where the
            // client declared one, the head's writing adds it: it reads every field).
            RequestBody::Empty if matches!(*head.method, Method::POST | Method::PUT | Method::PATCH) => {
                BodyLength::Length(0)
            }
            RequestBody::Empty => BodyLength::None,
            RequestBody::Held(bytes) => BodyLength::Length(bytes.len() as u64),
            RequestBody::Stream { length: Some(n), .. } => BodyLength::Length(*n),
            RequestBody::Stream { length: None, .. } => BodyLength::Chunked,
        }
    }
}

/// Counts a connection as open until it is dropped.
#[derive(Debug)]
pub struct OpenCount(Arc<AtomicUsize>);

impl OpenCount {
    pub fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(open))
    }
}

impl Drop for OpenCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A kept-alive connection with its buffers, reused by every request it carries.
#[derive(Debug)]
pub struct Link {
    stream: TcpStream,
    read_buf: BytesMut,
    write_buf: Vec<u8>,
    /// Held for its drop: the connection counts as open while this lives.
    open: OpenCount,
}

impl Link {
    pub fn new(stream: TcpStream, open: OpenCount) -> Self {
        Self { stream, read_buf: BytesMut::with_capacity(READ_CHUNK), write_buf: Vec::with_capacity(1024), open }
    }

    /// Whether an idle connection can take another request: nothing stray was read and
    /// the upstream has not closed it. The probe reads only when the reactor saw the
    /// socket readable; an idle socket with nothing to say costs no system call.
    pub fn reusable(&mut self) -> bool {
        if !self.read_buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == ErrorKind::WouldBlock)
    }
}

/// Why a send failed.
#[derive(Debug)]
pub enum SendError {
    /// The connection failed before the request head left whole: the body comes back
    /// intact and the request may go on another connection.
    NotSent(RequestBody),
    /// The request left; the upstream reset, closed or broke the response.
    Sent(UpstreamError),
}

/// A connection checked out of the pool (or just made) for one request.
#[derive(Debug)]
pub struct UpstreamConnection {
    pub(super) link: Link,
    pub(super) pool: Arc<Pool>,
}

impl UpstreamConnection {
    /// Sends the request and reads the response head; the response body gives the
    /// connection back when read to its end.
    pub async fn send(mut self, head: &RequestHead<'_>, body: RequestBody) -> Result<Response<PooledBody>, SendError> {
        let link = &mut self.link;
        link.write_buf.clear();
        head.write(body.length(head), &mut link.write_buf);
        if let RequestBody::Held(bytes) = &body
            && bytes.len() <= INLINE_BODY
        {
            link.write_buf.extend_from_slice(bytes);
        }
        if link.stream.write_all(&link.write_buf).await.is_err() {
            return Err(SendError::NotSent(body));
        }
        let rest = match body {
            RequestBody::Held(bytes) if bytes.len() > INLINE_BODY => Some(Rest::Held(bytes)),
            RequestBody::Stream { body, length } => Some(Rest::Stream { body, chunked: length.is_none() }),
            _ => None,
        };
        let (parsed, body_sent) = match rest {
            None => (read_head(&mut link.stream, &mut link.read_buf, head.method).await, true),
            // Boxed: large and streamed bodies are rare, and every request's future would
            // carry the size of this one (it is moved, whole, a few times per request).
            Some(rest) => match Box::pin(send_rest_watching(link, rest, head.method)).await {
                Ok((parsed, body_sent)) => (Ok(parsed), body_sent),
                Err(e) => (Err(e), false),
            },
        };
        let parsed = parsed.map_err(SendError::Sent)?;
        let mut response = Response::new(PooledBody {
            framing: parsed.framing,
            // A body cut short by an early answer leaves the connection out of step.
            keep_alive: parsed.keep_alive && body_sent,
            switched: parsed.status == StatusCode::SWITCHING_PROTOCOLS,
            connection: Some(self),
        });
        *response.status_mut() = parsed.status;
        *response.version_mut() = parsed.version;
        *response.headers_mut() = parsed.headers;
        Ok(response)
    }
}

/// The part of a request body that goes after the head's write.
enum Rest {
    Held(Bytes),
    Stream { body: UnsyncBoxBody<Bytes, BoxError>, chunked: bool },
}

/// Sends the rest of the body while reading the response head: an upstream may answer
/// before it has read the whole body (a 413, say) and close, which fails the write. An
/// early error answer, or one that closes the connection, is the try's response and
/// the rest of the body is not sent; an early success waits for the body to go whole
/// (the upstream may still be reading it). True with the head when the body went whole.
async fn send_rest_watching(
    link: &mut Link,
    rest: Rest,
    method: &Method,
) -> Result<(ResponseHead, bool), UpstreamError> {
    let Link { stream, read_buf, write_buf, .. } = link;
    let (mut reader, mut writer) = stream.split();
    let sending = async {
        match rest {
            Rest::Held(bytes) => Ok(writer.write_all(&bytes).await?),
            Rest::Stream { body, chunked } => stream_body(&mut writer, write_buf, body, chunked).await,
        }
    };
    let reading = read_head(&mut reader, read_buf, method);
    tokio::pin!(sending, reading);
    let mut write_failed = None;
    let mut sent = false;
    loop {
        tokio::select! {
            written = &mut sending, if !sent && write_failed.is_none() => match written {
                Ok(()) => sent = true,
                // The client's body broke: nothing more will come from either side.
                Err(e @ UpstreamError::RequestBody(_)) => return Err(e),
                // The upstream stopped reading; what it answered first may still be read.
                Err(e) => write_failed = Some(e),
            },
            parsed = &mut reading => {
                let parsed = match parsed {
                    Ok(parsed) => parsed,
                    // Neither the body nor an answer got through: a failed write says why.
                    Err(e) => return Err(write_failed.unwrap_or(e)),
                };
                if !sent && write_failed.is_none() && parsed.status.is_success() && parsed.keep_alive {
                    sending.await?;
                    return Ok((parsed, true));
                }
                return Ok((parsed, sent));
            }
        }
    }
}

/// Sends the client's streamed body as it arrives, chunked when its length is unknown.
async fn stream_body(
    writer: &mut (impl AsyncWrite + Unpin),
    write_buf: &mut Vec<u8>,
    mut body: UnsyncBoxBody<Bytes, BoxError>,
    chunked: bool,
) -> Result<(), UpstreamError> {
    use std::io::Write;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(UpstreamError::RequestBody)?;
        // Trailers of the client's body are not forwarded.
        let Ok(data) = frame.into_data() else { continue };
        if data.is_empty() {
            continue;
        }
        if chunked {
            write_buf.clear();
            let _ = write!(write_buf, "{:x}\r\n", data.len());
            write_buf.extend_from_slice(&data);
            write_buf.extend_from_slice(b"\r\n");
            writer.write_all(write_buf).await?;
        } else {
            writer.write_all(&data).await?;
        }
    }
    if chunked {
        writer.write_all(b"0\r\n\r\n").await?;
    }
    Ok(())
}

/// Reads until a final response head (or a 101) is complete; other 1xx heads
/// (`100 Continue`, `103 Early Hints`) are skipped.
async fn read_head(
    reader: &mut (impl AsyncRead + Unpin),
    read_buf: &mut BytesMut,
    method: &Method,
) -> Result<ResponseHead, UpstreamError> {
    loop {
        // A connection's read buffer is empty when a request starts (its last response
        // was read whole): nothing to parse before the first read.
        while !read_buf.is_empty()
            && let Some(parsed) = response_head::parse(read_buf, method)?
        {
            if parsed.status == StatusCode::SWITCHING_PROTOCOLS || !parsed.status.is_informational() {
                return Ok(parsed);
            }
        }
        make_room(read_buf);
        if reader.read_buf(read_buf).await? == 0 {
            return Err(UpstreamError::Closed("before the response head was complete"));
        }
    }
}

/// The socket of a connection that switched protocols, with what was read past the 101.
#[derive(Debug)]
pub struct Switched {
    pub stream: TcpStream,
    pub already_read: Bytes,
    /// Counts the connection as open while the tunnel runs.
    pub open: OpenCount,
}

/// An upstream response body, read from its connection by whoever polls it (the
/// server half, on the request's task); the connection goes back to the pool at its end.
#[derive(Debug)]
pub struct PooledBody {
    framing: Framing,
    keep_alive: bool,
    /// A 101: the connection is the tunnel's, never the pool's.
    switched: bool,
    /// `None` once given back, closed, or handed to a tunnel.
    connection: Option<UpstreamConnection>,
}

impl PooledBody {
    /// The socket of a 101's connection, for the tunnel.
    pub fn take_switched(&mut self) -> Option<Switched> {
        if !self.switched {
            return None;
        }
        let UpstreamConnection { link, .. } = self.connection.take()?;
        let Link { stream, mut read_buf, open, .. } = link;
        Some(Switched { stream, already_read: read_buf.split().freeze(), open })
    }

    /// The body has ended: the connection is idle again if the upstream keeps it alive
    /// and sent nothing past the body.
    fn give_back(&mut self) {
        if let Some(connection) = self.connection.take()
            && self.keep_alive
            && !self.switched
            && connection.link.read_buf.is_empty()
        {
            connection.pool.checkin(connection.link);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = UpstreamError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, UpstreamError>>> {
        let this = &mut *self;
        loop {
            let Some(connection) = this.connection.as_mut() else { return Poll::Ready(None) };
            let link = &mut connection.link;
            let piece = match this.framing.next(&mut link.read_buf) {
                Ok(Piece::NeedMore) => {
                    make_room(&mut link.read_buf);
                    match ready!(tokio_util::io::poll_read_buf(Pin::new(&mut link.stream), cx, &mut link.read_buf)) {
                        Ok(0) => this.framing.at_close(),
                        Ok(_) => continue,
                        Err(e) => Err(e.into()),
                    }
                }
                other => other,
            };
            return match piece {
                Ok(Piece::Data(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Piece::End) => {
                    this.give_back();
                    Poll::Ready(None)
                }
                Ok(Piece::NeedMore) => continue,
                Err(e) => {
                    // Dropping the connection closes it.
                    this.connection = None;
                    Poll::Ready(Some(Err(e)))
                }
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing.is_done() || self.connection.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing.exact() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // The server half stops polling once the body says it ended (or never polls an
        // empty one): the connection still goes back. One dropped mid-body is closed.
        if self.framing.is_done() {
            self.give_back();
        }
    }
}
