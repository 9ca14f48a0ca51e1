//! The disk check: how full the filesystem holding `service_root` is (`statvfs`).

use std::path::Path;

/// Used share of the filesystem in percent, as `df` counts it (blocks reserved for
/// root are not available to us, so they count as used).
pub fn used_percent(path: &Path) -> std::io::Result<f64> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    let total = stat.blocks() as f64;
    if total <= 0.0 {
        return Ok(0.0);
    }
    let available = stat.blocks_available() as f64;
    Ok(((total - available) / total * 100.0).clamp(0.0, 100.0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_a_percentage_for_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        let used = super::used_percent(dir.path()).unwrap();
        assert!((0.0..=100.0).contains(&used), "{used}");
        assert!(super::used_percent(&dir.path().join("missing")).is_err());
    }
}
