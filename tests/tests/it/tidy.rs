//! Rules ARCHITECTURE.md and the README state, checked by `cargo test` (rust-analyzer's
//! `tidy.rs` idea): every Rust file opens with a `//!` line saying its role, and every
//! config key the code knows is documented in a README table, and every documented key
//! is one the code knows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use apollo_host::config::Config;
use serde_json::{Value, json};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The `.rs` files of the workspace's own crates (not build output, not vendored code).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !(name == "target" || name.starts_with('.') || name == "node_modules" || name == "apollo-data") {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_its_role() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["host", "plugin-api", "modules", "examples", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 100, "found only {} files: is the walk right?", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap_or_default().starts_with("//!"))
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a `//!` role line at the top:\n  {}", missing.join("\n  "));
}

/// Config keys whose members are names the operator chooses (module names, task ids):
/// documented as `key.<name>`, not member by member.
const OPEN_MAPS: &[&str] = &["modules.config", "tasks"];

/// Every leaf key of the config, as dotted paths.
fn config_keys() -> BTreeSet<String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(members) if !OPEN_MAPS.contains(&prefix) && !members.is_empty() => {
                for (key, child) in members {
                    let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                    walk(&path, child, out);
                }
            }
            _ => {
                out.insert(prefix.to_string());
            }
        }
    }
    let mut keys = BTreeSet::new();
    walk("", &serde_json::to_value(Config::default()).unwrap(), &mut keys);
    keys
}

/// The keys named in the first cell of the README's configuration tables: ``| `log.enable_caller` /
/// `enable_function` |`` names `log.enable_caller` and `log.enable_function` (a bare
/// name takes the section of the cell's first key).
fn documented_keys(readme: &str) -> BTreeSet<String> {
    let section =
        readme.split("\n## ").find(|s| s.starts_with("Configuration")).expect("the README has a Configuration section");
    let mut keys = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.trim_start_matches('|').split(" | ").next().unwrap_or_default();
        let mut parent = String::new();
        for (i, name) in cell.split('`').skip(1).step_by(2).enumerate() {
            let key = if name.contains('.') || i == 0 { name.to_string() } else { format!("{parent}{name}") };
            if i == 0 {
                parent = key.rfind('.').map(|d| key[..=d].to_string()).unwrap_or_default();
            }
            keys.insert(key.trim_end_matches(".<name>").trim_end_matches(".<id>").to_string());
        }
    }
    keys
}

/// Keys the serialised config leaves out (secrets, members of open maps) are known when
/// the parser takes some value for them without an unknown-key warning, or refuses a
/// value naming the key (an unknown key is only ever warned about).
fn parser_knows(key: &str) -> bool {
    let candidates = [json!("x"), json!(1), json!(true), json!([]), json!({})];
    candidates.iter().any(|value| {
        let mut tree = value.clone();
        for part in key.rsplit('.') {
            tree = json!({ part: tree });
        }
        match Config::parse(&tree.to_string(), "tidy.pig") {
            Ok(loaded) => loaded.warnings.is_empty(),
            Err(refused) => refused.to_string().contains(key),
        }
    })
}

#[test]
fn the_readme_config_table_matches_the_config_sections() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let documented = documented_keys(&readme);
    let known = config_keys();
    let covered = |key: &str| {
        documented.contains(key)
            || documented.iter().any(|d| key.starts_with(&format!("{d}.")))
            || OPEN_MAPS.iter().any(|m| key == *m && documented.contains(*m))
    };
    let undocumented: Vec<&String> = known.iter().filter(|k| !covered(k)).collect();
    assert!(undocumented.is_empty(), "config keys missing from the README's Configuration tables: {undocumented:?}");
    let unknown: Vec<&String> = documented
        .iter()
        .filter(|d| !known.iter().any(|k| k == *d || k.starts_with(&format!("{d}."))) && !parser_knows(d))
        .collect();
    assert!(unknown.is_empty(), "README documents config keys the code does not have: {unknown:?}");
}
