//! PM2 ecosystem files (JSON: `{"apps": [...]}` or a bare array of apps) ->
//! supervised octopus services.
//!
//! `script` + `interpreter` (or the interpreter PM2 picks by extension) + `args` become
//! the argv; `cwd`, `env`, `instances`, restart, stop and watch settings map to the model with
//! PM2's defaults (SIGINT, 1600 ms kill timeout, 16 restarts, 1 s min uptime), and every
//! other key is listed with the reason it is not carried over. An `ecosystem.config.js`
//! is JavaScript: it is not evaluated here (the message says how to turn it into JSON).

use std::path::Path;

use serde_json::Value;
use serde_json::value::RawValue;

use super::command;
use super::units::{millis, signal};
use super::{Conversion, Finding, ImportContext, ImportError, ServiceDraft, check_unique, finish, service_name};
use crate::cli::size::parse_size;
use crate::model::{RestartPolicy, Supervise, WatchSettings};

/// The interpreter PM2 chooses for a script by its extension.
const INTERPRETERS: &[(&str, &str)] = &[
    (".js", "node"),
    (".cjs", "node"),
    (".mjs", "node"),
    (".py", "python3"),
    (".sh", "bash"),
    (".rb", "ruby"),
    (".php", "php"),
    (".pl", "perl"),
    (".coffee", "coffee"),
];

/// Converts one ecosystem file's text.
pub fn convert(text: &str, ctx: &ImportContext) -> Result<Conversion, ImportError> {
    let syntax = |e: serde_json::Error| ImportError {
        line: Some(e.line()),
        column: Some(e.column()),
        ..ImportError::new(format!(
            "not a JSON ecosystem file: {e} (for an ecosystem.config.js, write its JSON with \
             node -e 'console.log(JSON.stringify(require(\"./ecosystem.config.js\"), null, 2))' > ecosystem.json)"
        ))
    };
    let top: &RawValue = serde_json::from_str(text).map_err(syntax)?;
    let mut out = Conversion::default();
    let apps: Vec<&RawValue> = if top.get().trim_start().starts_with('[') {
        serde_json::from_str(top.get()).map_err(syntax)?
    } else {
        let object: std::collections::BTreeMap<String, &RawValue> = serde_json::from_str(top.get()).map_err(syntax)?;
        for key in object.keys().filter(|k| *k != "apps") {
            let message = if key == "deploy" {
                "PM2 deployment (git pull + post-deploy hooks) is not imported: use backups and your own deploy tooling"
            } else {
                "not a PM2 ecosystem section"
            };
            out.unmapped.push(Finding { program: "(file)".into(), key: key.clone(), message: message.into() });
        }
        let apps = object.get("apps").ok_or_else(|| ImportError::new("no \"apps\" list: nothing to import"))?;
        serde_json::from_str(apps.get())
            .map_err(|_| ImportError { key: Some("apps".into()), ..ImportError::new("must be a list of apps") })?
    };
    if apps.is_empty() {
        return Err(ImportError::new("the \"apps\" list is empty: nothing to import"));
    }
    for (index, raw) in apps.iter().enumerate() {
        let offset = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        let fields: serde_json::Map<String, Value> = serde_json::from_str(raw.get()).map_err(|_| ImportError {
            line: Some(line_of(text, offset)),
            ..ImportError::new(format!("apps[{index}] must be an object with at least \"script\""))
        })?;
        let label = match (fields.get("name").and_then(Value::as_str), fields.get("script").and_then(Value::as_str)) {
            (Some(name), _) => name.to_string(),
            (None, Some(script)) => script_stem(script).to_string(),
            (None, None) => format!("apps[{index}]"),
        };
        let app = App { label, fields: &fields, raw: raw.get(), text, offset };
        let service = finish(app.draft(ctx, &mut out)?)?;
        out.services.push(service);
    }
    check_unique(&out.services)?;
    Ok(out)
}

/// PM2's default app name: the script's file name without its extension.
fn script_stem(script: &str) -> &str {
    let base = script.rsplit('/').next().unwrap_or(script);
    base.split_once('.').map(|(stem, _)| stem).filter(|stem| !stem.is_empty()).unwrap_or(base)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

struct App<'a> {
    /// The app's name, or what PM2 would name it, for messages.
    label: String,
    fields: &'a serde_json::Map<String, Value>,
    /// The app's own JSON text and where it starts in the file, for line numbers.
    raw: &'a str,
    text: &'a str,
    offset: usize,
}

impl App<'_> {
    fn error(&self, key: &str, message: impl Into<String>) -> ImportError {
        let line = crate::config::locate_key(self.raw, key).map(|(l, _)| line_of(self.text, self.offset) + l - 1);
        ImportError::at(&self.label, key, line, message)
    }

    fn finding(&self, key: &str, message: impl Into<String>) -> Finding {
        Finding { program: self.label.clone(), key: key.into(), message: message.into() }
    }

    fn string(&self, key: &str) -> Result<Option<String>, ImportError> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(self.error(key, "must be a string")),
        }
    }

    /// A string (split like a shell splits words, no shell run) or a list of strings.
    fn words(&self, key: &str) -> Result<Vec<String>, ImportError> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => command::split_words(s).map_err(|m| self.error(key, m)),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(self.error(key, "must be a string or a list of strings")),
                })
                .collect(),
            Some(_) => Err(self.error(key, "must be a string or a list of strings")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ImportError> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(_) => Err(self.error(key, "must be true or false")),
        }
    }

    fn duration_ms(&self, key: &str) -> Result<Option<u64>, ImportError> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|v| *v >= 0.0)
                .map(|v| Some(v.round() as u64))
                .ok_or_else(|| self.error(key, "must not be negative")),
            Some(Value::String(s)) => millis(s).map(Some).map_err(|m| self.error(key, m)),
            Some(_) => Err(self.error(key, "must be milliseconds (a number) or a duration like \"5s\"")),
        }
    }

    fn draft(&self, ctx: &ImportContext, out: &mut Conversion) -> Result<ServiceDraft, ImportError> {
        let script = self
            .string("script")?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| self.error("script", "is required: the program or script to run"))?;
        let source_name = match self.string("name")? {
            Some(n) => n,
            None => {
                let stem = script_stem(&script);
                out.notes.push(self.finding("name", format!("not set: named {stem:?} after the script, as PM2 does")));
                stem.to_string()
            }
        };
        let (name, renamed) = service_name(&source_name);
        if renamed {
            out.notes.push(
                self.finding("name", format!("the service is named {name:?} (letters, digits, '-', '_', '.' only)")),
            );
        }

        let argv = self.argv(&script, out)?;
        let service_dir = ctx.app_root.join(&name);
        let directory = self.string("cwd")?.unwrap_or_else(|| ".".into());
        let placed = command::place(argv, &directory, &ctx.source_dir, &service_dir);
        if let Some(note) = placed.note {
            out.notes.push(self.finding("cwd", note));
        }

        let mut envs = Vec::new();
        match self.fields.get("env") {
            None | Some(Value::Null) => {}
            Some(Value::Object(vars)) => {
                for (key, value) in vars {
                    let value = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(_) | Value::Bool(_) => value.to_string(),
                        _ => return Err(self.error("env", format!("{key}: must be a string, number or boolean"))),
                    };
                    envs.push(format!("{key}={value}"));
                }
            }
            Some(_) => return Err(self.error("env", "must be an object of NAME: value")),
        }

        let mut supervise = self.supervise(ctx, out)?;
        let app_dir = command::normalize(&ctx.source_dir.join(&directory));
        supervise.watch = self.watch(&app_dir, &command::normalize(&service_dir), out)?;
        Ok(ServiceDraft {
            description: format!("imported from PM2 app {source_name:?} in {}", ctx.source_name),
            name,
            command: placed.argv,
            cwd: placed.cwd,
            envs,
            supervise,
        })
    }

    /// `[interpreter, interpreter_args…, script, args…]`, or the script itself.
    fn argv(&self, script: &str, out: &mut Conversion) -> Result<Vec<String>, ImportError> {
        let args = self.words("args")?;
        let mut interpreter_args = self.words("interpreter_args")?;
        interpreter_args.extend(self.words("node_args")?);
        let interpreter = match (self.string("interpreter")?, self.string("exec_interpreter")?) {
            (Some(i), _) | (None, Some(i)) => Some(i),
            (None, None) => None,
        };
        let interpreter = match interpreter.as_deref() {
            Some("none") => None,
            Some(i) => Some(i.to_string()),
            None => {
                let by_extension =
                    INTERPRETERS.iter().find(|(ext, _)| script.ends_with(ext)).map(|(_, i)| i.to_string());
                match &by_extension {
                    Some(i) => out.notes.push(self.finding("interpreter", format!("not set: {i} (PM2 picks it by the script's extension)"))),
                    None => out.notes.push(self.finding(
                        "interpreter",
                        "not set and the extension names none: the script runs as a program itself (PM2 would use node unless it is a binary)",
                    )),
                }
                by_extension
            }
        };
        let mut argv = Vec::new();
        match interpreter {
            Some(i) => {
                argv.extend(command::split_words(&i).map_err(|m| self.error("interpreter", m))?);
                argv.extend(interpreter_args);
                argv.push(script.to_string());
            }
            None => {
                if !interpreter_args.is_empty() {
                    out.unmapped.push(self.finding("interpreter_args", "there is no interpreter to pass them to"));
                }
                if script.trim().contains(char::is_whitespace) {
                    // `script: "npm run start"`: a command line, as PM2 runs it.
                    let parsed = command::from_command_line(script).map_err(|m| self.error("script", m))?;
                    if let Some(features) = &parsed.shell_because {
                        out.notes.push(self.finding("script", format!("uses {features}: run through /bin/sh -c")));
                    }
                    argv.extend(parsed.argv);
                } else {
                    argv.push(script.to_string());
                }
            }
        }
        argv.extend(args);
        Ok(argv)
    }

    fn supervise(&self, ctx: &ImportContext, out: &mut Conversion) -> Result<Supervise, ImportError> {
        let mut s = Supervise {
            restart: RestartPolicy::Always,
            min_uptime_ms: 1_000,
            max_restarts: 16,
            stop_signal: "SIGINT".into(),
            kill_timeout_ms: 1_600,
            autostart: true,
            ..Supervise::default()
        };
        let mut autorestart = true;
        for (key, value) in self.fields {
            let key = key.as_str();
            let logs_reason = "the host writes each service's output to <app_log_dir>/<name>/ and rotates it there";
            match key {
                "name" | "script" | "args" | "interpreter" | "exec_interpreter" | "interpreter_args" | "node_args" | "cwd" | "env" => {}
                "instances" => s.instances = self.instances(value, ctx.cpus, out)?,
                "exec_mode" => match value.as_str() {
                    Some("fork" | "fork_mode") => {}
                    Some("cluster" | "cluster_mode") => out.notes.push(self.finding(
                        key,
                        "cluster: instances are separate processes (INSTANCE_ID 0..n-1); Node's cluster module no longer shares one port between them, so each must bind its own port or use SO_REUSEPORT",
                    )),
                    _ => return Err(self.error(key, format!("{value} must be \"fork\" or \"cluster\""))),
                },
                "autorestart" => autorestart = self.bool(key)?.unwrap_or(true),
                "stop_exit_codes" => {
                    let codes: Vec<Value> = match value {
                        Value::Array(items) => items.clone(),
                        single => vec![single.clone()],
                    };
                    s.success_exit_codes = codes
                        .iter()
                        .map(|c| c.as_i64().and_then(|c| i32::try_from(c).ok()).ok_or_else(|| self.error(key, "must be an exit code or a list of them")))
                        .collect::<Result<_, _>>()?;
                }
                "max_memory_restart" => {
                    s.max_memory_restart = match value {
                        Value::Number(n) => n.as_u64().ok_or_else(|| self.error(key, "must be a positive number of bytes or a size like \"200M\""))?,
                        Value::String(t) => parse_size(t).map_err(|m| self.error(key, m))?,
                        _ => return Err(self.error(key, "must be a size like \"200M\"")),
                    }
                }
                "kill_timeout" => s.kill_timeout_ms = self.duration_ms(key)?.unwrap_or(1_600),
                "kill_signal" => s.stop_signal = signal(value.as_str().unwrap_or_default()).map_err(|m| self.error(key, m))?,
                "min_uptime" => s.min_uptime_ms = self.duration_ms(key)?.unwrap_or(1_000),
                "max_restarts" => {
                    s.max_restarts = value.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| self.error(key, "must be a whole number"))?
                }
                "restart_delay" => {
                    // PM2 waits the same delay before every restart: no growth.
                    if let Some(delay) = self.duration_ms(key)?.filter(|d| *d > 0) {
                        s.backoff_initial_ms = delay;
                        s.backoff_max_ms = delay;
                    }
                }
                "exp_backoff_restart_delay" => {
                    // PM2 grows it by 1.5 per unstable restart up to 15 s, as the host does.
                    if let Some(delay) = self.duration_ms(key)?.filter(|d| *d > 0) {
                        s.backoff_initial_ms = delay;
                        s.backoff_max_ms = delay.max(15_000);
                    }
                }
                "autostart" => s.autostart = self.bool(key)?.unwrap_or(true),
                "treekill" => {
                    if self.bool(key)? == Some(false) {
                        out.unmapped.push(self.finding(key, "false is not possible: the host always signals the service's whole process group"));
                    }
                }
                "watch" | "ignore_watch" | "watch_delay" => {} // self.watch()
                "watch_options" => out.unmapped.push(self.finding(
                    key,
                    "chokidar's options have no equivalent: the host's watcher takes paths, ignore globs and a debounce",
                )),
                "out_file" | "error_file" | "err_file" | "log_file" | "log" | "output" | "error" | "log_date_format"
                | "merge_logs" | "combine_logs" | "time" | "log_type" | "disable_logs" => {
                    out.unmapped.push(self.finding(key, logs_reason))
                }
                "pid_file" | "pid" => out.unmapped.push(self.finding(key, "the host keeps service pids in its own store")),
                "cron_restart" | "cron" => out.unmapped.push(self.finding(
                    key,
                    "restart on a schedule with a host task (tasks) that calls `apollo app restart NAME`",
                )),
                "wait_ready" | "listen_timeout" => out.unmapped.push(self.finding(
                    key,
                    "readiness is the model's health check: set health (kind http or tcp) by hand",
                )),
                "shutdown_with_message" => out.unmapped.push(self.finding(key, "services are stopped with a signal (kill_signal), not an IPC message")),
                "namespace" => out.unmapped.push(self.finding(key, "there are no namespaces: service names are global on a host")),
                "user" | "uid" | "gid" => out.unmapped.push(self.finding(key, "the host starts services as its own user; run the host as that user or drop privileges in the command")),
                "instance_var" | "increment_var" => out.unmapped.push(self.finding(key, "each instance gets INSTANCE_ID (0-based) instead")),
                "source_map_support" | "disable_source_map_support" | "node_version" | "vizion" | "post_update" | "force"
                | "automation" | "pmx" | "trace" | "disable_trace" | "filter_env" | "append_env_to_name" => {
                    out.unmapped.push(self.finding(key, "a PM2-specific feature with no equivalent in the host"))
                }
                env if env.starts_with("env_") => out.unmapped.push(self.finding(
                    key,
                    format!("PM2 applies {env} with `--env {}`: merge the one you deploy into env to import it", &env[4..]),
                )),
                _ => out.unmapped.push(self.finding(key, "not a PM2 app key this import knows (a typo?)")),
            }
        }
        s.restart = match (autorestart, self.fields.contains_key("stop_exit_codes")) {
            (false, _) => RestartPolicy::Never,
            (true, true) => RestartPolicy::OnFailure,
            (true, false) => RestartPolicy::Always,
        };
        if s.instances > 1 && self.fields.get("instance_var").is_none() {
            out.notes.push(self.finding("instances", "PM2's NODE_APP_INSTANCE is INSTANCE_ID here (0-based)"));
        }
        Ok(s)
    }

    /// PM2's `watch` (true: the app's directory; a path or list: relative to it),
    /// `ignore_watch` (globs) and `watch_delay` (ms) -> `supervise.watch`, whose paths and
    /// globs are relative to the service's directory and may not leave it. A path that
    /// would is listed as not mapped; the rest still maps.
    fn watch(&self, app_dir: &Path, service_dir: &Path, out: &mut Conversion) -> Result<WatchSettings, ImportError> {
        let mut watch = WatchSettings::default();
        // Relative to the service's directory ("" is the directory itself), if inside it.
        let inside = |path: &str| {
            let resolved = command::normalize(&app_dir.join(path));
            resolved.strip_prefix(service_dir).map(|r| r.to_string_lossy().into_owned()).map_err(|_| resolved)
        };
        let outside = |paths: &[String]| {
            format!(
                "{} {} outside the service's directory {}: the model watches only inside it",
                paths.join(", "),
                if paths.len() == 1 { "is" } else { "are" },
                service_dir.display()
            )
        };

        let requested = match self.fields.get("watch") {
            None | Some(Value::Null | Value::Bool(false)) => Vec::new(),
            Some(Value::Bool(true)) => vec![".".to_string()],
            Some(Value::String(path)) => vec![path.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.error("watch", "must be true, false, a path or a list of paths"))?,
            Some(_) => return Err(self.error("watch", "must be true, false, a path or a list of paths")),
        };
        let (mut mapped, mut refused) = (Vec::new(), Vec::new());
        for path in &requested {
            match inside(path) {
                Ok(relative) => mapped.push(relative),
                Err(resolved) => refused.push(resolved.display().to_string()),
            }
        }
        if !refused.is_empty() {
            out.unmapped.push(self.finding("watch", outside(&refused)));
        }
        if !mapped.is_empty() {
            watch.enabled = true;
            // The service's whole directory covers every other path.
            watch.paths = if mapped.iter().any(String::is_empty) { Vec::new() } else { mapped };
        }

        let (mut ignored, mut refused, mut not_globs) = (Vec::new(), Vec::new(), Vec::new());
        for pattern in self.words_list("ignore_watch")? {
            if pattern.contains(['\\', '^', '$', '(', '|', '+']) {
                not_globs.push(pattern);
            } else if pattern.starts_with('*') {
                // `*` crosses `/` in the model's globs: it matches at any depth already.
                ignored.push(pattern);
            } else {
                match inside(&pattern) {
                    Ok(relative) if !relative.is_empty() => ignored.push(relative),
                    Ok(_) => refused.push(pattern),
                    Err(resolved) => refused.push(resolved.display().to_string()),
                }
            }
        }
        let (globs, bad): (Vec<String>, Vec<String>) = ignored.into_iter().partition(|g| globset::Glob::new(g).is_ok());
        watch.ignore = globs;
        not_globs.extend(bad);
        if !not_globs.is_empty() {
            out.unmapped.push(self.finding(
                "ignore_watch",
                format!(
                    "{} {}: the model takes globs (`*.log`, `node_modules`, `tmp/**`); write them by hand",
                    not_globs.join(", "),
                    if not_globs.len() == 1 {
                        "is a regular expression or not a valid glob"
                    } else {
                        "are regular expressions or not valid globs"
                    }
                ),
            ));
        }
        if !refused.is_empty() {
            out.unmapped.push(self.finding("ignore_watch", outside(&refused)));
        }

        if let Some(delay) = self.duration_ms("watch_delay")? {
            let bounds = 10..=60_000;
            watch.debounce_ms = delay.clamp(*bounds.start(), *bounds.end());
            if watch.debounce_ms != delay {
                out.notes.push(self.finding(
                    "watch_delay",
                    format!(
                        "{delay} ms is outside the model's {}..={} ms: {} ms",
                        bounds.start(),
                        bounds.end(),
                        watch.debounce_ms
                    ),
                ));
            }
        }
        Ok(watch)
    }

    /// A string or a list of strings, taken as they are (no splitting).
    fn words_list(&self, key: &str) -> Result<Vec<String>, ImportError> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| self.error(key, "must be a string or a list of strings"))
                })
                .collect(),
            Some(_) => Err(self.error(key, "must be a string or a list of strings")),
        }
    }

    /// A number, `"max"`/0 (one per CPU) or -1 (one per CPU but one).
    fn instances(&self, value: &Value, cpus: u32, out: &mut Conversion) -> Result<u32, ImportError> {
        let requested = match value {
            Value::String(s) if s == "max" => 0,
            Value::String(s) => {
                s.parse::<i64>().map_err(|_| self.error("instances", format!("{s:?} must be a number or \"max\"")))?
            }
            Value::Number(n) => {
                n.as_i64().ok_or_else(|| self.error("instances", "must be a whole number or \"max\""))?
            }
            _ => return Err(self.error("instances", "must be a whole number or \"max\"")),
        };
        let count = match requested {
            0 => cpus,
            -1 => cpus.saturating_sub(1).max(1),
            n if (1..=64).contains(&n) => return Ok(n as u32),
            n => return Err(self.error("instances", format!("{n} must be between 1 and 64, 0/\"max\" or -1"))),
        }
        .clamp(1, 64);
        out.notes.push(self.finding(
            "instances",
            format!("{value} means one per CPU: {count} on this machine (the model keeps the number, not \"max\")"),
        ));
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;

    fn ctx() -> ImportContext {
        ImportContext {
            source_name: "/srv/shop/ecosystem.json".into(),
            source_dir: PathBuf::from("/srv/shop"),
            app_root: PathBuf::from("/srv/apollo/apps"),
            cpus: 4,
            env: HashMap::new(),
            host_name: "box1".into(),
        }
    }

    const ECOSYSTEM: &str = r#"{
  "apps": [
    {
      "name": "api",
      "script": "./dist/server.js",
      "cwd": "/srv/apollo/apps/api",
      "node_args": "--max-old-space-size=512",
      "args": ["--port", "3000"],
      "instances": "max",
      "exec_mode": "cluster",
      "env": {"NODE_ENV": "production", "PORT": 3000},
      "env_staging": {"NODE_ENV": "staging"},
      "max_memory_restart": "300M",
      "kill_timeout": 5000,
      "wait_ready": true,
      "listen_timeout": 8000,
      "watch": ["dist"],
      "ignore_watch": ["node_modules", "*.log"],
      "out_file": "/var/log/shop/api.out.log",
      "error_file": "/var/log/shop/api.err.log",
      "merge_logs": true
    },
    {
      "name": "thumbnailer",
      "script": "worker.py",
      "interpreter": "/usr/bin/python3",
      "interpreter_args": "-u",
      "args": "--queue thumbs --concurrency 2",
      "cwd": "../legacy/thumbs",
      "autorestart": true,
      "stop_exit_codes": [0, 3],
      "min_uptime": "10s",
      "max_restarts": 5,
      "exp_backoff_restart_delay": 200,
      "kill_signal": "SIGTERM",
      "cron_restart": "0 3 * * *",
      "namespace": "media"
    },
    {
      "script": "/usr/bin/redis-server",
      "args": "--port 6390 --appendonly no",
      "interpreter": "none",
      "autorestart": false,
      "autostart": false,
      "restart_delay": 4000,
      "treekill": false,
      "restart_dealy": 100
    }
  ],
  "deploy": {"production": {"user": "deploy", "host": "shop.example", "ref": "origin/main"}}
}"#;

    #[test]
    fn a_realistic_ecosystem_maps_every_app_and_lists_the_rest() {
        let c = convert(ECOSYSTEM, &ctx()).unwrap();
        let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["api", "thumbnailer", "redis-server"]);

        let api = &c.services[0].model;
        assert_eq!(api.run_data.command, ["node", "--max-old-space-size=512", "./dist/server.js", "--port", "3000"]);
        assert_eq!(api.run_data.cwd, "");
        assert_eq!(api.run_data.envs, ["NODE_ENV=production", "PORT=3000"]);
        let s = &api.supervise;
        assert_eq!((s.instances, s.max_memory_restart, s.kill_timeout_ms), (4, 300 << 20, 5000));
        assert_eq!(
            (s.restart, s.stop_signal.as_str(), s.max_restarts, s.min_uptime_ms),
            (RestartPolicy::Always, "SIGINT", 16, 1000)
        );

        let thumbs = &c.services[1].model;
        assert_eq!(
            thumbs.run_data.command,
            [
                "/usr/bin/env",
                "--chdir=/srv/legacy/thumbs",
                "--",
                "/usr/bin/python3",
                "-u",
                "worker.py",
                "--queue",
                "thumbs",
                "--concurrency",
                "2"
            ]
        );
        let s = &thumbs.supervise;
        assert_eq!((s.restart, s.success_exit_codes.clone()), (RestartPolicy::OnFailure, vec![0, 3]));
        assert_eq!((s.min_uptime_ms, s.max_restarts, s.backoff_initial_ms, s.backoff_max_ms), (10_000, 5, 200, 15_000));
        assert_eq!(s.stop_signal, "SIGTERM");

        let redis = &c.services[2].model;
        assert_eq!(&redis.run_data.command[3..], ["/usr/bin/redis-server", "--port", "6390", "--appendonly", "no"]);
        let s = &redis.supervise;
        assert_eq!(
            (s.restart, s.autostart, s.backoff_initial_ms, s.backoff_max_ms),
            (RestartPolicy::Never, false, 4000, 4000)
        );

        let unmapped: Vec<(&str, &str)> = c.unmapped.iter().map(|f| (f.program.as_str(), f.key.as_str())).collect();
        for expected in [
            ("(file)", "deploy"),
            ("api", "env_staging"),
            ("api", "wait_ready"),
            ("api", "listen_timeout"),
            ("api", "out_file"),
            ("api", "error_file"),
            ("api", "merge_logs"),
            ("thumbnailer", "cron_restart"),
            ("thumbnailer", "namespace"),
            ("redis-server", "treekill"),
            ("redis-server", "restart_dealy"),
        ] {
            assert!(unmapped.contains(&expected), "{expected:?} missing from {unmapped:?}");
        }
        assert!(!unmapped.iter().any(|(_, key)| key.contains("watch")), "{unmapped:?}");
        let w = &api.supervise.watch;
        assert_eq!(
            (w.enabled, w.paths.clone(), w.ignore.clone()),
            (true, vec!["dist".into()], vec!["node_modules".into(), "*.log".into()])
        );
        assert!(!thumbs.supervise.watch.enabled);
        let notes: Vec<(&str, &str)> = c.notes.iter().map(|f| (f.program.as_str(), f.key.as_str())).collect();
        for expected in [("api", "instances"), ("api", "exec_mode"), ("thumbnailer", "cwd"), ("redis-server", "name")] {
            assert!(notes.contains(&expected), "{expected:?} missing from {notes:?}");
        }
    }

    #[test]
    fn watch_maps_inside_the_service_and_lists_what_would_leave_it() {
        let app = |fields: &str| {
            let c = convert(&format!(r#"[{{"name":"w","script":"/bin/true","interpreter":"none",{fields}}}]"#), &ctx())
                .unwrap();
            (c.services[0].model.supervise.watch.clone(), c.unmapped, c.notes)
        };
        // `true` watches the app's directory: here a sub-directory of the service's.
        let (w, unmapped, _) =
            app(r#""cwd":"/srv/apollo/apps/w/current","watch":true,"ignore_watch":"node_modules","watch_delay":1500"#);
        assert_eq!(
            (w.enabled, w.paths, w.ignore, w.debounce_ms),
            (true, vec!["current".into()], vec!["current/node_modules".into()], 1500)
        );
        assert!(unmapped.is_empty(), "{unmapped:?}");
        // The service's own directory is the whole directory: no paths.
        let (w, _, _) = app(r#""cwd":"/srv/apollo/apps/w","watch":["src", ".", "conf"]"#);
        assert_eq!((w.enabled, w.paths), (true, Vec::<String>::new()));
        // Paths leaving the service's directory, regular expressions: listed, the rest maps.
        let (w, unmapped, notes) = app(
            r#""cwd":"/srv/apollo/apps/w","watch":["src","../shared","/etc/w.conf"],"ignore_watch":["^(node_modules|bower_components)$","*.tmp","/var/log"],"watch_delay":5"#,
        );
        assert_eq!((w.enabled, w.paths, w.ignore, w.debounce_ms), (true, vec!["src".into()], vec!["*.tmp".into()], 10));
        let why = |key: &str| {
            unmapped.iter().filter(|f| f.key == key).map(|f| f.message.clone()).collect::<Vec<_>>().join(" | ")
        };
        assert!(
            why("watch").contains("/srv/apollo/apps/shared, /etc/w.conf are outside the service's directory"),
            "{unmapped:?}"
        );
        assert!(why("ignore_watch").contains("regular expression"), "{unmapped:?}");
        assert!(why("ignore_watch").contains("/var/log is outside"), "{unmapped:?}");
        assert!(notes.iter().any(|n| n.key == "watch_delay" && n.message.contains("10 ms")), "{notes:?}");
        // An app that runs outside its service's directory cannot have its directory watched.
        let (w, unmapped, _) = app(r#""cwd":"/opt/legacy","watch":true"#);
        assert!(!w.enabled);
        assert!(
            unmapped.iter().any(|f| f.key == "watch" && f.message.contains("/opt/legacy is outside")),
            "{unmapped:?}"
        );
        // Off, with settings: kept (disabled) for when it is turned on.
        let (w, unmapped, _) = app(r#""cwd":"/srv/apollo/apps/w","watch":false,"ignore_watch":["*.log"]"#);
        assert_eq!((w.enabled, w.ignore), (false, vec!["*.log".into()]));
        assert!(unmapped.is_empty(), "{unmapped:?}");
        let e = convert(r#"[{"name":"w","script":"x","watch":5}]"#, &ctx()).unwrap_err();
        assert!(e.to_string().contains("[w] watch: must be true, false, a path or a list of paths"), "{e}");
    }

    #[test]
    fn interpreters_by_extension_and_command_lines() {
        let c = convert(r#"[{"name":"a","script":"app.py","cwd":"/srv/apollo/apps/a"},{"name":"b","script":"npm run start","cwd":"/srv/apollo/apps/b"}]"#, &ctx()).unwrap();
        assert_eq!(c.services[0].model.run_data.command, ["python3", "app.py"]);
        assert_eq!(c.services[1].model.run_data.command, ["npm", "run", "start"]);
        let c = convert(r#"{"apps":[{"name":"c","script":"./run.sh > out.txt","cwd":"/srv/apollo/apps/c"}]}"#, &ctx())
            .unwrap();
        assert_eq!(c.services[0].model.run_data.command, ["/bin/sh", "-c", "./run.sh > out.txt"]);
        assert!(c.notes.iter().any(|n| n.key == "script" && n.message.contains("redirection")));
    }

    #[test]
    fn bad_values_name_line_app_and_key() {
        let text = "{\"apps\": [\n  {\"name\": \"a\", \"script\": \"x\"},\n  {\"name\": \"b\",\n   \"script\": \"y\",\n   \"max_memory_restart\": \"lots\"}\n]}";
        let e = convert(text, &ctx()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "5: [b] max_memory_restart: \"lots\" is not a size: use a number with an optional unit K, M, G or T (e.g. 200M, 1.5G)"
        );
        let e = convert("{\"apps\": [{\"name\": \"a\"}]}", &ctx()).unwrap_err();
        assert!(e.to_string().contains("[a] script: is required"), "{e}");
        let e = convert("module.exports = { apps: [] }", &ctx()).unwrap_err();
        assert!(
            e.to_string().starts_with("1:1: not a JSON ecosystem file") && e.to_string().contains("JSON.stringify"),
            "{e}"
        );
        let e = convert("{\"apps\": [{\"name\": \"a\", \"script\": \"x\", \"instances\": 500}]}", &ctx()).unwrap_err();
        assert!(e.to_string().contains("between 1 and 64"), "{e}");
        let e =
            convert("{\"apps\": [{\"name\": \"a\", \"script\": \"x\"}, {\"name\": \"a\", \"script\": \"y\"}]}", &ctx())
                .unwrap_err();
        assert!(e.to_string().contains("two programs map to this service name"), "{e}");
    }
}
