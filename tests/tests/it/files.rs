//! The file manager through the real host: in-root operations end to end (upload, list,
//! stat, download, move, mkdir, delete), every kind of escape refused with 400/403 and
//! nothing outside app_root read or changed, auth required, uploads limited and audited.
//!
//! Raw-body uploads go over a hand-written HTTP/1.1 request: the CLI's client only
//! sends JSON bodies.

use crate::common;

use std::net::SocketAddr;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use apollo_host::cli::ApiClient;
use common::Deployment;
use http::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response read off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// How a raw request carries its body.
enum BodyMode<'a> {
    /// `Content-Length` and the bytes.
    Length(&'a [u8]),
    /// `Transfer-Encoding: chunked`, in two chunks (the server cannot know the size).
    Chunked(&'a [u8]),
    /// Announces `Content-Length: n` and sends nothing: the server must answer from the
    /// headers alone.
    AnnounceOnly(u64),
    /// A `multipart/form-data` body with this boundary.
    Multipart(&'a [u8], &'a str),
}

async fn raw(addr: SocketAddr, method: &str, target: &str, token: Option<&str>, body: BodyMode<'_>) -> Raw {
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    match body {
        BodyMode::Multipart(_, boundary) => {
            request.push_str(&format!("Content-Type: multipart/form-data; boundary={boundary}\r\n"))
        }
        _ => request.push_str("Content-Type: application/octet-stream\r\n"),
    }
    if let Some(t) = token {
        request.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let mut bytes = Vec::new();
    match body {
        BodyMode::Length(b) | BodyMode::Multipart(b, _) => {
            request.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()));
            bytes.extend_from_slice(request.as_bytes());
            bytes.extend_from_slice(b);
        }
        BodyMode::Chunked(b) => {
            request.push_str("Transfer-Encoding: chunked\r\n\r\n");
            bytes.extend_from_slice(request.as_bytes());
            let (first, second) = b.split_at(b.len() / 2);
            for chunk in [first, second] {
                bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                bytes.extend_from_slice(chunk);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
        }
        BodyMode::AnnounceOnly(n) => {
            request.push_str(&format!("Content-Length: {n}\r\n\r\n"));
            bytes.extend_from_slice(request.as_bytes());
        }
    }
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // One write: a server that answers without reading the body must not see a reset.
    let _ = stream.write_all(&bytes).await;
    let mut response = Vec::new();
    // Read until the server closes; a reset after the response still leaves what came.
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(30), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => response.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no answer to {method} {target} within 30 s"),
        }
    }
    parse_response(&response)
}

fn parse_response(bytes: &[u8]) -> Raw {
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Raw { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

/// Percent-encodes a query value (everything but unreserved characters).
fn q(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn header<'a>(r: &'a Raw, name: &str) -> &'a str {
    r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// Every file under `dir`, recursively, relative (to spot anything created or left over).
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

struct Ctx {
    client: ApiClient,
    token: String,
    addr: SocketAddr,
}

impl Ctx {
    async fn put(&self, path: &str, body: &[u8]) -> Raw {
        raw(
            self.addr,
            "PUT",
            &format!("/api/files/content?path={}", q(path)),
            Some(&self.token),
            BodyMode::Length(body),
        )
        .await
    }

    async fn get(&self, route: &str, path: &str) -> apollo_host::cli::RawResponse {
        self.client.send(Method::GET, &format!("{route}?path={}", q(path)), None).await.unwrap()
    }
}

async fn ctx(host: &common::TestHost) -> Ctx {
    let token = host.login().await;
    Ctx { client: host.tcp().with_token(Some(token.clone())), token, addr: host.host.http_addr }
}

#[tokio::test]
async fn in_root_operations_work_end_to_end() {
    let d = Deployment::new();
    let app = d.root().join("app");
    let host = d.start().await;
    let c = ctx(&host).await;

    let made = c.client.send(Method::POST, "/api/files/mkdir", Some(&json!({"path": "site/static"}))).await.unwrap();
    assert_eq!(made.status, 201, "{:?}", made.json());
    assert_eq!(made.json()["entry"]["type"], "dir");
    let again = c.client.send(Method::POST, "/api/files/mkdir", Some(&json!({"path": "site/static/"}))).await.unwrap();
    assert_eq!((again.status.as_u16(), again.json()["created"].clone()), (200, json!(false)));

    // Every byte value, and a name with a space and non-ASCII.
    let content: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let name = "site/static/hello wörld.bin";
    let up = c.put(name, &content).await;
    assert_eq!(up.status, 201, "{}", String::from_utf8_lossy(&up.body));
    let up = up.json();
    assert_eq!(up["created"], true);
    assert_eq!(up["entry"]["size"], 70_000);
    assert_eq!(up["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(std::fs::read(app.join(name)).unwrap(), content);
    let replaced = c.put(name, &content).await;
    assert_eq!((replaced.status, replaced.json()["created"].clone()), (200, json!(false)));

    let listing = c.get("/api/files", "site/static").await;
    assert_eq!(listing.status, 200);
    let listing = listing.json();
    let entries = listing["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "no temporary file left: {listing}");
    let e = &entries[0];
    assert_eq!(
        (e["name"].as_str(), e["path"].as_str(), e["type"].as_str()),
        (Some("hello wörld.bin"), Some(name), Some("file"))
    );
    assert_eq!(e["size"], 70_000);
    assert_eq!(e["mode"], "0644");
    let mtime = e["mtime"].as_str().unwrap();
    assert!(mtime.ends_with('Z') && mtime.contains('T'), "RFC 3339: {mtime}");
    let top = c.client.send(Method::GET, "/api/files", None).await.unwrap().json();
    let names: Vec<&str> = top["entries"].as_array().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
    assert!(names.contains(&"site") && names.contains(&".octopus"), "{names:?}");

    let st = c.get("/api/files/stat", name).await;
    assert_eq!(
        (st.status.as_u16(), st.json()["type"].clone(), st.json()["size"].clone()),
        (200, json!("file"), json!(70_000))
    );

    let down = c.get("/api/files/content", name).await;
    assert_eq!(down.status, 200);
    assert_eq!(down.headers["content-type"], "application/octet-stream");
    let disposition = down.headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(disposition.contains("filename*=UTF-8''hello%20w%C3%B6rld.bin"), "{disposition}");
    assert_eq!(down.body.as_ref(), content.as_slice(), "download equals upload");

    let moved = c
        .client
        .send(Method::POST, "/api/files/move", Some(&json!({"from": name, "to": "site/renamed.bin"})))
        .await
        .unwrap();
    assert_eq!(moved.status, 200, "{:?}", moved.json());
    assert_eq!(moved.json()["path"], "site/renamed.bin");
    assert_eq!(c.get("/api/files/stat", name).await.status, 404);
    assert_eq!(c.get("/api/files/content", "site/renamed.bin").await.body.as_ref(), content.as_slice());
    c.put("site/other", b"x").await;
    let clash = json!({"from": "site/other", "to": "site/renamed.bin"});
    assert_eq!(c.client.send(Method::POST, "/api/files/move", Some(&clash)).await.unwrap().status, 409);

    // A replaced script keeps its mode: re-uploading start.sh must not drop +x.
    c.put("site/start.sh", b"#!/bin/sh\n").await;
    std::fs::set_permissions(app.join("site/start.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = c.put("site/start.sh", b"#!/bin/sh\nexit 0\n").await;
    assert_eq!(script.json()["entry"]["mode"], "0755");

    let not_empty = c.client.send(Method::DELETE, "/api/files?path=site", None).await.unwrap();
    assert_eq!(not_empty.status, 409, "{:?}", not_empty.json());
    let file_gone = c.client.send(Method::DELETE, "/api/files?path=site/other", None).await.unwrap();
    assert_eq!((file_gone.status.as_u16(), file_gone.json()["type"].clone()), (200, json!("file")));
    let gone = c.client.send(Method::DELETE, "/api/files?path=site&recursive=true", None).await.unwrap();
    assert_eq!((gone.status.as_u16(), gone.json()["type"].clone()), (200, json!("dir")));
    assert!(!app.join("site").exists());
    assert_eq!(c.get("/api/files", "site").await.status, 404);
    for root in ["", ".", "./"] {
        let r = c.client.send(Method::DELETE, &format!("/api/files?path={root}&recursive=true"), None).await.unwrap();
        assert!(matches!(r.status.as_u16(), 400 | 403), "removing the root as {root:?}: {}", r.status);
    }
    assert!(app.join(".octopus").is_dir(), "the root and its contents survive");
    host.shutdown().await;
}

#[tokio::test]
async fn escapes_are_refused_and_nothing_outside_changes() {
    let d = Deployment::new();
    let app = d.root().join("app");
    let outside = d.root().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), b"top secret").unwrap();
    std::fs::create_dir_all(app.join("d")).unwrap();
    std::fs::write(app.join("d/ok.txt"), b"ok").unwrap();
    symlink(&outside, app.join("link_out")).unwrap();
    symlink(outside.join("secret.txt"), app.join("secret_link")).unwrap();
    symlink("../../outside", app.join("d/rel_out")).unwrap();
    let before = tree(&outside);
    let host = d.start().await;
    let c = ctx(&host).await;

    // (path, status, why); every operation must refuse each of them.
    let cases: &[(&str, u16, &str)] = &[
        ("..", 403, "parent of the root"),
        ("../../etc/passwd", 403, "dot-dot"),
        ("d/../../outside/secret.txt", 403, "dot-dot after a name"),
        ("/etc/passwd", 403, "absolute"),
        ("d/ok.txt\0.png", 400, "NUL byte"),
        ("d//ok.txt", 400, "empty component"),
        ("link_out/secret.txt", 403, "through a directory symlink to outside"),
        ("link_out/new.txt", 403, "new file through a directory symlink"),
        ("d/rel_out/secret.txt", 403, "through a relative symlink to outside"),
    ];
    for &(path, status, why) in cases {
        let code = if status == 403 { "forbidden" } else { "bad_request" };
        let mut outcomes = Vec::new();
        for route in ["/api/files", "/api/files/stat", "/api/files/content"] {
            let r = c.get(route, path).await;
            outcomes.push((format!("GET {route}"), r.status.as_u16(), r.json()));
        }
        let r = c.put(path, b"pwned").await;
        outcomes.push(("PUT content".into(), r.status, r.json()));
        for (label, route, body) in [
            ("mkdir", "/api/files/mkdir", json!({"path": format!("{path}/sub")})),
            ("move from", "/api/files/move", json!({"from": path, "to": "d/moved"})),
            ("move to", "/api/files/move", json!({"from": "d/ok.txt", "to": path})),
        ] {
            let r = c.client.send(Method::POST, route, Some(&body)).await.unwrap();
            outcomes.push((label.into(), r.status.as_u16(), r.json()));
        }
        let r =
            c.client.send(Method::DELETE, &format!("/api/files?path={}&recursive=true", q(path)), None).await.unwrap();
        outcomes.push(("DELETE".into(), r.status.as_u16(), r.json()));
        for (op, got, body) in outcomes {
            assert_eq!(got, status, "{op} {path:?} ({why}): {body}");
            assert_eq!(body["error"]["code"], code, "{op} {path:?}: {body}");
            assert!(!body["error"]["message"].as_str().unwrap_or("").is_empty());
        }
    }

    // The NUL byte as a client would send it, percent-encoded in the query.
    let nul = c.client.send(Method::GET, "/api/files/content?path=d%2Fok.txt%00", None).await.unwrap();
    assert_eq!(nul.status, 400);
    assert!(nul.json()["error"]["message"].as_str().unwrap().contains("NUL"), "{:?}", nul.json());
    let encoded =
        c.client.send(Method::GET, "/api/files/content?path=%2e%2e%2foutside%2fsecret.txt", None).await.unwrap();
    assert_eq!(encoded.status, 403);

    // The symlinks themselves: read, write and list through them are refused...
    for route in ["/api/files/content", "/api/files/stat"] {
        assert_eq!(c.get(route, "secret_link").await.status, 403, "{route} secret_link");
    }
    let listed = c.get("/api/files", "link_out").await;
    assert_eq!(listed.status, 403, "listing a symlinked directory outside");
    assert!(!String::from_utf8_lossy(&listed.body).contains("secret.txt"));
    let through = c.put("secret_link", b"overwritten").await;
    assert_eq!(through.status, 403, "writing through a file symlink");
    // ...and the listing of app_root shows them as links.
    let top = c.client.send(Method::GET, "/api/files", None).await.unwrap().json();
    let link = top["entries"].as_array().unwrap().iter().find(|e| e["name"] == "link_out").unwrap().clone();
    assert_eq!(link["type"], "symlink");

    assert_eq!(std::fs::read(outside.join("secret.txt")).unwrap(), b"top secret");
    assert_eq!(tree(&outside), before, "nothing was created, moved or removed outside app_root");
    assert_eq!(std::fs::read(app.join("d/ok.txt")).unwrap(), b"ok");

    // Removing a link removes the link, never what it points to.
    let unlinked = c.client.send(Method::DELETE, "/api/files?path=link_out&recursive=true", None).await.unwrap();
    assert_eq!((unlinked.status.as_u16(), unlinked.json()["type"].clone()), (200, json!("symlink")));
    assert!(std::fs::symlink_metadata(app.join("link_out")).is_err());
    assert_eq!(tree(&outside), before);
    host.shutdown().await;
}

#[tokio::test]
async fn unauthenticated_calls_are_refused() {
    let d = Deployment::new();
    std::fs::write(d.root().join("app/a.txt"), b"a").unwrap();
    let host = d.start().await;
    let anonymous = host.tcp();
    for (method, path, body) in [
        (Method::GET, "/api/files", None),
        (Method::GET, "/api/files/stat?path=a.txt", None),
        (Method::GET, "/api/files/content?path=a.txt", None),
        (Method::POST, "/api/files/mkdir", Some(json!({"path": "x"}))),
        (Method::POST, "/api/files/move", Some(json!({"from": "a.txt", "to": "b.txt"}))),
        (Method::DELETE, "/api/files?path=a.txt", None),
    ] {
        let r = anonymous.send(method.clone(), path, body.as_ref()).await.unwrap();
        assert_eq!(r.status, 401, "{method} {path}");
        assert_eq!(r.json()["error"]["code"], "unauthorized");
    }
    let put = raw(host.host.http_addr, "PUT", "/api/files/content?path=new.txt", None, BodyMode::Length(b"x")).await;
    assert_eq!(put.status, 401);
    let forged =
        raw(host.host.http_addr, "PUT", "/api/files/content?path=new.txt", Some("apo_forged"), BodyMode::Length(b"x"))
            .await;
    assert_eq!(forged.status, 401);
    assert_eq!(tree(&d.root().join("app")), [".octopus", "a.txt"], "nothing changed");
    host.shutdown().await;
}

#[tokio::test]
async fn uploads_are_limited_and_audited() {
    let d = Deployment::with(json!({"files": {"max_upload_bytes": 4096}}));
    let app = d.root().join("app");
    let host = d.start().await;
    let c = ctx(&host).await;
    let big = vec![b'x'; 5000];
    let target = "/api/files/content?path=big.bin";

    let announced = raw(c.addr, "PUT", target, Some(&c.token), BodyMode::AnnounceOnly(5000)).await;
    assert_eq!(
        announced.status,
        413,
        "refused from Content-Length alone: {}",
        String::from_utf8_lossy(&announced.body)
    );
    assert_eq!(announced.json()["error"]["code"], "payload_too_large");
    let streamed = raw(c.addr, "PUT", target, Some(&c.token), BodyMode::Chunked(&big)).await;
    assert_eq!(streamed.status, 413, "counted while streaming: {}", String::from_utf8_lossy(&streamed.body));
    assert_eq!(tree(&app), [".octopus"], "no file and no temporary file left behind");

    let fits =
        raw(c.addr, "PUT", "/api/files/content?path=small.bin", Some(&c.token), BodyMode::Chunked(&big[..4096])).await;
    assert_eq!(fits.status, 201, "{}", String::from_utf8_lossy(&fits.body));
    assert_eq!(header(&fits, "content-type"), "application/json");
    assert_eq!(std::fs::read(app.join("small.bin")).unwrap().len(), 4096);

    let audit: Vec<Value> = c.client.get("/api/audit?limit=20").await.unwrap();
    let uploads: Vec<(&str, u64)> = audit
        .iter()
        .filter(|e| e["method"] == "PUT" && e["path"].as_str().unwrap().starts_with("/api/files/content?path="))
        .map(|e| (e["actor"].as_str().unwrap(), e["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(uploads, [("admin", 201), ("admin", 413), ("admin", 413)], "newest first: {audit:?}");
    host.shutdown().await;
}

#[tokio::test]
async fn multipart_uploads_land_atomically_in_the_named_directory() {
    // A small JSON body limit must not cap a form: parts are bounded by max_upload_bytes.
    let d = Deployment::with(json!({"server": {"body_limit_bytes": 4096}}));
    let app = d.root().join("app");
    std::fs::create_dir_all(app.join("web/static")).unwrap();
    let host = d.start().await;
    let c = ctx(&host).await;
    let boundary = "apollo-test-boundary";
    let part = |name: &str, body: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n{body}\r\n"
        )
    };
    let big = "z".repeat(20_000);
    let form =
        format!("{}{}{}--{boundary}--\r\n", part("a.txt", "alpha"), part("b.txt", "bravo"), part("big.txt", &big));
    let r = raw(
        c.addr,
        "POST",
        "/api/files/upload?dir=web/static",
        Some(&c.token),
        BodyMode::Multipart(form.as_bytes(), boundary),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(std::fs::read_to_string(app.join("web/static/a.txt")).unwrap(), "alpha");
    assert_eq!(std::fs::read_to_string(app.join("web/static/b.txt")).unwrap(), "bravo");
    assert_eq!(std::fs::read(app.join("web/static/big.txt")).unwrap().len(), 20_000);

    // A part whose file name tries to leave the directory is refused, and nothing lands.
    let evil = format!("{}--{boundary}--\r\n", part("../../escape.txt", "x"));
    let r = raw(
        c.addr,
        "POST",
        "/api/files/upload?dir=web",
        Some(&c.token),
        BodyMode::Multipart(evil.as_bytes(), boundary),
    )
    .await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(!d.root().join("escape.txt").exists() && !app.join("escape.txt").exists());
    host.shutdown().await;
}

#[tokio::test]
async fn moves_and_new_directories_are_audited_with_their_paths() {
    let d = Deployment::new();
    std::fs::write(d.root().join("app/a.txt"), "x").unwrap();
    let host = d.start().await;
    let c = ctx(&host).await;
    let _: Value = c.client.post("/api/files/mkdir", Some(&json!({"path": "docs"}))).await.unwrap();
    let _: Value = c.client.post("/api/files/move", Some(&json!({"from": "a.txt", "to": "docs/a.txt"}))).await.unwrap();
    let refused = c
        .client
        .send(Method::POST, "/api/files/move", Some(&json!({"from": "docs/a.txt", "to": "../x"})))
        .await
        .unwrap();
    assert_eq!(refused.status, 403);
    let audit: Vec<Value> = c.client.get("/api/audit?limit=10").await.unwrap();
    let details: Vec<&str> =
        audit.iter().map(|e| e["detail"].as_str().unwrap_or("")).filter(|d| !d.is_empty()).collect();
    assert_eq!(
        details,
        ["from=docs/a.txt to=../x", "from=a.txt to=docs/a.txt", "path=docs"],
        "newest first: {audit:#?}"
    );
    host.shutdown().await;
}
