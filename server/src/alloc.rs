//! Allocator tuning for the server process.
//!
//! glibc raises its mmap threshold to the size of the largest block freed so far, so after
//! the first argon2id hash (one 19 MiB block) every later one is carved from the heap — and
//! those blocks were not given back: resident memory grew by ~19 MiB per sign-up or sign-in
//! (measured: 25 MiB after one registration, 104 MiB after five, flat at 26 MiB with the
//! threshold pinned). Pinning the threshold at 1 MiB keeps large blocks in their own
//! mappings, returned to the system when freed.
//!
//! glibc also gives threads arenas of their own, up to eight per core, and memory freed in
//! one arena serves only that arena: with the runtime's workers and the database's worker
//! threads allocating and freeing each other's messages, every arena grew its own free
//! space (the soak's memory kept creeping up after warm-up). Two arenas are enough for two
//! runtime threads and keep the free space in one place.
#![allow(unsafe_code)]

/// Blocks at least this large get their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: i32 = 1 << 20;
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
