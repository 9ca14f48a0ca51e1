//! Shell completions (`apollo completions bash|zsh|fish|…`) and the man pages
//! (`apollo man`, hidden), both generated from the clap definition in `cli/mod.rs`, so
//! they can never drift from the commands. Output only: nothing is installed here
//! (`make build` stages the man pages; see the README).

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::{Cli, CliError};

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "apollo", &mut out);
    write_stdout(&out)
}

/// `apollo(1)` as roff on stdout, or with `out_dir` one page per command
/// (`apollo.1`, `apollo-app.1`, `apollo-app-start.1`, …) written there.
pub fn man(out_dir: Option<&Path>) -> Result<(), CliError> {
    let command = Cli::command();
    match out_dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .map_err(|e| CliError::failed(format!("rendering the man page: {e}")))?;
            write_stdout(&out)
        }
        Some(dir) => {
            let fail = |e: std::io::Error| CliError::failed(format!("writing man pages to {}: {e}", dir.display()));
            std::fs::create_dir_all(dir).map_err(fail)?;
            clap_mangen::generate_to(command, dir).map_err(fail)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).and_then(|()| stdout.flush()).map_err(|e| CliError::failed(format!("writing output: {e}")))
}
