//! `apollo config gray APPID NS …`: a namespace's gray branch through the Open API.
//! The branch is a child cluster (as in Ctrip): its items are set like any other
//! cluster's, its rules pick the clients (app + IPs/labels) that get its release.

use clap::Subcommand;
use serde_json::{Value, json};

use super::namespaces::{self, list};
use super::releases::release_body;
use super::{ConfigApi, cell, decode, encode, module_not_found, one_line};
use crate::cli::CliError;
use crate::cli::output::{or_dash, print_json, print_table};

#[derive(Debug, Subcommand)]
pub enum GrayCommand {
    /// Open the gray branch (one per namespace and cluster).
    Create,
    /// The branch, its rules and its items.
    Show,
    /// Print the rules, or replace them with --ip/--label (all apply to --client-app).
    Rules {
        /// Client IPs (comma-separated or repeated; `*` for all).
        #[arg(long, num_args = 1.., value_delimiter = ',')]
        ip: Vec<String>,
        /// Client labels (comma-separated or repeated; `*` for all).
        #[arg(long, num_args = 1.., value_delimiter = ',')]
        label: Vec<String>,
        /// The client app the rule is for (default: the namespace's app).
        #[arg(long, value_name = "APPID")]
        client_app: Option<String>,
    },
    /// Set an item on the branch (overrides the main item for gray clients).
    Set {
        key: String,
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// A comment kept with it.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Delete an item from the branch.
    Delete { key: String },
    /// Release the branch to the clients its rules match.
    Release {
        /// Release title.
        #[arg(long)]
        title: Option<String>,
        /// A comment kept with it.
        #[arg(long)]
        comment: Option<String>,
        /// Also take these main keys away from the gray clients (a gray-delete
        /// release; comma-separated or repeated).
        #[arg(long, value_name = "KEY", num_args = 1.., value_delimiter = ',')]
        delete: Vec<String>,
    },
    /// Merge the branch's items into the main namespace, release it, and close the branch.
    Merge {
        /// Release title.
        #[arg(long)]
        title: Option<String>,
        /// A comment kept with it.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Close the branch; gray clients go back to the main release.
    Abandon,
}

pub async fn run(api: &ConfigApi<'_>, app: &str, namespace: &str, action: GrayCommand) -> Result<(), CliError> {
    let branches = format!("{}/branches", api.namespace_path(app, &api.cluster, namespace)?);
    let what = format!("{app}/{}/{namespace}", api.cluster);
    match action {
        GrayCommand::Create => {
            let created = api.post(&format!("{branches}?operator={}", encode(&api.operator)), &json!({})).await?;
            if !api.printed_json(&created) {
                println!("opened gray branch {} of {what}", cell(&created["clusterName"]));
                println!("next: gray rules --ip/--label, gray set KEY VALUE, gray release");
            }
        }
        GrayCommand::Show => show(api, app, namespace, &branches, &what).await?,
        GrayCommand::Rules { ip, label, client_app } => {
            let branch = branch_name(api, &branches, &what).await?;
            let rules_path = format!("{branches}/{branch}/rules");
            if ip.is_empty() && label.is_empty() {
                if client_app.is_some() {
                    return Err(CliError::usage("--client-app needs --ip or --label"));
                }
                let rules = api.get(&rules_path).await?;
                if !api.printed_json(&rules) {
                    print_rules(&rules);
                }
                return Ok(());
            }
            let body = json!({
                "appId": app,
                "clusterName": api.cluster,
                "namespaceName": namespace,
                "branchName": branch,
                "ruleItems": [{
                    "clientAppId": client_app.as_deref().unwrap_or(app),
                    "clientIpList": ip,
                    "clientLabelList": label,
                }],
            });
            let answer = api.put(&format!("{rules_path}?operator={}", encode(&api.operator)), &body).await?;
            if !api.printed_json(&answer) {
                println!("rules of gray branch {branch} of {what} set; matching clients are told at once");
            }
        }
        GrayCommand::Set { key, value, comment } => {
            let branch = branch_name(api, &branches, &what).await?;
            namespaces::set(api, app, &branch, namespace, &key, &value, comment.as_deref()).await?;
        }
        GrayCommand::Delete { key } => {
            let branch = branch_name(api, &branches, &what).await?;
            namespaces::delete(api, app, &branch, namespace, &key).await?;
        }
        GrayCommand::Release { title, comment, delete } => {
            let branch = branch_name(api, &branches, &what).await?;
            let title = title.unwrap_or_else(|| default_title("gray"));
            let mut body = release_body(api, &title, comment.as_deref());
            let path = if delete.is_empty() {
                format!("{branches}/{branch}/releases")
            } else {
                body["grayDelKeys"] = json!(delete);
                format!("{branches}/{branch}/gray-del-releases")
            };
            let released = api.post(&path, &body).await?;
            if !api.printed_json(&released) {
                println!("released gray branch {branch} of {what} as release {}", cell(&released["id"]));
                if !delete.is_empty() {
                    println!("its clients no longer get: {}", delete.join(", "));
                }
            }
        }
        GrayCommand::Merge { title, comment } => {
            let branch = branch_name(api, &branches, &what).await?;
            let title = title.unwrap_or_else(|| default_title("merge"));
            let path = format!("{branches}/{branch}/merge?deleteBranch=true&operator={}", encode(&api.operator));
            let released = api.post(&path, &release_body(api, &title, comment.as_deref())).await?;
            if !api.printed_json(&released) {
                println!(
                    "merged gray branch {branch} into {what} and released it as release {}",
                    cell(&released["id"])
                );
            }
        }
        GrayCommand::Abandon => {
            let branch = branch_name(api, &branches, &what).await?;
            let answer = api.delete(&format!("{branches}/{branch}?operator={}", encode(&api.operator))).await?;
            if !api.printed_json(&answer) {
                println!("abandoned gray branch {branch} of {what}; its clients get the main release again");
            }
        }
    }
    Ok(())
}

/// The active branch's name (its cluster), or a hint to create one.
async fn branch_name(api: &ConfigApi<'_>, branches: &str, what: &str) -> Result<String, CliError> {
    let branch = current_branch(api, branches).await?;
    branch
        .map(|b| cell(&b["clusterName"]))
        .filter(|name| !name.is_empty())
        .ok_or_else(|| CliError::failed(format!("{what} has no gray branch; `gray … create` opens one")))
}

/// The active branch as the module describes it (Ctrip answers an empty body when
/// there is none; a list is accepted too).
async fn current_branch(api: &ConfigApi<'_>, branches: &str) -> Result<Option<Value>, CliError> {
    let response = api.get_raw(branches).await?;
    if module_not_found(&response) {
        return Ok(None);
    }
    let answer = decode(branches, &response)?;
    Ok(match answer {
        Value::Array(items) => items.into_iter().next(),
        Value::Null => None,
        one => Some(one),
    })
}

async fn show(api: &ConfigApi<'_>, app: &str, namespace: &str, branches: &str, what: &str) -> Result<(), CliError> {
    let Some(branch) = current_branch(api, branches).await? else {
        if api.json {
            print_json(&Value::Null);
        } else {
            println!("{what} has no gray branch");
        }
        return Ok(());
    };
    let name = cell(&branch["clusterName"]);
    let rules = api.get(&format!("{branches}/{name}/rules")).await?;
    if api.json {
        print_json(&json!({"branch": branch, "rules": rules}));
        return Ok(());
    }
    println!("gray branch {name} of {what}");
    print_rules(&rules);
    let items = match branch["items"].as_array() {
        Some(items) => items.clone(),
        None => list(
            &api.get(&format!("{}/items?page=0&size=100", api.namespace_path(app, &name, namespace)?)).await?["content"],
        ),
    };
    let rows: Vec<Vec<String>> = items.iter().map(|i| vec![cell(&i["key"]), one_line(&cell(&i["value"]))]).collect();
    if rows.is_empty() {
        println!("no branch items");
    } else {
        print_table(&["KEY", "VALUE"], &rows);
    }
    Ok(())
}

fn print_rules(rules: &Value) {
    let items = list(&rules["ruleItems"]);
    if items.is_empty() {
        println!("no rules: no client gets the gray release");
        return;
    }
    let joined = |v: &Value| or_dash(list(v).iter().map(cell).collect::<Vec<_>>().join(","));
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|r| vec![cell(&r["clientAppId"]), joined(&r["clientIpList"]), joined(&r["clientLabelList"])])
        .collect();
    print_table(&["CLIENT APP", "IPS", "LABELS"], &rows);
}

/// `gray-20261204193000` when no --title is given.
fn default_title(kind: &str) -> String {
    format!("{kind}-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"))
}
