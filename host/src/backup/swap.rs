//! Putting staged directories into place by rename, all or nothing. Each target is
//! renamed aside, then its staging directory renamed into its place; if any step fails
//! every completed step is undone, so a failed restore leaves the old trees where they
//! were. Renames need the staging directory on the target's filesystem, which is why
//! it is created next to the target. The old trees are removed only at the end.

use std::path::{Path, PathBuf};

/// One directory to replace.
#[derive(Debug)]
pub struct Swap {
    pub staging: PathBuf,
    pub target: PathBuf,
    /// Where the current target is moved aside to.
    pub aside: PathBuf,
}

/// Replaces every target with its staging directory, or none of them.
pub fn swap_all(swaps: &[Swap]) -> std::io::Result<()> {
    let mut done: Vec<(&Swap, bool)> = Vec::new();
    for swap in swaps {
        match swap_one(swap) {
            Ok(moved_aside) => done.push((swap, moved_aside)),
            Err(e) => {
                for (undo, moved_aside) in done.into_iter().rev() {
                    if let Err(u) = unswap(undo, moved_aside) {
                        tracing::error!(target = %undo.target.display(), "restore rollback failed: {u}");
                    }
                }
                return Err(std::io::Error::new(e.kind(), format!("{}: {e}", swap.target.display())));
            }
        }
    }
    Ok(())
}

/// `Ok(true)` when an existing target was moved aside.
fn swap_one(swap: &Swap) -> std::io::Result<bool> {
    let existed = match std::fs::symlink_metadata(&swap.target) {
        Ok(_) => {
            std::fs::rename(&swap.target, &swap.aside)?;
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    if let Err(e) = std::fs::rename(&swap.staging, &swap.target) {
        if existed {
            std::fs::rename(&swap.aside, &swap.target)?;
        }
        return Err(e);
    }
    Ok(existed)
}

fn unswap(swap: &Swap, moved_aside: bool) -> std::io::Result<()> {
    std::fs::rename(&swap.target, &swap.staging)?;
    if moved_aside {
        std::fs::rename(&swap.aside, &swap.target)?;
    }
    Ok(())
}

/// A sibling of `target` named `.<name>.<tag>-<suffix>` (same filesystem, hidden).
pub fn sibling(target: &Path, tag: &str, suffix: &str) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "root".into());
    target.with_file_name(format!(".{name}.{tag}-{suffix}"))
}

/// Removes a tree, logging instead of failing: the restore already succeeded.
pub fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_dir_all(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), "cannot remove leftover restore directory: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_second_swap_undoes_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("old"), "a").unwrap();
        let staged_a = sibling(&a, "restore", "1");
        std::fs::create_dir(&staged_a).unwrap();
        std::fs::write(staged_a.join("new"), "a2").unwrap();
        let swaps = [
            Swap { staging: staged_a.clone(), target: a.clone(), aside: sibling(&a, "old", "1") },
            // The staging directory of b is missing: its rename fails.
            Swap { staging: dir.path().join("missing"), target: b.clone(), aside: sibling(&b, "old", "1") },
        ];
        assert!(swap_all(&swaps).is_err());
        assert!(a.join("old").exists() && !a.join("new").exists());
        assert!(staged_a.join("new").exists());

        let swaps = [Swap { staging: staged_a, target: a.clone(), aside: sibling(&a, "old", "1") }];
        swap_all(&swaps).unwrap();
        assert!(a.join("new").exists());
        assert!(sibling(&a, "old", "1").join("old").exists());
    }
}
