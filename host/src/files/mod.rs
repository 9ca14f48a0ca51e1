//! The file manager: list, stat, download, upload, mkdir, move and remove under one
//! root (the host's `app_root`), with every path confined to it.
//!
//! Confinement is two layers deep. `resolve` checks the user's text (no `..`, no
//! absolute paths, no NUL, no odd components) and resolves symlinks on disk, refusing
//! anything that would leave the root with a reason the client can read. `dir` then
//! re-walks that answer from an open root handle with `O_NOFOLLOW` at every step, so a
//! symlink swapped in between the check and the use is refused by the kernel rather
//! than followed. Symlinks that stay inside the root are followed for reading,
//! writing, listing and stat; remove and move act on a link itself, never its target.
//!
//! Not here: HTTP (api/files.rs), auth and audit (applied to every /api route by the
//! API's middleware), and the choice of root and size limit (the caller's config).
//! Linux only: handles are used through `/proc/self/fd`.

mod dir;
mod entry;
mod error;
mod ops;
pub mod resolve;
mod upload;

pub use entry::{EntryKind, FileEntry, Listing, Made, Removed, Written};
pub use error::FileError;
pub use ops::FileManager;
pub use resolve::{Leaf, ResolveError, Resolved, Resolver};
pub use upload::Upload;
