//! What the supervisor needs to know about one service, derived from its model and the
//! host config: how it runs (a supervised command, manage scripts or a container), where its files
//! are, its ports, restart and stop settings. Rebuilt whenever the model changes.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::config::Config;
use crate::model::{HealthCheck, Octopus, ScriptPaths, Supervise, script_env};

/// How the service is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The host spawns `argv` in its own process group and owns it.
    Supervised { argv: Vec<String>, cwd: PathBuf },
    /// The seed's way: `manage_cmd` scripts start and stop it; the pid file tells.
    Script,
    /// A Docker container from the model's `container` section (`supervisor/container.rs`).
    Container,
    /// Neither a command nor a start script: it can be listed, not started.
    Unmanaged,
}

#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub name: String,
    pub model: Octopus,
    pub mode: Mode,
    pub paths: ScriptPaths,
    pub log_dir: PathBuf,
    pub supervise: Supervise,
    pub health: HealthCheck,
    pub stop_signal: Signal,
    pub static_ports: Vec<u16>,
    pub random_port: bool,
    /// Where its ports are bound: `run_data.host` (`localhost` and empty mean 127.0.0.1).
    pub host_ip: IpAddr,
    /// The host's environment variables passed on to children (PATH, HOME, LANG…):
    /// children never inherit the rest (secrets of the host stay with it). One copy
    /// shared by every service, like `config`: per-service copies of both were most
    /// of what a registered service cost.
    pub inherited_env: Arc<[(String, String)]>,
    pub config: Arc<Config>,
}

/// Variables of the host's own environment that children get.
const INHERITED: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR"];

/// The inherited variables, read once: the host never changes these after it started.
fn inherited_env() -> Arc<[(String, String)]> {
    static READ: OnceLock<Arc<[(String, String)]>> = OnceLock::new();
    Arc::clone(
        READ.get_or_init(|| {
            INHERITED.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))).collect()
        }),
    )
}

impl ServiceSpec {
    pub fn new(config: &Arc<Config>, model: &Octopus) -> Self {
        let paths = ScriptPaths::new(config, &model.name);
        let mode = if model.runs_as_container() {
            Mode::Container
        } else if !model.run_data.command.is_empty() {
            let cwd = if model.run_data.cwd.is_empty() {
                paths.app_root.clone()
            } else {
                paths.app_root.join(&model.run_data.cwd)
            };
            Mode::Supervised { argv: model.run_data.command.clone(), cwd }
        } else if !model.manage_cmd.start.is_empty() {
            Mode::Script
        } else {
            Mode::Unmanaged
        };
        let host_ip = match model.run_data.host.trim() {
            "" | "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            other => other.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        };
        Self {
            name: model.name.clone(),
            mode,
            log_dir: config.app_log_dir.join(&model.name),
            paths,
            supervise: model.supervise.clone(),
            health: model.health.clone(),
            // Validated when the model loaded.
            stop_signal: model.supervise.stop_signal.parse().unwrap_or(Signal::SIGTERM),
            static_ports: model.run_data.ports.iter().filter_map(|p| u16::try_from(*p).ok()).collect(),
            random_port: model.run_data.random_port,
            host_ip,
            inherited_env: inherited_env(),
            model: model.clone(),
            config: Arc::clone(config),
        }
    }

    /// The full environment of a child or script: inherited basics, the seed's script
    /// contract, the model's envs, and `INSTANCE_ID` for supervised instances.
    pub fn env(&self, ports: &[u16], instance: Option<u32>) -> Vec<(String, String)> {
        let mut env = self.inherited_env.to_vec();
        env.extend(script_env(&self.config, &self.model, ports));
        if let Some(i) = instance {
            env.push(("INSTANCE_ID".into(), i.to_string()));
        }
        env
    }

    pub fn script_path(&self, script: &str) -> PathBuf {
        self.paths.manager_dir.join(script)
    }

    pub fn script_timeout(&self) -> Duration {
        Duration::from_secs(self.supervise.script_timeout_secs)
    }

    pub fn kill_timeout(&self) -> Duration {
        Duration::from_millis(self.supervise.kill_timeout_ms)
    }

    pub fn instances(&self) -> u32 {
        match self.mode {
            Mode::Supervised { .. } => self.supervise.instances.max(1),
            _ => 1,
        }
    }
}

/// A spec for unit tests: `model` (JSON, validated) under a host whose data dir is
/// `/srv/apollo/data`.
#[cfg(test)]
pub fn for_test(model: serde_json::Value) -> ServiceSpec {
    let model: Octopus = serde_json::from_value(model).expect("a model");
    crate::model::validate_model(&model).expect("a valid model");
    let config = Config { data_dir: "/srv/apollo/data".into(), ..Default::default() };
    ServiceSpec::new(&Arc::new(config), &model)
}
