//! Shared by the engine's call tests: a real server on port 0 and signed-up users.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test binary uses a part

pub mod cli;

use parley_engine::rest::Api;
use parley_server::config::Config;
use parley_shared::api::{CreateMeetingRequest, RegisterRequest};
use parley_shared::MeetingCode;
pub use parley_test_support::server::TestServer;

/// The tests are shorter than an access token's lifetime.
#[allow(unused_imports)]
pub use parley_engine::signaling::StaticToken;

/// A server on 127.0.0.1:0 with a temporary data dir, after `tweak`.
pub async fn server_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(tweak).await
}

/// Signs `name` up; returns (user id, access token).
pub async fn user(api: &Api, name: &str) -> (String, String) {
    let r = api
        .register(&RegisterRequest {
            username: name.into(),
            email: format!("{name}@example.org"),
            password: format!("{name}-Str0ng-Passphrase"),
        })
        .await
        .unwrap();
    (r.user.id.to_string(), r.tokens.unwrap().access_token)
}

/// A meeting hosted by the owner of `token`.
pub async fn meeting(api: &Api, token: &str, title: &str) -> MeetingCode {
    api.create_meeting(
        token,
        &CreateMeetingRequest {
            title: title.into(),
            passcode: None,
            waiting_room: false,
            allow_guests: false,
        },
    )
    .await
    .unwrap()
    .code
}

/// A 16-bit WAV a participant recorded, as samples in [-1, 1].
pub fn wav(path: &std::path::Path) -> Vec<f32> {
    hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}
