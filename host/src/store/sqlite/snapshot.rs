//! A consistent copy of the live SQLite file for backups, taken through SQLite's
//! online backup API. It does not decide where the copy goes or when.

use std::path::Path;

use rusqlite::Connection;

/// SQLite's online backup from a second, read-only connection: the host's own
/// connection (and its mutex) stays free, and in WAL mode writers are not blocked. All
/// pages are copied in one step, inside one read transaction, so the copy is one
/// consistent point in time (a stepwise copy would restart on every concurrent write).
pub(super) fn snapshot_file(source: &Path, dest: &Path) -> rusqlite::Result<()> {
    use rusqlite::OpenFlags;
    use rusqlite::backup::{Backup, StepResult};
    let from = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    from.busy_timeout(std::time::Duration::from_secs(5))?;
    let mut to = Connection::open(dest)?;
    {
        let backup = Backup::new(&from, &mut to)?;
        let mut waits = 0;
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More => {}
                // A checkpoint or a writer holding a lock for a moment: wait, bounded.
                StepResult::Busy | StepResult::Locked if waits < 200 => {
                    waits += 1;
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the store stayed locked for 5 s".into()),
                    ));
                }
                // `StepResult` is non-exhaustive; nothing else is documented.
                _ => break,
            }
        }
    }
    // One self-contained file: no -wal/-shm beside it in the archive or after restore.
    to.pragma_update(None, "journal_mode", "DELETE")?;
    let check: String = to.pragma_query_value(None, "quick_check", |r| r.get(0))?;
    if check != "ok" {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(format!("snapshot failed its quick_check: {check}")),
        ));
    }
    Ok(())
}
