//! Re-adoption after a host restart, inside a service's actor: processes that survived
//! (same pid and start time) are watched again with their ports, an interrupted
//! operator stop is finished, missing instances are started; a script service without
//! a pid asks its check script. It never starts a service that died meanwhile: the
//! supervisor does that in dependency order.

use super::Actor;
use crate::store::{ProcessRecord, RuntimeRecord};
use crate::supervisor::procfs;
use crate::supervisor::spec::Mode;
use crate::supervisor::state::ServiceState;

impl Actor {
    /// Re-adopts processes that survived a host restart (pid and start time match) and
    /// fills in missing instances. Starting a service that died meanwhile is left to
    /// the supervisor, which does it in dependency order; nothing is ever duplicated.
    pub(super) async fn restore(&mut self, restored: Option<RuntimeRecord>) {
        let Some(record) = restored else { return };
        if self.spec.mode == Mode::Container {
            return self.restore_container(record).await;
        }
        self.run.stop_operation = record.stop_operation;
        self.restarts.count = record.restarts;
        let survivors: Vec<ProcessRecord> =
            record.processes.iter().copied().filter(|p| procfs::is_same_process(p.pid, p.start_ticks)).collect();
        if survivors.is_empty() {
            if self.spec.mode == Mode::Script && !self.run.stop_operation && was_active(&record) {
                // A script service without a pid: its check script says whether it runs.
                self.adopt_by_check().await;
            } else {
                self.persist().await;
            }
            return;
        }
        self.host.ports.adopt(&self.spec.name, &record.ports);
        self.run.ports = record.ports.clone();
        for p in &survivors {
            self.watch_foreign(p.instance, *p, true);
        }
        if self.run.stop_operation {
            // An operator stop that the crash interrupted: finish it.
            self.log.host_line("finishing a stop interrupted by a host restart");
            let _ = self.stop(false, false).await;
            return;
        }
        self.log.host_line("re-adopted after a host restart");
        if let Mode::Supervised { argv, cwd } = self.spec.mode.clone() {
            for instance in 0..self.spec.instances() {
                if self.run.instances.get(instance as usize).is_none_or(Option::is_none)
                    && let Err(e) = self.spawn_one(instance, &argv, &cwd)
                {
                    self.log.host_line(&format!("cannot start missing instance {instance}: {e}"));
                }
            }
        }
        self.after_spawn().await;
    }

    async fn adopt_by_check(&mut self) {
        let check = self.spec.model.manage_cmd.check.clone();
        if check.is_empty() {
            self.persist().await;
            return;
        }
        if let Ok(outcome) = self.run_manage_script(&check).await
            && outcome.success()
        {
            self.log.host_line("check.sh says it is running: adopted after a host restart");
            self.run.instances = vec![None];
            self.after_spawn().await;
        } else {
            self.persist().await;
        }
    }
}

/// The record says the service was meant to be running when the host went away.
pub fn was_active(record: &RuntimeRecord) -> bool {
    record.last_status.parse::<ServiceState>().is_ok_and(|s| s.is_active() || s == ServiceState::Stopping)
}
