//! `apollo monit`: a live terminal dashboard of every service (state, CPU, memory,
//! restarts, uptime, ports) with the selected service's log following below and keys
//! to start, stop and restart it. A client of the host's HTTP API like every other
//! command (socket or `--addr`); it adds no route of its own.
//!
//! Split by concern: [`dashboard`] is the state and the key rules, [`view`] draws it
//! (both pure, unit-tested on ratatui's `TestBackend`), [`feed`] talks to the host,
//! [`terminal`] owns raw mode and the alternate screen. This file is the loop that
//! joins them.

mod dashboard;
mod feed;
mod terminal;
mod view;

use std::io::IsTerminal;
use std::sync::Arc;

use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc};
use tokio::task::{AbortHandle, JoinSet};

use self::dashboard::{Dashboard, Intent, Tone};
use self::feed::Update;
use super::{ApiClient, CliError};
use crate::api::AppSummary;

/// Updates waiting for the UI loop; log lines beyond this are dropped (see `feed`).
const UPDATE_QUEUE: usize = 1024;

pub async fn run(client: ApiClient) -> Result<(), CliError> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "apollo monit draws a live dashboard and needs a terminal on stdin and stdout; \
             for a one-shot table use `apollo app status -a` (or `--json app list`)",
        ));
    }
    // An unreachable host or a missing token fails here with the usual message, before
    // the screen is taken over.
    let _: Vec<AppSummary> = client.get("/api/apps").await?;
    let mut session =
        terminal::TerminalSession::start().map_err(|e| CliError::failed(format!("cannot set up the terminal: {e}")))?;
    let result = event_loop(&mut session, client).await;
    drop(session);
    result
}

async fn event_loop(session: &mut terminal::TerminalSession, client: ApiClient) -> Result<(), CliError> {
    let terminal_error = |e: std::io::Error| CliError::failed(format!("terminal: {e}"));
    let (updates, mut incoming) = mpsc::channel(UPDATE_QUEUE);
    let wake = Arc::new(Notify::new());
    // Every task the dashboard starts lives in `tasks` and ends with it.
    let mut tasks = JoinSet::new();
    tasks.spawn(feed::poll(client.clone(), updates.clone(), wake.clone()));
    tasks.spawn(feed::follow_events(client.clone(), wake.clone()));
    let mut log_follower: Option<AbortHandle> = None;
    let mut input = EventStream::new();
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| CliError::failed(e.to_string()))?;
    let mut hangup = signal(SignalKind::hangup()).map_err(|e| CliError::failed(e.to_string()))?;
    let mut dashboard = Dashboard::new(client.endpoint().to_string());

    let outcome = loop {
        if let Err(e) = session.terminal().draw(|frame| view::render(frame, &dashboard)) {
            break Err(terminal_error(e));
        }
        while tasks.try_join_next().is_some() {}
        let intent = tokio::select! {
            event = input.next() => match event {
                Some(Ok(Event::Key(key))) => dashboard.on_key(key),
                Some(Ok(_)) => Intent::Redraw,
                Some(Err(e)) => break Err(terminal_error(e)),
                None => Intent::Quit,
            },
            Some(update) = incoming.recv() => {
                let mut intent = apply(&mut dashboard, update, &wake);
                // Catch up on whatever else arrived before drawing again (a burst of
                // log lines is one redraw, not hundreds).
                while let Ok(more) = incoming.try_recv() {
                    if let Intent::FollowLog(name) = apply(&mut dashboard, more, &wake) {
                        intent = Intent::FollowLog(name);
                    }
                }
                intent
            },
            _ = terminate.recv() => Intent::Quit,
            _ = hangup.recv() => Intent::Quit,
        };
        match intent {
            Intent::Quit => break Ok(()),
            Intent::Redraw => {}
            Intent::FollowLog(service) => {
                if let Some(previous) = log_follower.take() {
                    previous.abort();
                }
                log_follower = Some(tasks.spawn(feed::follow_log(client.clone(), service, updates.clone())));
            }
            Intent::Run(action, service) => {
                tasks.spawn(feed::run_action(client.clone(), action, service, updates.clone()));
            }
        }
    };
    tasks.shutdown().await;
    outcome
}

/// Folds one update into the dashboard; a refresh can move the selection (and so the
/// followed log), a finished action asks for a refresh at once.
fn apply(dashboard: &mut Dashboard, update: Update, wake: &Notify) -> Intent {
    match update {
        Update::Rows(Ok(rows)) => {
            let at = chrono::Local::now().format("%H:%M:%S").to_string();
            match dashboard.set_rows(rows, at) {
                Some(service) => Intent::FollowLog(service),
                None => Intent::Redraw,
            }
        }
        Update::Rows(Err(message)) => {
            dashboard.set_refresh_error(message);
            Intent::Redraw
        }
        Update::LogRestarted { service } => {
            if dashboard.log_of.as_deref() == Some(service.as_str()) {
                dashboard.log.clear();
                dashboard.log_note = None;
            }
            Intent::Redraw
        }
        Update::LogLine { service, line } => {
            dashboard.push_log(&service, line);
            Intent::Redraw
        }
        Update::LogEnded { service, note } => {
            dashboard.log_ended(&service, note);
            Intent::Redraw
        }
        Update::ActionDone { action, service, result } => {
            match result {
                Ok(status) => dashboard.report(
                    Tone::Good,
                    format!(
                        "{} {service}: {}{}",
                        action.verb(),
                        status.state.as_str(),
                        message_suffix(&status.message)
                    ),
                ),
                Err(e) => dashboard.report(Tone::Bad, format!("{} {service} failed: {e}", action.verb())),
            }
            wake.notify_one();
            Intent::Redraw
        }
    }
}

fn message_suffix(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(" ({message})") }
}
