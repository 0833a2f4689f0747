//! Parley's call engine (no Tauri): the REST and signaling clients, the WebRTC mesh, media
//! capture, codecs and playback, and the headless `parley-cli`.
//!
//! It is still empty: the server core comes first (issue 2); signaling and the CLI (issue 3)
//! and the media path (issue 4) fill it in. It is a workspace member already so the layout,
//! lints and CI cover it from the start.

pub use parley_shared as shared;
