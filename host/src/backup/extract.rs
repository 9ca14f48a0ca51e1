//! Unpacking an archive into two fresh staging directories, refusing anything that
//! could write outside them. Checks, in order, for every entry: the path is relative
//! with no `..` (the seed's restore wrote wherever an entry pointed); it lies under
//! `app/`, `manager/` or is the store snapshot; it is a file, directory or symlink.
//!
//! Symlinks are created last, after every file and directory, and never below another
//! symlink: an archive cannot plant `app/x -> /etc` and then write `app/x/passwd`.
//! The store snapshot is not unpacked: only its checksum is verified (see `restore.rs`
//! for why the live store is not replaced). Blocking code: callers use spawn_blocking.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::EntryType;

use super::BackupError;
use super::archive::hex;
use super::manifest::{Manifest, STORE_ENTRY, parse_entry};

/// What was unpacked.
#[derive(Debug)]
pub struct Extracted {
    pub manifest: Manifest,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Mode of `app/` and `manager/` themselves, applied to the staging roots.
    pub app_mode: Option<u32>,
    pub manager_mode: Option<u32>,
}

/// The staging directories (already created, empty) for `app/` and `manager/`.
#[derive(Debug, Clone, Copy)]
pub struct Targets<'a> {
    pub app: &'a Path,
    pub manager: &'a Path,
}

/// A path inside the archive made safe: relative, no `..`, no root, `.` dropped.
pub fn safe_relative(path: &Path) -> Result<PathBuf, String> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(format!("entry {:?} leaves the archive's root (`..` or an absolute path)", path.display()));
            }
        }
    }
    if clean.as_os_str().is_empty() {
        return Err("an entry has an empty path".into());
    }
    Ok(clean)
}

/// Unpacks `archive` into `targets`. On error the staging directories hold a partial
/// tree that the caller removes; nothing else was touched.
pub fn extract(id: &str, archive: &Path, targets: Targets<'_>) -> Result<Extracted, BackupError> {
    let refuse = |reason: String| BackupError::Refused { id: id.to_string(), reason };
    let corrupt = |e: io::Error| refuse(format!("corrupt archive: {e}"));
    let file = std::fs::File::open(archive).map_err(BackupError::io(format!("open {}", archive.display())))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    let mut entries = tar.entries().map_err(corrupt)?;
    let first = entries.next().ok_or_else(|| refuse("empty archive".into()))?.map_err(corrupt)?;
    let manifest = parse_entry(first).map_err(refuse)?;

    let mut out = Extracted { manifest, files: 0, dirs: 0, symlinks: 0, app_mode: None, manager_mode: None };
    let mut store_sha = None;
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    let mut links: Vec<(PathBuf, PathBuf, PathBuf)> = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(corrupt)?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue; // pax metadata; the tar reader already applied what matters
        }
        let raw = entry.path().map_err(corrupt)?.into_owned();
        let rel = safe_relative(&raw).map_err(&refuse)?;
        if rel == Path::new(STORE_ENTRY) && matches!(kind, EntryType::Regular | EntryType::Continuous) {
            let mut hasher = Sha256::new();
            io::copy(&mut entry, &mut hasher).map_err(corrupt)?;
            store_sha = Some(hex(&hasher.finalize()));
            continue;
        }
        let mut parts = rel.components();
        let top = parts.next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
        let rest = parts.as_path().to_path_buf();
        let root = match top.as_str() {
            "app" => targets.app,
            "manager" => targets.manager,
            _ => return Err(refuse(format!("unexpected entry {:?} (only app/, manager/ and {STORE_ENTRY})", raw))),
        };
        let mode = entry.header().mode().map_err(corrupt)? & 0o777;
        if rest.as_os_str().is_empty() {
            if kind != EntryType::Directory {
                return Err(refuse(format!("{top}/ is not a directory in the archive")));
            }
            *(if top == "app" { &mut out.app_mode } else { &mut out.manager_mode }) = Some(mode);
            continue;
        }
        let dest = root.join(&rest);
        let context = || format!("restore {}", dest.display());
        match kind {
            EntryType::Directory => {
                std::fs::create_dir_all(&dest).map_err(BackupError::io(context()))?;
                dir_modes.push((dest, mode));
                out.dirs += 1;
            }
            EntryType::Regular | EntryType::Continuous => {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(BackupError::io(context()))?;
                }
                // create_new + O_NOFOLLOW: a duplicate entry or anything already there
                // is an error, never an overwrite or a write through a link.
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                    .open(&dest)
                    .map_err(|e| match e.kind() {
                        io::ErrorKind::AlreadyExists => refuse(format!("entry {:?} appears twice", raw)),
                        _ => BackupError::Io { context: context(), source: e },
                    })?;
                let size = entry.size();
                let copied = io::copy(&mut (&mut entry).take(size), &mut file).map_err(corrupt)?;
                if copied != size {
                    return Err(refuse(format!("entry {:?} is truncated", raw)));
                }
                file.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(BackupError::io(context()))?;
                if let Ok(mtime) = entry.header().mtime() {
                    let _ = file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime));
                }
                out.files += 1;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(corrupt)?
                    .ok_or_else(|| refuse(format!("symlink {:?} has no target", raw)))?
                    .into_owned();
                links.push((root.to_path_buf(), rest, target));
            }
            other => {
                return Err(refuse(format!(
                    "entry {:?} is a {other:?}; backups hold only files, directories and symlinks",
                    raw
                )));
            }
        }
    }

    for (root, rest, target) in links {
        let dest = root.join(&rest);
        if let Some(parent) = rest.parent() {
            ensure_no_symlink_on_path(&root, parent).map_err(&refuse)?;
            std::fs::create_dir_all(root.join(parent))
                .map_err(BackupError::io(format!("restore {}", dest.display())))?;
        }
        std::os::unix::fs::symlink(&target, &dest).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => refuse(format!("symlink {:?} collides with another entry", dest.display())),
            _ => BackupError::Io { context: format!("restore {}", dest.display()), source: e },
        })?;
        out.symlinks += 1;
    }
    // Deepest first, after the files are in: a read-only directory can no longer be filled.
    dir_modes.sort_by_key(|(path, _)| std::cmp::Reverse(path.components().count()));
    for (dir, mode) in dir_modes {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
            .map_err(BackupError::io(format!("restore {}", dir.display())))?;
    }

    match (store_sha, &out.manifest.store.sha256) {
        (Some(found), expected) if found != *expected => {
            Err(refuse(format!("{STORE_ENTRY} checksum {found} does not match the manifest's {expected}")))
        }
        (None, _) => Err(refuse(format!("{STORE_ENTRY} is missing (truncated archive?)"))),
        _ => Ok(out),
    }
}

/// Refuses when any directory between `root` and `root/rel` is a symlink.
fn ensure_no_symlink_on_path(root: &Path, rel: &Path) -> Result<(), String> {
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!("an entry would be created below the symlink {:?}", at.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_absolute_paths_are_refused() {
        assert!(safe_relative(Path::new("../escape")).is_err());
        assert!(safe_relative(Path::new("app/../../escape")).is_err());
        assert!(safe_relative(Path::new("/etc/passwd")).is_err());
        assert!(safe_relative(Path::new("")).is_err());
        assert_eq!(safe_relative(Path::new("./app/x")).unwrap(), PathBuf::from("app/x"));
    }
}
