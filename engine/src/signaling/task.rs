//! The signaling session's task: connects through a [`Transport`] (the WebSocket in use, a
//! scripted one in tests), feeds [`SessionState`] and carries out what it says.

use std::future::Future;

use parley_shared::signal::{ClientMsg, ServerMsg};
use parley_shared::ErrorCode;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};

use super::state::{End, Retry, SessionState};
use super::{Closed, Event, TokenError, TokenSource};

/// The client pings this often so the server's idle timeout never fires on a quiet meeting.
pub const PING_EVERY: Duration = Duration::from_secs(10);

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// The server refused the access token (HTTP 401).
    Unauthorized,
    Failed(String),
}

/// Opens connections to the meeting server.
pub trait Transport: Send + Sync + 'static {
    type Conn: Conn;
    fn connect(&self, token: &str)
        -> impl Future<Output = Result<Self::Conn, ConnectError>> + Send;
}

/// One open connection, carrying protocol messages as JSON text.
pub trait Conn: Send + 'static {
    fn send(&mut self, text: String) -> impl Future<Output = Result<(), String>> + Send;
    /// The next text message; None when the server closed the connection. Cancel-safe.
    fn recv(&mut self) -> impl Future<Output = Option<Result<String, String>>> + Send;
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// The task's clock: tokio's in use; the tests move a manual one by hand.
pub trait Timer: Send + Sync + 'static {
    fn now(&self) -> Instant;
    fn sleep_until(&self, at: Instant) -> impl Future<Output = ()> + Send;
}

/// Tokio's clock.
pub struct TokioTimer;

impl Timer for TokioTimer {
    fn now(&self) -> Instant {
        Instant::now()
    }

    async fn sleep_until(&self, at: Instant) {
        tokio::time::sleep_until(at).await
    }
}

/// What the application asks of a running session.
#[derive(Debug)]
pub enum Command {
    Send(ClientMsg),
    Chat { client_msg_id: String, text: String },
    Leave,
}

pub struct Task<R, T, C> {
    pub transport: R,
    pub tokens: T,
    pub timer: C,
    pub state: SessionState,
    pub events: mpsc::Sender<Event>,
}

async fn send<C: Conn>(conn: &mut C, msg: &ClientMsg) -> Result<(), String> {
    let text = serde_json::to_string(msg).map_err(|e| e.to_string())?;
    conn.send(text).await
}

impl<R: Transport, T: TokenSource, C: Timer> Task<R, T, C> {
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let closed = loop {
            let end = match self.connect().await {
                Ok(conn) => self.serve(conn, &mut commands).await,
                Err(end) => end,
            };
            let why = match end {
                End::Closed(c) => break c,
                End::Dropped(why) => why,
            };
            let (attempt, wait) = match self.state.dropped(why.clone(), self.timer.now()) {
                Retry::GiveUp(c) => break c,
                Retry::After { attempt, wait } => (attempt, wait),
            };
            let _ = self.events.send(Event::Reconnecting { attempt, why }).await;
            // Leaving while disconnected ends at once; chat waits for the room.
            let until = self.timer.now() + wait;
            let left = loop {
                tokio::select! {
                    _ = self.timer.sleep_until(until) => break false,
                    cmd = commands.recv() => match cmd {
                        Some(Command::Leave) | None => break true,
                        Some(Command::Chat { client_msg_id, text }) => {
                            self.state.chat(client_msg_id, text);
                        }
                        Some(Command::Send(_)) => {}
                    }
                }
            };
            if left {
                break Closed::Left;
            }
        };
        let _ = self.events.send(Event::Closed(closed)).await;
    }

    /// Opens a connection (refreshing the token once if it is refused) and sends `join`.
    async fn connect(&mut self) -> Result<R::Conn, End> {
        let mut refresh = false;
        loop {
            let token = match self.tokens.token(refresh).await {
                Ok(t) => t,
                Err(TokenError::SignedOut(message)) => {
                    return Err(End::Closed(Closed::Refused {
                        code: ErrorCode::Unauthorized,
                        message,
                    }))
                }
                Err(TokenError::Unavailable(why)) => return Err(End::Dropped(why)),
            };
            match self.transport.connect(&token).await {
                Ok(mut conn) => {
                    let join = self.state.connected();
                    send(&mut conn, &join).await.map_err(End::Dropped)?;
                    return Ok(conn);
                }
                Err(ConnectError::Unauthorized) if !refresh => refresh = true,
                Err(ConnectError::Unauthorized) => {
                    return Err(End::Closed(Closed::Refused {
                        code: ErrorCode::Unauthorized,
                        message: "the server refused the sign-in; sign in again".into(),
                    }))
                }
                Err(ConnectError::Failed(why)) => return Err(End::Dropped(why)),
            }
        }
    }

    /// Runs one connection until it ends.
    async fn serve(&mut self, mut conn: R::Conn, commands: &mut mpsc::Receiver<Command>) -> End {
        let mut next_ping = self.timer.now() + PING_EVERY;
        loop {
            tokio::select! {
                frame = conn.recv() => {
                    let text = match frame {
                        Some(Ok(t)) => t,
                        Some(Err(e)) => return End::Dropped(e),
                        None => return End::Dropped("the server closed the connection".into()),
                    };
                    let Ok(msg) = serde_json::from_str::<ServerMsg>(&text) else {
                        tracing::debug!("ignoring a message of an unknown type");
                        continue;
                    };
                    let r = self.state.on_server(msg);
                    if let Some(msg) = r.show {
                        let _ = self.events.send(Event::Server(msg)).await;
                    }
                    for msg in &r.send {
                        if let Err(e) = send(&mut conn, msg).await {
                            return End::Dropped(e);
                        }
                    }
                    if r.reauth {
                        match self.tokens.token(true).await {
                            Ok(access_token) => {
                                if let Err(e) = send(&mut conn, &ClientMsg::Reauth { access_token }).await {
                                    return End::Dropped(e);
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "no fresh token for the meeting socket"),
                        }
                    }
                    if let Some(end) = r.end {
                        return end;
                    }
                }
                cmd = commands.recv() => {
                    let msg = match cmd {
                        Some(Command::Leave) | None => {
                            let _ = send(&mut conn, &ClientMsg::Leave).await;
                            conn.close().await;
                            return End::Closed(Closed::Left);
                        }
                        Some(Command::Chat { client_msg_id, text }) => {
                            match self.state.chat(client_msg_id, text) {
                                Some(msg) => msg,
                                None => continue, // sent once the room welcomes us
                            }
                        }
                        Some(Command::Send(m)) => m,
                    };
                    if let Err(e) = send(&mut conn, &msg).await {
                        return End::Dropped(e);
                    }
                }
                _ = self.timer.sleep_until(next_ping) => {
                    next_ping = self.timer.now() + PING_EVERY;
                    if let Err(e) = send(&mut conn, &ClientMsg::Ping).await {
                        return End::Dropped(e);
                    }
                }
            }
        }
    }
}
