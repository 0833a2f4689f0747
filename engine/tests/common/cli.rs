//! `parley-cli` participants (the shared fixture), with this package's built binary.
#![allow(unused_imports)] // each test binary uses a part

#[cfg(unix)]
pub use parley_test_support::cli::mode;
pub use parley_test_support::cli::{Joined, Output, User};
pub use parley_test_support::server::TestServer as World;

/// The `parley-cli` built with these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_parley-cli");

pub async fn world() -> World {
    World::start().await
}

pub async fn world_with(tweak: impl FnOnce(&mut parley_server::config::Config)) -> World {
    World::start_with(tweak).await
}

/// A person at their own machine, with this package's `parley-cli`.
pub fn user(server: &str) -> User {
    User::new(server, BIN)
}
