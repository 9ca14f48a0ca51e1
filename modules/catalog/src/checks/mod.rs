//! The checks this node runs: one task per HTTP, TCP, script or TTL check registered on
//! this node (and only here: every host runs its own node's checks), reconciled with
//! the replica after each change; the reaper of `DeregisterCriticalServiceAfter`; and
//! [`set_status`], the one way a status reaches the storage. Only status changes are
//! written (and wake watchers); an output-only change stays local, as in Consul.

mod probes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use plugin_api::storage::Write;
use plugin_api::tokio::sync::watch;
use plugin_api::tokio::task::JoinHandle;
use plugin_api::{Host, ModuleError};
use rand::Rng;

use crate::decode::OUTPUT_MAX;
use crate::metrics::Metrics;
use crate::model::{self, CheckKind, CheckRecord};
use crate::replica::Replica;
use crate::settings::Settings;

/// How often the reaper looks for services critical past their deregister time.
const REAP_EVERY: Duration = Duration::from_secs(10);

/// A status and output for [`set_status`].
#[derive(Debug, Clone)]
pub struct Update {
    pub status: String,
    pub output: String,
}

impl Update {
    pub fn new(status: &str, mut output: String) -> Self {
        if output.len() > OUTPUT_MAX {
            let mut cut = OUTPUT_MAX;
            while !output.is_char_boundary(cut) {
                cut -= 1;
            }
            output.truncate(cut);
        }
        Self { status: status.to_string(), output }
    }
}

/// Sets a check's status and output. Writes (and so wakes watchers, and tells the
/// fleet) only when the status changes; otherwise keeps the output locally.
pub async fn set_status(replica: &Replica, node: &str, id: &str, update: Update) -> Result<(), ModuleError> {
    let key = model::check_key(node, id);
    let wrote = replica
        .transact(|state| {
            let Some(current) = state.check(node, id) else { return Ok((Vec::new(), false)) };
            if current.record.status == update.status {
                return Ok((Vec::new(), false));
            }
            let mut record = current.record.clone();
            record.create_index = current.create_index;
            record.status = update.status.clone();
            record.output = update.output.clone();
            record.critical_since_ms = (record.status == "critical").then(model::now_ms);
            Ok((
                vec![Write::put(key.clone(), serde_json::to_string(&record)?).expect_version(state.version(&key))],
                true,
            ))
        })
        .await?;
    if !wrote {
        let mut state = replica.write();
        if state.check(node, id).is_some() {
            state.outputs.insert((node.to_string(), id.to_string()), update.output);
        }
    }
    Ok(())
}

#[derive(Debug)]
struct Task {
    kind: CheckKind,
    handle: JoinHandle<()>,
}

#[derive(Debug)]
pub struct Runner {
    replica: Arc<Replica>,
    settings: Settings,
    metrics: Metrics,
    host: Host,
    /// Check id → its running task (this node's checks only).
    tasks: Mutex<HashMap<String, Task>>,
    /// TTL check id → its reset signal (`/v1/agent/check/pass|warn|fail|update`).
    ttl_resets: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Drop for Runner {
    fn drop(&mut self) {
        for (_, task) in self.tasks.get_mut().unwrap_or_else(PoisonError::into_inner).drain() {
            task.handle.abort();
        }
    }
}

impl Runner {
    pub fn new(replica: Arc<Replica>, settings: Settings, metrics: Metrics, host: Host) -> Arc<Self> {
        Arc::new(Self { replica, settings, metrics, host, tasks: Mutex::default(), ttl_resets: Mutex::default() })
    }

    /// Restarts a TTL check's timer.
    pub fn ttl_reset(&self, id: &str) {
        let mut resets = self.ttl_resets.lock().unwrap_or_else(PoisonError::into_inner);
        resets.entry(id.to_string()).or_insert_with(|| watch::Sender::new(0)).send_modify(|n| *n += 1);
    }

    fn ttl_signal(&self, id: &str) -> watch::Receiver<u64> {
        let mut resets = self.ttl_resets.lock().unwrap_or_else(PoisonError::into_inner);
        resets.entry(id.to_string()).or_insert_with(|| watch::Sender::new(0)).subscribe()
    }

    /// Reconciles the tasks with the replica after every change, reaps on a timer,
    /// until the module stops.
    pub async fn run(self: Arc<Self>) {
        let mut changed = self.replica.changed();
        let mut reap = plugin_api::tokio::time::interval(REAP_EVERY);
        loop {
            self.reconcile();
            plugin_api::tokio::select! {
                _ = changed.changed() => {}
                _ = reap.tick() => self.reap().await,
                () = self.replica.stopped() => break,
            }
        }
        for (_, task) in self.tasks.lock().unwrap_or_else(PoisonError::into_inner).drain() {
            task.handle.abort();
        }
    }

    fn reconcile(self: &Arc<Self>) {
        let node = &self.settings.node_name;
        // Only the node's current owner runs its checks (see model::OWNER).
        let wanted: HashMap<String, CheckKind> = if self.replica.owns(node) {
            self.replica
                .read()
                .checks_of_node(node)
                .filter(|c| c.record.kind != CheckKind::Manual)
                .map(|c| (c.record.id.clone(), c.record.kind.clone()))
                .collect()
        } else {
            HashMap::new()
        };
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|id, task| {
            let keep = wanted.get(id) == Some(&task.kind) && !task.handle.is_finished();
            if !keep {
                task.handle.abort();
            }
            keep
        });
        self.ttl_resets.lock().unwrap_or_else(PoisonError::into_inner).retain(|id, _| wanted.contains_key(id));
        for (id, kind) in wanted {
            if tasks.contains_key(&id) {
                continue;
            }
            let handle = plugin_api::tokio::spawn(Arc::clone(self).run_check(id.clone(), kind.clone()));
            tasks.insert(id, Task { kind, handle });
        }
    }

    async fn run_check(self: Arc<Self>, id: String, kind: CheckKind) {
        match kind {
            CheckKind::Ttl { ttl_ms } => self.ttl_loop(&id, Duration::from_millis(ttl_ms)).await,
            CheckKind::Manual => {}
            kind => self.interval_loop(&id, kind).await,
        }
    }

    async fn ttl_loop(&self, id: &str, ttl: Duration) {
        let mut reset = self.ttl_signal(id);
        loop {
            match plugin_api::tokio::time::timeout(ttl, reset.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return,
                Err(_) => {
                    let last = {
                        let state = self.replica.read();
                        let Some(c) = state.check(&self.settings.node_name, id) else { return };
                        state.output(&self.settings.node_name, &c.record).to_string()
                    };
                    let output = if last.is_empty() || last.starts_with("TTL expired") {
                        "TTL expired".to_string()
                    } else {
                        format!("TTL expired (last output before timeout follows): {last}")
                    };
                    self.record("ttl", "critical");
                    if let Err(e) =
                        set_status(&self.replica, &self.settings.node_name, id, Update::new("critical", output)).await
                    {
                        self.host.warn(&format!("catalog: cannot record the expiry of TTL check {id:?}: {e}"));
                    }
                    // Expired: nothing to do until the next pass/warn/fail.
                    if reset.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    fn record(&self, kind: &str, status: &str) {
        self.metrics.check_runs.with(&[kind, status]).inc();
    }

    async fn interval_loop(&self, id: &str, kind: CheckKind) {
        let interval = Duration::from_millis(kind.interval_ms().max(1000));
        let limit = Duration::from_millis(kind.timeout_ms().max(1));
        // Consul staggers the first run randomly within the interval; capped at 1 s here
        // so a fresh registration gets its first real status promptly.
        let stagger = rand::rng().random_range(0..interval.min(Duration::from_secs(1)).as_millis() as u64 + 1);
        plugin_api::tokio::time::sleep(Duration::from_millis(stagger)).await;
        let (mut successes, mut failures) = (0u32, 0u32);
        let mut ticker = plugin_api::tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(plugin_api::tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let (status, output) = match &kind {
                CheckKind::Http { url, method, header, body, .. } => {
                    probes::http(url, method, header, body, limit).await
                }
                CheckKind::Tcp { address, .. } => probes::tcp(address, limit).await,
                CheckKind::Script { args, .. } if self.settings.enable_script_checks => {
                    probes::script(args, limit).await
                }
                CheckKind::Script { .. } => ("critical", "script checks are disabled on this agent".to_string()),
                _ => return,
            };
            self.record(kind.type_word(), status);
            let Some(check) = self.current(id) else { return };
            let status = thresholds(&check, status, &mut successes, &mut failures);
            if let Err(e) = set_status(&self.replica, &self.settings.node_name, id, Update::new(status, output)).await {
                self.host.warn(&format!("catalog: cannot record check {id:?}: {e}"));
            }
        }
    }

    fn current(&self, id: &str) -> Option<CheckRecord> {
        self.replica.read().check(&self.settings.node_name, id).map(|c| c.record.clone())
    }

    /// Deregisters this node's services whose check has been critical longer than its
    /// `DeregisterCriticalServiceAfter`.
    async fn reap(&self) {
        let node = self.settings.node_name.clone();
        if !self.replica.owns(&node) {
            return;
        }
        let now = model::now_ms();
        let due: Vec<String> = self
            .replica
            .read()
            .checks_of_node(&node)
            .filter(|c| c.record.deregister_after_ms > 0 && c.record.status == "critical")
            .filter(|c| {
                c.record.critical_since_ms.is_some_and(|since| now - since >= c.record.deregister_after_ms as i64)
            })
            .map(|c| c.record.service_id.clone())
            .filter(|s| !s.is_empty())
            .collect();
        for service in due {
            let reaped = self
                .replica
                .transact(|state| {
                    if state.service(&node, &service).is_none() {
                        return Ok((Vec::new(), false));
                    }
                    Ok((state.deregistration(&node, &service), true))
                })
                .await;
            match reaped {
                Ok(true) => {
                    self.metrics.registrations.with(&["deregister", "agent"]).inc();
                    self.host.info(&format!(
                        "catalog: deregistered {service:?}: critical past DeregisterCriticalServiceAfter"
                    ));
                }
                Ok(false) => {}
                Err(e) => self.host.warn(&format!("catalog: cannot reap {service:?}: {e}")),
            }
        }
    }
}

/// Applies `SuccessBeforePassing`, `FailuresBeforeWarning` and `FailuresBeforeCritical`
/// to one result: the status to record.
fn thresholds(check: &CheckRecord, result: &'static str, successes: &mut u32, failures: &mut u32) -> &'static str {
    let current: &'static str = match check.status.as_str() {
        "passing" => "passing",
        "warning" => "warning",
        _ => "critical",
    };
    if result == "passing" {
        *successes += 1;
        *failures = 0;
        return if *successes >= check.success_before_passing.max(1) { "passing" } else { current };
    }
    *failures += 1;
    *successes = 0;
    if *failures >= check.failures_before_critical.max(1) {
        result
    } else if check.failures_before_warning > 0 && *failures >= check.failures_before_warning {
        "warning"
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_hold_a_status_until_enough_results() {
        let check = CheckRecord {
            status: "passing".into(),
            failures_before_critical: 3,
            failures_before_warning: 2,
            success_before_passing: 2,
            ..Default::default()
        };
        let (mut s, mut f) = (0, 0);
        assert_eq!(thresholds(&check, "critical", &mut s, &mut f), "passing");
        assert_eq!(thresholds(&check, "critical", &mut s, &mut f), "warning");
        assert_eq!(thresholds(&check, "critical", &mut s, &mut f), "critical");
        let check = CheckRecord { status: "critical".into(), ..check };
        assert_eq!(thresholds(&check, "passing", &mut s, &mut f), "critical");
        assert_eq!(thresholds(&check, "passing", &mut s, &mut f), "passing");
        let plain = CheckRecord { status: "passing".into(), ..Default::default() };
        assert_eq!(thresholds(&plain, "critical", &mut 0, &mut 0), "critical", "no thresholds: at once");
    }
}
