//! Stable error codes and the JSON error body every API error uses.

use serde::{Deserialize, Serialize};

/// A machine-readable error code. The string form (snake_case) is part of the public API and
/// never changes meaning; new codes may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    // Request shape
    /// The body is not valid JSON or does not match the expected shape.
    MalformedRequest,
    /// The body is larger than the route accepts.
    PayloadTooLarge,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// No route has this path.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,

    // Validation
    InvalidUsername,
    InvalidEmail,
    /// Password shorter than 8 or longer than 128 characters.
    InvalidPassword,
    /// Password is on the bundled list of common passwords.
    PasswordTooCommon,
    InvalidMeetingCode,
    InvalidTitle,
    InvalidPasscode,
    InvalidDisplayName,
    InvalidPagination,

    // Accounts
    UsernameTaken,
    EmailTaken,
    /// Wrong login or password (never says which).
    InvalidCredentials,
    /// Login requires a verified e-mail address and this one is not verified yet.
    EmailNotVerified,
    EmailAlreadyVerified,

    // Tokens
    /// No access token was sent.
    Unauthorized,
    /// The access token is malformed, forged, of the wrong kind or revoked.
    InvalidToken,
    /// The access token has expired: refresh it.
    TokenExpired,
    /// The refresh token is unknown, expired or revoked.
    InvalidRefreshToken,
    /// A refresh token was used twice; its whole session has been revoked.
    RefreshTokenReused,

    // One-time e-mail codes
    CodeInvalid,
    CodeExpired,
    CodeUsed,
    /// Too many wrong tries: the code no longer works; request a new one.
    CodeBurned,

    // Meetings
    MeetingNotFound,
    /// Only participants may see this meeting.
    NotParticipant,
    /// Only the host may do this.
    NotHost,
    MeetingLocked,
    MeetingEnded,
    PasscodeRequired,
    WrongPasscode,
    /// The meeting has as many participants as a mesh call allows.
    MeetingFull,

    // Guests
    /// The host has not let guests into this meeting (and no personal guest link was given).
    GuestsNotAllowed,
    /// A guest's token was used for something other than its meeting's room.
    GuestNotAllowed,
    /// The personal guest link is not one of this meeting's.
    GuestLinkInvalid,
    /// The host revoked this personal guest link.
    GuestLinkRevoked,
    /// The personal guest link is past its expiry.
    GuestLinkExpired,
    /// A host removed or turned away a guest from this address: the open link lets no new
    /// guest in from it (a personal link of theirs is revoked).
    GuestRemoved,
    /// A single-use personal guest link was used already.
    GuestLinkUsed,
    /// This many guests from one address are in the meeting already.
    TooManyGuests,
    /// The display name looks like that of someone already in the meeting (case, spaces and
    /// look-alike letters aside): choose another.
    NameTaken,

    // Live meetings (WebSocket)
    /// The addressed peer is not in this meeting.
    PeerNotFound,
    /// The message is not valid in the connection's current state (e.g. chat before `join`).
    OutOfState,
    /// The message `type` is not known.
    UnknownMessageType,
    /// The socket's sign-in was revoked (logout, password change or reset, a reused refresh
    /// token); the socket closes.
    SessionRevoked,
    /// The socket's access token expired without a `reauth`; the socket closes.
    AuthExpired,
    /// The client did not read what it was sent fast enough; the socket closes (resume).
    TooSlow,
    /// The client sent more messages than its budget allows for too long; the socket closes.
    Flooding,
    /// No `join` arrived in time after the socket opened; the socket closes.
    JoinTimeout,
    /// Too many connections or sockets from this user or address.
    TooManyConnections,
    /// The request took too long (a slow body, or the server could not finish in time).
    RequestTimeout,

    // Limits and server
    /// Too many requests; the `Retry-After` header says when to try again.
    RateLimited,
    Internal,
    ServiceUnavailable,
}

impl ErrorCode {
    /// The snake_case string form used on the wire.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedRequest => "malformed_request",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            InvalidUsername => "invalid_username",
            InvalidEmail => "invalid_email",
            InvalidPassword => "invalid_password",
            PasswordTooCommon => "password_too_common",
            InvalidMeetingCode => "invalid_meeting_code",
            InvalidTitle => "invalid_title",
            InvalidPasscode => "invalid_passcode",
            InvalidDisplayName => "invalid_display_name",
            InvalidPagination => "invalid_pagination",
            UsernameTaken => "username_taken",
            EmailTaken => "email_taken",
            InvalidCredentials => "invalid_credentials",
            EmailNotVerified => "email_not_verified",
            EmailAlreadyVerified => "email_already_verified",
            Unauthorized => "unauthorized",
            InvalidToken => "invalid_token",
            TokenExpired => "token_expired",
            InvalidRefreshToken => "invalid_refresh_token",
            RefreshTokenReused => "refresh_token_reused",
            CodeInvalid => "code_invalid",
            CodeExpired => "code_expired",
            CodeUsed => "code_used",
            CodeBurned => "code_burned",
            MeetingNotFound => "meeting_not_found",
            NotParticipant => "not_participant",
            NotHost => "not_host",
            MeetingLocked => "meeting_locked",
            MeetingEnded => "meeting_ended",
            PasscodeRequired => "passcode_required",
            WrongPasscode => "wrong_passcode",
            MeetingFull => "meeting_full",
            GuestsNotAllowed => "guests_not_allowed",
            GuestNotAllowed => "guest_not_allowed",
            GuestLinkInvalid => "guest_link_invalid",
            GuestLinkRevoked => "guest_link_revoked",
            GuestLinkExpired => "guest_link_expired",
            GuestRemoved => "guest_removed",
            GuestLinkUsed => "guest_link_used",
            TooManyGuests => "too_many_guests",
            NameTaken => "name_taken",
            PeerNotFound => "peer_not_found",
            OutOfState => "out_of_state",
            UnknownMessageType => "unknown_message_type",
            SessionRevoked => "session_revoked",
            AuthExpired => "auth_expired",
            TooSlow => "too_slow",
            Flooding => "flooding",
            JoinTimeout => "join_timeout",
            TooManyConnections => "too_many_connections",
            RequestTimeout => "request_timeout",
            RateLimited => "rate_limited",
            Internal => "internal",
            ServiceUnavailable => "service_unavailable",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"error": {"code": "...", "message": "..."}}`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The code a program acts on and the message a person reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde() {
        for code in [
            ErrorCode::MalformedRequest,
            ErrorCode::PasswordTooCommon,
            ErrorCode::RefreshTokenReused,
            ErrorCode::CodeBurned,
            ErrorCode::MeetingLocked,
            ErrorCode::GuestsNotAllowed,
            ErrorCode::GuestLinkExpired,
            ErrorCode::RateLimited,
            ErrorCode::SessionRevoked,
            ErrorCode::AuthExpired,
            ErrorCode::TooSlow,
            ErrorCode::Flooding,
            ErrorCode::JoinTimeout,
            ErrorCode::TooManyConnections,
            ErrorCode::GuestLinkUsed,
            ErrorCode::TooManyGuests,
            ErrorCode::NameTaken,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
