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
//!
//! Measured and not set (config_push bench, 10 000 parked polls, same binary, the
//! settings through `GLIBC_TUNABLES`, runs interleaved): a woken poll frees on one
//! worker what the other allocated at parking, and past glibc's per-thread cache of
//! seven freed blocks per size each free locks an arena, about one futex call per two
//! woken polls. A cache of 1 000 (`glibc.malloc.tcache_count`) shortened the waves
//! (median waves 93.6–126.0 ms against 101.1–138.9 through the admin mount, 96.4–104.6
//! against 104.9–139.2 through the module's listener) but strands freed blocks in each
//! thread's cache: RSS per parked blocking query in the catalog bench rose to 2.13–2.22 KiB
//! (1.72–2.00 without), over the catalog's 2 KiB target. A cache of 100 kept that
//! (1.62–1.94 KiB) and gained nothing measurable; eight arenas instead of two and no
//! fastbins (`mxfast=0`) gained nothing either.

/// Requests at least this large get pages of their own from `mmap`, returned to the
/// system by `free`. glibc's default is the same size, but *dynamic*: freeing one
/// mmapped block raises the threshold to that block's size and the heap's trim
/// threshold to twice it. The admin password's Argon2 hash uses a 19 MiB block at
/// start-up (and at each login), so from then on every allocation below 19 MiB came
/// from the heap and up to 38 MiB of freed heap stayed resident. Setting the value
/// explicitly switches the adjustment off.
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Free memory at the top of the heap beyond this is returned to the system.
const TRIM_THRESHOLD: libc::c_int = 128 * 1024;

/// Caps glibc at two malloc arenas and fixes its mmap and trim thresholds. Call first
/// thing in `main`, before any thread is started. Does nothing with another C library.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other
    // thread exists, as glibc asks of parameter changes.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Returns the free pages inside the heap to the system once start-up is over:
/// loading the config, every model, the store and the modules allocates and frees far
/// more than the host keeps, and glibc only gives back free memory at the heap's top
/// on its own. Called once, when the host is up.
pub fn release_startup_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only madvises free heap pages away; it is thread-safe.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}
