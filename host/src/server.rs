//! Assembling and running a host: open the store, settle the admin password, load the
//! registry, bind TCP and the unix socket, serve until shut down, then stop every
//! background task. Listeners are bound here but `serve` takes them from outside, so
//! tests run real hosts on `127.0.0.1:0` and a temp socket (mini-redis style).

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::ConnectInfo;
use nix::sys::stat::{Mode, umask};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{self, Transport};
use crate::auth::{AuthService, PasswordSource};
use crate::config::Config;
use crate::data_dir::{DataDirError, DataDirLock, lock_data_dir};
use crate::events::EventBus;
use crate::listener::{Accept, ConnectionLimits, serve_listener_with};
use crate::registry::{Registry, spawn_watcher};
use crate::state::{AppState, HostContext};
use crate::store::StoreError;
use crate::supervisor::Supervisor;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source} ({hint})")]
    BindTcp {
        addr: String,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("unix socket {path}: {message}")]
    Socket { path: String, message: String },
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
}

/// What `build_state` found that the operator must be told about.
#[derive(Debug)]
pub struct Bootstrap {
    pub password_source: PasswordSource,
    /// A freshly generated admin password, to be shown exactly once.
    pub generated_password: Option<String>,
}

/// Opens the store, settles auth, performs the first registry load and starts the
/// supervisor (which re-adopts or restarts services). Background work goes on `tasks`.
pub async fn build_state(
    config: Config,
    env_admin_password: Option<String>,
    lock: DataDirLock,
    tasks: &TaskTracker,
    cancel: CancellationToken,
) -> Result<(AppState, Bootstrap), HostError> {
    std::fs::create_dir_all(&config.app_root)
        .map_err(|source| HostError::CreateDir { path: config.app_root.display().to_string(), source })?;
    let metrics = Arc::new(crate::metrics::Metrics::new(&config.metrics));
    let store =
        crate::metrics::InstrumentedStore::wrap(crate::store::open_configured(&config.db).await?, Arc::clone(&metrics));
    let (auth, password_source, generated_password) =
        AuthService::bootstrap(&config.auth, Arc::clone(&store), env_admin_password).await?;
    let auth = Arc::new(auth);
    let events = EventBus::new();
    // Subscribed before anything publishes, so no failure at start-up goes unnoticed.
    let alarms =
        crate::alarms::AlarmManager::launch(&config, Arc::clone(&store), events.clone(), tasks, cancel.clone());
    let registry = Arc::new(Registry::new(config.models_dir(), Arc::clone(&store), events.clone()));
    let report = registry.reload().await?;
    tracing::info!(
        dir = %registry.models_dir().display(),
        services = report.added.len() + report.changed.len() + report.unchanged,
        problems = report.problems,
        "models loaded"
    );
    let cancel_for_state = cancel.clone();
    // Connects on first use: the host starts and serves with no engine at all.
    let docker = Arc::new(crate::docker::DockerManager::new(config.ci.clone()));
    let supervisor = Supervisor::launch(
        config.clone(),
        Arc::clone(&registry),
        Arc::clone(&store),
        events.clone(),
        Arc::clone(&docker),
        tasks,
        cancel,
    )
    .await;
    let store_admin = Arc::new(crate::modules::StoreAdmin::new(
        Arc::clone(&store),
        crate::store::StoreTarget::configured(&config.db),
        &config.data_dir,
        crate::store::MongoTarget::from(&config.db.mongo).scope(),
        config.modules.store_access.clone(),
    ));
    let modules = Arc::new(crate::modules::ModuleHost::new(
        config.modules.clone(),
        &config.data_dir,
        Arc::clone(&store),
        store_admin,
        Arc::clone(&supervisor),
        events.clone(),
        tasks.clone(),
    ));
    let loaded = modules.reload().await;
    tracing::info!(dir = %modules.dir().display(), modules = loaded.modules.len(), problems = loaded.problems.len(), "modules loaded");
    crate::modules::spawn_watcher(Arc::clone(&modules), tasks, cancel_for_state.clone());
    let backups = Arc::new(crate::backup::BackupManager::new(
        &config,
        Arc::clone(&store),
        Arc::clone(&registry),
        Arc::clone(&supervisor),
    ));
    let builtins = crate::tasks::builtin::builtins(
        &config,
        Arc::clone(&registry),
        Arc::clone(&supervisor),
        Arc::clone(&store),
        Arc::clone(&backups),
        Arc::clone(&auth),
    );
    let task_manager = crate::tasks::TaskManager::launch_with(
        builtins,
        Arc::clone(&store),
        events.clone(),
        config.tasks.history_keep,
        std::time::Duration::from_secs(config.tasks.run_timeout_secs.max(1)),
        tasks,
        cancel_for_state.clone(),
    )
    .await;
    let history = Arc::new(crate::metrics::ServiceHistory::new(config.metrics.history_interval_secs));
    history.spawn_sampler(Arc::clone(&supervisor), tasks, cancel_for_state.clone());
    let state = AppState::new(HostContext {
        config,
        registry,
        store,
        auth,
        events,
        started_at: Instant::now(),
        supervisor,
        modules,
        task_manager,
        alarms,
        backups,
        docker,
        shutdown: cancel_for_state,
        tasks: tasks.clone(),
        metrics,
        history,
        data_dir_lock: lock,
    });
    Ok((state, Bootstrap { password_source, generated_password }))
}

/// Binds the unix socket with mode 0600. A stale socket file (no one answering) is
/// replaced; a live one means another host is running and is an error; a non-socket
/// file at the path is never deleted.
pub async fn bind_unix_socket(path: &Path) -> Result<UnixListener, HostError> {
    let fail = |message: String| HostError::Socket { path: path.display().to_string(), message };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| fail(format!("cannot create its directory: {e}")))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if tokio::net::UnixStream::connect(path).await.is_ok() {
                return Err(fail("another host is already serving on it; stop it or set server.uds".into()));
            }
            std::fs::remove_file(path).map_err(|e| fail(format!("cannot remove the stale socket: {e}")))?;
            tracing::info!(path = %path.display(), "replaced stale unix socket");
        }
        Ok(_) => return Err(fail("exists and is not a socket; refusing to delete it (set server.uds)".into())),
        Err(_) => {}
    }
    // The socket is trusted without a token, so it must never exist with a looser mode,
    // not even between bind and chmod: create it under a 0177 umask. (The umask is
    // process-wide; at this point in start-up no other thread creates files.)
    let previous = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(previous);
    let listener = bound.map_err(|e| fail(format!("cannot bind: {e}")))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| fail(format!("cannot set mode 0600: {e}")))?;
    Ok(listener)
}

/// The unix-socket listener with a second guard behind the file mode: connections from
/// another user id (possible if the socket sits in a directory where someone can
/// re-create or chmod it) are closed unanswered. Root is allowed.
#[derive(Debug)]
pub struct OwnerOnlyUnixListener {
    inner: UnixListener,
    owner: u32,
}

impl OwnerOnlyUnixListener {
    pub fn new(inner: UnixListener) -> Self {
        Self { inner, owner: nix::unistd::geteuid().as_raw() }
    }
}

impl Accept for OwnerOnlyUnixListener {
    type Io = tokio::net::UnixStream;
    type Peer = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Peer) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => match stream.peer_cred() {
                    Ok(cred) if cred.uid() == self.owner || cred.uid() == 0 => return (stream, addr),
                    Ok(cred) => tracing::warn!(uid = cred.uid(), "unix socket: refused a connection from another user"),
                    Err(e) => tracing::warn!("unix socket: cannot read peer credentials ({e}); connection refused"),
                },
                // Transient (EMFILE and the like): back off instead of spinning.
                Err(e) => {
                    tracing::warn!("unix socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// A host serving in the background; `shutdown` stops it gracefully.
#[derive(Debug)]
pub struct RunningHost {
    pub state: AppState,
    pub http_addr: SocketAddr,
    pub uds_path: PathBuf,
    pub bootstrap: Bootstrap,
    cancel: CancellationToken,
    tasks: TaskTracker,
    server: JoinHandle<Result<(), HostError>>,
}

impl RunningHost {
    /// Builds the state, binds `server.host:server.port` and `server.uds`, starts the
    /// watcher and housekeeping, and serves.
    pub async fn start(config: Config, env_admin_password: Option<String>) -> Result<Self, HostError> {
        let addr = format!("{}:{}", config.server.host, config.server.port);
        let uds_path = config.server.uds.clone();
        let lock = lock_data_dir(&config.data_dir)?;
        let tcp = TcpListener::bind(&addr).await.map_err(|source| HostError::BindTcp {
            addr: addr.clone(),
            hint: match source.kind() {
                std::io::ErrorKind::AddrInUse => {
                    "the port is taken, maybe by another host; set server.port, or 0 for any free port"
                }
                std::io::ErrorKind::PermissionDenied => "ports below 1024 need privileges; use a higher server.port",
                _ => "check server.host and server.port",
            },
            source,
        })?;
        let http_addr = tcp.local_addr().map_err(HostError::Serve)?;
        let uds = bind_unix_socket(&uds_path).await?;
        // Only now touch the store: a host that cannot serve must not, for example,
        // generate an admin password that nobody will ever see.
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let (state, bootstrap) = match build_state(config, env_admin_password, lock, &tasks, cancel.clone()).await {
            Ok(built) => built,
            Err(e) => {
                let _ = std::fs::remove_file(&uds_path);
                return Err(e);
            }
        };

        spawn_watcher(Arc::clone(&state.registry), &state.config.registry, &tasks, cancel.clone());
        let server = tokio::spawn(serve(state.clone(), tcp, uds, cancel.clone()));
        tracing::info!(%http_addr, uds = %uds_path.display(), version = crate::VERSION, "apollo serving");
        Ok(Self { state, http_addr, uds_path, bootstrap, cancel, tasks, server })
    }

    /// A token that, when cancelled, shuts the host down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stops accepting, lets in-flight requests finish, stops background tasks and
    /// removes the socket file.
    pub async fn shutdown(self) -> Result<(), HostError> {
        self.cancel.cancel();
        self.wait().await
    }

    /// Waits until the host stops (after `shutdown_token()` is cancelled).
    pub async fn wait(self) -> Result<(), HostError> {
        let served = self.server.await.unwrap_or_else(|e| Err(HostError::Serve(std::io::Error::other(e))));
        // The server may also have stopped on its own (an I/O error): stop the rest too.
        self.cancel.cancel();
        self.state.modules.shutdown_all().await;
        let stop_services = self.state.config.supervisor.stop_services_on_exit;
        self.state.supervisor.shutdown(stop_services).await;
        self.tasks.close();
        self.tasks.wait().await;
        let _ = std::fs::remove_file(&self.uds_path);
        tracing::info!("apollo stopped");
        served
    }
}

/// Serves the router on both listeners until `cancel` fires, then drains.
pub async fn serve(
    state: AppState,
    tcp: TcpListener,
    uds: UnixListener,
    cancel: CancellationToken,
) -> Result<(), HostError> {
    let limits = ConnectionLimits::from_config(&state.config.server);
    let module_listeners = api::module_listeners::run(state.clone(), limits, cancel.clone());
    let app = api::router(state.clone());
    // The router is the last thing start-up builds.
    crate::allocator::release_startup_memory();
    // Module routes that are not audited skip the router (`api/module_mount.rs`).
    let tcp_app = api::admin_service(state.clone(), app.clone().layer(Extension(Transport::Tcp)), Transport::Tcp);
    let uds_app = api::admin_service(state, app.layer(Extension(Transport::UnixSocket)), Transport::UnixSocket);
    let peer_address = |extensions: &mut http::Extensions, peer: &SocketAddr| {
        extensions.insert(ConnectInfo(*peer));
    };
    let uds = OwnerOnlyUnixListener::new(uds);
    tokio::join!(
        serve_listener_with(tcp, tcp_app, limits, peer_address, cancel.clone()),
        serve_listener_with(uds, uds_app, limits, |_: &mut _, _: &_| {}, cancel),
        module_listeners,
    );
    Ok(())
}

/// Resolves when SIGTERM or SIGINT arrives (the seed ignored SIGTERM).
pub async fn termination_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
