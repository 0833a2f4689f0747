//! Parley's desktop shell. The Tauri 2 app (window, tray, keychain, deep links) is built in
//! the desktop-app issue; until then this crate only holds its place in the workspace and
//! depends on the engine it will drive.

pub use parley_engine as engine;
