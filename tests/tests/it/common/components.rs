//! Real components some tests need (dockerd, influxd, the MongoDB-wire server, tmux,
//! prometheus). On a developer machine without one, its tests skip with a one-line
//! notice; under `APOLLO_REQUIRE_COMPONENTS=1`, which the README's test command and
//! `.ci/run` set, a missing component is a failure, so CI can never pass by skipping.

/// `true` when `present`; otherwise skips (returns `false`, after one line on stderr)
/// or, when components are required, fails naming how to install it.
pub fn require(component: &str, present: bool, install: &str) -> bool {
    if present {
        return true;
    }
    assert!(
        std::env::var("APOLLO_REQUIRE_COMPONENTS").as_deref() != Ok("1"),
        "{component} is missing and APOLLO_REQUIRE_COMPONENTS=1: {install}"
    );
    eprintln!("skipped: {component} is missing ({install}; APOLLO_REQUIRE_COMPONENTS=1 makes this a failure)");
    false
}

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The private dockerd of `.ci/docker-up.sh`.
pub const DOCKER_SOCKET: &str = "/tmp/apollo-test-docker.sock";

/// Whether that dockerd answers on its socket, or else skip/fail as [`require`] does.
pub fn docker() -> bool {
    let up = std::os::unix::net::UnixStream::connect(DOCKER_SOCKET).is_ok();
    require("dockerd", up, "run .ci/docker-up.sh as root (make test-deps does)")
}

/// Whether a MongoDB-wire server can be had (`common::mongo`), or else skip/fail.
pub fn mongo() -> bool {
    require(
        "nx-27017 (MongoDB-wire server)",
        super::mongo::installed(),
        "run ./.ci/python-clients-up.sh (make test-deps does)",
    )
}
