//! Checks on one model that serde's types do not express: required fields, the shape
//! of names (they become directory names and URL segments), port ranges, `NAME=value`
//! envs, and script names that must stay inside the service's manager directory.

use std::path::{Component, Path};

use super::{Octopus, WatchSettings};

/// `(key, message)` of the first problem found.
pub type FieldProblem = (String, String);

/// A service name is used as a directory name and a URL path segment, so it is kept
/// to letters, digits, `-`, `_` and `.` (not starting with `.`), at most 64 bytes.
pub fn is_valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn validate_model(m: &Octopus) -> Result<(), FieldProblem> {
    let problem = |key: &str, msg: String| Err((key.to_string(), msg));
    if m.name.trim().is_empty() {
        return problem("name", "is required".into());
    }
    if !is_valid_service_name(&m.name) {
        return problem(
            "name",
            format!(
                "{:?} is not a valid service name: use letters, digits, '-', '_', '.' (max 64, not starting with '.')",
                m.name
            ),
        );
    }
    if m.id.trim().is_empty() {
        return problem("id", "is required".into());
    }
    for (i, port) in m.run_data.ports.iter().enumerate() {
        if !(1..=65535).contains(port) {
            return problem(&format!("run_data.ports[{i}]"), format!("{port} is out of range 1-65535"));
        }
    }
    for (i, port) in m.runtime.ports.iter().enumerate() {
        if !(0..=65535).contains(port) {
            return problem(&format!("runtime.ports[{i}]"), format!("{port} is out of range 0-65535"));
        }
    }
    for (i, env) in m.run_data.envs.iter().enumerate() {
        match env.split_once('=') {
            Some((k, _)) if is_env_name(k) => {}
            _ => {
                return problem(
                    &format!("run_data.envs[{i}]"),
                    format!("{env:?} must look like NAME=value (NAME: letters, digits, '_')"),
                );
            }
        }
    }
    let scripts = [
        ("manage_cmd.start", &m.manage_cmd.start),
        ("manage_cmd.stop", &m.manage_cmd.stop),
        ("manage_cmd.restart", &m.manage_cmd.restart),
        ("manage_cmd.force_kill", &m.manage_cmd.force_kill),
        ("manage_cmd.check", &m.manage_cmd.check),
    ];
    for (key, script) in scripts {
        if !script.is_empty() && !is_plain_file_name(script) {
            return problem(
                key,
                format!("{script:?} must be a file name inside the service's manager directory (no '/', no '..')"),
            );
        }
    }
    if m.run_data.command.iter().any(|a| a.is_empty() || a.contains('\0')) {
        return problem("run_data.command", "every argument must be a non-empty string without NUL".into());
    }
    if m.run_data.cwd.contains("..") || m.run_data.cwd.starts_with('/') {
        return problem("run_data.cwd", "must be a relative path inside the service's directory (no '..')".into());
    }
    let s = &m.supervise;
    if s.stop_signal.parse::<nix::sys::signal::Signal>().is_err() {
        return problem(
            "supervise.stop_signal",
            format!("{:?} is not a signal name (e.g. \"SIGTERM\")", s.stop_signal),
        );
    }
    if !(1..=64).contains(&s.instances) {
        return problem("supervise.instances", format!("{} must be between 1 and 64", s.instances));
    }
    if s.backoff_initial_ms == 0 || s.backoff_max_ms < s.backoff_initial_ms {
        return problem("supervise.backoff_max_ms", "needs 0 < backoff_initial_ms <= backoff_max_ms".into());
    }
    if s.script_timeout_secs == 0 {
        return problem("supervise.script_timeout_secs", "must be at least 1".into());
    }
    if s.log_max_bytes < 4096 {
        return problem("supervise.log_max_bytes", "must be at least 4096".into());
    }
    validate_watch(&s.watch)?;
    let h = &m.health;
    if h.kind != crate::model::HealthKind::None
        && (h.interval_secs == 0 || h.timeout_secs == 0 || h.failures_before_unhealthy == 0)
    {
        return problem(
            "health",
            "interval_secs, timeout_secs and failures_before_unhealthy must be at least 1".into(),
        );
    }
    if h.kind == crate::model::HealthKind::Http && !h.url.starts_with("http://") {
        return problem(
            "health.url",
            format!("{:?} must be an http:// URL (\"{{port}}\" is replaced by the first port)", h.url),
        );
    }
    if !h.script.is_empty() && !is_plain_file_name(&h.script) {
        return problem("health.script", "must be a file name inside the service's manager directory".into());
    }
    super::container::validate_container(m)?;
    for (key, dep) in m.references() {
        if dep == m.name {
            return problem(key, format!("{:?} names the service itself", dep));
        }
        if !is_valid_service_name(dep) {
            return problem(key, format!("{dep:?} is not a valid service name"));
        }
    }
    Ok(())
}

/// `supervise.watch.debounce_ms` bounds: below 10 ms an editor's save burst becomes
/// several restarts; beyond a minute a change looks ignored.
const WATCH_DEBOUNCE_MS: std::ops::RangeInclusive<u64> = 10..=60_000;

/// Watched paths stay inside the service's directory (the watcher re-checks symlinks
/// at run time); ignore globs must compile, so a typo is reported when the model
/// loads rather than silently watching everything.
fn validate_watch(w: &WatchSettings) -> Result<(), FieldProblem> {
    for (i, path) in w.paths.iter().enumerate() {
        let p = Path::new(path);
        let escapes = p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir));
        if path.trim().is_empty() || path.contains('\0') || escapes {
            return Err((
                format!("supervise.watch.paths[{i}]"),
                format!(
                    "{path:?} must be a relative path inside the service's directory (not absolute, no '..'); \
                     empty paths watch the whole directory"
                ),
            ));
        }
    }
    for (i, glob) in w.ignore.iter().enumerate() {
        if let Err(e) = globset::Glob::new(glob) {
            return Err((
                format!("supervise.watch.ignore[{i}]"),
                format!("{glob:?} is not a valid glob: {}", e.kind()),
            ));
        }
    }
    if !WATCH_DEBOUNCE_MS.contains(&w.debounce_ms) {
        return Err((
            "supervise.watch.debounce_ms".into(),
            format!(
                "{} must be between {} and {} (milliseconds)",
                w.debounce_ms,
                WATCH_DEBOUNCE_MS.start(),
                WATCH_DEBOUNCE_MS.end()
            ),
        ));
    }
    Ok(())
}

pub(super) fn is_env_name(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_plain_file_name(s: &str) -> bool {
    !s.contains('/') && !s.contains('\0') && s != "." && s != ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Octopus {
        Octopus { name: "web".into(), id: "app_web".into(), ..Default::default() }
    }

    #[test]
    fn accepts_minimal_model() {
        assert!(validate_model(&model()).is_ok());
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        let mut m = model();
        m.run_data.ports = vec![80, 70000];
        assert_eq!(validate_model(&m).unwrap_err().0, "run_data.ports[1]");
        let mut m = model();
        m.manage_cmd.start = "../../bin/sh".into();
        assert_eq!(validate_model(&m).unwrap_err().0, "manage_cmd.start");
        let mut m = model();
        m.run_data.envs = vec!["NOEQUALS".into()];
        assert_eq!(validate_model(&m).unwrap_err().0, "run_data.envs[0]");
        let mut m = model();
        m.name = "../etc".into();
        assert_eq!(validate_model(&m).unwrap_err().0, "name");
        let mut m = model();
        m.run_data.run_dep = vec!["web".into()];
        assert_eq!(validate_model(&m).unwrap_err().0, "run_data.run_dep");
    }

    #[test]
    fn watch_settings_stay_inside_the_service_and_compile() {
        let with_watch = |f: &dyn Fn(&mut WatchSettings)| {
            let mut m = model();
            m.supervise.watch.enabled = true;
            f(&mut m.supervise.watch);
            validate_model(&m)
        };
        assert!(with_watch(&|_| {}).is_ok());
        let ok = with_watch(&|w| {
            w.paths = vec!["src".into(), "conf/app.toml".into(), "./lib".into()];
            w.ignore = vec!["*.tmp".into(), "node_modules/**".into(), "{a,b}/*.log".into()];
            w.debounce_ms = 10;
        });
        assert!(ok.is_ok(), "{ok:?}");
        for bad in ["../other", "/etc", "src/../../x", "", " "] {
            let err = with_watch(&|w| w.paths = vec!["src".into(), bad.into()]).unwrap_err();
            assert_eq!(err.0, "supervise.watch.paths[1]", "{bad:?}");
            assert!(err.1.contains("inside the service's directory"), "{}", err.1);
        }
        let err = with_watch(&|w| w.ignore = vec!["[unclosed".into()]).unwrap_err();
        assert_eq!(err.0, "supervise.watch.ignore[0]");
        assert!(err.1.contains("not a valid glob"), "{}", err.1);
        for bad in [0, 9, 60_001] {
            let err = with_watch(&|w| w.debounce_ms = bad).unwrap_err();
            assert_eq!(err.0, "supervise.watch.debounce_ms");
        }
        // Checked whether or not watching is on: a disabled section must load once enabled.
        let mut m = model();
        m.supervise.watch.paths = vec!["/abs".into()];
        assert_eq!(validate_model(&m).unwrap_err().0, "supervise.watch.paths[0]");
    }
}
