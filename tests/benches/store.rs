//! Store benchmark: the MongoDB backend beside SQLite, measured in one run.
//!
//! For each backend (SQLite in a temp file; MongoDB = the nx-27017 server the tests
//! use, or APOLLO_TEST_MONGO_URL) it times, through the `Store` trait:
//! - appends: AUDIT audit entries written one by one (each a numbered record: the
//!   MongoDB backend takes an id from its counter first);
//! - token lookups: LOOKUPS `find_token` calls, the per-request read of every TCP call;
//! - copy in: the whole populated SQLite store copied into the backend (`copy_all`,
//!   the page walk module-db-migrate uses), records per second.
//!
//! It prints ops/s and the MongoDB/SQLite ratios, and asserts nothing. nx-27017 is a
//! Python server over SQLite, so its figures say little about a real mongod: they show
//! what the MongoDB path costs on top of the wire (round trips, BSON), not MongoDB.
//!
//! Run (`.ci/python-clients-up.sh` first, as `make test` does):
//!   cargo bench -p apollo-tests --bench store

#[path = "../tests/it/common/mongo.rs"]
#[allow(dead_code)]
mod mongo;

use std::sync::Arc;
use std::time::Instant;

use apollo_host::store::transfer::{self, Collection};
use apollo_host::store::*;

const AUDIT: i64 = 2_000;
const LOOKUPS: i64 = 2_000;
const POPULATION: i64 = 1_000;

fn audit(i: i64) -> AuditEntry {
    AuditEntry {
        id: 0,
        at_ms: i,
        actor: "admin".into(),
        remote: "127.0.0.1:1".into(),
        method: "POST".into(),
        path: format!("/api/apps/svc-{i}/restart"),
        status: 200,
        result: "ok".into(),
        detail: String::new(),
    }
}

async fn populate(s: &dyn Store) {
    for i in 0..POPULATION {
        s.append_audit(&audit(i)).await.unwrap();
        let t =
            TokenRecord { token_hash: format!("{i:064}"), user: "admin".into(), created_at_ms: i, expires_at_ms: i };
        s.insert_token(&t).await.unwrap();
        s.module_kv_set("bench", &format!("k{i}"), "v").await.unwrap();
        let rt = RuntimeRecord { name: format!("svc-{i:04}"), ports: vec![8000], ..Default::default() };
        s.put_runtime(&rt).await.unwrap();
    }
}

struct Figures {
    appends_per_s: f64,
    lookups_per_s: f64,
    copy_records_per_s: f64,
}

async fn measure(store: Arc<dyn Store>, source: &dyn Store) -> Figures {
    let start = Instant::now();
    for i in 0..AUDIT {
        store.append_audit(&audit(i)).await.unwrap();
    }
    let appends_per_s = AUDIT as f64 / start.elapsed().as_secs_f64();

    let t = TokenRecord { token_hash: "probe".into(), user: "admin".into(), created_at_ms: 0, expires_at_ms: i64::MAX };
    store.insert_token(&t).await.unwrap();
    let start = Instant::now();
    for _ in 0..LOOKUPS {
        assert!(store.find_token("probe").await.unwrap().is_some());
    }
    let lookups_per_s = LOOKUPS as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    let copied = transfer::copy_all(source, store.as_ref()).await.unwrap();
    let copy_records_per_s = copied as f64 / start.elapsed().as_secs_f64();
    for c in [Collection::Runtime, Collection::ModuleData] {
        assert_eq!(transfer::digest(source, c).await.unwrap(), transfer::digest(store.as_ref(), c).await.unwrap());
    }
    Figures { appends_per_s, lookups_per_s, copy_records_per_s }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let source = open_target(&StoreTarget::Sqlite(dir.path().join("source.db")), true).await.unwrap();
    populate(source.as_ref()).await;

    let sqlite = open_target(&StoreTarget::Sqlite(dir.path().join("bench.db")), true).await.unwrap();
    let base = measure(sqlite, source.as_ref()).await;
    let server = mongo::MongoServer::start();
    let mongodb = open_target(&StoreTarget::Mongo(server.target()), true).await.unwrap();
    let m = measure(mongodb, source.as_ref()).await;

    println!("store bench ({AUDIT} appends, {LOOKUPS} token lookups, copy of {} records)", POPULATION * 4);
    println!("{:<28}{:>12}{:>12}{:>10}", "", "sqlite", "mongodb", "ratio");
    for (what, a, b) in [
        ("audit appends/s", base.appends_per_s, m.appends_per_s),
        ("token lookups/s", base.lookups_per_s, m.lookups_per_s),
        ("copy in, records/s", base.copy_records_per_s, m.copy_records_per_s),
    ] {
        println!("{what:<28}{a:>12.0}{b:>12.0}{:>10.2}", b / a);
    }
    println!("mongodb = {} ({})", server.url, if server.is_local() { "nx-27017" } else { "APOLLO_TEST_MONGO_URL" });
}
