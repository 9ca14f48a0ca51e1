//! `apollo shell`: the seed's ApolloCLI as an interactive shell with history (kept in
//! `~/.apollo_history`), tab completion of commands and service names, and `help`.
//! Commands whose backing feature has not landed yet say so plainly.

use std::borrow::Cow;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::{Context, Editor, Helper, Highlighter, Hinter, Validator};

use super::{ApiClient, CliError, Endpoint, GlobalArgs, commands};
use crate::api::{AppSummary, Health};

/// `(command, usage, what it does)`.
const COMMANDS: &[(&str, &str, &str)] = &[
    ("address", "address [URL]", "show the host address, or switch to http://HOST:PORT / unix:/path"),
    ("app", "app list | app info NAME", "list services, or show one"),
    ("backup", "backup [list | restore ID]", "back up app_root, scripts and store; list backups; restore one"),
    ("check", "check", "show model files that failed to load"),
    ("clear", "clear", "clear the screen"),
    ("exit", "exit", "leave the shell (also: quit, Ctrl-D)"),
    ("help", "help", "this list"),
    ("reconnect", "reconnect", "check the connection to the host again"),
    ("reload", "reload", "re-read the model folder"),
    ("logs", "logs NAME", "the last lines of a service's log"),
    ("restart", "restart NAME", "restart a service"),
    ("start", "start NAME", "start a service (its run_dep first)"),
    ("status", "status [NAME]", "status of one service, or of all"),
    ("stop", "stop NAME", "stop a service (with its dependants and stop_chain)"),
    ("sync", "sync", "re-read models and refresh service-name completion"),
    ("version", "version", "CLI and host versions"),
];

#[derive(Helper, Hinter, Highlighter, Validator, Debug)]
struct ShellHelper {
    services: Vec<String>,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(' ').map(|i| i + 1).unwrap_or(0);
        let word = &before[start..];
        let words: Vec<&str> = before[..start].split_whitespace().collect();
        let pool: Vec<Cow<'_, str>> = match words.as_slice() {
            [] => COMMANDS.iter().map(|c| Cow::Borrowed(c.0)).collect(),
            ["app"] => vec!["list".into(), "info".into()],
            ["app", "info"] | ["status" | "start" | "stop" | "restart" | "logs"] => {
                self.services.iter().map(|s| Cow::Borrowed(s.as_str())).collect()
            }
            _ => Vec::new(),
        };
        let pairs = pool
            .into_iter()
            .filter(|c| c.starts_with(word))
            .map(|c| Pair { display: c.to_string(), replacement: format!("{c} ") })
            .collect();
        Ok((start, pairs))
    }
}

pub async fn run(mut client: ApiClient, g: GlobalArgs) -> Result<(), CliError> {
    let mut editor: Editor<ShellHelper, rustyline::history::DefaultHistory> =
        Editor::new().map_err(|e| CliError::failed(format!("cannot start the shell: {e}")))?;
    editor.set_helper(Some(ShellHelper { services: service_names(&client).await }));
    let history = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".apollo_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!("apollo shell {} connected to {} (type help)", crate::VERSION, client.endpoint());
    loop {
        let line = match editor.readline("apollo> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(CliError::failed(format!("reading input: {e}"))),
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line.as_str());
        let outcome = match words.as_slice() {
            ["exit" | "quit"] => break,
            ["help"] => {
                for (_, usage, what) in COMMANDS {
                    println!("  {usage:<26} {what}");
                }
                Ok(())
            }
            ["clear"] => {
                print!("\x1b[2J\x1b[H");
                Ok(())
            }
            ["address"] => {
                println!("{}", client.endpoint());
                Ok(())
            }
            ["address", addr] => match Endpoint::parse(addr) {
                Ok(endpoint) => {
                    client = ApiClient::new(endpoint, g.token.clone());
                    reconnect(&client).await
                }
                Err(e) => Err(e.into()),
            },
            ["reconnect"] => reconnect(&client).await,
            ["app"] | ["app", "list"] => commands::app_list(&client, g.json).await,
            ["app", "info", name] => commands::app_info(&client, name, g.json).await,
            ["status"] => commands::app_status(&client, None, true, g.json).await,
            ["status", name] => commands::app_status(&client, Some(name), false, g.json).await,
            ["reload"] => commands::reload(&client, g.json).await,
            ["sync"] => {
                let r = commands::reload(&client, g.json).await;
                if let Some(h) = editor.helper_mut() {
                    h.services = service_names(&client).await;
                }
                r
            }
            ["check"] => check(&client).await,
            ["version"] => {
                println!("apollo CLI  {}", crate::VERSION);
                commands::host_version(&client, g.json).await
            }
            [action @ ("start" | "stop" | "restart"), name] => {
                commands::app_action(&client, action, Some(name), false, g.json).await
            }
            ["logs", name] => commands::app_logs(&client, name, false, 50).await,
            ["backup"] => commands::backup_create(&client, g.json).await,
            ["backup", "list"] => commands::backup_list(&client, g.json).await,
            ["backup", "restore", id] => commands::backup_restore(&client, id, g.json).await,
            _ => Err(CliError::usage(format!("unknown command {line:?}; type help"))),
        };
        if let Err(e) = outcome {
            eprintln!("error: {}", e.message);
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}

async fn reconnect(client: &ApiClient) -> Result<(), CliError> {
    let health: Health = client.get("/healthz").await?;
    println!("connected to {} (host {}, {} services)", client.endpoint(), health.version, health.services);
    Ok(())
}

async fn check(client: &ApiClient) -> Result<(), CliError> {
    let body: serde_json::Value = client.get("/api/models/problems").await?;
    let problems = body["problems"].as_array().cloned().unwrap_or_default();
    println!("models in {}: {} problem(s)", body["models_dir"].as_str().unwrap_or("?"), problems.len());
    for p in problems {
        println!("  {}: {}", p["file"].as_str().unwrap_or("?"), p["message"].as_str().unwrap_or("?"));
    }
    Ok(())
}

async fn service_names(client: &ApiClient) -> Vec<String> {
    client
        .get::<Vec<AppSummary>>("/api/apps")
        .await
        .map(|apps| apps.into_iter().map(|a| a.name).collect())
        .unwrap_or_default()
}
