//! Parley's call engine (no Tauri): the REST and signaling clients, and the headless
//! `parley-cli`. The WebRTC mesh and the media path (issue 4) come next.
//!
//! - [`rest`]: typed calls to the server's `/api`.
//! - [`signaling`]: a live-meeting session over `/api/ws` that survives drops and restarts.
//! - [`credentials`]: tokens in the OS keychain, or a private file when there is none.

pub mod call;
pub mod credentials;
pub mod media;
pub mod rest;
pub mod rtc;
pub mod signaling;

pub use parley_shared as shared;
