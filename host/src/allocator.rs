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

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
