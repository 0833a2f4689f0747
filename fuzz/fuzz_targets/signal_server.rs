//! Server → client signaling, read the way the engine's signaling task reads it
//! (engine/src/signaling/task.rs: a frame that does not parse is dropped), then handed to the
//! session's pure state (resume, chat resend, reconnect). Each input line is one frame; lines
//! `!connect`, `!chat` and `!drop` stand for the connection opening, the user sending chat
//! and the connection dropping. What must hold: no panic; a message that parses is written
//! and read back as the same message; the session only ever asks to send messages the server
//! itself accepts (they parse with the server's own reader).
#![no_main]

use std::time::Duration;

use tokio::time::Instant;

use libfuzzer_sys::fuzz_target;
use parley_engine::signaling::state::SessionState;
use parley_engine::signaling::JoinOptions;
use parley_server::room::conn;
use parley_shared::signal::{ClientMsg, ServerMsg};
use parley_shared::MeetingCode;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut session = SessionState::new(JoinOptions {
        code: MeetingCode::from_indices([0; MeetingCode::LETTERS]),
        display_name: "Fuzz".into(),
        passcode: None,
    });
    let t0 = Instant::now();
    let mut chats = 0u32;
    for (i, line) in text.lines().enumerate().take(256) {
        let now = t0 + Duration::from_millis(250 * i as u64);
        match line {
            "!connect" => sends_what_the_server_reads(&session.connected()),
            "!drop" => drop(session.dropped("fuzz".into(), now)),
            _ if line.starts_with("!chat") => {
                chats += 1;
                if let Some(m) = session.chat(format!("c{chats}"), line[5..].to_string()) {
                    sends_what_the_server_reads(&m);
                }
            }
            _ => {
                let Ok(msg) = serde_json::from_str::<ServerMsg>(line) else {
                    continue;
                };
                let written = serde_json::to_string(&msg).expect("a parsed message is writable");
                let back: ServerMsg = serde_json::from_str(&written).expect("written, read back");
                assert_eq!(back, msg, "round trip of {written}");
                let reaction = session.on_server(msg);
                for m in &reaction.send {
                    sends_what_the_server_reads(m);
                }
            }
        }
    }
});

/// What the session sends is read back by the server's own parser as the same message.
fn sends_what_the_server_reads(msg: &ClientMsg) {
    let text = serde_json::to_string(msg).expect("writable");
    match conn::parse(&text) {
        Ok(back) => assert_eq!(&back, msg),
        Err(e) => panic!("the server cannot read what the client sends: {text}: {e:?}"),
    }
}
