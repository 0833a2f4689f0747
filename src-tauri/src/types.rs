//! What crosses to the front end. Every type here derives `specta::Type`, and
//! `ui/src/bindings.ts` is generated from them (see `bindings::export`), never written by hand.
//! Times are milliseconds since the epoch as JavaScript numbers.

use parley_engine::rest::ApiError;
use parley_shared::api::{Meeting, Role, User};
use serde::{Deserialize, Serialize};
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

impl From<parley_engine::signaling::TokenError> for AppError {
    fn from(e: parley_engine::signaling::TokenError) -> Self {
        match e {
            parley_engine::signaling::TokenError::SignedOut(message) => {
                Self::new("signed_out", message)
            }
            parley_engine::signaling::TokenError::Unavailable(message) => {
                Self::new("unreachable", message)
            }
        }
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
    /// People without an account may join from the invite link.
    pub allow_guests: bool,
    pub locked: bool,
    pub created_at_ms: f64,
    pub started_at_ms: Option<f64>,
    pub ended_at_ms: Option<f64>,
    pub my_role: RoleView,
}

impl From<Meeting> for MeetingView {
    fn from(m: Meeting) -> Self {
        Self {
            code: m.code.to_string(),
            title: m.title,
            host: m.host.username,
            has_passcode: m.has_passcode,
            waiting_room: m.waiting_room,
            allow_guests: m.allow_guests,
            locked: m.locked,
            created_at_ms: m.created_at_ms as f64,
            started_at_ms: m.started_at_ms.map(|t| t as f64),
            ended_at_ms: m.ended_at_ms.map(|t| t as f64),
            my_role: m.my_role.into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, Type)]
pub struct ChatView {
    pub id: String,
    pub seq: f64,
    pub sender_id: String,
    pub sender: String,
    /// Sent by a guest (shown with a "Guest" tag: the name is their own word).
    pub guest: bool,
    pub text: String,
    pub at_ms: f64,
}

/// History (REST) and live (WebSocket) chat carry the same fields under two wire types.
macro_rules! chat_view_from {
    ($t:ty) => {
        impl From<$t> for ChatView {
            fn from(m: $t) -> Self {
                Self {
                    id: m.id,
                    seq: m.seq as f64,
                    sender_id: m.sender.to_string(),
                    sender: m.sender_name,
                    guest: m.guest,
                    text: m.text,
                    at_ms: m.at_ms as f64,
                }
            }
        }
    };
}
chat_view_from!(parley_shared::api::ChatEntry);
chat_view_from!(parley_shared::signal::ChatMessage);

/// A participant's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum RoleView {
    Host,
    Cohost,
    Participant,
}

impl From<Role> for RoleView {
    fn from(r: Role) -> Self {
        match r {
            Role::Host => RoleView::Host,
            Role::Cohost => RoleView::Cohost,
            _ => RoleView::Participant,
        }
    }
}

/// Where we are in a meeting (`idle`: in none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum RoomStatus {
    #[default]
    Idle,
    Joining,
    Waiting,
    In,
    Reconnecting,
    Ended,
}

impl From<parley_engine::room::Status> for RoomStatus {
    fn from(s: parley_engine::room::Status) -> Self {
        use parley_engine::room::Status;
        match s {
            Status::Joining => RoomStatus::Joining,
            Status::Waiting => RoomStatus::Waiting,
            Status::In => RoomStatus::In,
            Status::Reconnecting => RoomStatus::Reconnecting,
            Status::Ended => RoomStatus::Ended,
        }
    }
}

/// Our media connection to a participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum LinkView {
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl From<parley_engine::rtc::LinkState> for LinkView {
    fn from(s: parley_engine::rtc::LinkState) -> Self {
        use parley_engine::rtc::LinkState;
        match s {
            LinkState::New => LinkView::New,
            LinkState::Connecting => LinkView::Connecting,
            LinkState::Connected => LinkView::Connected,
            LinkState::Disconnected => LinkView::Disconnected,
            LinkState::Failed => LinkView::Failed,
            LinkState::Closed => LinkView::Closed,
        }
    }
}

/// What a host or co-host can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum HostActionArg {
    Admit,
    Deny,
    Mute,
    Remove,
    Promote,
    Lock,
    Unlock,
    /// Turn guest entry off, sending away the guests still waiting.
    #[serde(rename = "close_guest_entry")]
    CloseGuestEntry,
    End,
}

/// What `select_device` chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Camera,
    Mic,
    Speaker,
    /// The noise suppressor (`webrtc` or `rnnoise`).
    Noise,
}

/// How much a notice matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum NoticeLevel {
    Info,
    Warning,
    Error,
}

/// One person in the meeting (not us), as the room shows them.
#[derive(Clone, Debug, Serialize, Deserialize, Type)]
pub struct ParticipantView {
    pub peer_id: String,
    pub user_id: String,
    pub name: String,
    pub role: RoleView,
    pub mic: bool,
    pub camera: bool,
    pub screen: bool,
    pub hand: bool,
    /// The media connection.
    pub link: LinkView,
    /// How fast our video may go to them (kbit/s, the congestion controller's estimate).
    pub send_kbps: Option<u32>,
    /// Joined through the invite link without an account.
    pub guest: bool,
}

/// Someone in the waiting room (hosts and co-hosts see them).
#[derive(Clone, Debug, Serialize, Deserialize, Type)]
pub struct WaitingView {
    pub peer_id: String,
    pub name: String,
    pub guest: bool,
}

/// The meeting room as it stands; sent whole (`RoomEvent`) whenever it changes.
#[derive(Clone, Debug, Serialize, Deserialize, Type)]
pub struct RoomView {
    pub code: String,
    pub title: String,
    pub status: RoomStatus,
    /// Why it ended, as a stable code: `left`, `meeting_ended`, `removed`, `denied`, or the
    /// server's error code.
    pub ended: Option<String>,
    /// Why it ended, for people.
    pub ended_message: Option<String>,
    pub me: Option<String>,
    pub my_name: String,
    pub my_role: RoleView,
    pub mic: bool,
    pub camera: bool,
    pub screen: bool,
    pub hand: bool,
    /// Whether a microphone / camera could be opened at all.
    pub has_mic: bool,
    pub has_camera: bool,
    pub locked: bool,
    pub participants: Vec<ParticipantView>,
    pub waiting: Vec<WaitingView>,
    /// What we are sharing, for the sharing indicator.
    pub share_name: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Type, tauri_specta::Event)]
pub struct RoomEvent(pub RoomView);

/// A chat message in the meeting (history and live alike; the UI keeps one per `id`).
#[derive(Clone, Debug, Serialize, Deserialize, Type, tauri_specta::Event)]
pub struct ChatEvent {
    pub message: ChatView,
    pub mine: bool,
    /// Sent by us and not yet acknowledged by the server.
    pub pending: bool,
    /// Ours: the id we sent it under (the acknowledged copy replaces the pending one).
    pub client_msg_id: Option<String>,
    /// Read before (on this computer, in this meeting, even before a restart): not unread.
    pub read: bool,
}

/// Audio levels, about ten times a second while in a call.
#[derive(Clone, Debug, Serialize, Deserialize, Type, tauri_specta::Event)]
pub struct LevelsEvent {
    /// (peer id, dBFS) for each remote participant heard lately.
    pub peers: Vec<(String, f32)>,
    /// Our microphone as sent (dBFS; -100 when muted or silent).
    pub mic: f32,
    pub active_speaker: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Type, tauri_specta::Event)]
pub struct ReactionEvent {
    pub peer_id: String,
    pub name: String,
    pub emoji: String,
}

/// Something to tell the user briefly (a toast): muted by the host, a device lost…
#[derive(Clone, Debug, Serialize, Deserialize, Type, tauri_specta::Event)]
pub struct NoticeEvent {
    pub level: NoticeLevel,
    pub text: String,
    /// A button beside the text.
    pub action: Option<NoticeAction>,
}

/// The device preview's state: what would not open, in words for the user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct PreviewView {
    pub camera_problem: Option<String>,
    pub mic_problem: Option<String>,
}

/// What a notice's button does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum NoticeAction {
    /// Opens the audio and video settings.
    DeviceSettings,
}

/// The window was closed while in a meeting, on a desktop without a tray: the window asks
/// whether to leave the meeting and quit.
#[derive(Clone, Debug, Serialize, Deserialize, Type, tauri_specta::Event)]
pub struct CloseAsked;

/// A tray menu choice (or an opened link) the window acts on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Type, tauri_specta::Event)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum TrayAction {
    /// Ask for a code and join.
    QuickJoin,
    /// Start a meeting of one's own and join it.
    Instant,
    /// Join this meeting.
    Join { code: String },
}

/// What kind of thing is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum ShareKind {
    Monitor,
    Window,
}

/// Something that can be shared.
#[derive(Clone, Debug, Serialize, Type)]
pub struct ShareTarget {
    /// `monitor`, `monitor:ID` or `window:ID`.
    pub id: String,
    pub name: String,
    pub kind: ShareKind,
    pub width: u32,
    pub height: u32,
    /// A small picture (PNG data URL) where the OS allows capturing one.
    pub thumbnail: Option<String>,
}

#[derive(Clone, Debug, Serialize, Type)]
pub struct DeviceView {
    pub id: String,
    pub name: String,
}

/// Devices to choose from and the ones chosen (None: the system default / first camera).
#[derive(Clone, Debug, Serialize, Type)]
pub struct DevicesView {
    pub cameras: Vec<DeviceView>,
    pub mics: Vec<DeviceView>,
    pub speakers: Vec<DeviceView>,
    pub camera: Option<String>,
    pub mic: Option<String>,
    pub speaker: Option<String>,
    /// `webrtc` or `rnnoise`.
    pub noise: String,
    /// Whether the speaker's sound is taken out of the microphone on this system (not on
    /// Windows: WebRTC's audio processing does not build there, RNNoise does the noise).
    pub echo_cancellation: bool,
}
