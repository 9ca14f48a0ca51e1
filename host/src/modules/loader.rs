//! Loading one module library. abi_stable caches one root module per type and dlopen
//! dedups by path and inode, so each load goes through a fresh copy of the file
//! (`<data_dir>/modules/loaded/<stem>-<hash>-<generation>.so`), unlinked once loaded.
//! Libraries are never unloaded: a replaced module's old code stays mapped (counted as
//! a leaked generation). Every failure becomes one line naming what is wrong.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use abi_stable::library::{LibraryError, lib_header_from_path};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RResult;
use plugin_api::ffi::{HostObj_TO, ModuleBox, ModuleRootRef};
use serde::Serialize;
use utoipa::ToSchema;

use super::host_services::HostServices;

/// A route a module declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RouteInfo {
    /// `GET`, `POST`, …, or `*` for every method.
    pub method: String,
    /// Relative to `/api/module/{name}` (or to the root of the module's listener).
    pub path: String,
    pub summary: String,
    /// The module authenticates these requests itself; the token gate lets them in.
    pub public: bool,
    /// Served on the admin API under `/api/module/{name}`.
    pub on_admin: bool,
    /// Served on the module's own listener (`modules.listeners`).
    pub on_listener: bool,
    /// The route's own handler timeout, when it declares one.
    pub timeout_ms: Option<u64>,
}

/// A module in service.
pub struct LoadedModule {
    pub name: String,
    pub version: String,
    pub description: String,
    pub api_level: u32,
    pub routes: Vec<RouteInfo>,
    pub file: PathBuf,
    /// SHA-256 of the library file, to reload only what changed.
    pub hash: String,
    pub generation: u64,
    pub object: ModuleBox,
    /// Path → (method, route index) list.
    pub router: matchit::Router<Vec<(String, usize)>>,
    pub requests: AtomicU64,
    pub panics: AtomicU64,
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule").field("name", &self.name).field("generation", &self.generation).finish()
    }
}

/// Loads `file` as generation `generation`. `services` builds the host services for
/// the module once its name is known.
pub fn load(
    file: &Path,
    hash: &str,
    copy_dir: &Path,
    generation: u64,
    configs: &std::collections::BTreeMap<String, serde_json::Value>,
    services: &dyn Fn(&str) -> HostServices,
) -> Result<Arc<LoadedModule>, String> {
    check_elf(file)?;
    std::fs::create_dir_all(copy_dir).map_err(|e| format!("cannot create {}: {e}", copy_dir.display()))?;
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("module");
    let copy = copy_dir.join(format!("{stem}-{}-{generation}.so", &hash[..12.min(hash.len())]));
    std::fs::copy(file, &copy).map_err(|e| format!("cannot copy to {}: {e}", copy.display()))?;
    let root = lib_header_from_path(&copy).and_then(|header| header.init_root_module::<ModuleRootRef>());
    // Mapped (or failed): the copy is no longer needed on disk either way.
    let _ = std::fs::remove_file(&copy);
    let root = root.map_err(describe)?;
    // The manifest comes first: the module is checked before its init runs, and its
    // services, config and store are named after the module, whatever the file is called.
    let manifest = (root.manifest())();
    let name = manifest.name.to_string();
    if !crate::model::is_valid_service_name(&name) {
        return Err(format!("module name {name:?} is not valid (letters, digits, '-', '_', '.')"));
    }
    if let Some(r) = routes_without_mount(&manifest) {
        return Err(format!("module {name}: route {r} is mounted nowhere (neither the admin API nor a listener)"));
    }
    if manifest.api_level > plugin_api::API_LEVEL {
        return Err(format!(
            "module {name} needs host api level {} but this host offers {}",
            manifest.api_level,
            plugin_api::API_LEVEL
        ));
    }
    let routes: Vec<RouteInfo> = manifest
        .routes
        .iter()
        .map(|r| RouteInfo {
            method: r.method.to_uppercase(),
            path: r.path.to_string(),
            summary: r.summary.to_string(),
            public: r.public,
            on_admin: r.mount & 1 != 0,
            on_listener: r.mount & 2 != 0,
            timeout_ms: Some(r.timeout_ms).filter(|ms| *ms > 0),
        })
        .collect();
    let router = build_router(&routes).map_err(|e| format!("module {name}: {e}"))?;
    let config = configs.get(&name).cloned().unwrap_or(serde_json::Value::Null);
    let host = HostObj_TO::from_value(services(&name), TD_Opaque);
    let object = match (root.init())(host, config.to_string().into()) {
        RResult::ROk(object) => object,
        RResult::RErr(e) => return Err(format!("module {name}: its init failed: {e}")),
    };
    Ok(Arc::new(LoadedModule {
        name,
        version: manifest.version.to_string(),
        description: manifest.description.to_string(),
        api_level: manifest.api_level,
        routes,
        file: file.to_path_buf(),
        hash: hash.to_string(),
        generation,
        object,
        router,
        requests: AtomicU64::new(0),
        panics: AtomicU64::new(0),
    }))
}

fn routes_without_mount(manifest: &plugin_api::ffi::FfiManifest) -> Option<String> {
    manifest.routes.iter().find(|r| r.mount & 3 == 0).map(|r| format!("{} {}", r.method, r.path))
}

/// Refuses files that are not complete 64-bit ELF objects before dlopen sees them: a
/// truncated library can map (its headers are at the front) and then fault when code
/// beyond the end is touched, which would take the host down.
fn check_elf(file: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut header = [0u8; 64];
    let len = std::fs::metadata(file).map_err(|e| format!("cannot read: {e}"))?.len();
    let mut f = std::fs::File::open(file).map_err(|e| format!("cannot read: {e}"))?;
    if f.read_exact(&mut header).is_err() || &header[..4] != b"\x7fELF" {
        return Err("not a loadable shared library (not an ELF file)".into());
    }
    if header[4] != 2 || header[5] != 1 {
        return Err("not a loadable shared library (not a 64-bit little-endian ELF file)".into());
    }
    let u64_at = |o: usize| u64::from_le_bytes(header[o..o + 8].try_into().unwrap_or_default());
    let u16_at = |o: usize| u64::from(u16::from_le_bytes(header[o..o + 2].try_into().unwrap_or_default()));
    // Section headers sit at the end of the file: they bound its expected size.
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3A), u16_at(0x3C));
    let expected = shoff.saturating_add(shentsize.saturating_mul(shnum));
    if expected > len {
        return Err(format!(
            "not a loadable shared library (truncated: {len} bytes, its ELF header describes {expected})"
        ));
    }
    Ok(())
}

/// Routes by path; several methods may share one path. Overlapping patterns (the same
/// path twice for one method, or `/a/{x}` next to `/a/{y}`) are refused.
fn build_router(routes: &[RouteInfo]) -> Result<matchit::Router<Vec<(String, usize)>>, String> {
    let mut by_path: Vec<(String, Vec<(String, usize)>)> = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        if !r.path.starts_with('/') {
            return Err(format!("route {:?} must start with '/'", r.path));
        }
        match by_path.iter_mut().find(|(p, _)| *p == r.path) {
            Some((_, methods)) if methods.iter().any(|(m, _)| *m == r.method) => {
                return Err(format!("route {} {} is declared twice", r.method, r.path));
            }
            Some((_, methods)) => methods.push((r.method.clone(), i)),
            None => by_path.push((r.path.clone(), vec![(r.method.clone(), i)])),
        }
    }
    let mut router = matchit::Router::new();
    for (path, methods) in by_path {
        router.insert(path.clone(), methods).map_err(|e| format!("route {path} conflicts: {e}"))?;
    }
    Ok(router)
}

/// One line per failure kind, never abi_stable's multi-page layout report.
fn describe(error: LibraryError) -> String {
    match error {
        LibraryError::OpenError { err, .. } => {
            format!("not a loadable shared library ({})", first_line(&err.to_string()))
        }
        LibraryError::GetSymbolError { .. } => {
            "not an Apollo module: it exports no abi_stable root module (build it with plugin_api::export_module!)"
                .into()
        }
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => format!(
            "built against plugin-api {actual_version} but this host has plugin-api {expected_version}; rebuild it against {expected_version}"
        ),
        LibraryError::AbiInstability(_) => format!(
            "its plugin-api types do not match this host's (plugin-api {}); rebuild it against this version",
            plugin_api::ABI_VERSION
        ),
        LibraryError::InvalidAbiHeader(header) => {
            format!(
                "built with an incompatible abi_stable (header {header:?}); rebuild it against plugin-api {}",
                plugin_api::ABI_VERSION
            )
        }
        LibraryError::RootModule { err, .. } => format!("its root module failed: {}", first_line(&err.to_string())),
        other => first_line(&other.to_string()),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().chars().take(300).collect()
}
