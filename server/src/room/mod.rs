//! Live meetings: the pure room state machine ([`state`]), the task that runs one room
//! ([`task`]), chat storage ([`chat`]) and the WebSocket connection ([`conn`]).

pub mod chat;
pub mod conn;
pub mod state;
pub mod task;

#[cfg(test)]
mod state_tests;
