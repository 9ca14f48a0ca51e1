//! `apollo catalog …`: the operator's view of the `catalog` module (a Consul-compatible
//! registry) from the command line — the services, one service's instances with their
//! check status, and the KV store. Every command is an HTTP call through the ordinary
//! CLI client to the module's Consul API under `/api/module/catalog/v1/…`; the host
//! authenticates the caller, whom the module then takes as an operator.

use std::path::PathBuf;

use bytes::Bytes;
use clap::{Args, Subcommand};
use http::{Method, StatusCode};
use serde_json::Value;

use super::config::encode;
use super::output::{or_dash, print_json, print_table};
use super::{ApiClient, CliError, GlobalArgs, RawResponse};

/// Where the host mounts the module's Consul API.
const MOUNT: &str = "/api/module/catalog/v1";

#[derive(Debug, Args)]
pub struct CatalogArgs {
    #[command(subcommand)]
    pub command: CatalogCommand,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// The services the catalog lists, with their tags.
    Services,
    /// One service's instances: address, node, check status, tags.
    Instances {
        /// The service name.
        name: String,
        /// Only instances whose every check passes.
        #[arg(long)]
        passing: bool,
    },
    /// The key/value store.
    #[command(subcommand)]
    Kv(KvCommand),
}

#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Print a key's value as stored.
    Get { key: String },
    /// Store a value (the argument, or the contents of --file).
    Put {
        key: String,
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        value: Option<String>,
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Delete a key (with --recurse, every key under it).
    Delete {
        key: String,
        #[arg(long)]
        recurse: bool,
    },
    /// The keys under a prefix (all when none is given).
    List { prefix: Option<String> },
}

pub async fn run(g: &GlobalArgs, args: CatalogArgs) -> Result<(), CliError> {
    let client = super::connect(g)?;
    match args.command {
        CatalogCommand::Services => services(&client, g.json).await,
        CatalogCommand::Instances { name, passing } => instances(&client, &name, passing, g.json).await,
        CatalogCommand::Kv(command) => kv(&client, command, g.json).await,
    }
}

async fn services(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let listed = get_json(client, &format!("{MOUNT}/catalog/services")).await?;
    if json {
        print_json(&listed);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = listed
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, tags)| vec![name.clone(), or_dash(joined(tags))])
        .collect();
    print_table(&["SERVICE", "TAGS"], &rows);
    Ok(())
}

async fn instances(client: &ApiClient, name: &str, passing: bool, json: bool) -> Result<(), CliError> {
    let filter = if passing { "?passing=1" } else { "" };
    let entries = get_json(client, &format!("{MOUNT}/health/service/{}{filter}", encode(name))).await?;
    if json {
        print_json(&entries);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            let service = &entry["Service"];
            let address = match service["Address"].as_str() {
                Some(a) if !a.is_empty() => a,
                _ => entry["Node"]["Address"].as_str().unwrap_or(""),
            };
            vec![
                service["ID"].as_str().unwrap_or("").to_owned(),
                format!("{address}:{}", service["Port"]),
                entry["Node"]["Node"].as_str().unwrap_or("").to_owned(),
                status(&entry["Checks"]).to_owned(),
                or_dash(joined(&service["Tags"])),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no instances of {name}{}", if passing { " pass their checks" } else { "" });
        return Ok(());
    }
    print_table(&["ID", "ADDRESS", "NODE", "STATUS", "TAGS"], &rows);
    Ok(())
}

/// Consul's aggregate: the worst of the checks (critical > warning > passing).
fn status(checks: &Value) -> &'static str {
    let statuses: Vec<&str> = checks.as_array().into_iter().flatten().filter_map(|c| c["Status"].as_str()).collect();
    if statuses.contains(&"critical") {
        "critical"
    } else if statuses.contains(&"warning") {
        "warning"
    } else {
        "passing"
    }
}

fn joined(list: &Value) -> String {
    list.as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(",")
}

async fn kv(client: &ApiClient, command: KvCommand, json: bool) -> Result<(), CliError> {
    match command {
        KvCommand::Get { key } => {
            let path = format!("{MOUNT}/kv/{}?raw", key_path(&key)?);
            let response = send(client, Method::GET, &path, None).await?;
            if response.status == StatusCode::NOT_FOUND {
                return Err(CliError::failed(format!("no key {key:?} in the catalog's KV store")));
            }
            let value = checked(&path, response)?;
            if json {
                print_json(&serde_json::json!({"key": key, "value": String::from_utf8_lossy(&value)}));
            } else {
                println!("{}", String::from_utf8_lossy(&value));
            }
        }
        KvCommand::Put { key, value, file } => {
            let bytes = match (value, file) {
                (Some(v), _) => Bytes::from(v),
                (None, Some(path)) => Bytes::from(
                    std::fs::read(&path)
                        .map_err(|e| CliError::failed(format!("cannot read {}: {e}", path.display())))?,
                ),
                (None, None) => return Err(CliError::usage("give a value or --file")),
            };
            let path = format!("{MOUNT}/kv/{}", key_path(&key)?);
            let stored = checked(&path, send(client, Method::PUT, &path, Some(bytes)).await?)?;
            if stored.as_ref() != b"true" {
                return Err(CliError::failed(format!("the catalog did not store {key:?}")));
            }
            println!("stored {key}");
        }
        KvCommand::Delete { key, recurse } => {
            let path = format!("{MOUNT}/kv/{}{}", key_path(&key)?, if recurse { "?recurse" } else { "" });
            checked(&path, send(client, Method::DELETE, &path, None).await?)?;
            println!("deleted {key}{}", if recurse { " and the keys under it" } else { "" });
        }
        KvCommand::List { prefix } => {
            let prefix = prefix.unwrap_or_default();
            let path = format!("{MOUNT}/kv/{}?keys", key_path(&prefix)?);
            let response = send(client, Method::GET, &path, None).await?;
            let keys = if response.status == StatusCode::NOT_FOUND {
                Value::Array(Vec::new())
            } else {
                serde_json::from_slice(&checked(&path, response)?)
                    .map_err(|e| CliError::failed(format!("the catalog answered {path} with no key list: {e}")))?
            };
            if json {
                print_json(&keys);
            } else {
                keys.as_array().into_iter().flatten().filter_map(Value::as_str).for_each(|k| println!("{k}"));
            }
        }
    }
    Ok(())
}

/// A key as a path: each segment percent-encoded, the `/`s kept (Consul keys are paths).
fn key_path(key: &str) -> Result<String, CliError> {
    if key.starts_with('/') {
        return Err(CliError::usage(format!("key {key:?}: Consul keys do not start with `/`")));
    }
    Ok(key.split('/').map(encode).collect::<Vec<_>>().join("/"))
}

async fn send(client: &ApiClient, method: Method, path: &str, body: Option<Bytes>) -> Result<RawResponse, CliError> {
    let answer = match body {
        Some(bytes) => client.send_bytes(method, path, "application/octet-stream", bytes).await,
        None => client.send(method, path, None).await,
    };
    answer.map_err(CliError::from)
}

async fn get_json(client: &ApiClient, path: &str) -> Result<Value, CliError> {
    let body = checked(path, send(client, Method::GET, path, None).await?)?;
    serde_json::from_slice(&body)
        .map_err(|e| CliError::failed(format!("the catalog answered {path} with no JSON: {e}")))
}

/// A 2xx answer's body; otherwise the host's message (a missing module says so) or the
/// module's Consul-style plain-text error.
fn checked(path: &str, response: RawResponse) -> Result<Bytes, CliError> {
    if response.status.is_success() {
        return Ok(response.body);
    }
    let code = response.status.as_u16();
    if let Some(message) = response.json()["error"]["message"].as_str() {
        if message.starts_with("no module named \"catalog\"") {
            return Err(CliError::failed(
                "module catalog is not loaded on this host (`apollo module list` shows its modules)",
            ));
        }
        return Err(CliError::failed(format!("{message} (HTTP {code})")));
    }
    let text = String::from_utf8_lossy(&response.body);
    Err(CliError::failed(format!("catalog {path}: {} (HTTP {code})", text.trim())))
}
