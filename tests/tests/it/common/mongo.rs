//! The MongoDB-wire server the store tests use: `APOLLO_TEST_MONGO_URL` (a real
//! MongoDB) when set, else an nx-27017 process of the test's own (installed by
//! `.ci/python-clients-up.sh`, started through `.ci/nx27017-launch.py`) on a free loopback
//! port with its data in a temp dir. nx-27017 is an approximation of MongoDB (SQLite
//! underneath); the suite only relies on what both do.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use apollo_host::store::MongoTarget;

/// A MongoDB-wire server for one test, stopped (if it is ours) when dropped.
#[derive(Debug)]
pub struct MongoServer {
    pub url: String,
    /// A database of this test's own.
    pub database: String,
    port: u16,
    data: Option<tempfile::TempDir>,
    child: Option<Child>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

fn unique_database(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn venv_python() -> PathBuf {
    let venv = std::env::var("APOLLO_TEST_VENV").unwrap_or_else(|_| "/var/tmp/apollo-test-venv".into());
    Path::new(&venv).join("bin/python")
}

/// Whether a server can be had: `APOLLO_TEST_MONGO_URL`, or nx-27017 installed.
pub fn installed() -> bool {
    std::env::var_os("APOLLO_TEST_MONGO_URL").is_some() || venv_python().exists()
}

impl MongoServer {
    pub fn start() -> Self {
        if let Ok(url) = std::env::var("APOLLO_TEST_MONGO_URL") {
            return MongoServer { url, database: unique_database("apollo_test"), port: 0, data: None, child: None };
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = MongoServer {
            url: format!("mongodb://127.0.0.1:{port}"),
            database: unique_database("apollo_test"),
            port,
            data: Some(tempfile::tempdir().unwrap()),
            child: None,
        };
        server.launch();
        server
    }

    /// Whether the server is ours (nx-27017), so the test can stop and restart it.
    pub fn is_local(&self) -> bool {
        self.data.is_some()
    }

    fn launch(&mut self) {
        let python = venv_python();
        assert!(python.exists(), "{} missing: run ./.ci/python-clients-up.sh (make test does)", python.display());
        let data = self.data.as_ref().unwrap().path();
        let log = std::fs::File::create(data.join("nx-27017.log")).unwrap();
        let child = Command::new(python)
            .arg(repo_root().join(".ci/nx27017-launch.py"))
            .args(["--db", &data.join("mongo.db").display().to_string(), "--host", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            // Its defaults are shared /tmp files: a second server would refuse to start.
            .args(["--pid-file", &data.join("nx-27017.pid").display().to_string()])
            .args(["--log-file", &data.join("nx-27017.server.log").display().to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start nx-27017");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nx-27017 did not listen on {} within 30 s", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops our server (its data stays for `restart`).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts our server again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn target(&self) -> MongoTarget {
        MongoTarget {
            url: self.url.clone(),
            name: self.database.clone(),
            start_timeout_secs: 20,
            timeout_secs: 2,
            scope: "test-host".into(),
            ..Default::default()
        }
    }

    /// Another database on the same server.
    pub fn other_target(&self, prefix: &str) -> MongoTarget {
        MongoTarget { name: unique_database(prefix), ..self.target() }
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        self.stop();
    }
}
