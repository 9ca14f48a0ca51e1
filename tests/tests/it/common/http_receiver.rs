//! The server side of the tests' stand-in HTTP endpoints (webhook targets, an OTLP
//! collector): one request read off a connection — its request line and its
//! `Content-Length` body — so each receiver only says what it does with it.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// The next request on the connection: (request line, body); None once the client
/// closed it between requests.
pub async fn read_request<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<(String, Vec<u8>)> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).await.ok()? == 0 {
        return None;
    }
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some((request_line.trim_end().to_owned(), body))
}
