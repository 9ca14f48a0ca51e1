//! `apollo start NAME -- CMD ARGS…` and `apollo delete NAME`: PM2's one-line daily
//! tools over the host's API. `start` builds an octopus model with `run_data.command`
//! (argv, never a shell line), writes it with `PUT /api/apps/{name}/model` and starts
//! the service; `delete` stops it and has the host archive its model.
//!
//! It does not write files itself (the host may be remote) and builds no shell string.
//! [`put_model`] is the one client call that writes a model; importers reuse it.

use clap::{ArgAction, Args, ValueEnum};
use serde_json::{Value, json};

use super::output::{or_dash, print_json, print_table};
use super::size::parse_memory_limit;
use super::{ApiClient, CliError, ClientError};
use crate::api::{DeleteResponse, ModelWriteOutcome, PutModelResponse};
use crate::model::is_valid_service_name;
use crate::supervisor::ServiceStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RestartArg {
    Never,
    OnFailure,
    Always,
}

impl RestartArg {
    /// The model's `supervise.restart` spelling.
    fn as_model(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::OnFailure => "on-failure",
            Self::Always => "always",
        }
    }
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Service name: its model is `<app_root>/.octopus/NAME.pig`, its working
    /// directory `<app_root>/NAME`.
    pub name: String,
    /// The command and its arguments, after `--`; run directly, without a shell.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
    /// Copies to run; each gets INSTANCE_ID (0-based).
    #[arg(short = 'i', long, default_value_t = 1)]
    pub instances: u32,
    /// An environment variable for the service (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// When to restart it after it exits.
    #[arg(long, value_enum, default_value_t = RestartArg::OnFailure)]
    pub restart: RestartArg,
    /// Restart an instance whose memory (RSS) exceeds this: 200M, 1G, 512K or bytes.
    #[arg(long, value_name = "SIZE", value_parser = parse_memory_limit)]
    pub max_memory: Option<u64>,
    /// Restart on file changes in the service's directory; with PATH (relative to that
    /// directory, repeatable) only under PATH.
    #[arg(long, value_name = "PATH", num_args = 0..=1, action = ArgAction::Append)]
    pub watch: Option<Vec<String>>,
    /// With --watch: changes to paths matching GLOB do not restart (repeatable).
    #[arg(long, value_name = "GLOB", requires = "watch")]
    pub ignore: Vec<String>,
    /// With --watch: quiet time after the last change before the one restart.
    #[arg(long, value_name = "MS", requires = "watch")]
    pub watch_debounce_ms: Option<u64>,
    /// Working directory, relative to the service's directory.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Replace an existing, different model of this name (the host archives the old one).
    #[arg(long)]
    pub force: bool,
}

/// The model `apollo start` registers: the scaffolder's identity fields and the
/// supervision the flags ask for; everything else keeps the model's defaults.
pub fn model_for(args: &StartArgs) -> Result<Value, CliError> {
    if !is_valid_service_name(&args.name) {
        return Err(CliError::usage(format!(
            "{:?} is not a valid service name: use letters, digits, '-', '_', '.' (max 64, not starting with '.')",
            args.name
        )));
    }
    if let Some(bad) = args.env.iter().find(|e| e.split_once('=').is_none_or(|(k, _)| k.is_empty())) {
        return Err(CliError::usage(format!("--env {bad:?}: expected KEY=VALUE")));
    }
    let mut supervise = json!({
        "instances": args.instances,
        "restart": args.restart.as_model(),
    });
    if let Some(bytes) = args.max_memory {
        supervise["max_memory_restart"] = json!(bytes);
    }
    if let Some(paths) = &args.watch {
        let mut watch = json!({ "enabled": true, "paths": paths, "ignore": args.ignore });
        if let Some(ms) = args.watch_debounce_ms {
            watch["debounce_ms"] = json!(ms);
        }
        supervise["watch"] = watch;
    }
    Ok(json!({
        "name": args.name,
        "id": format!("app_{}", args.name),
        "type": "Service",
        "release_status": "published",
        "eng_des": format!("{} (apollo start)", args.command.join(" ")),
        "meta": { "create_date": chrono::Utc::now().format("%Y-%m-%d").to_string() },
        "run_data": {
            "command": args.command,
            "envs": args.env,
            "cwd": args.cwd.clone().unwrap_or_default(),
        },
        "supervise": supervise,
    }))
}

/// `PUT /api/apps/{name}/model`: validates, writes and loads a model on the host.
/// Without `force` an existing, different model of this name is a 409 and nothing
/// changes; with it the old file is archived under `<data_dir>/deleted-models/`.
pub async fn put_model(
    client: &ApiClient,
    name: &str,
    model: &Value,
    force: bool,
) -> Result<PutModelResponse, ClientError> {
    if !is_valid_service_name(name) {
        return Err(ClientError::Usage(format!("{name:?} is not a valid service name")));
    }
    let body = json!({ "model": model, "force": force });
    client.call(http::Method::PUT, &format!("/api/apps/{name}/model"), Some(&body)).await
}

/// `apollo start`: register (or keep) the model, then start the service. A replaced
/// model of a running service is applied by a restart.
pub async fn start(client: &ApiClient, args: &StartArgs, json_output: bool) -> Result<(), CliError> {
    let model = model_for(args)?;
    let written = put_model(client, &args.name, &model, args.force).await.map_err(|e| match e.status() {
        Some(409) if !args.force => CliError::failed(format!("{e}\nnothing was changed")),
        _ => e.into(),
    })?;
    let name = &args.name;
    let before: ServiceStatus = client.get(&format!("/api/apps/{name}/status")).await?;
    let action =
        if written.outcome == ModelWriteOutcome::Replaced && before.state.is_active() { "restart" } else { "start" };
    let started: Result<ServiceStatus, ClientError> = client.post(&format!("/api/apps/{name}/{action}"), None).await;
    if json_output {
        let (status, error) = match &started {
            Ok(s) => (json!(s), Value::Null),
            Err(e) => (Value::Null, json!(e.to_string())),
        };
        print_json(&json!({ "model": written, "status": status, "error": error }));
    } else {
        let archived =
            written.archived_to.as_deref().map(|a| format!("; the old one is archived at {a}")).unwrap_or_default();
        let what = match written.outcome {
            ModelWriteOutcome::Created => "registered",
            ModelWriteOutcome::Replaced => "replaced",
            ModelWriteOutcome::Unchanged => "unchanged",
        };
        println!("{name}: model {what} ({}){archived}", written.file);
        if let Ok(status) = &started {
            print_status(status);
        }
    }
    started.map(|_| ()).map_err(|e| {
        CliError::failed(format!(
            "{name}: the model is registered, but {action} failed: {e}\n\
             fix the command and run `apollo start {name} --force -- …`, or remove it with `apollo delete {name}`"
        ))
    })
}

fn print_status(s: &ServiceStatus) {
    let pids: Vec<String> = s.instances.iter().filter_map(|i| i.pid).map(|p| p.to_string()).collect();
    print_table(
        &["NAME", "STATE", "PIDS", "RESTARTS", "MESSAGE"],
        &[vec![
            s.name.clone(),
            s.state.as_str().to_string(),
            or_dash(pids.join(",")),
            s.restarts.to_string(),
            or_dash(s.message.clone()),
        ]],
    );
}

/// `apollo delete NAME`: stopped, and its model archived (the output says where).
pub async fn delete(client: &ApiClient, name: &str, json_output: bool) -> Result<(), CliError> {
    if !is_valid_service_name(name) {
        return Err(CliError::usage(format!("{name:?} is not a valid service name")));
    }
    let deleted: DeleteResponse = client.call(http::Method::DELETE, &format!("/api/apps/{name}"), None).await?;
    if json_output {
        print_json(&deleted);
    } else {
        println!("{name}: stopped (was {}); model {} removed", deleted.previous_state, deleted.file);
        println!("archived at {} (move it back into the model folder to restore the service)", deleted.archived_to);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: StartArgs,
    }

    fn parse(argv: &[&str]) -> Result<StartArgs, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("start").chain(argv.iter().copied())).map(|w| w.args)
    }

    #[test]
    fn flags_become_the_model_pm2_would_run() {
        let args = parse(&[
            "api",
            "-i",
            "2",
            "--env",
            "A=1",
            "--env",
            "B=x=y",
            "--restart",
            "always",
            "--max-memory",
            "200M",
            "--watch",
            "--ignore",
            "*.tmp",
            "--",
            "node",
            "app.js",
            "--port",
            "80",
        ])
        .unwrap();
        let model = model_for(&args).unwrap();
        assert_eq!(model["run_data"]["command"], json!(["node", "app.js", "--port", "80"]));
        assert_eq!(model["run_data"]["envs"], json!(["A=1", "B=x=y"]));
        assert_eq!(model["supervise"]["instances"], 2);
        assert_eq!(model["supervise"]["restart"], "always");
        assert_eq!(model["supervise"]["max_memory_restart"], 200 * 1024 * 1024);
        assert_eq!(model["supervise"]["watch"], json!({"enabled": true, "paths": [], "ignore": ["*.tmp"]}));
        // What the CLI builds must pass the host's parser.
        let parsed = crate::model::parse_model(&model.to_string(), &|_| None).unwrap();
        assert!(parsed.supervise.watch.enabled);
        assert_eq!(parsed.supervise.watch.debounce_ms, 500);

        let args = parse(&["api", "--watch", "src", "--watch", "conf", "--", "node", "app.js"]).unwrap();
        assert_eq!(model_for(&args).unwrap()["supervise"]["watch"]["paths"], json!(["src", "conf"]));
        let args = parse(&["api", "--", "sleep", "5"]).unwrap();
        assert!(model_for(&args).unwrap()["supervise"].get("watch").is_none());
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        assert!(parse(&["api"]).is_err(), "a command is required");
        assert!(parse(&["api", "--max-memory", "lots", "--", "x"]).is_err());
        assert!(parse(&["api", "--ignore", "*.tmp", "--", "x"]).is_err(), "--ignore needs --watch");
        let err = model_for(&parse(&["api", "--env", "NOVALUE", "--", "x"]).unwrap()).unwrap_err();
        assert_eq!(err.code, 2);
        assert!(err.message.contains("KEY=VALUE"), "{}", err.message);
        let err = model_for(&parse(&["../x", "--", "x"]).unwrap()).unwrap_err();
        assert!(err.message.contains("not a valid service name"), "{}", err.message);
    }
}
