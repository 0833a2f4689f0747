//! The audio jitter buffer (engine/src/media/jitter.rs) fed packets late, early, twice and
//! out of order with arbitrary sequence numbers and RTP times, and asked for playout at
//! arbitrary moments. What must hold: no panic; only packets that went in come out, each at
//! most once as itself (a copy may also stand in as FEC for the one before it); the target
//! delay stays within 40–200 ms.
#![no_main]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use parley_engine::media::jitter::{JitterBuffer, Playout};

enum Step {
    Packet { seq: u16, rtp_ts: u32, after_ms: u8 },
    Pop { after_ms: u8 },
}

/// The input as 8-byte steps `[op, after_ms, seq (u16 BE), rtp time (u32 BE)]`: op 0 is a
/// playout turn.
fn steps(data: &[u8]) -> impl Iterator<Item = Step> + '_ {
    data.chunks_exact(8).map(|c| match c[0] {
        0 => Step::Pop { after_ms: c[1] },
        _ => Step::Packet {
            seq: u16::from_be_bytes([c[2], c[3]]),
            rtp_ts: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
            after_ms: c[1],
        },
    })
}

fuzz_target!(|data: &[u8]| {
    let steps = steps(data);
    let mut jb = JitterBuffer::new(48_000);
    let mut now = Instant::now();
    let mut pushed = 0u32;
    let mut played = HashSet::new();
    for step in steps {
        match step {
            Step::Packet {
                seq,
                rtp_ts,
                after_ms,
            } => {
                now += Duration::from_millis(u64::from(after_ms));
                // The payload names its packet, so what comes out can be checked.
                jb.push(seq, rtp_ts, pushed.to_le_bytes().to_vec(), now);
                pushed += 1;
            }
            Step::Pop { after_ms } => {
                now += Duration::from_millis(u64::from(after_ms));
                match jb.pop(now) {
                    Playout::Packet(p) => {
                        let id = u32::from_le_bytes(p.try_into().expect("a payload that went in"));
                        assert!(id < pushed);
                        assert!(played.insert(id), "packet {id} played twice");
                    }
                    Playout::Fec(p) => {
                        let id = u32::from_le_bytes(p.try_into().expect("a payload that went in"));
                        assert!(id < pushed);
                    }
                    Playout::Conceal | Playout::Silence => {}
                }
            }
        }
        let t = jb.target();
        assert!(
            t >= Duration::from_millis(40) && t <= Duration::from_millis(200),
            "{t:?}"
        );
    }
});
