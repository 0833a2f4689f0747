//! Media: raw frames, fitting the camera to the CPU, the synthetic camera, the VP8 codec and
//! its RTP framing, audio (tones, Opus, analysis, microphones converted to 48 kHz mono), reordering, jitter and rate control.

pub mod adapt;
pub mod aec;
pub mod audio;
pub mod capture;
pub mod devices;
pub mod frame;
pub mod jitter;
pub mod level;
pub mod rate;
pub mod reorder;
pub mod resample;
pub mod synthetic;
pub mod vp8;
pub mod vp8_rtp;

/// Gives memory the process has freed back to the OS. glibc keeps what large buffers freed in
/// its arenas for reuse: a screen share's frames (720p RGBA, I420, the encoder's and three
/// decoders' reference frames) left ~40 MB with the process after it ended. Called when a
/// video line stops (a capture thread ends, a decoder closes): rare, and cheaper than mapping
/// every frame buffer. Other allocators (macOS, Windows, musl) return large blocks themselves.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)] // FFI
    // SAFETY: malloc_trim only walks glibc's own free lists; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
