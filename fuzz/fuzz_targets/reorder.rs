//! RTP packets put back in order, with NACKs for holes (engine/src/media/reorder.rs), fed an
//! arbitrary arrival order with arbitrary sequence numbers (wrap-arounds, duplicates, jumps).
//! What must hold: no panic; each packet comes out at most once; what comes out between two
//! gaps is in sequence order (each next number one ahead, modulo 2^16); never more packets
//! held than the limit; never more than 100 holes asked for at once.
#![no_main]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use parley_engine::media::reorder::{Ordered, Reorder};

const MAX_HELD: usize = 32;

enum Step {
    Packet { seq: u16, after_ms: u8 },
    Nack { after_ms: u8 },
}

/// The input as 4-byte steps `[op, after_ms, seq (u16 BE)]`: op 0 asks for NACKs.
fn steps(data: &[u8]) -> impl Iterator<Item = Step> + '_ {
    data.chunks_exact(4).map(|c| match c[0] {
        0 => Step::Nack { after_ms: c[1] },
        _ => Step::Packet {
            seq: u16::from_be_bytes([c[2], c[3]]),
            after_ms: c[1],
        },
    })
}

fuzz_target!(|data: &[u8]| {
    let steps = steps(data);
    let mut r = Reorder::new(Duration::from_millis(150), MAX_HELD);
    let mut now = Instant::now();
    let mut pushed = 0usize;
    let mut out_ids = HashSet::new();
    let mut last: Option<u16> = None;
    for step in steps {
        match step {
            Step::Packet { seq, after_ms } => {
                now += Duration::from_millis(u64::from(after_ms));
                let id = pushed;
                pushed += 1;
                for o in r.push(seq, (id, seq), now) {
                    match o {
                        Ordered::Gap => last = None,
                        Ordered::Packet((id, seq)) => {
                            assert!(out_ids.insert(id), "packet {id} released twice");
                            if let Some(prev) = last {
                                assert_eq!(seq, prev.wrapping_add(1), "out of order");
                            }
                            last = Some(seq);
                        }
                    }
                }
                assert!(r.held() <= MAX_HELD, "{} packets held", r.held());
            }
            Step::Nack { after_ms } => {
                now += Duration::from_millis(u64::from(after_ms));
                // A hole is at most 100 packets wide (larger ones wait for a keyframe).
                assert!(r.to_nack(now).len() <= 100);
            }
        }
    }
});
