//! The process's allocators: mimalloc for the host's own Rust code, and glibc's malloc
//! (which the modules' Rust code and C libraries such as SQLite call) kept small.
//!
//! Why mimalloc for the host: a release wakes thousands of parked long polls at once
//! (module-config), and each answer frees on one runtime worker what the other
//! allocated when the poll parked. glibc serialises such frees on the owning arena's
//! lock and coalesces its fastbins on the next large request: profiled, 17% of the
//! host's CPU during a 10 000-poll wave was malloc (`_int_malloc`, `malloc_consolidate`,
//! `unlink_chunk`, futex waits on the arena lock). mimalloc frees a block of another
//! thread's page with one atomic push. Measured in one session (config_push and
//! supervise benches, modules/config/README.md): median 10 000-poll waves of 90–97 ms
//! against 94–110 ms with glibc, for 4.0–4.7 KiB of RSS per registered service against
//! 2.5–3.5 (the operators' target is 5) and the same idle RSS.
//!
//! A module (a `cdylib`) has its own global allocator, the system's: nothing allocated
//! on one side is freed by the other's, because everything that crosses the boundary
//! is an abi_stable type (`RString`, `RVec`, `RBox`) or an `FfiFuture`, each freed
//! through a vtable of the side that allocated it.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Once;

use mimalloc::MiMalloc;

#[global_allocator]
static ALLOCATOR: HostAllocator = HostAllocator;

/// mimalloc, with its options set before its first allocation: the options that shape
/// an arena count only for arenas reserved after they are set, and the first is
/// reserved by the first allocation, which Rust's runtime makes before `main`.
struct HostAllocator;

static CONFIGURED: Once = Once::new();

/// mimalloc's option numbers (`mi_option_e` in mimalloc 3's `mimalloc.h`): the Rust
/// bindings name only the options its major versions share.
mod option {
    /// Whether an arena's memory is committed when it is reserved (default 2: on Linux).
    pub const ARENA_EAGER_COMMIT: libc::c_int = 4;
    /// How long a freed page waits before its memory goes back (default 1 000 ms).
    pub const PURGE_DELAY: libc::c_int = 15;
}

/// Arenas commit page by page, and a page that falls free is returned at once.
///
/// With eager commit, a purged page is only reset (`MADV_FREE`) and stays counted in
/// the host's RSS until the kernel runs short; with a purge delay, a page freed while
/// the host goes idle is returned only when the allocator next runs after the delay,
/// which an idle host may not do for minutes. The admin password's Argon2 hash alone
/// (a 19 MiB block at start-up and at each login) left an idle host with 200 services
/// at 24 MiB of anonymous memory under the defaults, 11 MiB without eager commit and
/// 4.5 MiB with neither (glibc: 3.5 MiB). Returning pages at once did not slow the
/// config_push bench's waves, whose pages stay in use.
fn configure() {
    // SAFETY: mi_option_set only stores a setting; a test checks the option numbers.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(option::ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(option::PURGE_DELAY, 0);
    }
}

// SAFETY: every call goes to mimalloc's own GlobalAlloc; configuring first neither
// allocates nor touches the memory handed out.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for HostAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CONFIGURED.call_once(configure);
        // SAFETY: the caller's contract, passed on.
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        CONFIGURED.call_once(configure);
        // SAFETY: the caller's contract, passed on.
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    // Freeing and resizing need a block allocated before, so mimalloc is configured.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

/// Requests at least this large get pages of their own from `mmap`, returned to the
/// system by `free`. glibc's default is the same size, but *dynamic*: freeing one
/// mmapped block raises the threshold to that block's size and the heap's trim
/// threshold to twice it, so after one large block (the Argon2 hash's 19 MiB, when the
/// host ran on glibc) every allocation below it came from the heap and up to twice it
/// of freed heap stayed resident. Setting the value explicitly switches that off.
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Free memory at the top of the heap beyond this is returned to the system.
const TRIM_THRESHOLD: libc::c_int = 128 * 1024;

/// Caps glibc at two malloc arenas and fixes its mmap and trim thresholds, for the
/// modules and C libraries that allocate through it: glibc gives a thread that meets
/// contention an arena of its own, up to eight per core, and the pages an arena has
/// touched stay resident while any allocation in it lives (each module runtime's
/// threads, and the blocking pool's, would leave mostly empty arenas behind). Call
/// first thing in `main`, before any thread is started. Does nothing with another C
/// library.
pub fn tune_c_allocator() {
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

/// Returns the pages start-up left free, in both allocators: loading the config, every
/// model, the store and the modules allocates and frees far more than the host keeps;
/// a mimalloc thread heap holds on to its emptied pages until it allocates again, and
/// glibc gives back free memory only at its heap's top. Called once, when the host
/// is up.
pub fn release_startup_memory() {
    // SAFETY: mi_collect(force) only hands free pages back; it is thread-safe.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only madvises free heap pages away; it is thread-safe.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::option;

    /// mimalloc's current value of an option. Unit tests run on the host allocator, so
    /// both options were set before the first test allocated.
    fn value_of(number: libc::c_int) -> libc::c_long {
        // SAFETY: mi_option_get only reads a setting.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_get(number)
        }
    }

    /// Each number names the option meant: it holds the value set, and its neighbours
    /// hold their defaults, which tell them apart (arena eager commit's default is 2,
    /// purge delay's 1 000 ms; deprecated eager commit, purge-decommits and deprecated
    /// eager-commit delay default to 1, NUMA nodes to 0).
    #[test]
    fn option_numbers_name_the_options_set() {
        assert_eq!(value_of(option::ARENA_EAGER_COMMIT), 0);
        assert_eq!((value_of(option::ARENA_EAGER_COMMIT - 1), value_of(option::ARENA_EAGER_COMMIT + 1)), (1, 1));
        assert_eq!(value_of(option::PURGE_DELAY), 0);
        assert_eq!((value_of(option::PURGE_DELAY - 1), value_of(option::PURGE_DELAY + 1)), (1, 0));
    }
}
