//! Accounts and sign-in: hashing and tokens ([`crypto`]), SQL ([`store`]), handlers ([`routes`]).

pub mod crypto;
pub mod hasher;
pub mod routes;
pub mod store;
