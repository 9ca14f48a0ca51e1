//! The `apollo` binary, built inside the test crate so integration tests can run the
//! real CLI through `CARGO_BIN_EXE_apollo-under-test`. Same one line as `host/src/main.rs`.

fn main() -> std::process::ExitCode {
    apollo_host::cli::main()
}
