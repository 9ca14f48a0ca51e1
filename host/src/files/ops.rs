//! The file manager's operations on one root: list, stat, open for download, mkdir,
//! move and remove (upload is in `upload.rs`). Each one resolves the user's path
//! (`resolve.rs`, which refuses escapes with a clear reason), then re-walks the answer
//! from an open root handle without following symlinks (`dir.rs`), so nothing outside
//! the root is ever read, written, listed or deleted.
//!
//! Everything here is blocking `std::fs`: the HTTP edge runs it on the blocking pool.
//! Not done here: size limits and streaming (upload), HTTP (api/files.rs).

use std::ffi::OsString;
use std::fs::File;
use std::path::Path;

use nix::fcntl::{RenameFlags, renameat2};
use nix::libc;

use super::dir::Dir;
use super::entry::{EntryKind, FileEntry, Listing, Made, Removed};
use super::error::FileError;
use super::resolve::{Leaf, Resolved, Resolver};

/// The file manager over one root. Open one per request (cheap: one canonicalize and
/// one open), so it never holds a stale handle to a root that was replaced.
#[derive(Debug)]
pub struct FileManager {
    resolver: Resolver,
    root: Dir,
}

impl FileManager {
    pub fn open(root: &Path) -> Result<Self, FileError> {
        // Without /proc every child lookup through a handle would fail as "not found",
        // which would be a misleading answer: say what is missing instead.
        if !Path::new("/proc/self/fd").is_dir() {
            return Err(FileError::Internal("the file manager needs /proc (it opens paths through handles)".into()));
        }
        let resolver = Resolver::new(root)?;
        let dir = Dir::open_root(resolver.root())
            .map_err(|e| FileError::Internal(format!("opening the root {}: {e}", root.display())))?;
        Ok(Self { resolver, root: dir })
    }

    pub(super) fn resolve(&self, path: &str, leaf: Leaf) -> Result<Resolved, FileError> {
        Ok(self.resolver.resolve(path, leaf)?)
    }

    pub(super) fn walk(&self, what: &str, r: &Resolved, rel: &Path) -> Result<Dir, FileError> {
        self.root.walk(rel).map_err(|e| FileError::io(what, &r.rel, e))
    }

    /// A directory's entries sorted by name, at most `limit` of them. Symlinks are listed
    /// as such (their targets are not followed, whether inside or outside).
    pub fn list(&self, path: &str, limit: usize) -> Result<Listing, FileError> {
        let r = self.resolve(path, Leaf::Follow)?;
        if !r.exists {
            return Err(FileError::NotFound(format!("listing {:?}: no such directory", r.rel)));
        }
        let dir = self.walk("listing", &r, &r.real)?;
        let read = std::fs::read_dir(dir.path()).map_err(|e| FileError::io("listing", &r.rel, e))?;
        let mut entries = Vec::new();
        for item in read {
            let item = item.map_err(|e| FileError::io("listing", &r.rel, e))?;
            // DirEntry::metadata does not follow symlinks (fstatat, AT_SYMLINK_NOFOLLOW).
            let meta = match item.metadata() {
                Ok(m) => m,
                // Removed between readdir and stat: it is simply gone.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(FileError::io("listing", &r.rel, e)),
            };
            let name = item.file_name().to_string_lossy().into_owned();
            let child = if r.rel.is_empty() { name } else { format!("{}/{name}", r.rel) };
            entries.push(FileEntry::new(&child, &meta));
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let truncated = entries.len() > limit;
        entries.truncate(limit);
        Ok(Listing { path: r.rel, entries, truncated })
    }

    /// What a path names (following symlinks that stay inside).
    pub fn stat(&self, path: &str) -> Result<FileEntry, FileError> {
        let r = self.resolve(path, Leaf::Follow)?;
        let Some(leaf) = r.leaf() else {
            let meta = self.root.metadata().map_err(|e| FileError::io("stat", &r.rel, e))?;
            return Ok(FileEntry::new(&r.rel, &meta));
        };
        let parent = self.walk("stat", &r, r.parent())?;
        let meta = std::fs::symlink_metadata(parent.child(&leaf)).map_err(|e| FileError::io("stat", &r.rel, e))?;
        Ok(FileEntry::new(&r.rel, &meta))
    }

    /// Opens a regular file for download.
    pub fn open_read(&self, path: &str) -> Result<(File, FileEntry), FileError> {
        let r = self.resolve(path, Leaf::Follow)?;
        let Some(leaf) = r.leaf() else {
            return Err(FileError::BadRequest("the root is a directory; list it with GET /api/files".into()));
        };
        let parent = self.walk("reading", &r, r.parent())?;
        let file = parent.open_read(&leaf).map_err(|e| FileError::io("reading", &r.rel, e))?;
        let meta = file.metadata().map_err(|e| FileError::io("reading", &r.rel, e))?;
        match EntryKind::of(&meta) {
            EntryKind::File => Ok((file, FileEntry::new(&r.rel, &meta))),
            EntryKind::Dir => {
                Err(FileError::BadRequest(format!("{:?} is a directory; list it with GET /api/files", r.rel)))
            }
            _ => Err(FileError::BadRequest(format!("{:?} is not a regular file", r.rel))),
        }
    }

    /// `mkdir -p`: creates every missing directory; an existing directory is fine.
    pub fn mkdir(&self, path: &str) -> Result<Made, FileError> {
        let r = self.resolve(path, Leaf::Follow)?;
        let mut dir = self.walk("creating", &r, Path::new(""))?;
        let mut created = false;
        for name in r.real.components().map(|c| c.as_os_str()) {
            dir = match dir.child_dir(name) {
                Ok(d) => d,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    match std::fs::create_dir(dir.child(name)) {
                        Ok(()) => created = true,
                        // Made by someone else meanwhile: just as good.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(FileError::io("creating", &r.rel, e)),
                    }
                    dir.child_dir(name).map_err(|e| FileError::io("creating", &r.rel, e))?
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                    return Err(FileError::Conflict(format!(
                        "creating {:?}: a file is in the way (a component exists and is not a directory)",
                        r.rel
                    )));
                }
                Err(e) => return Err(FileError::io("creating", &r.rel, e)),
            };
        }
        if created {
            // The new entry's name lives in its parent: flush that, not just the child.
            let parent = self.walk("creating", &r, r.parent())?;
            parent.sync().map_err(|e| FileError::io("creating", &r.rel, e))?;
        }
        let meta = dir.metadata().map_err(|e| FileError::io("creating", &r.rel, e))?;
        Ok(Made { entry: FileEntry::new(&r.rel, &meta), created })
    }

    /// Renames `from` to `to` (the full new path, not a directory to move into). Both ends
    /// are confined; a symlink is moved as a link. An existing `to` is refused unless
    /// `overwrite`, and then replaced atomically (rename(2) rules: a file by a file, an
    /// empty directory by a directory).
    pub fn rename(&self, from: &str, to: &str, overwrite: bool) -> Result<FileEntry, FileError> {
        let src = self.resolve(from, Leaf::NoFollow)?;
        let dst = self.resolve(to, Leaf::NoFollow)?;
        let (Some(src_leaf), Some(dst_leaf)) = (src.leaf(), dst.leaf()) else {
            return Err(FileError::Forbidden("the root itself cannot be moved or replaced".into()));
        };
        if !src.exists {
            return Err(FileError::NotFound(format!("moving {:?}: no such file or directory", src.rel)));
        }
        let src_dir = self.walk("moving", &src, src.parent())?;
        let dst_dir = self.walk("moving to", &dst, dst.parent())?;
        let meta =
            std::fs::symlink_metadata(src_dir.child(&src_leaf)).map_err(|e| FileError::io("moving", &src.rel, e))?;
        if src.real == dst.real {
            return Ok(FileEntry::new(&dst.rel, &meta));
        }
        if meta.is_dir() && dst.real.starts_with(&src.real) {
            return Err(FileError::BadRequest(format!(
                "cannot move the directory {:?} into itself ({:?})",
                src.rel, dst.rel
            )));
        }
        if dst.exists && !overwrite {
            return Err(FileError::Conflict(format!("{:?} exists; pass \"overwrite\": true to replace it", dst.rel)));
        }
        rename_at(&src_dir, &src_leaf, &dst_dir, &dst_leaf, overwrite).map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST) => {
                FileError::Conflict(format!("{:?} exists; pass \"overwrite\": true to replace it", dst.rel))
            }
            _ => FileError::io("moving to", &dst.rel, e),
        })?;
        for dir in [&src_dir, &dst_dir] {
            dir.sync().map_err(|e| FileError::io("moving", &src.rel, e))?;
        }
        let meta =
            std::fs::symlink_metadata(dst_dir.child(&dst_leaf)).map_err(|e| FileError::io("moving", &dst.rel, e))?;
        Ok(FileEntry::new(&dst.rel, &meta))
    }

    /// Removes a file or symlink (never its target), or a directory: empty, or with
    /// everything in it when `recursive`. The root itself is refused.
    pub fn remove(&self, path: &str, recursive: bool) -> Result<Removed, FileError> {
        let r = self.resolve(path, Leaf::NoFollow)?;
        let Some(leaf) = r.leaf() else {
            return Err(FileError::Forbidden("refusing to remove the root itself".into()));
        };
        if !r.exists {
            return Err(FileError::NotFound(format!("removing {:?}: no such file or directory", r.rel)));
        }
        let parent = self.walk("removing", &r, r.parent())?;
        let target = parent.child(&leaf);
        let meta = std::fs::symlink_metadata(&target).map_err(|e| FileError::io("removing", &r.rel, e))?;
        let kind = EntryKind::of(&meta);
        let result = match kind {
            // std's remove_dir_all opens the last name with O_NOFOLLOW and descends with
            // openat/unlinkat, so a symlink inside the tree is unlinked, never followed.
            EntryKind::Dir if recursive => std::fs::remove_dir_all(&target),
            EntryKind::Dir => std::fs::remove_dir(&target),
            _ => std::fs::remove_file(&target),
        };
        result.map_err(|e| match e.raw_os_error() {
            Some(libc::ENOTEMPTY | libc::EEXIST) => {
                FileError::Conflict(format!("{:?} is a directory that is not empty; pass recursive=true", r.rel))
            }
            _ => FileError::io("removing", &r.rel, e),
        })?;
        parent.sync().map_err(|e| FileError::io("removing", &r.rel, e))?;
        Ok(Removed { path: r.rel, kind })
    }
}

/// rename(2) relative to two open directories; without `overwrite`, `RENAME_NOREPLACE`
/// makes "refuse if it exists" atomic. File systems without that flag answer EINVAL; the
/// caller has already checked the destination, so plain rename is the fallback there.
fn rename_at(src: &Dir, src_leaf: &OsString, dst: &Dir, dst_leaf: &OsString, overwrite: bool) -> std::io::Result<()> {
    let flags = if overwrite { RenameFlags::empty() } else { RenameFlags::RENAME_NOREPLACE };
    match renameat2(src, src_leaf.as_os_str(), dst, dst_leaf.as_os_str(), flags) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) if !overwrite => std::fs::rename(src.child(src_leaf), dst.child(dst_leaf)),
        Err(errno) => Err(std::io::Error::from(errno)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn setup() -> (tempfile::TempDir, FileManager) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("d/e")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(root.join("d/f.txt"), b"hello").unwrap();
        std::fs::write(dir.path().join("outside/secret"), b"secret").unwrap();
        symlink(dir.path().join("outside"), root.join("out")).unwrap();
        symlink("d", root.join("in")).unwrap();
        let fm = FileManager::open(&root).unwrap();
        (dir, fm)
    }

    #[test]
    fn list_and_stat() {
        let (_t, fm) = setup();
        let top = fm.list("", 100).unwrap();
        let names: Vec<_> = top.entries.iter().map(|e| (e.name.as_str(), e.kind)).collect();
        assert_eq!(names, [("d", EntryKind::Dir), ("in", EntryKind::Symlink), ("out", EntryKind::Symlink)]);
        let d = fm.list("in/", 1).unwrap();
        assert_eq!(d.path, "in");
        assert_eq!((d.entries.len(), d.truncated), (1, true));
        assert_eq!(d.entries[0].path, "in/e");
        let f = fm.stat("in/f.txt").unwrap();
        assert_eq!((f.kind, f.size, f.name.as_str()), (EntryKind::File, 5, "f.txt"));
        assert!(f.mtime.unwrap().ends_with('Z'));
        assert_eq!(fm.stat("").unwrap().kind, EntryKind::Dir);
        assert!(matches!(fm.list("out", 10), Err(FileError::Forbidden(_))));
        assert!(matches!(fm.list("d/f.txt", 10), Err(FileError::BadRequest(_))));
        assert!(matches!(fm.list("nope", 10), Err(FileError::NotFound(_))));
        assert!(matches!(fm.open_read("d"), Err(FileError::BadRequest(_))));
        assert!(matches!(fm.open_read("out/secret"), Err(FileError::Forbidden(_))));
    }

    #[test]
    fn mkdir_move_remove() {
        let (t, fm) = setup();
        let made = fm.mkdir("x/y/z").unwrap();
        assert!(made.created && made.entry.kind == EntryKind::Dir);
        assert!(!fm.mkdir("x/y/z").unwrap().created);
        assert!(matches!(fm.mkdir("d/f.txt/sub"), Err(FileError::BadRequest(_) | FileError::Conflict(_))));
        assert!(matches!(fm.mkdir("out/new"), Err(FileError::Forbidden(_))));

        fm.rename("d/f.txt", "x/y/g.txt", false).unwrap();
        assert_eq!(std::fs::read(fm.resolver.root().join("x/y/g.txt")).unwrap(), b"hello");
        std::fs::write(fm.resolver.root().join("d/h"), b"h").unwrap();
        assert!(matches!(fm.rename("d/h", "x/y/g.txt", false), Err(FileError::Conflict(_))));
        fm.rename("d/h", "x/y/g.txt", true).unwrap();
        assert!(matches!(fm.rename("x", "x/y/inside", false), Err(FileError::BadRequest(_))));
        assert!(matches!(fm.rename("", "z", false), Err(FileError::Forbidden(_))));
        assert!(matches!(fm.rename("x", "out/x", false), Err(FileError::Forbidden(_))));
        assert!(matches!(fm.rename("out/secret", "stolen", false), Err(FileError::Forbidden(_))));
        assert!(matches!(fm.rename("missing", "m2", false), Err(FileError::NotFound(_))));
        assert!(matches!(fm.rename("d/e", "no/such/parent", false), Err(FileError::NotFound(_))));

        assert!(matches!(fm.remove("x", false), Err(FileError::Conflict(_))));
        assert_eq!(fm.remove("x", true).unwrap().kind, EntryKind::Dir);
        assert!(matches!(fm.remove("", true), Err(FileError::Forbidden(_))));
        assert!(matches!(fm.remove(".", true), Err(FileError::Forbidden(_))));
        assert!(matches!(fm.remove("out/secret", false), Err(FileError::Forbidden(_))));
        // Removing a link removes the link only.
        assert_eq!(fm.remove("out", true).unwrap().kind, EntryKind::Symlink);
        assert!(t.path().join("outside/secret").exists());
        assert!(matches!(fm.remove("out", false), Err(FileError::NotFound(_))));
    }

    #[test]
    fn a_symlink_swapped_in_after_resolving_is_not_followed() {
        let (t, fm) = setup();
        let root = fm.resolver.root().to_path_buf();
        let r = fm.resolve("d/e", Leaf::Follow).unwrap();
        // The race: `d` becomes a link to the outside after the check.
        std::fs::rename(root.join("d"), root.join("d-old")).unwrap();
        std::fs::create_dir_all(t.path().join("outside/e")).unwrap();
        symlink(t.path().join("outside"), root.join("d")).unwrap();
        let walked = fm.walk("listing", &r, &r.real);
        assert!(matches!(walked, Err(FileError::Forbidden(_)) | Err(FileError::BadRequest(_))), "{walked:?}");
    }
}
