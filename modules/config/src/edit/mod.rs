//! Changes to the configuration, as plans ([`Plan`]) computed from the current state:
//! what to write (with the versions read, so a concurrent change makes the commit fail
//! and the plan is made again), the audit line, and the result. One file per kind of
//! record; the HTTP layers (Open API, admin routes) only translate.

pub mod apps;
pub mod credentials;
pub mod gray;
pub mod items;
pub mod releases;

use plugin_api::ModuleError;

use crate::model::{AppNamespace, NsRef};
use crate::names;
use crate::state::State;

/// The namespace (by its stored names) an edit addresses, or the 404 saying which part
/// is missing. `cluster` may be a gray branch.
pub fn existing_namespace(
    state: &State,
    app: &str,
    cluster: &str,
    namespace: &str,
) -> Result<(NsRef, AppNamespace), ModuleError> {
    if !state.apps.contains_key(app) {
        return Err(ModuleError::not_found(format!("app not found: {app}")));
    }
    if state.cluster(app, cluster).is_none() {
        return Err(ModuleError::not_found(format!("cluster not found: {app}/{cluster}")));
    }
    let namespace = names::strip_properties_suffix(namespace);
    let Some(app_namespace) = state.app_namespace(app, namespace) else {
        return Err(ModuleError::not_found(format!("namespace not found: {app}/{cluster}/{namespace}")));
    };
    Ok((NsRef::new(app, cluster, &app_namespace.name), app_namespace.clone()))
}

/// A name field of a request, or the 400 naming it.
pub fn valid_name(what: &str, name: &str) -> Result<(), ModuleError> {
    names::check_name(what, name).map_err(ModuleError::bad_request)
}

/// `yyyyMMddHHmmss-` and 16 hex digits (2 bytes from the namespace, 6 random): the
/// shape of Ctrip's release keys and branch names. Clients only compare them.
pub fn unique_key(seed: &str) -> String {
    let mut hash: u16 = 0;
    for b in seed.bytes() {
        hash = hash.wrapping_mul(31).wrapping_add(u16::from(b));
    }
    let random = rand::random::<u64>() & 0xffff_ffff_ffff;
    format!("{}-{hash:04x}{random:012x}", chrono::Utc::now().format("%Y%m%d%H%M%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_keys_look_like_ctrips() {
        let key = unique_key("app+default+application");
        let (time, hex) = key.split_once('-').unwrap();
        assert_eq!((time.len(), hex.len()), (14, 16));
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(unique_key("x"), unique_key("x"));
    }
}
