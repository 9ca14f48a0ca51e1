//! module-config: a configuration center that real Ctrip Apollo clients use unchanged.
//! Apps, clusters and namespaces hold items that are edited, then released as immutable
//! snapshots; clients read them over Ctrip's config-service protocol (`/configs`,
//! `/configfiles`, `/notifications/v2` long polls woken by each release, access keys),
//! tools change them over Ctrip's Open API, operators manage tokens, keys, history and
//! audit on the admin routes. Everything lives in the module's storage (the host's
//! store: SQLite, or a MongoDB a fleet shares) and is read from an in-memory replica
//! that the storage change feed keeps current.

mod access_keys;
mod admin;
mod client;
mod edit;
mod metrics;
mod model;
mod names;
mod openapi;
mod properties;
mod replica;
mod resolve;
mod settings;
mod state;
mod watchers;
mod wire;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use plugin_api::replica::{Replicated, loaded};
use plugin_api::{Host, Module, ModuleError, Mount, Route, Routes, export_module};

use crate::metrics::Metrics;
use crate::openapi::portal;
use crate::replica::Replica;
use crate::settings::{Config, Settings};
use crate::state::State;

#[derive(Debug)]
pub struct ConfigCenter {
    host: Host,
    settings: Settings,
    replica: Arc<Replica>,
    metrics: Metrics,
    /// Long polls held now.
    parked: AtomicUsize,
    /// Where the host mounts the module's admin-listener routes.
    mount_prefix: String,
}

/// Long polls are held up to 69 s; the route's own timeout stays above that.
const POLL_ROUTE_TIMEOUT: Duration = Duration::from_secs(75);

/// The Open API's namespace prefix (protocol §4's `P`).
macro_rules! ns_path {
    ($rest:literal) => {
        concat!("/openapi/v1/envs/{env}/apps/{appId}/clusters/{cluster}/namespaces", $rest)
    };
}

impl Replicated for ConfigCenter {
    type Records = State;

    fn replica(&self) -> &plugin_api::replica::Replica<State> {
        &self.replica
    }
}

impl Module for ConfigCenter {
    const NAME: &'static str = "config";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Configuration center speaking Ctrip Apollo's client protocol and Open API";
    type Config = Config;

    fn routes() -> Routes<Self> {
        // Client and Open API routes authenticate themselves (access keys, consumer
        // tokens) and are served on the module's own listener too, at its root.
        let client = |route: Route| route.public().mount(Mount::Both);
        Routes::new()
            .add(
                client(Route::get(
                    "/configs/{appId}/{cluster}/{namespace}",
                    "Ctrip: a namespace's released configuration",
                )),
                loaded(Self::configs),
            )
            .add(
                client(Route::get("/configfiles/{appId}/{cluster}/{namespace}", "Ctrip: as properties text")),
                loaded(Self::config_file_properties),
            )
            .add(
                client(Route::get("/configfiles/json/{appId}/{cluster}/{namespace}", "Ctrip: as a JSON object")),
                loaded(Self::config_file_json),
            )
            .add(
                client(Route::get("/configfiles/raw/{appId}/{cluster}/{namespace}", "Ctrip: the file itself")),
                loaded(Self::config_file_raw),
            )
            .add(
                client(Route::get("/notifications/v2", "Ctrip: long poll for releases").timeout(POLL_ROUTE_TIMEOUT)),
                loaded(Self::notifications_v2),
            )
            .add(
                client(Route::get("/notifications", "Ctrip: legacy v1 long poll").timeout(POLL_ROUTE_TIMEOUT)),
                loaded(Self::notifications_v1),
            )
            .add(
                client(Route::get("/services/config", "Ctrip meta server: config services")),
                loaded(Self::services_config),
            )
            .add(
                client(Route::get("/services/admin", "Ctrip meta server: admin services")),
                loaded(Self::services_admin),
            )
            .add(client(Route::get("/services/meta", "Ctrip meta server: meta services")), loaded(Self::services_meta))
            .add(
                client(Route::post("/openapi/v1/apps", "Open API: create an app (operators)")),
                portal(loaded(Self::open_create_app)),
            )
            .add(client(Route::get("/openapi/v1/apps", "Open API: apps")), portal(loaded(Self::open_list_apps)))
            .add(
                client(Route::get("/openapi/v1/apps/{appId}/envclusters", "Open API: an app's clusters per env")),
                portal(loaded(Self::open_env_clusters)),
            )
            .add(
                client(Route::post("/openapi/v1/apps/{appId}/appnamespaces", "Open API: create a namespace")),
                portal(loaded(Self::open_create_app_namespace)),
            )
            .add(
                client(Route::post("/openapi/v1/envs/{env}/apps/{appId}/clusters", "Open API: create a cluster")),
                portal(loaded(Self::open_create_cluster)),
            )
            .add(
                client(Route::get("/openapi/v1/envs/{env}/apps/{appId}/clusters/{cluster}", "Open API: a cluster")),
                portal(loaded(Self::open_get_cluster)),
            )
            .add(
                client(Route::get(ns_path!(""), "Open API: namespaces of a cluster")),
                portal(loaded(Self::open_list_namespaces)),
            )
            .add(
                client(Route::get(ns_path!("/{namespace}"), "Open API: a namespace")),
                portal(loaded(Self::open_get_namespace)),
            )
            .add(
                client(Route::get(ns_path!("/{namespace}/lock"), "Open API: a namespace's lock")),
                portal(loaded(Self::open_namespace_lock)),
            )
            .add(
                client(Route::get(ns_path!("/{namespace}/items"), "Open API: items, paged")),
                portal(loaded(Self::open_list_items)),
            )
            .add(
                client(Route::post(ns_path!("/{namespace}/items"), "Open API: create an item")),
                portal(loaded(Self::open_create_item)),
            )
            .add(
                client(Route::get(ns_path!("/{namespace}/items/{key}"), "Open API: an item")),
                portal(loaded(Self::open_get_item)),
            )
            .add(
                client(Route::put(ns_path!("/{namespace}/items/{key}"), "Open API: update an item")),
                portal(loaded(Self::open_update_item)),
            )
            .add(
                client(Route::delete(ns_path!("/{namespace}/items/{key}"), "Open API: delete an item")),
                portal(loaded(Self::open_delete_item)),
            )
            .add(
                client(Route::get(
                    ns_path!("/{namespace}/encodedItems/{encodedKey}"),
                    "Open API: an item (base64 key)",
                )),
                portal(loaded(Self::open_get_item)),
            )
            .add(
                client(Route::put(
                    ns_path!("/{namespace}/encodedItems/{encodedKey}"),
                    "Open API: update an item (base64 key)",
                )),
                portal(loaded(Self::open_update_item)),
            )
            .add(
                client(Route::delete(
                    ns_path!("/{namespace}/encodedItems/{encodedKey}"),
                    "Open API: delete an item (base64 key)",
                )),
                portal(loaded(Self::open_delete_item)),
            )
            .add(
                client(Route::post(ns_path!("/{namespace}/releases"), "Open API: release")),
                portal(loaded(Self::open_release)),
            )
            .add(
                client(Route::get(ns_path!("/{namespace}/releases/latest"), "Open API: the latest release")),
                portal(loaded(Self::open_latest_release)),
            )
            .add(
                client(Route::put(
                    "/openapi/v1/envs/{env}/releases/{releaseId}/rollback",
                    "Open API: roll a release back",
                )),
                portal(loaded(Self::open_rollback)),
            )
            .add(
                client(Route::get(ns_path!("/{namespace}/branches"), "Open API: the gray branch")),
                portal(loaded(Self::open_get_branch)),
            )
            .add(
                client(Route::post(ns_path!("/{namespace}/branches"), "Open API: create the gray branch")),
                portal(loaded(Self::open_create_branch)),
            )
            .add(
                client(Route::delete(ns_path!("/{namespace}/branches/{branch}"), "Open API: abandon the gray branch")),
                portal(loaded(Self::open_delete_branch)),
            )
            .add(
                client(Route::get(ns_path!("/{namespace}/branches/{branch}/rules"), "Open API: gray rules")),
                portal(loaded(Self::open_get_rules)),
            )
            .add(
                client(Route::put(ns_path!("/{namespace}/branches/{branch}/rules"), "Open API: set gray rules")),
                portal(loaded(Self::open_set_rules)),
            )
            .add(
                client(Route::post(ns_path!("/{namespace}/branches/{branch}/releases"), "Open API: gray release")),
                portal(loaded(Self::open_gray_release)),
            )
            .add(
                client(Route::post(
                    ns_path!("/{namespace}/branches/{branch}/gray-del-releases"),
                    "Open API: gray release without some keys",
                )),
                portal(loaded(Self::open_gray_delete_release)),
            )
            .add(
                client(Route::post(
                    ns_path!("/{namespace}/branches/{branch}/merge"),
                    "Open API: merge the branch and release",
                )),
                portal(loaded(Self::open_merge_branch)),
            )
            .add(
                Route::post("/admin/consumers", "Create an Open API consumer (its token is shown once)"),
                loaded(Self::admin_create_consumer),
            )
            .add(
                Route::get("/admin/consumers", "Open API consumers and their rights"),
                loaded(Self::admin_list_consumers),
            )
            .add(Route::delete("/admin/consumers/{name}", "Delete a consumer"), loaded(Self::admin_delete_consumer))
            .add(
                Route::put("/admin/consumers/{name}/apps/{appId}", "Set a consumer's edit/release rights on an app"),
                loaded(Self::admin_grant),
            )
            .add(
                Route::post("/admin/apps/{appId}/accesskeys", "Create an access key (its secret is shown once)"),
                loaded(Self::admin_create_access_key),
            )
            .add(
                Route::get("/admin/apps/{appId}/accesskeys", "An app's access keys (masked)"),
                loaded(Self::admin_list_access_keys),
            )
            .add(
                Route::put("/admin/apps/{appId}/accesskeys/{id}", "Enable, disable or change an access key's mode"),
                loaded(Self::admin_update_access_key),
            )
            .add(
                Route::delete("/admin/apps/{appId}/accesskeys/{id}", "Delete an access key"),
                loaded(Self::admin_delete_access_key),
            )
            .add(
                Route::get(
                    "/admin/apps/{appId}/clusters/{cluster}/namespaces/{namespace}/releases",
                    "Release history, newest first",
                ),
                loaded(Self::admin_history),
            )
            .add(
                Route::get(
                    "/admin/apps/{appId}/clusters/{cluster}/namespaces/{namespace}/changes",
                    "Working items against the latest release",
                ),
                loaded(Self::admin_pending_changes),
            )
            .add(
                Route::get("/admin/releases/compare", "What changed between two releases (?base=&to=)"),
                loaded(Self::admin_compare),
            )
            .add(
                Route::get("/admin/releases/{id}", "A release with its configurations"),
                loaded(Self::admin_get_release),
            )
            .add(Route::get("/admin/audit", "Who changed and released what, newest first"), loaded(Self::admin_audit))
            .add(Route::get("/admin/status", "Parked polls, watched keys, feed position"), loaded(Self::admin_status))
    }

    fn init(host: Host, config: Config) -> Result<Self, ModuleError> {
        let settings = Settings::from_config(config)?;
        let metrics = Metrics::register().map_err(|e| ModuleError::internal(e.to_string()))?;
        // Loaded in the background: `init` must not block the host's thread on the
        // store; requests wait for the load (see `when_loaded`).
        let replica = Replica::new(host.storage());
        plugin_api::tokio::spawn(replica.follow_storage(host.clone()));
        host.info(&format!(
            "config center ready: envs {}, long polls held {} s",
            settings.envs.join(","),
            settings.long_poll_hold.as_secs()
        ));
        Ok(Self {
            host,
            settings,
            replica,
            metrics,
            parked: AtomicUsize::new(0),
            mount_prefix: format!("/api/module/{}", Self::NAME),
        })
    }
}

export_module!(ConfigCenter);
