//! One task per live meeting: it owns the [`Room`] state machine and each connection's
//! outbox, applies inputs in order, persists what the room decides and delivers messages.
//! Connections talk to it over a bounded channel; nothing else touches a room's state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use parley_shared::api::{ParticipantStatus, Role};
use parley_shared::signal::{ServerMsg, MAX_CLIENT_MSG_ID_BYTES};
use parley_shared::{validate, ErrorCode, PeerId, UserId};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use super::chat;
use super::state::{Effect, Input, Room, RoomConfig, Stored};
use crate::clock::Clock;
use crate::turn::IceConfig;

/// Commands queued per room before senders wait.
const ROOM_QUEUE: usize = 256;
/// How often dropped peers are checked against their grace period (only while there are any:
/// a room of connected peers has nothing to check, and 500 idle rooms ticking 4 times a
/// second were most of an idle server's CPU with 2,000 sockets, issue 18).
const TICK: Duration = Duration::from_millis(250);
/// Most missed chat messages replayed on resume.
const MAX_REPLAY: i64 = 1000;

/// What a connection's writer receives.
#[derive(Debug)]
pub enum Outbound {
    /// A message the connection writes as JSON itself: the welcome, whose peer id it reads.
    Msg(ServerMsg),
    /// A message already written as JSON: a broadcast is serialised once, and every
    /// recipient's outbox shares the one text.
    Text(Utf8Bytes),
    Close,
}

/// A connection's outbox, with an id so stale "dropped" reports are ignored.
#[derive(Debug, Clone)]
pub struct Conn {
    pub id: u64,
    pub tx: mpsc::Sender<Outbound>,
    /// Ends the socket directly, past a full outbox.
    pub kill: std::sync::Arc<crate::sockets::Kill>,
}

/// Who is joining, as checked against the database by the connection.
#[derive(Debug)]
pub struct Joiner {
    pub peer: PeerId,
    pub user: UserId,
    pub name: String,
    pub role: Role,
    pub admitted: bool,
    pub guest: bool,
    pub resume_token: String,
    pub resume: Option<String>,
    pub after_seq: Option<i64>,
}

/// Commands to a room.
#[derive(Debug)]
pub enum RoomCmd {
    Connect {
        joiner: Joiner,
        conn: Conn,
    },
    Input(Input),
    Chat {
        peer: PeerId,
        client_msg_id: String,
        text: String,
    },
    Dropped {
        peer: PeerId,
        conn_id: u64,
    },
    /// The meeting was ended elsewhere (REST).
    End,
    /// A host lifted this user's bar (REST).
    Readmit(UserId),
    /// The peer's socket re-authenticated: a guest in the call gets fresh TURN credentials.
    RenewIce {
        peer: PeerId,
    },
    /// Guest entry was turned off (REST): guests still waiting are sent away.
    CloseGuestEntry,
    /// The server is stopping.
    Shutdown,
}

/// What a room task needs of the server, and nothing more.
#[derive(Clone)]
pub struct RoomContext {
    pub pool: sqlx::AnyPool,
    pub clock: Arc<dyn Clock>,
    pub config: RoomConfig,
    pub ice: IceConfig,
    pub chat: chat::Writer,
    pub rooms: Rooms,
    /// Live sockets: removing a guest signs out the other guests from its source.
    pub sockets: Arc<crate::sockets::Sockets>,
}

impl RoomContext {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// The registry of live rooms, by meeting id (clones share it).
#[derive(Clone, Default)]
pub struct Rooms {
    // Never held across an await.
    map: Arc<Mutex<HashMap<String, mpsc::Sender<RoomCmd>>>>,
}

impl Rooms {
    /// The live room of `meeting_id`, started if needed.
    pub fn get_or_start(
        &self,
        ctx: &RoomContext,
        meeting_id: &str,
        owner: &str,
        locked: bool,
        waiting_room: bool,
    ) -> mpsc::Sender<RoomCmd> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(meeting_id).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        let room = Room::new(ctx.config, UserId(owner.into()), locked, waiting_room);
        // The span is the task's, not entered inside it: an entered guard held across awaits
        // stays on the stack of whichever thread first ran the task, and the subscriber
        // keeps the span (and its meeting id) alive for the life of the process.
        let span = tracing::info_span!("room", meeting_id = %meeting_id);
        tokio::spawn(run(ctx.clone(), meeting_id.to_string(), room, rx).instrument(span));
        map.insert(meeting_id.to_string(), tx.clone());
        tx
    }

    /// The live room of `meeting_id`, if any.
    pub fn get(&self, meeting_id: &str) -> Option<mpsc::Sender<RoomCmd>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(meeting_id)
            .cloned()
    }

    /// Hands a joiner's command to `room` if the registry still names it as the live room of
    /// `meeting_id`; gives the command back otherwise (the room retired: look again).
    ///
    /// The send happens under the registry's lock, the same lock a room retires under, so a
    /// joiner's command is either in the queue when the room last looks at it or refused.
    /// A plain `send` could land after the room's last look and before its queue was
    /// dropped: it succeeded, and the joiner waited for a welcome from a room that was gone.
    pub fn send_to_live(
        &self,
        meeting_id: &str,
        room: &mpsc::Sender<RoomCmd>,
        permit: mpsc::OwnedPermit<RoomCmd>,
        cmd: RoomCmd,
    ) -> Result<(), Box<RoomCmd>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(meeting_id) {
            Some(live) if live.same_channel(room) && !live.is_closed() => {
                permit.send(cmd);
                Ok(())
            }
            _ => Err(Box::new(cmd)),
        }
    }

    /// Called by a room with nobody in it: hands back a waiting command, if any; otherwise
    /// closes the room's queue and leaves the registry. Both under the registry's lock (see
    /// [`Rooms::send_to_live`]), so a joiner either finds the room before it retires (and its
    /// command is waiting) or a fresh one after.
    fn retire(&self, meeting_id: &str, rx: &mut mpsc::Receiver<RoomCmd>) -> Option<RoomCmd> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match rx.try_recv() {
            Ok(cmd) => Some(cmd),
            Err(_) => {
                rx.close();
                // Ours: an entry is only replaced once its room's queue is closed.
                map.remove(meeting_id);
                None
            }
        }
    }

    fn remove_if_closed(&self, meeting_id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(meeting_id).is_some_and(|tx| tx.is_closed()) {
            map.remove(meeting_id);
        }
    }

    /// Tells every room the server is stopping.
    pub async fn shutdown_all(&self) {
        let rooms: Vec<_> = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for tx in rooms {
            let _ = tx.send(RoomCmd::Shutdown).await;
        }
    }
}

struct Task {
    ctx: RoomContext,
    meeting_id: String,
    room: Room,
    conns: HashMap<PeerId, Conn>,
    after_seq: HashMap<PeerId, i64>,
    /// Where the chat writer reports stored messages, in the order they were handed over.
    chat_done: mpsc::UnboundedSender<ChatDone>,
    /// Peers whose outbox overflowed: disconnected, to be marked dropped in the room.
    overflowed: Vec<PeerId>,
    /// The last message serialised and its JSON: the room's effects send one message to
    /// each recipient in a row, and each after the first reuses the text.
    encoded: Option<(ServerMsg, Utf8Bytes)>,
}

/// A chat message's outcome from the writer.
struct ChatDone {
    peer: PeerId,
    client_msg_id: String,
    outcome: chat::Outcome,
}

async fn run(ctx: RoomContext, meeting_id: String, room: Room, mut rx: mpsc::Receiver<RoomCmd>) {
    let (chat_done, mut chat_done_rx) = mpsc::unbounded_channel();
    let mut task = Task {
        ctx: ctx.clone(),
        meeting_id: meeting_id.clone(),
        room,
        conns: HashMap::new(),
        after_seq: HashMap::new(),
        chat_done,
        overflowed: Vec::new(),
        encoded: None,
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(RoomCmd::Shutdown) | None => {
                    task.shutdown();
                    break;
                }
                Some(cmd) => task.command(cmd).await,
            },
            Some(done) = chat_done_rx.recv() => {
                task.chat_stored(done);
                task.apply(Vec::new()).await;
            }
            _ = tick.tick(), if task.room.next_deadline().is_some() => {
                let fx = task.room.handle(Input::Tick, ctx.now_ms());
                task.apply(fx).await;
            }
        }
        if task.room.is_empty() && task.conns.is_empty() {
            // Retire, unless a command (a joiner) is already waiting. Before, the room closed
            // its queue and went on serving what was queued: a joiner served that way sat in
            // a room nobody could reach any more while the next joiners started a second one
            // (the signaling benchmark's join storm lost one newcomer's offers that way).
            match ctx.rooms.retire(&meeting_id, &mut rx) {
                Some(cmd) => task.command(cmd).await,
                None => break,
            }
        }
    }
    drop(rx);
    ctx.rooms.remove_if_closed(&meeting_id);
}

impl Task {
    async fn command(&mut self, cmd: RoomCmd) {
        let now = self.ctx.now_ms();
        match cmd {
            RoomCmd::Connect { joiner, conn } => {
                self.conns.insert(joiner.peer.clone(), conn);
                if let Some(seq) = joiner.after_seq {
                    self.after_seq.insert(joiner.peer.clone(), seq);
                }
                let input = Input::Join {
                    peer: joiner.peer.clone(),
                    user: joiner.user,
                    name: joiner.name,
                    role: joiner.role,
                    admitted: joiner.admitted,
                    guest: joiner.guest,
                    resume_token: joiner.resume_token,
                    resume: joiner.resume,
                };
                let fx = self.room.handle(input, now);
                // A resume is welcomed under the old peer id: move the new outbox there.
                let resumed_as = fx.iter().find_map(|e| match e {
                    Effect::Replace(old) => Some(old.clone()),
                    _ => None,
                });
                if let Some(old) = resumed_as {
                    if let Some(conn) = self.conns.remove(&joiner.peer) {
                        if let Some(previous) = self.conns.insert(old.clone(), conn) {
                            let _ = previous.tx.try_send(Outbound::Close);
                        }
                    }
                    if let Some(seq) = self.after_seq.remove(&joiner.peer) {
                        self.after_seq.insert(old, seq);
                    }
                }
                self.apply(fx).await;
            }
            RoomCmd::Input(input) => {
                let fx = self.room.handle(input, now);
                self.apply(fx).await;
            }
            RoomCmd::Chat {
                peer,
                client_msg_id,
                text,
            } => self.chat(peer, client_msg_id, text, now).await,
            RoomCmd::Dropped { peer, conn_id } => {
                if self.conns.get(&peer).is_some_and(|c| c.id == conn_id) {
                    self.conns.remove(&peer);
                    let fx = self.room.handle(Input::Dropped { peer }, now);
                    self.apply(fx).await;
                }
            }
            RoomCmd::RenewIce { peer } => {
                let guest = self
                    .room
                    .peer(&peer)
                    .filter(|p| p.guest && self.room.is_joined(&peer))
                    .map(|p| p.user.clone());
                if let Some(user) = guest {
                    let ice_servers = self.ctx.ice.servers(&user, now, true);
                    if !ice_servers.is_empty() {
                        self.send(&peer, ServerMsg::IceServers { ice_servers });
                    }
                }
            }
            RoomCmd::CloseGuestEntry => {
                let fx = self.room.handle(Input::CloseGuestEntry { by: None }, now);
                self.apply(fx).await;
            }
            RoomCmd::Readmit(user) => {
                let fx = self.room.handle(Input::Readmit { user }, now);
                self.apply(fx).await;
            }
            RoomCmd::End => {
                let mut fx = Vec::new();
                self.room.end(&mut fx);
                self.apply(fx).await;
            }
            RoomCmd::Shutdown => self.shutdown(),
        }
    }

    fn shutdown(&mut self) {
        for conn in self.conns.values() {
            let _ = conn.tx.try_send(Outbound::Msg(ServerMsg::ServerShutdown));
            let _ = conn.tx.try_send(Outbound::Close);
        }
        self.conns.clear();
    }

    async fn chat(&mut self, peer: PeerId, client_msg_id: String, text: String, now: i64) {
        let Some(sender) = self
            .room
            .peer(&peer)
            .filter(|_| self.room.is_joined(&peer))
            .cloned()
        else {
            return self.send(
                &peer,
                ServerMsg::error(ErrorCode::OutOfState, "join the call before chatting"),
            );
        };
        if client_msg_id.is_empty() || client_msg_id.len() > MAX_CLIENT_MSG_ID_BYTES {
            return self.send(
                &peer,
                ServerMsg::error(
                    ErrorCode::MalformedRequest,
                    "client_msg_id must be 1-64 bytes",
                ),
            );
        }
        if let Err(e) = validate::chat_text(&text) {
            return self.send(&peer, ServerMsg::error(e.code, e.message));
        }
        let message = chat::NewMessage {
            meeting_id: self.meeting_id.clone(),
            sender: sender.user.clone(),
            sender_name: sender.name.clone(),
            guest: sender.guest,
            client_msg_id: client_msg_id.clone(),
            text,
            now_ms: now,
        };
        // The room goes on with other input while the message is committed; the outcome
        // comes back through `chat_done`, in order.
        let done = self.chat_done.clone();
        self.ctx
            .chat
            .store(message, move |outcome| {
                let _ = done.send(ChatDone {
                    peer,
                    client_msg_id,
                    outcome,
                });
            })
            .await;
    }

    /// A message is committed (or not): acknowledge it to its sender and relay it to the rest.
    fn chat_stored(&mut self, done: ChatDone) {
        let ChatDone {
            peer,
            client_msg_id,
            outcome,
        } = done;
        match outcome {
            Ok((message, duplicate)) => {
                let ack = ServerMsg::ChatAck {
                    client_msg_id,
                    id: message.id.clone(),
                    seq: message.seq,
                };
                self.send(&peer, ack);
                if !duplicate {
                    let Some(text) = self.encode(ServerMsg::Chat { message }) else {
                        return;
                    };
                    for to in self.room.in_call_ids() {
                        if to == peer {
                            continue;
                        }
                        self.deliver(&to, Outbound::Text(text.clone()));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "chat not stored");
                self.send(
                    &peer,
                    ServerMsg::error(
                        ErrorCode::Internal,
                        "the message was not stored; send it again",
                    ),
                );
            }
        }
    }

    fn send(&mut self, to: &PeerId, msg: ServerMsg) {
        if !self.conns.contains_key(to) {
            return;
        }
        let out = match msg {
            ServerMsg::Welcome { .. } => Outbound::Msg(msg),
            msg => match self.encode(msg) {
                Some(text) => Outbound::Text(text),
                None => return,
            },
        };
        self.deliver(to, out);
    }

    /// The JSON of `msg`, reusing the last text when the same message was just serialised
    /// (for the previous recipient of a broadcast).
    fn encode(&mut self, msg: ServerMsg) -> Option<Utf8Bytes> {
        if let Some((last, text)) = &self.encoded {
            if *last == msg {
                return Some(text.clone());
            }
        }
        match serde_json::to_string(&msg) {
            Ok(json) => {
                let text = Utf8Bytes::from(json);
                self.encoded = Some((msg, text.clone()));
                Some(text)
            }
            Err(e) => {
                tracing::error!(error = %e, "message not serialised");
                None
            }
        }
    }

    fn deliver(&mut self, to: &PeerId, out: Outbound) {
        let Some(conn) = self.conns.get(to) else {
            return;
        };
        if conn.tx.try_send(out).is_err() {
            // Full outbox: the client is not reading. End its socket directly (a close
            // message would wait behind the full queue); it may resume within the grace.
            tracing::warn!(peer = %to, "outbox full: disconnecting slow client");
            conn.kill.fire(
                ErrorCode::TooSlow,
                "you fell too far behind; reconnect to catch up",
            );
            self.conns.remove(to);
            self.overflowed.push(to.clone());
        }
    }

    async fn apply(&mut self, effects: Vec<Effect>) {
        let mut batches = std::collections::VecDeque::from([effects]);
        while let Some(effects) = batches.pop_front() {
            self.apply_batch(effects).await;
            // Slow peers cut off while sending: the room counts them as dropped.
            for peer in std::mem::take(&mut self.overflowed) {
                let now = self.ctx.now_ms();
                batches.push_back(self.room.handle(Input::Dropped { peer }, now));
            }
        }
        // A chat position is kept only for a peer the room still holds (waiting to be
        // welcomed): a refused, abandoned or departed join leaves nothing behind.
        let room = &self.room;
        self.after_seq.retain(|peer, _| room.peer(peer).is_some());
    }

    async fn apply_batch(&mut self, effects: Vec<Effect>) {
        // Persist first, then tell: whoever hears of a change can already read it back.
        let (stores, effects): (Vec<Effect>, Vec<Effect>) = effects
            .into_iter()
            .partition(|e| matches!(e, Effect::Store(_)));
        for effect in stores.into_iter().chain(effects) {
            match effect {
                Effect::Send(to, msg) => self.send(&to, msg),
                Effect::Welcome {
                    peer,
                    role,
                    participants,
                    resume_token,
                    locked,
                    resumed: _,
                } => {
                    self.welcome(peer, role, participants, resume_token, locked)
                        .await
                }
                Effect::Close(peer) => {
                    if let Some(conn) = self.conns.remove(&peer) {
                        let _ = conn.tx.try_send(Outbound::Close);
                    }
                }
                Effect::Replace(_) => {}
                Effect::Store(change) => {
                    if let Err(e) = self.store(change).await {
                        tracing::error!(error = %e, "room change not stored");
                    }
                }
            }
        }
    }

    async fn welcome(
        &mut self,
        peer: PeerId,
        role: Role,
        participants: Vec<parley_shared::signal::Participant>,
        resume_token: String,
        locked: bool,
    ) {
        let pool = self.ctx.pool.clone();
        let last_seq = chat::last_seq(&pool, &self.meeting_id).await.unwrap_or(0);
        let user = self.room.peer(&peer).map(|p| p.user.clone());
        let now = self.ctx.now_ms();
        let guest = self.room.peer(&peer).is_some_and(|p| p.guest);
        let ice_servers = user
            .map(|u| self.ctx.ice.servers(&u, now, guest))
            .unwrap_or_default();
        self.send(
            &peer,
            ServerMsg::Welcome {
                peer_id: peer.clone(),
                role,
                participants,
                ice_servers,
                resume_token,
                locked,
                last_seq,
            },
        );
        if let Some(after) = self.after_seq.remove(&peer) {
            match chat::after(&pool, &self.meeting_id, after, MAX_REPLAY).await {
                Ok(missed) => {
                    for message in missed {
                        self.send(&peer, ServerMsg::Chat { message });
                    }
                }
                Err(e) => tracing::error!(error = %e, "missed chat not loaded"),
            }
        }
    }

    async fn store(&self, change: Stored) -> sqlx::Result<()> {
        let pool = &self.ctx.pool;
        let now = self.ctx.now_ms();
        let status = |user: &UserId, status: ParticipantStatus| {
            sqlx::query(
                "UPDATE participants SET status = $1, \
                   joined_at = CASE WHEN $1 = 'joined' THEN $2 ELSE joined_at END, \
                   first_joined_at = CASE WHEN $1 = 'joined' THEN COALESCE(first_joined_at, $2) ELSE first_joined_at END, \
                   admitted_at = CASE WHEN $1 = 'joined' THEN COALESCE(admitted_at, $2) ELSE admitted_at END, \
                   left_at = CASE WHEN $1 = 'left' THEN $2 ELSE left_at END \
                 WHERE meeting_id = $3 AND user_id = $4 AND barred_at IS NULL",
            )
            .bind(status.as_str())
            .bind(now)
            .bind(self.meeting_id.clone())
            .bind(user.as_str().to_string())
        };
        match change {
            Stored::Waiting(u) => status(&u, ParticipantStatus::Waiting).execute(pool).await?,
            Stored::Joined(u) => {
                sqlx::query(
                    "UPDATE meetings SET started_at = $1 WHERE id = $2 AND started_at IS NULL",
                )
                .bind(now)
                .bind(&self.meeting_id)
                .execute(pool)
                .await?;
                status(&u, ParticipantStatus::Joined).execute(pool).await?
            }
            Stored::Left(u) => status(&u, ParticipantStatus::Left).execute(pool).await?,
            Stored::Barred(u, bar) => {
                crate::meetings::store::bar_participant(
                    pool,
                    &self.meeting_id,
                    u.as_str(),
                    bar,
                    now,
                )
                .await?;
                // A guest: every guest sign-in from the same source ends with it (nothing
                // happens for a signed-in user, who has no source).
                crate::meetings::guests::sign_out_source(
                    pool,
                    &self.ctx.sockets,
                    &self.meeting_id,
                    u.as_str(),
                    now,
                )
                .await?;
                return Ok(());
            }
            Stored::Audit {
                actor,
                action,
                target,
            } => {
                let target = match target {
                    Some(u) => format!("{}:{u}", self.meeting_id),
                    None => self.meeting_id.clone(),
                };
                crate::auth::store::audit_at(
                    pool,
                    now,
                    Some(actor.as_str()),
                    action,
                    Some(&target),
                )
                .await;
                return Ok(());
            }
            Stored::Role(u, role) => {
                sqlx::query(
                    "UPDATE participants SET role = $1 WHERE meeting_id = $2 AND user_id = $3",
                )
                .bind(role.as_str())
                .bind(&self.meeting_id)
                .bind(u.as_str())
                .execute(pool)
                .await?
            }
            Stored::Locked(locked) => {
                sqlx::query("UPDATE meetings SET locked = $1 WHERE id = $2")
                    .bind(i64::from(locked))
                    .bind(&self.meeting_id)
                    .execute(pool)
                    .await?
            }
            Stored::GuestsOff => {
                sqlx::query("UPDATE meetings SET allow_guests = 0 WHERE id = $1")
                    .bind(&self.meeting_id)
                    .execute(pool)
                    .await?
            }
            Stored::Ended => {
                sqlx::query("UPDATE meetings SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
                    .bind(now)
                    .bind(&self.meeting_id)
                    .execute(pool)
                    .await?;
                sqlx::query("UPDATE participants SET status = 'left', left_at = $1 WHERE meeting_id = $2 AND status IN ('joined', 'waiting')")
                    .bind(now)
                    .bind(&self.meeting_id)
                    .execute(pool)
                    .await?
            }
        };
        Ok(())
    }
}
