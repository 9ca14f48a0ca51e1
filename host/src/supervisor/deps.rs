//! Ordering for multi-service operations, from the registry's run_dep / stop_chain
//! edges: what to start before a service, what to stop with it, and the waves in which
//! start-all and stop-all run services in parallel.

use std::collections::{BTreeMap, BTreeSet};

use crate::registry::Snapshot;

/// `name`'s run_dep closure in start order (dependencies first), ending with `name`.
pub fn start_order(snapshot: &Snapshot, name: &str) -> Result<Vec<String>, String> {
    let mut order = Vec::new();
    let mut visiting = BTreeSet::new();
    visit(snapshot, name, &mut visiting, &mut order)?;
    Ok(order)
}

fn visit(
    snapshot: &Snapshot,
    name: &str,
    visiting: &mut BTreeSet<String>,
    order: &mut Vec<String>,
) -> Result<(), String> {
    if order.iter().any(|n| n == name) {
        return Ok(());
    }
    if !visiting.insert(name.to_string()) {
        return Err(format!("dependency cycle through {name:?}"));
    }
    let model = &snapshot.apps.get(name).ok_or_else(|| format!("unknown service {name:?}"))?.model;
    for dep in &model.run_data.run_dep {
        visit(snapshot, dep, visiting, order)?;
    }
    visiting.remove(name);
    order.push(name.to_string());
    Ok(())
}

/// What stopping `name` stops: services depending on it (transitively), its stop_chain
/// (transitively), and itself; in reverse start order (dependants first).
pub fn stop_order(snapshot: &Snapshot, name: &str) -> Vec<String> {
    let mut set = BTreeSet::from([name.to_string()]);
    let mut queue = vec![name.to_string()];
    while let Some(current) = queue.pop() {
        let dependants = snapshot
            .apps
            .values()
            .filter(|m| m.model.run_data.run_dep.contains(&current))
            .map(|m| m.model.name.clone());
        let chained = snapshot.apps.get(&current).map(|m| m.model.run_data.stop_chain.clone()).unwrap_or_default();
        for next in dependants.chain(chained) {
            if snapshot.apps.contains_key(&next) && set.insert(next.clone()) {
                queue.push(next);
            }
        }
    }
    let mut waves = start_waves(snapshot, set);
    waves.reverse();
    waves.concat()
}

/// Topological levels of `names` by run_dep (edges outside the set ignored): wave 0
/// has no dependency inside the set, wave k depends only on earlier waves.
pub fn start_waves(snapshot: &Snapshot, names: BTreeSet<String>) -> Vec<Vec<String>> {
    let mut remaining: BTreeMap<String, BTreeSet<String>> = names
        .iter()
        .map(|n| {
            let deps = snapshot
                .apps
                .get(n)
                .map(|m| m.model.run_data.run_dep.iter().filter(|d| names.contains(*d)).cloned().collect())
                .unwrap_or_default();
            (n.clone(), deps)
        })
        .collect();
    let mut waves = Vec::new();
    while !remaining.is_empty() {
        let wave: Vec<String> = remaining.iter().filter(|(_, d)| d.is_empty()).map(|(n, _)| n.clone()).collect();
        if wave.is_empty() {
            // A cycle cannot be loaded; if one slipped in, run the rest in name order.
            waves.push(remaining.keys().cloned().collect());
            break;
        }
        for n in &wave {
            remaining.remove(n);
        }
        for deps in remaining.values_mut() {
            for n in &wave {
                deps.remove(n);
            }
        }
        waves.push(wave);
    }
    waves
}
