//! Alarms against the real host: a crash-looping supervised service raises an alarm
//! that reaches a real webhook receiver (HTTP on 127.0.0.1) and a real SMTP peer
//! (a minimal SMTP server speaking the protocol to lettre over TCP), repeats are
//! deduplicated into one open alarm, ack and delete work, and the API needs a token
//! over TCP.

use crate::common;

use std::time::Duration;

use common::{Deployment, eventually};
use http::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Answers every HTTP request with 200 and hands its body to the channel.
async fn webhook_receiver() -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/alarms", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let (line, body) = common::http_receiver::read_request(&mut reader).await.expect("a request");
                assert!(line.starts_with("POST /hooks/alarms "), "request line: {line}");
                let mut stream = reader.into_inner();
                stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await.unwrap();
                let _ = tx.send(serde_json::from_slice(&body).unwrap());
            });
        }
    });
    (url, rx)
}

/// A minimal SMTP server (RFC 5321 greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
/// QUIT): each accepted message (envelope recipients + data) goes to the channel.
async fn smtp_server() -> (u16, mpsc::UnboundedReceiver<(Vec<String>, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 localhost test SMTP ready\r\n").await.unwrap();
                let mut rcpt = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-localhost\r\n250 8BITMIME\r\n",
                        "HELO" | "MAIL" | "RSET" | "NOOP" => b"250 OK\r\n",
                        "RCPT" => {
                            rcpt.push(line[line.find(':').map_or(0, |i| i + 1)..].trim().to_string());
                            b"250 OK\r\n"
                        }
                        "DATA" => {
                            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.unwrap();
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                                data.push('\n');
                            }
                            let _ = tx.send((std::mem::take(&mut rcpt), data));
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => b"502 not implemented\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, rx)
}

async fn open_alarms(client: &apollo_host::cli::ApiClient, state: &str) -> Vec<Value> {
    let list: Value = client.get(&format!("/api/alarms?state={state}")).await.unwrap();
    list.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_service_alarm_reaches_webhook_and_smtp_and_is_deduplicated() {
    let (url, mut hooks) = webhook_receiver().await;
    let (smtp_port, mut mails) = smtp_server().await;
    let d = Deployment::with(json!({"alarms": {
        "disk_check_secs": 0,
        "webhooks": [{"url": url, "severities": ["warning", "critical"], "retries": 2, "backoff_ms": 50}],
        "email": [{"host": "127.0.0.1", "port": smtp_port, "from": "apollo@test.invalid",
                   "to": ["ops@test.invalid"], "severities": ["warning", "critical"], "timeout_ms": 5000}]
    }}));
    let mut m = common::model("crashy", "app_crashy", &[]);
    m["run_data"]["command"] = json!(["/bin/sh", "-c", "exit 3"]);
    m["supervise"] = json!({"backoff_initial_ms": 50, "min_uptime_ms": 5000, "max_restarts": 2});
    d.write_model("crashy.pig", &m);
    let host = d.start().await;
    let client = host.uds();
    let _ = client.send(Method::POST, "/api/apps/crashy/start", None).await.unwrap();

    // The webhook: the alarm as JSON.
    let hook = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let alarm = hooks.recv().await.expect("webhook receiver alive");
            if alarm["kind"] == "service_crashed" {
                return alarm;
            }
        }
    })
    .await
    .expect("the crash alarm reaches the webhook");
    assert_eq!((hook["subject"].as_str(), hook["severity"].as_str()), (Some("crashy"), Some("warning")));
    assert_eq!(hook["state"], "open");

    // The e-mail: addressed to the configured recipient, naming the alarm.
    let (rcpt, data) = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let (rcpt, data) = mails.recv().await.expect("smtp server alive");
            if data.contains("service_crashed") {
                return (rcpt, data);
            }
        }
    })
    .await
    .expect("the crash alarm reaches the SMTP server");
    assert_eq!(rcpt, ["<ops@test.invalid>"]);
    assert!(data.contains("Subject: [apollo warning] service_crashed crashy"), "{data}");
    assert!(data.contains("From: apollo@test.invalid"), "{data}");

    // Dedup: every crash counts on the one unresolved alarm.
    let crash = eventually("the crash alarm counted at least twice", Duration::from_secs(20), || async {
        let open = open_alarms(&client, "open").await;
        let crashes: Vec<&Value> =
            open.iter().filter(|a| a["kind"] == "service_crashed" && a["subject"] == "crashy").collect();
        assert!(crashes.len() <= 1, "one alarm per kind and subject while open: {open:#?}");
        crashes.first().filter(|a| a["count"].as_i64().unwrap() >= 2).map(|a| (*a).clone())
    })
    .await;
    assert!(crash["last_seen_ms"].as_i64() >= crash["first_seen_ms"].as_i64());
    eventually("the restart limit alarm", Duration::from_secs(20), || async {
        let open = open_alarms(&client, "open").await;
        open.iter().any(|a| a["kind"] == "restart_limit" && a["severity"] == "critical").then_some(())
    })
    .await;
    // Repeats are not notified again: only other kinds arrive after the first crash.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(later) = hooks.try_recv() {
        assert_ne!(later["kind"], "service_crashed", "a repeat was notified again: {later}");
    }

    // Ack: leaves the open list, shows under acked and all.
    let id = crash["id"].as_i64().unwrap();
    let acked: Value = client.post(&format!("/api/alarms/{id}/ack"), None).await.unwrap();
    assert_eq!(acked["state"], "acked");
    assert!(acked["acked_at_ms"].as_i64().is_some());
    assert!(open_alarms(&client, "open").await.iter().all(|a| a["id"] != id));
    assert!(open_alarms(&client, "acked").await.iter().any(|a| a["id"] == id));
    assert!(open_alarms(&client, "all").await.iter().any(|a| a["id"] == id));

    // Delete: gone, then 404.
    let deleted = client.send(Method::DELETE, &format!("/api/alarms/{id}"), None).await.unwrap();
    assert_eq!(deleted.status, 204);
    assert!(open_alarms(&client, "all").await.iter().all(|a| a["id"] != id));
    let missing = client.send(Method::GET, &format!("/api/alarms/{id}"), None).await.unwrap();
    assert_eq!(missing.status, 404);
    let again = client.send(Method::POST, &format!("/api/alarms/{id}/ack"), None).await.unwrap();
    assert_eq!(again.status, 404);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_need_a_token_over_tcp_and_reject_unknown_states() {
    let d = Deployment::with(json!({"alarms": {"disk_check_secs": 0}}));
    let host = d.start().await;
    let anonymous = host.tcp().send(Method::GET, "/api/alarms", None).await.unwrap();
    assert_eq!(anonymous.status, 401);
    let anonymous = host.tcp().send(Method::DELETE, "/api/alarms/1", None).await.unwrap();
    assert_eq!(anonymous.status, 401);
    let authed = host.authed().await;
    let empty: Value = authed.get("/api/alarms").await.unwrap();
    assert_eq!(empty, json!([]));
    let bad = authed.send(Method::GET, "/api/alarms?state=bogus", None).await.unwrap();
    assert_eq!(bad.status, 400);
    host.shutdown().await;
}

#[test]
fn a_bad_alarm_config_is_refused_with_its_key() {
    let d = Deployment::with(json!({"alarms": {"webhooks": [{"url": "ftp://x"}]}}));
    let out = d.cli(&["check"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("alarms.webhooks.0.url"), "{}", out.stderr);
}
