//! The replies the gateway itself gives on `/act`, shaped as a seneca-transport listener
//! gives them (contract §2.4): the same headers — above all `seneca-id` and
//! `seneca-origin` echoed: a seneca client takes a 200 only when they are its own, and
//! drops it otherwise (the act then times out); a non-2xx fails the act whatever its
//! headers — and eraro's error body.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use rand::Rng;
use serde_json::{Map, Value, json};

use super::error::ActError;
use super::js;
use super::message;

/// Where an error body says it was made (seneca puts a stack line there).
const CALLPOINT: &str = "at module-gateway (apollo)";

/// The gateway's seneca instance id, in seneca's layout `<nid>/<start ms>/<pid>/
/// <version>/<tag>`; sent as `seneca-accept`. Made once per process.
pub fn gateway_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        format!("{}/{started}/{}/apollo-{}/gateway", nid(12), std::process::id(), env!("CARGO_PKG_VERSION"))
    })
}

/// A random id like seneca's `nid`: lowercase letters and digits.
fn nid(len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// No service declares a pattern this message matches: seneca's `act_not_found` (500).
/// The message is printed as seneca prints it (`util.inspect` of the message without its
/// `…$` keys, on one line), keys in the body's order as node keeps them (serde_json's
/// `preserve_order`).
pub fn act_not_found(request_headers: &HeaderMap, msg: &Map<String, Value>) -> Response<Bytes> {
    // seneca joins inspect's lines into one (`.replace(/\n/g, '')`).
    let args = js::inspect(&Value::Object(message::clean(msg))).replace('\n', "");
    let text = format!(
        "seneca: No matching action pattern found for {args}, and no default result provided (using a default$ property)."
    );
    let body = json!({
        "eraro": true,
        "orig": null,
        "code": "act_not_found",
        "seneca": true,
        "package": "seneca",
        "msg": text,
        "details": {"args": args, "plugin": {}},
        "callpoint": CALLPOINT,
        "message": text,
        "name": "Error",
    });
    reply(request_headers, StatusCode::INTERNAL_SERVER_ERROR, &body)
}

/// The request could not be turned into a message (`invalid_json`): 500 with the
/// listener's body for it (eraro fields; no `message`/`name`, as seneca-transport sends).
pub fn invalid_json(request_headers: &HeaderMap, err: &ActError) -> Response<Bytes> {
    let body = json!({
        "eraro": true,
        "orig": null,
        "code": err.code,
        "seneca": true,
        "package": "seneca",
        "msg": err.message,
        "details": err.details,
        "callpoint": CALLPOINT,
    });
    reply(request_headers, StatusCode::INTERNAL_SERVER_ERROR, &body)
}

/// The message matched a service that has no instance to send it to: 503.
pub fn no_instance(request_headers: &HeaderMap, service: &str) -> Response<Bytes> {
    unavailable(
        request_headers,
        "no_instance",
        format!("apollo-gateway: no available instance of service {service:?} for this message."),
        json!({"service": service}),
    )
}

/// Every try at the service's instances failed (refused, reset, timed out): 503.
/// `reason` says what happened to the last try.
pub fn upstream_failure(request_headers: &HeaderMap, service: &str, reason: &str) -> Response<Bytes> {
    unavailable(
        request_headers,
        "upstream_failure",
        format!("apollo-gateway: service {service:?} did not answer: {reason}."),
        json!({"service": service, "reason": reason}),
    )
}

fn unavailable(request_headers: &HeaderMap, code: &str, text: String, details: Value) -> Response<Bytes> {
    let body = json!({
        "eraro": true,
        "orig": null,
        "code": code,
        "seneca": true,
        "package": "apollo-gateway",
        "msg": text,
        "details": details,
        "callpoint": CALLPOINT,
        "message": text,
        "name": "Error",
    });
    reply(request_headers, StatusCode::SERVICE_UNAVAILABLE, &body)
}

fn reply(request_headers: &HeaderMap, status: StatusCode, body: &Value) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    *response.headers_mut() = reply_headers(request_headers);
    response
}

/// The headers a listener sets on every reply. `seneca-id` and `seneca-origin` are the
/// request's (a request without `seneca-id` is a plain HTTP caller: it gets a fresh id
/// and its `user-agent` as origin, as the listener does); `seneca-track` is the
/// request's JSON array joined with `,`.
pub fn reply_headers(request_headers: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, max-age=0, no-cache, no-store"));
    let id = request_headers.get("seneca-id").cloned().unwrap_or_else(|| header_value(&nid(12)));
    headers.insert("seneca-id", id);
    headers.insert("seneca-kind", HeaderValue::from_static("res"));
    let origin = request_headers
        .get("seneca-origin")
        .or_else(|| if request_headers.contains_key("seneca-id") { None } else { request_headers.get(USER_AGENT) })
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("UNKNOWN"));
    headers.insert("seneca-origin", origin);
    headers.insert("seneca-accept", header_value(gateway_id()));
    let track = request_headers
        .get("seneca-track")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .map(|t| js::js_string(Some(&t)))
        .unwrap_or_default();
    headers.insert("seneca-track", header_value(&track));
    for name in ["seneca-time-client-sent", "seneca-time-listen-recv", "seneca-time-listen-sent"] {
        headers.insert(name, HeaderValue::from_static("0"));
    }
    headers
}

/// A header value from our own text; anything not sendable becomes empty.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seneca_request() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("seneca-id", HeaderValue::from_static("abc123def456/tx0000000001"));
        h.insert("seneca-origin", HeaderValue::from_static("7ipj1ysscv1n/1796390736956/25860/3.38.0/-"));
        h.insert("seneca-track", HeaderValue::from_static(r#"["7ipj1ysscv1n/1796390736956/25860/3.38.0/-","x"]"#));
        h.insert(USER_AGENT, HeaderValue::from_static("Wreck"));
        h
    }

    fn body(r: &Response<Bytes>) -> Value {
        serde_json::from_slice(r.body()).unwrap()
    }

    fn header<'a>(r: &'a Response<Bytes>, name: &str) -> &'a str {
        r.headers().get(name).unwrap().to_str().unwrap()
    }

    #[test]
    fn act_not_found_is_the_listeners_reply() {
        let msg = json!({"role": "nope", "custom$": {}, "tx$": "x"});
        let r = act_not_found(&seneca_request(), msg.as_object().unwrap());
        assert_eq!(r.status(), 500);
        let text = "seneca: No matching action pattern found for { role: 'nope' }, and no default result provided (using a default$ property).";
        let b = body(&r);
        assert_eq!(b["code"], "act_not_found");
        assert_eq!(b["message"], text);
        assert_eq!(b["msg"], text);
        assert_eq!(b["details"]["args"], "{ role: 'nope' }");
        assert_eq!(
            (b["eraro"].clone(), b["seneca"].clone(), b["name"].clone()),
            (json!(true), json!(true), json!("Error"))
        );
        assert_eq!(b["package"], "seneca");
    }

    /// Runs `tests/clients/seneca_not_found_vectors.js`: the real seneca 3.38 says what
    /// its `act_not_found` message is for each message; skips, saying so, where seneca
    /// is not installed (the CI installs it with `.ci/node-clients-up.sh`).
    #[test]
    fn real_seneca_agrees_on_the_not_found_text() {
        use std::io::Write;
        use std::process::{Command, Stdio};

        let clients = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients");
        if !clients.join("node/node_modules/seneca/package.json").exists() {
            eprintln!(
                "SKIPPED real_seneca_agrees_on_the_not_found_text: seneca is not installed (run .ci/node-clients-up.sh)"
            );
            return;
        }
        let long = "x".repeat(90);
        let numbers: Vec<i64> = (0..130).map(|i| i * 7 % 1000).collect();
        let messages = vec![
            json!({"role": "nope"}),
            json!({"role": "nope", "cmd": "x", "left": 1, "right": 2.5, "on": true, "none": null}),
            json!({"custom$": {}, "extra$": "x", "role": "gone"}),
            json!({"a-b": "it's", "q": "say \"hi\" it's", "t": "tab\tnl\nend", "u": "✓"}),
            json!({"arr": [1, 2, 3, 4, 5, 6, 7, 8], "role": "nope"}),
            json!({"words": ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]}),
            json!({"mixed": [1, "two", null, true, {"k": "v"}, [1, 2], 7, 8.5]}),
            json!({"numbers": numbers}),
            json!({"nested": {"a": {"b": {"c": {"d": 1}}}, "e": [[1, [2, [3]]]]}}),
            json!({"long": long, "multi": format!("{long}\nsecond line\nthird")}),
            json!({"aaaaaaaaaa": "bbbbbbbbbbbbbbbbbbbb", "cccccccccc": "dddddddddddddddddddd", "eeeeeeeeee": 1}),
            json!({"args": {"body": {"name": "carol"}, "params": {"id": "2"}, "query": {}, "user": null}, "if": "x", "module": "user"}),
        ];
        let mut child = Command::new("node")
            .arg(clients.join("seneca_not_found_vectors.js"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        child.stdin.take().unwrap().write_all(Value::Array(messages.clone()).to_string().as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "seneca_not_found_vectors.js failed");
        let theirs: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
        for (msg, theirs) in messages.iter().zip(theirs) {
            let ours = body(&act_not_found(&HeaderMap::new(), msg.as_object().unwrap()))["message"].clone();
            assert_eq!(ours, json!(theirs), "message {msg}");
        }
    }

    /// Serves `/act` on a loopback port with `answer`: one thread, one request per
    /// connection (as Wreck sends them), `requests` connections, then the thread ends.
    fn serve_act(requests: usize, answer: fn(&HeaderMap, &[u8]) -> Response<Bytes>) -> u16 {
        use std::io::{BufRead, BufReader, Read, Write};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = HeaderMap::new();
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    let Some((name, value)) = line.trim_end().split_once(':') else { break };
                    headers.append(
                        http::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                        HeaderValue::from_str(value.trim()).unwrap(),
                    );
                }
                let length = headers.get("content-length").map_or(0, |v| v.to_str().unwrap().parse().unwrap());
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let reply = answer(&headers, &body);
                let mut head = format!("HTTP/1.1 {}\r\n", reply.status());
                for (name, value) in reply.headers() {
                    head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
                }
                head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", reply.body().len()));
                stream.write_all(head.as_bytes()).unwrap();
                stream.write_all(reply.body()).unwrap();
            }
        });
        port
    }

    /// Acts `messages` through `tests/clients/seneca_client.js` (a real seneca client)
    /// against a port; the lines it printed and how long it took.
    fn act_with_real_client(port: u16, timeout_ms: u32, messages: &[Value]) -> (Vec<Value>, std::time::Duration) {
        use std::io::Write;
        use std::process::{Command, Stdio};

        let clients = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients");
        let started = std::time::Instant::now();
        let mut child = Command::new("node")
            .arg(clients.join("seneca_client.js"))
            .args([port.to_string(), String::new(), timeout_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        let input: String = messages.iter().map(|m| format!("{m}\n")).collect();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        let lines = String::from_utf8(output.stdout).unwrap();
        let results = lines.lines().filter(|l| *l != "ready").map(|l| serde_json::from_str(l).unwrap()).collect();
        (results, started.elapsed())
    }

    /// What the real seneca client does with these replies: an error reply fails the
    /// act at once (seneca's `act_execute`), whatever its headers; a 200 with
    /// `reply_headers` is taken as the answer; the same 200 with another origin is
    /// dropped, and the act times out (contract §0.10).
    #[test]
    fn real_seneca_client_takes_the_gateways_replies() {
        let clients = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients");
        if !clients.join("node/node_modules/seneca/package.json").exists() {
            eprintln!(
                "SKIPPED real_seneca_client_takes_the_gateways_replies: seneca is not installed (run .ci/node-clients-up.sh)"
            );
            return;
        }
        fn not_found(headers: &HeaderMap, body: &[u8]) -> Response<Bytes> {
            match message::message_from_request(None, body) {
                Ok(msg) => act_not_found(headers, &msg),
                Err(err) => invalid_json(headers, &err),
            }
        }
        fn unavailable(headers: &HeaderMap, _: &[u8]) -> Response<Bytes> {
            no_instance(headers, "users")
        }
        fn answer(headers: &HeaderMap, _: &[u8]) -> Response<Bytes> {
            let mut reply = Response::new(Bytes::from_static(br#"{"answer":3}"#));
            *reply.headers_mut() = reply_headers(headers);
            reply
        }
        fn answer_to_someone_else(headers: &HeaderMap, body: &[u8]) -> Response<Bytes> {
            let mut reply = answer(headers, body);
            reply.headers_mut().insert("seneca-origin", HeaderValue::from_static("someone-else"));
            reply
        }
        let failed = |status: &str| json!({"err": {"code": "act_execute", "message": format!("seneca: Action  failed: Response Error: {status}.")}});

        let (results, took) = act_with_real_client(
            serve_act(2, not_found),
            3000,
            &[json!({"role": "nope"}), json!({"role": "nope", "n": 2})],
        );
        assert_eq!(results, vec![failed("500 Internal Server Error"), failed("500 Internal Server Error")]);
        assert!(took < std::time::Duration::from_millis(2500), "took {took:?}");

        let (results, _) = act_with_real_client(serve_act(1, unavailable), 3000, &[json!({"role": "x"})]);
        assert_eq!(results, vec![failed("503 Service Unavailable")]);

        let (results, _) = act_with_real_client(serve_act(1, answer), 3000, &[json!({"role": "math"})]);
        assert_eq!(results, vec![json!({"ok": {"answer": 3}})]);

        let (results, took) =
            act_with_real_client(serve_act(1, answer_to_someone_else), 700, &[json!({"role": "math"})]);
        assert_eq!(results[0]["err"]["code"], "action_timeout", "{results:?}");
        assert!(took >= std::time::Duration::from_millis(700));
    }

    #[test]
    fn headers_echo_id_and_origin_and_join_the_track() {
        let r = act_not_found(&seneca_request(), &Map::new());
        assert_eq!(header(&r, "seneca-id"), "abc123def456/tx0000000001");
        assert_eq!(header(&r, "seneca-origin"), "7ipj1ysscv1n/1796390736956/25860/3.38.0/-");
        assert_eq!(header(&r, "seneca-track"), "7ipj1ysscv1n/1796390736956/25860/3.38.0/-,x");
        assert_eq!(header(&r, "seneca-kind"), "res");
        assert_eq!(header(&r, "seneca-accept"), gateway_id());
        assert_eq!(header(&r, "content-type"), "application/json");
        assert_eq!(header(&r, "cache-control"), "private, max-age=0, no-cache, no-store");
        assert_eq!(header(&r, "seneca-time-listen-sent"), "0");
        assert_eq!(gateway_id().split('/').count(), 5);
    }

    #[test]
    fn plain_http_callers_get_a_fresh_id_and_their_user_agent_as_origin() {
        let mut h = HeaderMap::new();
        h.insert(USER_AGENT, HeaderValue::from_static("curl/8"));
        let r = no_instance(&h, "users");
        assert_eq!(header(&r, "seneca-id").len(), 12);
        assert_eq!(header(&r, "seneca-origin"), "curl/8");
        assert_eq!(header(&r, "seneca-track"), "");
        let r = no_instance(&HeaderMap::new(), "users");
        assert_eq!(header(&r, "seneca-origin"), "UNKNOWN");
    }

    #[test]
    fn invalid_json_reply() {
        let r = invalid_json(&seneca_request(), &ActError::invalid_json("{bad"));
        assert_eq!(r.status(), 500);
        let b = body(&r);
        assert_eq!(b["code"], "invalid_json");
        assert_eq!(b["msg"], "seneca: Invalid JSON: {bad.");
        assert_eq!(b["details"], json!({"input": "{bad"}));
        assert!(b.get("message").is_none());
        assert_eq!(header(&r, "seneca-id"), "abc123def456/tx0000000001");
    }

    #[test]
    fn unavailable_replies_are_503_json() {
        let r = no_instance(&seneca_request(), "users");
        assert_eq!(r.status(), 503);
        assert_eq!(body(&r)["code"], "no_instance");
        assert_eq!(body(&r)["details"]["service"], "users");
        let r = upstream_failure(&seneca_request(), "users", "connection refused");
        assert_eq!(r.status(), 503);
        assert_eq!(body(&r)["code"], "upstream_failure");
        assert_eq!(body(&r)["message"], "apollo-gateway: service \"users\" did not answer: connection refused.");
        assert_eq!(header(&r, "seneca-origin"), "7ipj1ysscv1n/1796390736956/25860/3.38.0/-");
    }
}
