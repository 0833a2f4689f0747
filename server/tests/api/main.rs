//! Integration tests against a real server on port 0. One binary, so it links once.
//! Set `PARLEY_TEST_POSTGRES_URL` to run the same suite on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod fixture;

mod accounts;
mod admission;
mod api_fuzz;
mod attempts;
mod connections;
mod controls;
mod crash;
mod email_codes;
mod guest_attacks;
mod guests;
mod invite;
mod limits;
mod live;
mod logs;
mod meetings;
mod openapi;
mod restart;
mod sockets;
mod ws_fuzz;
