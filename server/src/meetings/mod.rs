//! Meetings over REST: SQL ([`store`]) and handlers ([`routes`]); guests ([`guests`]).

pub mod guests;
pub mod routes;
pub mod store;
