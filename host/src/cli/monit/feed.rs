//! Where the dashboard's data comes from, all over the host's public HTTP API: a poller
//! (`GET /api/apps` plus the status of each service that has processes, once a second
//! or at once when `/api/events` reports a state change), the selected service's log
//! (`GET /api/apps/{name}/logs?follow=true`, server-sent events) and the actions
//! (`POST /api/apps/{name}/{verb}`). Each is a task that sends [`Update`]s to the UI
//! loop, which owns and aborts them; nothing here touches the terminal.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::dashboard::{Action, CpuSamples, ServiceRow, build_rows};
use crate::api::AppSummary;
use crate::cli::{ApiClient, ClientError};
use crate::supervisor::ServiceStatus;

/// How often the table refreshes without an event.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// Lines of the log fetched when a service is selected.
const LOG_TAIL: usize = 200;
/// Pause before following a log or the event stream again after it ended or failed.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// What a task tells the UI loop.
#[derive(Debug)]
pub enum Update {
    Rows(Result<Vec<ServiceRow>, String>),
    /// The log of `service` is being read again from its tail: forget what was shown.
    LogRestarted {
        service: String,
    },
    LogLine {
        service: String,
        line: String,
    },
    LogEnded {
        service: String,
        note: String,
    },
    ActionDone {
        action: Action,
        service: String,
        result: Result<Box<ServiceStatus>, String>,
    },
}

/// `/api/apps/{name}/…`, refusing a name the host could not have sent.
fn app_path(service: &str, rest: &str) -> Option<String> {
    crate::model::is_valid_service_name(service).then(|| format!("/api/apps/{service}/{rest}"))
}

/// One refresh: the list, then the statuses (RSS, CPU time, start times) of the
/// services that have processes, fetched concurrently.
async fn fetch_rows(client: &ApiClient, previous: &CpuSamples) -> Result<(Vec<ServiceRow>, CpuSamples), ClientError> {
    let apps: Vec<AppSummary> = client.get("/api/apps").await?;
    let lookups = apps.iter().filter(|a| a.state.is_active() || a.pid.is_some()).filter_map(|a| {
        let path = app_path(&a.name, "status")?;
        Some(async move { (a.name.clone(), client.get::<ServiceStatus>(&path).await) })
    });
    let mut statuses = HashMap::new();
    for (name, status) in futures::future::join_all(lookups).await {
        match status {
            Ok(status) => {
                statuses.insert(name, status);
            }
            // Removed between the two calls: the next refresh will not list it.
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(build_rows(&apps, &statuses, previous, chrono::Utc::now().timestamp_millis()))
}

/// Refreshes the rows every [`POLL_EVERY`], or sooner when `wake` is notified, until
/// the UI loop goes away.
pub async fn poll(client: ApiClient, updates: mpsc::Sender<Update>, wake: Arc<Notify>) {
    let mut samples = CpuSamples::default();
    loop {
        let rows = match fetch_rows(&client, &samples).await {
            Ok((rows, next)) => {
                samples = next;
                Ok(rows)
            }
            Err(e) => Err(e.to_string()),
        };
        if updates.send(Update::Rows(rows)).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = wake.notified() => {}
        }
    }
}

/// Follows `/api/events` and wakes the poller on every service state change, so a
/// change shows at once rather than at the next tick. Polling carries on if the event
/// stream fails; it is reopened after a pause.
pub async fn follow_events(client: ApiClient, wake: Arc<Notify>) {
    loop {
        let _ = client.websocket("/api/events?kinds=service_state", |_| wake.notify_one()).await;
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// Follows `service`'s log: its tail, then every new line. Reopened after a pause if it
/// ends or fails (no log yet, the host restarted), each time from a fresh tail.
pub async fn follow_log(client: ApiClient, service: String, updates: mpsc::Sender<Update>) {
    let Some(path) = app_path(&service, &format!("logs?tail={LOG_TAIL}&follow=true")) else {
        let note = "not a valid service name".to_string();
        let _ = updates.send(Update::LogEnded { service, note }).await;
        return;
    };
    loop {
        if updates.send(Update::LogRestarted { service: service.clone() }).await.is_err() {
            return;
        }
        let result = client
            .stream_events(&path, |line| {
                // A callback cannot wait: when the UI is this far behind, lines are
                // dropped rather than memory growing without bound.
                let _ = updates.try_send(Update::LogLine { service: service.clone(), line: line.to_string() });
            })
            .await;
        let note = match result {
            Ok(()) => "log stream ended, reopening".to_string(),
            Err(e) => format!("log unavailable: {e}"),
        };
        if updates.send(Update::LogEnded { service: service.clone(), note }).await.is_err() {
            return;
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// Runs one confirmed action and reports how it went.
pub async fn run_action(client: ApiClient, action: Action, service: String, updates: mpsc::Sender<Update>) {
    let result = match app_path(&service, action.verb()) {
        Some(path) => client.post::<ServiceStatus>(&path, None).await.map(Box::new).map_err(|e| e.to_string()),
        None => Err(format!("{service:?} is not a valid service name")),
    };
    let _ = updates.send(Update::ActionDone { action, service, result }).await;
}
