//! `apollo import supervisord|pm2 FILE`: the I/O around the pure converters in
//! `cli/import/`. Reads the source file, prints every key that did not map, and hands
//! the models to the host over its API (`PUT /api/apps/{name}/model`, so `--addr URL
//! --token T` imports into a remote host too): every target is checked first, and
//! names the host already has are refused without `--force`, writing nothing.
//! `--out DIR` is the offline path (model files, no host needed), `--dry-run` prints.
//! It never starts a service itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::import::{Conversion, ImportContext, ImportError, convert_pm2, convert_supervisord};
use super::output::{print_json, print_table};
use super::start::put_model;
use super::{ApiClient, CliError, GlobalArgs, load_config};
use crate::api::{ModelWriteOutcome, PutModelResponse};

/// The source formats `apollo import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Supervisord,
    Pm2,
}

impl SourceFormat {
    fn label(self) -> &'static str {
        match self {
            Self::Supervisord => "supervisord",
            Self::Pm2 => "PM2",
        }
    }
}

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub format: SourceFormat,
    pub file: PathBuf,
    pub out: Option<PathBuf>,
    pub force: bool,
    pub dry_run: bool,
}

pub async fn import(g: &GlobalArgs, request: ImportRequest) -> Result<(), CliError> {
    let config = load_config(g)?;
    let file = &request.file;
    let text = std::fs::read_to_string(file).map_err(|e| CliError::usage(format!("{}: {e}", file.display())))?;
    let absolute = std::path::absolute(file).map_err(|e| CliError::usage(format!("{}: {e}", file.display())))?;
    let ctx = ImportContext {
        source_name: absolute.display().to_string(),
        source_dir: absolute.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/")),
        app_root: config.app_root.clone(),
        cpus: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
        env: std::env::vars().collect::<HashMap<_, _>>(),
        host_name: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
    };
    let converted = match request.format {
        SourceFormat::Supervisord => convert_supervisord(&text, &ctx),
        SourceFormat::Pm2 => convert_pm2(&text, &ctx),
    }
    .map_err(|e: ImportError| {
        // `FILE:LINE: …` when the line is known, `FILE: …` otherwise.
        let separator = if e.line.is_some() { "" } else { " " };
        CliError::usage(format!("{}:{separator}{e}; nothing was written", file.display()))
    })?;

    if request.dry_run {
        return dry_run(g.json, &converted, request.out.as_deref());
    }
    let header = |into: &str| {
        println!(
            "imported {} service(s) from {} file {} {into}:",
            converted.services.len(),
            request.format.label(),
            ctx.source_name
        )
    };
    match &request.out {
        Some(out_dir) => {
            let written = write_files(out_dir, &converted, request.force)?;
            if g.json {
                print_json(&json!({
                    "source": ctx.source_name,
                    "format": request.format.label(),
                    "written": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                    "services": converted.services.iter().map(|s| &s.name).collect::<Vec<_>>(),
                    "unmapped": converted.unmapped,
                    "notes": converted.notes,
                }));
                return Ok(());
            }
            header(&format!("into {}", out_dir.display()));
            for (service, target) in converted.services.iter().zip(&written) {
                println!("  {:<20} {}", service.name, target.display());
            }
            print_findings(&converted);
            println!(
                "no host was told: copy the files into a host's model folder (it loads them when it starts or reloads), \
                 or import without --out to hand them to a host over its API"
            );
        }
        None => {
            let client = super::connect(g)?;
            let written = put_all(&client, &converted, request.force).await?;
            if g.json {
                print_json(&json!({
                    "source": ctx.source_name,
                    "format": request.format.label(),
                    "models": written,
                    "unmapped": converted.unmapped,
                    "notes": converted.notes,
                }));
                return Ok(());
            }
            header("into the host");
            for w in &written {
                let archived =
                    w.archived_to.as_deref().map(|a| format!(" (the old one is archived at {a})")).unwrap_or_default();
                println!("  {:<20} {:<9} {}{archived}", w.name, outcome_label(w.outcome), w.file);
            }
            print_findings(&converted);
            // PUT loads a model but starts nothing (as `apollo start` relies on).
            println!(
                "loaded, not started: `apollo app start NAME` starts a new one (autostart applies when the host \
                 starts); a replaced running one takes its new model at `apollo app restart NAME`"
            );
        }
    }
    Ok(())
}

fn outcome_label(outcome: ModelWriteOutcome) -> &'static str {
    match outcome {
        ModelWriteOutcome::Created => "created",
        ModelWriteOutcome::Replaced => "replaced",
        ModelWriteOutcome::Unchanged => "unchanged",
    }
}

/// The default path: every name is checked on the host before the first write, so a
/// refusal changes nothing; then each model goes through `PUT /api/apps/{name}/model`,
/// which validates it with the registry's parser, archives what `force` replaces and
/// rolls back what the registry refuses.
async fn put_all(client: &ApiClient, converted: &Conversion, force: bool) -> Result<Vec<PutModelResponse>, CliError> {
    let mut existing = Vec::new();
    for service in &converted.services {
        match client.get::<Value>(&format!("/api/apps/{}", service.name)).await {
            Ok(app) => existing.push(format!("{} ({})", service.name, app["file"].as_str().unwrap_or("?"))),
            Err(e) if e.status() == Some(404) => {}
            Err(e) => {
                return Err(CliError::failed(format!(
                    "checking {:?} on the host: {e}; nothing was written",
                    service.name
                )));
            }
        }
    }
    // A same-named model file the host did not load (see /api/models/problems) is not
    // an app, yet the PUT would refuse to replace it without force: find it now, before
    // anything is written.
    let problems: Value = client
        .get("/api/models/problems")
        .await
        .map_err(|e| CliError::failed(format!("reading the host's model problems: {e}; nothing was written")))?;
    for problem in problems["problems"].as_array().into_iter().flatten() {
        let file = problem["file"].as_str().unwrap_or_default();
        let stem = std::path::Path::new(file).file_stem().and_then(|s| s.to_str());
        if let Some(service) = converted
            .services
            .iter()
            .find(|s| problem["service"].as_str() == Some(s.name.as_str()) || stem == Some(s.name.as_str()))
        {
            existing.push(format!("{} ({file}, not loaded: see GET /api/models/problems)", service.name));
        }
    }
    if !existing.is_empty() && !force {
        return Err(CliError::failed(format!(
            "the host already has {}: nothing was written; pass --force to replace (the host archives the old models)",
            existing.join(", ")
        )));
    }
    let mut written = Vec::new();
    for service in &converted.services {
        let model: Value = serde_json::from_str(&service.text).map_err(|e| {
            CliError::failed(format!("{}: internal: the generated model is not JSON: {e}", service.name))
        })?;
        match put_model(client, &service.name, &model, force).await {
            Ok(w) => written.push(w),
            Err(e) => {
                let done: Vec<&str> = written.iter().map(|w| w.name.as_str()).collect();
                let done = if done.is_empty() {
                    "nothing was written".to_string()
                } else {
                    format!("already written: {}", done.join(", "))
                };
                return Err(CliError::failed(format!("{}: {e}; {done}", service.name)));
            }
        }
    }
    Ok(written)
}

/// `--out DIR`: model files for a host that is not reachable (or not there yet). All
/// targets are checked before the first write.
fn write_files(out_dir: &Path, converted: &Conversion, force: bool) -> Result<Vec<PathBuf>, CliError> {
    let targets: Vec<PathBuf> = converted.services.iter().map(|s| out_dir.join(format!("{}.pig", s.name))).collect();
    let existing: Vec<String> = targets.iter().filter(|p| p.exists()).map(|p| p.display().to_string()).collect();
    if !existing.is_empty() && !force {
        return Err(CliError::failed(format!(
            "{} already exist{}: nothing was written; pass --force to overwrite",
            existing.join(", "),
            if existing.len() == 1 { "s" } else { "" }
        )));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| CliError::failed(format!("{}: {e}", out_dir.display())))?;
    for (service, target) in converted.services.iter().zip(&targets) {
        write_atomically(target, &service.text)?;
    }
    Ok(targets)
}

fn dry_run(json: bool, converted: &Conversion, out: Option<&Path>) -> Result<(), CliError> {
    // Where each model would go: a file under --out, or the host's model folder.
    let target = |name: &str| match out {
        Some(dir) => dir.join(format!("{name}.pig")).display().to_string(),
        None => format!("{name}.pig in the host's model folder"),
    };
    if json {
        print_json(&json!({
            "dry_run": true,
            "models": converted.services.iter().map(|s| json!({
                "name": s.name,
                "target": target(&s.name),
                "model": serde_json::from_str::<Value>(&s.text).unwrap_or_default(),
            })).collect::<Vec<_>>(),
            "unmapped": converted.unmapped,
            "notes": converted.notes,
        }));
        return Ok(());
    }
    for service in &converted.services {
        println!("# {} (not written: --dry-run)", target(&service.name));
        print!("{}", service.text);
    }
    print_findings(converted);
    Ok(())
}

fn print_findings(converted: &Conversion) {
    for (title, findings) in [("not mapped", &converted.unmapped), ("notes", &converted.notes)] {
        if findings.is_empty() {
            continue;
        }
        println!("{title} ({}):", findings.len());
        let rows: Vec<Vec<String>> =
            findings.iter().map(|f| vec![format!("  {}", f.program), f.key.clone(), f.message.clone()]).collect();
        print_table(&["  PROGRAM", "KEY", "WHY"], &rows);
    }
}

/// Write + rename: a host watching DIR never sees half a file.
fn write_atomically(target: &Path, text: &str) -> Result<(), CliError> {
    let file_name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = target.with_file_name(format!(".{file_name}.tmp"));
    std::fs::write(&tmp, text).map_err(|e| CliError::failed(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, target).map_err(|e| CliError::failed(format!("{}: {e}", target.display())))
}
