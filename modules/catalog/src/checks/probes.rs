//! One run of an HTTP, TCP or script check, with Consul's outcome rules and output
//! texts (contract §1.3): HTTP 2xx passing, 429 warning, anything else critical; TCP
//! connect passing; script exit 0 passing, 1 warning, else critical. The HTTP client
//! is a small HTTP/1.1 one over a plain TCP stream (no keep-alive, as Consul); a
//! script is run directly, never through a shell.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use plugin_api::tokio::io::{AsyncReadExt, AsyncWriteExt};
use plugin_api::tokio::net::TcpStream;
use plugin_api::tokio::time::timeout;

use crate::decode::OUTPUT_MAX;

/// A run's status and output.
pub type Outcome = (&'static str, String);

fn truncate(mut text: String) -> String {
    if text.len() > OUTPUT_MAX {
        let mut cut = OUTPUT_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// `http://host:port/path?q` → (`host:port`, `/path?q`).
fn split_url(url: &str) -> Result<(String, String), String> {
    if url.starts_with("https://") {
        return Err("HTTPS checks are not supported by this agent: use an http:// URL or a TCP check".into());
    }
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("unsupported URL {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string()))
}

fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4)
}

/// Whether a response read so far is complete (by Content-Length or the last chunk).
fn complete(buf: &[u8]) -> bool {
    let Some(end) = header_end(buf) else { return false };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let body = &buf[end..];
    if let Some(len) = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok())
    {
        return body.len() >= len;
    }
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    false
}

pub async fn http(
    url: &str,
    method: &str,
    header: &BTreeMap<String, Vec<String>>,
    body: &str,
    limit: Duration,
) -> Outcome {
    let run = async {
        let (authority, path) = split_url(url)?;
        let mut stream = TcpStream::connect(&authority).await.map_err(|e| e.to_string())?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: Consul Health Check\r\n\
             Accept: text/plain, text/*, */*\r\nConnection: close\r\n"
        );
        for (name, values) in header {
            for value in values {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > 64 * 1024 || complete(&buf) {
                break;
            }
        }
        Ok::<Vec<u8>, String>(buf)
    };
    let buf = match timeout(limit, run).await {
        Ok(Ok(buf)) => buf,
        Ok(Err(e)) => return ("critical", truncate(format!("Get \"{url}\": {e}"))),
        Err(_) => {
            return (
                "critical",
                format!("Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"),
            );
        }
    };
    let text = String::from_utf8_lossy(&buf);
    let status_line = text.lines().next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (_, code, reason) = (parts.next(), parts.next().and_then(|c| c.parse::<u16>().ok()), parts.next());
    let Some(code) = code else {
        return ("critical", truncate(format!("Get \"{url}\": malformed HTTP response {status_line:?}")));
    };
    let body = header_end(&buf).map(|at| String::from_utf8_lossy(&buf[at..]).into_owned()).unwrap_or_default();
    let output = truncate(format!("HTTP {method} {url}: {code} {} Output: {body}", reason.unwrap_or_default()));
    let status = match code {
        200..=299 => "passing",
        429 => "warning",
        _ => "critical",
    };
    (status, output)
}

pub async fn tcp(address: &str, limit: Duration) -> Outcome {
    match timeout(limit, TcpStream::connect(address)).await {
        Ok(Ok(_)) => ("passing", format!("TCP connect {address}: Success")),
        Ok(Err(e)) => ("critical", format!("dial tcp {address}: {e}")),
        Err(_) => ("critical", format!("dial tcp {address}: i/o timeout")),
    }
}

pub async fn script(args: &[String], limit: Duration) -> Outcome {
    let Some((program, rest)) = args.split_first() else { return ("critical", "no program to run".into()) };
    let child = tokio::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) => return ("critical", format!("Failed to run {program:?}: {e}")),
    };
    match timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            let status = match out.status.code() {
                Some(0) => "passing",
                Some(1) => "warning",
                _ => "critical",
            };
            (status, truncate(text))
        }
        Ok(Err(e)) => ("critical", format!("Failed to run {program:?}: {e}")),
        Err(_) => ("critical", format!("Timed out ({}s) running check", limit.as_secs_f64())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_and_https_is_refused() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/health?x=1").unwrap(),
            ("127.0.0.1:8080".into(), "/health?x=1".into())
        );
        assert_eq!(split_url("http://example").unwrap(), ("example:80".into(), "/".into()));
        assert!(split_url("https://x/").unwrap_err().contains("HTTPS"));
    }

    #[test]
    fn responses_are_complete_by_length_or_last_chunk() {
        assert!(complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
        assert!(!complete(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok"));
        assert!(complete(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"));
    }

    #[test]
    fn a_real_server_answers_an_http_and_a_tcp_check() {
        plugin_api::testing::run(async {
            let listener = plugin_api::tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            plugin_api::tokio::spawn(async move {
                for status in ["200 OK", "429 Too Many Requests", "503 Service Unavailable"] {
                    let (mut s, _) = listener.accept().await.unwrap();
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let body = "fine";
                    let reply = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    s.write_all(reply.as_bytes()).await.unwrap();
                }
            });
            let url = format!("http://{addr}/h");
            let none = BTreeMap::new();
            let (status, output) = http(&url, "GET", &none, "", Duration::from_secs(2)).await;
            assert_eq!(status, "passing");
            assert_eq!(output, format!("HTTP GET {url}: 200 OK Output: fine"));
            assert_eq!(http(&url, "GET", &none, "", Duration::from_secs(2)).await.0, "warning");
            assert_eq!(http(&url, "GET", &none, "", Duration::from_secs(2)).await.0, "critical");
            assert_eq!(tcp("127.0.0.1:1", Duration::from_secs(2)).await.0, "critical");
        })
    }

    #[test]
    fn scripts_map_exit_codes() {
        plugin_api::testing::run(async {
            async fn run(code: &str) -> Outcome {
                let args = ["/bin/sh".to_string(), "-c".into(), format!("echo hi; exit {code}")];
                script(&args, Duration::from_secs(5)).await
            }
            assert_eq!(run("0").await, ("passing", "hi\n".into()));
            assert_eq!(run("1").await.0, "warning");
            assert_eq!(run("2").await.0, "critical");
            assert!(script(&["/nonexistent/x".into()], Duration::from_secs(1)).await.1.starts_with("Failed to run"));
        })
    }
}
