//! VP8 over RTP, receiving side: payload descriptors and frames put together from packets
//! (engine/src/media/vp8_rtp.rs), with losses and decoder failures in between. What must
//! hold: no panic; a descriptor that reads never points past its packet; no frame is ever
//! longer than the assembler's limit nor longer than the VP8 data that went in since the
//! last frame; keyframes are asked for at most once a second.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use parley_engine::media::vp8_rtp::{
    descriptor, Assembled, FrameAssembler, KEYFRAME_REQUEST_EVERY,
};

const MAX_FRAME: usize = 4096;

enum Step<'a> {
    Packet {
        payload: &'a [u8],
        marker: bool,
        after_ms: u8,
    },
    Gap,
    DecodeFailed,
}

/// The input as steps: `[op, after_ms, len, payload…]` records; op bit 0 is the marker, op
/// 0xfe a loss, 0xff a decoding failure.
fn steps(mut data: &[u8]) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    while let [op, after_ms, len, rest @ ..] = data {
        let n = usize::from(*len).min(rest.len());
        out.push(match op {
            0xfe => Step::Gap,
            0xff => Step::DecodeFailed,
            _ => Step::Packet {
                payload: &rest[..n],
                marker: op & 1 == 1,
                after_ms: *after_ms,
            },
        });
        data = &rest[n..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let steps = steps(data);
    let mut a = FrameAssembler::new(MAX_FRAME);
    let mut now = Instant::now();
    let mut fed = 0usize;
    let mut last_ask: Option<Instant> = None;
    for step in steps {
        match step {
            Step::Gap => a.gap(),
            Step::DecodeFailed => a.decode_failed(),
            Step::Packet {
                payload,
                marker,
                after_ms,
            } => {
                now += Duration::from_millis(u64::from(after_ms));
                if let Ok(d) = descriptor(payload) {
                    assert!(d.header_len < payload.len());
                    fed += payload.len() - d.header_len;
                }
                match a.push(payload, marker, now) {
                    Assembled::Frame(f) => {
                        assert!(!f.is_empty() && f.len() <= MAX_FRAME && f.len() <= fed);
                        fed = 0;
                    }
                    Assembled::AskKeyframe => {
                        if let Some(t) = last_ask {
                            assert!(now.duration_since(t) >= KEYFRAME_REQUEST_EVERY);
                        }
                        last_ask = Some(now);
                        fed = 0;
                    }
                    Assembled::Dropped => fed = 0,
                    Assembled::Pending => {}
                }
            }
        }
    }
});
