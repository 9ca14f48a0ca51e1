//! Directory handles opened by walking down from the root one component at a time with
//! `O_NOFOLLOW | O_DIRECTORY`. This is what makes "never follow a symlink out of the
//! root" hold even when the tree changes between resolving a path and using it: the
//! resolver's answer is symlink-free, so a symlink met on the walk means someone swapped
//! one in, and the kernel refuses it (`ELOOP`/`ENOTDIR`) instead of following it.
//!
//! Operations on a child go through `/proc/self/fd/<fd>/<name>`: the directory part is
//! the already-opened handle, only the last name is looked up, and the callers pick
//! calls that do not follow that name (lstat, unlink, rename, `O_NOFOLLOW` opens). This
//! needs `/proc` (Linux); without it every operation fails closed.
//!
//! What this file does not do: decide what is allowed (`resolve.rs`, `ops.rs` do).

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::libc;

/// An open directory inside the root.
#[derive(Debug)]
pub struct Dir {
    file: File,
}

impl Dir {
    /// Opens the (canonical) root by path: the one place a path is trusted as a whole.
    pub fn open_root(root: &Path) -> io::Result<Self> {
        Ok(Self { file: open_dir(root)? })
    }

    /// Walks `rel` (normal components only) down from this directory.
    pub fn walk(&self, rel: &Path) -> io::Result<Self> {
        let mut dir = Self { file: self.file.try_clone()? };
        for name in rel.components() {
            dir = dir.child_dir(name.as_os_str())?;
        }
        Ok(dir)
    }

    /// A subdirectory, refused if `name` is a symlink.
    pub fn child_dir(&self, name: &OsStr) -> io::Result<Self> {
        Ok(Self { file: open_dir(&self.child(name))? })
    }

    /// The path that names `name` in this directory without re-resolving the directory.
    pub fn child(&self, name: &OsStr) -> PathBuf {
        self.path().join(name)
    }

    /// The path of this directory through its handle (`/proc/self/fd/N`).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }

    /// Opens an existing child for reading, refused if it is a symlink. `O_NONBLOCK`
    /// keeps a FIFO from blocking the open; it has no effect on regular files.
    pub fn open_read(&self, name: &OsStr) -> io::Result<File> {
        OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(self.child(name))
    }

    /// Creates a new file that did not exist (never an existing one, never through a link).
    pub fn create_new(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        OpenOptions::new().write(true).create_new(true).mode(mode).custom_flags(libc::O_NOFOLLOW).open(self.child(name))
    }

    /// Flushes the directory itself, so a rename or create in it survives a crash.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    pub fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.file.metadata()
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

fn open_dir(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW).open(path)
}
