//! Restarts a service when its files change (PM2's `--watch`), per the model's
//! `supervise.watch`: inotify on the service's directory (or the listed paths inside
//! it), a burst of changes settled by a quiet `debounce_ms` becomes ONE restart, and
//! the ignore globs, the service's own log, tmp and pid files never count.
//!
//! One watcher per service with watching on, owned by the supervisor's task tracker and
//! cancelled with the host; `follow` is called with every model change, so a watcher
//! starts, stops or is replaced when the settings change and is kept when they don't.
//! It deliberately does not decide whether a restart is due: the actor restarts only a
//! service that is meant to run (`Command::FilesChanged`). Filesystems without inotify
//! (NFS, some container mounts) report no changes: watching is not polled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::actor::Command;
use super::spec::{Mode, ServiceSpec};

/// Changed paths reported in one restart message at most; the rest are counted.
const MAX_REPORTED_PATHS: usize = 100;
/// A burst that never goes quiet still restarts after this many debounce windows.
const MAX_WINDOWS_PER_BURST: u32 = 10;

/// What one service's watcher watches, resolved against the host's folders. Two equal
/// plans watch the same things, so a model change that keeps the plan keeps the watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchPlan {
    name: String,
    /// `<app_root>/<name>`: ignore globs are matched relative to it.
    service_dir: PathBuf,
    /// The host's `app_root`: no watched path may resolve (through symlinks) outside it.
    app_root: PathBuf,
    roots: Vec<PathBuf>,
    ignore: Vec<String>,
    debounce: Duration,
    /// The service's log and tmp directories: what the host and the service write there
    /// is output, not source.
    never_under: Vec<PathBuf>,
    /// `<app_pids>/<name>.pid`; further instances' files sit next to it.
    pid_file: PathBuf,
}

impl WatchPlan {
    /// `None` when the service has watching off, or nothing the host could restart.
    pub fn for_spec(spec: &ServiceSpec) -> Option<Self> {
        let settings = &spec.supervise.watch;
        if !settings.enabled || spec.mode == Mode::Unmanaged {
            return None;
        }
        let service_dir = spec.paths.app_root.clone();
        let roots = if settings.paths.is_empty() {
            vec![service_dir.clone()]
        } else {
            settings.paths.iter().map(|p| service_dir.join(p)).collect()
        };
        Some(Self {
            name: spec.name.clone(),
            app_root: spec.config.app_root.clone(),
            roots,
            ignore: settings.ignore.clone(),
            debounce: Duration::from_millis(settings.debounce_ms),
            never_under: vec![spec.log_dir.clone(), spec.paths.tmp_dir.clone()],
            pid_file: spec.paths.pid_file.clone(),
            service_dir,
        })
    }
}

/// Decides, on notify's thread, whether a changed path counts.
#[derive(Debug)]
struct ChangeFilter {
    service_dir: PathBuf,
    ignore: GlobSet,
    never_under: Vec<PathBuf>,
    pid_dir: PathBuf,
    name: String,
}

impl ChangeFilter {
    fn new(plan: &WatchPlan) -> Result<Self, globset::Error> {
        let mut globs = GlobSetBuilder::new();
        for glob in &plan.ignore {
            // `*` crosses `/` (as in PM2's ignore_watch): `*.log` ignores logs at any depth.
            globs.add(GlobBuilder::new(glob).literal_separator(false).build()?);
        }
        Ok(Self {
            service_dir: plan.service_dir.clone(),
            ignore: globs.build()?,
            never_under: plan.never_under.clone(),
            pid_dir: plan.pid_file.parent().map(Path::to_path_buf).unwrap_or_default(),
            name: plan.name.clone(),
        })
    }

    fn counts(&self, path: &Path) -> bool {
        if self.never_under.iter().any(|dir| path.starts_with(dir)) || self.is_pid_file(path) {
            return false;
        }
        let relative = path.strip_prefix(&self.service_dir).unwrap_or(path);
        // A glob naming a directory (`node_modules`, `logs/**`) ignores what is inside it.
        !relative.ancestors().filter(|a| !a.as_os_str().is_empty()).any(|a| self.ignore.is_match(a))
    }

    /// `<name>.pid` and `<name>-<i>.pid` in the pid folder.
    fn is_pid_file(&self, path: &Path) -> bool {
        path.parent() == Some(self.pid_dir.as_path())
            && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.strip_suffix(".pid").is_some_and(|stem| {
                    stem == self.name
                        || stem
                            .strip_prefix(&self.name)
                            .and_then(|rest| rest.strip_prefix('-'))
                            .is_some_and(|i| i.parse::<u32>().is_ok())
                })
            })
    }

    fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.service_dir).map(Path::to_path_buf).unwrap_or_else(|_| path.to_path_buf())
    }
}

/// Content and name changes count; reads (`Access`) and unknown kinds do not.
fn is_change(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_))
}

#[derive(Debug)]
struct Running {
    plan: WatchPlan,
    cancel: CancellationToken,
}

/// The watchers of every service, keyed by service name.
#[derive(Debug)]
pub struct Watchers {
    tracker: TaskTracker,
    /// Cancelled with the host; every watcher's token is a child of it.
    cancel: CancellationToken,
    /// An async lock: it is held while a watcher is set up (on a blocking thread), so
    /// two changes of one service's settings are applied in order.
    running: tokio::sync::Mutex<BTreeMap<String, Running>>,
}

impl Watchers {
    pub fn new(tracker: TaskTracker, cancel: CancellationToken) -> Self {
        Self { tracker, cancel, running: tokio::sync::Mutex::new(BTreeMap::new()) }
    }

    /// Brings `name`'s watcher in line with its (new) spec: started, replaced, kept or
    /// stopped. Restarts go to `commands`, held weakly so a watcher never keeps a
    /// removed actor's channel open. Setting up inotify walks the whole tree, so it runs
    /// on a blocking thread and the caller holds no supervisor lock meanwhile; when this
    /// returns, changes are being watched.
    pub async fn follow(&self, spec: &ServiceSpec, commands: &mpsc::Sender<Command>) {
        let plan = WatchPlan::for_spec(spec);
        let mut running = self.running.lock().await;
        if let (Some(current), Some(plan)) = (running.get(&spec.name), &plan)
            && current.plan == *plan
        {
            return;
        }
        if let Some(old) = running.remove(&spec.name) {
            old.cancel.cancel();
        }
        let Some(plan) = plan else { return };
        if self.cancel.is_cancelled() {
            return;
        }
        let for_setup = plan.clone();
        let setup = match tokio::task::spawn_blocking(move || set_up(&for_setup)).await {
            Ok(setup) => setup,
            Err(e) => Err(WatchError::Path { path: plan.service_dir.clone(), message: format!("setup failed: {e}") }),
        };
        match setup {
            Ok((watcher, changes, watched)) => {
                tracing::info!(service = %spec.name, paths = watched, "watching files for restarts");
                let cancel = self.cancel.child_token();
                self.tracker.spawn(restart_on_bursts(
                    watcher,
                    changes,
                    commands.downgrade(),
                    plan.debounce,
                    cancel.clone(),
                ));
                running.insert(spec.name.clone(), Running { plan, cancel });
            }
            Err(e) => tracing::warn!(service = %spec.name, "files not watched: {e}"),
        }
    }

    /// Stops `name`'s watcher (its model is gone).
    pub async fn forget(&self, name: &str) {
        if let Some(old) = self.running.lock().await.remove(name) {
            old.cancel.cancel();
        }
    }

    /// Stops every watcher (host shutdown).
    pub async fn stop_all(&self) {
        self.cancel.cancel();
        self.running.lock().await.clear();
    }
}

#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("supervise.watch.ignore: {0}")]
    Glob(#[from] globset::Error),
    #[error("inotify: {0}")]
    Notify(#[from] notify::Error),
    #[error("{path}: {message}")]
    Path { path: PathBuf, message: String },
    #[error("none of the watched paths exists")]
    NothingToWatch,
}

/// The watcher and its changes, once inotify watches the plan's paths (blocking: it
/// walks every tree). A listed path that does not exist (yet) or leaves `app_root`
/// through a symlink is skipped with a warning; the service's own directory is created
/// if missing, as its first start would.
type Setup = (notify::RecommendedWatcher, mpsc::Receiver<Vec<PathBuf>>, usize);

fn set_up(plan: &WatchPlan) -> Result<Setup, WatchError> {
    let filter = ChangeFilter::new(plan)?;
    std::fs::create_dir_all(&plan.service_dir)
        .map_err(|e| WatchError::Path { path: plan.service_dir.clone(), message: e.to_string() })?;
    let app_root = std::fs::canonicalize(&plan.app_root)
        .map_err(|e| WatchError::Path { path: plan.app_root.clone(), message: e.to_string() })?;

    // Bounded: when full, a restart is pending anyway; the dropped paths only shorten
    // the message.
    let (tx, rx) = mpsc::channel::<Vec<PathBuf>>(256);
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if !is_change(&event.kind) {
            return;
        }
        let counted: Vec<PathBuf> =
            event.paths.iter().filter(|p| filter.counts(p)).map(|p| filter.relative(p)).collect();
        if !counted.is_empty() {
            let _ = tx.try_send(counted);
        }
    };
    // Symlinked directories inside the tree are not followed: they may lead outside
    // app_root, and only the roots are checked against it.
    let mut watcher = notify::RecommendedWatcher::new(handler, notify::Config::default().with_follow_symlinks(false))?;
    let mut watched = 0;
    for root in &plan.roots {
        match std::fs::canonicalize(root) {
            Ok(real) if real.starts_with(&app_root) => {
                watcher.watch(root, RecursiveMode::Recursive)?;
                watched += 1;
            }
            Ok(real) => tracing::warn!(
                service = %plan.name,
                path = %root.display(),
                "not watched: it resolves to {}, outside app_root {}",
                real.display(),
                app_root.display()
            ),
            Err(e) => tracing::warn!(service = %plan.name, path = %root.display(), "not watched: {e}"),
        }
    }
    if watched == 0 {
        return Err(WatchError::NothingToWatch);
    }
    Ok((watcher, rx, watched))
}

/// Waits for a change, collects the burst until `debounce` passes without another,
/// then asks the actor for one restart. Ends on cancel or when the actor is gone.
async fn restart_on_bursts(
    watcher: notify::RecommendedWatcher,
    mut changes: mpsc::Receiver<Vec<PathBuf>>,
    commands: mpsc::WeakSender<Command>,
    debounce: Duration,
    cancel: CancellationToken,
) {
    // Owned here so inotify stops exactly when the task ends.
    let _watcher = watcher;
    loop {
        let mut changed = tokio::select! {
            () = cancel.cancelled() => return,
            first = changes.recv() => match first {
                Some(paths) => paths,
                None => return,
            },
        };
        for _ in 0..MAX_WINDOWS_PER_BURST {
            tokio::select! {
                () = cancel.cancelled() => return,
                more = changes.recv() => match more {
                    Some(paths) => changed.extend(paths),
                    None => return,
                },
                () = tokio::time::sleep(debounce) => break,
            }
        }
        changed.sort();
        changed.dedup();
        changed.truncate(MAX_REPORTED_PATHS);
        let Some(actor) = commands.upgrade() else { return };
        if actor.send(Command::FilesChanged { changed }).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(ignore: &[&str]) -> WatchPlan {
        WatchPlan {
            name: "web".into(),
            service_dir: "/srv/apps/web".into(),
            app_root: "/srv/apps".into(),
            roots: vec!["/srv/apps/web".into()],
            ignore: ignore.iter().map(|s| s.to_string()).collect(),
            debounce: Duration::from_millis(100),
            never_under: vec!["/srv/apps/web/logs".into(), "/srv/tmp/web".into()],
            pid_file: "/srv/pids/web.pid".into(),
        }
    }

    #[test]
    fn ignore_globs_match_files_and_whole_directories() {
        let filter = ChangeFilter::new(&plan(&["*.tmp", "node_modules", "cache/**"])).unwrap();
        assert!(filter.counts(Path::new("/srv/apps/web/app.js")));
        assert!(filter.counts(Path::new("/srv/apps/web/src/lib.js")));
        assert!(!filter.counts(Path::new("/srv/apps/web/x.tmp")));
        assert!(!filter.counts(Path::new("/srv/apps/web/deep/er/x.tmp")), "* crosses /");
        assert!(!filter.counts(Path::new("/srv/apps/web/node_modules/a/index.js")));
        assert!(!filter.counts(Path::new("/srv/apps/web/cache/blob")));
        assert!(filter.counts(Path::new("/srv/apps/web/cachefile")));
    }

    #[test]
    fn own_log_tmp_and_pid_files_never_count() {
        let filter = ChangeFilter::new(&plan(&[])).unwrap();
        assert!(!filter.counts(Path::new("/srv/apps/web/logs/web.log")));
        assert!(!filter.counts(Path::new("/srv/tmp/web/scratch")));
        assert!(!filter.counts(Path::new("/srv/pids/web.pid")));
        assert!(!filter.counts(Path::new("/srv/pids/web-3.pid")));
        assert!(filter.counts(Path::new("/srv/pids/webapp.pid")), "another service's pid file is not ours");
    }
}
