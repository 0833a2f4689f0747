//! The signaling session's memory and decisions, without a socket: what to send on joining
//! (resume token, `after_seq`), which chat is still unacknowledged and goes again, which
//! replayed chat was already shown, how a server message ends a connection, and how long to
//! wait before the next try. The task ([`super::task`]) does the I/O.

use parley_shared::signal::{ClientMsg, ServerMsg};
use parley_shared::ErrorCode;
use tokio::time::{Duration, Instant};

use super::{Closed, JoinOptions};
use crate::backoff::Backoff;

/// How long a dropped session keeps trying to come back (the server's default grace is 30 s).
pub const RECONNECT_FOR: Duration = Duration::from_secs(30);
/// Waits between reconnect tries: 0.5 s, 1 s, 2 s, then 4 s.
pub const RECONNECT_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(500), Duration::from_secs(4));

/// Where one connection is in the join flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `join` sent, no answer yet.
    Joining,
    /// In the waiting room.
    Waiting,
    InRoom,
}

/// How a connection ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// For good.
    Closed(Closed),
    /// Lost: try again.
    Dropped(String),
}

/// What one server message asks of the task, in this order.
#[derive(Debug, Default, PartialEq)]
pub struct Reaction {
    /// Pass it to the application.
    pub show: Option<ServerMsg>,
    /// Send these.
    pub send: Vec<ClientMsg>,
    /// Fetch a fresh access token and send it (`reauth`).
    pub reauth: bool,
    pub end: Option<End>,
}

/// After a dropped connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Retry {
    After { attempt: u32, wait: Duration },
    GiveUp(Closed),
}

pub struct SessionState {
    join: JoinOptions,
    resume_token: Option<String>,
    /// The highest chat `seq` shown.
    last_seq: i64,
    /// Chat sent but not yet acknowledged, in sending order.
    unacked: Vec<(String, String)>,
    /// Welcomed at least once (later joins are resumes).
    welcomed: bool,
    phase: Phase,
    /// Reconnect tries since the session was last in the room.
    attempt: u32,
    dropped_at: Option<Instant>,
}

impl SessionState {
    pub fn new(join: JoinOptions) -> Self {
        Self {
            join,
            resume_token: None,
            last_seq: 0,
            unacked: Vec::new(),
            welcomed: false,
            phase: Phase::Joining,
            attempt: 0,
            dropped_at: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// A connection is open: the `join` to send first (a resume after the first welcome).
    pub fn connected(&mut self) -> ClientMsg {
        self.phase = Phase::Joining;
        ClientMsg::Join {
            code: self.join.code.clone(),
            display_name: self.join.display_name.clone(),
            passcode: self.join.passcode.clone(),
            resume_token: self.resume_token.clone(),
            after_seq: self.welcomed.then_some(self.last_seq),
        }
    }

    /// The application sends chat: kept until acknowledged; to send now when in the room.
    pub fn chat(&mut self, client_msg_id: String, text: String) -> Option<ClientMsg> {
        self.unacked.retain(|(id, _)| *id != client_msg_id);
        self.unacked.push((client_msg_id.clone(), text.clone()));
        (self.phase == Phase::InRoom).then_some(ClientMsg::Chat {
            client_msg_id,
            text,
        })
    }

    pub fn on_server(&mut self, msg: ServerMsg) -> Reaction {
        let mut r = Reaction::default();
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
                self.phase = Phase::InRoom;
                self.attempt = 0;
                self.dropped_at = None;
                r.send = self
                    .unacked
                    .iter()
                    .map(|(id, text)| ClientMsg::Chat {
                        client_msg_id: id.clone(),
                        text: text.clone(),
                    })
                    .collect();
            }
            ServerMsg::Chat { message } => {
                if message.seq <= self.last_seq {
                    return r; // already shown
                }
                self.last_seq = message.seq;
            }
            ServerMsg::ChatAck {
                client_msg_id, seq, ..
            } => {
                self.unacked.retain(|(id, _)| id != client_msg_id);
                self.last_seq = self.last_seq.max(*seq);
            }
            ServerMsg::Waiting => self.phase = Phase::Waiting,
            ServerMsg::Error { code, message } if self.phase == Phase::Joining => {
                // The answer to `join`: refused.
                let reason = match code {
                    ErrorCode::MeetingEnded => Closed::MeetingEnded,
                    // Removed while we were away.
                    ErrorCode::NotParticipant if self.welcomed => Closed::Removed,
                    _ => Closed::Refused {
                        code: *code,
                        message: message.clone(),
                    },
                };
                r.end = Some(End::Closed(reason));
                return r;
            }
            ServerMsg::Error {
                code: ErrorCode::SessionRevoked,
                message,
            } => {
                // Signed out elsewhere (logout, password change): reconnecting cannot help.
                r.end = Some(End::Closed(Closed::Refused {
                    code: ErrorCode::SessionRevoked,
                    message: message.clone(),
                }));
                return r;
            }
            ServerMsg::MeetingEnded => r.end = Some(End::Closed(Closed::MeetingEnded)),
            ServerMsg::Removed => r.end = Some(End::Closed(Closed::Removed)),
            ServerMsg::Denied => r.end = Some(End::Closed(Closed::Denied)),
            ServerMsg::ServerShutdown => {
                r.end = Some(End::Dropped("the server is restarting".into()));
            }
            ServerMsg::ReauthRequired { .. } => {
                // The socket lives as long as its access token: hand it a fresh one.
                r.reauth = true;
                return r;
            }
            ServerMsg::Reauthed { .. } | ServerMsg::Pong => return r,
            _ => {}
        }
        r.show = Some(msg);
        r
    }

    /// The connection (or the try to make one) was lost at `now`.
    pub fn dropped(&mut self, why: String, now: Instant) -> Retry {
        let since = *self.dropped_at.get_or_insert(now);
        if now.duration_since(since) >= RECONNECT_FOR {
            return Retry::GiveUp(Closed::Lost(why));
        }
        self.attempt += 1;
        Retry::After {
            attempt: self.attempt,
            wait: RECONNECT_BACKOFF.delay(self.attempt),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use parley_shared::signal::ChatMessage;
    use parley_shared::{MeetingCode, PeerId, UserId};

    use super::*;

    fn state() -> SessionState {
        SessionState::new(JoinOptions {
            code: MeetingCode::parse("bcdf-ghjk-mnpq").unwrap(),
            display_name: "Ann".into(),
            passcode: None,
        })
    }

    fn welcome(last_seq: i64) -> ServerMsg {
        ServerMsg::Welcome {
            peer_id: PeerId("p1".into()),
            role: parley_shared::api::Role::Participant,
            participants: vec![],
            ice_servers: vec![],
            resume_token: "resume-1".into(),
            locked: false,
            last_seq,
        }
    }

    fn chat(seq: i64) -> ServerMsg {
        ServerMsg::Chat {
            message: ChatMessage {
                id: format!("m{seq}"),
                seq,
                sender: UserId("u2".into()),
                sender_name: "Bob".into(),
                guest: false,
                text: format!("#{seq}"),
                at_ms: 0,
            },
        }
    }

    #[test]
    fn a_resume_names_the_token_and_the_last_chat_seen() {
        let mut s = state();
        assert!(matches!(
            s.connected(),
            ClientMsg::Join {
                resume_token: None,
                after_seq: None,
                ..
            }
        ));
        // Chat before now is history, not a replay.
        s.on_server(welcome(7));
        assert!(s.on_server(chat(8)).show.is_some());
        assert!(matches!(
            s.connected(),
            ClientMsg::Join { resume_token: Some(t), after_seq: Some(8), .. } if t == "resume-1"
        ));
        // The replay after the resume: what was shown is not shown again.
        s.on_server(welcome(9));
        assert_eq!(s.on_server(chat(8)).show, None);
        assert!(s.on_server(chat(9)).show.is_some());
    }

    #[test]
    fn chat_waits_for_the_room_and_goes_again_until_acknowledged() {
        let mut s = state();
        s.connected();
        assert_eq!(
            s.chat("c1".into(), "early".into()),
            None,
            "not in the room yet"
        );
        let r = s.on_server(welcome(0));
        assert_eq!(
            r.send,
            vec![ClientMsg::Chat {
                client_msg_id: "c1".into(),
                text: "early".into()
            }]
        );
        assert!(s.chat("c2".into(), "now".into()).is_some());
        s.on_server(ServerMsg::ChatAck {
            client_msg_id: "c1".into(),
            id: "m1".into(),
            seq: 1,
        });
        // Dropped before c2 was acknowledged: the resume sends it again, with its id.
        s.connected();
        let r = s.on_server(welcome(1));
        assert_eq!(
            r.send,
            vec![ClientMsg::Chat {
                client_msg_id: "c2".into(),
                text: "now".into()
            }]
        );
    }

    #[test]
    fn refusals_and_endings_are_told_apart() {
        let mut s = state();
        s.connected();
        let r = s.on_server(ServerMsg::error(ErrorCode::WrongPasscode, "no"));
        assert_eq!(
            r.end,
            Some(End::Closed(Closed::Refused {
                code: ErrorCode::WrongPasscode,
                message: "no".into()
            }))
        );
        // Removed while away: the resume is refused as a non-participant.
        let mut s = state();
        s.connected();
        s.on_server(welcome(0));
        s.connected();
        let r = s.on_server(ServerMsg::error(ErrorCode::NotParticipant, "gone"));
        assert_eq!(r.end, Some(End::Closed(Closed::Removed)));
        // In the room, an error is shown and the connection goes on.
        let mut s = state();
        s.connected();
        s.on_server(welcome(0));
        let r = s.on_server(ServerMsg::error(ErrorCode::RateLimited, "slow down"));
        assert!(r.show.is_some() && r.end.is_none());
        let r = s.on_server(ServerMsg::error(ErrorCode::SessionRevoked, "signed out"));
        assert!(matches!(
            r.end,
            Some(End::Closed(Closed::Refused {
                code: ErrorCode::SessionRevoked,
                ..
            }))
        ));
        assert_eq!(
            s.on_server(ServerMsg::ServerShutdown).end,
            Some(End::Dropped("the server is restarting".into()))
        );
        assert!(
            s.on_server(ServerMsg::ReauthRequired { within_secs: 60 })
                .reauth
        );
    }

    #[test]
    fn reconnects_back_off_to_a_cap_and_give_up_after_the_window() {
        let mut s = state();
        let t0 = Instant::now();
        let mut waits = Vec::new();
        let mut t = t0;
        loop {
            match s.dropped("down".into(), t) {
                Retry::After { wait, .. } => {
                    waits.push(wait.as_millis() as u64);
                    t += wait;
                }
                Retry::GiveUp(c) => {
                    assert_eq!(c, Closed::Lost("down".into()));
                    break;
                }
            }
        }
        assert_eq!(&waits[..5], &[500, 1000, 2000, 4000, 4000]);
        assert!(waits.iter().all(|w| *w <= 4000));
        assert!(t.duration_since(t0) >= RECONNECT_FOR);
        assert!(t.duration_since(t0) < RECONNECT_FOR + Duration::from_secs(4));
        // Back in the room: the next drop gets the whole window again.
        s.connected();
        s.on_server(welcome(0));
        assert_eq!(
            s.dropped("again".into(), t),
            Retry::After {
                attempt: 1,
                wait: Duration::from_millis(500)
            }
        );
    }
}
