//! The `apollo` binary: the daemon (`apollo serve`) and the CLI, both in `apollo_host::cli`.

fn main() -> std::process::ExitCode {
    apollo_host::cli::main()
}
