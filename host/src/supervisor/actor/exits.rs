//! What happens when a process exits, inside its actor: stale exits (an older
//! generation) are ignored, the restart policy decides, restarts go through the
//! backoff and the one restart timer, `max_restarts` unstable runs in a row end in
//! `errored`. Planned replacements (unhealthy, over `max_memory_restart`) are signalled
//! here and restart through the same path. It does not run probes (`probes.rs`).

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{Actor, Note};
use crate::events::Event;
use crate::model::RestartPolicy;
use crate::supervisor::spec::Mode;
use crate::supervisor::state::ServiceState;
use crate::supervisor::{groups, procfs};

impl Actor {
    pub(super) async fn on_note(&mut self, note: Note) {
        match note {
            Note::Exited { instance, generation, code, signal } => {
                self.on_exit(instance, generation, code, signal).await
            }
            Note::Probe { generation, result } => {
                let probing =
                    matches!(self.run.state, ServiceState::Starting | ServiceState::Running | ServiceState::Unhealthy);
                if generation == self.health.probe_generation && probing {
                    self.on_probe(result).await;
                }
            }
        }
    }

    async fn on_exit(&mut self, instance: u32, generation: u64, code: Option<i32>, signal: Option<i32>) {
        let Some(slot) = self.run.instances.get_mut(instance as usize) else { return };
        let Some(current) = slot.as_ref() else { return };
        if current.generation != generation {
            return; // a process we already replaced or stopped
        }
        let ran_for = current.started.elapsed();
        *slot = None;
        let how = match (code, signal) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(s)) => format!("was killed by signal {s}"),
            (None, None) => "is gone".to_string(),
        };
        self.container_exited(code);
        let planned = self.restarts.replacing.contains(&instance);
        self.restarts.replacing.retain(|i| *i != instance);
        let message = format!("instance {instance} {how} after {:.1} s", ran_for.as_secs_f64());
        self.log.host_line(&message);
        self.run.message = message;
        let clean = code.is_some_and(|c| self.spec.supervise.success_exit_codes.contains(&c));
        let restart = planned
            || match self.spec.supervise.restart {
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure => !clean,
                RestartPolicy::Never => false,
            };
        if !restart {
            // Only when nothing is left and nothing is waiting to restart.
            if self.live_instances() == 0 && self.restarts.pending.is_empty() {
                self.stop_probe();
                self.host.ports.release(&self.spec.name);
                self.set_state(if clean { ServiceState::Stopped } else { ServiceState::Errored }).await;
            } else {
                self.persist().await;
            }
            return;
        }
        // Planned replacements (unhealthy, over memory) go through the same backoff as
        // crashes, so a service that never becomes healthy slows down and finally stops.
        let delay = self.restarts.backoff.on_exit(ran_for, Duration::from_millis(self.spec.supervise.min_uptime_ms));
        if self.restarts.backoff.unstable_restarts() > self.spec.supervise.max_restarts {
            self.give_up().await;
            return;
        }
        self.schedule_restart(instance, delay);
        self.log.host_line(&format!("restarting in {} ms", delay.as_millis()));
        self.stop_probe();
        self.set_state(ServiceState::Backoff).await;
    }

    pub(super) fn schedule_restart(&mut self, instance: u32, delay: Duration) {
        if !self.restarts.pending.contains(&instance) {
            self.restarts.pending.push(instance);
        }
        let at = Instant::now() + delay;
        // One timer for the service: the earliest pending restart wins.
        self.restarts.at = Some(self.restarts.at.map_or(at, |t| t.min(at)));
    }

    pub(super) async fn give_up(&mut self) {
        let message = format!(
            "gave up after {} unstable restarts (each run shorter than {} ms); fix it and start it again",
            self.spec.supervise.max_restarts, self.spec.supervise.min_uptime_ms
        );
        self.log.host_line(&message);
        self.run.message = message;
        self.restarts.at = None;
        self.restarts.pending.clear();
        self.stop_processes(self.spec.stop_signal, self.spec.kill_timeout()).await;
        self.stop_probe();
        self.host.ports.release(&self.spec.name);
        self.set_state(ServiceState::Errored).await;
        self.host
            .events
            .publish(Event::RestartLimitReached { name: self.spec.name.clone(), restarts: self.restarts.count });
    }

    /// A restart that failed before anything ran (a spawn, a container create) is an
    /// unstable run: it counts toward `max_restarts` like a crash, and `instance` is
    /// scheduled again after the backoff. `false`: the limit was reached and the
    /// service gave up.
    pub(super) async fn respawn_failed(&mut self, instance: u32) -> bool {
        let delay =
            self.restarts.backoff.on_exit(Duration::ZERO, Duration::from_millis(self.spec.supervise.min_uptime_ms));
        if self.restarts.backoff.unstable_restarts() > self.spec.supervise.max_restarts {
            self.give_up().await;
            return false;
        }
        self.schedule_restart(instance, delay);
        true
    }

    pub(super) async fn on_restart_timer(&mut self) {
        self.restarts.at = None;
        let pending = std::mem::take(&mut self.restarts.pending);
        match self.spec.mode.clone() {
            Mode::Supervised { argv, cwd } => {
                for instance in pending {
                    self.restarts.count += 1;
                    if let Err(e) = self.spawn_one(instance, &argv, &cwd) {
                        // A failed spawn is an unstable run: it counts toward the limit.
                        let message = format!("restart failed: {e}");
                        self.log.host_line(&message);
                        self.run.message = message;
                        if !self.respawn_failed(instance).await {
                            return;
                        }
                    }
                }
                if self.restarts.pending.is_empty() {
                    self.after_spawn().await;
                } else {
                    self.persist().await;
                }
            }
            Mode::Container => self.restart_container().await,
            Mode::Script => {
                self.restarts.count += 1;
                self.set_state(ServiceState::Stopped).await;
                if let Err(e) = self.start(false).await {
                    tracing::warn!(service = %self.spec.name, "scripted restart failed: {e}");
                }
            }
            Mode::Unmanaged => {}
        }
    }

    /// Restarts every instance on purpose (unhealthy). Supervised instances are only
    /// signalled here; their exits come back as notes and restart through the backoff.
    pub(super) async fn replace_instances(&mut self) {
        match self.spec.mode {
            Mode::Supervised { .. } => {
                let groups: Vec<(u32, i32)> =
                    self.run.instances.iter().flatten().map(|i| (i.record.instance, i.record.pgid)).collect();
                for (instance, pgid) in groups {
                    self.restarts.replacing.push(instance);
                    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), self.spec.stop_signal);
                    self.escalate_later(pgid);
                }
            }
            Mode::Container => self.replace_container(),
            Mode::Script => {
                let _ = self.stop(false, false).await;
                self.restarts.count += 1;
                if let Err(e) = self.start(false).await {
                    tracing::warn!(service = %self.spec.name, "restart of unhealthy service failed: {e}");
                }
            }
            Mode::Unmanaged => {}
        }
    }

    /// SIGKILL for a group still alive after `kill_timeout`, without blocking the actor.
    fn escalate_later(&self, pgid: i32) {
        let wait = self.spec.kill_timeout();
        let signalled = Instant::now();
        self.host.tracker.spawn(async move {
            tokio::time::sleep(wait).await;
            if groups::has_live_members(pgid, signalled).await {
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), Signal::SIGKILL);
            }
        });
    }

    pub(super) async fn housekeeping(&mut self) {
        if let Err(e) = self.log.rotate_if_needed() {
            tracing::warn!(service = %self.spec.name, "log rotation failed: {e}");
        }
        let limit = self.spec.supervise.max_memory_restart;
        if limit == 0 || self.run.state != ServiceState::Running {
            return;
        }
        let over: Vec<(u32, i32, u64)> = self
            .run
            .instances
            .iter()
            .flatten()
            .filter(|i| !self.restarts.replacing.contains(&i.record.instance) && i.record.pgid > 1)
            .filter_map(|i| {
                procfs::rss_bytes(i.record.pid)
                    .filter(|rss| *rss > limit)
                    .map(|rss| (i.record.instance, i.record.pgid, rss))
            })
            .collect();
        for (instance, pgid, rss) in over {
            self.log.host_line(&format!(
                "instance {instance} uses {rss} bytes > max_memory_restart {limit}: restarting it"
            ));
            self.restarts.replacing.push(instance);
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), self.spec.stop_signal);
            self.escalate_later(pgid);
        }
    }
}
