//! Installs the process-wide `tracing` subscriber from `log.*`.
//!
//! Mapping of the seed's switches: `enable_log=false` keeps warnings and errors only;
//! `enable_caller` adds file:line; `enable_function` adds the module path; `enable_stack`
//! adds the span stack (request, task) to JSON lines (console lines always show the
//! current spans); `encoding` picks console or JSON; `log_file`
//! appends to a file instead of standard error. `RUST_LOG` overrides `log.level`.
//! Secrets never reach this layer: callers log names and outcomes, not values.

use std::fs::OpenOptions;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogConfig, LogEncoding};

/// Keeps the background log writer alive; drop it last so buffered lines are flushed.
#[derive(Debug)]
pub struct LogGuard {
    _writer: WorkerGuard,
}

/// Lines the background writer may have queued before new ones are dropped. The
/// queue is allocated and touched in full at start: tracing-appender's default of
/// 128 000 lines kept 4 MiB resident in every host, most of its idle RSS after the
/// binary. 8 192 lines (256 KiB) absorb any burst the writer thread cannot keep up with.
const QUEUED_LINES: usize = 8_192;

/// Installs the subscriber. A second call in one process (tests start many hosts)
/// keeps the first subscriber and returns a guard for a writer that is never used.
pub fn init(cfg: &LogConfig) -> std::io::Result<LogGuard> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.is_empty() => EnvFilter::new(directive),
        _ if !cfg.enable_log => EnvFilter::new("warn"),
        _ => EnvFilter::new(if cfg.level.is_empty() { "info" } else { &cfg.level }),
    };
    let (writer, guard) = if cfg.log_file.as_os_str().is_empty() {
        NonBlockingBuilder::default().buffered_lines_limit(QUEUED_LINES).finish(std::io::stderr())
    } else {
        if let Some(parent) = cfg.log_file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&cfg.log_file)?;
        NonBlockingBuilder::default().buffered_lines_limit(QUEUED_LINES).finish(file)
    };
    let ansi = cfg.log_file.as_os_str().is_empty() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(cfg.enable_function)
        .with_file(cfg.enable_caller)
        .with_line_number(cfg.enable_caller);
    let result = match cfg.encoding {
        LogEncoding::Json => tracing_subscriber::registry()
            .with(filter)
            .with(layer.json().with_current_span(cfg.enable_stack).with_span_list(cfg.enable_stack))
            .try_init(),
        LogEncoding::Console => tracing_subscriber::registry().with(filter).with(layer).try_init(),
    };
    // Already installed (several hosts in one test process): keep the first one.
    drop(result);
    Ok(LogGuard { _writer: guard })
}
