//! One pass over the model folder: read every file, parse it alone, then apply the
//! checks that need all of them (duplicate names and ids, unknown dependencies,
//! dependency cycles). Whatever fails becomes a problem; the rest is the new live set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{Snapshot, graph};
use crate::model::{ModelError, Octopus, parse_model};
use crate::store::now_ms;

/// A model in the live set.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LoadedModel {
    pub model: Octopus,
    #[schema(value_type = String)]
    pub file: PathBuf,
    /// SHA-256 of the file's bytes.
    pub hash: String,
    pub loaded_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The file could not be read.
    Unreadable,
    /// Not JSON, a wrong type, or a value that fails validation.
    Invalid,
    DuplicateName,
    DuplicateId,
    /// `run_dep` or `stop_chain` names a service that is not loaded.
    UnknownDependency,
    /// `run_dep` edges form a cycle.
    DependencyCycle,
}

/// Why one file is not part of the live set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ModelProblem {
    pub file: String,
    pub kind: ProblemKind,
    /// One line: where (line:column, key) and why.
    pub message: String,
    /// The service name, when the file got far enough to have one.
    pub service: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: Option<String>,
    /// For cycles: every member, in cycle order.
    pub cycle: Vec<String>,
}

impl ModelProblem {
    fn new(file: &Path, kind: ProblemKind, message: String) -> Self {
        Self {
            file: file.display().to_string(),
            kind,
            message,
            service: None,
            line: None,
            column: None,
            key: None,
            cycle: Vec::new(),
        }
    }

    fn from_model_error(file: &Path, err: ModelError) -> Self {
        Self {
            line: err.line,
            column: err.column,
            key: err.key.clone(),
            ..Self::new(file, ProblemKind::Invalid, err.to_string())
        }
    }
}

#[derive(Debug, Default)]
pub struct ScanResult {
    pub apps: BTreeMap<String, LoadedModel>,
    pub problems: Vec<ModelProblem>,
}

/// Model files are `*.pig` (the seed's extension) or `*.json`; hidden files and editor
/// leftovers are skipped. A missing folder is an empty registry, not an error.
fn model_files(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && (name.ends_with(".pig") || name.ends_with(".json")) && p.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Model files are small; anything larger is a mistake (a log or dump in the wrong
/// folder) that must not be read into memory on every rescan.
pub const MAX_MODEL_BYTES: u64 = 1024 * 1024;

pub fn scan_dir(dir: &Path, previous: &Snapshot, env: &dyn Fn(&str) -> Option<String>) -> ScanResult {
    let mut result = ScanResult::default();
    let files = match model_files(dir) {
        Ok(files) => files,
        Err(e) => {
            result.problems.push(ModelProblem::new(
                dir,
                ProblemKind::Unreadable,
                format!("cannot list model folder: {e}"),
            ));
            return result;
        }
    };
    let loaded_at_ms = now_ms();
    let mut candidates: Vec<LoadedModel> = Vec::new();
    for file in files {
        if let Ok(meta) = std::fs::metadata(&file)
            && meta.len() > MAX_MODEL_BYTES
        {
            let message = format!("file is {} bytes; model files are limited to {MAX_MODEL_BYTES} bytes", meta.len());
            result.problems.push(ModelProblem::new(&file, ProblemKind::Unreadable, message));
            continue;
        }
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                result.problems.push(ModelProblem::new(&file, ProblemKind::Unreadable, format!("cannot read: {e}")));
                continue;
            }
        };
        let hash = hex(&Sha256::digest(&bytes));
        // Unchanged file: keep the previous parse (and its load time) as is.
        if let Some(prev) = previous.apps.values().find(|m| m.file == file && m.hash == hash) {
            candidates.push(prev.clone());
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        match parse_model(&text, env) {
            Ok(model) => candidates.push(LoadedModel { model, file, hash, loaded_at_ms }),
            Err(err) => {
                let mut problem = ModelProblem::from_model_error(&file, err);
                // Name the service when the file got far enough to say it, so
                // `GET /api/apps/{name}` can point at this problem.
                problem.service = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string));
                result.problems.push(problem);
            }
        }
    }

    let candidates = drop_duplicates(candidates, previous, &mut result.problems);
    let mut apps: BTreeMap<String, LoadedModel> = candidates.into_iter().map(|m| (m.model.name.clone(), m)).collect();
    drop_broken_dependencies(&mut apps, &mut result.problems);
    result.apps = apps;
    result
}

/// What loading `candidate` (a new or replaced model) would do to the live set, decided
/// in memory before anything is written: the problems the cross-file checks would
/// report (duplicates, unknown dependencies, cycles), whether they hit the candidate or
/// push out a service that is loaded now. Empty: the folder scan will load it as is.
pub fn problems_if_loaded(live: &Snapshot, candidate: LoadedModel) -> Vec<ModelProblem> {
    let mut candidates: Vec<LoadedModel> = live
        .apps
        .values()
        .filter(|m| m.model.name != candidate.model.name && m.file != candidate.file)
        .cloned()
        .collect();
    candidates.push(candidate);
    let mut problems = Vec::new();
    let kept = drop_duplicates(candidates, live, &mut problems);
    let mut apps: BTreeMap<String, LoadedModel> = kept.into_iter().map(|m| (m.model.name.clone(), m)).collect();
    drop_broken_dependencies(&mut apps, &mut problems);
    problems
}

/// Keeps one model per name and per id. The one already live keeps its place (an
/// added copy must not evict a running service); otherwise the first file by name wins.
fn drop_duplicates(
    mut candidates: Vec<LoadedModel>,
    previous: &Snapshot,
    problems: &mut Vec<ModelProblem>,
) -> Vec<LoadedModel> {
    candidates.sort_by_key(|m| {
        let was_live = previous.apps.get(&m.model.name).is_some_and(|p| p.file == m.file);
        (!was_live, m.file.clone())
    });
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut ids: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut kept = Vec::new();
    for m in candidates {
        if let Some(winner) = names.get(&m.model.name) {
            let mut p = ModelProblem::new(
                &m.file,
                ProblemKind::DuplicateName,
                format!(
                    "service name {:?} is already defined by {}; rename one of them",
                    m.model.name,
                    winner.display()
                ),
            );
            p.service = Some(m.model.name.clone());
            p.key = Some("name".into());
            problems.push(p);
            continue;
        }
        if let Some(winner) = ids.get(&m.model.id) {
            let mut p = ModelProblem::new(
                &m.file,
                ProblemKind::DuplicateId,
                format!("id {:?} is already used by {}; ids must be unique", m.model.id, winner.display()),
            );
            p.service = Some(m.model.name.clone());
            p.key = Some("id".into());
            problems.push(p);
            continue;
        }
        names.insert(m.model.name.clone(), m.file.clone());
        ids.insert(m.model.id.clone(), m.file.clone());
        kept.push(m);
    }
    kept
}

/// Removes models naming unknown services and models on `run_dep` cycles, repeating
/// until stable (removing one can make its dependants' references unknown).
fn drop_broken_dependencies(apps: &mut BTreeMap<String, LoadedModel>, problems: &mut Vec<ModelProblem>) {
    loop {
        let names: BTreeSet<String> = apps.keys().cloned().collect();
        let mut removed_any = false;
        let unknown: Vec<(String, &'static str, String)> = apps
            .values()
            .filter_map(|m| {
                m.model
                    .references()
                    .find(|(_, dep)| !names.contains(*dep))
                    .map(|(key, dep)| (m.model.name.clone(), key, dep.to_string()))
            })
            .collect();
        for (name, key, dep) in unknown {
            let m = apps.remove(&name).expect("name came from apps");
            let mut p = ModelProblem::new(
                &m.file,
                ProblemKind::UnknownDependency,
                format!(
                    "{key} names {dep:?}, which is not a loaded service (see its own problem, or add a model for it)"
                ),
            );
            p.service = Some(name);
            p.key = Some(key.to_string());
            problems.push(p);
            removed_any = true;
        }
        let edges: BTreeMap<&str, Vec<&str>> = apps
            .iter()
            .map(|(n, m)| (n.as_str(), m.model.run_data.run_dep.iter().map(String::as_str).collect()))
            .collect();
        let cycles: Vec<Vec<String>> = graph::cycles(&edges);
        for cycle in cycles {
            let files: Vec<String> = cycle.iter().map(|n| apps[n].file.display().to_string()).collect();
            let path = cycle.iter().chain(cycle.first()).cloned().collect::<Vec<_>>().join(" -> ");
            let mut p = ModelProblem::new(
                &apps[&cycle[0]].file,
                ProblemKind::DependencyCycle,
                format!("run_dep cycle: {path} (files: {}); break one run_dep edge", files.join(", ")),
            );
            p.service = Some(cycle[0].clone());
            p.key = Some("run_data.run_dep".into());
            for name in &cycle {
                apps.remove(name);
            }
            p.cycle = cycle;
            problems.push(p);
            removed_any = true;
        }
        if !removed_any {
            return;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
