//! What Parley's client-side tests stand on (engine, desktop app): one fixture each, instead
//! of a copy per test crate.
//!
//! - [`server`]: a real `parley-server` in-process on 127.0.0.1:0, its own data directory,
//!   stopped (connections refused) and started again on the same address at will.
//! - [`cli`]: `parley-cli` participants, each a process with its own home directory.
//! - [`xvfb`]: a private X display.
//! - [`turn`]: a TURN server with an impairment relay in front (loss, delay, cap, outages).
//! - [`browser`]: Chromium (chromedriver) or Firefox ESR (WebDriver BiDi) under remote control.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

pub mod browser;
pub mod cli;
pub mod server;
pub mod turn;
pub mod xvfb;
