//! Releases: an immutable snapshot of the working items under a new id and release key,
//! with the release message that wakes watching clients; and rollback, which abandons
//! a release so clients get the one before it.

use std::collections::BTreeMap;

use plugin_api::ModuleError;
use plugin_api::storage::Write;

use super::{existing_namespace, unique_key};
use crate::model::{self, NsRef, Release};
use crate::replica::{Plan, now_ms};
use crate::state::State;

/// Release ids handed out by one plan: the sequence's value moves on by as many as
/// were claimed, in one write that expects the version read (so two hosts never hand
/// out one id twice).
#[derive(Debug)]
pub struct Ids {
    start: u64,
    next: u64,
    version: u64,
}

impl Ids {
    pub fn new(state: &State) -> Self {
        Self {
            start: state.release_sequence,
            next: state.release_sequence,
            version: state.version(model::RELEASE_SEQUENCE),
        }
    }

    pub fn claim(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// The sequence's write, once ids were claimed.
    pub fn write(&self) -> Option<Write> {
        (self.next > self.start)
            .then(|| Write::put(model::RELEASE_SEQUENCE, self.next.to_string()).expect_version(self.version))
    }
}

#[derive(Debug, Clone, Default)]
pub struct ReleaseInfo<'a> {
    pub title: &'a str,
    pub comment: &'a str,
}

/// The message that makes clients of `ns` (of its parent, for a branch) fetch again.
pub fn message_write(ns: &NsRef, branch_of: Option<&str>) -> Write {
    let watched = branch_of.map_or_else(|| ns.clone(), |parent| ns.in_cluster(parent));
    Write::put(model::message_key(&watched.watch_key()), watched.watch_key())
}

/// A new release record of `ns`.
pub fn new_release(
    id: u64,
    actor: &str,
    ns: &NsRef,
    configurations: BTreeMap<String, String>,
    info: &ReleaseInfo<'_>,
    branch_of: Option<&str>,
) -> Release {
    Release {
        id,
        release_key: unique_key(&ns.watch_key()),
        ns: ns.clone(),
        name: info.title.to_string(),
        comment: info.comment.to_string(),
        configurations,
        author: actor.to_string(),
        time_ms: now_ms(),
        abandoned: false,
        branch_of: branch_of.map(str::to_string),
    }
}

/// The writes that re-publish an active, published gray branch of `ns` over new master
/// configurations (Ctrip merges branch overrides into every master release).
pub fn rebase_branch(
    state: &State,
    ids: &mut Ids,
    actor: &str,
    ns: &NsRef,
    master: &BTreeMap<String, String>,
) -> Vec<Write> {
    let Some(rule) = state.gray.get(ns).filter(|rule| rule.release_id.is_some()) else { return Vec::new() };
    let branch = ns.in_cluster(&rule.branch);
    let configurations = rule.configurations(master, state.items.get(&branch));
    let info = ReleaseInfo { title: "gray branch over the new master release", comment: "" };
    let release = new_release(ids.claim(), actor, &branch, configurations, &info, Some(&ns.cluster));
    let mut rule = rule.clone();
    rule.release_id = Some(release.id);
    vec![state.put(model::release_key(release.id), &release), state.put(model::gray_key(ns), &rule)]
}

/// Releases the working items of a namespace (a branch is published by `gray::publish`).
pub fn publish(
    state: &State,
    actor: &str,
    app: &str,
    cluster: &str,
    namespace: &str,
    info: &ReleaseInfo<'_>,
) -> Result<Plan<Release>, ModuleError> {
    let (ns, _) = existing_namespace(state, app, cluster, namespace)?;
    if state.cluster(app, cluster).is_some_and(|c| c.parent.is_some()) {
        return Err(ModuleError::bad_request(format!(
            "{cluster} is a gray branch: publish it through its branch's releases route"
        )));
    }
    if info.title.trim().is_empty() {
        return Err(ModuleError::bad_request("releaseTitle is required"));
    }
    let configurations = state.items.get(&ns).map(|items| items.configurations()).unwrap_or_default();
    let mut ids = Ids::new(state);
    let release = new_release(ids.claim(), actor, &ns, configurations, info, None);
    let mut writes = vec![state.put(model::release_key(release.id), &release), message_write(&ns, None)];
    writes.extend(rebase_branch(state, &mut ids, actor, &ns, &release.configurations));
    writes.extend(ids.write());
    let detail = format!("release {} {}", release.id, release.release_key);
    Ok(Plan::new(writes, release).audited(actor, "release", ns.to_string(), detail))
}

/// Abandons release `id`: its namespace's clients get the newest release before it.
pub fn rollback(state: &State, actor: &str, id: u64) -> Result<Plan<Release>, ModuleError> {
    let Some(release) = state.releases.get(&id) else {
        return Err(ModuleError::not_found(format!("release not found: {id}")));
    };
    if release.abandoned {
        return Err(ModuleError::bad_request(format!("release {id} is already rolled back")));
    }
    if state.active_ids(&release.ns).len() < 2 {
        return Err(ModuleError::bad_request(format!(
            "release {id} is the only active release of {}: there is nothing to roll back to",
            release.ns
        )));
    }
    let mut abandoned = (**release).clone();
    abandoned.abandoned = true;
    let mut writes = vec![
        state.put(model::release_key(id), &abandoned),
        message_write(&abandoned.ns, abandoned.branch_of.as_deref()),
    ];
    // Rolling a master release back re-publishes its gray branch over the release
    // rolled back to (Ctrip's rollbackChildNamespace): gray clients must not keep
    // master values everyone else has lost.
    if abandoned.branch_of.is_none() {
        let previous = state.active_ids(&abandoned.ns).into_iter().rev().find(|active| *active != id);
        if let Some(master) = previous.and_then(|p| state.releases.get(&p)) {
            let mut ids = Ids::new(state);
            writes.extend(rebase_branch(state, &mut ids, actor, &abandoned.ns, &master.configurations));
            writes.extend(ids.write());
        }
    }
    let target = abandoned.ns.to_string();
    Ok(Plan::new(writes, abandoned).audited(actor, "rollback", target, format!("release {id}")))
}

/// What changed from `base` to `to`: added, modified (old and new), deleted.
pub fn compare(base: &BTreeMap<String, String>, to: &BTreeMap<String, String>) -> serde_json::Value {
    let added: BTreeMap<_, _> = to.iter().filter(|(k, _)| !base.contains_key(*k)).collect();
    let deleted: BTreeMap<_, _> = base.iter().filter(|(k, _)| !to.contains_key(*k)).collect();
    let modified: BTreeMap<_, _> = to
        .iter()
        .filter_map(|(k, new)| {
            base.get(k).filter(|old| *old != new).map(|old| (k, serde_json::json!({"old": old, "new": new})))
        })
        .collect();
    serde_json::json!({"added": added, "modified": modified, "deleted": deleted})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_lists_added_modified_and_deleted_keys() {
        let base: BTreeMap<String, String> = [("a", "1"), ("b", "2")].map(|(k, v)| (k.into(), v.into())).into();
        let to: BTreeMap<String, String> = [("b", "3"), ("c", "4")].map(|(k, v)| (k.into(), v.into())).into();
        assert_eq!(
            compare(&base, &to),
            serde_json::json!({"added": {"c": "4"}, "modified": {"b": {"old": "2", "new": "3"}}, "deleted": {"a": "1"}})
        );
    }
}
