//! The live-meeting protocol: JSON messages over one WebSocket, tagged by `type`.
//!
//! The client opens `GET /api/ws` with `Authorization: Bearer <access token>` and the
//! WebSocket subprotocol [`SUBPROTOCOL`] (the protocol version), then sends [`ClientMsg::Join`].
//! Unknown fields are ignored; unknown types are answered with [`ServerMsg::Error`].

use serde::{Deserialize, Serialize};

use crate::api::Role;
use crate::{ErrorCode, MeetingCode, PeerId, UserId};

/// Version of this protocol; bumped on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;
/// The WebSocket subprotocol that names [`PROTOCOL_VERSION`].
pub const SUBPROTOCOL: &str = "parley.v1";
/// Largest accepted WebSocket message.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Longest SDP accepted in an offer or answer.
pub const MAX_SDP_BYTES: usize = 32 * 1024;
/// Longest reaction (one emoji, possibly with modifiers).
pub const MAX_REACTION_BYTES: usize = 32;
/// The WebSocket close code of a socket the server ends on purpose; the close frame's reason
/// is the [`ErrorCode`] (e.g. `session_revoked`), sent just before as an `error` message too.
pub const CLOSE_BY_SERVER: u16 = 4000;
/// Longest access token accepted in a `reauth`.
pub const MAX_TOKEN_BYTES: usize = 4 * 1024;
/// Longest client-chosen chat message id.
pub const MAX_CLIENT_MSG_ID_BYTES: usize = 64;

/// What a participant is sending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MediaState {
    pub audio: bool,
    pub video: bool,
    pub screen: bool,
}

/// One trickled ICE candidate, as `RTCIceCandidateInit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(default)]
    pub sdp_mline_index: Option<u16>,
    #[serde(default)]
    pub username_fragment: Option<String>,
}

/// A STUN or TURN server, as `RTCIceServer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A participant as the others see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Participant {
    pub peer_id: PeerId,
    pub user_id: UserId,
    pub display_name: String,
    pub role: Role,
    pub media: MediaState,
    pub hand_raised: bool,
    /// Joined through an invite link without an account (the display name is their own word).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guest: bool,
}

/// A stored chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatMessage {
    pub id: String,
    /// Position in the meeting's chat, from 1, without gaps.
    pub seq: i64,
    pub sender: UserId,
    pub sender_name: String,
    /// Sent by a guest from the invite link (the name is their own word, not an account's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guest: bool,
    pub text: String,
    pub at_ms: i64,
}

/// Client → server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientMsg {
    /// Enter a meeting. With `resume_token` (from an earlier `welcome`) a reconnecting client
    /// gets its old peer id, role and state back; `after_seq` asks for the chat missed since.
    Join {
        code: MeetingCode,
        display_name: String,
        #[serde(default)]
        passcode: Option<String>,
        #[serde(default)]
        resume_token: Option<String>,
        #[serde(default)]
        after_seq: Option<i64>,
    },
    Leave,
    Offer {
        to: PeerId,
        sdp: String,
    },
    Answer {
        to: PeerId,
        sdp: String,
    },
    Ice {
        to: PeerId,
        candidate: IceCandidate,
    },
    Chat {
        client_msg_id: String,
        text: String,
    },
    MediaState(MediaState),
    Hand {
        raised: bool,
    },
    Reaction {
        emoji: String,
    },
    Admit {
        peer: PeerId,
    },
    Deny {
        peer: PeerId,
    },
    Mute {
        peer: PeerId,
    },
    Remove {
        peer: PeerId,
    },
    Promote {
        peer: PeerId,
    },
    Lock,
    Unlock,
    /// Turn guest entry off and send away the guests still waiting (the host or a co-host; a
    /// stand-in host cannot change guest access).
    CloseGuestEntry,
    End,
    Ping,
    /// A fresh access token for this socket (answer to [`ServerMsg::ReauthRequired`]): the
    /// socket lives on past the old token's expiry. Same user, live session.
    Reauth {
        access_token: String,
    },
}

/// Server → client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMsg {
    /// You are in. `participants` are the others already there.
    Welcome {
        peer_id: PeerId,
        role: Role,
        participants: Vec<Participant>,
        ice_servers: Vec<IceServer>,
        /// Present this on reconnect to resume this peer.
        resume_token: String,
        locked: bool,
        /// Highest chat `seq` so far (0 when none).
        last_seq: i64,
    },
    /// You are in the waiting room until a host or co-host admits you.
    Waiting,
    /// To hosts and co-hosts: someone is waiting.
    WaitingPeer {
        peer_id: PeerId,
        user_id: UserId,
        display_name: String,
        /// A guest from the invite link, not a signed-in user.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        guest: bool,
    },
    /// To hosts and co-hosts: someone stopped waiting (admitted, denied or gone).
    WaitingDone {
        peer_id: PeerId,
    },
    PeerJoined {
        participant: Participant,
    },
    PeerLeft {
        peer_id: PeerId,
    },
    Offer {
        from: PeerId,
        sdp: String,
    },
    Answer {
        from: PeerId,
        sdp: String,
    },
    Ice {
        from: PeerId,
        candidate: IceCandidate,
    },
    Chat {
        message: ChatMessage,
    },
    ChatAck {
        client_msg_id: String,
        id: String,
        seq: i64,
    },
    MediaState {
        peer_id: PeerId,
        media: MediaState,
    },
    Hand {
        peer_id: PeerId,
        raised: bool,
    },
    Reaction {
        peer_id: PeerId,
        emoji: String,
    },
    RoleChanged {
        peer_id: PeerId,
        role: Role,
    },
    LockChanged {
        locked: bool,
    },
    /// A host or co-host muted you.
    MutedByHost,
    /// You were removed; the socket closes.
    Removed,
    /// The waiting room refused you; the socket closes.
    Denied,
    /// The meeting is over; the socket closes.
    MeetingEnded,
    /// The server is stopping; reconnect later with your resume token.
    ServerShutdown,
    /// The socket's access token expires in `within_secs`: send [`ClientMsg::Reauth`] with a
    /// fresh one before then, or the socket closes with `auth_expired`.
    ReauthRequired {
        within_secs: u64,
    },
    /// A `reauth` was accepted; the socket now lives `expires_in_secs` more.
    Reauthed {
        expires_in_secs: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    Pong,
    /// Fresh ICE servers (TURN credentials) replacing those of `welcome`: a guest's TURN
    /// credentials live an hour and are renewed this way while the guest stays in the call.
    IceServers {
        ice_servers: Vec<IceServer>,
    },
}

impl ServerMsg {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMsg::Error {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_snake_case_and_ignore_unknown_fields() {
        let m: ClientMsg =
            serde_json::from_str(r#"{"type":"hand","raised":true,"future_field":1}"#).unwrap();
        assert_eq!(m, ClientMsg::Hand { raised: true });
        let m: ClientMsg = serde_json::from_str(
            r#"{"type":"media_state","audio":true,"video":false,"screen":false}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            ClientMsg::MediaState(MediaState {
                audio: true,
                video: false,
                screen: false
            })
        );
        let out = serde_json::to_value(ServerMsg::PeerLeft {
            peer_id: PeerId("p1".into()),
        })
        .unwrap();
        assert_eq!(
            out,
            serde_json::json!({"type": "peer_left", "peer_id": "p1"})
        );
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"teleport"}"#).is_err());
    }

    #[test]
    fn join_defaults() {
        let m: ClientMsg =
            serde_json::from_str(r#"{"type":"join","code":"BCDF-GHJK-MNPQ","display_name":"Ann"}"#)
                .unwrap();
        match m {
            ClientMsg::Join {
                code,
                resume_token,
                after_seq,
                passcode,
                ..
            } => {
                assert_eq!(code.as_str(), "bcdf-ghjk-mnpq");
                assert_eq!((resume_token, after_seq, passcode), (None, None, None));
            }
            other => panic!("{other:?}"),
        }
    }
}
