//! Stopping and restarting a service, inside its actor: stop and kill (stop script,
//! then the recorded process groups signalled, escalating to SIGKILL), the restart
//! script or stop-then-start, and the restart a watched file change asks for. It does
//! not restart after exits (`exits.rs` does).

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::Actor;
use crate::supervisor::child::stop_group;
use crate::supervisor::spec::Mode;
use crate::supervisor::state::ServiceState;
use crate::supervisor::{ControlResult, cgroup};

impl Actor {
    pub(super) async fn stop(&mut self, operator: bool, force: bool) -> ControlResult {
        self.restarts.at = None;
        self.restarts.pending.clear();
        self.stop_probe();
        self.health.failures = 0;
        if operator {
            self.run.stop_operation = true;
        }
        if self.live_instances() == 0 && matches!(self.run.state, ServiceState::Stopped | ServiceState::Errored) {
            // An exited container is kept for inspection until the service is stopped.
            if self.container.current.is_some() && self.stop_container(true).await.is_err() {
                return self.container_failed().await;
            }
            self.set_state(ServiceState::Stopped).await;
            return Ok(self.status());
        }
        self.set_state(ServiceState::Stopping).await;
        let (signal, wait) =
            if force { (Signal::SIGKILL, Duration::ZERO) } else { (self.spec.stop_signal, self.spec.kill_timeout()) };
        // A failing or missing stop script does not leave the service running: the
        // recorded process group is signalled whatever the script did, and the script's
        // failure is reported in the status message.
        let mut note = None;
        if self.container.current.is_some() && self.stop_container(force).await.is_err() {
            return self.container_failed().await;
        }
        if self.spec.mode == Mode::Script {
            let script = if force { &self.spec.model.manage_cmd.force_kill } else { &self.spec.model.manage_cmd.stop };
            if !script.is_empty() {
                match self.run_manage_script(&script.clone()).await {
                    Ok(o) if o.success() => {}
                    Ok(o) => note = Some(o.describe()),
                    Err(e) => note = Some(e.to_string()),
                }
            }
        }
        let graceful = self.stop_processes(signal, wait).await;
        if !graceful {
            self.log.host_line(&format!("did not stop within {:?} of {signal}: killed", self.spec.kill_timeout()));
        }
        for instance in 0..self.spec.instances().max(self.run.instances.len() as u32) {
            let _ = std::fs::remove_file(self.pid_file(instance));
        }
        self.run.instances.clear();
        self.host.ports.release(&self.spec.name);
        self.run.ports.clear();
        cgroup::remove(Path::new(cgroup::DEFAULT_ROOT), &self.spec.name);
        self.run.message = match note {
            Some(note) => format!("{note}; stopped with {signal} to its process group instead"),
            None if operator => "stopped by operator".into(),
            None => "stopped".into(),
        };
        self.set_state(ServiceState::Stopped).await;
        Ok(self.status())
    }

    /// Signals every instance's group in parallel; `true` when all went gracefully.
    pub(super) async fn stop_processes(&mut self, signal: Signal, wait: Duration) -> bool {
        if self.container.current.is_some() {
            return self.stop_container(signal == Signal::SIGKILL).await.is_ok();
        }
        // Never group 0 or 1: that would be the host's own group, or everything.
        let groups: Vec<i32> =
            self.run.instances.iter().flatten().map(|i| i.record.pgid).filter(|pgid| *pgid > 1).collect();
        // Their exits are expected now: the waiters' notes will find no instance.
        for slot in &mut self.run.instances {
            *slot = None;
        }
        let stops = groups.into_iter().map(|pgid| stop_group(pgid, signal, wait));
        futures::future::join_all(stops).await.into_iter().all(|graceful| graceful)
    }

    pub(super) async fn restart(&mut self) -> ControlResult {
        let has_script = !self.spec.model.manage_cmd.restart.is_empty();
        if self.spec.mode == Mode::Script && has_script && self.run.state.is_active() {
            self.set_state(ServiceState::Stopping).await;
            self.stop_probe();
            let _ = std::fs::remove_file(&self.spec.paths.pid_file);
            // restart.sh replaces the processes itself: forget the old ones, unsignalled.
            for slot in &mut self.run.instances {
                *slot = None;
            }
            let outcome = self.run_manage_script(&self.spec.model.manage_cmd.restart.clone()).await;
            let floor = match outcome {
                Ok(o) if o.success() => o.start_ticks,
                Ok(o) => return self.script_failed(o.describe()).await,
                Err(e) => return self.script_failed(e.to_string()).await,
            };
            self.run.stop_operation = false;
            self.restarts.count += 1;
            return self.adopt_script_process(floor).await;
        }
        if self.run.state != ServiceState::Stopped {
            self.stop(false, false).await?;
        }
        self.start(true).await
    }

    /// A watch restart counts as a restart (like PM2's), unlike an operator's, which
    /// starts the count afresh. `Starting` is left alone: a service writing its own
    /// files while it comes up must not restart itself in a loop.
    pub(super) async fn restart_for_changes(&mut self, changed: &[std::path::PathBuf]) {
        let wanted = matches!(
            self.run.state,
            ServiceState::Running | ServiceState::Unhealthy | ServiceState::Backoff | ServiceState::Errored
        );
        if !wanted || self.run.stop_operation {
            return;
        }
        let what = match changed {
            [] => "watched files".to_string(),
            [one] => one.display().to_string(),
            [first, rest @ ..] => format!("{} and {} more", first.display(), rest.len()),
        };
        self.log.host_line(&format!("watch: {what} changed; restarting"));
        let restarts = self.restarts.count;
        match self.restart().await {
            Ok(_) => {
                self.restarts.count = restarts + 1;
                self.run.message = format!("restarted by watch: {what} changed");
                self.persist().await;
            }
            Err(e) => self.log.host_line(&format!("watch restart failed: {e}")),
        }
    }
}
