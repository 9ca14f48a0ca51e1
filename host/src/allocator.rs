//! Tunes the C allocator (glibc's malloc, which Rust's global allocator calls) for what
//! the host is: a long-lived daemon whose threads are two runtime workers and a
//! blocking pool that grows and shrinks under load (store calls, file watching).
//!
//! glibc gives a thread that meets contention an arena of its own, up to eight per
//! core, and the pages an arena has touched stay resident while any allocation in it
//! lives: each short-lived pool thread can leave a mostly empty arena behind. Two
//! arenas measured 1.7 MiB less RSS with 1 000 registered services (29.6 vs 31.3 MiB;
//! one arena: 29.3 MiB, at the price of every thread contending for it), and the same
//! at 200 (24.4 vs 25.1 MiB); the supervise bench prints these figures.

/// Caps glibc at two malloc arenas. Call first thing in `main`, before any thread is
/// started. Does nothing with another C library.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other
    // thread exists, as glibc asks of parameter changes.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
