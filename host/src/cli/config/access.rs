//! `apollo config consumers|accesskeys`: who may call the Open API (consumer tokens
//! with edit/release rights per app) and what clients sign their requests with (an
//! app's access keys), through the module's admin routes. Tokens and secrets are
//! printed once, when created: the module never shows them again.

use std::collections::BTreeMap;

use clap::Subcommand;
use serde_json::{Value, json};

use super::namespaces::list;
use super::{ConfigApi, MOUNT, cell, check_name, encode, time};
use crate::cli::CliError;
use crate::cli::output::{or_dash, print_table};

#[derive(Debug, Subcommand)]
pub enum ConsumerCommand {
    /// Consumers and their rights (tokens are never listed).
    List,
    /// Create a consumer and print its token (shown only now).
    Create {
        name: String,
        /// An app it may edit (repeatable).
        #[arg(long, value_name = "APPID")]
        edit: Vec<String>,
        /// An app it may release (repeatable).
        #[arg(long, value_name = "APPID")]
        release: Vec<String>,
    },
    /// Set a consumer's rights on one app (neither flag: revoke them).
    Grant {
        name: String,
        /// The app id.
        app: String,
        #[arg(long)]
        edit: bool,
        #[arg(long)]
        release: bool,
    },
    /// Delete a consumer; its token stops working.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AccessKeyCommand {
    /// The app's keys, secrets masked.
    List,
    /// Create a key and print its secret (shown only now).
    Create {
        /// Only log requests with a wrong signature instead of refusing them.
        #[arg(long)]
        observe: bool,
    },
    /// Enforce a key again.
    Enable { id: String },
    /// Stop enforcing a key.
    Disable { id: String },
    /// Delete a key.
    Delete { id: String },
}

/// `apollo config consumers [list|create|grant|delete]`.
pub async fn consumers(api: &ConfigApi<'_>, action: ConsumerCommand) -> Result<(), CliError> {
    let base = format!("{MOUNT}/admin/consumers");
    match action {
        ConsumerCommand::List => {
            let listed = api.get(&base).await?;
            if api.printed_json(&listed) {
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list(&listed)
                .iter()
                .map(|c| vec![cell(&c["name"]), or_dash(rights(&c["apps"])), or_dash(time(&c["created"]))])
                .collect();
            print_table(&["NAME", "APPS", "CREATED"], &rows);
        }
        ConsumerCommand::Create { name, edit, release } => {
            let mut apps: BTreeMap<String, Value> = BTreeMap::new();
            for app in edit.iter().chain(&release) {
                check_name("app id", app)?;
                apps.insert(app.clone(), json!({"edit": edit.contains(app), "release": release.contains(app)}));
            }
            let created = api.post(&base, &json!({"name": name, "apps": apps})).await?;
            if !api.printed_json(&created) {
                println!("{}", cell(&created["token"]));
                eprintln!(
                    "consumer {name} created; its token (above) is shown only now: clients send it as `Authorization: <token>`"
                );
            }
        }
        ConsumerCommand::Grant { name, app, edit, release } => {
            check_name("app id", &app)?;
            let path = format!("{base}/{}/apps/{app}", encode(&name));
            let answer = api.put(&path, &json!({"edit": edit, "release": release})).await?;
            if !api.printed_json(&answer) {
                let what = match (edit, release) {
                    (false, false) => "no rights".to_string(),
                    _ => [("edit", edit), ("release", release)]
                        .iter()
                        .filter(|(_, on)| *on)
                        .map(|(r, _)| *r)
                        .collect::<Vec<_>>()
                        .join("+"),
                };
                println!("consumer {name} now has {what} on app {app}");
            }
        }
        ConsumerCommand::Delete { name } => {
            let answer = api.delete(&format!("{base}/{}", encode(&name))).await?;
            if !api.printed_json(&answer) {
                println!("deleted consumer {name}; its token no longer works");
            }
        }
    }
    Ok(())
}

/// `app1:edit+release, app2:edit` from `{"app1":{"edit":true,"release":true},…}`.
fn rights(apps: &Value) -> String {
    let Some(apps) = apps.as_object() else { return String::new() };
    apps.iter()
        .map(|(app, r)| {
            let granted: Vec<&str> =
                ["edit", "release"].into_iter().filter(|k| r[*k].as_bool() == Some(true)).collect();
            format!("{app}:{}", if granted.is_empty() { "none".to_string() } else { granted.join("+") })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `apollo config accesskeys APPID [list|create|enable|disable|delete]`.
pub async fn access_keys(api: &ConfigApi<'_>, app: &str, action: AccessKeyCommand) -> Result<(), CliError> {
    check_name("app id", app)?;
    let base = format!("{MOUNT}/admin/apps/{app}/accesskeys");
    match action {
        AccessKeyCommand::List => {
            let listed = api.get(&base).await?;
            if api.printed_json(&listed) {
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list(&listed)
                .iter()
                .map(|k| {
                    vec![
                        cell(&k["id"]),
                        cell(&k["secret"]),
                        if k["enabled"].as_bool().unwrap_or(false) { "enabled" } else { "disabled" }.to_string(),
                        mode(&k["mode"]).to_string(),
                    ]
                })
                .collect();
            print_table(&["ID", "SECRET", "STATE", "MODE"], &rows);
        }
        AccessKeyCommand::Create { observe } => {
            let created = api.post(&base, &json!({"mode": if observe { 1 } else { 0 }})).await?;
            if !api.printed_json(&created) {
                println!("{}", cell(&created["secret"]));
                eprintln!(
                    "access key {} of app {app} created ({}); its secret (above) is shown only now",
                    cell(&created["id"]),
                    mode(&created["mode"])
                );
            }
        }
        AccessKeyCommand::Enable { id } => switch(api, app, &base, &id, true).await?,
        AccessKeyCommand::Disable { id } => switch(api, app, &base, &id, false).await?,
        AccessKeyCommand::Delete { id } => {
            let answer = api.delete(&format!("{base}/{}", encode(&id))).await?;
            if !api.printed_json(&answer) {
                println!("deleted access key {id} of app {app}");
            }
        }
    }
    Ok(())
}

/// Enables or disables a key, keeping its mode.
async fn switch(api: &ConfigApi<'_>, app: &str, base: &str, id: &str, enabled: bool) -> Result<(), CliError> {
    let listed = api.get(base).await?;
    let key = list(&listed)
        .into_iter()
        .find(|k| cell(&k["id"]) == id)
        .ok_or_else(|| CliError::failed(format!("app {app} has no access key {id}")))?;
    let body = json!({"enabled": enabled, "mode": key["mode"].as_i64().unwrap_or(0)});
    let answer = api.put(&format!("{base}/{}", encode(id)), &body).await?;
    if !api.printed_json(&answer) {
        println!("access key {id} of app {app} {}", if enabled { "enabled" } else { "disabled" });
    }
    Ok(())
}

/// Ctrip's access-key modes.
fn mode(v: &Value) -> &'static str {
    match v.as_i64() {
        Some(1) => "observe: mismatches only logged",
        _ => "filter: enforced",
    }
}
