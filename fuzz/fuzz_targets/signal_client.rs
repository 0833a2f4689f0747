//! Client → server signaling, read the way the server reads a WebSocket text frame
//! (server/src/room/conn.rs): parsed, then mapped to the room's command. What must hold: no
//! panic; a refused message is answered with an `error` carrying a stable code; a message
//! that parses is written and read back as the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_server::room::conn;
use parley_shared::signal::{ClientMsg, ServerMsg, MAX_MESSAGE_BYTES};
use parley_shared::PeerId;

fuzz_target!(|data: &[u8]| {
    // WebSocket text frames are UTF-8 (tungstenite refuses others) and the server closes a
    // connection whose frame is over MAX_MESSAGE_BYTES before parsing it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > MAX_MESSAGE_BYTES {
        return;
    }
    match conn::parse(text) {
        Ok(msg) => {
            let written = serde_json::to_string(&msg).expect("a parsed message is writable");
            let back: ClientMsg = serde_json::from_str(&written).expect("written, read back");
            assert_eq!(back, msg, "round trip of {written}");
            let me = PeerId("p-fuzz".into());
            if let Err(reply) = conn::to_room(&me, msg) {
                assert_error(&reply);
            }
        }
        Err(reply) => assert_error(&reply),
    }
});

fn assert_error(reply: &ServerMsg) {
    let ServerMsg::Error { code, .. } = reply else {
        panic!("a refusal that is not an error: {reply:?}");
    };
    // The code is one of the stable wire codes: it reads back from its own text.
    let wire = serde_json::to_value(code).expect("codes are writable");
    assert!(wire.is_string(), "error code {wire}");
}
