//! The session task against a scripted server: each connection attempt takes the next entry
//! of a script (refuse the token, fail, or accept), and an accepted connection is a pair of
//! channels the test speaks through as the server would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parley_shared::signal::{ClientMsg, ServerMsg};
use parley_shared::{ErrorCode, MeetingCode, PeerId};
use tokio::sync::mpsc;

use super::task::{Conn, ConnectError, Timer, Transport, PING_EVERY};
use super::*;

/// A clock that moves only when the test moves it: waits end exactly when it says.
#[derive(Clone)]
struct ManualClock {
    start: tokio::time::Instant,
    offset: Arc<tokio::sync::watch::Sender<Duration>>,
}

impl ManualClock {
    fn new() -> Self {
        Self {
            start: tokio::time::Instant::now(),
            offset: Arc::new(tokio::sync::watch::channel(Duration::ZERO).0),
        }
    }

    fn advance(&self, d: Duration) {
        self.offset.send_modify(|o| *o += d);
    }
}

impl Timer for ManualClock {
    fn now(&self) -> tokio::time::Instant {
        self.start + *self.offset.borrow()
    }

    async fn sleep_until(&self, at: tokio::time::Instant) {
        let mut rx = self.offset.subscribe();
        loop {
            if self.start + *rx.borrow_and_update() >= at {
                return;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

enum Answer {
    Accept,
    Unauthorized,
}

/// The server's end of one accepted connection.
struct ServerEnd {
    from_client: mpsc::UnboundedReceiver<ClientMsg>,
    to_client: mpsc::UnboundedSender<String>,
}

impl ServerEnd {
    async fn recv(&mut self) -> ClientMsg {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match self.from_client.recv().await.expect("client connected") {
                    ClientMsg::Ping => continue,
                    m => return m,
                }
            }
        })
        .await
        .expect("a message from the client")
    }

    fn send(&self, msg: &ServerMsg) {
        let _ = self.to_client.send(serde_json::to_string(msg).unwrap());
    }
}

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    tokens: Arc<Mutex<Vec<String>>>,
    accepted: Arc<Mutex<Option<mpsc::UnboundedSender<ServerEnd>>>>,
}

struct ClientEnd {
    to_server: mpsc::UnboundedSender<ClientMsg>,
    from_server: mpsc::UnboundedReceiver<String>,
}

impl Conn for ClientEnd {
    async fn send(&mut self, text: String) -> Result<(), String> {
        let msg = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        self.to_server.send(msg).map_err(|_| "closed".to_string())
    }

    async fn recv(&mut self) -> Option<Result<String, String>> {
        self.from_server.recv().await.map(Ok)
    }

    async fn close(&mut self) {}
}

impl Transport for Script {
    type Conn = ClientEnd;

    async fn connect(&self, token: &str) -> Result<ClientEnd, ConnectError> {
        self.tokens.lock().unwrap().push(token.to_string());
        let answer = self.answers.lock().unwrap().pop_front();
        match answer {
            Some(Answer::Accept) => {
                let (to_server, from_client) = mpsc::unbounded_channel();
                let (to_client, from_server) = mpsc::unbounded_channel();
                let end = ServerEnd {
                    from_client,
                    to_client,
                };
                if let Some(tx) = &*self.accepted.lock().unwrap() {
                    let _ = tx.send(end);
                }
                Ok(ClientEnd {
                    to_server,
                    from_server,
                })
            }
            Some(Answer::Unauthorized) => Err(ConnectError::Unauthorized),
            // A script run out: the server is down.
            None => Err(ConnectError::Failed("connection refused".into())),
        }
    }
}

/// Hands out "t0", then "t1"… on each refresh; records how it was asked.
#[derive(Clone, Default)]
struct Tokens {
    asked: Arc<Mutex<Vec<bool>>>,
}

impl TokenSource for Tokens {
    async fn token(&self, refresh: bool) -> Result<String, TokenError> {
        let mut asked = self.asked.lock().unwrap();
        asked.push(refresh);
        Ok(format!("t{}", asked.iter().filter(|r| **r).count()))
    }
}

struct Harness {
    session: Session,
    servers: mpsc::UnboundedReceiver<ServerEnd>,
    script: Script,
    tokens: Tokens,
    clock: ManualClock,
}

fn start(answers: Vec<Answer>) -> Harness {
    let script = Script::default();
    script.answers.lock().unwrap().extend(answers);
    let (tx, servers) = mpsc::unbounded_channel();
    *script.accepted.lock().unwrap() = Some(tx);
    let tokens = Tokens::default();
    let join = JoinOptions {
        code: MeetingCode::parse("bcdf-ghjk-mnpq").unwrap(),
        display_name: "Ann".into(),
        passcode: None,
    };
    let clock = ManualClock::new();
    let session = Session::start_on(script.clone(), tokens.clone(), join, clock.clone());
    Harness {
        session,
        servers,
        script,
        tokens,
        clock,
    }
}

impl Harness {
    async fn server(&mut self) -> ServerEnd {
        tokio::time::timeout(Duration::from_secs(10), self.servers.recv())
            .await
            .expect("the client connects")
            .unwrap()
    }

    /// Connection attempts so far.
    fn attempts(&self) -> usize {
        self.script.tokens.lock().unwrap().len()
    }

    /// Waits (in real time, up to 1 s) until `n` connection attempts were made; false if not.
    async fn attempted(&self, n: usize) -> bool {
        self.attempted_within(n, 200).await
    }

    async fn attempted_within(&self, n: usize, polls: u32) -> bool {
        for _ in 0..polls {
            if self.attempts() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }

    async fn event(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(10), self.session.events.recv())
            .await
            .expect("an event")
            .unwrap()
    }
}

fn welcome(resume: &str, last_seq: i64) -> ServerMsg {
    ServerMsg::Welcome {
        peer_id: PeerId("p1".into()),
        role: parley_shared::api::Role::Participant,
        participants: vec![],
        ice_servers: vec![],
        resume_token: resume.into(),
        locked: false,
        last_seq,
    }
}

#[tokio::test]
async fn a_dropped_session_resumes_and_sends_unacknowledged_chat_again() {
    let mut h = start(vec![Answer::Accept, Answer::Accept, Answer::Accept]);
    let mut s = h.server().await;
    assert!(matches!(
        s.recv().await,
        ClientMsg::Join {
            resume_token: None,
            ..
        }
    ));
    s.send(&welcome("r1", 4));
    assert!(matches!(
        h.event().await,
        Event::Server(ServerMsg::Welcome { .. })
    ));
    let id = h.session.chat("hello".into()).await;
    assert_eq!(
        s.recv().await,
        ClientMsg::Chat {
            client_msg_id: id.clone(),
            text: "hello".into()
        }
    );
    // The connection drops before the chat is acknowledged.
    drop(s);
    assert!(matches!(
        h.event().await,
        Event::Reconnecting { attempt: 1, .. }
    ));
    h.clock.advance(Duration::from_millis(500));
    let mut s = h.server().await;
    assert_eq!(
        s.recv().await,
        ClientMsg::Join {
            code: MeetingCode::parse("bcdf-ghjk-mnpq").unwrap(),
            display_name: "Ann".into(),
            passcode: None,
            resume_token: Some("r1".into()),
            after_seq: Some(4),
        }
    );
    s.send(&welcome("r2", 4));
    assert_eq!(
        s.recv().await,
        ClientMsg::Chat {
            client_msg_id: id.clone(),
            text: "hello".into()
        },
        "sent again under the same id"
    );
    s.send(&ServerMsg::ChatAck {
        client_msg_id: id,
        id: "m5".into(),
        seq: 5,
    });
    // Acknowledged: the next resume sends nothing again, and asks from seq 5.
    drop(s);
    while !matches!(h.event().await, Event::Reconnecting { .. }) {}
    h.clock.advance(Duration::from_millis(500));
    let mut s = h.server().await;
    assert!(matches!(
        s.recv().await,
        ClientMsg::Join { resume_token: Some(t), after_seq: Some(5), .. } if t == "r2"
    ));
    s.send(&welcome("r3", 5));
    h.session.leave().await;
    assert_eq!(s.recv().await, ClientMsg::Leave, "no chat before the leave");
    loop {
        if let Event::Closed(c) = h.event().await {
            assert_eq!(c, Closed::Left);
            break;
        }
    }
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once() {
    let mut h = start(vec![Answer::Unauthorized, Answer::Accept]);
    let mut s = h.server().await;
    assert!(matches!(s.recv().await, ClientMsg::Join { .. }));
    assert_eq!(*h.tokens.asked.lock().unwrap(), vec![false, true]);
    assert_eq!(*h.script.tokens.lock().unwrap(), vec!["t0", "t1"]);
    // The server asks for a fresh token on the live socket: it gets one.
    s.send(&welcome("r1", 0));
    s.send(&ServerMsg::ReauthRequired { within_secs: 60 });
    assert_eq!(
        s.recv().await,
        ClientMsg::Reauth {
            access_token: "t2".into()
        }
    );

    // Refused again after the refresh: the user must sign in (no retry loop).
    let mut h = start(vec![
        Answer::Unauthorized,
        Answer::Unauthorized,
        Answer::Accept,
    ]);
    match h.event().await {
        Event::Closed(Closed::Refused { code, .. }) => assert_eq!(code, ErrorCode::Unauthorized),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.script.tokens.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_server_that_stays_down_is_retried_with_capped_waits_then_given_up() {
    // Every try fails. Each retry comes exactly when its wait is over on the clock
    // (0.5, 1, 2, then 4 s at most), and 30 s after the drop the session gives up.
    let mut h = start(vec![]);
    assert!(h.attempted(1).await);
    let mut elapsed = Duration::ZERO;
    let mut waits = Vec::new();
    for attempt in 1.. {
        match h.event().await {
            Event::Reconnecting { attempt: a, .. } => assert_eq!(a, attempt),
            Event::Closed(c) => {
                assert_eq!(c, Closed::Lost("connection refused".into()));
                break;
            }
            other => panic!("{other:?}"),
        }
        let want = state::RECONNECT_BACKOFF.delay(attempt);
        waits.push(want.as_millis() as u64);
        h.clock.advance(want - Duration::from_millis(1));
        assert!(
            !h.attempted_within(attempt as usize + 1, 10).await,
            "try {} came before its {want:?} wait was over",
            attempt + 1
        );
        h.clock.advance(Duration::from_millis(1));
        assert!(
            h.attempted(attempt as usize + 1).await,
            "try {}",
            attempt + 1
        );
        elapsed += want;
        assert!(
            elapsed <= RECONNECT_FOR + Duration::from_secs(4),
            "never gave up"
        );
    }
    assert_eq!(&waits[..5], &[500, 1000, 2000, 4000, 4000]);
    assert!(waits.iter().all(|w| *w <= 4000));
    assert!(elapsed >= RECONNECT_FOR, "gave up after {elapsed:?}");
}

#[tokio::test]
async fn a_quiet_meeting_is_pinged_and_leaving_while_down_ends_at_once() {
    let mut h = start(vec![Answer::Accept]);
    let mut s = h.server().await;
    assert!(matches!(s.recv().await, ClientMsg::Join { .. }));
    s.send(&welcome("r1", 0));
    assert!(matches!(
        h.event().await,
        Event::Server(ServerMsg::Welcome { .. })
    ));
    // Nothing is said for a while: a ping every 10 s keeps the server's idle timeout away.
    for _ in 0..3 {
        h.clock.advance(PING_EVERY);
        let ping = tokio::time::timeout(Duration::from_secs(2), s.from_client.recv()).await;
        assert_eq!(ping.unwrap(), Some(ClientMsg::Ping));
    }
    // Down, and the user leaves during the wait: no further try.
    drop(s);
    assert!(matches!(h.event().await, Event::Reconnecting { .. }));
    h.session.leave().await;
    assert_eq!(h.event().await, Event::Closed(Closed::Left));
    assert_eq!(h.attempts(), 1);
}

#[tokio::test]
async fn endings_from_the_server_end_the_session() {
    for (msg, want) in [
        (ServerMsg::Removed, Closed::Removed),
        (ServerMsg::MeetingEnded, Closed::MeetingEnded),
        (
            ServerMsg::error(ErrorCode::SessionRevoked, "signed out"),
            Closed::Refused {
                code: ErrorCode::SessionRevoked,
                message: "signed out".into(),
            },
        ),
    ] {
        let mut h = start(vec![Answer::Accept, Answer::Accept]);
        let mut s = h.server().await;
        s.recv().await;
        s.send(&welcome("r1", 0));
        s.send(&msg);
        let closed = loop {
            if let Event::Closed(c) = h.event().await {
                break c;
            }
        };
        assert_eq!(closed, want);
        assert_eq!(h.script.tokens.lock().unwrap().len(), 1, "no reconnect");
    }
}
