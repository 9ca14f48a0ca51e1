//! The one-shot CLI commands. Each prints a table (or `--json`) and returns a
//! [`CliError`] on failure; the shell calls the same functions.

use std::io::{BufRead, IsTerminal};

use serde_json::{Value, json};

use super::output::{or_dash, print_json, print_list, print_table};
use super::{ApiClient, CliError, Endpoint, GlobalArgs, load_config};
use crate::api::{AppSummary, BulkOutcome, Health, LogLines, LoginResponse};
use crate::auth::hash_password;
use crate::backup::{BackupEntry, RestoreReport};
use crate::config::Config;
use crate::registry::{ReloadReport, check_folder};
use crate::store::{AlarmRecord, AuditEntry};
use crate::supervisor::ServiceStatus;

fn ports(p: &[u16]) -> String {
    or_dash(p.iter().map(u16::to_string).collect::<Vec<_>>().join(","))
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

pub async fn app_list(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let apps: Vec<AppSummary> = client.get("/api/apps").await?;
    print_list(&apps, json, &["NAME", "STATE", "PID", "PORTS", "MODE", "DEPENDS ON", "DESCRIPTION"], |a| {
        vec![
            a.name.clone(),
            a.state.as_str().to_string(),
            a.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            ports(&a.ports),
            or_dash(a.mode.clone()),
            or_dash(a.run_dep.join(",")),
            or_dash(a.description.clone()),
        ]
    });
    Ok(())
}

pub async fn app_info(client: &ApiClient, name: &str, json: bool) -> Result<(), CliError> {
    let detail: Value = client.get(&format!("/api/apps/{}", url_segment(name)?)).await?;
    if json {
        print_json(&detail);
        return Ok(());
    }
    let m = &detail["model"];
    let list = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(|x| x.to_string().trim_matches('"').to_string()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let rows = vec![
        vec!["name".into(), detail["name"].as_str().unwrap_or_default().into()],
        vec!["id".into(), m["id"].as_str().unwrap_or_default().into()],
        vec!["type".into(), or_dash(m["type"].as_str().unwrap_or_default())],
        vec!["state".into(), detail["status"]["state"].as_str().unwrap_or_default().into()],
        vec!["mode".into(), detail["status"]["mode"].as_str().unwrap_or_default().into()],
        vec!["pid".into(), detail["status"]["pid"].as_i64().map(|p| p.to_string()).unwrap_or_else(|| "-".into())],
        vec!["ports".into(), or_dash(list(&detail["status"]["ports"]))],
        vec!["restarts".into(), detail["status"]["restarts"].to_string()],
        vec!["random port".into(), m["run_data"]["random_port"].as_bool().unwrap_or(false).to_string()],
        vec!["run_dep".into(), or_dash(list(&m["run_data"]["run_dep"]))],
        vec!["stop_chain".into(), or_dash(list(&m["run_data"]["stop_chain"]))],
        vec!["description".into(), or_dash(m["eng_des"].as_str().unwrap_or_default())],
        vec!["link".into(), or_dash(m["link"].as_str().unwrap_or_default())],
        vec!["file".into(), detail["file"].as_str().unwrap_or_default().into()],
        vec!["loaded at".into(), detail["loaded_at"].as_str().unwrap_or_default().into()],
    ];
    print_table(&["FIELD", "VALUE"], &rows);
    Ok(())
}

pub async fn app_status(client: &ApiClient, name: Option<&str>, all: bool, json: bool) -> Result<(), CliError> {
    let statuses: Vec<ServiceStatus> = match (name, all) {
        (Some(n), false) => vec![client.get(&format!("/api/apps/{}/status", url_segment(n)?)).await?],
        (None, true) => {
            let apps: Vec<AppSummary> = client.get("/api/apps").await?;
            let mut out = Vec::new();
            for a in apps {
                out.push(client.get(&format!("/api/apps/{}/status", url_segment(&a.name)?)).await?);
            }
            out
        }
        _ => return Err(CliError::usage("give a service name, or -a for all services")),
    };
    if json {
        print_json(&statuses);
        return Ok(());
    }
    print_statuses(&statuses);
    Ok(())
}

fn print_statuses(statuses: &[ServiceStatus]) {
    let rows: Vec<Vec<String>> = statuses
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.state.as_str().to_string(),
                s.mode.clone(),
                s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                ports(&s.ports),
                s.restarts.to_string(),
                or_dash(s.message.clone()),
            ]
        })
        .collect();
    print_table(&["NAME", "STATE", "MODE", "PID", "PORTS", "RESTARTS", "MESSAGE"], &rows);
}

/// start / stop / restart / kill of one service, or of all with `all`.
pub async fn app_action(
    client: &ApiClient,
    action: &str,
    name: Option<&str>,
    all: bool,
    json: bool,
) -> Result<(), CliError> {
    match (name, all) {
        (Some(n), false) => {
            let status: ServiceStatus = client.post(&format!("/api/apps/{}/{action}", url_segment(n)?), None).await?;
            if json {
                print_json(&status);
            } else {
                print_statuses(&[status]);
            }
            Ok(())
        }
        (None, true) => {
            let outcomes: Vec<BulkOutcome> = match action {
                "start" => client.post("/api/apps/start-all", None).await?,
                "stop" => client.post("/api/apps/stop-all", None).await?,
                _ => {
                    // restart -a / kill -a: every service in turn.
                    let apps: Vec<AppSummary> = client.get("/api/apps").await?;
                    let mut out = Vec::new();
                    for a in apps {
                        let r: Result<ServiceStatus, _> =
                            client.post(&format!("/api/apps/{}/{action}", url_segment(&a.name)?), None).await;
                        out.push(match r {
                            Ok(s) => {
                                BulkOutcome { name: a.name, ok: true, state: s.state.as_str().into(), error: None }
                            }
                            Err(e) => BulkOutcome {
                                name: a.name,
                                ok: false,
                                state: String::new(),
                                error: Some(e.to_string()),
                            },
                        });
                    }
                    out
                }
            };
            let failed = outcomes.iter().filter(|o| !o.ok).count();
            if json {
                print_json(&outcomes);
            } else {
                let rows: Vec<Vec<String>> = outcomes
                    .iter()
                    .map(|o| {
                        vec![
                            o.name.clone(),
                            if o.ok { o.state.clone() } else { "FAILED".into() },
                            or_dash(o.error.clone().unwrap_or_default()),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "STATE", "ERROR"], &rows);
            }
            if failed > 0 { Err(CliError::failed(format!("{failed} service(s) failed to {action}"))) } else { Ok(()) }
        }
        _ => Err(CliError::usage("give a service name, or -a for all services")),
    }
}

pub async fn app_logs(client: &ApiClient, name: &str, follow: bool, tail: usize) -> Result<(), CliError> {
    let path = format!("/api/apps/{}/logs?tail={tail}", url_segment(name)?);
    if !follow {
        let logs: LogLines = client.get(&path).await?;
        for line in logs.lines {
            println!("{line}");
        }
        return Ok(());
    }
    client
        .stream_events(&format!("{path}&follow=true"), |line| {
            println!("{line}");
        })
        .await?;
    Ok(())
}

pub async fn reload(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let report: ReloadReport = client.post("/api/reload", None).await?;
    if json {
        print_json(&report);
    } else {
        println!(
            "reloaded (generation {}): {} added, {} changed, {} removed, {} unchanged, {} problem(s)",
            report.generation,
            report.added.len(),
            report.changed.len(),
            report.removed.len(),
            report.unchanged,
            report.problems
        );
        for (label, names) in [("added", &report.added), ("changed", &report.changed), ("removed", &report.removed)] {
            if !names.is_empty() {
                println!("  {label}: {}", names.join(", "));
            }
        }
        if report.problems > 0 {
            println!("  see the problems with: apollo shell -> check, or GET /api/models/problems");
        }
    }
    Ok(())
}

/// Prints the CLI's version first (it needs nothing), then asks the host.
pub async fn version(g: &GlobalArgs) -> Result<(), CliError> {
    if !g.json {
        println!("apollo CLI  {}", crate::VERSION);
    }
    let client = super::connect(g)?;
    host_version(&client, g.json).await
}

pub async fn host_version(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let host: Result<Health, _> = client.get("/healthz").await;
    if json {
        print_json(&json!({"cli": crate::VERSION, "host": host.as_ref().ok().map(|h| &h.version)}));
    } else {
        match &host {
            Ok(h) => println!("apollo host {} at {} (up {} s)", h.version, client.endpoint(), h.uptime_secs),
            Err(e) => println!("apollo host unreachable: {e}"),
        }
    }
    host.map(drop).map_err(CliError::from)
}

pub async fn audit(client: &ApiClient, limit: u32, json: bool) -> Result<(), CliError> {
    let entries: Vec<AuditEntry> = client.get(&format!("/api/audit?limit={limit}")).await?;
    print_list(&entries, json, &["ID", "WHEN (UTC)", "ACTOR", "FROM", "METHOD", "PATH", "STATUS"], |e| {
        vec![
            e.id.to_string(),
            when(e.at_ms),
            e.actor.clone(),
            e.remote.clone(),
            e.method.clone(),
            e.path.clone(),
            e.status.to_string(),
        ]
    });
    Ok(())
}

/// Validates the config and the model folder offline, like `nginx -t`.
pub fn check(g: &GlobalArgs) -> Result<(), CliError> {
    let loaded = Config::discover(g.config.as_deref())?;
    let dir = loaded.config.models_dir();
    let scan = check_folder(&dir);
    if g.json {
        print_json(&json!({
            "config": loaded.config.source_name(),
            "config_warnings": loaded.warnings,
            "models_dir": dir.display().to_string(),
            "services": scan.apps.keys().collect::<Vec<_>>(),
            "problems": scan.problems,
        }));
    } else {
        println!("config {}: ok", loaded.config.source_name());
        for w in &loaded.warnings {
            println!("  warning: {w}");
        }
        println!("models {}: {} loadable, {} problem(s)", dir.display(), scan.apps.len(), scan.problems.len());
        for p in &scan.problems {
            println!("  {}: {}", p.file, p.message);
        }
        if !scan.problems.is_empty() {
            // An empty line after the last problem, so the `error:` summary (stderr)
            // and whatever a script prints next stand apart from the list.
            println!();
        }
    }
    if scan.problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::failed(format!("{} model file(s) would not load", scan.problems.len())))
    }
}

pub fn passwd(from_stdin: bool) -> Result<(), CliError> {
    let password = read_secret("New admin password: ", from_stdin)?;
    if password.len() < 8 {
        return Err(CliError::usage("use at least 8 characters"));
    }
    if !from_stdin && std::io::stdin().is_terminal() {
        let again = read_secret("Repeat: ", false)?;
        if again != password {
            return Err(CliError::usage("the two passwords differ"));
        }
    }
    println!("{}", hash_password(&password));
    eprintln!("put this in the config as auth.admin_password_hash");
    Ok(())
}

pub async fn login(g: &GlobalArgs, user: &str, from_stdin: bool) -> Result<(), CliError> {
    let client = super::connect(g)?;
    if matches!(client.endpoint(), Endpoint::Unix(_)) && g.addr.is_none() {
        eprintln!("note: the unix socket needs no token; `login` is for --addr http://HOST:PORT");
    }
    let password = read_secret(&format!("Password for {user}: "), from_stdin)?;
    let session: LoginResponse =
        client.post("/api/auth/login", Some(&json!({"username": user, "password": password}))).await?;
    if g.json {
        print_json(&session);
    } else {
        println!("{}", session.token);
        eprintln!("token valid until {}; use it as --token or APOLLO_TOKEN", session.expires_at);
    }
    Ok(())
}

pub fn new_service(g: &GlobalArgs, name: &str, force: bool) -> Result<(), CliError> {
    let config = load_config(g)?;
    let created = super::scaffold_service(&config, name, force).map_err(CliError::failed)?;
    if g.json {
        print_json(&created.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
    } else {
        println!("created service {name}:");
        for path in created {
            println!("  {}", path.display());
        }
        println!("edit the start command in start.sh; a running host picks the model up by itself");
    }
    Ok(())
}

fn read_secret(prompt: &str, from_stdin: bool) -> Result<String, CliError> {
    let line = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::failed(format!("reading standard input: {e}")))?;
        line
    } else {
        rpassword::prompt_password(prompt).map_err(|e| CliError::failed(format!("reading the password: {e}")))?
    };
    let secret = line.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        return Err(CliError::usage("empty password"));
    }
    Ok(secret)
}

/// A service name as a URL path segment; names are validated to be URL-safe, so
/// anything else is a typo and gets a clear message instead of a confusing 404.
fn url_segment(name: &str) -> Result<&str, CliError> {
    if crate::model::is_valid_service_name(name) {
        Ok(name)
    } else {
        Err(CliError::usage(format!("{name:?} is not a valid service name")))
    }
}

/// `apollo module list`: loaded modules, then refused libraries and disabled modules.
pub async fn module_list(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let listing: Value = client.get("/api/modules").await?;
    print_modules(&listing, json);
    Ok(())
}

/// `apollo module reload [NAME] | enable NAME | disable NAME`.
pub async fn module_action(client: &ApiClient, action: &str, name: Option<&str>, json: bool) -> Result<(), CliError> {
    let path = match (action, name) {
        ("reload", None) => "/api/modules/reload".to_string(),
        ("reload", Some(n)) => format!("/api/modules/reload?name={}", url_segment(n)?),
        (_, Some(n)) => format!("/api/modules/{}/{action}", url_segment(n)?),
        _ => return Err(CliError::usage("give a module name")),
    };
    let listing: Value = client.post(&path, None).await?;
    print_modules(&listing, json);
    Ok(())
}

fn print_modules(listing: &Value, json: bool) {
    if json {
        print_json(listing);
        return;
    }
    let empty = Vec::new();
    let rows: Vec<Vec<String>> = listing["modules"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|m| {
            vec![
                m["name"].as_str().unwrap_or_default().to_string(),
                m["version"].as_str().unwrap_or_default().to_string(),
                m["state"].as_str().unwrap_or_default().to_string(),
                m["generation"].to_string(),
                m["routes"].as_array().map(|r| r.len()).unwrap_or(0).to_string(),
                m["requests"].to_string(),
                m["panics"].to_string(),
            ]
        })
        .collect();
    print_table(&["NAME", "VERSION", "STATE", "GEN", "ROUTES", "REQUESTS", "PANICS"], &rows);
    for d in listing["disabled"].as_array().unwrap_or(&empty) {
        println!("disabled: {} ({})", d["name"].as_str().unwrap_or_default(), d["file"].as_str().unwrap_or_default());
    }
    for p in listing["problems"].as_array().unwrap_or(&empty) {
        println!("not loaded: {}: {}", p["file"].as_str().unwrap_or_default(), p["error"].as_str().unwrap_or_default());
    }
}

/// `apollo events`: one JSON event per line until the host closes the stream.
pub async fn events(client: &ApiClient, kinds: Option<&str>, name: Option<&str>) -> Result<(), CliError> {
    let mut query = Vec::new();
    if let Some(k) = kinds {
        query.push(format!("kinds={k}"));
    }
    if let Some(n) = name {
        query.push(format!("name={}", url_segment(n)?));
    }
    let path = if query.is_empty() { "/api/events".to_string() } else { format!("/api/events?{}", query.join("&")) };
    client
        .websocket(&path, |text| {
            println!("{text}");
        })
        .await?;
    Ok(())
}

fn backup_path(id: &str, action: &str) -> Result<String, CliError> {
    crate::backup::id::validate(id).map_err(CliError::usage)?;
    Ok(format!("/api/backups/{id}{action}"))
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// `apollo backup [create]`: writes a backup now and prints its id.
pub async fn backup_create(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let entry: BackupEntry = client.post("/api/backups", None).await?;
    if json {
        print_json(&entry);
    } else {
        println!(
            "backup {} written: {}, {} file(s), services: {}",
            entry.id,
            size(entry.size_bytes),
            entry.files,
            or_dash(entry.services.join(","))
        );
    }
    Ok(())
}

/// `apollo backup list`: newest first.
pub async fn backup_list(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let entries: Vec<BackupEntry> = client.get("/api/backups").await?;
    print_list(&entries, json, &["ID", "CREATED", "SIZE", "SERVICES"], |e| {
        vec![
            e.id.clone(),
            e.created_at.clone(),
            size(e.size_bytes),
            e.problem.clone().map(|p| format!("unreadable: {p}")).unwrap_or_else(|| or_dash(e.services.join(","))),
        ]
    });
    Ok(())
}

/// `apollo backup restore ID`.
pub async fn backup_restore(client: &ApiClient, id: &str, json: bool) -> Result<(), CliError> {
    let report: RestoreReport = client.post(&backup_path(id, "/restore")?, None).await?;
    if json {
        print_json(&report);
        return Ok(());
    }
    println!(
        "restored {}: {} file(s), {} dir(s), {} symlink(s); models generation {}",
        report.id, report.files, report.dirs, report.symlinks, report.models.generation
    );
    println!(
        "  stopped: {}; started again: {}",
        or_dash(report.stopped.join(",")),
        or_dash(report.restarted.join(","))
    );
    for failed in &report.not_restarted {
        println!("  not started again: {}: {}", failed.name, failed.error);
    }
    println!("  note: {}", report.store);
    if report.not_restarted.is_empty() {
        Ok(())
    } else {
        Err(CliError::failed("restored, but some services did not start again"))
    }
}

/// `apollo backup delete ID`.
pub async fn backup_delete(client: &ApiClient, id: &str) -> Result<(), CliError> {
    let _: Value = client.call(http::Method::DELETE, &backup_path(id, "")?, None).await?;
    println!("deleted {id}");
    Ok(())
}

/// `apollo alarm list [--state S]`: newest first.
pub async fn alarm_list(client: &ApiClient, state: &str, json: bool) -> Result<(), CliError> {
    if !matches!(state, "open" | "acked" | "resolved" | "all") {
        return Err(CliError::usage("--state is one of open, acked, resolved, all"));
    }
    let alarms: Vec<AlarmRecord> = client.get(&format!("/api/alarms?state={state}")).await?;
    print_list(
        &alarms,
        json,
        &["ID", "SEVERITY", "STATE", "KIND", "SUBJECT", "COUNT", "LAST SEEN (UTC)", "MESSAGE"],
        |a| {
            vec![
                a.id.to_string(),
                a.severity.clone(),
                a.state.clone(),
                a.kind.clone(),
                a.subject.clone(),
                a.count.to_string(),
                when(a.last_seen_ms),
                or_dash(a.message.clone()),
            ]
        },
    );
    Ok(())
}

/// `apollo alarm ack ID`.
pub async fn alarm_ack(client: &ApiClient, id: i64, json: bool) -> Result<(), CliError> {
    let alarm: AlarmRecord = client.post(&format!("/api/alarms/{id}/ack"), None).await?;
    if json {
        print_json(&alarm);
    } else {
        println!("alarm {} ({} {}) acknowledged", alarm.id, alarm.kind, alarm.subject);
    }
    Ok(())
}
