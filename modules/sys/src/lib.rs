//! module-sys (being written).
