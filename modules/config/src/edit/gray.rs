//! Gray releases (protocol §2): a namespace's one branch, a child cluster whose items
//! override the master's; rules choose which clients get the branch's release; merging
//! folds the overrides into the master and releases it; abandoning drops the branch.
//! Every change of who-gets-what writes a message on the parent's watch key.

use plugin_api::ModuleError;

use super::releases::{Ids, ReleaseInfo, message_write, new_release, rebase_branch};
use super::{existing_namespace, unique_key};
use crate::model::{self, Cluster, GrayRule, NsRef, Release, RuleItem, Stamp};
use crate::replica::{Plan, now_ms};
use crate::state::State;

/// A gray branch as a request names it: the parent namespace's coordinates and the
/// branch's name.
#[derive(Debug, Clone, Copy)]
pub struct BranchAt<'a> {
    pub app: &'a str,
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub branch: &'a str,
}

/// The parent namespace and its active branch, checked against the branch name given.
fn branch_of<'a>(state: &'a State, at: &BranchAt<'_>) -> Result<(NsRef, &'a GrayRule), ModuleError> {
    let (ns, _) = existing_namespace(state, at.app, at.cluster, at.namespace)?;
    let branch = at.branch;
    match state.gray.get(&ns) {
        Some(rule) if rule.branch == branch => Ok((ns, rule)),
        _ => Err(ModuleError::not_found(format!("branch not found: {branch} of {ns}"))),
    }
}

pub fn create(
    state: &State,
    actor: &str,
    app: &str,
    cluster: &str,
    namespace: &str,
) -> Result<Plan<(NsRef, GrayRule)>, ModuleError> {
    let (ns, _) = existing_namespace(state, app, cluster, namespace)?;
    if state.cluster(app, cluster).is_some_and(|c| c.parent.is_some()) {
        return Err(ModuleError::bad_request(format!("{cluster} is a gray branch itself")));
    }
    if let Some(existing) = state.gray.get(&ns) {
        return Err(ModuleError::bad_request(format!("{ns} has a gray branch already: {}", existing.branch)));
    }
    let branch = unique_key(&ns.watch_key());
    let stamp = Stamp::new(actor, now_ms());
    let cluster_record =
        Cluster { app_id: app.into(), name: branch.clone(), parent: Some(ns.cluster.clone()), stamp: stamp.clone() };
    let rule = GrayRule {
        ns: ns.clone(),
        branch: branch.clone(),
        rules: Vec::new(),
        release_id: None,
        deleted_keys: Vec::new(),
        stamp,
    };
    let writes =
        vec![state.put(model::cluster_key(app, &branch), &cluster_record), state.put(model::gray_key(&ns), &rule)];
    let target = ns.to_string();
    Ok(Plan::new(writes, (ns.in_cluster(&branch), rule)).audited(actor, "create-branch", target, branch))
}

pub fn set_rules(
    state: &State,
    actor: &str,
    at: &BranchAt<'_>,
    rules: Vec<RuleItem>,
) -> Result<Plan<GrayRule>, ModuleError> {
    let (ns, rule) = branch_of(state, at)?;
    for item in &rules {
        if item.client_app_id.is_empty() {
            return Err(ModuleError::bad_request("every rule needs a clientAppId"));
        }
        if item.client_ip_list.is_empty() && item.client_label_list.is_empty() {
            return Err(ModuleError::bad_request(format!(
                "the rule for {} lists no IP and no label: it would match nobody (use \"*\" for everyone)",
                item.client_app_id
            )));
        }
        if let Some(bad) = item.client_ip_list.iter().find(|ip| *ip != "*" && ip.parse::<std::net::IpAddr>().is_err()) {
            return Err(ModuleError::bad_request(format!("{bad:?} is not an IP address (or \"*\")")));
        }
    }
    let mut rule = rule.clone();
    rule.rules = rules;
    rule.stamp = rule.stamp.touched(actor, now_ms());
    let writes = vec![state.put(model::gray_key(&ns), &rule), message_write(&ns, None)];
    let detail = serde_json::to_string(&rule.rules)?;
    let target = ns.to_string();
    Ok(Plan::new(writes, rule).audited(actor, "set-gray-rules", target, detail))
}

/// Releases the branch: the master's latest configurations with the branch's items over
/// them, without `delete_keys` (and the keys earlier gray-delete releases removed).
pub fn publish(
    state: &State,
    actor: &str,
    at: &BranchAt<'_>,
    info: &ReleaseInfo<'_>,
    delete_keys: &[String],
) -> Result<Plan<Release>, ModuleError> {
    let (ns, rule) = branch_of(state, at)?;
    if info.title.trim().is_empty() {
        return Err(ModuleError::bad_request("releaseTitle is required"));
    }
    let branch_ns = ns.in_cluster(at.branch);
    let mut rule = rule.clone();
    for key in delete_keys {
        if !rule.deleted_keys.contains(key) {
            rule.deleted_keys.push(key.clone());
        }
    }
    let master = state.latest_release(&ns).map(|r| r.configurations.clone()).unwrap_or_default();
    let configurations = rule.configurations(&master, state.items.get(&branch_ns));
    let mut ids = Ids::new(state);
    let release = new_release(ids.claim(), actor, &branch_ns, configurations, info, Some(&ns.cluster));
    rule.release_id = Some(release.id);
    let mut writes = vec![
        state.put(model::release_key(release.id), &release),
        state.put(model::gray_key(&ns), &rule),
        message_write(&ns, None),
    ];
    writes.extend(ids.write());
    let mut detail = format!("gray release {} {}", release.id, release.release_key);
    if !delete_keys.is_empty() {
        detail.push_str(&format!(" deleting {}", delete_keys.join(",")));
    }
    Ok(Plan::new(writes, release).audited(actor, "gray-release", ns.to_string(), detail))
}

/// The writes that remove a branch: its rule, its cluster and its items.
fn remove_branch(state: &State, ns: &NsRef, branch: &str) -> Vec<plugin_api::storage::Write> {
    let mut writes = vec![state.delete(model::gray_key(ns)), state.delete(model::cluster_key(&ns.app, branch))];
    let branch_items = model::items_key(&ns.in_cluster(branch));
    if state.version(&branch_items) > 0 {
        writes.push(state.delete(branch_items));
    }
    writes
}

/// Folds the branch's items into the master's, releases the master, and (with
/// `delete_branch`) removes the branch; otherwise the branch is re-published over it.
pub fn merge(
    state: &State,
    actor: &str,
    at: &BranchAt<'_>,
    delete_branch: bool,
    info: &ReleaseInfo<'_>,
) -> Result<Plan<Release>, ModuleError> {
    let (ns, _) = branch_of(state, at)?;
    let branch = at.branch;
    let mut master = state.items.get(&ns).cloned().unwrap_or_default();
    let now = now_ms();
    for item in state.items.get(&ns.in_cluster(branch)).map(|i| i.items.clone()).unwrap_or_default() {
        match master.items.iter_mut().find(|m| m.key == item.key) {
            Some(existing) => {
                existing.value = item.value;
                existing.comment = item.comment;
                existing.stamp = existing.stamp.touched(actor, now);
            }
            None => master.items.push(Stamped { item, actor, now }.into()),
        }
    }
    let title = if info.title.trim().is_empty() { "merge of gray branch" } else { info.title };
    let info = ReleaseInfo { title, comment: info.comment };
    let mut ids = Ids::new(state);
    let release = new_release(ids.claim(), actor, &ns, master.configurations(), &info, None);
    let mut writes = vec![
        state.put(model::items_key(&ns), &master),
        state.put(model::release_key(release.id), &release),
        message_write(&ns, None),
    ];
    if delete_branch {
        writes.extend(remove_branch(state, &ns, branch));
    } else {
        writes.extend(rebase_branch(state, &mut ids, actor, &ns, &release.configurations));
    }
    writes.extend(ids.write());
    let detail = format!("branch {branch} into release {}", release.id);
    Ok(Plan::new(writes, release).audited(actor, "merge-branch", ns.to_string(), detail))
}

/// Drops the branch: its clients get the master's release again.
pub fn abandon(state: &State, actor: &str, at: &BranchAt<'_>) -> Result<Plan<()>, ModuleError> {
    let (ns, _) = branch_of(state, at)?;
    let branch = at.branch;
    let mut writes = remove_branch(state, &ns, branch);
    writes.push(message_write(&ns, None));
    Ok(Plan::new(writes, ()).audited(actor, "abandon-branch", ns.to_string(), branch.to_string()))
}

/// A branch item entering the master, stamped by whoever merged it.
struct Stamped<'a> {
    item: model::Item,
    actor: &'a str,
    now: i64,
}

impl From<Stamped<'_>> for model::Item {
    fn from(s: Stamped<'_>) -> Self {
        model::Item { stamp: s.item.stamp.touched(s.actor, s.now), ..s.item }
    }
}
