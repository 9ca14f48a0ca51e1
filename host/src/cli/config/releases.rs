//! `apollo config release|history|diff|rollback`: publishing a namespace (Open API),
//! its release history and the comparisons (admin routes), and abandoning a release.

use serde_json::{Value, json};

use super::namespaces::list;
use super::{ConfigApi, MOUNT, cell, encode, one_line, time};
use crate::cli::CliError;
use crate::cli::output::{or_dash, print_table};

/// `apollo config release APPID NS --title T [--comment C]`.
pub async fn release(
    api: &ConfigApi<'_>,
    app: &str,
    namespace: &str,
    title: &str,
    comment: Option<&str>,
) -> Result<(), CliError> {
    let path = format!("{}/releases", api.namespace_path(app, &api.cluster, namespace)?);
    let body = release_body(api, title, comment);
    let released = api.post(&path, &body).await?;
    if !api.printed_json(&released) {
        let keys = released["configurations"].as_object().map(|c| c.len()).unwrap_or(0);
        println!(
            "released {app}/{}/{namespace} as release {} ({title:?}, {keys} key(s))",
            api.cluster,
            cell(&released["id"])
        );
    }
    Ok(())
}

/// Ctrip's NamespaceReleaseDTO.
pub fn release_body(api: &ConfigApi<'_>, title: &str, comment: Option<&str>) -> Value {
    let mut body = json!({"releaseTitle": title, "releasedBy": api.operator, "isEmergencyPublish": false});
    if let Some(c) = comment {
        body["releaseComment"] = json!(c);
    }
    body
}

/// `apollo config history APPID NS`: newest first.
pub async fn history(api: &ConfigApi<'_>, app: &str, namespace: &str) -> Result<(), CliError> {
    let releases = fetch_history(api, app, namespace).await?;
    if api.printed_json(&Value::Array(releases.clone())) {
        return Ok(());
    }
    let latest = latest_release(&releases);
    let rows: Vec<Vec<String>> = releases
        .iter()
        .map(|r| {
            let state = if r["abandoned"].as_bool().unwrap_or(false) {
                "abandoned".to_string()
            } else if !branch(r).is_empty() {
                format!("gray {}", branch(r))
            } else if r["id"].as_i64() == latest {
                "latest".to_string()
            } else {
                "-".to_string()
            };
            vec![
                cell(&r["id"]),
                or_dash(one_line(&cell(&r["name"]))),
                or_dash(cell(&r["author"])),
                or_dash(time(&r["time"])),
                state,
                cell(&r["releaseKey"]),
                or_dash(one_line(&cell(&r["comment"]))),
            ]
        })
        .collect();
    print_table(&["ID", "TITLE", "AUTHOR", "TIME", "STATE", "RELEASE KEY", "COMMENT"], &rows);
    Ok(())
}

async fn fetch_history(api: &ConfigApi<'_>, app: &str, namespace: &str) -> Result<Vec<Value>, CliError> {
    Ok(list(&api.get(&format!("{}/releases", api.admin_namespace_path(app, namespace)?)).await?))
}

/// The gray branch a release belongs to, empty for the main namespace's: `branch`,
/// or the module's `branchOf` (the parent cluster) with the branch as `cluster`.
fn branch(release: &Value) -> String {
    match cell(&release["branch"]) {
        b if !b.is_empty() => b,
        _ if !cell(&release["branchOf"]).is_empty() => cell(&release["cluster"]),
        _ => String::new(),
    }
}

/// The newest release clients of the main namespace get: not abandoned, not gray.
fn latest_release(history: &[Value]) -> Option<i64> {
    history
        .iter()
        .find(|r| !r["abandoned"].as_bool().unwrap_or(false) && branch(r).is_empty())
        .and_then(|r| r["id"].as_i64())
}

/// `apollo config diff APPID NS [--base ID] [--to ID]`.
pub async fn diff(
    api: &ConfigApi<'_>,
    app: &str,
    namespace: &str,
    base: Option<i64>,
    to: Option<i64>,
) -> Result<(), CliError> {
    let (changes, heading) = match (base, to) {
        (None, None) => {
            let path = format!("{}/changes", api.admin_namespace_path(app, namespace)?);
            (api.get(&path).await?, "working items against the latest release".to_string())
        }
        (base, to) => {
            let history = fetch_history(api, app, namespace).await?;
            let (base, to) = match (base, to) {
                (Some(b), Some(t)) => (b, t),
                (Some(b), None) => {
                    let latest = latest_release(&history)
                        .ok_or_else(|| CliError::failed(format!("{app}/{}/{namespace} has no release", api.cluster)))?;
                    (b, latest)
                }
                (None, Some(t)) => (release_before(&history, t)?, t),
                (None, None) => unreachable!("handled above"),
            };
            let path = format!("{MOUNT}/admin/releases/compare?base={}&to={}", encode(&base.to_string()), to);
            (api.get(&path).await?, format!("release {base} -> release {to}"))
        }
    };
    if api.printed_json(&changes) {
        return Ok(());
    }
    print_changes(&changes, &heading);
    Ok(())
}

/// The master release just older than `id` in a newest-first history.
fn release_before(history: &[Value], id: i64) -> Result<i64, CliError> {
    let at = history
        .iter()
        .position(|r| r["id"].as_i64() == Some(id))
        .ok_or_else(|| CliError::failed(format!("release {id} is not in this namespace's history")))?;
    history[at + 1..]
        .iter()
        .find(|r| branch(r).is_empty())
        .and_then(|r| r["id"].as_i64())
        .ok_or_else(|| CliError::failed(format!("release {id} is the namespace's first release; give --base")))
}

/// `+ key = value`, `~ key: old -> new`, `- key = value`, then a count.
fn print_changes(changes: &Value, heading: &str) {
    let empty = serde_json::Map::new();
    let added = changes["added"].as_object().unwrap_or(&empty);
    let modified = changes["modified"].as_object().unwrap_or(&empty);
    let deleted = changes["deleted"].as_object().unwrap_or(&empty);
    println!("{heading}:");
    for (k, v) in added {
        println!("+ {k} = {}", one_line(&cell(v)));
    }
    for (k, v) in modified {
        println!("~ {k}: {} -> {}", one_line(&cell(&v["old"])), one_line(&cell(&v["new"])));
    }
    for (k, v) in deleted {
        println!("- {k} = {}", one_line(&cell(v)));
    }
    if added.is_empty() && modified.is_empty() && deleted.is_empty() {
        println!("no changes");
    } else {
        println!("{} added, {} modified, {} deleted", added.len(), modified.len(), deleted.len());
    }
}

/// `apollo config rollback RELEASE_ID`.
pub async fn rollback(api: &ConfigApi<'_>, release_id: i64) -> Result<(), CliError> {
    let path = format!(
        "{MOUNT}/openapi/v1/envs/{}/releases/{release_id}/rollback?operator={}",
        api.env,
        encode(&api.operator)
    );
    let answer = api.call(http::Method::PUT, &path, None).await?;
    if !api.printed_json(&answer) {
        println!("release {release_id} rolled back: its clients get the release before it again");
    }
    Ok(())
}
