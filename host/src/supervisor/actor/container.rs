//! Container mode inside a service's actor: start (adopt ours if it already runs, else
//! remove a stale one, create and start), watch for the exit (the engine's wait, asked
//! again after an engine outage), copy the container's output into the service's log
//! file, stop with the model's signal and grace then remove, kill, replace when
//! unhealthy, and re-adopt after a host restart. Exits come back to the actor as the
//! same notes processes send, so restart policy, backoff, limits, health checks, events
//! and alarms are the actor's, unchanged.
//!
//! It does not build the create body (`supervisor/container.rs` does) and never lets
//! the engine restart anything (restart policy `no`). Every task it spawns is on the
//! actor's tracker and ends with the container, with a newer watch, or with the actor.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{Actor, Instance, Note};
use crate::docker::{DockerError, DockerManager};
use crate::model::PortMapping;
use crate::store::{ProcessRecord, RuntimeRecord, now_ms};
use crate::supervisor::container::{self as plan, Owner};
use crate::supervisor::procfs;
use crate::supervisor::state::{ContainerStatus, ServiceState};
use crate::supervisor::{ControlError, ControlResult};

/// How often an interrupted wait asks the engine again.
const REWAIT: Duration = Duration::from_secs(1);

impl Actor {
    pub(super) async fn start_container(&mut self) -> ControlResult {
        if self.adopt_running_container().await {
            return Ok(self.status());
        }
        if let Err(e) = self.claim_container_ports() {
            self.run.message = e.to_string();
            self.log.host_line(&format!("start refused: {e}"));
            self.publish_status();
            return Err(e);
        }
        self.set_state(ServiceState::Starting).await;
        match self.run_container().await {
            Ok(()) => {
                self.after_spawn().await;
                Ok(self.status())
            }
            Err(message) => {
                self.log.host_line(&message);
                self.run.message = message.clone();
                self.host.ports.release(&self.spec.name);
                self.run.ports.clear();
                self.set_state(ServiceState::Errored).await;
                Err(ControlError::Failed(message))
            }
        }
    }

    /// A start that finds our container already running (the engine was down when the
    /// host restarted, or a stop failed) takes it over with the ports it was created
    /// with, before claiming any: those ports are its own.
    async fn adopt_running_container(&mut self) -> bool {
        let name = plan::container_name(&self.spec.name);
        let Ok(Some(found)) = self.host.docker.find(&name).await else { return false };
        if !found.running || plan::owner(&found.labels, &self.spec.name, &plan::host_label(&self.spec)) != Owner::Us {
            return false;
        }
        let image = self.spec.model.container.as_ref().map(|c| c.image.clone()).unwrap_or_default();
        self.host.ports.release(&self.spec.name);
        self.host.ports.adopt(&self.spec.name, &found.ports);
        self.run.ports = found.ports.clone();
        self.set_state(ServiceState::Starting).await;
        self.log.host_line(&format!("container {name} ({}) is already running: adopted", short(&found.id)));
        self.watch_container(&found.id, found.pid, &image, true, log_mtime_secs(self));
        self.after_spawn().await;
        true
    }

    /// Network `host`: the ports are the container's own, claimed like a process's.
    /// Network `bridge`: the published host ports (static ones checked free, `0` or
    /// missing ones allocated), in the order of [`plan::wanted_ports`].
    fn claim_container_ports(&mut self) -> Result<(), ControlError> {
        let network = self.spec.model.container.as_ref().map_or("none", |c| c.network_mode());
        if network == "host" {
            return self.claim_ports();
        }
        let name = self.spec.name.clone();
        self.host.ports.release(&name);
        let wanted = plan::wanted_ports(&self.spec.model);
        let fixed: Vec<u16> = wanted.iter().map(|p| p.host).filter(|p| *p > 0).collect();
        if !fixed.is_empty() {
            self.host
                .ports
                .claim_static(&name, self.spec.host_ip, &fixed)
                .map_err(|e| ControlError::Port(e.to_string()))?;
        }
        let mut ports = Vec::with_capacity(wanted.len());
        for p in &wanted {
            if p.host > 0 {
                ports.push(p.host);
                continue;
            }
            match self.host.ports.allocate(&name, self.spec.host_ip) {
                Ok(port) => ports.push(port),
                Err(e) => {
                    self.host.ports.release(&name);
                    return Err(ControlError::Port(e.to_string()));
                }
            }
        }
        self.run.ports = ports;
        Ok(())
    }

    /// Makes the service's container run and watches it. Errors are whole sentences
    /// for the status message (the engine's address included when it is unreachable).
    async fn run_container(&mut self) -> Result<(), String> {
        let Some(section) = self.spec.model.container.clone() else {
            return Err("the model has no container section".into());
        };
        let name = plan::container_name(&self.spec.name);
        let fail = |what: &str, e: DockerError| format!("cannot {what} container {name}: {e}");
        if let Some(found) = self.host.docker.find(&name).await.map_err(|e| fail("look up", e))? {
            match plan::owner(&found.labels, &self.spec.name, &plan::host_label(&self.spec)) {
                Owner::Us if found.running => {
                    self.log.host_line(&format!("container {name} ({}) is already running: adopted", short(&found.id)));
                    self.watch_container(&found.id, found.pid, &section.image, true, log_mtime_secs(self));
                    return Ok(());
                }
                Owner::Us => self.host.docker.remove_quietly(&found.id).await.map_err(|e| fail("remove the old", e))?,
                Owner::OtherHost(other) => {
                    return Err(format!(
                        "container {name} belongs to the Apollo host whose data directory is {other}: services of \
                         one name cannot run from two hosts on one engine"
                    ));
                }
                Owner::Stranger => {
                    return Err(format!(
                        "a container named {name} exists that Apollo did not create: remove or rename it"
                    ));
                }
            }
        }
        let mounts = plan::resolve_mounts(
            &section.mounts,
            &self.spec.paths.app_root,
            &self.spec.config.app_root,
            &self.spec.config.ci.container_mount_roots,
            &[self.spec.config.models_dir(), self.spec.config.app_manager.clone(), self.spec.config.data_dir.clone()],
        )?;
        let published: Vec<PortMapping> = plan::wanted_ports(&self.spec.model)
            .iter()
            .zip(&self.run.ports)
            .map(|(w, host)| PortMapping { host: *host, container: w.container })
            .collect();
        let body = plan::create_body(&self.spec, &section, &published, &self.run.ports, mounts);
        let id = self.host.docker.create_named(&name, body).await.map_err(|e| fail("create", e))?;
        if let Err(e) = self.host.docker.start_container(&id).await {
            let _ = self.host.docker.remove_quietly(&id).await;
            return Err(fail("start", e));
        }
        // The pid is for the status (and RSS); a container that already exited has none.
        let pid = self.host.docker.find(&id).await.ok().flatten().map_or(0, |f| f.pid);
        self.log.host_line(&format!("started container {name} ({}) from {}", short(&id), section.image));
        self.watch_container(&id, pid, &section.image, false, 0);
        Ok(())
    }

    /// Records the container as instance 0 and starts its waiter and log pump, ending
    /// those of an earlier watch. `since`: unix seconds of output already in the log.
    fn watch_container(&mut self, id: &str, pid: i32, image: &str, adopted: bool, since: i64) {
        if let Some(old) = self.container.tasks.take() {
            old.cancel();
        }
        let cancel = CancellationToken::new();
        self.container.tasks = Some(cancel.clone());
        self.generation += 1;
        let generation = self.generation;
        let notes = self.host.notes.clone();
        let docker = Arc::clone(&self.host.docker);
        let waited = id.to_string();
        let stop = cancel.clone();
        self.host.tracker.spawn(async move {
            let code = tokio::select! {
                code = wait_for_exit(&docker, &waited) => code,
                () = stop.cancelled() => return,
                // The actor is gone (host shutdown leaving services running).
                () = notes.closed() => return,
            };
            let _ = notes.send(Note::Exited { instance: 0, generation, code, signal: None }).await;
        });
        self.spawn_log_pump(id, since, cancel);
        let record = ProcessRecord { instance: 0, pid, pgid: 0, start_ticks: procfs::start_ticks(pid).unwrap_or(0) };
        self.run.instances =
            vec![Some(Instance { record, started: Instant::now(), started_at_ms: now_ms(), generation, adopted })];
        self.container.current = Some(ContainerStatus {
            id: id.to_string(),
            name: plan::container_name(&self.spec.name),
            image: image.to_string(),
            state: "running".into(),
        });
    }

    /// Appends the container's stdout and stderr to the service's log file until the
    /// output ends (the container stopped), so `/api/apps/{name}/logs` reads it like a
    /// process's. When the output breaks off with an error (the engine went away), it
    /// follows again from the second of the last chunk, like the exit waiter asks again
    /// (a line at that second may be written twice).
    fn spawn_log_pump(&self, id: &str, since: i64, cancel: CancellationToken) {
        let docker = Arc::clone(&self.host.docker);
        let log = self.log.clone();
        let notes = self.host.notes.clone();
        let id = id.to_string();
        let service = self.spec.name.clone();
        self.host.tracker.spawn(async move {
            let pump = async {
                let mut since = since;
                loop {
                    let mut file = log.open_append().map_err(|e| e.to_string())?;
                    let error = match docker.follow_output(&id, since).await {
                        Ok(mut output) => loop {
                            match output.next().await {
                                None => return Ok::<(), String>(()),
                                Some(Ok(bytes)) => {
                                    file.write_all(&bytes).map_err(|e| e.to_string())?;
                                    since = now_ms() / 1000;
                                }
                                Some(Err(e)) => break e.to_string(),
                            }
                        },
                        Err(DockerError::NotFound(_)) => return Ok(()),
                        Err(e) => e.to_string(),
                    };
                    tracing::debug!(service = %service, "container output broke off ({error}); following again");
                    tokio::time::sleep(REWAIT).await;
                }
            };
            tokio::select! {
                result = pump => {
                    if let Err(e) = result {
                        tracing::debug!(service = %service, "container output no longer followed: {e}");
                    }
                }
                () = cancel.cancelled() => {}
                () = notes.closed() => {}
            }
        });
    }

    /// Stops (`force`: kills) and removes the known container. Its exit is expected, so
    /// the instance is forgotten first and the waiter's note will be ignored.
    pub(super) async fn stop_container(&mut self, force: bool) -> Result<(), String> {
        for slot in &mut self.run.instances {
            *slot = None;
        }
        let Some(c) = self.container.current.clone() else { return Ok(()) };
        let stopped = if force {
            self.host.docker.kill(&c.id).await
        } else {
            self.host.docker.stop_with(&c.id, Some(self.spec.stop_signal.as_str()), plan::grace_secs(&self.spec)).await
        };
        let removed = match stopped {
            Ok(()) => self.host.docker.remove_quietly(&c.id).await,
            Err(DockerError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        };
        let verb = if force { "kill" } else { "stop" };
        match removed {
            Ok(()) => {
                self.log.host_line(&format!("{verb}: container {} ({}) removed", c.name, short(&c.id)));
                self.container.current = None;
                Ok(())
            }
            Err(e) => {
                let message = format!("cannot {verb} container {}: {e}", c.name);
                self.log.host_line(&message);
                self.run.message = message.clone();
                Err(message)
            }
        }
    }

    /// After a failed stop or kill: `errored` with the message `stop_container` set. A
    /// later stop tries again.
    pub(super) async fn container_failed(&mut self) -> ControlResult {
        self.set_state(ServiceState::Errored).await;
        Err(ControlError::Failed(self.run.message.clone()))
    }

    /// Keeps the status's container state in step with an exit the waiter reported.
    pub(super) fn container_exited(&mut self, code: Option<i32>) {
        if let Some(c) = &mut self.container.current {
            c.state = code.map_or_else(|| "gone".into(), |code| format!("exited (code {code})"));
        }
    }

    /// The backoff timer fired: a new container (the old one is removed first). A
    /// failure (the engine away, say) counts as an unstable run, like a failed spawn.
    pub(super) async fn restart_container(&mut self) {
        self.restarts.count += 1;
        match self.run_container().await {
            Ok(()) => self.after_spawn().await,
            Err(message) => {
                self.log.host_line(&format!("restart failed: {message}"));
                self.run.message = message;
                if self.respawn_failed(0).await {
                    self.persist().await;
                }
            }
        }
    }

    /// Unhealthy: stop the container in the background; its exit comes back as a note
    /// and restarts it through the backoff, whatever the restart policy says.
    pub(super) fn replace_container(&mut self) {
        let Some(c) = self.container.current.clone() else { return };
        self.restarts.replacing.push(0);
        let docker = Arc::clone(&self.host.docker);
        let signal = self.spec.stop_signal.as_str();
        let grace = plan::grace_secs(&self.spec);
        let log = self.log.clone();
        self.host.tracker.spawn(async move {
            if let Err(e) = docker.stop_with(&c.id, Some(signal), grace).await {
                log.host_line(&format!("cannot stop unhealthy container {}: {e}", c.name));
            }
        });
    }

    /// After a host restart: a running container of ours is re-adopted (or, if the
    /// operator's stop was interrupted, stopped). Anything else is left to the
    /// supervisor, which starts the service again if it was running, and the start
    /// removes a stale container.
    pub(super) async fn restore_container(&mut self, record: RuntimeRecord) {
        self.run.stop_operation = record.stop_operation;
        self.restarts.count = record.restarts;
        let name = plan::container_name(&self.spec.name);
        let found = match self.host.docker.find(&name).await {
            Ok(found) => found,
            Err(e) => {
                self.run.message = format!("cannot look up container {name}: {e}");
                self.log.host_line(&self.run.message);
                self.persist().await;
                return;
            }
        };
        let host = plan::host_label(&self.spec);
        let Some(found) = found.filter(|f| f.running && plan::owner(&f.labels, &self.spec.name, &host) == Owner::Us)
        else {
            self.persist().await;
            return;
        };
        let image = self.spec.model.container.as_ref().map(|c| c.image.clone()).unwrap_or_default();
        self.host.ports.adopt(&self.spec.name, &record.ports);
        self.run.ports = record.ports.clone();
        self.watch_container(&found.id, found.pid, &image, true, log_mtime_secs(self));
        if self.run.stop_operation {
            self.log.host_line("finishing a stop interrupted by a host restart");
            let _ = self.stop(false, false).await;
            return;
        }
        self.log.host_line(&format!("re-adopted container {name} ({}) after a host restart", short(&found.id)));
        self.after_spawn().await;
    }
}

/// The exit code, waiting through engine outages: when the wait breaks off, the
/// container is asked for again until it is seen stopped or gone (`None`).
async fn wait_for_exit(docker: &DockerManager, id: &str) -> Option<i32> {
    loop {
        match docker.wait_exit(id).await {
            Ok(code) => return i32::try_from(code).ok(),
            Err(DockerError::NotFound(_)) => return None,
            Err(e) => tracing::debug!(container = id, "waiting for the container broke off: {e}"),
        }
        tokio::time::sleep(REWAIT).await;
        match docker.find(id).await {
            Ok(None) => return None,
            Ok(Some(c)) if !c.running => return c.exit_code.and_then(|c| i32::try_from(c).ok()),
            _ => {}
        }
    }
}

/// Where to resume the output of an adopted container: the log file's last change
/// (whole seconds, so a line or two may appear twice).
fn log_mtime_secs(actor: &Actor) -> i64 {
    std::fs::metadata(actor.log.path())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(0)
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
