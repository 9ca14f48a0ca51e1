//! Keeps the registry in step with its folder: inotify events (debounced, so an
//! editor's write-rename-chmod burst is one reload) plus a periodic full re-read as a
//! safety net for filesystems that emit no events (NFS, some container mounts).
//! The task belongs to the caller's `TaskTracker` and stops when the token is cancelled.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Registry;
use crate::config::RegistryConfig;

/// Starts watching. Failing to set up inotify is logged and leaves the periodic
/// re-read in charge; it never stops the host.
pub fn spawn_watcher(registry: Arc<Registry>, cfg: &RegistryConfig, tracker: &TaskTracker, cancel: CancellationToken) {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let watcher = if cfg.watch {
        if let Err(e) = std::fs::create_dir_all(registry.models_dir()) {
            tracing::warn!(dir = %registry.models_dir().display(), "cannot create model folder: {e}");
        }
        let tx = tx.clone();
        let made = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok() {
                // A full channel already means "reload pending": dropping is correct.
                let _ = tx.try_send(());
            }
        });
        match made.and_then(|mut w| w.watch(registry.models_dir(), RecursiveMode::NonRecursive).map(|()| w)) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(dir = %registry.models_dir().display(), "model folder not watched ({e}); relying on the periodic re-read");
                None
            }
        }
    } else {
        None
    };
    let debounce = Duration::from_millis(cfg.debounce_ms);
    let rescan = Duration::from_secs(cfg.rescan_secs.max(1));
    tracker.spawn(async move {
        // Owned by the task so inotify stops exactly when the task ends.
        let _watcher = watcher;
        let mut ticker = tokio::time::interval(rescan);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate; the host already loaded
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(()) = rx.recv() => {
                    // Let the burst settle, then swallow what arrived meanwhile.
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(debounce) => {}
                    }
                    while rx.try_recv().is_ok() {}
                }
                _ = ticker.tick() => {}
            }
            if let Err(e) = registry.reload().await {
                tracing::error!("model reload failed: {e}");
            }
        }
    });
}
