//! The terminal while `apollo monit` runs: raw mode and the alternate screen, given
//! back on every way out — normal exit, error (drop) and panic (ratatui's panic hook
//! restores before the message is printed; the drop during unwinding shows the cursor).

use std::io;

use crossterm::{cursor, execute};
use ratatui::DefaultTerminal;

/// Owns the terminal; restores it when dropped.
#[derive(Debug)]
pub struct TerminalSession {
    terminal: DefaultTerminal,
}

impl TerminalSession {
    pub fn start() -> io::Result<Self> {
        match ratatui::try_init() {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                // Raw mode may be on already when entering the alternate screen failed.
                restore();
                Err(e)
            }
        }
    }

    pub fn terminal(&mut self) -> &mut DefaultTerminal {
        &mut self.terminal
    }
}

impl Drop for TerminalSession {
    fn drop(&mut self) {
        restore();
    }
}

fn restore() {
    ratatui::restore();
    let _ = execute!(io::stdout(), cursor::Show);
}
