//! The process's memory allocator: mimalloc, for Rust's allocations and, because it
//! also defines `malloc`, `free` and their kin in the executable, for every C
//! allocation of the process: SQLite's, glibc's own and every loaded module's (a
//! module's Rust allocator calls `malloc`, which resolves to the executable's
//! definition first). One allocator for the whole process means memory that changes
//! hands across the module boundary is always freed by the allocator that made it.
//!
//! Why not glibc's malloc: a release wakes thousands of parked long polls at once, and
//! each answer allocates and frees a dozen small blocks on two runtime workers. glibc
//! spent 17% of the host's CPU in that wave coalescing freed chunks
//! (`malloc_consolidate`, `unlink_chunk`) and waiting on arena locks; mimalloc's
//! per-thread free lists do neither (the config_push bench prints the wave). It also
//! returns freed pages to the system on its own, which glibc needed three tunables and
//! a trim for (its dynamic mmap threshold had kept the Argon2 hash's 19 MiB resident).
//!
//! Two settings keep its memory as low as glibc's was (the supervise bench's idle RSS
//! rows): built without transparent huge pages (`no_thp`: mimalloc would otherwise
//! `madvise` its arenas into 2 MiB pages, 32 MiB idle instead of 13), and freed pages
//! purged after 10 ms rather than mimalloc 3's 1 s (a purge happens only when the
//! thread that owns the memory allocates again, so with a long delay the memory a
//! thread freed just before the host went idle stayed resident: 21 MiB idle instead of
//! 13). Neither moved the config_push bench's wave.

use libmimalloc_sys::{mi_option_set, mi_option_t};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (the crate names only the
/// options every version shares).
const PURGE_DELAY: mi_option_t = 15;
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Sets the allocator's options. Call first thing in `main`: what was freed before
/// keeps the default delay.
pub fn configure() {
    // SAFETY: mi_option_set only stores the option's value; it may be called at any time.
    #[allow(unsafe_code)]
    unsafe {
        mi_option_set(PURGE_DELAY, PURGE_DELAY_MS);
    }
}

/// Returns the memory start-up freed to the system at once, rather than after
/// mimalloc's purge delay: loading the config, every model, the store and the modules
/// allocates and frees far more than the host keeps. Called once, when the host is up.
pub fn release_startup_memory() {
    // SAFETY: mi_collect only frees and purges memory no allocation uses; it may be
    // called from any thread at any time.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

#[cfg(test)]
mod tests {
    use libmimalloc_sys::mi_option_get;

    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // mimalloc 3's default purge delay is 1 000 ms, no other option's default is;
        // a wrong index would show another option's value here.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reading an option has no precondition.
            #[allow(unsafe_code)]
            let before = unsafe { mi_option_get(PURGE_DELAY) };
            assert!(before == 1000 || before == PURGE_DELAY_MS, "option {PURGE_DELAY} reads {before}");
        }
        configure();
        // SAFETY: as above.
        #[allow(unsafe_code)]
        let after = unsafe { mi_option_get(PURGE_DELAY) };
        assert_eq!(after, PURGE_DELAY_MS);
    }
}
