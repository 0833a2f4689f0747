//! Allocator tuning for the server process.
//!
//! glibc raises its mmap threshold to the size of the largest block freed so far, so after
//! the first argon2id hash (one 19 MiB block) every later one is carved from the heap — and
//! those blocks were not given back: resident memory grew by ~19 MiB per sign-up or sign-in
//! (measured: 25 MiB after one registration, 104 MiB after five, flat at 26 MiB with the
//! threshold pinned). Pinning the threshold at 1 MiB keeps large blocks in their own
//! mappings, returned to the system when freed.
//!
//! glibc gives memory back to the system only from the top of its heap, and what is freed
//! elsewhere stays resident until reused. Under churn (connections opening and closing,
//! messages of every size) the server's resident memory crept up for minutes after warm-up
//! while its live heap did not: in the 10-minute soak RSS went 73 → 81 MiB after warm-up,
//! and a heap profile of the same soak (jemalloc's sampling profiler, preloaded) showed 53 MB
//! live at 2 minutes and 49–58 MB after, no call site growing. So the free pages are handed
//! back every [`TRIM_EVERY`] (`malloc_trim`), and there are at most two arenas (glibc's
//! default is eight per core, each keeping free memory of its own) for the two runtime
//! threads.
#![allow(unsafe_code)]

/// Blocks at least this large get their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: i32 = 1 << 20;
/// How often free memory is handed back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
/// Most malloc arenas.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MAX_ARENAS: i32 = 2;

/// Applies the tuning; call once at start-up, before the runtime starts threads.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes glibc's allocation parameters; it is called with a
        // valid parameter number and value, from the main thread before others exist.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) };
        if ok != 1 {
            tracing::debug!("mallopt(M_MMAP_THRESHOLD) refused");
        }
        // SAFETY: as above, before any other thread exists.
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, MAX_ARENAS) };
        if ok != 1 {
            tracing::debug!("mallopt(M_ARENA_MAX) refused");
        }
    }
}

/// Hands free memory back to the system every [`TRIM_EVERY`] from a thread of its own, for
/// the life of the process (a trim walks the heap with its lock held for a few milliseconds).
pub fn start_trimming() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(|| loop {
                std::thread::sleep(TRIM_EVERY);
                // SAFETY: malloc_trim only releases free pages of glibc's own heaps; it is
                // safe to call from any thread at any time.
                unsafe { libc::malloc_trim(0) };
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "memory trimming not started");
        }
    }
}
