//! Puts RTP packets back in sequence order, waiting a little for late and retransmitted (NACK)
//! packets before declaring a gap. Without it a retransmission arrives "too late" and every
//! lost packet costs a whole video frame plus a keyframe request.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What comes out, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Ordered<T> {
    Packet(T),
    /// Packets were given up on before this point.
    Gap,
}

/// Extends a 16-bit RTP sequence number to 64 bits, next to the highest seen so far (which it
/// updates): wrap-arounds count up, late packets land just below.
pub(crate) fn extend_seq(highest: &mut Option<u64>, seq: u16) -> u64 {
    match *highest {
        None => {
            let ext = (1u64 << 32) + u64::from(seq);
            *highest = Some(ext);
            ext
        }
        Some(h) => {
            let diff = i64::from(seq.wrapping_sub(h as u16) as i16);
            let ext = (h as i64 + diff) as u64;
            *highest = Some(h.max(ext));
            ext
        }
    }
}

pub struct Reorder<T> {
    wait: Duration,
    max_held: usize,
    highest: Option<u64>,
    next: Option<u64>,
    held: BTreeMap<u64, (Instant, T)>,
    /// Holes already asked for: when, and how many times.
    asked: BTreeMap<u64, (Instant, u8)>,
}

/// Each hole is asked for (NACKed) when first seen and once more this much later, then never
/// again: unbounded re-asking turns loss on a congested link into a retransmission storm.
const NACK_RETRY: Duration = Duration::from_millis(120);
const NACK_TRIES: u8 = 2;
/// Holes larger than this are a burst a keyframe repairs better than retransmissions.
const NACK_MAX_HOLE: u64 = 100;

impl<T> Reorder<T> {
    /// `wait`: how long a gap may stay open (≈ one retransmission round trip and a bit).
    pub fn new(wait: Duration, max_held: usize) -> Self {
        Self {
            wait,
            max_held,
            highest: None,
            next: None,
            held: BTreeMap::new(),
            asked: BTreeMap::new(),
        }
    }

    /// The missing sequence numbers to ask the sender for now (see [`NACK_RETRY`]).
    pub fn to_nack(&mut self, now: Instant) -> Vec<u16> {
        let (Some(next), Some(highest)) = (self.next, self.highest) else {
            return Vec::new();
        };
        self.asked = self.asked.split_off(&next);
        if highest.saturating_sub(next) > NACK_MAX_HOLE {
            return Vec::new();
        }
        let mut out = Vec::new();
        for seq in next..highest {
            if self.held.contains_key(&seq) {
                continue;
            }
            let entry = self.asked.entry(seq).or_insert((now, 0));
            if entry.1 == 0 || (entry.1 < NACK_TRIES && now.duration_since(entry.0) >= NACK_RETRY) {
                *entry = (now, entry.1 + 1);
                out.push(seq as u16);
            }
        }
        out
    }

    /// Packets held, waiting for the ones before them.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    fn extend(&mut self, seq: u16) -> u64 {
        extend_seq(&mut self.highest, seq)
    }

    /// Takes one packet; returns what can be released now.
    pub fn push(&mut self, seq: u16, packet: T, now: Instant) -> Vec<Ordered<T>> {
        let ext = self.extend(seq);
        let next = *self.next.get_or_insert(ext);
        if ext < next {
            return Vec::new(); // duplicate, or given up on already
        }
        self.held.entry(ext).or_insert((now, packet));
        self.release(now)
    }

    fn release(&mut self, now: Instant) -> Vec<Ordered<T>> {
        let mut out = Vec::new();
        while let Some(next) = self.next {
            if let Some((_, p)) = self.held.remove(&next) {
                out.push(Ordered::Packet(p));
                self.next = Some(next + 1);
                continue;
            }
            // `next` is missing: give up on it when the oldest held packet waited too long.
            let Some((&first, (since, _))) = self.held.iter().next() else {
                break;
            };
            if now.duration_since(*since) >= self.wait || self.held.len() > self.max_held {
                out.push(Ordered::Gap);
                self.next = Some(first);
                continue;
            }
            break;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(out: Vec<Ordered<u16>>) -> Vec<Option<u16>> {
        out.into_iter()
            .map(|o| match o {
                Ordered::Packet(p) => Some(p),
                Ordered::Gap => None,
            })
            .collect()
    }

    #[test]
    fn a_late_retransmission_fills_its_hole() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut r = Reorder::new(Duration::from_millis(150), 100);
        assert_eq!(packets(r.push(10, 10, ms(0))), [Some(10)]);
        assert!(r.push(12, 12, ms(5)).is_empty(), "11 is missing: wait");
        assert!(r.push(13, 13, ms(10)).is_empty());
        assert_eq!(
            packets(r.push(11, 11, ms(100))),
            [Some(11), Some(12), Some(13)],
            "the retransmission arrives in time"
        );
        assert!(r.push(11, 11, ms(110)).is_empty(), "a duplicate is dropped");
    }

    #[test]
    fn holes_are_asked_for_twice_at_most() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut r = Reorder::new(Duration::from_millis(300), 100);
        r.push(10, 10, ms(0));
        assert!(r.to_nack(ms(0)).is_empty());
        r.push(13, 13, ms(5));
        assert_eq!(
            r.to_nack(ms(5)),
            [11, 12],
            "a new hole is asked for at once"
        );
        r.push(14, 14, ms(50));
        assert!(r.to_nack(ms(50)).is_empty(), "not again so soon");
        r.push(12, 12, ms(100));
        assert_eq!(
            r.to_nack(ms(130)),
            [11],
            "once more for what is still missing"
        );
        assert!(r.to_nack(ms(400)).is_empty(), "and never a third time");
    }

    #[test]
    fn a_hole_that_never_fills_is_reported_once_the_wait_is_over() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut r = Reorder::new(Duration::from_millis(150), 100);
        r.push(65534, 1, ms(0));
        assert!(
            r.push(0, 3, ms(10)).is_empty(),
            "65535 missing (across the wrap)"
        );
        assert_eq!(packets(r.push(1, 4, ms(200))), [None, Some(3), Some(4)]);
        assert!(r.push(65535, 2, ms(210)).is_empty(), "too late now");
        assert_eq!(packets(r.push(2, 5, ms(220))), [Some(5)]);
    }
}
