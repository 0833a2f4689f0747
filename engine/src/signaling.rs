//! The live-meeting client: one WebSocket to `/api/ws` that joins a meeting, keeps it across
//! network drops and server restarts (resume token + `after_seq`, unacknowledged chat sent
//! again with the same `client_msg_id`), and turns everything into [`Event`]s.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use parley_shared::signal::{ClientMsg, ServerMsg, SUBPROTOCOL};
use parley_shared::{MeetingCode, PeerId};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a dropped session keeps trying to come back (the server's default grace is 30 s).
pub const RECONNECT_FOR: Duration = Duration::from_secs(30);
/// The client pings this often so the server's idle timeout never fires on a quiet meeting.
const PING_EVERY: Duration = Duration::from_secs(10);

/// Supplies access tokens; `refresh = true` asks for a new one (the last one was refused).
pub trait TokenSource: Send + Sync + 'static {
    fn token(&self, refresh: bool) -> impl Future<Output = Result<String, String>> + Send;
}

/// A token that is never refreshed: for scripts, benchmarks and tests that sign in just
/// before they join (a refused token ends their call rather than asking again).
pub struct StaticToken(pub String);

impl TokenSource for StaticToken {
    async fn token(&self, _refresh: bool) -> Result<String, String> {
        Ok(self.0.clone())
    }
}

/// What to join.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    pub code: MeetingCode,
    pub display_name: String,
    pub passcode: Option<String>,
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Closed {
    /// We left.
    Left,
    MeetingEnded,
    Removed,
    /// The waiting room refused us.
    Denied,
    /// The server refused the join (stable error code and message).
    Refused {
        code: String,
        message: String,
    },
    /// The connection was lost and could not be restored in time.
    Lost(String),
}

/// Something the application shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A message from the server (`welcome` again after a reconnect; replayed chat is
    /// delivered once, in `seq` order).
    Server(ServerMsg),
    /// The connection dropped; trying again.
    Reconnecting {
        attempt: u32,
        why: String,
    },
    Closed(Closed),
}

/// What the application asks of a running session.
#[derive(Debug)]
enum Command {
    Send(ClientMsg),
    Chat { client_msg_id: String, text: String },
    Leave,
}

/// A handle to a running session. Dropping it leaves the meeting.
pub struct Session {
    commands: mpsc::Sender<Command>,
    pub events: mpsc::Receiver<Event>,
}

impl Session {
    /// Connects and starts joining; the first events say how the join went.
    pub fn start<T: TokenSource>(ws_url: String, tokens: T, join: JoinOptions) -> Self {
        let (commands, cmd_rx) = mpsc::channel(64);
        let (ev_tx, events) = mpsc::channel(256);
        let task = Task {
            url: ws_url,
            tokens,
            join,
            events: ev_tx,
            resume_token: None,
            last_seq: 0,
            unacked: BTreeMap::new(),
            welcomed: false,
        };
        tokio::spawn(task.run(cmd_rx));
        Self { commands, events }
    }

    /// Sends a chat message; it is delivered once even across reconnects. Returns its
    /// `client_msg_id` (the `chat_ack` names it).
    pub async fn chat(&self, text: String) -> String {
        let client_msg_id = ulid::Ulid::new().to_string();
        self.chat_as(client_msg_id.clone(), text).await;
        client_msg_id
    }

    /// Sends a chat message under an id the caller chose (unique per sender and meeting).
    pub async fn chat_as(&self, client_msg_id: String, text: String) {
        let _ = self
            .commands
            .send(Command::Chat {
                client_msg_id,
                text,
            })
            .await;
    }

    /// Sends any other protocol message (media state, hand, host controls…).
    pub async fn send(&self, msg: ClientMsg) {
        let _ = self.commands.send(Command::Send(msg)).await;
    }

    pub async fn leave(&self) {
        let _ = self.commands.send(Command::Leave).await;
    }
}

struct Task<T> {
    url: String,
    tokens: T,
    join: JoinOptions,
    events: mpsc::Sender<Event>,
    resume_token: Option<String>,
    last_seq: i64,
    /// Chat sent but not yet acknowledged, by client id, in sending order.
    unacked: BTreeMap<String, String>,
    welcomed: bool,
}

/// Where one connection is in the join flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// `join` sent, no answer yet.
    Joining,
    /// In the waiting room.
    Waiting,
    InRoom,
}

/// How one connection ended.
enum Outcome {
    Closed(Closed),
    Dropped(String),
}

impl<T: TokenSource> Task<T> {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut attempt = 0u32;
        let mut dropped_at: Option<tokio::time::Instant> = None;
        let closed = loop {
            let outcome = match self.connect().await {
                Ok(socket) => {
                    let out = self.serve(socket, &mut commands).await;
                    if self.welcomed {
                        // It worked for a while: a new drop gets the full reconnect window.
                        attempt = 0;
                        dropped_at = None;
                    }
                    out
                }
                Err(Outcome::Closed(c)) => Outcome::Closed(c),
                Err(Outcome::Dropped(why)) => Outcome::Dropped(why),
            };
            match outcome {
                Outcome::Closed(c) => break c,
                Outcome::Dropped(why) => {
                    let since = *dropped_at.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= RECONNECT_FOR {
                        break Closed::Lost(why);
                    }
                    attempt += 1;
                    let _ = self
                        .events
                        .send(Event::Reconnecting {
                            attempt,
                            why: why.clone(),
                        })
                        .await;
                    let wait = Duration::from_millis(250u64 << attempt.min(4));
                    // Leaving while disconnected ends at once.
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        cmd = commands.recv() => match cmd {
                            Some(Command::Leave) | None => break Closed::Left,
                            Some(Command::Chat { client_msg_id, text }) => {
                                self.unacked.insert(client_msg_id, text);
                            }
                            Some(Command::Send(_)) => {}
                        }
                    }
                }
            }
        };
        let _ = self.events.send(Event::Closed(closed)).await;
    }

    /// Opens the socket (refreshing the token once if it is refused) and sends `join`.
    async fn connect(&mut self) -> Result<Socket, Outcome> {
        let mut refresh = false;
        let mut socket = loop {
            let token = self.tokens.token(refresh).await.map_err(|e| {
                Outcome::Closed(Closed::Refused {
                    code: "unauthorized".into(),
                    message: e,
                })
            })?;
            let mut req = self
                .url
                .as_str()
                .into_client_request()
                .map_err(|e| Outcome::Closed(Closed::Lost(e.to_string())))?;
            let auth = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|e| Outcome::Closed(Closed::Lost(e.to_string())))?;
            req.headers_mut().insert(header::AUTHORIZATION, auth);
            req.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(SUBPROTOCOL),
            );
            // Nagle off: signaling is small messages that should leave at once.
            match tokio_tungstenite::connect_async_with_config(req, None, true).await {
                Ok((socket, _)) => break socket,
                Err(tokio_tungstenite::tungstenite::Error::Http(res))
                    if res.status() == 401 && !refresh =>
                {
                    refresh = true;
                }
                Err(tokio_tungstenite::tungstenite::Error::Http(res)) if res.status() == 401 => {
                    return Err(Outcome::Closed(Closed::Refused {
                        code: "unauthorized".into(),
                        message: "the server refused the sign-in; sign in again".into(),
                    }))
                }
                Err(e) => return Err(Outcome::Dropped(e.to_string())),
            }
        };
        let join = ClientMsg::Join {
            code: self.join.code.clone(),
            display_name: self.join.display_name.clone(),
            passcode: self.join.passcode.clone(),
            resume_token: self.resume_token.clone(),
            after_seq: self.welcomed.then_some(self.last_seq),
        };
        send(&mut socket, &join).await.map_err(Outcome::Dropped)?;
        Ok(socket)
    }

    /// Runs one connection until it closes.
    async fn serve(
        &mut self,
        mut socket: Socket,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Outcome {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.reset();
        let mut phase = Phase::Joining;
        loop {
            tokio::select! {
                frame = socket.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) | None => return Outcome::Dropped("the server closed the connection".into()),
                        Some(Err(e)) => return Outcome::Dropped(e.to_string()),
                        Some(Ok(_)) => continue,
                    };
                    let Ok(msg) = serde_json::from_str::<ServerMsg>(&text) else {
                        tracing::debug!("ignoring a message of an unknown type");
                        continue;
                    };
                    if let Some(done) = self.on_server(&mut socket, msg, &mut phase).await {
                        return done;
                    }
                }
                cmd = commands.recv() => {
                    let msg = match cmd {
                        Some(Command::Leave) | None => {
                            let _ = send(&mut socket, &ClientMsg::Leave).await;
                            let _ = socket.close(None).await;
                            return Outcome::Closed(Closed::Left);
                        }
                        Some(Command::Chat { client_msg_id, text }) => {
                            self.unacked.insert(client_msg_id.clone(), text.clone());
                            if phase != Phase::InRoom {
                                continue; // sent once the room welcomes us
                            }
                            ClientMsg::Chat { client_msg_id, text }
                        }
                        Some(Command::Send(m)) => m,
                    };
                    if let Err(e) = send(&mut socket, &msg).await {
                        return Outcome::Dropped(e);
                    }
                }
                _ = ping.tick() => {
                    if let Err(e) = send(&mut socket, &ClientMsg::Ping).await {
                        return Outcome::Dropped(e);
                    }
                }
            }
        }
    }

    /// Updates the session from one server message and passes it on; `Some` ends the
    /// connection.
    async fn on_server(
        &mut self,
        socket: &mut Socket,
        msg: ServerMsg,
        phase: &mut Phase,
    ) -> Option<Outcome> {
        match &msg {
            ServerMsg::Welcome {
                resume_token,
                last_seq,
                ..
            } => {
                self.resume_token = Some(resume_token.clone());
                if !self.welcomed {
                    // First entry: history before now is for `history`, not a replay.
                    self.last_seq = *last_seq;
                }
                self.welcomed = true;
                *phase = Phase::InRoom;
                let _ = self.events.send(Event::Server(msg)).await;
                let pending: Vec<_> = self
                    .unacked
                    .iter()
                    .map(|(id, text)| ClientMsg::Chat {
                        client_msg_id: id.clone(),
                        text: text.clone(),
                    })
                    .collect();
                for chat in pending {
                    if let Err(e) = send(socket, &chat).await {
                        return Some(Outcome::Dropped(e));
                    }
                }
                return None;
            }
            ServerMsg::Chat { message } => {
                if message.seq <= self.last_seq {
                    return None; // already shown
                }
                self.last_seq = message.seq;
            }
            ServerMsg::ChatAck {
                client_msg_id, seq, ..
            } => {
                self.unacked.remove(client_msg_id);
                self.last_seq = self.last_seq.max(*seq);
            }
            ServerMsg::Waiting => *phase = Phase::Waiting,
            ServerMsg::Error { code, message } if *phase == Phase::Joining => {
                // The answer to `join`: refused.
                use parley_shared::ErrorCode;
                let reason = match code {
                    ErrorCode::MeetingEnded => Closed::MeetingEnded,
                    // Removed while we were away.
                    ErrorCode::NotParticipant if self.welcomed => Closed::Removed,
                    _ => Closed::Refused {
                        code: code.as_str().to_string(),
                        message: message.clone(),
                    },
                };
                return Some(Outcome::Closed(reason));
            }
            ServerMsg::MeetingEnded => {
                let _ = self.events.send(Event::Server(msg)).await;
                return Some(Outcome::Closed(Closed::MeetingEnded));
            }
            ServerMsg::Removed => {
                let _ = self.events.send(Event::Server(msg)).await;
                return Some(Outcome::Closed(Closed::Removed));
            }
            ServerMsg::Denied => {
                let _ = self.events.send(Event::Server(msg)).await;
                return Some(Outcome::Closed(Closed::Denied));
            }
            ServerMsg::ServerShutdown => {
                let _ = self.events.send(Event::Server(msg)).await;
                return Some(Outcome::Dropped("the server is restarting".into()));
            }
            ServerMsg::ReauthRequired { .. } => {
                // The socket lives as long as its access token: hand it a fresh one.
                match self.tokens.token(true).await {
                    Ok(access_token) => {
                        if let Err(e) = send(socket, &ClientMsg::Reauth { access_token }).await {
                            return Some(Outcome::Dropped(e));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "no fresh token for the meeting socket"),
                }
                return None;
            }
            ServerMsg::Reauthed { .. } | ServerMsg::Pong => return None,
            ServerMsg::Error {
                code: parley_shared::ErrorCode::SessionRevoked,
                message,
            } => {
                // Signed out elsewhere (logout, password change): reconnecting cannot help.
                return Some(Outcome::Closed(Closed::Refused {
                    code: parley_shared::ErrorCode::SessionRevoked
                        .as_str()
                        .to_string(),
                    message: message.clone(),
                }));
            }
            _ => {}
        }
        let _ = self.events.send(Event::Server(msg)).await;
        None
    }
}

async fn send(socket: &mut Socket, msg: &ClientMsg) -> Result<(), String> {
    let text = serde_json::to_string(msg).map_err(|e| e.to_string())?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|e| e.to_string())
}

/// A peer's display name, as learned from `welcome` and `peer_joined`.
#[derive(Default, Debug)]
pub struct Roster {
    names: BTreeMap<String, String>,
}

impl Roster {
    /// Records what `msg` says about who is here.
    pub fn update(&mut self, msg: &ServerMsg) {
        match msg {
            ServerMsg::Welcome { participants, .. } => {
                for p in participants {
                    self.names
                        .insert(p.peer_id.0.clone(), p.display_name.clone());
                }
            }
            ServerMsg::PeerJoined { participant } => {
                self.names.insert(
                    participant.peer_id.0.clone(),
                    participant.display_name.clone(),
                );
            }
            ServerMsg::WaitingPeer {
                peer_id,
                display_name,
                ..
            } => {
                self.names.insert(peer_id.0.clone(), display_name.clone());
            }
            _ => {}
        }
    }

    pub fn name(&self, peer: &PeerId) -> String {
        self.names
            .get(&peer.0)
            .cloned()
            .unwrap_or_else(|| format!("peer {}", peer.0))
    }

    /// The peer called `name` (case-insensitive), if exactly one is.
    pub fn find(&self, name: &str) -> Option<PeerId> {
        let mut hits = self
            .names
            .iter()
            .filter(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(id, _)| PeerId(id.clone()));
        let first = hits.next()?;
        hits.next().is_none().then_some(first)
    }

    /// Everyone else's name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.names.values().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    pub fn forget(&mut self, peer: &PeerId) {
        self.names.remove(&peer.0);
    }
}
