//! `apollo import supervisord|pm2 FILE`: the I/O around the pure converters in
//! `cli/import/`. Reads the source file, prints every key that did not map, refuses to
//! overwrite any existing model unless `--force` (checking all targets before writing
//! one), writes each model atomically into `--out` (default: the config's model
//! folder), and asks a reachable host to reload. It never starts a service itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::import::{Conversion, ImportContext, ImportError, convert_pm2, convert_supervisord};
use super::output::{print_json, print_table};
use super::{CliError, GlobalArgs, load_config};
use crate::registry::ReloadReport;

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

    let models_dir = config.models_dir();
    let out_dir = request.out.clone().unwrap_or_else(|| models_dir.clone());
    let targets: Vec<PathBuf> = converted.services.iter().map(|s| out_dir.join(format!("{}.pig", s.name))).collect();

    if request.dry_run {
        return dry_run(g.json, &converted, &targets);
    }
    let existing: Vec<String> = targets.iter().filter(|p| p.exists()).map(|p| p.display().to_string()).collect();
    if !existing.is_empty() && !request.force {
        return Err(CliError::failed(format!(
            "{} already exist{}: nothing was written; pass --force to overwrite",
            existing.join(", "),
            if existing.len() == 1 { "s" } else { "" }
        )));
    }
    std::fs::create_dir_all(&out_dir).map_err(|e| CliError::failed(format!("{}: {e}", out_dir.display())))?;
    for (service, target) in converted.services.iter().zip(&targets) {
        write_atomically(target, &service.text)?;
    }

    // A host watching the folder picks the files up by itself; asking it to reload
    // makes that immediate. Only meaningful when the files went where it looks.
    let reload = if out_dir == models_dir {
        match super::connect(g) {
            Ok(client) => client.post::<ReloadReport>("/api/reload", None).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.message),
        }
    } else {
        Err(format!("the models are in {}, not the host's model folder", out_dir.display()))
    };

    if g.json {
        print_json(&json!({
            "source": ctx.source_name,
            "format": request.format.label(),
            "written": targets.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "services": converted.services.iter().map(|s| &s.name).collect::<Vec<_>>(),
            "unmapped": converted.unmapped,
            "notes": converted.notes,
            "reload": match &reload { Ok(r) => json!(r), Err(e) => json!({"error": e}) },
        }));
        return Ok(());
    }
    println!(
        "imported {} service(s) from {} file {}:",
        converted.services.len(),
        request.format.label(),
        ctx.source_name
    );
    for (service, target) in converted.services.iter().zip(&targets) {
        println!("  {:<20} {}", service.name, target.display());
    }
    print_findings(&converted);
    match reload {
        Ok(r) => println!("host reloaded: {} added, {} changed", r.added.len(), r.changed.len()),
        Err(why) => println!("host not reloaded ({why}): it reads the models when it starts or reloads"),
    }
    Ok(())
}

fn dry_run(json: bool, converted: &Conversion, targets: &[PathBuf]) -> Result<(), CliError> {
    if json {
        print_json(&json!({
            "dry_run": true,
            "models": converted.services.iter().zip(targets).map(|(s, t)| json!({
                "file": t.display().to_string(),
                "model": serde_json::from_str::<serde_json::Value>(&s.text).unwrap_or_default(),
            })).collect::<Vec<_>>(),
            "unmapped": converted.unmapped,
            "notes": converted.notes,
        }));
        return Ok(());
    }
    for (service, target) in converted.services.iter().zip(targets) {
        println!("# {} (not written: --dry-run)", target.display());
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

/// Write + rename: a watching host never sees half a file.
fn write_atomically(target: &Path, text: &str) -> Result<(), CliError> {
    let file_name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = target.with_file_name(format!(".{file_name}.tmp"));
    std::fs::write(&tmp, text).map_err(|e| CliError::failed(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, target).map_err(|e| CliError::failed(format!("{}: {e}", target.display())))
}
