//! VP8 over RTP, receiving side (RFC 7741): the payload descriptor read off each packet, and
//! frames put back together from packets that arrive in order ([`super::reorder`] orders
//! them). A frame with a lost piece is never handed to the decoder: decoding resumes at the
//! next keyframe, which is asked for at most once a second. Pure: time comes in as `now`.

use std::time::{Duration, Instant};

/// Keyframe requests (PLI) at most this often: each answer is a large frame.
pub const KEYFRAME_REQUEST_EVERY: Duration = Duration::from_millis(1000);

/// The VP8 payload descriptor of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// S bit: this packet starts a partition.
    pub start: bool,
    /// The partition index (PID).
    pub partition: u8,
    /// Where the VP8 data begins in the payload.
    pub header_len: usize,
}

impl Descriptor {
    /// Whether this packet starts a new frame (the first packet of partition 0).
    pub fn starts_frame(&self) -> bool {
        self.start && self.partition == 0
    }
}

/// Why a payload is not VP8 over RTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorError {
    #[error("VP8 payload descriptor cut short")]
    Truncated,
    #[error("VP8 packet without data")]
    Empty,
}

/// Reads the payload descriptor (RFC 7741 §4.2).
pub fn descriptor(payload: &[u8]) -> Result<Descriptor, DescriptorError> {
    let byte = |i: usize| payload.get(i).copied().ok_or(DescriptorError::Truncated);
    let first = byte(0)?;
    let mut len = 1;
    if first & 0x80 != 0 {
        // X: an extension byte says which optional fields follow.
        let ext = byte(1)?;
        len = 2;
        if ext & 0x80 != 0 {
            // I: picture id, 7 bits or (M set) 15.
            len += if byte(len)? & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            len += 1; // L: TL0PICIDX
        }
        if ext & 0x30 != 0 {
            len += 1; // T and/or K: TID/Y/KEYIDX
        }
    }
    match payload.len() {
        n if n < len => Err(DescriptorError::Truncated),
        n if n == len => Err(DescriptorError::Empty),
        _ => Ok(Descriptor {
            start: first & 0x10 != 0,
            partition: first & 0x0f,
            header_len: len,
        }),
    }
}

/// What a packet completes.
#[derive(Debug, PartialEq, Eq)]
pub enum Assembled {
    /// Nothing yet (a frame in the middle).
    Pending,
    /// A whole frame, ready for the decoder.
    Frame(Vec<u8>),
    /// A frame was dropped (lost piece, or no keyframe yet): ask the sender for a keyframe.
    AskKeyframe,
    /// A frame was dropped; a keyframe was asked for less than a second ago.
    Dropped,
}

/// Puts VP8 frames together from ordered packets.
pub struct FrameAssembler {
    buf: Vec<u8>,
    /// A piece of the frame being assembled is missing.
    broken: bool,
    /// Frames are dropped until a keyframe (start, or after a loss or a decoding error).
    need_keyframe: bool,
    /// Longest frame accepted (a sender cannot make us hold more).
    max_frame: usize,
    last_request: Option<Instant>,
}

impl Default for FrameAssembler {
    fn default() -> Self {
        Self::new(8 << 20)
    }
}

impl FrameAssembler {
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: Vec::new(),
            broken: false,
            need_keyframe: true,
            max_frame,
            last_request: None,
        }
    }

    /// A packet is gone for good: its frame is lost, and the frames after it refer to it.
    pub fn gap(&mut self) {
        self.broken = true;
        self.need_keyframe = true;
    }

    /// The stream starts again (its decoder was closed): what was being assembled is given
    /// back, and frames are dropped until a keyframe.
    pub fn restart(&mut self) {
        self.buf = Vec::new();
        self.broken = false;
        self.need_keyframe = true;
    }

    /// The decoder could not use the last frame: wait for a keyframe.
    pub fn decode_failed(&mut self) {
        self.need_keyframe = true;
    }

    /// The next packet in sequence order.
    pub fn push(&mut self, payload: &[u8], marker: bool, now: Instant) -> Assembled {
        match descriptor(payload) {
            Ok(d) => {
                if d.starts_frame() {
                    self.buf.clear();
                    self.broken = false;
                }
                let data = &payload[d.header_len..];
                if self.buf.len() + data.len() > self.max_frame {
                    self.broken = true;
                    self.buf.clear();
                } else if !self.broken {
                    self.buf.extend_from_slice(data);
                }
            }
            Err(_) => self.broken = true,
        }
        if !marker {
            return Assembled::Pending;
        }
        // The VP8 frame tag: bit 0 of the first byte is 0 on a keyframe.
        let is_key = self.buf.first().is_some_and(|b| b & 1 == 0);
        if self.broken || self.buf.is_empty() || (self.need_keyframe && !is_key) {
            self.need_keyframe = true;
            self.buf.clear();
            self.broken = false;
            let due = self
                .last_request
                .is_none_or(|t| now.duration_since(t) >= KEYFRAME_REQUEST_EVERY);
            if due {
                self.last_request = Some(now);
                return Assembled::AskKeyframe;
            }
            return Assembled::Dropped;
        }
        self.need_keyframe = false;
        Assembled::Frame(std::mem::take(&mut self.buf))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A packet: descriptor (S bit, partition 0, a 15-bit picture id) then data.
    fn pkt(start: bool, data: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80 | if start { 0x10 } else { 0 }, 0x80, 0x80 | 0x12, 0x34];
        p.extend_from_slice(data);
        p
    }

    #[test]
    fn descriptors_of_every_shape() {
        assert_eq!(
            descriptor(&[0x10, 0xAA]),
            Ok(Descriptor {
                start: true,
                partition: 0,
                header_len: 1
            })
        );
        // X, I with a 7-bit id, L, T/K: 5 bytes.
        assert_eq!(
            descriptor(&[0x93, 0xF0, 0x05, 0x01, 0x20, 0xAA])
                .unwrap()
                .header_len,
            5
        );
        assert_eq!(
            descriptor(&[0x93, 0xF0, 0x05, 0x01, 0x20, 0xAA])
                .unwrap()
                .partition,
            3
        );
        // A 15-bit picture id.
        assert_eq!(descriptor(&pkt(true, &[1])).unwrap().header_len, 4);
        assert_eq!(descriptor(&[]), Err(DescriptorError::Truncated));
        assert_eq!(descriptor(&[0x80]), Err(DescriptorError::Truncated));
        assert_eq!(
            descriptor(&[0x80, 0x80, 0x80]),
            Err(DescriptorError::Truncated)
        );
        assert_eq!(descriptor(&[0x10]), Err(DescriptorError::Empty));
    }

    #[test]
    fn frames_are_assembled_at_the_marker() {
        let now = Instant::now();
        let mut a = FrameAssembler::default();
        // A keyframe (tag bit 0 clear) in three packets.
        assert_eq!(
            a.push(&pkt(true, &[0x10, 1]), false, now),
            Assembled::Pending
        );
        assert_eq!(a.push(&pkt(false, &[2, 3]), false, now), Assembled::Pending);
        assert_eq!(
            a.push(&pkt(false, &[4]), true, now),
            Assembled::Frame(vec![0x10, 1, 2, 3, 4])
        );
        // Then a delta frame (tag bit 0 set) in one.
        assert_eq!(
            a.push(&pkt(true, &[0x11, 9]), true, now),
            Assembled::Frame(vec![0x11, 9])
        );
    }

    #[test]
    fn nothing_is_decoded_before_a_keyframe_and_requests_are_spaced() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::default();
        assert_eq!(
            a.push(&pkt(true, &[0x11]), true, t0),
            Assembled::AskKeyframe
        );
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!(a.push(&pkt(true, &[0x11]), true, t1), Assembled::Dropped);
        let t2 = t0 + KEYFRAME_REQUEST_EVERY;
        assert_eq!(
            a.push(&pkt(true, &[0x11]), true, t2),
            Assembled::AskKeyframe
        );
        assert_eq!(
            a.push(&pkt(true, &[0x10]), true, t2),
            Assembled::Frame(vec![0x10])
        );
    }

    #[test]
    fn a_loss_drops_the_frame_and_waits_for_the_next_keyframe() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::default();
        assert!(matches!(
            a.push(&pkt(true, &[0x10]), true, t0),
            Assembled::Frame(_)
        ));
        // A piece of the next frame is lost.
        assert_eq!(
            a.push(&pkt(true, &[0x11, 1]), false, t0),
            Assembled::Pending
        );
        a.gap();
        assert_eq!(a.push(&pkt(false, &[2]), true, t0), Assembled::AskKeyframe);
        // The delta frames after it refer to the lost one: dropped.
        assert_eq!(a.push(&pkt(true, &[0x11]), true, t0), Assembled::Dropped);
        assert_eq!(
            a.push(&pkt(true, &[0x10, 7]), true, t0),
            Assembled::Frame(vec![0x10, 7])
        );
        // A decoding error also waits for a keyframe.
        a.decode_failed();
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(
            a.push(&pkt(true, &[0x11]), true, t1),
            Assembled::AskKeyframe
        );
    }

    #[test]
    fn a_restart_forgets_the_partial_frame_and_waits_for_a_keyframe() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::default();
        assert_eq!(
            a.push(&pkt(true, &[0x10, 1]), true, t0),
            Assembled::Frame(vec![0x10, 1])
        );
        // Half a keyframe, then the line goes silent and its decoder is closed.
        assert_eq!(
            a.push(&pkt(true, &[0x10, 2]), false, t0),
            Assembled::Pending
        );
        a.restart();
        // A delta frame cannot start a new decoder: dropped, and a keyframe asked for.
        assert_eq!(
            a.push(&pkt(true, &[0x11]), true, t0),
            Assembled::AskKeyframe
        );
        // The keyframe that follows holds nothing of the partial one.
        assert_eq!(
            a.push(&pkt(true, &[0x10, 3]), true, t0),
            Assembled::Frame(vec![0x10, 3])
        );
    }

    #[test]
    fn malformed_and_oversized_frames_are_dropped() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::new(10);
        assert_eq!(a.push(&[0x80], true, t0), Assembled::AskKeyframe);
        assert_eq!(
            a.push(&pkt(true, &[0x10; 8]), false, t0),
            Assembled::Pending
        );
        assert_eq!(
            a.push(&pkt(false, &[0; 8]), true, t0),
            Assembled::Dropped,
            "18 > 10 bytes"
        );
        assert_eq!(
            a.push(&pkt(true, &[0x10; 4]), true, t0),
            Assembled::Frame(vec![0x10; 4])
        );
    }
}
