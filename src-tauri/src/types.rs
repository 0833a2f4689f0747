//! What crosses to the front end. Every type here derives `specta::Type`, and
//! `ui/src/bindings.ts` is generated from them (see `bindings::export`), never written by hand.
//! Times are milliseconds since the epoch as JavaScript numbers.

use parley_engine::rest::ApiError;
use parley_shared::api::{Meeting, Role, User};
use serde::Serialize;
use specta::Type;

/// An error the UI can show and act on: `code` is stable (the server's error codes, or one
/// of `signed_out`, `unreachable`, `protocol`, `keychain`, `invalid`).
#[derive(Clone, Debug, Serialize, Type, thiserror::Error)]
#[error("{message} ({code})")]
pub struct AppError {
    pub code: String,
    pub message: String,
}

impl AppError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn signed_out() -> Self {
        Self::new("signed_out", "You are not signed in.")
    }
}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Server { code, message, .. } => Self { code, message },
            ApiError::Unreachable { url, .. } => Self::new(
                "unreachable",
                format!("Cannot reach the Parley server at {url}."),
            ),
            ApiError::Protocol { status, detail } => Self::new(
                "protocol",
                format!("The server gave an unexpected answer ({status}: {detail})."),
            ),
        }
    }
}

#[derive(Clone, Debug, Serialize, Type)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub email: String,
    pub email_verified: bool,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username,
            email: u.email,
            email_verified: u.email_verified,
        }
    }
}

/// The app's state at start (and after changing server).
#[derive(Clone, Debug, Serialize, Type)]
pub struct AppInfo {
    pub server: String,
    pub user: Option<UserView>,
    /// Whether sign-ins are kept in the OS keychain (false: none answered).
    pub keychain: bool,
    pub version: String,
}

#[derive(Clone, Debug, Serialize, Type)]
pub struct SignUpResult {
    pub user: UserView,
    /// The server wants the e-mail verified before signing in.
    pub verification_required: bool,
}

#[derive(Clone, Debug, Serialize, Type)]
pub struct MeetingView {
    pub code: String,
    pub title: String,
    pub host: String,
    pub has_passcode: bool,
    pub waiting_room: bool,
    pub locked: bool,
    pub created_at_ms: f64,
    pub started_at_ms: Option<f64>,
    pub ended_at_ms: Option<f64>,
    /// `host`, `cohost` or `participant`.
    pub my_role: String,
}

impl From<Meeting> for MeetingView {
    fn from(m: Meeting) -> Self {
        Self {
            code: m.code.to_string(),
            title: m.title,
            host: m.host.username,
            has_passcode: m.has_passcode,
            waiting_room: m.waiting_room,
            locked: m.locked,
            created_at_ms: m.created_at_ms as f64,
            started_at_ms: m.started_at_ms.map(|t| t as f64),
            ended_at_ms: m.ended_at_ms.map(|t| t as f64),
            my_role: match m.my_role {
                Role::Host => "host",
                Role::Cohost => "cohost",
                _ => "participant",
            }
            .into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Type)]
pub struct ChatView {
    pub id: String,
    pub seq: f64,
    pub sender_id: String,
    pub sender: String,
    pub text: String,
    pub at_ms: f64,
}

impl From<parley_shared::api::ChatEntry> for ChatView {
    fn from(m: parley_shared::api::ChatEntry) -> Self {
        Self {
            id: m.id,
            seq: m.seq as f64,
            sender_id: m.sender.to_string(),
            sender: m.sender_name,
            text: m.text,
            at_ms: m.at_ms as f64,
        }
    }
}
