//! `apollo config …`: the operator's side of the `config` module (a Ctrip Apollo
//! configuration center) from the command line. This file is the clap definition and
//! the dispatch only; the calls and their printing live in `cli/config/`.
//!
//! Every command is an HTTP call through the ordinary CLI client (unix socket by
//! default, `--addr/--token` over TCP) to the module's Open API
//! (`/api/module/config/openapi/v1/…`) or admin routes (`/api/module/config/admin/…`);
//! the host authenticates the caller, so the module takes them as the operator. Nothing
//! here knows the module's storage: what the module answers is what is printed.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::config::access::{AccessKeyCommand, ConsumerCommand};
use super::config::gray::GrayCommand;
use super::config::{ConfigApi, access, gray, namespaces, releases};
use super::{CliError, GlobalArgs};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Environment, one of the module's `envs`.
    #[arg(long, global = true, default_value = "DEV")]
    pub env: String,
    /// Cluster of the namespace.
    #[arg(long, global = true, default_value = "default")]
    pub cluster: String,
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// List the apps, or create one with --create.
    Apps {
        /// Create this app (its `application` namespace comes with it).
        #[arg(long, value_name = "APPID")]
        create: Option<String>,
        /// Display name of the new app (default: its id).
        #[arg(long, requires = "create")]
        name: Option<String>,
        /// Organisation id of the new app; prefixes its public namespaces.
        #[arg(long, requires = "create")]
        org: Option<String>,
        /// Owner of the new app (default: $USER).
        #[arg(long, requires = "create")]
        owner: Option<String>,
        /// Owner's e-mail address of the new app.
        #[arg(long, requires = "create")]
        owner_email: Option<String>,
    },
    /// List an app's clusters per env, or create one in --env with --create.
    Clusters {
        /// The app id.
        app: String,
        /// Create this cluster (clients ask for it with `cluster=NAME`; what it lacks
        /// they get from `default`).
        #[arg(long, value_name = "NAME")]
        create: Option<String>,
    },
    /// List an app's namespaces, or create one with --create.
    Namespaces {
        /// The app id.
        app: String,
        /// Create this namespace.
        #[arg(long, value_name = "NS")]
        create: Option<String>,
        /// properties, json, yaml, yml, xml or txt (default: properties).
        #[arg(long, requires = "create")]
        format: Option<String>,
        /// Public: other apps may read (and override) it; named ORG.NS.
        #[arg(long, requires = "create")]
        public: bool,
        /// A comment kept with it.
        #[arg(long, requires = "create")]
        comment: Option<String>,
    },
    /// What clients get: the released configuration (`/configs`), or one key of it.
    Get {
        /// The app id.
        app: String,
        /// The namespace (`application`, `NAME.json`, …).
        namespace: String,
        key: Option<String>,
        /// The working items (edited, maybe not released yet) instead.
        #[arg(long)]
        working: bool,
        /// As a client with this IP sees it (gray rules).
        #[arg(long, conflicts_with = "working")]
        ip: Option<String>,
        /// As a client with this label sees it (gray rules).
        #[arg(long, conflicts_with = "working")]
        label: Option<String>,
    },
    /// Set an item (clients see it after the next release).
    Set {
        /// The app id.
        app: String,
        /// The namespace (`application`, `NAME.json`, …).
        namespace: String,
        /// The key; `content` for json/yaml/xml/txt namespaces.
        key: String,
        #[arg(allow_hyphen_values = true, required_unless_present = "file")]
        value: Option<String>,
        /// Read the value from this file (`-`: standard input).
        #[arg(long, conflicts_with = "value")]
        file: Option<PathBuf>,
        /// A comment kept with it.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Delete an item (clients see it after the next release).
    Delete {
        /// The app id.
        app: String,
        /// The namespace (`application`, `NAME.json`, …).
        namespace: String,
        key: String,
    },
    /// Release the namespace's items to the clients.
    Release {
        /// The app id.
        app: String,
        /// The namespace (`application`, `NAME.json`, …).
        namespace: String,
        /// Release title.
        #[arg(long)]
        title: String,
        /// A comment kept with it.
        #[arg(long)]
        comment: Option<String>,
    },
    /// The namespace's releases, newest first.
    History {
        /// The app id.
        app: String,
        /// The namespace (`application`, `NAME.json`, …).
        namespace: String,
    },
    /// Changes between two releases; with no ids, the working items against the latest
    /// release (what the next release would change).
    Diff {
        /// The app id.
        app: String,
        /// The namespace (`application`, `NAME.json`, …).
        namespace: String,
        /// The older release (with --to alone: the release before it).
        #[arg(long, value_name = "ID")]
        base: Option<i64>,
        /// The newer release (with --base alone: the latest release).
        #[arg(long, value_name = "ID")]
        to: Option<i64>,
    },
    /// Abandon a release: its clients go back to the release before it.
    Rollback { release_id: i64 },
    /// Gray release: a branch whose items reach only the clients its rules match.
    Gray {
        /// The app id.
        app: String,
        /// The namespace (`application`, `NAME.json`, …).
        namespace: String,
        #[command(subcommand)]
        action: GrayCommand,
    },
    /// Open API consumers: tokens with edit/release rights per app.
    Consumers {
        #[command(subcommand)]
        action: Option<ConsumerCommand>,
    },
    /// An app's access keys: secrets its clients sign their requests with.
    Accesskeys {
        /// The app id.
        app: String,
        #[command(subcommand)]
        action: Option<AccessKeyCommand>,
    },
}

/// Runs one `apollo config` command.
pub async fn run(g: &GlobalArgs, args: ConfigArgs) -> Result<(), CliError> {
    let client = super::connect(g)?;
    // Ctrip's request bodies name an operator; the module records the caller the host
    // authenticated instead (`unix-socket`, or the token's user), so this is only a
    // placeholder for them.
    let operator = std::env::var("USER").ok().filter(|o| !o.is_empty()).unwrap_or_else(|| "apollo".into());
    let api = ConfigApi::new(&client, &args.env, &args.cluster, &operator, g.json)?;
    match args.command {
        ConfigCommand::Apps { create: None, .. } => namespaces::apps(&api).await,
        ConfigCommand::Apps { create: Some(app), name, org, owner, owner_email } => {
            let owner = owner.unwrap_or_else(|| operator.clone());
            namespaces::create_app(&api, &app, name.as_deref(), org.as_deref(), &owner, owner_email.as_deref()).await
        }
        ConfigCommand::Clusters { app, create: None } => namespaces::clusters(&api, &app).await,
        ConfigCommand::Clusters { app, create: Some(cluster) } => {
            namespaces::create_cluster(&api, &app, &cluster).await
        }
        ConfigCommand::Namespaces { app, create: None, .. } => namespaces::namespaces(&api, &app).await,
        ConfigCommand::Namespaces { app, create: Some(ns), format, public, comment } => {
            let format = format.as_deref().unwrap_or("properties");
            namespaces::create_namespace(&api, &app, &ns, format, public, comment.as_deref()).await
        }
        ConfigCommand::Get { app, namespace, key, working: true, .. } => {
            namespaces::get_working(&api, &app, &namespace, key.as_deref()).await
        }
        ConfigCommand::Get { app, namespace, key, ip, label, .. } => {
            namespaces::get_released(&api, &app, &namespace, key.as_deref(), ip.as_deref(), label.as_deref()).await
        }
        ConfigCommand::Set { app, namespace, key, value, file, comment } => {
            let value = match (value, file) {
                (Some(v), _) => v,
                (None, Some(path)) => read_value(&path)?,
                (None, None) => return Err(CliError::usage("give a VALUE or --file")),
            };
            namespaces::set(&api, &app, &args.cluster, &namespace, &key, &value, comment.as_deref()).await
        }
        ConfigCommand::Delete { app, namespace, key } => {
            namespaces::delete(&api, &app, &args.cluster, &namespace, &key).await
        }
        ConfigCommand::Release { app, namespace, title, comment } => {
            releases::release(&api, &app, &namespace, &title, comment.as_deref()).await
        }
        ConfigCommand::History { app, namespace } => releases::history(&api, &app, &namespace).await,
        ConfigCommand::Diff { app, namespace, base, to } => releases::diff(&api, &app, &namespace, base, to).await,
        ConfigCommand::Rollback { release_id } => releases::rollback(&api, release_id).await,
        ConfigCommand::Gray { app, namespace, action } => gray::run(&api, &app, &namespace, action).await,
        ConfigCommand::Consumers { action } => access::consumers(&api, action.unwrap_or(ConsumerCommand::List)).await,
        ConfigCommand::Accesskeys { app, action } => {
            access::access_keys(&api, &app, action.unwrap_or(AccessKeyCommand::List)).await
        }
    }
}

/// A value from a file, or from standard input for `-`.
fn read_value(path: &std::path::Path) -> Result<String, CliError> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| CliError::failed(format!("reading standard input: {e}")))?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
    }
}
