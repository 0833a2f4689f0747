//! The live-meeting client: one WebSocket to `/api/ws` that joins a meeting, keeps it across
//! network drops and server restarts (resume token + `after_seq`, unacknowledged chat sent
//! again with the same `client_msg_id`), and turns everything into [`Event`]s.
//!
//! - [`state`]: what the session remembers and decides, without a socket.
//! - `task`: the thin task around it, over a [`task::Transport`].
//! - `ws`: the WebSocket transport.

pub mod state;
mod task;
#[cfg(test)]
mod tests;
mod ws;

use std::future::Future;

use parley_shared::signal::{ClientMsg, ServerMsg};
use parley_shared::{ErrorCode, MeetingCode};
use tokio::sync::mpsc;

use self::state::SessionState;
pub use self::state::RECONNECT_FOR;
use self::task::{Command, Task, Timer, TokioTimer, Transport};

/// Why no access token could be had.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not signed in any more (the refresh token was refused): the user must sign in.
    #[error("{0}")]
    SignedOut(String),
    /// The server could not be asked (down, unreachable): worth trying again.
    #[error("{0}")]
    Unavailable(String),
}

/// Supplies access tokens; `refresh = true` asks for a new one (the last one was refused).
pub trait TokenSource: Send + Sync + 'static {
    fn token(&self, refresh: bool) -> impl Future<Output = Result<String, TokenError>> + Send;
}

/// A token that is never refreshed: for scripts, benchmarks and tests that sign in just
/// before they join (a refused token ends their call rather than asking again).
pub struct StaticToken(pub String);

impl TokenSource for StaticToken {
    async fn token(&self, _refresh: bool) -> Result<String, TokenError> {
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
    /// The server refused the join or the sign-in (`unauthorized`: sign in again).
    Refused {
        code: ErrorCode,
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

/// A handle to a running session. Dropping it leaves the meeting.
pub struct Session {
    commands: mpsc::Sender<Command>,
    pub events: mpsc::Receiver<Event>,
}

impl Session {
    /// Connects and starts joining; the first events say how the join went.
    pub fn start<T: TokenSource>(ws_url: String, tokens: T, join: JoinOptions) -> Self {
        Self::start_on(ws::WebSocket { url: ws_url }, tokens, join, TokioTimer)
    }

    fn start_on<R: Transport, T: TokenSource, C: Timer>(
        transport: R,
        tokens: T,
        join: JoinOptions,
        timer: C,
    ) -> Self {
        let (commands, cmd_rx) = mpsc::channel(64);
        let (ev_tx, events) = mpsc::channel(256);
        let task = Task {
            transport,
            tokens,
            timer,
            state: SessionState::new(join),
            events: ev_tx,
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
        let cmd = Command::Chat {
            client_msg_id,
            text,
        };
        let _ = self.commands.send(cmd).await;
    }

    /// Sends any other protocol message (media state, hand, host controls…).
    pub async fn send(&self, msg: ClientMsg) {
        let _ = self.commands.send(Command::Send(msg)).await;
    }

    pub async fn leave(&self) {
        let _ = self.commands.send(Command::Leave).await;
    }
}
