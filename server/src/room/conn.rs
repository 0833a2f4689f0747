//! `GET /api/ws`: one WebSocket per participant. The access token authenticates the upgrade;
//! the `parley.v1` subprotocol names the protocol version. The connection parses messages,
//! checks the join against the database and forwards everything else to its room's task.
//! Bad input is answered with an `error` and the connection keeps working.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt as _;
use parley_shared::api::ParticipantStatus;
use parley_shared::signal::{
    ClientMsg, ServerMsg, CLOSE_BY_SERVER, MAX_MESSAGE_BYTES, MAX_REACTION_BYTES, MAX_SDP_BYTES,
    MAX_TOKEN_BYTES, SUBPROTOCOL,
};
use parley_shared::{validate, ErrorCode, PeerId};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::state::Input;
use super::task::{Conn, Joiner, Outbound, RoomCmd};
use crate::error::AppError;
use crate::extract::{AuthUser, ClientIp, RoomAuth};
use crate::meetings::store as meetings;
use crate::ratelimit::RateLimiter;
use crate::sockets::{SocketCaps, SocketGuard};
use crate::state::AppState;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Upgrades to the live-meeting protocol.
pub async fn upgrade(
    State(state): State<AppState>,
    RoomAuth(auth): RoomAuth,
    ip: ClientIp,
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
    let conn_id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let l = &state.config.limits;
    let caps = SocketCaps {
        per_user: l.ws_per_user,
        per_ip: l.ws_per_ip,
    };
    let guard = match state.sockets.open(
        conn_id,
        auth.user_id.as_str(),
        auth.session_id.as_str(),
        &ip.bucket(),
        caps,
    ) {
        Ok(g) => g,
        Err(why) => {
            return AppError {
                retry_after_secs: Some(10),
                ..AppError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::TooManyConnections,
                    why,
                )
            }
            .into_response()
        }
    };
    let span = tracing::info_span!("ws", conn_id, user_id = %auth.user_id);
    ws.protocols([SUBPROTOCOL])
        // Read up to twice the protocol's limit, so that a message a little over it is
        // answered with `payload_too_large` and the socket lives on. A frame over this is not
        // read into memory: the socket is closed, and since its data cannot be drained the
        // client may see a reset rather than the close frame (the WebSocket fuzzer found
        // that at 64 KiB + a little: the error never reached the client).
        .max_message_size(READ_LIMIT_BYTES)
        .max_frame_size(READ_LIMIT_BYTES)
        // A signaling socket is idle most of the time; the 128 KiB default read buffer was
        // most of each connection's memory (scripts/bench-signaling.sh). Larger messages
        // (an SDP) still arrive whole: the buffer is read into in steps of this size.
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| run(state, auth, guard, conn_id, socket).instrument(span))
        .into_response()
}

/// Bytes read from a socket at a time.
/// The largest frame read at all (see `upgrade`): twice [`MAX_MESSAGE_BYTES`].
pub const READ_LIMIT_BYTES: usize = 2 * MAX_MESSAGE_BYTES;
const READ_BUFFER_BYTES: usize = 4096;
/// How long the goodbye (an `error` and the close frame) may take to write.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a socket we end is read (and its data dropped) for its close.
const LINGER: Duration = Duration::from_secs(2);
/// How much of a waiting outbox is written before one flush.
const WRITE_BATCH_BYTES: usize = 64 * 1024;
/// Least time between two "over budget" errors to one socket.
const BUDGET_ERROR_EVERY_MS: i64 = 1000;

struct Joined {
    room: mpsc::Sender<RoomCmd>,
    peer: PeerId,
}

/// One socket's writer side: every write has a deadline, so a client that stops reading
/// cannot stall the task (and with it the idle check and everything else).
struct Writer {
    socket: WebSocket,
    timeout: Duration,
}

/// What became of a turn of [`Writer::write_out`].
enum Written {
    /// Everything taken from the outbox is on its way.
    All,
    /// The room closed this connection (the close frame is sent).
    Closed,
    /// The socket failed or the client did not take the messages in time.
    Failed,
}

impl Writer {
    /// Writes `first` and whatever else is already waiting in the outbox (up to
    /// [`WRITE_BATCH_BYTES`]) with one flush: a burst of messages costs one write to the
    /// socket instead of one each.
    async fn write_out(
        &mut self,
        first: Option<Outbound>,
        outbox: &mut mpsc::Receiver<Outbound>,
        joined: &mut Option<Joined>,
    ) -> Written {
        let mut next = first;
        let mut bytes = 0;
        let written = loop {
            let text = match next.take() {
                Some(Outbound::Text(text)) => Some(text),
                Some(Outbound::Msg(msg)) => {
                    // A resume hands this connection its old peer id.
                    if let (ServerMsg::Welcome { peer_id, .. }, Some(j)) = (&msg, joined.as_mut()) {
                        j.peer = peer_id.clone();
                    }
                    serde_json::to_string(&msg).ok().map(Utf8Bytes::from)
                }
                Some(Outbound::Close) | None => {
                    // Sending the close frame flushes what was fed before it.
                    let _ = tokio::time::timeout(
                        GOODBYE_TIMEOUT,
                        self.socket.send(Message::Close(None)),
                    )
                    .await;
                    return Written::Closed;
                }
            };
            if let Some(text) = text {
                bytes += text.len();
                let fed = self.socket.feed(Message::Text(text));
                if !matches!(tokio::time::timeout(self.timeout, fed).await, Ok(Ok(()))) {
                    return Written::Failed;
                }
            }
            if bytes >= WRITE_BATCH_BYTES {
                break Written::All;
            }
            match outbox.try_recv() {
                Ok(out) => next = Some(out),
                Err(_) => break Written::All,
            }
        };
        match tokio::time::timeout(self.timeout, self.socket.flush()).await {
            Ok(Ok(())) => written,
            _ => Written::Failed,
        }
    }

    /// Writes `msg`; false when the socket failed or the client did not take it in time.
    async fn send(&mut self, msg: &ServerMsg) -> bool {
        match serde_json::to_string(msg) {
            Ok(text) => self.frame(Message::Text(text.into())).await,
            Err(_) => true,
        }
    }

    async fn frame(&mut self, frame: Message) -> bool {
        matches!(
            tokio::time::timeout(self.timeout, self.socket.send(frame)).await,
            Ok(Ok(()))
        )
    }

    /// Tells the client why and closes (best effort, bounded in time).
    async fn goodbye(&mut self, code: ErrorCode, message: &str) {
        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, async {
            let err = ServerMsg::error(code, message);
            if let Ok(text) = serde_json::to_string(&err) {
                self.socket.send(Message::Text(text.into())).await?;
            }
            self.socket
                .send(Message::Close(Some(CloseFrame {
                    code: CLOSE_BY_SERVER,
                    reason: code.as_str().into(),
                })))
                .await
        })
        .await;
        // A lingering close: what the client still sends is read and dropped until it
        // answers the close (or LINGER passes). Closing with its data unread would make the
        // kernel reset the connection, and a reset discards the error and the close frame
        // before the client reads them (a flooder would never learn why).
        let _ = tokio::time::timeout(LINGER, async {
            while let Some(Ok(m)) = self.socket.recv().await {
                if let Message::Close(_) = m {
                    break;
                }
            }
        })
        .await;
    }
}

/// Milliseconds since `start`, for the per-socket budget (real time: it is about traffic).
fn since_ms(start: Instant) -> i64 {
    i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// How much of the access token's life is left, as a deadline on the runtime's clock.
fn auth_deadline(state: &AppState, expires_at_ms: i64) -> Instant {
    let left = u64::try_from(expires_at_ms.saturating_sub(state.now_ms())).unwrap_or(0);
    Instant::now() + Duration::from_millis(left)
}

/// How long before the token's expiry the client is asked to re-authenticate.
fn reauth_warning(deadline: Instant) -> Duration {
    let left = deadline.saturating_duration_since(Instant::now());
    (left / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

async fn run(
    state: AppState,
    mut auth: AuthUser,
    guard: SocketGuard,
    conn_id: u64,
    socket: WebSocket,
) {
    let cfg = &state.config;
    let l = &cfg.limits;
    let mut w = Writer {
        socket,
        timeout: Duration::from_secs(l.ws_send_timeout_secs.max(1)),
    };
    let kill = guard.kill.clone();
    let (out_tx, mut out_rx) = mpsc::channel::<Outbound>(l.ws_outbox_messages.max(1));
    let mut joined: Option<Joined> = None;
    let mut chat_limit = RateLimiter::new(l.chat_per_sec.saturating_mul(2), 2);
    // One budget for every message type: `burst` at once, refilled at `per_sec`.
    let burst = l.ws_message_burst.max(1);
    let window_secs = u64::from(burst.div_ceil(l.ws_messages_per_sec.max(1))).max(1);
    let mut budget = RateLimiter::new(burst, window_secs);
    let mut over_budget = 0u32;
    let mut last_budget_error = i64::MIN / 2;
    let started = Instant::now();
    let join_by = tokio::time::sleep(Duration::from_secs(l.ws_join_timeout_secs.max(1)));
    tokio::pin!(join_by);
    let mut expires = auth_deadline(&state, auth.expires_at_ms);
    let mut warned = false;
    // Heartbeat: ping every `ws_ping_secs`; close after `ws_idle_timeout_secs` of silence
    // (the peer keeps its slot for the grace period).
    let idle_timeout = Duration::from_secs(cfg.ws_idle_timeout_secs.max(1));
    let mut ping = tokio::time::interval(Duration::from_secs(cfg.ws_ping_secs.max(1)));
    let mut last_heard = Instant::now();
    // The sign-in's two deadlines, made once and moved when a re-authentication renews them:
    // a sleep made afresh on every turn of the loop costs a timer registration and removal
    // for each message in and out (the signaling benchmark's CPU per message, issue 18).
    let warn_at = |expires: Instant| {
        expires
            .checked_sub(reauth_warning(expires))
            .unwrap_or(expires)
    };
    let reauth_due = tokio::time::sleep_until(warn_at(expires));
    tokio::pin!(reauth_due);
    let expiry = tokio::time::sleep_until(expires);
    tokio::pin!(expiry);
    // Made once as well: made afresh per turn, it took the kill's lock and joined and left
    // its waiter list for every message in and out.
    let killed = kill.fired();
    tokio::pin!(killed);
    loop {
        if expiry.deadline() != expires {
            expiry.as_mut().reset(expires);
            reauth_due.as_mut().reset(warn_at(expires));
        }
        // In this order, and the first ready branch ends the turn: a turn woken to relay a
        // message polls no timer (their polls showed in the signaling benchmark's profile, a
        // few per cent at most; issue 18). Nothing starves: a
        // socket that reads without pause is still made to yield by tokio's budget, and one
        // that floods is closed by the message budget.
        tokio::select! {
            biased;
            out = out_rx.recv() => match w.write_out(out, &mut out_rx, &mut joined).await {
                Written::All => {}
                Written::Closed => {
                    joined = None;
                    break;
                }
                Written::Failed => {
                    tracing::info!("client not reading: socket closed");
                    break;
                }
            },
            incoming = w.socket.recv() => {
                let frame = match incoming {
                    Some(Ok(frame)) => frame,
                    Some(Err(e)) => {
                        // Oversized frames end here, before they are read into memory.
                        tracing::debug!(error = %e, "socket read failed");
                        w.goodbye(ErrorCode::PayloadTooLarge, "messages are limited to 64 KiB").await;
                        break;
                    }
                    None => break,
                };
                last_heard = Instant::now();
                let text = match frame {
                    Message::Text(t) => t,
                    Message::Binary(_) => {
                        if !w.send(&ServerMsg::error(ErrorCode::MalformedRequest, "send JSON text frames")).await { break; }
                        continue;
                    }
                    Message::Close(_) => break,
                    _ => continue,
                };
                let now = since_ms(started);
                if budget.take("all", now).is_err() {
                    over_budget += 1;
                    if over_budget > burst {
                        tracing::info!("flooding socket closed");
                        w.goodbye(ErrorCode::Flooding, "you sent far more messages than allowed").await;
                        break;
                    }
                    if now - last_budget_error >= BUDGET_ERROR_EVERY_MS {
                        last_budget_error = now;
                        if !w.send(&ServerMsg::error(ErrorCode::RateLimited, "you are sending too many messages; some were dropped")).await { break; }
                    }
                    continue;
                }
                over_budget = over_budget.saturating_sub(1);
                if text.len() > MAX_MESSAGE_BYTES {
                    if !w.send(&ServerMsg::error(ErrorCode::PayloadTooLarge, "messages are limited to 64 KiB")).await { break; }
                    continue;
                }
                let msg = match parse(&text) {
                    Ok(m) => m,
                    Err(e) => { if !w.send(&e).await { break; } continue; }
                };
                if let ClientMsg::Chat { .. } = msg {
                    if chat_limit.take("chat", state.now_ms()).is_err() {
                        if !w.send(&ServerMsg::error(ErrorCode::RateLimited, "you are sending chat too fast")).await { break; }
                        continue;
                    }
                }
                let reply = match (&joined, msg) {
                    (_, ClientMsg::Ping) => Some(ServerMsg::Pong),
                    (_, ClientMsg::Reauth { access_token }) => {
                        match reauth(&state, &auth, &access_token).await {
                            Ok(fresh) => {
                                state.sockets.set_session(conn_id, fresh.session_id.as_str());
                                expires = auth_deadline(&state, fresh.expires_at_ms);
                                warned = false;
                                let left = expires.saturating_duration_since(Instant::now()).as_secs();
                                auth = fresh;
                                // A guest's TURN credentials are renewed with the sign-in,
                                // for as long as the guest stays in the call.
                                if let Some(j) = joined.as_ref().filter(|_| auth.guest_of.is_some()) {
                                    let _ = j.room.send(RoomCmd::RenewIce { peer: j.peer.clone() }).await;
                                }
                                Some(ServerMsg::Reauthed { expires_in_secs: left })
                            }
                            Err(e) => Some(e),
                        }
                    }
                    (None, ClientMsg::Join { code, display_name, passcode, resume_token, after_seq }) => {
                        let conn = Conn { id: conn_id, tx: out_tx.clone(), kill: kill.clone() };
                        match join(&state, &auth, code, display_name, passcode, resume_token, after_seq, conn).await {
                            Ok(j) => { joined = Some(j); None }
                            Err(e) => Some(e),
                        }
                    }
                    (None, _) => Some(ServerMsg::error(ErrorCode::OutOfState, "send join first")),
                    (Some(_), ClientMsg::Join { .. }) => {
                        Some(ServerMsg::error(ErrorCode::OutOfState, "already joined"))
                    }
                    (Some(j), msg) => match to_room(&j.peer, msg) {
                        Ok(Some(cmd)) => {
                            if j.room.send(cmd).await.is_err() {
                                break;
                            }
                            None
                        }
                        Ok(None) => None,
                        Err(e) => Some(e),
                    },
                };
                if let Some(reply) = reply {
                    if !w.send(&reply).await { break; }
                }
            }
            (code, message) = &mut killed => {
                tracing::info!(reason = code.as_str(), "socket ended by the server");
                w.goodbye(code, message).await;
                break;
            }
            () = &mut join_by, if joined.is_none() => {
                w.goodbye(ErrorCode::JoinTimeout, "send join within a few seconds of connecting").await;
                break;
            }
            () = &mut reauth_due, if !warned => {
                warned = true;
                let within_secs = expires.saturating_duration_since(Instant::now()).as_secs();
                if !w.send(&ServerMsg::ReauthRequired { within_secs }).await { break; }
            }
            () = &mut expiry => {
                w.goodbye(ErrorCode::AuthExpired, "your sign-in expired; reconnect with a fresh token").await;
                break;
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > idle_timeout {
                    tracing::info!("idle connection closed");
                    break;
                }
                if !w.frame(Message::Ping(Vec::new().into())).await { break; }
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
    drop(guard);
}

/// Checks a `reauth` token: valid, same user, live session.
async fn reauth(state: &AppState, current: &AuthUser, token: &str) -> Result<AuthUser, ServerMsg> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ServerMsg::error(
            ErrorCode::PayloadTooLarge,
            "that token is too long",
        ));
    }
    let fresh = AuthUser::from_token(state, token)
        .await
        .map_err(|e| ServerMsg::error(e.code, e.message))?;
    if fresh.user_id != current.user_id {
        return Err(ServerMsg::error(
            ErrorCode::InvalidToken,
            "that token belongs to someone else",
        ));
    }
    Ok(fresh)
}

/// Parses a client message; distinguishes unknown types from malformed bodies.
pub fn parse(text: &str) -> Result<ClientMsg, ServerMsg> {
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
/// Public for the signaling fuzz target.
pub fn to_room(me: &PeerId, msg: ClientMsg) -> Result<Option<RoomCmd>, ServerMsg> {
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
        ClientMsg::CloseGuestEntry => Input::CloseGuestEntry { by: Some(from) },
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
    let mut m = meetings::by_code(&state.db.pool, &code, user_id)
        .await
        .map_err(|_| fail(ErrorCode::Internal, "database unavailable"))?
        .ok_or_else(|| fail(ErrorCode::MeetingNotFound, "no meeting has that code"))?;
    let guest = auth.guest_of.is_some();
    if let Some(meeting_id) = &auth.guest_of {
        if *meeting_id != m.id {
            return Err(fail(
                ErrorCode::GuestNotAllowed,
                "this guest sign-in is for another meeting",
            ));
        }
        crate::meetings::guests::may_enter_again(state, &m, user_id)
            .await
            .map_err(|e| ServerMsg::error(e.code, e.message))?;
        // The passcode was given at the guest's entry (or a personal link stood for it).
        m.passcode_hash = None;
    }
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
            guest,
            resume_token: crate::auth::crypto::new_refresh_token(),
            resume,
            after_seq,
        },
        conn,
    };
    // A room that found itself empty may retire between our lookup and our send; the next
    // lookup starts a fresh one. The slot is reserved first (a busy room's queue may be full),
    // the command handed over only while the registry still names the room.
    for _ in 0..3 {
        let room = state.rooms.get_or_start(
            &state.room_context(),
            &m.id,
            &m.host_id,
            m.locked != 0,
            m.waiting_room != 0,
        );
        let Ok(permit) = room.clone().reserve_owned().await else {
            continue;
        };
        match state.rooms.send_to_live(&m.id, &room, permit, cmd) {
            Ok(()) => return Ok(Joined { room, peer }),
            Err(back) => cmd = *back,
        }
    }
    Err(fail(
        ErrorCode::ServiceUnavailable,
        "the meeting is restarting; try again",
    ))
}
