//! `apollo config apps|namespaces|get|set|delete`: apps, namespaces and items through
//! the module's Open API, and what clients get through its `/configs` route.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::{ConfigApi, MOUNT, answer_error, cell, check_name, decode, encode, module_not_found, one_line};
use crate::cli::CliError;
use crate::cli::output::{or_dash, print_json, print_table};

/// `apollo config apps`.
pub async fn apps(api: &ConfigApi<'_>) -> Result<(), CliError> {
    let apps = api.get(&format!("{MOUNT}/openapi/v1/apps")).await?;
    if api.printed_json(&apps) {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list(&apps)
        .iter()
        .map(|a| {
            vec![
                cell(&a["appId"]),
                or_dash(cell(&a["name"])),
                or_dash(cell(&a["orgId"])),
                or_dash(cell(&a["ownerName"])),
                or_dash(cell(&a["ownerEmail"])),
            ]
        })
        .collect();
    print_table(&["APP", "NAME", "ORG", "OWNER", "EMAIL"], &rows);
    Ok(())
}

/// `apollo config apps --create APPID [--name N] [--org ORG] [--owner O] [--owner-email E]`.
pub async fn create_app(
    api: &ConfigApi<'_>,
    app: &str,
    name: Option<&str>,
    org: Option<&str>,
    owner: &str,
    owner_email: Option<&str>,
) -> Result<(), CliError> {
    check_name("app id", app)?;
    let org = org.unwrap_or("default");
    let mut dto = json!({
        "appId": app,
        "name": name.unwrap_or(app),
        "orgId": org,
        "orgName": org,
        "ownerName": owner,
    });
    if let Some(email) = owner_email {
        dto["ownerEmail"] = json!(email);
    }
    let body = json!({"app": dto, "admins": [owner]});
    let created = api.post(&format!("{MOUNT}/openapi/v1/apps"), &body).await?;
    if !api.printed_json(&created) {
        println!("created app {app} (org {org})");
    }
    Ok(())
}

/// `apollo config clusters APPID`.
pub async fn clusters(api: &ConfigApi<'_>, app: &str) -> Result<(), CliError> {
    check_name("app id", app)?;
    let listed = api.get(&format!("{MOUNT}/openapi/v1/apps/{app}/envclusters")).await?;
    if api.printed_json(&listed) {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list(&listed)
        .iter()
        .map(|e| vec![cell(&e["env"]), or_dash(list(&e["clusters"]).iter().map(cell).collect::<Vec<_>>().join(", "))])
        .collect();
    print_table(&["ENV", "CLUSTERS"], &rows);
    Ok(())
}

/// `apollo config clusters APPID --create NAME`.
pub async fn create_cluster(api: &ConfigApi<'_>, app: &str, cluster: &str) -> Result<(), CliError> {
    check_name("app id", app)?;
    check_name("cluster", cluster)?;
    let body = json!({"name": cluster, "appId": app, "dataChangeCreatedBy": api.operator});
    let created = api.post(&format!("{MOUNT}/openapi/v1/envs/{}/apps/{app}/clusters", api.env), &body).await?;
    if !api.printed_json(&created) {
        println!("created cluster {cluster} of app {app} in {}", api.env);
    }
    Ok(())
}

/// `apollo config namespaces APPID`.
pub async fn namespaces(api: &ConfigApi<'_>, app: &str) -> Result<(), CliError> {
    let listed = api.get(&api.namespaces_path(app, &api.cluster)?).await?;
    if api.printed_json(&listed) {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list(&listed)
        .iter()
        .map(|n| {
            vec![
                cell(&n["namespaceName"]),
                or_dash(cell(&n["format"])),
                if n["isPublic"].as_bool().unwrap_or(false) { "public" } else { "private" }.to_string(),
                n["items"].as_array().map(|i| i.len().to_string()).unwrap_or_else(|| "-".into()),
                or_dash(cell(&n["comment"])),
            ]
        })
        .collect();
    print_table(&["NAMESPACE", "FORMAT", "SCOPE", "ITEMS", "COMMENT"], &rows);
    Ok(())
}

/// `apollo config namespaces APPID --create NS [--format F] [--public]`.
pub async fn create_namespace(
    api: &ConfigApi<'_>,
    app: &str,
    namespace: &str,
    format: &str,
    public: bool,
    comment: Option<&str>,
) -> Result<(), CliError> {
    check_name("app id", app)?;
    check_name("namespace", namespace)?;
    let mut body = json!({
        "name": namespace,
        "appId": app,
        "format": format,
        "isPublic": public,
        "appendNamespacePrefix": true,
        "dataChangeCreatedBy": api.operator,
    });
    if let Some(c) = comment {
        body["comment"] = json!(c);
    }
    let created = api.post(&format!("{MOUNT}/openapi/v1/apps/{app}/appnamespaces"), &body).await?;
    if !api.printed_json(&created) {
        let name = created["name"].as_str().unwrap_or(namespace);
        let scope = if public { "public" } else { "private" };
        println!("created {scope} {format} namespace {name} in app {app}");
    }
    Ok(())
}

/// `apollo config get APPID NS [KEY]`: the released configuration a client gets.
pub async fn get_released(
    api: &ConfigApi<'_>,
    app: &str,
    namespace: &str,
    key: Option<&str>,
    ip: Option<&str>,
    label: Option<&str>,
) -> Result<(), CliError> {
    check_name("app id", app)?;
    check_name("namespace", namespace)?;
    let mut query = Vec::new();
    if let Some(ip) = ip {
        query.push(format!("ip={}", encode(ip)));
    }
    if let Some(label) = label {
        query.push(format!("label={}", encode(label)));
    }
    let mut path = format!("{MOUNT}/configs/{app}/{}/{namespace}", api.cluster);
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let what = format!("{app}/{}/{namespace}", api.cluster);
    let response = api.get_raw(&path).await?;
    let config = if module_not_found(&response) {
        let why = answer_error(response.status, &response.body).message;
        return Err(CliError::failed(format!("{what} has no release: {why}")));
    } else if response.status == http::StatusCode::UNAUTHORIZED {
        // The app's enabled access keys refuse unsigned reads by anyone but the host's
        // operators (a consumer token over --addr is not one), and the secrets are not
        // the CLI's to know: the latest release is read through the Open API instead.
        if ip.is_some() || label.is_some() {
            return Err(CliError::failed(format!(
                "app {app} has access keys, so /configs refuses unsigned reads: --ip/--label cannot be shown ({})",
                answer_error(response.status, &response.body).message
            )));
        }
        latest_release(api, app, namespace, &what).await?
    } else {
        decode(&path, &response)?
    };
    let configurations = config["configurations"].as_object().cloned().unwrap_or_default();
    if let Some(key) = key {
        return print_one(api, &configurations, key, &format!("the release of {what}"));
    }
    if api.printed_json(&config) {
        return Ok(());
    }
    if let Some(content) = file_content(namespace, &configurations) {
        print!("{content}");
        if !content.ends_with('\n') {
            println!();
        }
    } else {
        let rows: Vec<Vec<String>> = configurations.iter().map(|(k, v)| vec![k.clone(), one_line(&cell(v))]).collect();
        print_table(&["KEY", "VALUE"], &rows);
    }
    if !config["releaseKey"].is_null() {
        eprintln!("release {} (cluster {})", cell(&config["releaseKey"]), cell(&config["cluster"]));
    }
    Ok(())
}

/// The latest release through the Open API, in `/configs`' shape, said on stderr.
async fn latest_release(api: &ConfigApi<'_>, app: &str, namespace: &str, what: &str) -> Result<Value, CliError> {
    let latest = api.get(&format!("{}/releases/latest", api.namespace_path(app, &api.cluster, namespace)?)).await?;
    if latest.is_null() {
        return Err(CliError::failed(format!("{what} has no release")));
    }
    eprintln!(
        "note: app {app} has access keys, so /configs refuses unsigned reads; showing its latest release (id {}) without gray rules or public namespaces",
        cell(&latest["id"])
    );
    Ok(json!({"appId": app, "cluster": api.cluster, "namespaceName": namespace,
        "configurations": latest["configurations"], "releaseKey": Value::Null, "releaseId": latest["id"]}))
}

/// `apollo config get --working APPID NS [KEY]`: the items as edited.
pub async fn get_working(api: &ConfigApi<'_>, app: &str, namespace: &str, key: Option<&str>) -> Result<(), CliError> {
    let base = api.namespace_path(app, &api.cluster, namespace)?;
    if let Some(key) = key {
        let item = api.get(&item_path(&base, key)?).await?;
        if !api.printed_json(&item) {
            println!("{}", cell(&item["value"]));
        }
        return Ok(());
    }
    let items = all_items(api, &base).await?;
    if api.printed_json(&Value::Array(items.clone())) {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            vec![
                cell(&i["key"]),
                one_line(&cell(&i["value"])),
                or_dash(cell(&i["dataChangeLastModifiedBy"])),
                or_dash(one_line(&cell(&i["comment"]))),
            ]
        })
        .collect();
    print_table(&["KEY", "VALUE", "MODIFIED BY", "COMMENT"], &rows);
    Ok(())
}

/// Every item of a namespace, page by page.
async fn all_items(api: &ConfigApi<'_>, base: &str) -> Result<Vec<Value>, CliError> {
    const SIZE: usize = 100;
    let mut items = Vec::new();
    for page in 0.. {
        let answer = api.get(&format!("{base}/items?page={page}&size={SIZE}")).await?;
        let content = list(&answer["content"]);
        let total = answer["total"].as_u64().unwrap_or(0) as usize;
        let done = content.len() < SIZE || items.len() + content.len() >= total;
        items.extend(content);
        if done {
            break;
        }
    }
    Ok(items)
}

/// `apollo config set APPID NS KEY VALUE` (also a gray branch's items: `cluster` is
/// then the branch).
pub async fn set(
    api: &ConfigApi<'_>,
    app: &str,
    cluster: &str,
    namespace: &str,
    key: &str,
    value: &str,
    comment: Option<&str>,
) -> Result<(), CliError> {
    let base = api.namespace_path(app, cluster, namespace)?;
    let mut body = json!({
        "key": key,
        "value": value,
        "dataChangeLastModifiedBy": api.operator,
        "dataChangeCreatedBy": api.operator,
    });
    if let Some(c) = comment {
        body["comment"] = json!(c);
    }
    let answer = api.put(&format!("{}?createIfNotExists=true", item_path(&base, key)?), &body).await?;
    if !api.printed_json(&answer) {
        println!("set {key} in {app}/{cluster}/{namespace}; clients get it with the next release");
    }
    Ok(())
}

/// `apollo config delete APPID NS KEY`.
pub async fn delete(api: &ConfigApi<'_>, app: &str, cluster: &str, namespace: &str, key: &str) -> Result<(), CliError> {
    let base = api.namespace_path(app, cluster, namespace)?;
    let answer = api.delete(&format!("{}?operator={}", item_path(&base, key)?, encode(&api.operator))).await?;
    if !api.printed_json(&answer) {
        println!("deleted {key} from {app}/{cluster}/{namespace}; clients lose it with the next release");
    }
    Ok(())
}

/// `items/{key}` for plain keys, `encodedItems/{base64 key}` for keys a path segment
/// could mangle (`/`, spaces, `%`, …), as Ctrip's Open API client does.
pub fn item_path(namespace_path: &str, key: &str) -> Result<String, CliError> {
    if key.is_empty() {
        return Err(CliError::usage("the key is empty"));
    }
    Ok(if key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        format!("{namespace_path}/items/{key}")
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(key.as_bytes());
        format!("{namespace_path}/encodedItems/{}", encode(&encoded))
    })
}

/// One key of a configuration: its value alone (or `{"key","value"}` with `--json`).
fn print_one(api: &ConfigApi<'_>, configurations: &Map<String, Value>, key: &str, what: &str) -> Result<(), CliError> {
    let value = configurations.get(key).ok_or_else(|| CliError::failed(format!("{what} has no key {key:?}")))?;
    if api.json {
        print_json(&json!({"key": key, "value": value}));
    } else {
        println!("{}", cell(value));
    }
    Ok(())
}

/// A file-format namespace's text (`ns.json`, `.yaml`, …: one `content` entry).
fn file_content<'c>(namespace: &str, configurations: &'c Map<String, Value>) -> Option<&'c str> {
    let suffix = namespace.rsplit_once('.').map(|(_, s)| s.to_ascii_lowercase())?;
    let file_format = matches!(suffix.as_str(), "json" | "yaml" | "yml" | "xml" | "txt");
    (file_format && configurations.len() == 1).then(|| configurations.get("content")?.as_str())?
}

/// The elements of a JSON array (none for anything else).
pub fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_go_in_the_path_others_base64_encoded() {
        assert_eq!(item_path("/ns", "db.url").unwrap(), "/ns/items/db.url");
        assert_eq!(item_path("/ns", "a/b").unwrap(), "/ns/encodedItems/YS9i");
        // `my key?` is bXkga2V5Pw== in base64: the padding is percent-encoded.
        assert_eq!(item_path("/ns", "my key?").unwrap(), "/ns/encodedItems/bXkga2V5Pw%3D%3D");
        assert!(item_path("/ns", "").is_err());
    }

    #[test]
    fn file_namespaces_print_their_content() {
        let config: Map<String, Value> = serde_json::from_value(json!({"content": "a: 1\n"})).unwrap();
        assert_eq!(file_content("app.yaml", &config), Some("a: 1\n"));
        assert_eq!(file_content("application", &config), None);
    }
}
