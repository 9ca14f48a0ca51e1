//! Keeps the loaded modules in step with the modules folder: a new or replaced `.so`
//! (written elsewhere and renamed in, as `make modules` does) is live within about a
//! second. Events are debounced so a copy in progress is not loaded half-written;
//! libraries are also checked for completeness before dlopen (`loader::check_elf`).

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ModuleHost;

/// Quiet time after the last change before reloading.
const DEBOUNCE: Duration = Duration::from_millis(300);

pub fn spawn_watcher(host: Arc<ModuleHost>, tracker: &TaskTracker, cancel: CancellationToken) {
    let dir = host.dir().to_path_buf();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), "cannot create the modules folder ({e}); it is not watched");
        return;
    }
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let made = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Only changes count. Reading a library (which every reload does) raises open
        // and close-after-read events: reacting to those would reload for ever.
        use notify::EventKind::{Access, Create, Modify, Remove};
        use notify::event::{AccessKind, AccessMode};
        if let Ok(event) = res
            && matches!(event.kind, Create(_) | Modify(_) | Remove(_) | Access(AccessKind::Close(AccessMode::Write)))
        {
            let _ = tx.try_send(());
        }
    });
    let watcher = match made.and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w)) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "modules folder not watched ({e}); use POST /api/modules/reload");
            return;
        }
    };
    tracker.spawn(async move {
        let _watcher = watcher;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                Some(()) = rx.recv() => {}
            }
            // Debounce: wait until the folder has been quiet for a moment.
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(DEBOUNCE) => break,
                    Some(()) = rx.recv() => {}
                }
            }
            host.reload().await;
        }
    });
}
