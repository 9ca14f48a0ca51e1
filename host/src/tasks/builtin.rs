//! The built-in tasks and their default schedules (each overridable or disabled under
//! `tasks.<id with _>`): `reload-models`, `sync-runtime`, `log-rotation`,
//! `recheck-services`, `backup`, `housekeeping`. Several of them make visible and schedulable what other
//! subsystems already do on their own; each description says so rather than pretend.
//! The backup itself lives in `crate::backup`; the task only calls it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::AuthService;
use crate::backup::BackupManager;
use crate::config::{Config, TaskConfig, TasksConfig};
use crate::registry::Registry;
use crate::store::Store;
use crate::supervisor::{ServiceState, Supervisor};

use super::{JobResult, Schedule, TaskSpec};

/// Every built-in's config key (under `tasks.`), its config and its default schedule.
pub fn configured(config: &TasksConfig) -> [(&'static str, &TaskConfig, Schedule); 6] {
    config.each().map(|(key, task_config)| (key, task_config, default_schedule(key)))
}

/// The schedule a built-in keeps when `tasks.<key>` names none.
fn default_schedule(key: &str) -> Schedule {
    let every = |secs| Schedule::Every(Duration::from_secs(secs));
    match key {
        "reload_models" => every(300),
        "sync_runtime" => every(60),
        // A fixed, tested expression: it cannot fail to parse.
        "log_rotation" => Schedule::cron("0 0 * * * *").unwrap_or_else(|_| every(3600)),
        "recheck_services" => every(30),
        // Hourly at half past, away from log_rotation at the top of the hour.
        "housekeeping" => Schedule::cron("0 30 * * * *").unwrap_or_else(|_| every(3600)),
        // Daily at 03:00 UTC, away from the top of the hour when other jobs cluster.
        _ => Schedule::cron("0 0 3 * * *").unwrap_or_else(|_| every(86_400)),
    }
}

/// The enabled built-ins with their schedules from `config.tasks` (already validated
/// at config load; an invalid one here is logged and left out).
pub fn builtins(
    config: &Config,
    registry: Arc<Registry>,
    supervisor: Arc<Supervisor>,
    store: Arc<dyn Store>,
    backups: Arc<BackupManager>,
    auth: Arc<AuthService>,
) -> Vec<TaskSpec> {
    let mut specs = Vec::new();
    for (key, task_config, default) in configured(&config.tasks) {
        let schedule = match Schedule::from_config(task_config, default) {
            Ok(Some(schedule)) => schedule,
            Ok(None) => continue,
            Err((field, e)) => {
                tracing::error!(task = key, field, "task not scheduled: {e}");
                continue;
            }
        };
        let id = key.replace('_', "-");
        let spec = match key {
            "reload_models" => {
                let registry = Arc::clone(&registry);
                TaskSpec::new(
                    &id,
                    "Re-read models",
                    "Re-reads the model folder and applies added, changed and removed models. The folder \
                     watcher and registry.rescan_secs already do this; this task makes it schedulable and \
                     its result visible.",
                    schedule,
                    move || reload_models(Arc::clone(&registry)),
                )
            }
            "sync_runtime" => {
                let (supervisor, store) = (Arc::clone(&supervisor), Arc::clone(&store));
                TaskSpec::new(
                    &id,
                    "Check runtime data",
                    "Checks that the store's runtime records (what a restarted host re-adopts) agree with the \
                     supervisor's live states. The supervisor writes them on every state change; this task \
                     writes nothing and fails, naming the services, when they disagree.",
                    schedule,
                    move || sync_runtime(Arc::clone(&supervisor), Arc::clone(&store)),
                )
            }
            "log_rotation" => {
                let dir = config.app_log_dir.clone();
                TaskSpec::new(
                    &id,
                    "Service log sizes",
                    "Reports the number and total size of the service log files under app_log_dir. It rotates \
                     nothing: the supervisor rotates each service's log every 2 s (supervise.log_max_bytes, \
                     supervise.log_keep).",
                    schedule,
                    move || log_sizes(dir.clone()),
                )
            }
            "housekeeping" => {
                let (auth, store, keep) = (Arc::clone(&auth), Arc::clone(&store), config.audit.max_entries);
                TaskSpec::new(
                    &id,
                    "Housekeeping",
                    "Drops expired login tokens and trims the audit log to its newest audit.max_entries entries.",
                    schedule,
                    move || housekeeping(Arc::clone(&auth), Arc::clone(&store), keep),
                )
            }
            "backup" => {
                let backups = Arc::clone(&backups);
                TaskSpec::new(
                    &id,
                    "Backup",
                    "Writes a backup of app_root (models included), the manage scripts and a store snapshot to \
                     app_back_up, then deletes all but the newest backup.retention. Restoring is never scheduled: \
                     it is POST /api/backups/{id}/restore or `apollo backup restore ID`.",
                    schedule,
                    move || backup(Arc::clone(&backups)),
                )
            }
            _ => {
                let supervisor = Arc::clone(&supervisor);
                TaskSpec::new(
                    &id,
                    "Re-check services",
                    "Counts services by state from the supervisor's live statuses and names the errored and \
                     unhealthy ones. Health checks themselves run per service in the supervisor; this task \
                     restarts nothing.",
                    schedule,
                    move || recheck_services(Arc::clone(&supervisor)),
                )
            }
        };
        specs.push(spec);
    }
    specs
}

async fn housekeeping(auth: Arc<AuthService>, store: Arc<dyn Store>, keep: u64) -> JobResult {
    let purged = auth.purge_expired().await.map_err(|e| format!("token purge failed: {e}"))?;
    let dropped = store.trim_audit(keep).await.map_err(|e| format!("audit trim failed: {e}"))?;
    Ok(format!("{purged} expired token(s) dropped, {dropped} audit entr(y/ies) trimmed"))
}

async fn backup(backups: Arc<BackupManager>) -> JobResult {
    let created = backups.create().await.map_err(|e| e.to_string())?;
    let removed = match created.removed.len() {
        0 => String::new(),
        n => format!("; {n} old backup(s) removed"),
    };
    Ok(format!(
        "{}: {}, {} file(s), {} service(s){removed}",
        created.entry.id,
        human_bytes(created.entry.size_bytes),
        created.entry.files,
        created.entry.services.len()
    ))
}

async fn reload_models(registry: Arc<Registry>) -> JobResult {
    let r = registry.reload().await.map_err(|e| format!("reload failed: {e}"))?;
    let total = r.added.len() + r.changed.len() + r.unchanged;
    Ok(format!(
        "{total} services ({} added, {} changed, {} removed), {} problem file(s), generation {}",
        r.added.len(),
        r.changed.len(),
        r.removed.len(),
        r.problems,
        r.generation
    ))
}

/// Services whose stored status differs from the live one: `(name, stored, live)`.
async fn runtime_mismatches(
    supervisor: &Supervisor,
    store: &dyn Store,
) -> Result<(usize, Vec<(String, String, String)>, usize), String> {
    let live = supervisor.statuses().await;
    let stored = store.list_runtime().await.map_err(|e| format!("cannot read runtime data: {e}"))?;
    let stored: std::collections::BTreeMap<&str, &str> =
        stored.iter().map(|r| (r.name.as_str(), r.last_status.as_str())).collect();
    let mismatches = live
        .iter()
        .filter_map(|s| {
            // No record yet is normal for a service that never changed state.
            let on_disk = stored.get(s.name.as_str()).copied().unwrap_or(ServiceState::Stopped.as_str());
            (on_disk != s.state.as_str()).then(|| (s.name.clone(), on_disk.to_string(), s.state.as_str().to_string()))
        })
        .collect();
    let stale = stored.keys().filter(|n| !live.iter().any(|s| s.name == **n)).count();
    Ok((live.len(), mismatches, stale))
}

async fn sync_runtime(supervisor: Arc<Supervisor>, store: Arc<dyn Store>) -> JobResult {
    let (mut services, mut mismatches, mut stale) = runtime_mismatches(&supervisor, store.as_ref()).await?;
    if !mismatches.is_empty() {
        // A state change publishes the status just before the write lands: look again
        // after a moment, and report only what stays out of step.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let first = mismatches;
        (services, mismatches, stale) = runtime_mismatches(&supervisor, store.as_ref()).await?;
        mismatches.retain(|m| first.iter().any(|f| f.0 == m.0));
    }
    let stale_note =
        if stale > 0 { format!("; {stale} record(s) of services no longer registered") } else { String::new() };
    if mismatches.is_empty() {
        return Ok(format!("{services} services; store in step with the supervisor{stale_note}"));
    }
    let list: Vec<String> =
        mismatches.iter().map(|(n, stored, live)| format!("{n} (stored {stored}, live {live})")).collect();
    Err(format!(
        "store out of step for {}: a runtime write failed (see the host log for \"runtime data not stored\"){stale_note}",
        list.join(", ")
    ))
}

async fn log_sizes(dir: PathBuf) -> JobResult {
    let shown = dir.display().to_string();
    let measured = tokio::task::spawn_blocking(move || measure(&dir, 3))
        .await
        .map_err(|e| format!("log size worker failed: {e}"))?;
    match measured {
        Ok((0, _)) => Ok(format!("no service logs in {shown}")),
        Ok((files, bytes)) => Ok(format!("{files} log file(s), {} in {shown}", human_bytes(bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(format!("no service logs in {shown}")),
        Err(e) => Err(format!("cannot measure {shown}: {e}")),
    }
}

/// Regular files under `dir` (symlinks not followed) down to `depth` levels: count, bytes.
fn measure(dir: &Path, depth: u32) -> std::io::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_file() {
            files += 1;
            bytes += entry.metadata()?.len();
        } else if kind.is_dir() && depth > 1 {
            let (f, b) = measure(&entry.path(), depth - 1)?;
            files += f;
            bytes += b;
        }
    }
    Ok((files, bytes))
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

async fn recheck_services(supervisor: Arc<Supervisor>) -> JobResult {
    let statuses = supervisor.statuses().await;
    Ok(summarize_states(statuses.iter().map(|s| (s.name.as_str(), s.state))))
}

/// `3 services: 1 running, 1 errored (b), 0 unhealthy, 1 stopped`: running, errored
/// and unhealthy always, other states when present; names for the troubled ones.
fn summarize_states<'a>(services: impl Iterator<Item = (&'a str, ServiceState)>) -> String {
    let order = [
        ServiceState::Running,
        ServiceState::Errored,
        ServiceState::Unhealthy,
        ServiceState::Backoff,
        ServiceState::Starting,
        ServiceState::Stopping,
        ServiceState::Stopped,
    ];
    let services: Vec<(&str, ServiceState)> = services.collect();
    let mut parts = Vec::new();
    for state in order {
        let names: Vec<&str> = services.iter().filter(|s| s.1 == state).map(|s| s.0).collect();
        let always = matches!(state, ServiceState::Running | ServiceState::Errored | ServiceState::Unhealthy);
        if names.is_empty() && !always {
            continue;
        }
        let troubled = matches!(state, ServiceState::Errored | ServiceState::Unhealthy | ServiceState::Backoff);
        let mut part = format!("{} {}", names.len(), state.as_str());
        if troubled && !names.is_empty() {
            part.push_str(&format!(" ({})", names.join(", ")));
        }
        parts.push(part);
    }
    format!("{} services: {}", services.len(), parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_summary_counts_and_names_the_troubled() {
        let s = summarize_states(
            [("a", ServiceState::Running), ("b", ServiceState::Errored), ("c", ServiceState::Stopped)].into_iter(),
        );
        assert_eq!(s, "3 services: 1 running, 1 errored (b), 0 unhealthy, 1 stopped");
        assert_eq!(summarize_states(std::iter::empty()), "0 services: 0 running, 0 errored, 0 unhealthy");
    }

    #[test]
    fn defaults_and_ids() {
        let config = TasksConfig::default();
        let all = configured(&config);
        let described: Vec<(&str, String)> = all.iter().map(|(k, _, s)| (*k, s.describe())).collect();
        assert_eq!(
            described,
            vec![
                ("reload_models", "every 300s".to_string()),
                ("sync_runtime", "every 60s".to_string()),
                ("log_rotation", "0 0 * * * *".to_string()),
                ("recheck_services", "every 30s".to_string()),
                ("backup", "0 0 3 * * *".to_string()),
                ("housekeeping", "0 30 * * * *".to_string()),
            ]
        );
    }

    #[tokio::test]
    async fn log_sizes_counts_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(log_sizes(dir.path().join("missing")).await.unwrap().starts_with("no service logs"));
        std::fs::create_dir_all(dir.path().join("api")).unwrap();
        std::fs::write(dir.path().join("api/api.log"), vec![b'x'; 2048]).unwrap();
        std::fs::write(dir.path().join("api/api.log.1"), vec![b'x'; 1024]).unwrap();
        let message = log_sizes(dir.path().to_path_buf()).await.unwrap();
        assert!(message.starts_with("2 log file(s), 3.0 KiB in "), "{message}");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
