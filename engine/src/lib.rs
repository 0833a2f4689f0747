//! Parley's call engine, everything a client needs but its window: the desktop app and
//! `parley-cli` are both built on it.
//!
//! - [`rest`]: typed calls to the server's `/api`.
//! - [`credentials`]: tokens in the OS keychain, or a private file when there is none.
//! - [`signaling`]: a live-meeting session over `/api/ws` that survives drops and restarts
//!   (pure [`signaling::state`] plus a thin task).
//! - [`call`]: a mesh call: the sans-IO [`call::core`] (link recovery, keyframes, bitrate
//!   split), its actor, capture/encode threads and receive tasks.
//! - [`rtc`]: the one module that touches a WebRTC stack (webrtc 0.17).
//! - [`media`]: frames, capture, codecs (VP8, Opus), RTP framing, jitter and reorder
//!   buffers, rate control, echo cancellation, audio devices.
//! - [`room`]: the room model both front ends render (a reducer over meeting and call events).
//! - [`backoff`]: the one retry policy; [`clock`]: the wall clock in ms.

pub mod backoff;
pub mod call;
pub mod clock;
pub mod credentials;
pub mod media;
pub mod rest;
pub mod room;
pub mod rtc;
pub mod signaling;

pub use parley_shared as shared;
