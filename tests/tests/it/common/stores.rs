//! A fresh store of each backend for store-level tests (`store.rs`,
//! `module_storage.rs`), and `both_backends!`, which makes one test per backend out
//! of a scenario function taking the store.

use std::sync::Arc;

use apollo_host::store::{Store, StoreTarget, open_target};

use super::mongo::MongoServer;

/// Keeps whatever the store lives in alive for the test.
#[allow(dead_code)]
pub enum Home {
    Sqlite(tempfile::TempDir),
    Mongo(MongoServer),
}

pub async fn sqlite_store() -> (Arc<dyn Store>, Home) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_target(&StoreTarget::Sqlite(dir.path().join("apollo.db")), true).await.unwrap();
    (store, Home::Sqlite(dir))
}

pub async fn mongo_store() -> (Arc<dyn Store>, Home) {
    let server = MongoServer::start();
    let store = open_target(&StoreTarget::Mongo(server.target()), true).await.unwrap();
    (store, Home::Mongo(server))
}

/// `both_backends!(scenario)`: a module `scenario` with the tests `sqlite` and
/// `mongodb`, each calling `scenario(store)` with an `Arc<dyn Store>` of its own (the
/// MongoDB one skips or fails as `components::mongo` says when none can be had).
#[macro_export]
macro_rules! both_backends {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (store, _home) = $crate::common::stores::sqlite_store().await;
                super::$scenario(store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mongodb() {
                if !$crate::common::components::mongo() {
                    return;
                }
                let (store, _home) = $crate::common::stores::mongo_store().await;
                super::$scenario(store).await;
            }
        }
    };
}
