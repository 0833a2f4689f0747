//! REST request and response bodies. Each request type sits next to its response type.
//!
//! Times are UTC, sent as milliseconds since the Unix epoch (`*_at_ms`).

use serde::{Deserialize, Serialize};

use crate::{MeetingCode, UserId};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

// ---------------------------------------------------------------- accounts

/// `POST /api/auth/register`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RegisterRequest {
    pub username: String,
    pub email: String,
    pub password: String,
}

/// Answer to [`RegisterRequest`]. `tokens` is absent when the server requires a verified
/// e-mail before sign-in; then `verification_required` is true and a code has been sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RegisterResponse {
    pub user: User,
    pub verification_required: bool,
    pub tokens: Option<TokenPair>,
}

/// `POST /api/auth/login`: `login` is a username or an e-mail address.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
}

/// Answer to [`LoginRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LoginResponse {
    pub user: User,
    pub tokens: TokenPair,
}

/// `POST /api/auth/refresh`: trades a refresh token for a new pair; the old one is spent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `POST /api/auth/logout`: revokes the session the refresh token belongs to.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LogoutRequest {
    pub refresh_token: String,
}

/// An access token (a short-lived JWT sent as `Authorization: Bearer …`) and the opaque,
/// rotating refresh token that renews it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TokenPair {
    pub access_token: String,
    /// Seconds until the access token expires.
    pub access_expires_in: u64,
    pub refresh_token: String,
    /// Seconds until the refresh token expires if unused.
    pub refresh_expires_in: u64,
    pub token_type: String,
}

/// A user as the API shows them (to themselves).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub email_verified: bool,
    pub created_at_ms: i64,
}

/// `POST /api/auth/password`: the signed-in user changes their password; every other
/// session is revoked, the calling one stays signed in.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// `POST /api/auth/verify-email`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct VerifyEmailRequest {
    pub email: String,
    pub code: String,
}

/// `POST /api/auth/verify-email/resend` and `POST /api/auth/password-reset/request`.
/// The answer is `202 Accepted` whether or not the address has an account.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EmailRequest {
    pub email: String,
}

/// `POST /api/auth/password-reset/confirm`: sets a new password and revokes every session.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ResetPasswordRequest {
    pub email: String,
    pub code: String,
    pub new_password: String,
}

/// A plain acknowledgement for requests whose effect is not shown to the caller.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Accepted {
    pub message: String,
}

// ---------------------------------------------------------------- meetings

/// `POST /api/meetings`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateMeetingRequest {
    pub title: String,
    #[serde(default)]
    pub passcode: Option<String>,
    #[serde(default)]
    pub waiting_room: bool,
    /// Let people without an account in through the invite link (off by default).
    #[serde(default)]
    pub allow_guests: bool,
}

/// A participant's role in a meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    Host,
    Cohost,
    Participant,
}

impl Role {
    /// Storage and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Cohost => "cohost",
            Role::Participant => "participant",
        }
    }

    /// Parses the storage form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "host" => Some(Role::Host),
            "cohost" => Some(Role::Cohost),
            "participant" => Some(Role::Participant),
            _ => None,
        }
    }

    /// Hosts and co-hosts run the meeting (admit, mute, lock…).
    pub fn can_moderate(self) -> bool {
        matches!(self, Role::Host | Role::Cohost)
    }
}

/// Where a participant stands with a meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ParticipantStatus {
    Invited,
    /// In the waiting room until a host or co-host admits them.
    Waiting,
    Joined,
    Left,
    /// Refused at the waiting room or removed by a host.
    Denied,
}

impl ParticipantStatus {
    /// Storage and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            ParticipantStatus::Invited => "invited",
            ParticipantStatus::Waiting => "waiting",
            ParticipantStatus::Joined => "joined",
            ParticipantStatus::Left => "left",
            ParticipantStatus::Denied => "denied",
        }
    }

    /// Parses the storage form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invited" => Some(ParticipantStatus::Invited),
            "waiting" => Some(ParticipantStatus::Waiting),
            "joined" => Some(ParticipantStatus::Joined),
            "left" => Some(ParticipantStatus::Left),
            "denied" => Some(ParticipantStatus::Denied),
            _ => None,
        }
    }
}

/// A user in the short form others see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UserSummary {
    pub id: UserId,
    pub username: String,
}

/// A meeting as its participants see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Meeting {
    pub code: MeetingCode,
    pub title: String,
    pub host: UserSummary,
    pub has_passcode: bool,
    pub waiting_room: bool,
    pub locked: bool,
    /// Guests may join through the invite link.
    #[serde(default)]
    pub allow_guests: bool,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    /// The caller's own role and status in this meeting.
    pub my_role: Role,
    pub my_status: ParticipantStatus,
}

/// `GET /api/meetings?limit=&cursor=`: the caller's meetings, hosted or joined, newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MeetingList {
    pub meetings: Vec<Meeting>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `POST /api/meetings/{code}/join`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct JoinMeetingRequest {
    #[serde(default)]
    pub passcode: Option<String>,
}

/// Answer to [`JoinMeetingRequest`]: `waiting` is true when the caller must be admitted
/// from the waiting room before entering.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct JoinMeetingResponse {
    pub meeting: Meeting,
    pub waiting: bool,
}

/// `GET /api/health`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Health {
    pub status: String,
    pub database: String,
    pub version: String,
}

/// One stored chat message, as the history route returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ChatEntry {
    pub id: String,
    pub seq: i64,
    pub sender: UserId,
    pub sender_name: String,
    /// Sent by a guest from the invite link.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guest: bool,
    pub text: String,
    pub at_ms: i64,
}

/// `GET /api/meetings/{code}/messages?after_seq=&limit=`: chat, oldest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ChatHistory {
    pub messages: Vec<ChatEntry>,
}

/// `PUT /api/meetings/{code}/guest-access`: whether the invite link lets guests in.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GuestAccessRequest {
    pub allowed: bool,
}

/// `POST /api/meetings/{code}/guest-links`: a personal link for one person.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateGuestLinkRequest {
    /// Who the link is for, as the host will recognise it in the list (not shown to others).
    pub label: String,
    /// Hours until the link stops working (default: it works until revoked or the meeting
    /// ends).
    #[serde(default, deserialize_with = "crate::serde_util::integral_u32")]
    pub expires_in_hours: Option<u32>,
    /// The link lets one person in, once; after that it answers `guest_link_used`.
    #[serde(default)]
    pub single_use: bool,
}

/// A personal guest link, as its meeting's host sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GuestLink {
    pub id: String,
    pub label: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    /// Lets one person in, once.
    #[serde(default)]
    pub single_use: bool,
    /// How many people have entered with it.
    #[serde(default)]
    pub uses: u32,
}

/// The answer to creating a personal guest link: the only time its token is shown.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreatedGuestLink {
    pub link: GuestLink,
    /// The secret part of the link (`/j/{code}#g={token}`: in the fragment, which browsers
    /// never send to a server or in a `Referer`).
    pub token: String,
}

/// `GET /api/meetings/{code}/guest-links`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GuestLinkList {
    pub links: Vec<GuestLink>,
}

/// `POST /api/guests`: enter one meeting as a guest, without an account.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GuestEntryRequest {
    /// The meeting's code.
    pub code: String,
    /// The name the others will see.
    pub display_name: String,
    /// The meeting's passcode, if it has one (not needed with a personal link).
    #[serde(default)]
    pub passcode: Option<String>,
    /// The token of a personal guest link.
    #[serde(default)]
    pub link_token: Option<String>,
}

/// A guest's sign-in: tokens that open that one meeting's room and nothing else.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GuestEntry {
    pub tokens: TokenPair,
    pub user_id: crate::UserId,
    pub display_name: String,
    pub code: crate::MeetingCode,
    pub title: String,
}
