//! `apollo startup systemd`: the systemd unit that runs this host at boot — printed, or
//! written with `--install` (never over an existing file without `--force`). It only
//! writes a file: it never runs `systemctl`; it prints the commands to run next.
//!
//! The unit keeps services alive across a host restart: `KillMode=process` lets systemd
//! stop only the host, whose services (in their own process groups) keep running and
//! are re-adopted by the next host (see `supervisor.stop_services_on_exit`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{CliError, GlobalArgs};
use crate::config::{Config, DEFAULT_CONFIG_PATH};

#[derive(Debug, Subcommand)]
pub enum StartupCommand {
    /// A systemd unit for the host: printed, or written with --install.
    Systemd(SystemdArgs),
}

#[derive(Debug, Args)]
pub struct SystemdArgs {
    /// A user unit (`systemctl --user`, in ~/.config/systemd/user/) instead of a system one.
    #[arg(long)]
    pub user: bool,
    /// Write the unit file (/etc/systemd/system/apollo.service, or the user unit
    /// folder with --user) instead of printing it.
    #[arg(long)]
    pub install: bool,
    /// With --install: replace an existing unit file.
    #[arg(long, requires = "install")]
    pub force: bool,
    /// System unit: the account the host runs as (default: the current user; as root,
    /// no `User=` line, so it runs as root).
    #[arg(long, conflicts_with = "user")]
    pub run_as: Option<String>,
}

/// Everything the unit text is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    pub binary: PathBuf,
    pub config: PathBuf,
    pub user_unit: bool,
    /// `User=` of a system unit.
    pub run_as: Option<String>,
    /// The config stops services with the host: say so in the unit.
    pub stops_services_on_exit: bool,
}

pub fn run(g: &GlobalArgs, command: StartupCommand) -> Result<(), CliError> {
    let StartupCommand::Systemd(args) = command;
    let config_path = config_path(g)?;
    // A unit pointing at a config that does not load would fail at every boot.
    let loaded = Config::load(&config_path)?;
    let binary = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| CliError::failed(format!("cannot find the path of the running apollo binary: {e}")))?;
    let run_as = if args.user { None } else { args.run_as.clone().or_else(current_user_unless_root) };
    let spec = UnitSpec {
        binary,
        config: config_path,
        user_unit: args.user,
        run_as,
        stops_services_on_exit: loaded.config.supervisor.stop_services_on_exit,
    };
    let text = unit_text(&spec)?;
    if !args.install {
        print!("{text}");
        return Ok(());
    }
    let target = unit_path(args.user)?;
    install(&target, &text, args.force)?;
    let systemctl = if args.user { "systemctl --user" } else { "systemctl" };
    println!("wrote {}", target.display());
    println!("next: {systemctl} daemon-reload && {systemctl} enable --now apollo.service");
    if args.user {
        println!("(to start it at boot without a login: loginctl enable-linger $USER)");
    }
    Ok(())
}

/// The absolute path of the config the unit will name: `--config`, else
/// `./conf/apollo.pig`. Built-in defaults are refused: they would put the host's data
/// under whatever directory systemd starts it in.
fn config_path(g: &GlobalArgs) -> Result<PathBuf, CliError> {
    let path = match &g.config {
        Some(p) => p.clone(),
        None if Path::new(DEFAULT_CONFIG_PATH).is_file() => PathBuf::from(DEFAULT_CONFIG_PATH),
        None => {
            return Err(CliError::usage(format!(
                "the unit needs a config file: pass --config FILE (or run this where ./{DEFAULT_CONFIG_PATH} exists)"
            )));
        }
    };
    path.canonicalize().map_err(|e| CliError::usage(format!("config {}: {e}", path.display())))
}

fn current_user_unless_root() -> Option<String> {
    let uid = nix::unistd::getuid();
    if uid.is_root() {
        return None;
    }
    nix::unistd::User::from_uid(uid).ok().flatten().map(|u| u.name)
}

/// `/etc/systemd/system/apollo.service`, or `$XDG_CONFIG_HOME/systemd/user/apollo.service`
/// (default `~/.config`) for a user unit.
pub fn unit_path(user: bool) -> Result<PathBuf, CliError> {
    if !user {
        return Ok(PathBuf::from("/etc/systemd/system/apollo.service"));
    }
    let config_home = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => return Err(CliError::usage("neither XDG_CONFIG_HOME nor HOME is set: cannot place a user unit")),
        },
    };
    Ok(config_home.join("systemd/user/apollo.service"))
}

/// Writes `text` to `target` (mode 0644) through a temporary file and a rename, so
/// systemd never reads half a unit; refuses an existing file unless `force`.
fn install(target: &Path, text: &str, force: bool) -> Result<(), CliError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if target.exists() && !force {
        return Err(CliError::failed(format!(
            "{} already exists; pass --force to replace it (or print the unit without --install and compare)",
            target.display()
        )));
    }
    let dir = target.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| CliError::failed(format!("cannot create {}: {e}", dir.display())))?;
    let temp = dir.join(".apollo.service.tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&temp)?;
        file.write_all(text.as_bytes())?;
        // Whatever the umask: systemd and operators read units as world-readable.
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        file.sync_all()?;
        std::fs::rename(&temp, target)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        CliError::failed(format!(
            "cannot write {}: {e}{}",
            target.display(),
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                " (a system unit needs root; or use --user)"
            } else {
                ""
            }
        ))
    })
}

/// One argument of `ExecStart=`: quoted when it holds anything systemd would split or
/// expand; `%` (specifiers) and `$` (variables) are doubled even inside quotes.
fn exec_arg(arg: &Path) -> Result<String, CliError> {
    let text =
        arg.to_str().ok_or_else(|| CliError::usage(format!("{}: the unit file needs a UTF-8 path", arg.display())))?;
    if text.chars().any(char::is_control) {
        return Err(CliError::usage(format!("{text:?}: a path with control characters cannot go in a unit file")));
    }
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%").replace('$', "$$");
    let plain = text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@,=".contains(c));
    Ok(if plain { escaped } else { format!("\"{escaped}\"") })
}

/// A path for a plain path setting (`WorkingDirectory=`): systemd neither unquotes nor
/// expands `$` there, only specifiers, so `%` is doubled and nothing else changes.
fn path_setting(path: &Path) -> Result<String, CliError> {
    let text = path
        .to_str()
        .ok_or_else(|| CliError::usage(format!("{}: the unit file needs a UTF-8 path", path.display())))?;
    if text.chars().any(char::is_control) {
        return Err(CliError::usage(format!("{text:?}: a path with control characters cannot go in a unit file")));
    }
    Ok(text.replace('%', "%%"))
}

/// The unit file's text.
pub fn unit_text(spec: &UnitSpec) -> Result<String, CliError> {
    let binary = exec_arg(&spec.binary)?;
    let config = exec_arg(&spec.config)?;
    let working_dir = path_setting(spec.config.parent().unwrap_or(Path::new("/")))?;
    let mut unit = String::new();
    let mut line = |s: &str| {
        unit.push_str(s);
        unit.push('\n');
    };
    line("# Written by `apollo startup systemd`. Regenerate after moving the binary or the config.");
    line("[Unit]");
    line("Description=Apollo microservice host");
    line("Documentation=man:apollo(1)");
    if !spec.user_unit {
        line("Wants=network-online.target");
        line("After=network-online.target");
    }
    line("");
    line("[Service]");
    line("Type=simple");
    if let Some(user) = &spec.run_as {
        line(&format!("User={user}"));
    }
    line(&format!("WorkingDirectory={working_dir}"));
    line(&format!("ExecStart={binary} serve --config {config}"));
    line("Restart=on-failure");
    line("RestartSec=2");
    line("# Stop the host only: its services keep running and the next host re-adopts them");
    line("# (an upgrade or a host restart causes no downtime).");
    if spec.stops_services_on_exit {
        line("# This config sets supervisor.stop_services_on_exit: the host stops them itself.");
    }
    line("KillMode=process");
    line("TimeoutStopSec=60");
    line("LimitNOFILE=65536");
    line("# No sandboxing: the services are children of the host and inherit every setting,");
    line("# so ProtectSystem= would make /etc and /usr read-only for them (and for a config or");
    line("# data folder under /etc), ProtectControlGroups= would break resource limits, and");
    line("# seccomp options imply NoNewPrivileges= under User=, breaking setuid programs.");
    line("");
    line("[Install]");
    line(if spec.user_unit { "WantedBy=default.target" } else { "WantedBy=multi-user.target" });
    Ok(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> UnitSpec {
        UnitSpec {
            binary: "/opt/apollo/bin/apollo".into(),
            config: "/etc/apollo/apollo.pig".into(),
            user_unit: false,
            run_as: Some("apollo".into()),
            stops_services_on_exit: false,
        }
    }

    #[test]
    fn a_system_unit_names_binary_config_and_policy() {
        let text = unit_text(&spec()).unwrap();
        assert!(text.contains("\nExecStart=/opt/apollo/bin/apollo serve --config /etc/apollo/apollo.pig\n"), "{text}");
        assert!(text.contains("\nWorkingDirectory=/etc/apollo\n"));
        for line in ["User=apollo", "Restart=on-failure", "KillMode=process", "WantedBy=multi-user.target"] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        let settings: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(!settings.iter().any(|l| l.starts_with("ProtectControlGroups")), "cgroup limits must stay writable");
        assert!(!settings.iter().any(|l| l.starts_with("NoNewPrivileges")), "services may use setuid programs");
    }

    #[test]
    fn a_user_unit_has_no_user_line_and_targets_default() {
        let text = unit_text(&UnitSpec { user_unit: true, run_as: None, ..spec() }).unwrap();
        assert!(!text.lines().any(|l| l.starts_with("User=")));
        assert!(!text.contains("network-online"), "not available to user managers");
        assert!(text.lines().any(|l| l == "WantedBy=default.target"));
    }

    #[test]
    fn paths_are_quoted_and_escaped_for_systemd() {
        let text = unit_text(&UnitSpec { config: "/srv/my apps/100%/$x.pig".into(), ..spec() }).unwrap();
        assert!(text.contains("--config \"/srv/my apps/100%%/$$x.pig\"\n"), "{text}");
        // WorkingDirectory= is a plain path: only specifiers are expanded there.
        assert!(text.contains("\nWorkingDirectory=/srv/my apps/100%%\n"), "{text}");
        let err = unit_text(&UnitSpec { config: "/srv/a\nb.pig".into(), ..spec() }).unwrap_err();
        assert!(err.message.contains("control characters"), "{}", err.message);
    }

    #[test]
    fn install_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("systemd/user/apollo.service");
        install(&target, "one\n", false).unwrap();
        let err = install(&target, "two\n", false).unwrap_err();
        assert!(err.message.contains("--force"), "{}", err.message);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "one\n", "left untouched");
        install(&target, "two\n", true).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "two\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o644);
    }
}
