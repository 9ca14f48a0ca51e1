//! Who may talk to the module besides the host's operators: access keys (secrets
//! clients sign config requests with, up to five per app) and Open API consumers (a
//! token with edit and release rights per app, kept apart). Secrets and tokens are
//! shown once, when made; a consumer's token is stored only as its SHA-256.

use std::collections::BTreeMap;

use plugin_api::ModuleError;
use plugin_api::signing::sha2::{Digest, Sha256};

use super::valid_name;
use crate::model::{
    self, ACCESS_KEY_FILTER, ACCESS_KEY_OBSERVER, AccessKey, Consumer, Grant, MAX_ACCESS_KEYS_PER_APP, Stamp,
};
use crate::replica::{Plan, now_ms};
use crate::state::State;

/// 32 random hex digits (128 bits).
fn random_hex() -> String {
    format!("{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>())
}

pub fn token_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn create_access_key(state: &State, actor: &str, app: &str, mode: u8) -> Result<Plan<AccessKey>, ModuleError> {
    if !state.apps.contains_key(app) {
        return Err(ModuleError::not_found(format!("app not found: {app}")));
    }
    if mode != ACCESS_KEY_FILTER && mode != ACCESS_KEY_OBSERVER {
        return Err(ModuleError::bad_request("mode is 0 (enforced) or 1 (observe only)"));
    }
    if state.access_keys_of(app).count() >= MAX_ACCESS_KEYS_PER_APP {
        return Err(ModuleError::bad_request(format!(
            "{app} has {MAX_ACCESS_KEYS_PER_APP} access keys already: delete one first"
        )));
    }
    let key = AccessKey {
        id: random_hex()[..12].to_string(),
        app_id: app.into(),
        secret: random_hex(),
        enabled: true,
        mode,
        stamp: Stamp::new(actor, now_ms()),
    };
    let writes = vec![state.put(model::access_key_key(app, &key.id), &key)];
    let id = key.id.clone();
    Ok(Plan::new(writes, key).audited(actor, "create-access-key", app, id))
}

pub fn update_access_key(
    state: &State,
    actor: &str,
    app: &str,
    id: &str,
    enabled: Option<bool>,
    mode: Option<u8>,
) -> Result<Plan<AccessKey>, ModuleError> {
    let Some(existing) = state.access_keys.get(&(app.to_string(), id.to_string())) else {
        return Err(ModuleError::not_found(format!("access key not found: {app}/{id}")));
    };
    if mode.is_some_and(|m| m != ACCESS_KEY_FILTER && m != ACCESS_KEY_OBSERVER) {
        return Err(ModuleError::bad_request("mode is 0 (enforced) or 1 (observe only)"));
    }
    let mut key = existing.clone();
    key.enabled = enabled.unwrap_or(key.enabled);
    key.mode = mode.unwrap_or(key.mode);
    key.stamp = key.stamp.touched(actor, now_ms());
    let writes = vec![state.put(model::access_key_key(app, id), &key)];
    let detail = format!("enabled={} mode={}", key.enabled, key.mode);
    Ok(Plan::new(writes, key).audited(actor, "update-access-key", format!("{app}/{id}"), detail))
}

pub fn delete_access_key(state: &State, actor: &str, app: &str, id: &str) -> Result<Plan<()>, ModuleError> {
    if !state.access_keys.contains_key(&(app.to_string(), id.to_string())) {
        return Err(ModuleError::not_found(format!("access key not found: {app}/{id}")));
    }
    let writes = vec![state.delete(model::access_key_key(app, id))];
    Ok(Plan::new(writes, ()).audited(actor, "delete-access-key", format!("{app}/{id}"), ""))
}

/// A new consumer and its token (returned here only).
pub fn create_consumer(
    state: &State,
    actor: &str,
    name: &str,
    apps: BTreeMap<String, Grant>,
) -> Result<Plan<(Consumer, String)>, ModuleError> {
    valid_name("consumer name", name)?;
    if state.consumers.contains_key(name) {
        return Err(ModuleError::bad_request(format!("consumer already exists: {name}")));
    }
    if let Some(unknown) = apps.keys().find(|app| !state.apps.contains_key(*app)) {
        return Err(ModuleError::not_found(format!("app not found: {unknown}")));
    }
    let token = format!("{}{}", random_hex(), &random_hex()[..8]);
    let consumer =
        Consumer { name: name.into(), token_sha256: token_sha256(&token), apps, stamp: Stamp::new(actor, now_ms()) };
    let writes = vec![state.put(model::consumer_key(name), &consumer)];
    Ok(Plan::new(writes, (consumer, token)).audited(actor, "create-consumer", name, ""))
}

pub fn grant(state: &State, actor: &str, name: &str, app: &str, grant: Grant) -> Result<Plan<Consumer>, ModuleError> {
    let Some(existing) = state.consumers.get(name) else {
        return Err(ModuleError::not_found(format!("consumer not found: {name}")));
    };
    if !state.apps.contains_key(app) {
        return Err(ModuleError::not_found(format!("app not found: {app}")));
    }
    let mut consumer = existing.clone();
    if grant.edit || grant.release {
        consumer.apps.insert(app.to_string(), grant);
    } else {
        consumer.apps.remove(app);
    }
    consumer.stamp = consumer.stamp.touched(actor, now_ms());
    let writes = vec![state.put(model::consumer_key(name), &consumer)];
    let detail = format!("{app}: edit={} release={}", grant.edit, grant.release);
    Ok(Plan::new(writes, consumer).audited(actor, "grant", name, detail))
}

pub fn delete_consumer(state: &State, actor: &str, name: &str) -> Result<Plan<()>, ModuleError> {
    if !state.consumers.contains_key(name) {
        return Err(ModuleError::not_found(format!("consumer not found: {name}")));
    }
    let writes = vec![state.delete(model::consumer_key(name))];
    Ok(Plan::new(writes, ()).audited(actor, "delete-consumer", name, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_as_their_digest() {
        assert_eq!(token_sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
