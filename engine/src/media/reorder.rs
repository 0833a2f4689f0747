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

pub struct Reorder<T> {
    wait: Duration,
    max_held: usize,
    highest: Option<u64>,
    next: Option<u64>,
    held: BTreeMap<u64, (Instant, T)>,
}

impl<T> Reorder<T> {
    /// `wait`: how long a gap may stay open (≈ one retransmission round trip and a bit).
    pub fn new(wait: Duration, max_held: usize) -> Self {
        Self {
            wait,
            max_held,
            highest: None,
            next: None,
            held: BTreeMap::new(),
        }
    }

    /// Extends a 16-bit sequence number to 64 bits, next to the highest seen.
    fn extend(&mut self, seq: u16) -> u64 {
        match self.highest {
            None => {
                let ext = (1u64 << 32) + u64::from(seq);
                self.highest = Some(ext);
                ext
            }
            Some(h) => {
                let diff = i64::from(seq.wrapping_sub(h as u16) as i16);
                let ext = (h as i64 + diff) as u64;
                if ext > h {
                    self.highest = Some(ext);
                }
                ext
            }
        }
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
