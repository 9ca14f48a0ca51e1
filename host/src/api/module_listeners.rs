//! Modules' own listeners (`modules.listeners`): an operator gives a module an address
//! (a gateway on `:8080`, a catalog on `:8500`) where the module's listener-mounted
//! routes are served at the root, outside the admin API. A manager follows the module
//! table: a listener opens when its module is loaded and closes (in-flight requests
//! finish) when the module is disabled or removed; a new generation of the module is
//! served by the same listener. Each request is routed to the generation in service
//! when it arrives.
//!
//! The same connection limits as the admin listeners apply. Routes the module does not
//! declare public need the host's bearer token here too. Requests here are the
//! module's own traffic and are not written to the audit trail. They are served by
//! `module_listener_requests.rs`, without axum's router: what a parked request holds
//! is kept small there.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use tokio_util::sync::CancellationToken;

use super::module_listener_requests;
use crate::listener::{ConnectionLimits, serve_listener_with};
use crate::modules::ListenerStatus;
use crate::state::AppState;

/// How long a closing listener's in-flight requests may take before it is abandoned.
const DRAIN: Duration = Duration::from_secs(10);

struct Running {
    address: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Follows the module table until `cancel`, then closes every module listener.
pub async fn run(state: AppState, limits: ConnectionLimits, cancel: CancellationToken) {
    let mut swaps = state.modules.subscribe_swaps();
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    loop {
        reconcile(&state, &mut running, limits).await;
        tokio::select! {
            () = cancel.cancelled() => break,
            changed = swaps.changed() => if changed.is_err() { break },
        }
    }
    for (name, listener) in std::mem::take(&mut running) {
        close(&state, &name, listener).await;
    }
}

/// Opens the listeners of loaded modules that have none, closes those of modules no
/// longer in service. A listener that cannot bind is reported and tried again at the
/// next change of the table.
async fn reconcile(state: &AppState, running: &mut BTreeMap<String, Running>, limits: ConnectionLimits) {
    let table = state.modules.table();
    let wanted: BTreeMap<String, String> = state
        .modules
        .configured_listeners()
        .iter()
        .filter(|(name, _)| table.modules.contains_key(*name))
        .map(|(name, address)| (name.clone(), address.clone()))
        .collect();
    let stale: Vec<String> =
        running.iter().filter(|(name, r)| wanted.get(*name) != Some(&r.address)).map(|(n, _)| n.clone()).collect();
    for name in stale {
        if let Some(listener) = running.remove(&name) {
            close(state, &name, listener).await;
        }
    }
    for (name, address) in state.modules.configured_listeners() {
        if !wanted.contains_key(name) {
            let error = Some("not serving: the module is not loaded".to_string());
            state
                .modules
                .set_listener_status(name, Some(ListenerStatus { address: address.clone(), bound: None, error }));
        }
    }
    for (name, address) in wanted {
        if running.contains_key(&name) {
            continue;
        }
        match tokio::net::TcpListener::bind(&address).await {
            Ok(listener) => {
                let bound = listener.local_addr().map(|a| a.to_string()).ok();
                tracing::info!(module = %name, address = bound.as_deref().unwrap_or(&address), "module listener open");
                let stop = CancellationToken::new();
                let service = module_listener_requests::service(state.clone(), name.clone());
                let peer_address = |extensions: &mut http::Extensions, peer: &SocketAddr| {
                    extensions.insert(ConnectInfo(*peer));
                };
                let task = tokio::spawn(serve_listener_with(listener, service, limits, peer_address, stop.clone()));
                let status = ListenerStatus { address: address.clone(), bound, error: None };
                state.modules.set_listener_status(&name, Some(status));
                running.insert(name, Running { address, stop, task });
            }
            Err(e) => {
                let error = format!("cannot listen on {address}: {e}; fix modules.listeners.{name}");
                tracing::error!(module = %name, "{error}");
                let status = ListenerStatus { address, bound: None, error: Some(error) };
                state.modules.set_listener_status(&name, Some(status));
            }
        }
    }
}

async fn close(state: &AppState, name: &str, listener: Running) {
    listener.stop.cancel();
    let mut task = listener.task;
    if tokio::time::timeout(DRAIN, &mut task).await.is_err() {
        task.abort();
        tracing::warn!(module = %name, "module listener closed with requests still in flight after {DRAIN:?}");
    }
    tracing::info!(module = %name, address = %listener.address, "module listener closed");
    let still_configured = state.modules.configured_listeners().get(name).cloned();
    state.modules.set_listener_status(
        name,
        still_configured.map(|address| ListenerStatus {
            address,
            bound: None,
            error: Some("not serving: the module is not loaded".into()),
        }),
    );
}
