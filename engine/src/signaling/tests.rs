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

use super::task::{Conn, ConnectError, Transport};
use super::*;

enum Answer {
    Accept,
    Unauthorized,
    Fail,
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
            Some(Answer::Fail) | None => Err(ConnectError::Failed("connection refused".into())),
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
    let session = Session::start_on(script.clone(), tokens.clone(), join);
    Harness {
        session,
        servers,
        script,
        tokens,
    }
}

impl Harness {
    async fn server(&mut self) -> ServerEnd {
        tokio::time::timeout(Duration::from_secs(10), self.servers.recv())
            .await
            .expect("the client connects")
            .unwrap()
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
async fn a_server_that_stays_down_is_retried_with_growing_waits() {
    // The first tries fail; the fourth connects. The waits between tries double.
    let mut h = start(vec![
        Answer::Fail,
        Answer::Fail,
        Answer::Fail,
        Answer::Accept,
    ]);
    let began = tokio::time::Instant::now();
    for want in 1..=3 {
        match h.event().await {
            Event::Reconnecting { attempt, .. } => assert_eq!(attempt, want),
            other => panic!("{other:?}"),
        }
    }
    let mut s = h.server().await;
    let waited = began.elapsed();
    // 0.5 + 1 + 2 s.
    assert!(waited >= Duration::from_millis(3500), "{waited:?}");
    assert!(waited < Duration::from_millis(6000), "{waited:?}");
    assert!(matches!(s.recv().await, ClientMsg::Join { .. }));
    // Leaving while disconnected ends at once.
    drop(s);
    assert!(matches!(h.event().await, Event::Reconnecting { .. }));
    h.session.leave().await;
    assert_eq!(h.event().await, Event::Closed(Closed::Left));
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
