//! The store test suite, run against both backends: SQLite (a temp file) and MongoDB
//! (nx-27017 started by the test, or a real server with APOLLO_TEST_MONGO_URL). Every
//! scenario is one function over `&dyn Store`; `both!` makes a test per backend.
//! Then what only MongoDB has: the database going away and coming back, a database
//! that is down at start, two hosts sharing one database, and the host itself
//! running on MongoDB.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use crate::both_backends;
use apollo_host::store::transfer::{self, Collection, RecordKey};
use apollo_host::store::*;
use common::mongo::MongoServer;
use serde_json::json;

both_backends!(schema_is_current);
both_backends!(models_round_trip);
both_backends!(runtime_upserts);
both_backends!(tokens_expire_and_revoke);
both_backends!(settings_and_module_kv);
both_backends!(audit_pages_filters_and_trims);
both_backends!(task_runs_per_task);
both_backends!(alarms_deduplicate_ack_resolve_trim);
both_backends!(export_import_round_trip);
both_backends!(import_refuses_bad_records);
both_backends!(snapshot_is_a_sqlite_file_with_every_record);

fn audit(at_ms: i64, actor: &str, path: &str) -> AuditEntry {
    AuditEntry {
        id: 0,
        at_ms,
        actor: actor.into(),
        remote: "127.0.0.1:1".into(),
        method: "POST".into(),
        path: path.into(),
        status: 200,
        result: "ok".into(),
        detail: String::new(),
    }
}

fn model(name: &str) -> ModelRecord {
    ModelRecord {
        name: name.into(),
        id: format!("id-{name}"),
        file: format!("{name}.pig"),
        hash: "abc".into(),
        // Keys MongoDB could not hold as field names must survive.
        model: json!({"name": name, "meta": {"a.b": 1, "$x": [1, 2]}}),
        loaded_at_ms: 7,
    }
}

fn raise(kind: &str, subject: &str, at_ms: i64) -> AlarmRaise {
    AlarmRaise {
        kind: kind.into(),
        subject: subject.into(),
        severity: "warning".into(),
        message: format!("{kind} {subject} at {at_ms}"),
        at_ms,
    }
}

async fn schema_is_current(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (version, steps) = s.migrations().await.unwrap();
    assert_eq!(version, steps.last().unwrap().version);
    assert_eq!(s.schema_version().await.unwrap(), version);
    assert!(s.apply_migrations().await.unwrap().is_empty(), "nothing pending on a fresh store");
}

async fn models_round_trip(store: Arc<dyn Store>) {
    let s = store.as_ref();
    s.upsert_model(&model("b")).await.unwrap();
    s.upsert_model(&model("a")).await.unwrap();
    let changed = ModelRecord { hash: "def".into(), ..model("a") };
    s.upsert_model(&changed).await.unwrap();
    let listed = s.list_models().await.unwrap();
    assert_eq!(listed, vec![changed, model("b")]);
    s.remove_model("b").await.unwrap();
    s.remove_model("never-there").await.unwrap();
    assert_eq!(s.list_models().await.unwrap().len(), 1);
}

async fn runtime_upserts(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let record = RuntimeRecord {
        name: "web".into(),
        pid: Some(4242),
        ports: vec![8080, 8081],
        stop_operation: true,
        last_status: "running".into(),
        updated_at_ms: 99,
        processes: vec![ProcessRecord { instance: 0, pid: 4242, pgid: 4242, start_ticks: 1 << 40 }],
        restarts: 3,
    };
    s.put_runtime(&record).await.unwrap();
    s.put_runtime(&record).await.unwrap();
    assert_eq!(s.list_runtime().await.unwrap(), vec![record.clone()]);
    let stopped = RuntimeRecord { pid: None, processes: vec![], ..record };
    s.put_runtime(&stopped).await.unwrap();
    assert_eq!(s.get_runtime("web").await.unwrap(), Some(stopped));
    assert_eq!(s.get_runtime("nope").await.unwrap(), None);
}

async fn tokens_expire_and_revoke(store: Arc<dyn Store>) {
    let s = store.as_ref();
    for (hash, expires) in [("h1", 100), ("h2", 200), ("h3", 300)] {
        let t = TokenRecord { token_hash: hash.into(), user: "admin".into(), created_at_ms: 1, expires_at_ms: expires };
        s.insert_token(&t).await.unwrap();
        s.insert_token(&t).await.unwrap();
    }
    assert_eq!(s.find_token("h2").await.unwrap().unwrap().expires_at_ms, 200);
    assert_eq!(s.purge_expired_tokens(150).await.unwrap(), 1);
    assert!(s.find_token("h1").await.unwrap().is_none());
    assert!(s.revoke_token("h2").await.unwrap());
    assert!(!s.revoke_token("h2").await.unwrap());
    assert_eq!(s.revoke_all_tokens().await.unwrap(), 1);
    assert_eq!(s.count_records(Collection::Tokens).await.unwrap(), 0);
}

async fn settings_and_module_kv(store: Arc<dyn Store>) {
    let s = store.as_ref();
    assert_eq!(s.get_setting("k").await.unwrap(), None);
    s.put_setting("k", "v1").await.unwrap();
    s.put_setting("k", "v2").await.unwrap();
    assert_eq!(s.get_setting("k").await.unwrap().as_deref(), Some("v2"));
    s.module_kv_set("m1", "key", "a").await.unwrap();
    s.module_kv_set("m2", "key", "b").await.unwrap();
    s.module_kv_set("m1", "key", "c").await.unwrap();
    assert_eq!(s.module_kv_get("m1", "key").await.unwrap().as_deref(), Some("c"));
    assert_eq!(s.module_kv_get("m2", "key").await.unwrap().as_deref(), Some("b"));
    assert_eq!(s.module_kv_get("m3", "key").await.unwrap(), None);
}

async fn audit_pages_filters_and_trims(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let mut ids = Vec::new();
    for i in 0..12 {
        let actor = if i % 3 == 0 { "unix-socket" } else { "admin" };
        ids.push(s.append_audit(&audit(i, actor, &format!("/p/{i}"))).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    let newest = s.list_audit(&AuditQuery { limit: Some(5), ..Default::default() }).await.unwrap();
    assert_eq!(newest.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), ["/p/11", "/p/10", "/p/9", "/p/8", "/p/7"]);
    let page2 = s
        .list_audit(&AuditQuery { limit: Some(2), before_id: Some(newest[4].id), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(page2.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), ["/p/6", "/p/5"]);
    let by_socket =
        s.list_audit(&AuditQuery { actor: Some("unix-socket".into()), ..Default::default() }).await.unwrap();
    assert_eq!(by_socket.len(), 4);
    assert_eq!(s.trim_audit(4).await.unwrap(), 8);
    let left = s.list_audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(left.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), ["/p/11", "/p/10", "/p/9", "/p/8"]);
    assert_eq!(s.trim_audit(100).await.unwrap(), 0);
}

async fn task_runs_per_task(store: Arc<dyn Store>) {
    let s = store.as_ref();
    for i in 0..5 {
        for task in ["backup", "reload-models"] {
            let run = TaskRunRecord {
                id: 0,
                task: task.into(),
                trigger: "schedule".into(),
                started_at_ms: i,
                duration_ms: 3,
                result: if i == 4 { "error".into() } else { "ok".into() },
                message: format!("{task} {i}"),
            };
            s.append_task_run(&run).await.unwrap();
        }
    }
    let runs = s.list_task_runs("backup", 3).await.unwrap();
    assert_eq!(runs.iter().map(|r| r.message.as_str()).collect::<Vec<_>>(), ["backup 4", "backup 3", "backup 2"]);
    assert_eq!(runs[0].result, "error");
    assert_eq!(s.trim_task_runs("backup", 2).await.unwrap(), 3);
    assert_eq!(s.list_task_runs("backup", 10).await.unwrap().len(), 2);
    assert_eq!(s.list_task_runs("reload-models", 10).await.unwrap().len(), 5, "other tasks untouched");
}

async fn alarms_deduplicate_ack_resolve_trim(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (first, new) = s.raise_alarm(&raise("service_crashed", "web", 10)).await.unwrap();
    assert!(new);
    let (again, new) = s.raise_alarm(&raise("service_crashed", "web", 20)).await.unwrap();
    assert!(!new, "an open alarm is bumped, not duplicated");
    assert_eq!((again.id, again.count, again.first_seen_ms, again.last_seen_ms), (first.id, 2, 10, 20));
    let (other, _) = s.raise_alarm(&raise("service_crashed", "db", 30)).await.unwrap();
    let (disk, _) = s.raise_alarm(&raise("disk_full", "/", 40)).await.unwrap();
    assert_eq!(
        s.list_alarms(None).await.unwrap().iter().map(|a| a.id).collect::<Vec<_>>(),
        [disk.id, other.id, first.id]
    );

    let acked = s.ack_alarm(first.id, 50).await.unwrap().unwrap();
    assert_eq!((acked.state.as_str(), acked.acked_at_ms), ("acked", Some(50)));
    let (still, new) = s.raise_alarm(&raise("service_crashed", "web", 55)).await.unwrap();
    assert!(!new && still.state == "acked" && still.count == 3, "an acked alarm is still the open one: {still:?}");
    assert_eq!(s.list_alarms(Some("open")).await.unwrap().len(), 2);
    assert!(s.ack_alarm(9_999_999, 1).await.unwrap().is_none());

    let resolved = s.resolve_alarms("web", &["service_crashed", "restart_limit"], 60).await.unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!((resolved[0].state.as_str(), resolved[0].resolved_at_ms), ("resolved", Some(60)));
    assert_eq!(s.get_alarm(first.id).await.unwrap().unwrap().state, "resolved");
    let (fresh, new) = s.raise_alarm(&raise("service_crashed", "web", 70)).await.unwrap();
    assert!(new && fresh.id != first.id, "after resolution a repeat opens a new alarm");

    assert!(s.delete_alarm(other.id).await.unwrap());
    assert!(!s.delete_alarm(other.id).await.unwrap());
    // The resolved one is older than 65: dropped; then keep the newest one of the rest.
    assert_eq!(s.trim_alarms(65, 1).await.unwrap(), 2);
    assert_eq!(s.list_alarms(None).await.unwrap().iter().map(|a| a.id).collect::<Vec<_>>(), [fresh.id]);
}

/// Fills every collection, so copies and exports have something of each kind.
async fn populate(s: &dyn Store, n: i64) {
    for i in 0..n {
        s.upsert_model(&model(&format!("svc-{i:03}"))).await.unwrap();
        s.put_runtime(&RuntimeRecord {
            name: format!("svc-{i:03}"),
            ports: vec![9000 + i as u16],
            ..Default::default()
        })
        .await
        .unwrap();
        s.put_setting(&format!("setting-{i}"), &format!("value {i} ✓")).await.unwrap();
        s.module_kv_set(&format!("mod{}", i % 3), &format!("k{i}"), "v").await.unwrap();
        s.append_audit(&audit(i, "admin", &format!("/api/x/{i}"))).await.unwrap();
        let run = TaskRunRecord {
            id: 0,
            task: "backup".into(),
            trigger: "manual".into(),
            started_at_ms: i,
            duration_ms: i,
            result: "ok".into(),
            message: String::new(),
        };
        s.append_task_run(&run).await.unwrap();
        s.raise_alarm(&raise("task_failed", &format!("t{i}"), i)).await.unwrap();
        let t =
            TokenRecord { token_hash: format!("hash{i}"), user: "admin".into(), created_at_ms: i, expires_at_ms: i };
        s.insert_token(&t).await.unwrap();
    }
}

async fn digests(s: &dyn Store) -> Vec<(Collection, transfer::CollectionDigest)> {
    let mut out = Vec::new();
    for c in Collection::ALL {
        out.push((c, transfer::digest(s, c).await.unwrap()));
    }
    out
}

async fn export_import_round_trip(store: Arc<dyn Store>) {
    let s = store.as_ref();
    populate(s, 23).await;
    // Paging walks every record exactly once, in key order.
    let mut keys = Vec::new();
    let mut after: Option<RecordKey> = None;
    loop {
        let page = s.export_page(Collection::ModuleData, after.as_ref(), 4).await.unwrap();
        keys.extend(page.iter().map(|r| Collection::ModuleData.key_of(r).unwrap()));
        if page.len() < 4 {
            break;
        }
        after = keys.last().cloned();
    }
    assert_eq!(keys.len(), 23);
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");

    // Into a fresh SQLite store and back: same counts and checksums everywhere.
    let dir = tempfile::tempdir().unwrap();
    let copy = open_target(&StoreTarget::Sqlite(dir.path().join("copy.db")), true).await.unwrap();
    let copied = transfer::copy_all(s, copy.as_ref()).await.unwrap();
    // 23 records of each collection, and the heads of the 3 modules.
    assert_eq!(copied, 23 * 8 + 3);
    let original = digests(s).await;
    assert_eq!(original, digests(copy.as_ref()).await);
    let count = |c: &Collection| if *c == Collection::ModuleHeads { 3 } else { 23 };
    assert!(original.iter().all(|(c, d)| d.count == count(c)), "{original:?}");
    // The legacy key-value view still pages (archives of older hosts hold it).
    assert_eq!(s.count_records(Collection::ModuleKv).await.unwrap(), 23);
    let legacy = s.export_page(Collection::ModuleKv, None, 2).await.unwrap();
    assert_eq!(legacy[0], json!({"module": "mod0", "key": "k0", "value": "v"}));
    // Copying again is harmless (upserts), and ids continue after imported ones.
    transfer::copy_all(s, copy.as_ref()).await.unwrap();
    assert_eq!(original, digests(copy.as_ref()).await);
    let max = s.list_audit(&AuditQuery { limit: Some(1), ..Default::default() }).await.unwrap()[0].id;
    assert!(copy.append_audit(&audit(99, "admin", "/after")).await.unwrap() > max);
}

async fn import_refuses_bad_records(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let good = json!({"key": "a", "value": "1"});
    let bad = json!({"key": "b"});
    let err = s.import_records(Collection::Settings, &[good, bad]).await.unwrap_err().to_string();
    assert!(err.contains("settings record 1") && err.contains("value"), "{err}");
    assert_eq!(s.count_records(Collection::Settings).await.unwrap(), 0, "nothing written from a bad batch");
}

async fn snapshot_is_a_sqlite_file_with_every_record(store: Arc<dyn Store>) {
    let s = store.as_ref();
    populate(s, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("snap.db");
    s.snapshot_to(&dest).await.unwrap();
    assert!(s.snapshot_to(&dest).await.is_err(), "never overwrites");
    assert!(!dir.path().join("snap.db-wal").exists(), "one self-contained file");
    let snap = SqliteStore::open(&dest).unwrap();
    assert_eq!(digests(s).await, digests(&snap).await);
}

// ---- MongoDB only ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_going_away_fails_fast_and_recovers() {
    if !common::components::mongo() {
        return;
    }
    let mut server = MongoServer::start();
    if !server.is_local() {
        return; // a shared real server is not ours to stop
    }
    let store = MongoStore::connect(&server.target(), true).await.unwrap();
    store.put_setting("k", "before").await.unwrap();
    server.stop();
    let err = common::eventually("a call fails with unavailable", Duration::from_secs(30), || async {
        match store.get_setting("k").await {
            Err(e @ StoreError::Unavailable { .. }) => Some(e),
            _ => None,
        }
    })
    .await;
    assert!(err.to_string().contains("unreachable"), "{err}");
    // While down, calls fail at once instead of waiting for a server each time.
    let started = std::time::Instant::now();
    assert!(matches!(store.put_setting("k", "x").await, Err(StoreError::Unavailable { .. })));
    assert!(started.elapsed() < Duration::from_secs(1), "fail-fast took {:?}", started.elapsed());
    server.restart();
    common::eventually("the store answers again", Duration::from_secs(60), || async {
        store.put_setting("k", "after").await.ok()
    })
    .await;
    assert_eq!(store.get_setting("k").await.unwrap().as_deref(), Some("after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_down_at_start_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let target = MongoTarget {
        url: format!("127.0.0.1:{port}"),
        name: "apollo".into(),
        user: "someone".into(),
        pass_wd: "s3cret-pass".into(),
        start_timeout_secs: 2,
        timeout_secs: 1,
        ..Default::default()
    };
    let err = MongoStore::connect(&target, true).await.unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}/apollo")) && err.contains("db.mongo.url"), "{err}");
    assert!(!err.contains("s3cret-pass"), "no secret in errors: {err}");
    assert!(!format!("{target:?}").contains("s3cret-pass"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_sharing_a_database_keep_their_own_services() {
    if !common::components::mongo() {
        return;
    }
    let server = MongoServer::start();
    let a = MongoStore::connect(&MongoTarget { scope: "host-a".into(), ..server.target() }, true).await.unwrap();
    let b = MongoStore::connect(&MongoTarget { scope: "host-b".into(), ..server.target() }, true).await.unwrap();
    a.put_runtime(&RuntimeRecord { name: "web".into(), pid: Some(1), ..Default::default() }).await.unwrap();
    b.put_runtime(&RuntimeRecord { name: "web".into(), pid: Some(2), ..Default::default() }).await.unwrap();
    assert_eq!(a.get_runtime("web").await.unwrap().unwrap().pid, Some(1));
    assert_eq!(b.get_runtime("web").await.unwrap().unwrap().pid, Some(2));
    // Logins and settings are the fleet's.
    a.put_setting("some.shared.setting", "h").await.unwrap();
    assert_eq!(b.get_setting("some.shared.setting").await.unwrap().as_deref(), Some("h"));
    let ia = a.append_audit(&audit(1, "admin", "/a")).await.unwrap();
    let ib = b.append_audit(&audit(1, "admin", "/b")).await.unwrap();
    assert_ne!(ia, ib);
    assert_eq!(a.list_audit(&AuditQuery::default()).await.unwrap().len(), 1);
    // Each host brings its own SQLite history along, with the same ids: both land.
    let history = json!({"id": 900, "at_ms": 1, "actor": "admin", "remote": "unix", "method": "POST",
        "path": "/old", "status": 200, "result": "ok", "detail": ""});
    a.import_records(Collection::Audit, std::slice::from_ref(&history)).await.unwrap();
    b.import_records(Collection::Audit, std::slice::from_ref(&history)).await.unwrap();
    for store in [&a, &b] {
        let listed = store.list_audit(&AuditQuery::default()).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].id, 900);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_runs_on_mongodb() {
    if !common::components::mongo() {
        return;
    }
    let server = MongoServer::start();
    let deployment = common::Deployment::with(json!({
        "db": {"mongo": {"url": server.url, "name": server.database, "scope": "it", "start_timeout_secs": 20}}
    }));
    deployment.write_model("web.pig", &common::model("web", "1", &[]));
    let host = deployment.start().await;
    let client = host.authed().await;
    let response = client.send(http::Method::GET, "/api/apps", None).await.unwrap();
    let apps = response.json();
    assert_eq!(response.status, 200, "{apps}");
    assert_eq!(apps.as_array().map(|a| a.len()), Some(1), "{apps}");
    host.shutdown().await;

    // What the host wrote is in MongoDB: the model, the login token, the audit of the login.
    let store = MongoStore::connect(&MongoTarget { scope: "it".into(), ..server.target() }, false).await.unwrap();
    assert_eq!(store.list_models().await.unwrap().iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["web"]);
    assert!(store.count_records(Collection::Tokens).await.unwrap() >= 1);
    assert!(store.get_setting("auth.admin_password_hash").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_keeps_serving_while_mongodb_is_down() {
    if !common::components::mongo() {
        return;
    }
    let mut server = MongoServer::start();
    if !server.is_local() {
        return; // a shared real server is not ours to stop
    }
    let deployment = common::Deployment::with(json!({
        "db": {"mongo": {"url": server.url, "name": server.database, "start_timeout_secs": 20, "timeout_secs": 1}}
    }));
    let mut sleeper = common::model("sleeper", "app_sleeper", &[]);
    sleeper["run_data"]["command"] = json!(["/bin/sleep", "1000"]);
    deployment.write_model("sleeper.pig", &sleeper);
    let host = deployment.start().await;
    let socket = host.uds();
    server.stop();

    // What the host holds in memory still serves: health, the services, control.
    let health = host.tcp().send(http::Method::GET, "/healthz", None).await.unwrap();
    assert_eq!(health.status, 200);
    let _: serde_json::Value = socket.post("/api/apps/sleeper/start", None).await.unwrap();
    common::eventually("sleeper running without the database", Duration::from_secs(20), || async {
        let s: serde_json::Value = socket.get("/api/apps/sleeper/status").await.ok()?;
        (s["state"] == "running").then_some(())
    })
    .await;

    // What needs the database says so: a login is 503 naming the database.
    let login = json!({"username": "admin", "password": common::ADMIN_PASSWORD});
    let refused = common::eventually("a login refused as unavailable", Duration::from_secs(30), || async {
        let r = host.tcp().send(http::Method::POST, "/api/auth/login", Some(&login)).await.ok()?;
        (r.status == 503).then_some(r.json())
    })
    .await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("unreachable") && message.contains(&server.database), "{refused}");

    // Back: logins work again without restarting the host.
    server.restart();
    common::eventually("a login once the database is back", Duration::from_secs(60), || async {
        let r = host.tcp().send(http::Method::POST, "/api/auth/login", Some(&login)).await.ok()?;
        (r.status == 200).then_some(())
    })
    .await;
    let _: serde_json::Value = socket.post("/api/apps/sleeper/stop", None).await.unwrap();
    host.shutdown().await;
}
