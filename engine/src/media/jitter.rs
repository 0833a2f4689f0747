//! Audio jitter buffer: packets go in as they arrive (late, early, out of order, twice) and
//! come out one 20 ms frame per 20 ms of playout, in sequence. Playout starts a target delay
//! after the first packet; the target follows the measured arrival jitter (RFC 3550's
//! estimate: twice the jitter plus a frame, 40–200 ms). A packet missing at its turn is
//! recovered from the next packet's in-band FEC when that is already here, else concealed;
//! after a few concealed frames in a row (the sender went quiet, e.g. muted) playout pauses
//! and starts afresh with the next packet. A buffer grown well past its target (a burst after
//! a stall) drops its oldest packets to catch up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const FRAME: Duration = Duration::from_millis(20);
const MIN_TARGET: Duration = Duration::from_millis(40);
const MAX_TARGET: Duration = Duration::from_millis(200);
/// Concealed frames in a row before playout pauses.
const MAX_CONCEALED: u32 = 3;

/// What to play for the next 20 ms.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout {
    /// Decode this packet.
    Packet(Vec<u8>),
    /// The packet is lost; here is the next one, whose FEC carries a copy (decode it as FEC).
    Fec(Vec<u8>),
    /// The packet is lost and nothing can stand in: conceal.
    Conceal,
    /// Nothing to play (not started, or paused after the sender went quiet).
    Silence,
}

pub struct JitterBuffer {
    packets: BTreeMap<u64, Vec<u8>>,
    /// Next sequence number to play (extended); None until playout starts.
    next: Option<u64>,
    highest: Option<u64>,
    /// When the first packet after a pause arrived: playout starts a target later.
    primed_at: Option<Instant>,
    concealed: u32,
    /// RFC 3550 jitter estimate (seconds) and the last (arrival, rtp time) pair.
    jitter: f64,
    last: Option<(Instant, u32)>,
    clock_hz: u32,
}

impl JitterBuffer {
    pub fn new(clock_hz: u32) -> Self {
        Self {
            packets: BTreeMap::new(),
            next: None,
            highest: None,
            primed_at: None,
            concealed: 0,
            jitter: 0.0,
            last: None,
            clock_hz,
        }
    }

    /// The delay playout aims for.
    pub fn target(&self) -> Duration {
        (Duration::from_secs_f64(2.0 * self.jitter) + FRAME).clamp(MIN_TARGET, MAX_TARGET)
    }

    pub fn push(&mut self, seq: u16, rtp_ts: u32, payload: Vec<u8>, now: Instant) {
        if let Some((t, ts)) = self.last {
            // Difference between arrival spacing and send spacing.
            let arrival = now.saturating_duration_since(t).as_secs_f64();
            let sent = f64::from(rtp_ts.wrapping_sub(ts) as i32) / f64::from(self.clock_hz);
            let d = (arrival - sent).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last = Some((now, rtp_ts));
        let ext = super::reorder::extend_seq(&mut self.highest, seq);
        if self.next.is_some_and(|n| ext < n) {
            return; // its turn has passed
        }
        if self.primed_at.is_none() && self.next.is_none() {
            self.primed_at = Some(now);
        }
        self.packets.entry(ext).or_insert(payload);
    }

    /// The next 20 ms; call once per 20 ms of playout.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let next = match self.next {
            Some(n) => n,
            None => {
                let (Some(primed), Some((&first, _))) =
                    (self.primed_at, self.packets.iter().next())
                else {
                    return Playout::Silence;
                };
                if now.saturating_duration_since(primed) < self.target() {
                    return Playout::Silence;
                }
                self.next = Some(first);
                self.primed_at = None;
                first
            }
        };
        // Grown far past the target (a burst after a stall): drop the oldest to catch up.
        let frames_held = self.packets.len() as u32;
        let limit = (self.target().as_millis() / FRAME.as_millis()) as u32 + 3;
        let mut next = next;
        if frames_held > limit {
            let drop = frames_held - limit;
            for _ in 0..drop {
                if let Some((&k, _)) = self.packets.iter().next() {
                    self.packets.remove(&k);
                    next = next.max(k + 1);
                }
            }
        }
        self.next = Some(next + 1);
        if let Some(p) = self.packets.remove(&next) {
            self.concealed = 0;
            return Playout::Packet(p);
        }
        if self.packets.is_empty() {
            self.concealed += 1;
            if self.concealed > MAX_CONCEALED {
                // The sender went quiet: pause; the next packet starts playout afresh.
                self.next = None;
                self.concealed = 0;
                return Playout::Silence;
            }
            return Playout::Conceal;
        }
        self.concealed = 0;
        match self.packets.get(&(next + 1)) {
            Some(p) => Playout::Fec(p.clone()),
            None => Playout::Conceal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    fn pkt(seq: u16) -> Vec<u8> {
        vec![seq as u8]
    }

    /// Plays `ticks` frames from `start_ms`, one per 20 ms.
    fn play(jb: &mut JitterBuffer, t0: Instant, start_ms: u64, ticks: u64) -> Vec<Playout> {
        (0..ticks)
            .map(|i| jb.pop(ms(t0, start_ms + i * 20)))
            .collect()
    }

    #[test]
    fn starts_after_the_target_and_plays_in_order() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(48_000);
        // Arrive out of order.
        jb.push(2, 1920, pkt(2), ms(t0, 10));
        jb.push(1, 960, pkt(1), ms(t0, 12));
        jb.push(3, 2880, pkt(3), ms(t0, 40));
        assert_eq!(jb.pop(ms(t0, 20)), Playout::Silence, "still priming");
        let out = play(&mut jb, t0, 60, 3);
        assert_eq!(
            out,
            [
                Playout::Packet(pkt(1)),
                Playout::Packet(pkt(2)),
                Playout::Packet(pkt(3))
            ]
        );
    }

    #[test]
    fn a_lost_packet_is_recovered_from_the_next_ones_fec_or_concealed() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(48_000);
        for seq in [1u16, 2, 4, 5, 8] {
            jb.push(
                seq,
                u32::from(seq) * 960,
                pkt(seq),
                ms(t0, u64::from(seq) * 20),
            );
        }
        let out = play(&mut jb, t0, 200, 8);
        assert_eq!(
            out,
            [
                Playout::Packet(pkt(1)),
                Playout::Packet(pkt(2)),
                Playout::Fec(pkt(4)),
                Playout::Packet(pkt(4)),
                Playout::Packet(pkt(5)),
                Playout::Conceal,
                Playout::Fec(pkt(8)),
                Playout::Packet(pkt(8)),
            ]
        );
    }

    #[test]
    fn late_packets_within_the_target_still_play_and_too_late_ones_are_dropped() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(48_000);
        jb.push(1, 960, pkt(1), ms(t0, 0));
        assert_eq!(play(&mut jb, t0, 40, 1), [Playout::Packet(pkt(1))]);
        // Packet 2 is 15 ms late: it is in before its turn at 60 ms.
        jb.push(2, 1920, pkt(2), ms(t0, 35));
        assert_eq!(play(&mut jb, t0, 60, 1), [Playout::Packet(pkt(2))]);
        // Packet 3 misses its turn (concealed) and is dropped when it shows up.
        assert_eq!(play(&mut jb, t0, 80, 1), [Playout::Conceal]);
        jb.push(3, 2880, pkt(3), ms(t0, 90));
        jb.push(4, 3840, pkt(4), ms(t0, 95));
        assert_eq!(play(&mut jb, t0, 100, 1), [Playout::Packet(pkt(4))]);
    }

    #[test]
    fn a_quiet_sender_pauses_playout_and_the_next_talk_spurt_starts_afresh() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(48_000);
        jb.push(1, 960, pkt(1), ms(t0, 0));
        let out = play(&mut jb, t0, 40, 6);
        assert_eq!(out[0], Playout::Packet(pkt(1)));
        assert_eq!(
            &out[1..4],
            [Playout::Conceal, Playout::Conceal, Playout::Conceal]
        );
        assert_eq!(&out[4..], [Playout::Silence, Playout::Silence]);
        // Muted for a while, then talking again (sequence numbers went on at the sender).
        jb.push(50, 50 * 960, pkt(50), ms(t0, 1000));
        assert_eq!(jb.pop(ms(t0, 1010)), Playout::Silence, "priming again");
        assert_eq!(jb.pop(ms(t0, 1045)), Playout::Packet(pkt(50)));
    }

    #[test]
    fn a_burst_after_a_stall_is_caught_up_and_jitter_raises_the_target() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(48_000);
        assert_eq!(jb.target(), MIN_TARGET);
        // 30 packets that should have come over 600 ms arrive at once.
        for seq in 1..=30u16 {
            jb.push(seq, u32::from(seq) * 960, pkt(seq), ms(t0, 600));
        }
        assert!(jb.target() > MIN_TARGET, "jitter seen: {:?}", jb.target());
        let out = play(&mut jb, t0, 900, 1);
        let Playout::Packet(first) = &out[0] else {
            panic!("{out:?}");
        };
        assert!(
            first[0] > 10,
            "old packets dropped to catch up (played {})",
            first[0]
        );
    }
}
