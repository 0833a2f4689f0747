//! The live-meeting protocol against its own description (`GET /api/asyncapi.json`): a
//! fuzzer sends generated messages, valid and invalid, in every room state (connected but not
//! joined, in the waiting room, in the meeting, as its host), each on a fresh socket in that
//! state, and holds the server to the description:
//! - what breaks the description (by the described JSON Schema and byte limits) is refused
//!   with an `error`, and what keeps to it is never refused as malformed;
//! - every message the server sends is valid by the description (`ServerMsg`);
//! - no message closes the socket but `leave`; the server answers a `ping` after each;
//! - an honest participant in the same meeting sees only described messages and still
//!   answers at the end.
//!
//! The seed is printed; `PARLEY_WS_FUZZ_SEED=<seed>` replays a run, `PARLEY_WS_FUZZ_CASES`
//! sets the cases per state (default 250).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::fixture::{TestServer, Ws};

const WAIT: Duration = Duration::from_secs(10);
/// The message size limit the description states (`components.messages.client`).
const MAX_MESSAGE: usize = 64 * 1024;
/// Frames over this are not read (`x-parley-read-limit-bytes`).
const READ_LIMIT: usize = 2 * MAX_MESSAGE;
/// Error codes that mean "your message breaks the protocol" (not "not now" or "not you").
const MALFORMED: [&str; 4] = [
    "malformed_request",
    "unknown_message_type",
    "payload_too_large",
    "invalid_display_name",
];
/// Every message type a client may send.
const CLIENT_TYPES: [&str; 20] = [
    "join",
    "leave",
    "offer",
    "answer",
    "ice",
    "chat",
    "media_state",
    "hand",
    "reaction",
    "admit",
    "deny",
    "mute",
    "remove",
    "promote",
    "lock",
    "unlock",
    "end",
    "ping",
    "reauth",
    // Only in invalid cases:
    "teleport",
];

/// The description, compiled: validators for both directions and the byte limits.
struct Described {
    client: jsonschema::Validator,
    server: jsonschema::Validator,
    doc: Value,
}

impl Described {
    async fn fetch(s: &TestServer) -> Self {
        let doc = s.get("/api/asyncapi.json", None).await.expect(200).body;
        assert_eq!(doc["asyncapi"], "3.0.0");
        let rooted = |name: &str| {
            json!({"$ref": format!("#/components/schemas/{name}"),
                   "components": {"schemas": doc["components"]["schemas"].clone()}})
        };
        let client = &doc["components"]["messages"]["client"];
        assert_eq!(client["x-parley-max-bytes"], MAX_MESSAGE);
        assert_eq!(client["x-parley-read-limit-bytes"], READ_LIMIT);
        Self {
            client: jsonschema::validator_for(&rooted("ClientMsg")).expect("ClientMsg compiles"),
            server: jsonschema::validator_for(&rooted("ServerMsg")).expect("ServerMsg compiles"),
            doc,
        }
    }

    /// The described schema of client message `tag`.
    fn variant(&self, tag: &str) -> Option<&Value> {
        self.doc["components"]["schemas"]["ClientMsg"]["oneOf"]
            .as_array()?
            .iter()
            .find(|v| {
                v["properties"]["type"]["enum"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|t| t == tag))
            })
    }

    /// True when `text` is a client message the description allows.
    fn allows(&self, text: &str) -> bool {
        let max = self.doc["components"]["messages"]["client"]["x-parley-max-bytes"].as_u64();
        if max.is_none_or(|max| text.len() as u64 > max) {
            return false;
        }
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return false;
        };
        if !self.client.is_valid(&v) {
            return false;
        }
        let Some(schema) = v["type"].as_str().and_then(|t| self.variant(t)) else {
            return true; // a variant of another shape (no byte limits)
        };
        let Some(props) = schema["properties"].as_object() else {
            return true;
        };
        props.iter().all(|(field, rule)| {
            match (rule["x-parley-max-bytes"].as_u64(), v[field].as_str()) {
                (Some(max), Some(s)) => s.len() as u64 <= max,
                _ => true,
            }
        })
    }

    fn check_sent(&self, m: &Value, context: &str) {
        let errors: Vec<String> = self.server.iter_errors(m).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{context}: the server sent a message its description does not allow: {m}\n{errors:?}"
        );
    }
}

/// Text of every sort: plain, empty, blank, Unicode, control and override characters, long.
fn text(rng: &mut StdRng) -> String {
    match rng.gen_range(0..12) {
        0 => String::new(),
        1 => " \t ".into(),
        2 => "hello".into(),
        3 => "Zoë 😀 שלום".into(),
        4 => "two\nlines\twith a tab".into(),
        5 => "\u{1b}[2J".into(),
        6 => "Bob\u{202e}nimda".into(),
        7 => "x".repeat(rng.gen_range(30..80)),
        8 => "y".repeat(rng.gen_range(4_000..4_200)),
        9 => "z".repeat(rng.gen_range(32_000..33_500)),
        10 => (0..rng.gen_range(1..20))
            .map(|_| char::from_u32(rng.gen_range(0x20..0x3000)).unwrap_or('?'))
            .collect(),
        _ => "nul\u{0}".into(),
    }
}

fn peer(rng: &mut StdRng, own: &str) -> String {
    match rng.gen_range(0..3) {
        0 => own.to_string(),
        1 => "p-nobody".into(),
        _ => text(rng),
    }
}

/// A message of type `ty` with fields of the right JSON types and any content.
fn message(rng: &mut StdRng, ty: &str, own: &str, token: &str) -> Value {
    let mut m = match ty {
        "join" => json!({
            "code": if rng.gen_bool(0.5) { "bcdf-ghjk-mnpq".to_string() } else { text(rng) },
            "display_name": text(rng),
        }),
        "offer" | "answer" => json!({"to": peer(rng, own), "sdp": text(rng)}),
        "ice" => json!({"to": peer(rng, own), "candidate": {
            "candidate": text(rng),
            "sdp_mid": if rng.gen_bool(0.5) { json!("0") } else { json!(null) },
            "sdp_mline_index": if rng.gen_bool(0.5) { json!(rng.gen_range(0..65_536)) } else { json!(null) },
        }}),
        "chat" => {
            json!({"client_msg_id": if rng.gen_bool(0.7) { format!("c{}", rng.gen::<u32>()) } else { text(rng) }, "text": text(rng)})
        }
        "media_state" => {
            json!({"audio": rng.gen_bool(0.5), "video": rng.gen_bool(0.5), "screen": rng.gen_bool(0.5)})
        }
        "hand" => json!({"raised": rng.gen_bool(0.5)}),
        "reaction" => {
            json!({"emoji": if rng.gen_bool(0.5) { "👍".to_string() } else { text(rng) }})
        }
        "admit" | "deny" | "mute" | "remove" | "promote" => json!({"peer": peer(rng, own)}),
        "reauth" => {
            json!({"access_token": if rng.gen_bool(0.5) { token.to_string() } else { text(rng) }})
        }
        _ => json!({}),
    };
    m["type"] = json!(ty);
    m
}

/// `m` broken one way: a field dropped or of the wrong JSON type, the tag wrong, or not an
/// object or not JSON at all. (The description decides whether it is still allowed.)
fn mutate(rng: &mut StdRng, mut m: Value) -> String {
    let fields: Vec<String> = m
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let field = fields[rng.gen_range(0..fields.len())].clone();
    match rng.gen_range(0..8) {
        0 => {
            m.as_object_mut().map(|o| o.remove(&field));
        }
        1 => m[&field] = json!(12345),
        2 => m[&field] = json!(["a"]),
        3 => m[&field] = json!({"nested": {"deeper": true}}),
        4 => m["type"] = json!(["join"]),
        5 => return json!([m]).to_string(),
        6 => return "{\"type\": \"chat\", \"text\": ".into(),
        _ => m[&field] = json!(null),
    }
    m.to_string()
}

/// How a fuzzed socket is put in its state before each case.
#[derive(Clone, Copy, Debug)]
enum State {
    Connected,
    Waiting,
    Member,
    Host,
}

struct Rig {
    s: TestServer,
    described: Described,
    code: String,
    host: crate::fixture::TestUser,
    member: crate::fixture::TestUser,
    waiter: crate::fixture::TestUser,
}

impl Rig {
    /// A fresh socket in `state`, and its own peer id ("" before joining).
    async fn socket(&self, state: State) -> (Ws, String) {
        let (user, expect) = match state {
            State::Connected => return (self.s.ws(&self.member.access).await, String::new()),
            State::Waiting => (&self.waiter, "waiting"),
            State::Member => (&self.member, "welcome"),
            State::Host => (&self.host, "welcome"),
        };
        let mut ws = self.s.ws(&user.access).await;
        ws.send(json!({"type": "join", "code": self.code, "display_name": "Fuzzed"}))
            .await;
        let first = ws.recv_type_within(expect, WAIT).await;
        self.described.check_sent(&first, "joining");
        (
            ws,
            first["peer_id"].as_str().unwrap_or_default().to_string(),
        )
    }

    fn token(&self, state: State) -> &str {
        match state {
            State::Connected | State::Member => &self.member.access,
            State::Waiting => &self.waiter.access,
            State::Host => &self.host.access,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_protocol_keeps_to_its_description_under_a_fuzzer_in_every_state() {
    let seed = std::env::var("PARLEY_WS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    let cases: usize = std::env::var("PARLEY_WS_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250);
    eprintln!("ws fuzz seed {seed} (PARLEY_WS_FUZZ_SEED replays it), {cases} cases per state");
    let mut rng = StdRng::seed_from_u64(seed);
    // One client sending hundreds of messages a second: budgets that would cut it off are
    // raised (they have their own tests in sockets.rs and limits.rs).
    let s = TestServer::with_config(|c| {
        c.limits.ws_messages_per_sec = 100_000;
        c.limits.ws_message_burst = 100_000;
        c.limits.chat_per_sec = 100_000;
        c.limits.ws_per_user = 1_000;
    })
    .await;
    let host = s.register("fuzzhost").await;
    let member = s.register("fuzzmember").await;
    let waiter = s.register("fuzzwaiter").await;
    let witness_user = s.register("witness").await;
    let code = s
        .create_meeting(&host, json!({"title": "Fuzzed", "waiting_room": true}))
        .await;
    let described = Described::fetch(&s).await;
    // The host lets the member and the witness in once (admission is stored).
    let (mut host_ws, _) = s.join_ws(&host, &code).await;
    let mut member_ws = knock(&s, &member, &code).await;
    let waiting = host_ws.recv_type("waiting_peer").await;
    host_ws
        .send(json!({"type": "admit", "peer": waiting["peer_id"]}))
        .await;
    member_ws.recv_type("welcome").await;
    member_ws.send(json!({"type": "leave"})).await;
    assert!(member_ws.closed().await);
    let mut witness = knock(&s, &witness_user, &code).await;
    let waiting = host_ws.recv_type("waiting_peer").await;
    host_ws
        .send(json!({"type": "admit", "peer": waiting["peer_id"]}))
        .await;
    witness.recv_type("welcome").await;
    host_ws.send(json!({"type": "leave"})).await;
    assert!(host_ws.closed().await);
    let rig = Rig {
        s,
        described,
        code,
        host,
        member,
        waiter,
    };

    let mut tally = [0usize; 2]; // [allowed, refused] by the description
    for state in [State::Connected, State::Waiting, State::Member, State::Host] {
        for case in 0..cases {
            let (mut ws, own) = rig.socket(state).await;
            let ty = CLIENT_TYPES[rng.gen_range(0..CLIENT_TYPES.len() - 1)];
            // `end` would end the meeting for the cases after; it has its own tests.
            let ty = if ty == "end" { "ping" } else { ty };
            let valid_shape = message(&mut rng, ty, &own, rig.token(state));
            let text = match rng.gen_range(0..10) {
                0 => json!({"type": "teleport", "to": own}).to_string(),
                1..=4 => mutate(&mut rng, valid_shape),
                _ => valid_shape.to_string(),
            };
            let allowed = rig.described.allows(&text);
            tally[usize::from(!allowed)] += 1;
            let context = format!("{state:?} case {case} (seed {seed}): sent {}", clip(&text));
            ws.send_text(text.clone()).await;
            let joined = !matches!(state, State::Connected);
            let leaves = joined && allowed && ty == "leave";
            let got = if joined {
                if !leaves {
                    // Room replies come in order before the room's answer to `leave`, which
                    // closes the socket: everything until the close answers this message.
                    ws.send(json!({"type": "ping"})).await;
                    ws.send(json!({"type": "leave"})).await;
                }
                let Some((got, _)) = ws.until_closed(WAIT).await else {
                    panic!("{context}: no answer within {WAIT:?} (a stall)");
                };
                got
            } else {
                // Before joining, every answer comes from the socket itself, in order.
                ws.send(json!({"type": "ping"})).await;
                until_pong(&mut ws, &context).await
            };
            for m in &got {
                rig.described.check_sent(m, &context);
            }
            let malformed: Vec<&Value> = got
                .iter()
                .filter(|m| m["type"] == "error" && MALFORMED.iter().any(|c| m["code"] == *c))
                .collect();
            if allowed {
                assert!(
                    malformed.is_empty(),
                    "{context}: allowed by the description, refused as malformed: {malformed:?}"
                );
            } else {
                assert!(
                    got.iter().any(|m| m["type"] == "error"),
                    "{context}: breaks the description, yet no error came back: {got:?}"
                );
            }
            if !leaves {
                assert!(
                    got.iter().any(|m| m["type"] == "pong"),
                    "{context}: the socket stopped answering: {got:?}"
                );
            }
            // A host case that locked the meeting unlocks it again for the cases after.
            if matches!(state, State::Host) && text.contains("\"lock\"") {
                let (mut ws, _) = rig.socket(State::Host).await;
                ws.send(json!({"type": "unlock"})).await;
                ws.send(json!({"type": "leave"})).await;
                ws.until_closed(WAIT).await;
            }
        }
    }
    eprintln!(
        "ws fuzz: {} messages the description allows, {} it does not",
        tally[0], tally[1]
    );
    assert!(
        tally[0] >= cases && tally[1] >= cases,
        "both kinds were sent: {tally:?}"
    );

    // Frames outside the message format, on a joined socket.
    let (mut ws, _) = rig.socket(State::Member).await;
    ws.send_binary(vec![0, 1, 2, 3]).await;
    let m = ws.recv_type_within("error", WAIT).await;
    assert_eq!(m["code"], "malformed_request", "a binary frame: {m}");
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    ws.send_text(deep).await;
    let m = ws.recv_type_within("error", WAIT).await;
    assert_eq!(m["code"], "malformed_request", "10,000 nested arrays: {m}");
    // Over the size limit: refused, and the socket lives on.
    ws.send_text(format!(
        "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(MAX_MESSAGE)
    ))
    .await;
    let m = ws.recv_type_within("error", WAIT).await;
    assert_eq!(m["code"], "payload_too_large", "{m}");
    ws.send(json!({"type": "ping"})).await;
    ws.recv_type_within("pong", WAIT).await;
    // Over the read limit: not read, the socket closed (a close frame saying why, or a reset
    // when the unread data makes the kernel send one).
    ws.send_text("x".repeat(READ_LIMIT + 1)).await;
    let (got, close) = ws.until_closed(WAIT).await.expect("closed");
    assert!(
        close.is_none() || close == Some((4000, "payload_too_large".to_string())),
        "a frame over the read limit: {close:?} {got:?}"
    );

    // The honest participant saw only described messages and is still served.
    witness.send(json!({"type": "ping"})).await;
    loop {
        let m = witness
            .next(WAIT)
            .await
            .expect("the witness is still connected");
        rig.described.check_sent(&m, "the witness");
        if m["type"] == "pong" {
            break;
        }
    }
}

/// A user's socket, knocking on the meeting's waiting room.
async fn knock(s: &TestServer, user: &crate::fixture::TestUser, code: &str) -> Ws {
    let mut ws = s.ws(&user.access).await;
    ws.send(json!({"type": "join", "code": code, "display_name": "In"}))
        .await;
    ws.recv_type("waiting").await;
    ws
}

/// Every message up to and including the next `pong`.
async fn until_pong(ws: &mut Ws, context: &str) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let Some(m) = ws.next(WAIT).await else {
            panic!("{context}: closed or silent before answering a ping: {got:?}");
        };
        let pong = m["type"] == "pong";
        got.push(m);
        if pong {
            return got;
        }
    }
}

fn clip(s: &str) -> String {
    if s.len() <= 200 {
        s.to_string()
    } else {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes)", &s[..end], s.len())
    }
}
