//! PLACEHOLDER (replaced by the metrics branch): module-contributed metrics.

/// The module's metric families as JSON, for the host's `/metrics`.
pub(crate) fn export_json() -> String {
    "[]".into()
}
