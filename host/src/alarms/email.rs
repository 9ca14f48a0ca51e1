//! The e-mail notifier: one message per alarm over plain SMTP (lettre), optionally
//! with SMTP AUTH. No TLS: point it at a local relay.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::EmailConfig;
use crate::store::AlarmRecord;

pub fn subject(alarm: &AlarmRecord) -> String {
    format!("[apollo {}] {} {}", alarm.severity, alarm.kind, alarm.subject)
}

fn message(config: &EmailConfig, alarm: &AlarmRecord) -> Result<Message, String> {
    let mut builder =
        Message::builder().from(config.from.parse().map_err(|e| format!("from: {e}"))?).subject(subject(alarm));
    for to in &config.to {
        builder = builder.to(to.parse().map_err(|e| format!("to {to}: {e}"))?);
    }
    let body = format!(
        "Alarm #{id}: {kind} on {subject}\nSeverity: {severity}\nMessage: {message}\nCount: {count}\n\n{json}\n",
        id = alarm.id,
        kind = alarm.kind,
        subject = alarm.subject,
        severity = alarm.severity,
        message = alarm.message,
        count = alarm.count,
        json = serde_json::to_string_pretty(alarm).unwrap_or_default(),
    );
    builder.header(ContentType::TEXT_PLAIN).body(body).map_err(|e| format!("message: {e}"))
}

/// Sends the alarm once within `timeout`.
pub async fn send(config: &EmailConfig, alarm: &AlarmRecord, timeout: Duration) -> Result<(), String> {
    let message = message(config, alarm)?;
    let mut transport =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host).port(config.port).timeout(Some(timeout));
    if !config.username.is_empty() {
        transport = transport.credentials(Credentials::new(config.username.clone(), config.password.clone()));
    }
    let transport = transport.build();
    tokio::time::timeout(timeout, transport.send(message))
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
        .map(|_| ())
        .map_err(|e| format!("smtp {}:{}: {e}", config.host, config.port))
}
