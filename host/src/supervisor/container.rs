//! Container mode, the plan: how a service with a `container` section becomes the
//! engine's create body. Its deterministic name (`apollo-<service>`) and labels
//! (`apollo.service`, `apollo.host`) let a later host find and re-adopt it; ports are
//! published on `run_data.host`; bind-mount sources are resolved and confined to
//! `app_root` or `ci.container_mount_roots` (canonical paths, so symlinks cannot lead
//! out); limits come from the section or `resource_limit`; the engine's restart policy
//! is always `no`, because restarts are the supervisor's (backoff, limits, events).
//!
//! It does no I/O with the engine and keeps no state: `actor/container.rs` runs the plan.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};

use super::spec::ServiceSpec;
use crate::model::{ContainerMount, ContainerSection, Octopus, PortMapping, STATUS_CODES};

pub const LABEL_SERVICE: &str = "apollo.service";
pub const LABEL_HOST: &str = "apollo.host";

/// The container's name on the engine.
pub fn container_name(service: &str) -> String {
    format!("apollo-{service}")
}

/// Who a container found under our name belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This host's container for this service.
    Us,
    /// The same service name on another Apollo host sharing the engine (its data dir).
    OtherHost(String),
    /// Not created by Apollo.
    Stranger,
}

pub fn owner(labels: &HashMap<String, String>, service: &str, host: &str) -> Owner {
    match (labels.get(LABEL_SERVICE), labels.get(LABEL_HOST)) {
        (Some(s), Some(h)) if s == service && h == host => Owner::Us,
        (Some(_), Some(h)) => Owner::OtherHost(h.clone()),
        _ => Owner::Stranger,
    }
}

/// What identifies this host on a shared engine: its data directory (one host per data
/// directory is enforced by a lock).
pub fn host_label(spec: &ServiceSpec) -> String {
    spec.config.data_dir.display().to_string()
}

/// The ports to publish, in order, before host ports are chosen: the section's, or with
/// network `bridge` and none given, `run_data.ports` as `p:p`. Empty for other networks.
pub fn wanted_ports(model: &Octopus) -> Vec<PortMapping> {
    let Some(c) = &model.container else { return Vec::new() };
    if c.network_mode() != "bridge" {
        return Vec::new();
    }
    if c.ports.is_empty() {
        return model
            .run_data
            .ports
            .iter()
            .filter_map(|p| u16::try_from(*p).ok())
            .map(|p| PortMapping { host: p, container: p })
            .collect();
    }
    // Validated when the model loaded.
    c.ports.iter().filter_map(|p| PortMapping::parse(p).ok()).collect()
}

/// Seconds the engine waits between the stop signal and SIGKILL: the model's
/// `supervise.kill_timeout_ms`, rounded up.
pub fn grace_secs(spec: &ServiceSpec) -> i32 {
    i32::try_from(spec.supervise.kill_timeout_ms.div_ceil(1000)).unwrap_or(i32::MAX)
}

/// The container's environment: `run_data.envs`, then `container.env` (a later entry
/// wins), then the parts of the script contract that mean something inside a container
/// (`APP`, `PORTS` as the host ports, `INSTANCE_ID`, the `APP_*` status codes). Host
/// paths (`APP_ROOT`, `APP_LOG`, ...) and the host's own variables are not passed.
pub fn container_env(model: &Octopus, ports: &[u16]) -> Vec<String> {
    let section = model.container.as_ref();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| {
        env.retain(|(name, _)| name != k);
        env.push((k.to_string(), v));
    };
    let entries = model.run_data.envs.iter().chain(section.map(|c| c.env.iter()).into_iter().flatten());
    for (k, v) in entries.filter_map(|e| e.split_once('=')) {
        set(k, v.to_string());
    }
    set("APP", model.name.clone());
    set("PORTS", ports.iter().map(u16::to_string).collect::<Vec<_>>().join(" "));
    set("INSTANCE_ID", "0".into());
    for (k, v) in STATUS_CODES {
        set(k, v.to_string());
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Resolves bind mounts to canonical host paths inside `app_root` or one of
/// `allowed_roots`. A relative source is inside the service's directory and is created
/// (as a directory) when missing, but only once its existing parent is known to be
/// inside the allowed roots. Errors name the model key.
///
/// `protected` are the host's own folders (the model folder, the manage scripts, the
/// data directory): a mount may neither lie inside one nor contain one, and `app_root`
/// itself is never mounted, or a container could drop a model or script that the host
/// then runs as its own user.
pub fn resolve_mounts(
    mounts: &[ContainerMount],
    service_dir: &Path,
    app_root: &Path,
    allowed_roots: &[PathBuf],
    protected: &[PathBuf],
) -> Result<Vec<Mount>, String> {
    let app_root_canonical = canonical(app_root);
    let protected: Vec<PathBuf> = protected.iter().map(|p| canonical(p).unwrap_or_else(|| p.clone())).collect();
    let roots: Vec<PathBuf> =
        std::iter::once(app_root).chain(allowed_roots.iter().map(PathBuf::as_path)).filter_map(canonical).collect();
    let inside = |p: &Path| roots.iter().any(|r| p.starts_with(r));
    let refuse = |key: &str, source: &str, resolved: &Path| {
        format!(
            "{key}: {source:?} resolves to {} which is outside app_root ({}) and ci.container_mount_roots; \
             list its directory in ci.container_mount_roots to allow it",
            resolved.display(),
            app_root.display()
        )
    };
    let mut out = Vec::with_capacity(mounts.len());
    for (i, m) in mounts.iter().enumerate() {
        let key = format!("container.mounts[{i}].source");
        let path =
            if Path::new(&m.source).is_absolute() { PathBuf::from(&m.source) } else { service_dir.join(&m.source) };
        if !path.exists() {
            if Path::new(&m.source).is_absolute() {
                return Err(format!("{key}: {} does not exist", path.display()));
            }
            let existing = path.ancestors().find(|a| a.exists()).unwrap_or(service_dir);
            let existing =
                canonical(existing).ok_or_else(|| format!("{key}: cannot resolve {}", existing.display()))?;
            if !inside(&existing) {
                return Err(refuse(&key, &m.source, &existing));
            }
            std::fs::create_dir_all(&path).map_err(|e| format!("{key}: cannot create {}: {e}", path.display()))?;
        }
        let resolved = canonical(&path).ok_or_else(|| format!("{key}: cannot resolve {}", path.display()))?;
        if !inside(&resolved) {
            return Err(refuse(&key, &m.source, &resolved));
        }
        if app_root_canonical.as_deref() == Some(resolved.as_path()) {
            return Err(format!("{key}: {:?} is app_root itself; mount a folder inside it", m.source));
        }
        if let Some(host_dir) = protected.iter().find(|p| resolved.starts_with(p) || p.starts_with(&resolved)) {
            return Err(format!(
                "{key}: {:?} resolves to {}, which is or holds the host's own folder {} (models, manage scripts \
                 or data): refused, a container must not write what the host runs",
                m.source,
                resolved.display(),
                host_dir.display()
            ));
        }
        out.push(Mount {
            source: Some(resolved.display().to_string()),
            target: Some(m.target.clone()),
            typ: Some(MountType::BIND),
            read_only: Some(m.read_only),
            ..Default::default()
        });
    }
    Ok(out)
}

fn canonical(p: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(p).ok()
}

/// The engine's create body. `published` pairs each wanted port with the host port in
/// effect; `mounts` come from [`resolve_mounts`].
pub fn create_body(
    spec: &ServiceSpec,
    section: &ContainerSection,
    published: &[PortMapping],
    ports_in_effect: &[u16],
    mounts: Vec<Mount>,
) -> ContainerCreateBody {
    let (memory, nano_cpus) = limits(section, &spec.model);
    let exposed: Vec<String> = published.iter().map(|p| format!("{}/tcp", p.container)).collect();
    let bindings: HashMap<String, Option<Vec<PortBinding>>> = published
        .iter()
        .map(|p| {
            let binding = PortBinding { host_ip: Some(spec.host_ip.to_string()), host_port: Some(p.host.to_string()) };
            (format!("{}/tcp", p.container), Some(vec![binding]))
        })
        .collect();
    let labels =
        HashMap::from([(LABEL_SERVICE.to_string(), spec.name.clone()), (LABEL_HOST.to_string(), host_label(spec))]);
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    ContainerCreateBody {
        image: Some(section.image.clone()),
        cmd: (!section.cmd.is_empty()).then(|| section.cmd.clone()),
        env: Some(container_env(&spec.model, ports_in_effect)),
        labels: Some(labels),
        working_dir: non_empty(&section.workdir),
        user: non_empty(&section.user),
        stop_signal: Some(spec.stop_signal.as_str().to_string()),
        stop_timeout: Some(i64::from(grace_secs(spec))),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(HostConfig {
            network_mode: Some(section.network_mode().to_string()),
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            mounts: (!mounts.is_empty()).then_some(mounts),
            memory,
            nano_cpus,
            // Restarts are ours: the engine must never bring a container back by itself.
            restart_policy: Some(RestartPolicy { name: Some(RestartPolicyNameEnum::NO), maximum_retry_count: None }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `(memory bytes, nano CPUs)`: the section's, else `resource_limit.max_mem` (bytes) and
/// `max_cpu` (percent of one core).
fn limits(section: &ContainerSection, model: &Octopus) -> (Option<i64>, Option<i64>) {
    let rl = &model.resource_limit;
    let memory =
        if section.memory_bytes > 0 { Some(section.memory_bytes) } else { (rl.max_mem > 0).then_some(rl.max_mem) };
    // Truncation is fine: a nano-CPU is far below any meaningful limit.
    #[allow(clippy::cast_possible_truncation)]
    let nano_cpus = if section.cpus > 0.0 {
        Some((section.cpus * 1e9) as i64)
    } else {
        (rl.max_cpu > 0).then(|| rl.max_cpu * 10_000_000)
    };
    (memory, nano_cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::supervisor::spec::for_test as spec;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "name": "web", "id": "app_web", "type": "Container",
            "run_data": {"envs": ["MODE=prod", "KEEP=1"], "host": "127.0.0.1"},
            "resource_limit": {"max_mem": 67108864, "max_cpu": 50},
            "supervise": {"stop_signal": "SIGINT", "kill_timeout_ms": 2500},
            "container": {"image": "busybox:1", "cmd": ["sh", "-c", "echo hi"], "env": ["MODE=dev"],
                          "network": "bridge", "ports": ["18080:80", "9000"], "workdir": "/srv"}
        })
    }

    #[test]
    fn builds_a_body_with_labels_ports_limits_and_no_engine_restarts() {
        let s = spec(base());
        assert_eq!(s.mode, super::super::Mode::Container);
        let section = s.model.container.clone().unwrap();
        let wanted = wanted_ports(&s.model);
        assert_eq!(wanted, vec![PortMapping { host: 18080, container: 80 }, PortMapping { host: 0, container: 9000 }]);
        let published = [PortMapping { host: 18080, container: 80 }, PortMapping { host: 41000, container: 9000 }];
        let body = create_body(&s, &section, &published, &[18080, 41000], Vec::new());
        assert_eq!(body.image.as_deref(), Some("busybox:1"));
        assert_eq!(body.cmd.as_ref().unwrap(), &["sh", "-c", "echo hi"]);
        assert_eq!(body.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(body.stop_timeout, Some(3));
        assert_eq!(body.working_dir.as_deref(), Some("/srv"));
        let labels = body.labels.unwrap();
        assert_eq!(labels[LABEL_SERVICE], "web");
        assert_eq!(labels[LABEL_HOST], "/srv/apollo/data");
        let env = body.env.unwrap();
        assert!(env.contains(&"MODE=dev".to_string()), "container.env wins: {env:?}");
        assert!(!env.contains(&"MODE=prod".to_string()));
        assert!(env.contains(&"KEEP=1".to_string()));
        assert!(env.contains(&"APP=web".to_string()));
        assert!(env.contains(&"PORTS=18080 41000".to_string()));
        assert!(env.contains(&"APP_START_ERR=102".to_string()));
        assert!(!env.iter().any(|e| e.starts_with("APP_LOG=") || e.starts_with("PATH=")), "{env:?}");
        let hc = body.host_config.unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("bridge"));
        assert_eq!(hc.memory, Some(67_108_864));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.restart_policy.unwrap().name, Some(RestartPolicyNameEnum::NO));
        let bindings = hc.port_bindings.unwrap();
        let b = bindings["9000/tcp"].as_ref().unwrap()[0].clone();
        assert_eq!((b.host_ip.as_deref(), b.host_port.as_deref()), (Some("127.0.0.1"), Some("41000")));
        assert_eq!(body.exposed_ports.unwrap(), vec!["80/tcp".to_string(), "9000/tcp".to_string()]);
    }

    #[test]
    fn defaults_to_network_none_and_section_limits_win() {
        let mut m = base();
        m["container"] = serde_json::json!({"image": "busybox:1", "memory_bytes": 10485760, "cpus": 0.25});
        let s = spec(m);
        assert!(wanted_ports(&s.model).is_empty());
        let body = create_body(&s, s.model.container.as_ref().unwrap(), &[], &[], Vec::new());
        assert_eq!(body.cmd, None, "the image's default command");
        let hc = body.host_config.unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("none"));
        assert_eq!((hc.memory, hc.nano_cpus), (Some(10_485_760), Some(250_000_000)));
        assert_eq!(hc.port_bindings, None);
    }

    #[test]
    fn owner_is_decided_by_both_labels() {
        let labels =
            |s: &str, h: &str| HashMap::from([(LABEL_SERVICE.into(), s.into()), (LABEL_HOST.into(), h.into())]);
        assert_eq!(owner(&labels("web", "/a"), "web", "/a"), Owner::Us);
        assert_eq!(owner(&labels("web", "/b"), "web", "/a"), Owner::OtherHost("/b".into()));
        assert_eq!(owner(&HashMap::new(), "web", "/a"), Owner::Stranger);
        assert_eq!(container_name("web"), "apollo-web");
    }

    #[test]
    fn mounts_are_confined_to_app_root_and_allowed_roots() {
        let tmp = tempfile::tempdir().unwrap();
        let app_root = tmp.path().join("app");
        let service_dir = app_root.join("web");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&service_dir).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, service_dir.join("link")).unwrap();
        let mount = |source: &str| ContainerMount { source: source.into(), target: "/data".into(), read_only: true };

        // A relative source is created inside the service's directory.
        let ok = resolve_mounts(&[mount("data")], &service_dir, &app_root, &[], &[]).unwrap();
        assert!(service_dir.join("data").is_dir());
        assert_eq!(ok[0].read_only, Some(true));
        assert_eq!(ok[0].typ, Some(MountType::BIND));

        // A symlink leading out is refused, and nothing is created through it.
        let err = resolve_mounts(&[mount("link/new")], &service_dir, &app_root, &[], &[]).unwrap_err();
        assert!(err.starts_with("container.mounts[0].source: "), "{err}");
        assert!(err.contains("outside app_root"), "{err}");
        assert!(!outside.join("new").exists());

        // Absolute paths: inside app_root or an allowed root only.
        let abs = outside.display().to_string();
        assert!(resolve_mounts(&[mount(&abs)], &service_dir, &app_root, &[], &[]).is_err());
        assert!(resolve_mounts(&[mount(&abs)], &service_dir, &app_root, std::slice::from_ref(&outside), &[]).is_ok());
        let missing = tmp.path().join("missing").display().to_string();
        assert!(
            resolve_mounts(&[mount(&missing)], &service_dir, &app_root, &[], &[])
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[test]
    fn mounts_never_reach_the_hosts_own_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let app_root = tmp.path().join("app");
        let service_dir = app_root.join("web");
        let models = app_root.join(".octopus");
        std::fs::create_dir_all(&service_dir).unwrap();
        std::fs::create_dir_all(models.join("sub")).unwrap();
        let mount = |source: &str| ContainerMount { source: source.into(), target: "/data".into(), read_only: false };
        let protected = std::slice::from_ref(&models);
        for source in [models.display().to_string(), models.join("sub").display().to_string()] {
            let err = resolve_mounts(&[mount(&source)], &service_dir, &app_root, &[], protected).unwrap_err();
            assert!(err.contains("host's own folder"), "{source}: {err}");
        }
        let err = resolve_mounts(&[mount(&app_root.display().to_string())], &service_dir, &app_root, &[], protected)
            .unwrap_err();
        assert!(err.contains("app_root itself"), "{err}");
        assert!(resolve_mounts(&[mount("data")], &service_dir, &app_root, &[], protected).is_ok());
    }
}
