//! The Open API's JSON shapes (protocol §4): Ctrip's `Open*DTO`s, camelCase, with the
//! `BaseDTO` stamp fields and Gson dates.

use serde_json::{Value, json};

use crate::model::{App, AppNamespace, Cluster, GrayRule, Item, ItemSet, NsRef, Release, Stamp};
use crate::wire::gson_date;

fn with_stamp(mut value: Value, stamp: &Stamp) -> Value {
    if let Value::Object(map) = &mut value {
        map.insert("dataChangeCreatedBy".into(), json!(stamp.created_by));
        map.insert("dataChangeLastModifiedBy".into(), json!(stamp.modified_by));
        map.insert("dataChangeCreatedTime".into(), json!(gson_date(stamp.created_ms)));
        map.insert("dataChangeLastModifiedTime".into(), json!(gson_date(stamp.modified_ms)));
    }
    value
}

pub fn app(app: &App) -> Value {
    with_stamp(
        json!({
            "name": app.name, "appId": app.app_id, "orgId": app.org_id, "orgName": app.org_name,
            "ownerName": app.owner_name, "ownerEmail": app.owner_email,
        }),
        &app.stamp,
    )
}

pub fn cluster(cluster: &Cluster) -> Value {
    with_stamp(json!({"name": cluster.name, "appId": cluster.app_id}), &cluster.stamp)
}

pub fn app_namespace(ns: &AppNamespace) -> Value {
    with_stamp(
        json!({
            "name": ns.name, "appId": ns.app_id, "format": ns.format.as_str(), "isPublic": ns.is_public,
            "appendNamespacePrefix": false, "comment": ns.comment,
        }),
        &ns.stamp,
    )
}

/// An item's `type`: 0 string, 1 number, 2 boolean, 3 JSON (newer servers send it).
fn item_type(value: &str) -> u8 {
    if value.parse::<f64>().is_ok() {
        1
    } else if value == "true" || value == "false" {
        2
    } else if (value.starts_with('{') || value.starts_with('[')) && serde_json::from_str::<Value>(value).is_ok() {
        3
    } else {
        0
    }
}

pub fn item(item: &Item) -> Value {
    with_stamp(
        json!({"key": item.key, "value": item.value, "comment": item.comment, "type": item_type(&item.value)}),
        &item.stamp,
    )
}

pub fn namespace(ns: &NsRef, app_namespace: &AppNamespace, items: Option<&ItemSet>, fill_items: bool) -> Value {
    let items: Vec<Value> =
        if fill_items { items.map(|set| set.items.iter().map(item).collect()).unwrap_or_default() } else { Vec::new() };
    with_stamp(
        json!({
            "appId": ns.app, "clusterName": ns.cluster, "namespaceName": ns.namespace,
            "comment": app_namespace.comment, "format": app_namespace.format.as_str(),
            "isPublic": app_namespace.is_public, "items": items,
        }),
        &app_namespace.stamp,
    )
}

pub fn release(release: &Release) -> Value {
    let stamp = Stamp::new(&release.author, release.time_ms);
    with_stamp(
        json!({
            "id": release.id, "appId": release.ns.app, "clusterName": release.ns.cluster,
            "namespaceName": release.ns.namespace, "name": release.name,
            "configurations": release.configurations, "comment": release.comment,
        }),
        &stamp,
    )
}

pub fn gray_rule(rule: &GrayRule) -> Value {
    with_stamp(
        json!({
            "appId": rule.ns.app, "clusterName": rule.ns.cluster, "namespaceName": rule.ns.namespace,
            "branchName": rule.branch, "ruleItems": rule.rules,
        }),
        &rule.stamp,
    )
}
