//! The `apollo` command line: the daemon (`apollo serve`) and the client commands that
//! talk to a running host over its unix socket (default) or `--addr URL --token T`.
//! Exit codes: 0 success, 1 the operation failed, 2 bad usage or config.

mod catalog_command;
mod client;
mod commands;
mod config;
mod config_command;
mod generated;
pub mod import;
mod import_command;
mod monit;
mod output;
mod scaffold;
mod serve;
mod shell;
pub(crate) mod size;
mod start;
mod startup;

pub use client::{ApiClient, ClientError, Endpoint, RawResponse};
pub use scaffold::scaffold_service;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(name = "apollo", version = crate::VERSION, about = "Apollo: register, supervise and serve microservices")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Config file (default: ./conf/apollo.pig if present, else built-in defaults).
    #[arg(long, global = true, env = "APOLLO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Talk to a host at this address (http://HOST:PORT or unix:/path) instead of the
    /// config's unix socket.
    #[arg(long, global = true, env = "APOLLO_ADDR")]
    pub addr: Option<String>,
    /// Bearer token for --addr over TCP (from `apollo login`).
    #[arg(long, global = true, env = "APOLLO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the host (the daemon).
    Serve,
    /// Inspect services.
    #[command(subcommand)]
    App(AppCommand),
    /// Alarms: list (open by default), acknowledge.
    #[command(subcommand)]
    Alarm(AlarmCommand),
    /// Runtime modules: list, reload, enable, disable.
    #[command(subcommand)]
    Module(ModuleCommand),
    /// Re-read the model folder now.
    Reload,
    /// Validate the config and every model file without a running host.
    Check,
    /// Print the CLI's and the host's versions.
    Version,
    /// Print an argon2 hash of a password for `auth.admin_password_hash`.
    Passwd {
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        stdin: bool,
    },
    /// Log in to a host over TCP and print a token for --token / APOLLO_TOKEN.
    Login {
        #[arg(long, default_value = "admin")]
        user: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Follow the host's events (service states, model changes, module loads, …).
    Events {
        /// Comma-separated kinds, e.g. service_state,model_added.
        #[arg(long)]
        kinds: Option<String>,
        /// Only events about this service or module.
        #[arg(long)]
        name: Option<String>,
    },
    /// Backups: with no subcommand, write one now; `list`, `restore ID`, `delete ID`.
    Backup {
        #[command(subcommand)]
        action: Option<BackupCommand>,
    },
    /// Show the audit log of mutating calls.
    Audit {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Scaffold a new service: a model file and working manage scripts.
    New {
        name: String,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Interactive shell with history and completion.
    Shell,
    /// Register a supervised service from a command line and start it (like `pm2 start`).
    ///
    /// apollo start NAME [-i N] [-e K=V]… [--watch [PATH]] -- CMD ARGS…
    Start(start::StartArgs),
    /// Stop a service and archive its model under <data_dir>/deleted-models/.
    Delete { name: String },
    /// Live terminal dashboard: every service's state, CPU, memory, restarts, uptime and
    /// ports, the selected one's log, keys to start/stop/restart it (? for keys).
    Monit,
    /// Start the host at boot: print or install an init-system unit.
    #[command(subcommand)]
    Startup(startup::StartupCommand),
    /// Print a shell completion script (e.g. `apollo completions bash > /etc/bash_completion.d/apollo`).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), or write one page per command into --out-dir.
    #[command(hide = true)]
    Man {
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Convert a supervisord or PM2 configuration into service models.
    #[command(subcommand)]
    Import(ImportCommand),
    /// The config module (a Ctrip Apollo configuration center): apps, namespaces,
    /// items, releases, gray branches, consumers, access keys.
    Config(config_command::ConfigArgs),
    /// The catalog module (a Consul-compatible registry): services, instances, KV.
    Catalog(catalog_command::CatalogArgs),
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// `[program:x]` sections of a supervisord .conf file.
    Supervisord(ImportArgs),
    /// The apps of a PM2 ecosystem JSON file.
    Pm2(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The supervisord .conf or PM2 ecosystem .json file.
    pub file: PathBuf,
    /// Write model files into DIR instead of handing them to the host (offline; no host needed).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace models the host (or DIR) already has; the host archives the old ones.
    #[arg(long)]
    pub force: bool,
    /// Print the models and findings; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// Open alarms, or those in another state.
    List {
        /// open, acked, resolved or all.
        #[arg(long, default_value = "open")]
        state: String,
    },
    /// Acknowledge an alarm (it stays until resolved, counting repeats).
    Ack { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Loaded modules, refused libraries, disabled modules.
    List,
    /// Re-read the modules folder (or load one module's file again).
    Reload { name: Option<String> },
    /// Put a disabled module back in service.
    Enable { name: String },
    /// Take a module out of service (kept out across restarts).
    Disable { name: String },
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write a backup now (the same as `apollo backup`).
    Create,
    /// Backups in app_back_up, newest first.
    List,
    /// Restore app_root and the manage scripts from a backup, restarting the services
    /// that were running.
    Restore { id: String },
    /// Delete a backup.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// List services with their status.
    List,
    /// Show one service's model and runtime data.
    Info { name: String },
    /// Show status of one service, or all with -a.
    Status {
        name: Option<String>,
        #[arg(short = 'a', long = "all")]
        all: bool,
    },
    /// Start a service (its run_dep first), or all with -a (in dependency waves).
    Start {
        name: Option<String>,
        #[arg(short = 'a', long = "all")]
        all: bool,
    },
    /// Stop a service (with its dependants and stop_chain), or all with -a.
    Stop {
        name: Option<String>,
        #[arg(short = 'a', long = "all")]
        all: bool,
    },
    /// Restart a service, or all with -a.
    Restart {
        name: Option<String>,
        #[arg(short = 'a', long = "all")]
        all: bool,
    },
    /// Kill a service: force_kill script, or SIGKILL to its process group; -a: all.
    Kill {
        name: Option<String>,
        #[arg(short = 'a', long = "all")]
        all: bool,
    },
    /// Print a service's log; -f keeps following it.
    Logs {
        name: String,
        #[arg(short = 'f', long)]
        follow: bool,
        /// Lines from the end.
        #[arg(short = 'n', long, default_value_t = 100)]
        tail: usize,
    },
}

/// The failure of one command: what to print and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    pub fn failed(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: 1 }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: 2 }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Usage(m) => Self::usage(m),
            other => Self::failed(other.to_string()),
        }
    }
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        Self::usage(e.to_string())
    }
}

/// Entry point of the `apollo` binary.
pub fn main() -> ExitCode {
    // Before any thread exists, so no arena is created under the default limit.
    crate::allocator::tune();
    let cli = Cli::parse();
    let admin_password = take_admin_password_from_env();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli, admin_password)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

/// Reads `APOLLO_ADMIN_PASSWORD` and removes it from the environment, so no child
/// process (manage scripts, services) ever inherits the admin password.
fn take_admin_password_from_env() -> Option<String> {
    let value = std::env::var(crate::auth::ADMIN_PASSWORD_ENV).ok();
    if value.is_some() {
        // SAFETY: called at the top of `main`, before the tokio runtime or any other
        // thread exists, so nothing can read the environment concurrently.
        #[allow(unsafe_code)]
        unsafe {
            std::env::remove_var(crate::auth::ADMIN_PASSWORD_ENV);
        }
    }
    value
}

/// Runs one command. `admin_password` is `APOLLO_ADMIN_PASSWORD`, taken out of the
/// environment by `main`.
pub async fn run(cli: Cli, admin_password: Option<String>) -> Result<(), CliError> {
    let g = &cli.global;
    match cli.command {
        Command::Serve => serve::serve(g, admin_password).await,
        Command::Check => commands::check(g),
        Command::Passwd { stdin } => commands::passwd(stdin),
        Command::New { name, force } => commands::new_service(g, &name, force),
        Command::Login { user, password_stdin } => commands::login(g, &user, password_stdin).await,
        Command::App(app) => {
            let client = connect(g)?;
            match app {
                AppCommand::List => commands::app_list(&client, g.json).await,
                AppCommand::Info { name } => commands::app_info(&client, &name, g.json).await,
                AppCommand::Status { name, all } => commands::app_status(&client, name.as_deref(), all, g.json).await,
                AppCommand::Start { name, all } => {
                    commands::app_action(&client, "start", name.as_deref(), all, g.json).await
                }
                AppCommand::Stop { name, all } => {
                    commands::app_action(&client, "stop", name.as_deref(), all, g.json).await
                }
                AppCommand::Restart { name, all } => {
                    commands::app_action(&client, "restart", name.as_deref(), all, g.json).await
                }
                AppCommand::Kill { name, all } => {
                    commands::app_action(&client, "kill", name.as_deref(), all, g.json).await
                }
                AppCommand::Logs { name, follow, tail } => commands::app_logs(&client, &name, follow, tail).await,
            }
        }
        Command::Reload => commands::reload(&connect(g)?, g.json).await,
        Command::Alarm(a) => {
            let client = connect(g)?;
            match a {
                AlarmCommand::List { state } => commands::alarm_list(&client, &state, g.json).await,
                AlarmCommand::Ack { id } => commands::alarm_ack(&client, id, g.json).await,
            }
        }
        Command::Module(m) => {
            let client = connect(g)?;
            match m {
                ModuleCommand::List => commands::module_list(&client, g.json).await,
                ModuleCommand::Reload { name } => {
                    commands::module_action(&client, "reload", name.as_deref(), g.json).await
                }
                ModuleCommand::Enable { name } => commands::module_action(&client, "enable", Some(&name), g.json).await,
                ModuleCommand::Disable { name } => {
                    commands::module_action(&client, "disable", Some(&name), g.json).await
                }
            }
        }
        Command::Version => commands::version(g).await,
        Command::Events { kinds, name } => commands::events(&connect(g)?, kinds.as_deref(), name.as_deref()).await,
        Command::Backup { action } => {
            let client = connect(g)?;
            match action {
                None | Some(BackupCommand::Create) => commands::backup_create(&client, g.json).await,
                Some(BackupCommand::List) => commands::backup_list(&client, g.json).await,
                Some(BackupCommand::Restore { id }) => commands::backup_restore(&client, &id, g.json).await,
                Some(BackupCommand::Delete { id }) => commands::backup_delete(&client, &id).await,
            }
        }
        Command::Audit { limit } => commands::audit(&connect(g)?, limit, g.json).await,
        Command::Shell => shell::run(connect(g)?, g.clone()).await,
        Command::Start(args) => start::start(&connect(g)?, &args, g.json).await,
        Command::Delete { name } => start::delete(&connect(g)?, &name, g.json).await,
        Command::Monit => monit::run(connect(g)?).await,
        Command::Startup(target) => startup::run(g, target),
        Command::Completions { shell } => generated::completions(shell),
        Command::Man { out_dir } => generated::man(out_dir.as_deref()),
        Command::Import(source) => {
            let (format, a) = match source {
                ImportCommand::Supervisord(a) => (import_command::SourceFormat::Supervisord, a),
                ImportCommand::Pm2(a) => (import_command::SourceFormat::Pm2, a),
            };
            let request =
                import_command::ImportRequest { format, file: a.file, out: a.out, force: a.force, dry_run: a.dry_run };
            import_command::import(g, request).await
        }
        Command::Config(args) => config_command::run(g, args).await,
        Command::Catalog(args) => catalog_command::run(g, args).await,
    }
}

/// The client for the global flags: `--addr` if given, else the config's socket.
pub fn connect(g: &GlobalArgs) -> Result<ApiClient, CliError> {
    let endpoint = match &g.addr {
        Some(addr) => Endpoint::parse(addr)?,
        None => Endpoint::Unix(load_config(g)?.server.uds),
    };
    Ok(ApiClient::new(endpoint, g.token.clone()))
}

/// The config the global flags point at; its warnings go to standard error.
pub fn load_config(g: &GlobalArgs) -> Result<Config, CliError> {
    let loaded = Config::discover(g.config.as_deref())?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(loaded.config)
}
