//! Writing a backup archive: walk the trees first (the plan gives the manifest its
//! counts), then stream `manifest.json`, `app/`, `manager/` and the store snapshot
//! through tar and gzip into a file opened exclusively with mode 0600 (the store holds
//! the admin password hash and token hashes). Blocking code: callers use spawn_blocking.
//!
//! Not archived: sockets, FIFOs and devices (counted as skipped), and the excluded
//! directories (the backup folder and the host's data folder when they sit inside a
//! tree). Symlinks are stored as links, never followed.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header, HeaderMode};

use super::manifest::{MANIFEST_NAME, Manifest, STORE_ENTRY, TreeStats};

/// One thing to archive, relative to its tree's root.
#[derive(Debug)]
pub struct Planned {
    pub rel: PathBuf,
    pub meta: Metadata,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
}

/// A tree to archive under `prefix/`.
#[derive(Debug)]
pub struct Tree {
    pub prefix: &'static str,
    pub root: PathBuf,
    /// The root's own metadata (its mode is restored); `None` when it does not exist.
    pub root_meta: Option<Metadata>,
    pub entries: Vec<Planned>,
    pub stats: TreeStats,
}

/// Walks `root` (its own symlink followed, none below it), sorted by name so two
/// backups of the same tree list the same way.
pub fn plan_tree(prefix: &'static str, root: &Path, exclude: &[PathBuf]) -> io::Result<Tree> {
    let mut tree = Tree {
        prefix,
        root: root.to_path_buf(),
        root_meta: None,
        entries: Vec::new(),
        stats: TreeStats { source: root.display().to_string(), ..TreeStats::default() },
    };
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => tree.root_meta = Some(meta),
        Ok(_) => return Err(io::Error::other(format!("{} is not a directory", root.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(tree),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", root.display()))),
    }
    walk(root, Path::new(""), exclude, &mut tree)?;
    Ok(tree)
}

fn walk(root: &Path, rel: &Path, exclude: &[PathBuf], tree: &mut Tree) -> io::Result<()> {
    let dir = root.join(rel);
    let read = std::fs::read_dir(&dir).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let mut names: Vec<_> = read.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let path = root.join(&rel);
        if exclude.contains(&path) {
            continue;
        }
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            // Deleted since the listing (a service's temp file): nothing to keep.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            tree.stats.dirs += 1;
            tree.entries.push(Planned { rel: rel.clone(), meta, kind: Kind::Dir });
            walk(root, &rel, exclude, tree)?;
        } else if kind.is_file() {
            tree.stats.files += 1;
            tree.stats.bytes += meta.len();
            tree.entries.push(Planned { rel, meta, kind: Kind::File });
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path)?;
            tree.stats.symlinks += 1;
            tree.entries.push(Planned { rel, meta, kind: Kind::Symlink(target) });
        } else {
            // Sockets (a service's control socket), FIFOs, devices: not data to restore.
            debug_assert!(kind.is_socket() || kind.is_fifo() || kind.is_block_device() || kind.is_char_device());
            tree.stats.skipped += 1;
        }
    }
    Ok(())
}

/// Hex SHA-256 and size of a file.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let bytes = io::copy(&mut file, &mut hasher)?;
    Ok((hex(&hasher.finalize()), bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the archive to `dest` (created exclusively, mode 0600) and syncs it.
pub fn write_archive(dest: &Path, manifest: &Manifest, trees: &[Tree], store_snapshot: &Path) -> io::Result<u64> {
    let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(dest)?;
    let gz = flate2::write::GzEncoder::new(io::BufWriter::new(file), flate2::Compression::new(6));
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);

    let json = serde_json::to_vec_pretty(manifest).map_err(io::Error::other)?;
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::Regular);
    header.set_mode(0o600);
    header.set_size(json.len() as u64);
    header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    tar.append_data(&mut header, MANIFEST_NAME, json.as_slice())?;

    for tree in trees {
        append_dir_header(&mut tar, tree.prefix, tree.root_meta.as_ref())?;
        for planned in &tree.entries {
            let name = Path::new(tree.prefix).join(&planned.rel);
            let mut header = Header::new_gnu();
            header.set_metadata_in_mode(&planned.meta, HeaderMode::Complete);
            match &planned.kind {
                Kind::Dir => tar.append_data(&mut header, &name, io::empty())?,
                Kind::Symlink(target) => tar.append_link(&mut header, &name, target)?,
                Kind::File => append_file(&mut tar, header, &name, &tree.root.join(&planned.rel), planned.meta.len())?,
            }
        }
    }

    let meta = std::fs::metadata(store_snapshot)?;
    let mut header = Header::new_gnu();
    header.set_metadata_in_mode(&meta, HeaderMode::Complete);
    header.set_mode(0o600);
    append_file(&mut tar, header, Path::new(STORE_ENTRY), store_snapshot, meta.len())?;

    let gz = tar.into_inner()?;
    let mut writer = gz.finish()?;
    writer.flush()?;
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

fn append_dir_header<W: Write>(tar: &mut tar::Builder<W>, name: &str, meta: Option<&Metadata>) -> io::Result<()> {
    let mut header = Header::new_gnu();
    match meta {
        Some(meta) => header.set_metadata_in_mode(meta, HeaderMode::Complete),
        None => {
            header.set_entry_type(EntryType::Directory);
            header.set_mode(0o755);
            header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
        }
    }
    header.set_size(0);
    tar.append_data(&mut header, name, io::empty())
}

/// Exactly `size` bytes of the file as planned: a file that grew since the walk is cut,
/// one that shrank is padded with zeros, so the header never lies (tar would otherwise
/// write a corrupt archive). Opened without following symlinks and without blocking,
/// in case the path was swapped for a link or a FIFO meanwhile.
fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    mut header: Header,
    name: &Path,
    path: &Path,
    size: u64,
) -> io::Result<()> {
    let flags = nix::fcntl::OFlag::O_NOFOLLOW.bits() | nix::fcntl::OFlag::O_NONBLOCK.bits();
    let file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(file) if file.metadata()?.is_file() => file,
        Ok(_) => return Ok(()),
        // Removed since the walk: it simply is not in this backup.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    header.set_entry_type(EntryType::Regular);
    header.set_size(size);
    let data = file.take(size).chain(io::repeat(0)).take(size);
    tar.append_data(&mut header, name, data)
}
