//! Meetings over REST: SQL ([`store`]) and handlers ([`routes`]).

pub mod routes;
pub mod store;
