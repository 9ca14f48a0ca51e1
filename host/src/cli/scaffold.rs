//! `apollo new NAME`, the seed's CJA scaffolder: writes a model file into the model
//! folder and executable start/stop/restart/kill/check scripts into
//! `<app_manager>/NAME/`. The templates (in `templates/`) work as written: they start
//! a heartbeat loop that the operator replaces with the real command.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::config::Config;
use crate::model::{is_valid_service_name, parse_model};

const MODEL: &str = include_str!("templates/model.pig");
/// `(file name, template)`; names match the model's `manage_cmd`.
const SCRIPTS: &[(&str, &str)] = &[
    ("start.sh", include_str!("templates/start.sh")),
    ("stop.sh", include_str!("templates/stop.sh")),
    ("restart.sh", include_str!("templates/restart.sh")),
    ("kill.sh", include_str!("templates/kill.sh")),
    ("check.sh", include_str!("templates/check.sh")),
];

/// Creates the files and returns their paths. Refuses to overwrite unless `force`.
pub fn scaffold_service(config: &Config, name: &str, force: bool) -> Result<Vec<PathBuf>, String> {
    if !is_valid_service_name(name) {
        return Err(format!("{name:?} is not a valid service name: use letters, digits, '-', '_', '.' (max 64)"));
    }
    let model_path = config.models_dir().join(format!("{name}.pig"));
    let script_dir = config.app_manager.join(name);
    let mut targets = vec![model_path.clone()];
    targets.extend(SCRIPTS.iter().map(|(file, _)| script_dir.join(file)));
    if !force && let Some(existing) = targets.iter().find(|p| p.exists()) {
        return Err(format!("{} already exists; pass --force to overwrite", existing.display()));
    }
    let fill =
        |t: &str| t.replace("{{NAME}}", name).replace("{{DATE}}", &chrono::Utc::now().format("%Y-%m-%d").to_string());
    let model_text = fill(MODEL);
    // The template must always produce a model the registry accepts.
    parse_model(&model_text, &|_| None).map_err(|e| format!("internal: scaffolded model is invalid: {e}"))?;

    let io = |what: &PathBuf, e: std::io::Error| format!("{}: {e}", what.display());
    for dir in [model_path.parent().map(PathBuf::from).unwrap_or_default(), script_dir.clone()] {
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    }
    for (file, template) in SCRIPTS {
        let path = script_dir.join(file);
        std::fs::write(&path, fill(template)).map_err(|e| io(&path, e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(|e| io(&path, e))?;
    }
    // The model goes last and atomically: a watching host sees it only once the scripts
    // it names exist, and never sees half a file.
    let tmp = model_path.with_extension("pig.tmp");
    std::fs::write(&tmp, model_text).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &model_path).map_err(|e| io(&model_path, e))?;
    Ok(targets)
}
