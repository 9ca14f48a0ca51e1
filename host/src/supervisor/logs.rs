//! A service's log file `<app_log_dir>/<name>/<name>.log`. Children and scripts get the
//! file itself (O_APPEND) as stdout and stderr, never a pipe: a service keeps logging,
//! and keeps running, while the host restarts (a pipe would hand it SIGPIPE).
//! Rotation therefore copies then truncates (logrotate's copytruncate), which works
//! under O_APPEND writers. Also: lines the supervisor writes itself, tail, follow.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServiceLog {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
}

impl ServiceLog {
    pub fn new(dir: &Path, name: &str, max_bytes: u64, keep: usize) -> Self {
        Self { path: dir.join(format!("{name}.log")), max_bytes, keep }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file opened for appending, to hand to a child as stdout/stderr.
    pub fn open_append(&self) -> std::io::Result<File> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        OpenOptions::new().create(true).append(true).open(&self.path)
    }

    /// Appends one `[apollo]` line. Logging must never stop supervision: an I/O error
    /// is reported through tracing and the line dropped.
    pub fn host_line(&self, message: &str) {
        let stamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let result = self.open_append().and_then(|mut f| writeln!(f, "[apollo] {stamp} {message}"));
        if let Err(e) = result {
            tracing::warn!(log = %self.path.display(), "cannot write service log: {e}");
        }
    }

    /// Rotates when the file is over `max_bytes`: `.N-1` → `.N` …, copy to `.1`, truncate.
    /// Returns whether it rotated.
    pub fn rotate_if_needed(&self) -> std::io::Result<bool> {
        let size = match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if size <= self.max_bytes {
            return Ok(false);
        }
        if self.keep == 0 {
            // No history wanted: just start over.
            OpenOptions::new().write(true).open(&self.path)?.set_len(0)?;
            return Ok(true);
        }
        let numbered = |i: usize| PathBuf::from(format!("{}.{i}", self.path.display()));
        let _ = std::fs::remove_file(numbered(self.keep));
        for i in (1..self.keep).rev() {
            if numbered(i).exists() {
                std::fs::rename(numbered(i), numbered(i + 1))?;
            }
        }
        std::fs::copy(&self.path, numbered(1))?;
        OpenOptions::new().write(true).open(&self.path)?.set_len(0)?;
        Ok(true)
    }

    /// The last `n` lines, read backwards in blocks (a big log is not read whole), and
    /// continued into `.1` when the current file has fewer.
    pub fn tail(&self, n: usize) -> std::io::Result<Vec<String>> {
        let mut lines = tail_file(&self.path, n)?;
        if lines.len() < n {
            let older = tail_file(Path::new(&format!("{}.1", self.path.display())), n - lines.len())?;
            lines.splice(0..0, older);
        }
        Ok(lines)
    }

    /// The file's current size, to hand to `follow` after a `tail` so no line falls
    /// between the two.
    pub fn size(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// Polls for bytes appended after `offset` and sends them line by line until the
    /// receiver goes away. A truncation (rotation) restarts from the beginning.
    pub async fn follow(self, mut offset: u64, tx: tokio::sync::mpsc::Sender<String>) {
        let mut partial = String::new();
        loop {
            let len = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
            if len < offset {
                offset = 0;
            }
            if len > offset {
                let mut chunk = Vec::new();
                if let Ok(mut f) = File::open(&self.path)
                    && f.seek(SeekFrom::Start(offset)).is_ok()
                {
                    let _ = f.take(1 << 20).read_to_end(&mut chunk);
                }
                offset += chunk.len() as u64;
                partial.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(i) = partial.find('\n') {
                    let line: String = partial.drain(..=i).collect();
                    if tx.send(line.trim_end_matches('\n').to_string()).await.is_err() {
                        return;
                    }
                }
            }
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }
}

fn tail_file(path: &Path, n: usize) -> std::io::Result<Vec<String>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    const BLOCK: u64 = 64 * 1024;
    let len = file.metadata()?.len();
    let mut start = len;
    let mut buf: Vec<u8> = Vec::new();
    // Read blocks from the end until the buffer holds more than n line breaks.
    while start > 0 && buf.iter().filter(|b| **b == b'\n').count() <= n {
        let read_from = start.saturating_sub(BLOCK);
        let mut block = vec![0u8; (start - read_from) as usize];
        file.seek(SeekFrom::Start(read_from))?;
        file.read_exact(&mut block)?;
        block.extend_from_slice(&buf);
        buf = block;
        start = read_from;
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // began mid-line
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines.split_off(skip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_copy_truncate_and_tails_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = ServiceLog::new(dir.path(), "svc", 4096, 2);
        let mut writer = log.open_append().unwrap();
        for i in 0..200 {
            writeln!(writer, "line {i:04} {}", "x".repeat(40)).unwrap();
        }
        assert!(log.rotate_if_needed().unwrap());
        // The writer keeps its descriptor and keeps appending to the same (now empty) file.
        writeln!(writer, "after rotation").unwrap();
        let tail = log.tail(3).unwrap();
        assert_eq!(tail.len(), 3);
        assert_eq!(tail[2], "after rotation");
        assert!(tail[1].starts_with("line 0199"));
        for i in 0..200 {
            writeln!(writer, "more {i} {}", "y".repeat(40)).unwrap();
        }
        assert!(log.rotate_if_needed().unwrap());
        for i in 0..200 {
            writeln!(writer, "again {i} {}", "z".repeat(40)).unwrap();
        }
        assert!(log.rotate_if_needed().unwrap());
        let names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names.len(), 3, "current + keep=2: {names:?}");
        assert!(!dir.path().join("svc.log.3").exists());
    }

    #[test]
    fn tail_of_a_large_file_is_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = ServiceLog::new(dir.path(), "big", u64::MAX, 1);
        let mut w = log.open_append().unwrap();
        for i in 0..100_000 {
            writeln!(w, "{i}").unwrap();
        }
        assert_eq!(log.tail(2).unwrap(), vec!["99998", "99999"]);
        assert_eq!(log.tail(0).unwrap(), Vec::<String>::new());
    }
}
