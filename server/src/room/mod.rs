//! Live meetings: the pure room state machine ([`state`]). The room task, the WebSocket
//! endpoint and chat storage build on it.

pub mod state;

#[cfg(test)]
mod state_tests;
