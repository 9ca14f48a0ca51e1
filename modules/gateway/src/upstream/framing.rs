//! How an upstream response body ends (RFC 9112 §6.3) and the decoder that cuts it out of
//! the connection's read buffer as it arrives: none (HEAD, 204, 304), `Content-Length`,
//! `Transfer-Encoding: chunked` (sizes by `httparse`, trailers read and dropped), or the
//! upstream closing the connection. Data leaves as slices of the read buffer, so a body
//! is streamed without being copied or held whole.

use bytes::{Buf, Bytes, BytesMut};

use super::error::UpstreamError;

/// A chunk-size line (with extensions) longer than this is refused.
const MAX_CHUNK_LINE: usize = 4096;
/// Trailer fields longer than this in total are refused.
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body, or a body read to its end.
    Done,
    /// This many bytes are still to come.
    Length(u64),
    Chunked(Chunk),
    /// The body runs until the upstream closes the connection.
    UntilClose,
}

/// Where a chunked body's decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes still to come.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// After the last (zero) chunk: trailer fields, then a blank line.
    Trailers,
}

/// What the decoder made of the bytes buffered so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    Data(Bytes),
    /// More bytes must be read before anything can be said.
    NeedMore,
    End,
}

impl Framing {
    /// Whether the body has been read to its end.
    pub fn is_done(&self) -> bool {
        matches!(self, Framing::Done | Framing::Length(0))
    }

    /// The exact length still to come, when the framing knows it.
    pub fn exact(&self) -> Option<u64> {
        match self {
            Framing::Done => Some(0),
            Framing::Length(n) => Some(*n),
            _ => None,
        }
    }

    /// Takes the next piece of the body out of `buf`.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Piece, UpstreamError> {
        loop {
            match self {
                Framing::Done | Framing::Length(0) => {
                    *self = Framing::Done;
                    return Ok(Piece::End);
                }
                Framing::Length(left) => return Ok(take(buf, left)),
                Framing::UntilClose => {
                    let all = buf.len() as u64;
                    return Ok(if all == 0 {
                        Piece::NeedMore
                    } else {
                        Piece::Data(buf.split_to(all as usize).freeze())
                    });
                }
                Framing::Chunked(chunk) => match chunk {
                    Chunk::Size => match httparse::parse_chunk_size(buf) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            buf.advance(used);
                            *chunk = if size == 0 { Chunk::Trailers } else { Chunk::Data(size) };
                        }
                        Ok(httparse::Status::Partial) if buf.len() > MAX_CHUNK_LINE => {
                            return Err(UpstreamError::Malformed("chunk-size line too long"));
                        }
                        Ok(httparse::Status::Partial) => return Ok(Piece::NeedMore),
                        Err(_) => return Err(UpstreamError::Malformed("invalid chunk size")),
                    },
                    Chunk::Data(left) => {
                        let piece = take(buf, left);
                        if *left == 0 {
                            *chunk = Chunk::DataEnd;
                        }
                        return Ok(piece);
                    }
                    Chunk::DataEnd => {
                        if buf.len() < 2 {
                            return Ok(Piece::NeedMore);
                        }
                        if &buf[..2] != b"\r\n" {
                            return Err(UpstreamError::Malformed("chunk data not followed by CRLF"));
                        }
                        buf.advance(2);
                        *chunk = Chunk::Size;
                    }
                    Chunk::Trailers => {
                        // Either the blank line at once, or fields ending in one.
                        let end = if buf.starts_with(b"\r\n") {
                            Some(2)
                        } else {
                            buf.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4)
                        };
                        match end {
                            Some(end) => {
                                buf.advance(end);
                                *self = Framing::Done;
                            }
                            None if buf.len() > MAX_TRAILERS => {
                                return Err(UpstreamError::Malformed("trailer section too large"));
                            }
                            None => return Ok(Piece::NeedMore),
                        }
                    }
                },
            }
        }
    }

    /// The upstream closed the connection: the end of a close-delimited body, an
    /// error for any other that is not complete.
    pub fn at_close(&mut self) -> Result<Piece, UpstreamError> {
        match self {
            Framing::UntilClose => {
                *self = Framing::Done;
                Ok(Piece::End)
            }
            _ if self.is_done() => Ok(Piece::End),
            _ => Err(UpstreamError::Closed("in the middle of the response body")),
        }
    }
}

/// Up to `left` buffered bytes, as a slice that shares the read buffer's memory.
fn take(buf: &mut BytesMut, left: &mut u64) -> Piece {
    if buf.is_empty() {
        return Piece::NeedMore;
    }
    let n = (*left).min(buf.len() as u64);
    *left -= n;
    Piece::Data(buf.split_to(n as usize).freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; the data decoded and whether it ended.
    fn decode(mut framing: Framing, input: &[u8], step: usize) -> Result<(Vec<u8>, bool, usize), UpstreamError> {
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        for piece in input.chunks(step) {
            buf.extend_from_slice(piece);
            loop {
                match framing.next(&mut buf)? {
                    Piece::Data(d) => data.extend_from_slice(&d),
                    Piece::NeedMore => break,
                    Piece::End => return Ok((data, true, buf.len())),
                }
            }
        }
        Ok((data, false, buf.len()))
    }

    #[test]
    fn a_content_length_body_ends_at_its_length_and_leaves_what_follows() {
        let (data, ended, left) = decode(Framing::Length(5), b"helloHTTP/1.1", 13).unwrap();
        assert_eq!((data.as_slice(), ended, left), (&b"hello"[..], true, 8));
        let (data, ended, _) = decode(Framing::Length(5), b"helloHTTP/1.1", 3).unwrap();
        assert_eq!((data.as_slice(), ended), (&b"hello"[..], true));
        let (data, ended, _) = decode(Framing::Length(10), b"hello", 5).unwrap();
        assert_eq!((data.as_slice(), ended), (&b"hello"[..], false));
    }

    #[test]
    fn chunked_bodies_decode_whole_and_split_across_reads_at_every_byte() {
        let wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT";
        for step in 1..wire.len() {
            let (data, ended, left) = decode(Framing::Chunked(Chunk::Size), wire, step).unwrap();
            assert_eq!(data, b"hello world", "step {step}");
            assert!(ended, "step {step}");
            // What follows the body stays for the next response (or is seen as stray).
            assert!(left <= 4, "step {step}");
        }
    }

    #[test]
    fn chunked_trailers_are_read_and_dropped() {
        let wire = b"3\r\nabc\r\n0\r\nx-checksum: 1\r\nx-more: 2\r\n\r\n";
        for step in [1, 7, wire.len()] {
            let (data, ended, left) = decode(Framing::Chunked(Chunk::Size), wire, step).unwrap();
            assert_eq!((data.as_slice(), ended, left), (&b"abc"[..], true, 0), "step {step}");
        }
    }

    #[test]
    fn broken_chunked_bodies_are_errors() {
        for wire in [&b"zz\r\nabc\r\n"[..], b"3\r\nabcXX0\r\n\r\n", b"ffffffffffffffffffff\r\n"] {
            let err = decode(Framing::Chunked(Chunk::Size), wire, wire.len()).unwrap_err();
            assert!(matches!(err, UpstreamError::Malformed(_)), "{err}");
        }
        let endless = vec![b'1'; MAX_CHUNK_LINE + 10];
        assert!(decode(Framing::Chunked(Chunk::Size), &endless, 100).is_err());
    }

    #[test]
    fn a_close_delimited_body_ends_only_when_the_upstream_closes() {
        let mut framing = Framing::UntilClose;
        let (data, ended, _) = decode(framing, b"all of it", 4).unwrap();
        assert_eq!((data.as_slice(), ended), (&b"all of it"[..], false));
        assert_eq!(framing.at_close().unwrap(), Piece::End);
        assert!(framing.is_done());
    }

    #[test]
    fn closing_mid_body_is_an_error_and_bodiless_responses_end_at_once() {
        assert!(matches!(Framing::Length(3).at_close(), Err(UpstreamError::Closed(_))));
        assert!(Framing::Chunked(Chunk::Data(2)).at_close().is_err());
        let mut none = Framing::Done;
        assert_eq!(none.next(&mut BytesMut::from(&b"x"[..])).unwrap(), Piece::End);
        assert_eq!(Framing::Length(0).exact(), Some(0));
        assert!(Framing::Length(0).is_done());
    }
}
