//! This host as a node of the catalog, and the fleet's liveness: the node record is
//! written at start (and whenever it drifts), a heartbeat every `heartbeat_interval`;
//! a peer whose heartbeat is older than `node_critical_after` gets `serfHealth`
//! critical (so `?passing` drops its instances everywhere), and one older than
//! `node_remove_after` is removed with its services and checks. Any host may mark or
//! remove a peer: writes carry expected versions, so two hosts doing it at once commit
//! once. Heartbeats move no blocking-query index. Hosts compare heartbeats with their
//! own clocks: a fleet needs clocks in sync to well within `node_critical_after`.

use std::sync::Arc;
use std::time::Duration;

use plugin_api::Host;
use plugin_api::storage::Write;

use crate::metrics::Metrics;
use crate::model::{self, NodeRecord};
use crate::replica::Replica;
use crate::settings::Settings;
use crate::state::State;

pub async fn run(replica: Arc<Replica>, settings: Settings, metrics: Metrics, host: Host) {
    while replica.wait_loaded().await.is_err() {}
    let me = settings.node_name.clone();
    // Claim the node: this instance now runs its heartbeat, checks and host services.
    while let Err(e) =
        replica.transact(|_| Ok((vec![Write::put(model::owner_key(&me), replica.owner_token())], ()))).await
    {
        host.warn(&format!("catalog: cannot claim node {me:?} ({e}); retrying"));
        plugin_api::tokio::select! {
            () = plugin_api::tokio::time::sleep(settings.heartbeat_interval) => {}
            () = replica.stopped() => return,
        }
    }
    let mut failing = false;
    loop {
        if !replica.owns(&me) {
            host.warn(&format!(
                "catalog: node {me:?} was taken over by a newer module generation or another host with the same \
                 node_name; this one stops its heartbeat, checks and host services"
            ));
            replica.stopped().await;
            return;
        }
        match beat(&replica, &settings).await.and(sweep(&replica, &settings, &host).await) {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                host.warn(&format!("catalog: heartbeat failed ({e}); retrying"));
                failing = true;
            }
            Err(_) => {}
        }
        let head = replica.head();
        replica.write().prune_tombstones(head);
        refresh_gauges(&replica.read(), &metrics);
        plugin_api::tokio::select! {
            () = plugin_api::tokio::time::sleep(settings.heartbeat_interval) => {}
            () = replica.stopped() => return,
            () = lost(&replica, &me) => {}
        }
    }
}

/// Resolves when this instance no longer owns `node` (another claimed it).
async fn lost(replica: &Replica, node: &str) {
    let mut changed = replica.changed();
    while replica.owns(node) {
        if changed.changed().await.is_err() {
            return futures::future::pending().await;
        }
    }
}

fn desired_node(settings: &Settings, current: Option<&NodeRecord>, create_index: u64) -> NodeRecord {
    NodeRecord {
        name: settings.node_name.clone(),
        id: model::uuid_from(&settings.node_name),
        address: settings.node_address.clone(),
        datacenter: settings.datacenter.clone(),
        serf_status: "passing".into(),
        serf_output: String::new(),
        maintenance: current.and_then(|c| c.maintenance.clone()),
        create_index,
    }
}

async fn beat(replica: &Replica, settings: &Settings) -> Result<(), plugin_api::ModuleError> {
    let me = &settings.node_name;
    replica
        .transact(|state| {
            let mut writes = vec![Write::put(model::beat_key(me), model::now_ms().to_string())];
            let current = state.nodes.get(me);
            let wanted = desired_node(settings, current.map(|c| &c.record), current.map_or(0, |c| c.create_index));
            let drifted = match current {
                None => true,
                Some(c) => {
                    let mut existing = c.record.clone();
                    existing.create_index = wanted.create_index;
                    existing != wanted
                }
            };
            if drifted {
                let key = model::node_key(me);
                writes
                    .push(Write::put(key.clone(), serde_json::to_string(&wanted)?).expect_version(state.version(&key)));
            }
            Ok((writes, ()))
        })
        .await
}

/// What to do about a peer whose heartbeat is `age` old.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Fine,
    MarkCritical,
    Remove,
}

fn verdict(settings: &Settings, record: &NodeRecord, age: Duration) -> Verdict {
    if age > settings.node_remove_after {
        Verdict::Remove
    } else if age > settings.node_critical_after && record.serf_status != "critical" {
        Verdict::MarkCritical
    } else {
        Verdict::Fine
    }
}

async fn sweep(replica: &Replica, settings: &Settings, host: &Host) -> Result<(), plugin_api::ModuleError> {
    let now = model::now_ms();
    let peers: Vec<(String, Verdict)> = {
        let state = replica.read();
        state
            .nodes
            .iter()
            .filter(|(name, _)| *name != &settings.node_name)
            .map(|(name, n)| {
                let last = state.beats.get(name).copied().unwrap_or(0);
                let age = Duration::from_millis(u64::try_from(now - last).unwrap_or(0));
                (name.clone(), verdict(settings, &n.record, age))
            })
            .filter(|(_, v)| *v != Verdict::Fine)
            .collect()
    };
    for (name, verdict) in peers {
        replica
            .transact(|state| {
                let key = model::node_key(&name);
                let Some(current) = state.nodes.get(&name) else { return Ok((Vec::new(), ())) };
                let writes = match verdict {
                    Verdict::MarkCritical => {
                        let mut record = current.record.clone();
                        record.create_index = current.create_index;
                        record.serf_status = "critical".into();
                        record.serf_output = "Agent not live or unreachable".into();
                        vec![
                            Write::put(key.clone(), serde_json::to_string(&record)?)
                                .expect_version(state.version(&key)),
                        ]
                    }
                    _ => removal(state, &name),
                };
                Ok((writes, ()))
            })
            .await?;
        host.info(&format!(
            "catalog: node {name:?} stopped heart-beating: {}",
            if verdict == Verdict::Remove { "removed with its services" } else { "serfHealth critical" }
        ));
    }
    Ok(())
}

/// Every record of node `name` (capped at one commit; the next sweep takes the rest).
fn removal(state: &State, name: &str) -> Vec<Write> {
    let mut keys = vec![model::node_key(name), model::beat_key(name)];
    keys.extend(state.services_of_node(name).map(|s| model::service_key(name, &s.record.id)));
    keys.extend(state.checks_of_node(name).map(|c| model::check_key(name, &c.record.id)));
    keys.truncate(plugin_api::storage::MAX_COMMIT_WRITES);
    keys.into_iter()
        .filter(|k| state.version(k) > 0)
        .map(|k| {
            let version = state.version(&k);
            Write::delete(k).expect_version(version)
        })
        .collect()
}

fn refresh_gauges(state: &State, metrics: &Metrics) {
    for status in ["passing", "warning", "critical"] {
        let n = state.checks.values().filter(|c| c.record.status == status).count();
        metrics.checks.with(&[status]).set(n as f64);
    }
    metrics.services.set(state.services.len() as f64);
    metrics.kv_entries.set(state.kv.len() as f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Config;

    #[test]
    fn stale_peers_go_critical_then_away() {
        let settings = Settings::from_config(Config {
            node_name: Some("a".into()),
            node_critical_after: Some("30s".into()),
            node_remove_after: Some("1h".into()),
            ..Default::default()
        })
        .unwrap();
        let alive = NodeRecord { serf_status: "passing".into(), ..Default::default() };
        assert_eq!(verdict(&settings, &alive, Duration::from_secs(5)), Verdict::Fine);
        assert_eq!(verdict(&settings, &alive, Duration::from_secs(31)), Verdict::MarkCritical);
        let marked = NodeRecord { serf_status: "critical".into(), ..Default::default() };
        assert_eq!(verdict(&settings, &marked, Duration::from_secs(31)), Verdict::Fine, "marked once");
        assert_eq!(verdict(&settings, &marked, Duration::from_secs(3601)), Verdict::Remove);
    }
}
