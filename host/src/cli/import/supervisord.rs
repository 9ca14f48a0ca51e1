//! supervisord's `[program:x]` sections -> supervised octopus services.
//!
//! The file is read with `rust-ini` set up like supervisord's own parser (`;`/`#`
//! comment lines, indented continuation lines, no quote or escape processing); inline
//! comments (`;` or `#` after whitespace) are cut here, as supervisord does. Values then get supervisord's `%(name)s` expansion
//! (`program_name`, `process_num`, `group_name`, `numprocs`, `here`, `host_node_name`,
//! `ENV_X`), and every key is mapped or listed with the reason it is not. The defaults
//! are supervisord's, so a key left out behaves as it did there. Daemon sections
//! (`[supervisord]`, `[unix_http_server]`, …), groups, event listeners and includes are
//! listed, not followed.

use super::command::{self, Argv};
use super::units::{boolean, signal};
use super::{Conversion, Finding, ImportContext, ImportError, ServiceDraft, check_unique, finish, service_name};
use crate::cli::size::parse_size;
use crate::model::{RestartPolicy, Supervise};

/// Converts one supervisord configuration file's text.
pub fn convert(text: &str, ctx: &ImportContext) -> Result<Conversion, ImportError> {
    let options = ini::ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: true,
        enabled_preserve_key_leading_whitespace: false,
    };
    let parsed = ini::Ini::load_from_str_opt(text, options).map_err(|e| ImportError {
        line: Some(e.line),
        column: Some(e.col),
        ..ImportError::new(format!("not a supervisord config: {}", e.msg))
    })?;
    let mut out = Conversion::default();
    for (section, properties) in parsed.iter() {
        let Some(section) = section else {
            if let Some((key, _)) = properties.iter().next() {
                return Err(ImportError {
                    line: key_line(text, None, key),
                    ..ImportError::new(format!("{key:?} is outside any section: put it under a [program:NAME] header"))
                });
            }
            continue;
        };
        let entries = dedup_keys(properties.iter());
        match section.split_once(':').map(|(kind, name)| (kind.trim(), name.trim())) {
            Some(("program", name)) => {
                let program = Program { name, header: section, entries: &entries, text };
                let service = finish(program.draft(ctx, &mut out)?)?;
                out.services.push(service);
            }
            _ => out.unmapped.push(Finding {
                program: format!("[{section}]"),
                key: "*".into(),
                message: section_reason(section).into(),
            }),
        }
    }
    if out.services.is_empty() {
        return Err(ImportError::new("no [program:NAME] section: nothing to import"));
    }
    check_unique(&out.services)?;
    Ok(out)
}

/// Why a section that is not `[program:x]` is not imported.
fn section_reason(section: &str) -> &'static str {
    let kind = section.split(':').next().unwrap_or_default().trim();
    match kind {
        "supervisord" | "supervisorctl" | "unix_http_server" | "inet_http_server" | "rpcinterface" => {
            "supervisord's own daemon settings: the host's config (apollo.pig) covers them"
        }
        "include" => "included files are not followed: import each of them with its own `apollo import`",
        "group" => "groups are not imported: each program becomes its own service; tie them with run_dep/stop_chain",
        "eventlistener" => "event listeners have no equivalent: subscribe to the host's /api/events instead",
        "fcgi-program" => "FastCGI programs (a socket shared by supervisord) are not supported",
        _ => "not a supervisord section",
    }
}

/// Keys lower-cased (supervisord's parser does that), the last of a repeated key
/// winning, in the order they first appear.
fn dedup_keys<'a>(properties: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for (key, value) in properties {
        let key = key.trim().to_ascii_lowercase();
        let value = without_inline_comments(value);
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value.to_string(),
            None => entries.push((key, value.to_string())),
        }
    }
    entries
}

/// Cuts `;`/`#` comments that follow whitespace, on every line of a (continued)
/// value, and drops continuation lines that are comments. Done here rather than by
/// rust-ini's `inline-comment` feature, which swallows the first character of the key
/// after a commented value when continuation lines are on.
fn without_inline_comments(value: &str) -> String {
    let mut lines = Vec::new();
    for (i, line) in value.lines().enumerate() {
        if i > 0 && line.trim_start().starts_with([';', '#']) {
            continue;
        }
        let cut = line
            .char_indices()
            .find(|&(at, c)| matches!(c, ';' | '#') && line[..at].ends_with(char::is_whitespace))
            .map(|(at, _)| at)
            .unwrap_or(line.len());
        lines.push(line[..cut].trim_end());
    }
    lines.join("\n")
}

/// The 1-based line of `key` in `section` (`None`: before any section); the last one
/// when repeated, as that one wins.
fn key_line(text: &str, section: Option<&str>, key: &str) -> Option<usize> {
    let mut current: Option<String> = None;
    let mut found = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix('[')
            && let Some((header, _)) = rest.split_once(']')
        {
            current = Some(header.trim().to_string());
            continue;
        }
        if line.starts_with(char::is_whitespace) || current.as_deref() != section {
            continue;
        }
        let name_end = line.find(['=', ':']).unwrap_or(line.len());
        if line[..name_end].trim().eq_ignore_ascii_case(key) {
            found = Some(i + 1);
        }
    }
    found
}

/// How `%(process_num)d` expands in a value.
#[derive(Clone, Copy)]
enum ProcessNum {
    /// One process: its number.
    Fixed(i64),
    /// Several instances of one command: computed by `/bin/sh` from `INSTANCE_ID`.
    PerInstance { start: i64 },
}

struct Program<'a> {
    name: &'a str,
    header: &'a str,
    entries: &'a [(String, String)],
    text: &'a str,
}

impl Program<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn error(&self, key: &str, message: impl Into<String>) -> ImportError {
        ImportError::at(self.name, key, key_line(self.text, Some(self.header), key), message)
    }

    fn finding(&self, key: &str, message: impl Into<String>) -> Finding {
        Finding { program: self.name.into(), key: key.into(), message: message.into() }
    }

    fn number<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, ImportError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| self.error(key, format!("{v:?} is not a whole number"))),
        }
    }

    /// supervisord's `%(name)s` expansion of one value.
    fn expand(
        &self,
        key: &str,
        value: &str,
        ctx: &ImportContext,
        process_num: ProcessNum,
        numprocs: i64,
    ) -> Result<(String, Vec<String>), ImportError> {
        let mut out = String::new();
        let mut env_used = Vec::new();
        let mut rest = value;
        while let Some(at) = rest.find('%') {
            out.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('%') {
                out.push('%');
                rest = after;
                continue;
            }
            let bad = || {
                self.error(
                    key,
                    format!("{value:?}: '%' must start %(name)s or %(name)d (write %% for a literal percent sign)"),
                )
            };
            let inner = rest.strip_prefix('(').ok_or_else(bad)?;
            let (name, spec_and_rest) = inner.split_once(')').ok_or_else(bad)?;
            let conv_at = spec_and_rest.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(bad)?;
            let (spec, conversion) = (&spec_and_rest[..conv_at], &spec_and_rest[conv_at..conv_at + 1]);
            if !matches!(conversion, "s" | "d" | "i" | "r") || !spec.chars().all(|c| c.is_ascii_digit() || c == '-') {
                return Err(bad());
            }
            rest = &spec_and_rest[conv_at + 1..];
            let width: usize = spec.trim_start_matches(['0', '-']).parse().unwrap_or(0);
            let zero_pad = spec.starts_with('0');
            let number = |n: i64| if zero_pad { format!("{n:0width$}") } else { format!("{n:width$}") };
            let text = match (name, process_num) {
                ("process_num", ProcessNum::PerInstance { start }) => {
                    let expr = format!("$((INSTANCE_ID + {start}))");
                    if width > 0 { format!("$(printf '%{spec}d' {expr})") } else { expr }
                }
                ("process_num", ProcessNum::Fixed(n)) => number(n),
                ("numprocs", _) => number(numprocs),
                ("program_name" | "group_name", _) => self.name.to_string(),
                ("here", _) => ctx.source_dir.display().to_string(),
                ("host_node_name", _) => ctx.host_name.clone(),
                (env, _) if env.starts_with("ENV_") => {
                    let var = &env[4..];
                    env_used.push(var.to_string());
                    ctx.env.get(var).cloned().ok_or_else(|| {
                        self.error(key, format!("%({env})s: {var} is not set in this environment (supervisord would refuse it too)"))
                    })?
                }
                _ => return Err(self.error(key, format!("%({name}){spec}{conversion}: unknown expansion (known: program_name, process_num, group_name, numprocs, here, host_node_name, ENV_NAME)"))),
            };
            out.push_str(&text);
        }
        out.push_str(rest);
        Ok((out, env_used))
    }

    fn draft(&self, ctx: &ImportContext, out: &mut Conversion) -> Result<ServiceDraft, ImportError> {
        let (name, renamed) = service_name(self.name);
        if renamed {
            out.notes.push(
                self.finding("program", format!("the service is named {name:?} (letters, digits, '-', '_', '.' only)")),
            );
        }
        let numprocs: i64 = self.number("numprocs", 1)?;
        if !(1..=64).contains(&numprocs) {
            return Err(self.error("numprocs", format!("{numprocs} must be between 1 and 64")));
        }
        let start: i64 = self.number("numprocs_start", 0)?;
        let per_instance = if numprocs > 1 { ProcessNum::PerInstance { start } } else { ProcessNum::Fixed(start) };
        let expand_env_note = |key: &str, vars: Vec<String>, out: &mut Conversion| {
            if !vars.is_empty() {
                out.notes.push(self.finding(key, format!(
                    "%(ENV_{})s expanded now, from the environment of `apollo import` (supervisord read its own at start)",
                    vars.join(")s, %(ENV_")
                )));
            }
        };

        // command (+ directory): argv without a shell, or an explicit /bin/sh -c.
        let raw_command =
            self.get("command").ok_or_else(|| self.error("command", "is required: the program to run"))?;
        let (command_text, vars) = self.expand("command", raw_command, ctx, per_instance, numprocs)?;
        expand_env_note("command", vars, out);
        let Argv { argv, shell_because } =
            command::from_command_line(&command_text).map_err(|m| self.error("command", m))?;
        if let Some(features) = shell_because {
            let per_instance_note = if numprocs > 1 && raw_command.contains("%(process_num)") {
                " (%(process_num) differs per instance: the shell computes it from INSTANCE_ID)"
            } else {
                ""
            };
            out.notes.push(self.finding("command", format!(
                "uses {features}: run through /bin/sh -c{per_instance_note}; supervisord itself runs no shell and would have passed these characters to the program literally"
            )));
        }
        let service_dir = ctx.app_root.join(&name);
        let (argv, cwd) = match self.get("directory") {
            None => {
                out.notes.push(self.finding(
                    "directory",
                    format!(
                        "not set: supervisord ran the program in its own working directory; the host runs it in {}",
                        service_dir.display()
                    ),
                ));
                (argv, String::new())
            }
            Some(raw) => {
                let (dir, vars) = self.expand("directory", raw, ctx, ProcessNum::Fixed(start), numprocs)?;
                expand_env_note("directory", vars, out);
                if numprocs > 1 && raw.contains("%(process_num)") {
                    out.unmapped.push(self.finding(
                        "directory",
                        format!("differs per process in supervisord; every instance runs in {dir}"),
                    ));
                }
                let placed = command::place(argv, dir.trim(), &ctx.source_dir, &service_dir);
                if let Some(note) = placed.note {
                    out.notes.push(self.finding("directory", note));
                }
                (placed.argv, placed.cwd)
            }
        };

        let mut envs = Vec::new();
        if let Some(raw) = self.get("environment") {
            if numprocs > 1 && raw.contains("%(process_num)") {
                out.unmapped.push(self.finding(
                    "environment",
                    "differs per process in supervisord; instances get INSTANCE_ID (0-based) instead",
                ));
            }
            for (key, value) in environment_pairs(raw).map_err(|m| self.error("environment", m))? {
                if let Some(var) = whole_env_reference(&value) {
                    out.notes.push(self.finding("environment", format!("{key}=%(ENV_{var})s becomes {key}=${var}: the host reads {var} from its environment when it loads the model")));
                    envs.push(format!("{key}=${var}"));
                    continue;
                }
                let (value, vars) = self.expand("environment", &value, ctx, ProcessNum::Fixed(start), numprocs)?;
                expand_env_note("environment", vars, out);
                envs.push(format!("{key}={value}"));
            }
        }

        let supervise = self.supervise(numprocs, out)?;
        Ok(ServiceDraft {
            description: format!("imported from supervisord program {:?} in {}", self.name, ctx.source_name),
            name,
            command: argv,
            cwd,
            envs,
            supervise,
        })
    }

    /// The supervise section: supervisord's defaults, then each key of the section.
    fn supervise(&self, numprocs: i64, out: &mut Conversion) -> Result<Supervise, ImportError> {
        let mut s = Supervise {
            restart: RestartPolicy::OnFailure, // autorestart=unexpected
            success_exit_codes: vec![0],       // exitcodes=0
            min_uptime_ms: 1_000,              // startsecs=1
            max_restarts: 3,                   // startretries=3
            stop_signal: "SIGTERM".into(),     // stopsignal=TERM
            kill_timeout_ms: 10_000,           // stopwaitsecs=10
            instances: numprocs as u32,
            autostart: true,           // autostart=true
            backoff_initial_ms: 1_000, // supervisord waits 1 s, 2 s, 3 s… between tries
            log_max_bytes: 50 << 20,   // stdout_logfile_maxbytes=50MB
            log_keep: 10,              // stdout_logfile_backups=10
            ..Supervise::default()
        };
        let mut autorestart = "unexpected".to_string();
        for (key, value) in self.entries {
            let value = value.trim();
            let bool_of = |v: &str| boolean(v).map_err(|m| self.error(key, m));
            let seconds = |v: &str| {
                v.parse::<u64>()
                    .map(|n| n * 1000)
                    .map_err(|_| self.error(key, format!("{v:?} is not a whole number of seconds")))
            };
            match key.as_str() {
                "command" | "directory" | "environment" | "numprocs" | "numprocs_start" => {}
                "process_name" => {
                    let default = value == "%(program_name)s";
                    if numprocs > 1 && value.contains("%(process_num)") {
                        out.notes.push(self.finding(key, format!("the {numprocs} processes are instances 0..{} (INSTANCE_ID) of one service, not separately named processes", numprocs - 1)));
                    } else if !default {
                        out.notes.push(self.finding(key, format!("{value:?} is not used: the service is named after the program")));
                    }
                }
                "autostart" => s.autostart = bool_of(value)?,
                "autorestart" => autorestart = value.to_ascii_lowercase(),
                "exitcodes" => {
                    s.success_exit_codes = value
                        .split(',')
                        .map(|c| c.trim().parse::<i32>().map_err(|_| self.error(key, format!("{value:?} is not a comma-separated list of exit codes"))))
                        .collect::<Result<_, _>>()?;
                }
                "startsecs" => s.min_uptime_ms = seconds(value)?,
                "startretries" => s.max_restarts = value.parse().map_err(|_| self.error(key, format!("{value:?} is not a whole number")))?,
                "stopsignal" => s.stop_signal = signal(value).map_err(|m| self.error(key, m))?,
                "stopwaitsecs" => s.kill_timeout_ms = seconds(value)?,
                "stopasgroup" | "killasgroup" => {
                    if !bool_of(value)? {
                        out.unmapped.push(self.finding(key, "false is not possible: the host always signals the service's whole process group"));
                    }
                }
                "redirect_stderr" => {
                    if !bool_of(value)? {
                        out.notes.push(self.finding(key, "the host writes stdout and stderr to one log per service (<app_log_dir>/<name>/)"));
                    }
                }
                "stdout_logfile_maxbytes" => match parse_size(value).map_err(|m| self.error(key, m))? {
                    0 => out.unmapped.push(self.finding(key, "0 (never rotate) is not possible: the host always rotates; kept at 50MB")),
                    n if n < 4096 => out.unmapped.push(self.finding(key, format!("{n} is below the host's minimum of 4096 bytes; kept at 50MB"))),
                    n => s.log_max_bytes = n,
                },
                "stdout_logfile_backups" => s.log_keep = value.parse().map_err(|_| self.error(key, format!("{value:?} is not a whole number")))?,
                "stdout_logfile" | "stderr_logfile" => {
                    if !value.eq_ignore_ascii_case("AUTO") {
                        out.unmapped.push(self.finding(key, format!("{value:?}: the host writes each service's output to <app_log_dir>/<name>/ and rotates it there")));
                    }
                }
                "stderr_logfile_maxbytes" | "stderr_logfile_backups" => {
                    out.unmapped.push(self.finding(key, "one log per service: its rotation comes from stdout_logfile_maxbytes/_backups"))
                }
                "stdout_capture_maxbytes" | "stderr_capture_maxbytes" | "stdout_events_enabled" | "stderr_events_enabled" => {
                    out.unmapped.push(self.finding(key, "supervisord's process-communication events have no equivalent"))
                }
                "stdout_syslog" | "stderr_syslog" => out.unmapped.push(self.finding(key, "the host does not forward service output to syslog")),
                "user" => out.unmapped.push(self.finding(key, format!("{value:?}: the host starts services as its own user; run the host as that user or drop privileges in the command"))),
                "priority" => out.unmapped.push(self.finding(key, "start order comes from run_data.run_dep: add the services this one needs by hand")),
                "umask" => out.unmapped.push(self.finding(key, "not supported: set it in the command (sh -c 'umask 022; exec …')")),
                "serverurl" => out.unmapped.push(self.finding(key, "only for supervisorctl inside the program; the host's API is its equivalent")),
                _ => out.unmapped.push(self.finding(key, "not a supervisord [program] key (a typo?)")),
            }
        }
        s.restart = match autorestart.as_str() {
            "unexpected" => RestartPolicy::OnFailure,
            "true" => RestartPolicy::Always,
            "false" => RestartPolicy::Never,
            other => return Err(self.error("autorestart", format!("{other:?} must be true, false or unexpected"))),
        };
        Ok(s)
    }
}

/// `%(ENV_NAME)s` as the whole value: the name.
fn whole_env_reference(value: &str) -> Option<&str> {
    let name = value.strip_prefix("%(ENV_")?.strip_suffix(")s")?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(name)
}

/// supervisord's `environment`: `KEY="value",KEY2=value2`, quotes allowing commas,
/// spread over continuation lines if the operator likes.
fn environment_pairs(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in raw.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                current.push(c);
            }
            (None, ',') => pieces.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quote.is_some() {
        return Err(format!("{raw:?} has an unbalanced quote"));
    }
    pieces.push(current);
    let mut pairs = Vec::new();
    for piece in pieces.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let (key, value) = piece
            .split_once('=')
            .ok_or_else(|| format!("{piece:?} must look like KEY=value (pairs separated by commas)"))?;
        let key = key.trim();
        if key.is_empty()
            || key.starts_with(|c: char| c.is_ascii_digit())
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!("{key:?} is not a variable name (letters, digits, '_')"));
        }
        let value = value.trim();
        let unquoted =
            ['"', '\''].iter().find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q))).unwrap_or(value);
        pairs.push((key.to_string(), unquoted.to_string()));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;

    fn ctx() -> ImportContext {
        ImportContext {
            source_name: "/etc/supervisor/conf.d/shop.conf".into(),
            source_dir: PathBuf::from("/etc/supervisor/conf.d"),
            app_root: PathBuf::from("/srv/apollo/apps"),
            cpus: 4,
            env: HashMap::from([("SHOP_DB".to_string(), "postgres://db/shop".to_string())]),
            host_name: "box1".into(),
        }
    }

    const SHOP: &str = r#"; supervisord config of a small shop, as deployed
[supervisord]
logfile=/var/log/supervisor/supervisord.log ; main log
pidfile=/var/run/supervisord.pid

[unix_http_server]
file=/var/run/supervisor.sock

[program:shop-api]
command=/srv/apollo/apps/shop-api/venv/bin/gunicorn -w 4 -b 127.0.0.1:8000 "shop.wsgi:application"
directory=/srv/apollo/apps/shop-api
user=www-data
autostart=true
autorestart=true
startsecs=5
startretries=10
stopsignal=QUIT
stopwaitsecs=30
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=/var/log/shop/api.log
stdout_logfile_maxbytes=20MB
stdout_logfile_backups=7
environment=DJANGO_SETTINGS_MODULE="shop.settings.prod",
    DATABASE_URL=%(ENV_SHOP_DB)s,
    GREETING="hello, world",WORKER=%(program_name)s
priority=100

[program:queue]
command=/usr/bin/php artisan queue:work --queue=%(program_name)s_%(process_num)02d --sleep=3
process_name=%(program_name)s_%(process_num)02d
numprocs=3
directory=/var/www/shop
autorestart=unexpected
exitcodes=0,2
stopsignal=TERM
stopwaitsecs=3600
umask=022
stdout_events_enabled=true
retries=5

[program:tail-errors]
command=tail -F /var/log/shop/api.log | grep --line-buffered ERROR
autostart=false
autorestart=false

[group:shop]
programs=shop-api,queue

[eventlistener:memmon]
command=memmon -a 200MB
events=TICK_60
"#;

    #[test]
    fn a_realistic_file_maps_every_program_and_lists_the_rest() {
        let c = convert(SHOP, &ctx()).unwrap();
        let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["shop-api", "queue", "tail-errors"]);

        let api = &c.services[0].model;
        assert_eq!(
            api.run_data.command,
            ["/srv/apollo/apps/shop-api/venv/bin/gunicorn", "-w", "4", "-b", "127.0.0.1:8000", "shop.wsgi:application"]
        );
        assert_eq!(api.run_data.cwd, "");
        assert_eq!(
            api.run_data.envs,
            [
                "DJANGO_SETTINGS_MODULE=shop.settings.prod",
                "DATABASE_URL=$SHOP_DB",
                "GREETING=hello, world",
                "WORKER=shop-api"
            ]
        );
        let s = &api.supervise;
        assert_eq!((s.restart, s.min_uptime_ms, s.max_restarts), (RestartPolicy::Always, 5000, 10));
        assert_eq!((s.stop_signal.as_str(), s.kill_timeout_ms, s.instances), ("SIGQUIT", 30_000, 1));
        assert_eq!((s.autostart, s.log_max_bytes, s.log_keep), (true, 20 << 20, 7));

        let queue = &c.services[1].model;
        assert_eq!(queue.supervise.instances, 3);
        assert_eq!(queue.supervise.restart, RestartPolicy::OnFailure);
        assert_eq!(queue.supervise.success_exit_codes, [0, 2]);
        assert_eq!(queue.supervise.max_restarts, 3, "supervisord's default startretries");
        // Outside the service's directory, and per-instance numbers need a shell.
        assert_eq!(&queue.run_data.command[..3], ["/usr/bin/env", "--chdir=/var/www/shop", "--"]);
        assert_eq!(&queue.run_data.command[3..5], ["/bin/sh", "-c"]);
        assert_eq!(
            queue.run_data.command[5],
            "/usr/bin/php artisan queue:work --queue=queue_$(printf '%02d' $((INSTANCE_ID + 0))) --sleep=3"
        );

        let tail = &c.services[2].model;
        assert_eq!(
            tail.run_data.command,
            ["/bin/sh", "-c", "tail -F /var/log/shop/api.log | grep --line-buffered ERROR"]
        );
        assert_eq!((tail.supervise.autostart, tail.supervise.restart), (false, RestartPolicy::Never));

        let unmapped: Vec<(&str, &str)> = c.unmapped.iter().map(|f| (f.program.as_str(), f.key.as_str())).collect();
        for expected in [
            ("[supervisord]", "*"),
            ("[unix_http_server]", "*"),
            ("shop-api", "user"),
            ("shop-api", "stdout_logfile"),
            ("shop-api", "priority"),
            ("queue", "umask"),
            ("queue", "stdout_events_enabled"),
            ("queue", "retries"),
            ("[group:shop]", "*"),
            ("[eventlistener:memmon]", "*"),
        ] {
            assert!(unmapped.contains(&expected), "{expected:?} missing from {unmapped:?}");
        }
        let typo = c.unmapped.iter().find(|f| f.key == "retries").unwrap();
        assert!(typo.message.contains("a typo?"), "{typo:?}");
        let notes: Vec<(&str, &str)> = c.notes.iter().map(|f| (f.program.as_str(), f.key.as_str())).collect();
        for expected in [
            ("shop-api", "environment"),
            ("queue", "command"),
            ("queue", "directory"),
            ("queue", "process_name"),
            ("tail-errors", "command"),
            ("tail-errors", "directory"),
        ] {
            assert!(notes.contains(&expected), "{expected:?} missing from {notes:?}");
        }
        // The generated text is a model file the host loads.
        assert!(c.services[0].text.contains("\"supervise\""));
    }

    #[test]
    fn bad_values_name_line_program_and_key() {
        let text = "[program:web]\ncommand=/bin/true\nstopsignal=PLEASE\n";
        let e = convert(text, &ctx()).unwrap_err();
        assert_eq!(e.to_string(), "3: [web] stopsignal: \"PLEASE\" is not a signal name (e.g. TERM, INT, QUIT, HUP)");
        let e = convert("[program:web]\ncommand=/bin/true\nautorestart=sometimes\n", &ctx()).unwrap_err();
        assert!(e.to_string().starts_with("3: [web] autorestart:"), "{e}");
        let e = convert("[program:web]\nautostart=true\n", &ctx()).unwrap_err();
        assert!(e.to_string().contains("[web] command: is required"), "{e}");
        let e = convert("[program:web]\ncommand=run --db=%(ENV_NOPE)s\n", &ctx()).unwrap_err();
        assert!(e.to_string().contains("NOPE is not set"), "{e}");
        let e = convert("[program:web]\ncommand=run 100%\n", &ctx()).unwrap_err();
        assert!(e.to_string().contains("write %% for a literal percent sign"), "{e}");
        let e = convert("[supervisord]\nnodaemon=true\n", &ctx()).unwrap_err();
        assert!(e.to_string().contains("no [program:NAME] section"), "{e}");
        let e = convert("[program:web]\ncommand=x\nenvironment=A=1,B\n", &ctx()).unwrap_err();
        assert!(e.to_string().contains("\"B\" must look like KEY=value"), "{e}");
    }

    #[test]
    fn inline_comments_need_whitespace_before_them() {
        assert_eq!(without_inline_comments("a;b # comment"), "a;b");
        assert_eq!(without_inline_comments("x=1,\n; a commented continuation\nY=2 ; why"), "x=1,\nY=2");
        assert_eq!(without_inline_comments("echo a#b"), "echo a#b");
        assert_eq!(
            environment_pairs("A=\"x, y\",\n B='q' , C=plain,").unwrap(),
            [("A".into(), "x, y".into()), ("B".into(), "q".into()), ("C".into(), "plain".into())]
        );
        assert!(environment_pairs("A=\"open").unwrap_err().contains("unbalanced quote"));
        assert!(environment_pairs("1A=x").unwrap_err().contains("not a variable name"));
    }

    #[test]
    fn expansions_comments_and_continuations() {
        let text = "[program:echo]\n\
                    ; a comment line\n\
                    command = /bin/echo %(program_name)s on %(host_node_name)s in %(here)s 100%% ; inline comment\n\
                    directory = %(here)s/../../../srv/apollo/apps/echo/work\n";
        let c = convert(text, &ctx()).unwrap();
        let m = &c.services[0].model;
        assert_eq!(m.run_data.command, ["/bin/echo", "echo", "on", "box1", "in", "/etc/supervisor/conf.d", "100%"]);
        assert_eq!(m.run_data.cwd, "work");
        assert!(c.unmapped.is_empty() && c.notes.is_empty(), "{c:?}");
    }
}
