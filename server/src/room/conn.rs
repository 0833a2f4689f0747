//! `GET /api/ws`: one WebSocket per participant. The access token authenticates the upgrade;
//! the `parley.v1` subprotocol names the protocol version. The connection parses messages,
//! checks the join against the database and forwards everything else to its room's task.
//! Bad input is answered with an `error` and the connection keeps working.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use parley_shared::api::ParticipantStatus;
use parley_shared::signal::{
    ClientMsg, ServerMsg, MAX_MESSAGE_BYTES, MAX_REACTION_BYTES, MAX_SDP_BYTES, SUBPROTOCOL,
};
use parley_shared::{validate, ErrorCode, PeerId};
use tokio::sync::mpsc;

use super::state::Input;
use super::task::{Conn, Joiner, Outbound, RoomCmd, OUTBOX};
use crate::error::AppError;
use crate::extract::AuthUser;
use crate::meetings::store as meetings;
use crate::ratelimit::RateLimiter;
use crate::state::AppState;

/// Frames larger than this end the connection (the protocol limit is answered with an error).
const HARD_FRAME_LIMIT_BYTES: usize = 1024 * 1024;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Upgrades to the live-meeting protocol.
pub async fn upgrade(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let offered = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|p| p.trim() == SUBPROTOCOL));
    if !offered {
        return AppError::bad_request(
            ErrorCode::MalformedRequest,
            format!("offer the WebSocket subprotocol {SUBPROTOCOL}"),
        )
        .into_response();
    }
    ws.protocols([SUBPROTOCOL])
        .max_message_size(HARD_FRAME_LIMIT_BYTES)
        .max_frame_size(HARD_FRAME_LIMIT_BYTES)
        // A signaling socket is idle most of the time; the 128 KiB default read buffer was
        // most of each connection's memory (scripts/bench-signaling.sh). Larger messages
        // (an SDP) still arrive whole: the buffer is read into in steps of this size.
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| run(state, auth, socket))
        .into_response()
}

/// Bytes read from a socket at a time.
const READ_BUFFER_BYTES: usize = 4096;

struct Joined {
    room: mpsc::Sender<RoomCmd>,
    peer: PeerId,
}

async fn run(state: AppState, auth: AuthUser, mut socket: WebSocket) {
    let conn_id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("ws", conn_id, user_id = %auth.user_id);
    let _enter = span.enter();
    let (out_tx, mut out_rx) = mpsc::channel::<Outbound>(OUTBOX);
    let mut joined: Option<Joined> = None;
    let mut chat_limit = RateLimiter::new(state.config.limits.chat_per_sec.saturating_mul(2), 2);
    // Heartbeat: ping every `ws_ping_secs`; close after `ws_idle_timeout_secs` of silence
    // (the peer keeps its slot for the grace period).
    let idle_timeout = Duration::from_secs(state.config.ws_idle_timeout_secs.max(1));
    let mut ping = tokio::time::interval(Duration::from_secs(state.config.ws_ping_secs.max(1)));
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(frame)) = incoming else { break };
                last_heard = tokio::time::Instant::now();
                let text = match frame {
                    Message::Text(t) => t,
                    Message::Binary(_) => {
                        reply(&mut socket, ServerMsg::error(ErrorCode::MalformedRequest, "send JSON text frames")).await;
                        continue;
                    }
                    Message::Close(_) => break,
                    _ => continue,
                };
                if text.len() > MAX_MESSAGE_BYTES {
                    reply(&mut socket, ServerMsg::error(ErrorCode::PayloadTooLarge, "messages are limited to 64 KiB")).await;
                    continue;
                }
                let msg = match parse(&text) {
                    Ok(m) => m,
                    Err(e) => { reply(&mut socket, e).await; continue; }
                };
                if let ClientMsg::Chat { .. } = msg {
                    if chat_limit.take("chat", state.now_ms()).is_err() {
                        reply(&mut socket, ServerMsg::error(ErrorCode::RateLimited, "you are sending chat too fast")).await;
                        continue;
                    }
                }
                match (&joined, msg) {
                    (_, ClientMsg::Ping) => reply(&mut socket, ServerMsg::Pong).await,
                    (None, ClientMsg::Join { code, display_name, passcode, resume_token, after_seq }) => {
                        let conn = Conn { id: conn_id, tx: out_tx.clone() };
                        match join(&state, &auth, code, display_name, passcode, resume_token, after_seq, conn).await {
                            Ok(j) => joined = Some(j),
                            Err(e) => reply(&mut socket, e).await,
                        }
                    }
                    (None, _) => reply(&mut socket, ServerMsg::error(ErrorCode::OutOfState, "send join first")).await,
                    (Some(_), ClientMsg::Join { .. }) => {
                        reply(&mut socket, ServerMsg::error(ErrorCode::OutOfState, "already joined")).await
                    }
                    (Some(j), msg) => match to_room(&j.peer, msg) {
                        Ok(Some(cmd)) => {
                            if j.room.send(cmd).await.is_err() {
                                break;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => reply(&mut socket, e).await,
                    },
                }
            }
            out = out_rx.recv() => match out {
                Some(Outbound::Msg(msg)) => {
                    // A resume hands this connection its old peer id.
                    if let (ServerMsg::Welcome { peer_id, .. }, Some(j)) = (&msg, joined.as_mut()) {
                        j.peer = peer_id.clone();
                    }
                    if !send(&mut socket, &msg).await { break; }
                }
                Some(Outbound::Close) | None => {
                    let _ = socket.send(Message::Close(None)).await;
                    joined = None;
                    break;
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > idle_timeout {
                    tracing::info!("idle connection closed");
                    break;
                }
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() { break; }
            }
        }
    }
    if let Some(j) = joined {
        let _ = j
            .room
            .send(RoomCmd::Dropped {
                peer: j.peer,
                conn_id,
            })
            .await;
    }
}

async fn send(socket: &mut WebSocket, msg: &ServerMsg) -> bool {
    match serde_json::to_string(msg) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => true,
    }
}

async fn reply(socket: &mut WebSocket, msg: ServerMsg) {
    let _ = send(socket, &msg).await;
}

/// Parses a client message; distinguishes unknown types from malformed bodies.
fn parse(text: &str) -> Result<ClientMsg, ServerMsg> {
    serde_json::from_str::<ClientMsg>(text).map_err(|e| {
        let unknown = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
            .is_some_and(|_| e.to_string().starts_with("unknown variant"));
        if unknown {
            ServerMsg::error(ErrorCode::UnknownMessageType, "unknown message type")
        } else {
            ServerMsg::error(
                ErrorCode::MalformedRequest,
                format!("malformed message: {e}"),
            )
        }
    })
}

/// Maps a joined peer's message to its room command (`from` is always the connection's own).
fn to_room(me: &PeerId, msg: ClientMsg) -> Result<Option<RoomCmd>, ServerMsg> {
    let too_big = |what: &str| {
        Err(ServerMsg::error(
            ErrorCode::PayloadTooLarge,
            format!("{what} is too large"),
        ))
    };
    let from = me.clone();
    let input = match msg {
        ClientMsg::Leave => Input::Leave { peer: from },
        ClientMsg::Offer { to, sdp } if sdp.len() <= MAX_SDP_BYTES => {
            Input::Offer { from, to, sdp }
        }
        ClientMsg::Answer { to, sdp } if sdp.len() <= MAX_SDP_BYTES => {
            Input::Answer { from, to, sdp }
        }
        ClientMsg::Offer { .. } | ClientMsg::Answer { .. } => return too_big("the SDP"),
        ClientMsg::Ice { to, candidate } => Input::Ice {
            from,
            to,
            candidate,
        },
        ClientMsg::Chat {
            client_msg_id,
            text,
        } => {
            return Ok(Some(RoomCmd::Chat {
                peer: from,
                client_msg_id,
                text,
            }))
        }
        ClientMsg::MediaState(media) => Input::Media { peer: from, media },
        ClientMsg::Hand { raised } => Input::Hand { peer: from, raised },
        ClientMsg::Reaction { emoji } if emoji.len() <= MAX_REACTION_BYTES && !emoji.is_empty() => {
            Input::Reaction { peer: from, emoji }
        }
        ClientMsg::Reaction { .. } => return too_big("the reaction"),
        ClientMsg::Admit { peer } => Input::Admit { by: from, peer },
        ClientMsg::Deny { peer } => Input::Deny { by: from, peer },
        ClientMsg::Mute { peer } => Input::Mute { by: from, peer },
        ClientMsg::Remove { peer } => Input::Remove { by: from, peer },
        ClientMsg::Promote { peer } => Input::Promote { by: from, peer },
        ClientMsg::Lock => Input::Lock {
            by: from,
            locked: true,
        },
        ClientMsg::Unlock => Input::Lock {
            by: from,
            locked: false,
        },
        ClientMsg::End => Input::End { by: from },
        _ => return Ok(None),
    };
    Ok(Some(RoomCmd::Input(input)))
}

/// Checks a join against the database (meeting, ended, removed, passcode) and hands the
/// connection to the room, which decides lock, waiting room and capacity.
#[allow(clippy::too_many_arguments)]
async fn join(
    state: &AppState,
    auth: &AuthUser,
    code: parley_shared::MeetingCode,
    display_name: String,
    passcode: Option<String>,
    resume: Option<String>,
    after_seq: Option<i64>,
    conn: Conn,
) -> Result<Joined, ServerMsg> {
    let fail = |code, msg: &str| ServerMsg::error(code, msg);
    let name = validate::display_name(&display_name).map_err(|e| fail(e.code, &e.message))?;
    let user_id = auth.user_id.as_str();
    let m = meetings::by_code(&state.db.pool, &code, user_id)
        .await
        .map_err(|_| fail(ErrorCode::Internal, "database unavailable"))?
        .ok_or_else(|| fail(ErrorCode::MeetingNotFound, "no meeting has that code"))?;
    let crate::meetings::routes::Admission { role, admitted } =
        crate::meetings::routes::admission(state, &m, user_id, passcode)
            .await
            .map_err(|e| ServerMsg::error(e.code, e.message))?;
    // Make sure a participant row exists; the room sets its status.
    let status = m.status().unwrap_or(ParticipantStatus::Invited);
    meetings::upsert_participant_keep(&state.db.pool, &m.id, user_id, role, status, state.now_ms())
        .await
        .map_err(|_| fail(ErrorCode::Internal, "database unavailable"))?;
    let peer = PeerId(ulid::Ulid::new().to_string());
    let mut cmd = RoomCmd::Connect {
        joiner: Joiner {
            peer: peer.clone(),
            user: auth.user_id.clone(),
            name,
            role,
            admitted,
            resume_token: crate::auth::crypto::new_refresh_token(),
            resume,
            after_seq,
        },
        conn,
    };
    // A room that found itself empty may retire between our lookup and our send; the next
    // lookup starts a fresh one.
    for _ in 0..3 {
        let room =
            state
                .rooms
                .get_or_start(state, &m.id, &m.host_id, m.locked != 0, m.waiting_room != 0);
        match room.send(cmd).await {
            Ok(()) => return Ok(Joined { room, peer }),
            Err(tokio::sync::mpsc::error::SendError(back)) => cmd = back,
        }
    }
    Err(fail(
        ErrorCode::ServiceUnavailable,
        "the meeting is restarting; try again",
    ))
}
