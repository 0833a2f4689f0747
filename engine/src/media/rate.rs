//! Congestion control for video. The `webrtc` crate estimates no bandwidth, so Parley does it
//! in two halves, after Google Congestion Control's receive-side (REMB) mode:
//!
//! - The **receiver** of each video stream runs a [`CongestionDetector`]: over 500 ms windows
//!   (longer when fewer than 40 packets arrived)
//!   it measures what arrives (bit rate), what never arrived the first time (loss, before any
//!   retransmission hides it) and how much the one-way delay rose above its recent minimum (a
//!   queue building up). On loss above 20 % or 100 ms of queuing it tells the sender an
//!   absolute ceiling, 85 % of what actually arrived (sent as RTCP REMB). One such message
//!   getting through is enough: it does not depend on a steady stream of feedback crossing a
//!   congested path.
//! - The **sender** keeps a [`RateController`] per peer: a receiver's ceiling applies at once;
//!   receiver reports with heavy loss cut in proportion; with fresh feedback, little loss and
//!   no recent ceiling it grows 8 % a second; with no feedback at all for 2 s (everything back
//!   from the peer is being lost) it backs off by 30 % a second. With one encoder shared by
//!   the mesh, the encoder follows the slowest peer ([`RateSet::target`]).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// No feedback for this long while connected means the way back is congested too.
const FEEDBACK_TIMEOUT: Duration = Duration::from_secs(2);
/// A receiver's ceiling holds growth off for this long.
const LIMIT_HOLD: Duration = Duration::from_secs(2);

/// One path's estimate.
#[derive(Clone, Debug)]
pub struct RateController {
    min_kbps: f64,
    max_kbps: f64,
    kbps: f64,
    last_feedback: Instant,
    last_limit: Option<Instant>,
    last_loss: f64,
}

impl RateController {
    pub fn new(start_kbps: u32, min_kbps: u32, max_kbps: u32, now: Instant) -> Self {
        Self {
            min_kbps: f64::from(min_kbps),
            max_kbps: f64::from(max_kbps),
            kbps: f64::from(start_kbps),
            last_feedback: now,
            last_limit: None,
            last_loss: 0.0,
        }
    }

    pub fn kbps(&self) -> u32 {
        self.kbps.round() as u32
    }

    fn clamp(&mut self) {
        self.kbps = self.kbps.clamp(self.min_kbps, self.max_kbps);
    }

    /// A receiver report: its loss fraction (RTCP `fraction_lost`, 0–255 for 0–100 %).
    pub fn on_report(&mut self, fraction_lost: u8, now: Instant) {
        let loss = f64::from(fraction_lost) / 256.0;
        self.last_feedback = now;
        self.last_loss = loss;
        if loss > 0.10 {
            self.kbps *= 1.0 - 0.5 * loss;
            self.clamp();
        }
    }

    /// The receiver's ceiling (it saw congestion).
    pub fn on_limit(&mut self, kbps: u32, now: Instant) {
        self.last_feedback = now;
        self.last_limit = Some(now);
        self.kbps = self.kbps.min(f64::from(kbps));
        self.clamp();
    }

    /// Once a second: grow on a clean path, back off when the peer has gone quiet.
    pub fn tick(&mut self, now: Instant) {
        let quiet = now.saturating_duration_since(self.last_feedback);
        if quiet >= FEEDBACK_TIMEOUT {
            self.kbps *= 0.7;
        } else if self.last_loss < 0.02
            && self
                .last_limit
                .is_none_or(|t| now.saturating_duration_since(t) >= LIMIT_HOLD)
        {
            self.kbps *= 1.08;
        }
        self.clamp();
    }

    pub fn set_max(&mut self, max_kbps: u32) {
        self.max_kbps = f64::from(max_kbps).max(self.min_kbps);
        self.clamp();
    }
}

/// Estimates for every peer; the shared encoders run at the lowest.
#[derive(Debug)]
pub struct RateSet<K> {
    start: u32,
    min: u32,
    max: u32,
    peers: HashMap<K, RateController>,
}

impl<K: Eq + Hash + Clone> RateSet<K> {
    pub fn new(start_kbps: u32, min_kbps: u32, max_kbps: u32) -> Self {
        Self {
            start: start_kbps,
            min: min_kbps,
            max: max_kbps,
            peers: HashMap::new(),
        }
    }

    /// A peer's media connection is up: its estimate starts (at the current target, so a
    /// newcomer does not reset the others).
    pub fn connect(&mut self, peer: K, now: Instant) {
        let start = self.target();
        let (min, max) = (self.min, self.max);
        self.peers
            .entry(peer)
            .or_insert_with(|| RateController::new(start, min, max, now));
    }

    pub fn on_report(&mut self, peer: &K, fraction_lost: u8, now: Instant) {
        if let Some(c) = self.peers.get_mut(peer) {
            c.on_report(fraction_lost, now);
        }
    }

    pub fn on_limit(&mut self, peer: &K, kbps: u32, now: Instant) {
        if let Some(c) = self.peers.get_mut(peer) {
            c.on_limit(kbps, now);
        }
    }

    pub fn tick(&mut self, now: Instant) {
        for c in self.peers.values_mut() {
            c.tick(now);
        }
    }

    /// Changes the ceiling (e.g. while a screen is shared, more may be sent).
    pub fn set_max(&mut self, max_kbps: u32) {
        self.max = max_kbps;
        for c in self.peers.values_mut() {
            c.set_max(max_kbps);
        }
    }

    pub fn remove(&mut self, peer: &K) {
        self.peers.remove(peer);
    }

    /// One peer's estimate (kbit/s), when it is connected.
    pub fn peer_kbps(&self, peer: &K) -> Option<u32> {
        self.peers.get(peer).map(RateController::kbps)
    }

    /// The rate the shared encoders should use, together.
    pub fn target(&self) -> u32 {
        self.peers
            .values()
            .map(RateController::kbps)
            .min()
            .unwrap_or(self.start.min(self.max))
    }
}

/// Receive side of one video stream: see the module documentation.
#[derive(Debug, Default)]
pub struct CongestionDetector {
    window_start: Option<Instant>,
    /// The arrival clock's origin and the stream's first extended RTP timestamp.
    origin: Option<(Instant, i64)>,
    last_ts: u32,
    ext_ts: i64,
    highest_seq: Option<u16>,
    received: u32,
    missing: u32,
    bytes: u64,
    /// Smallest (arrival − send) delay this window, in ms.
    window_min_delay: Option<f64>,
    /// Each window's smallest delay over the last 10 s: the baseline is their minimum.
    minima: VecDeque<(Instant, f64)>,
}

/// What the detector saw in a window that ended congested.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Congestion {
    /// The ceiling to send back (kbit/s): 85 % of what arrived.
    pub limit_kbps: u32,
    pub incoming_kbps: u32,
    pub loss: f64,
    pub queuing_ms: f64,
}

impl CongestionDetector {
    const WINDOW: Duration = Duration::from_millis(500);
    const MIN_PACKETS: u32 = 40;
    /// First-time loss above this is congestion (random loss of a few % is not).
    const LOSS: f64 = 0.20;

    /// One RTP packet as it arrives (retransmissions included: they count as bytes, not as
    /// new packets). Returns a congestion verdict when a window closes congested.
    pub fn on_packet(
        &mut self,
        seq: u16,
        rtp_ts: u32,
        clock_hz: u32,
        size: usize,
        now: Instant,
    ) -> Option<Congestion> {
        let start = *self.window_start.get_or_insert(now);
        // Loss: sequence numbers skipped over; older packets (reordered, retransmitted) do
        // not count again.
        match self.highest_seq {
            None => {
                self.highest_seq = Some(seq);
                self.received += 1;
            }
            Some(h) => {
                let ahead = seq.wrapping_sub(h);
                if ahead != 0 && ahead < 0x8000 {
                    self.missing += u32::from(ahead - 1);
                    self.received += 1;
                    self.highest_seq = Some(seq);
                }
            }
        }
        self.bytes += size as u64;
        // Delay: arrival time minus send time (the RTP clock), relative to the first packet.
        let diff = rtp_ts.wrapping_sub(self.last_ts) as i32;
        if self.origin.is_none() {
            self.ext_ts = i64::from(rtp_ts);
            self.origin = Some((now, self.ext_ts));
        } else {
            self.ext_ts += i64::from(diff);
        }
        self.last_ts = rtp_ts;
        if let Some((t0, ts0)) = self.origin {
            let sent_ms = (self.ext_ts - ts0) as f64 * 1000.0 / f64::from(clock_hz.max(1));
            let arrived_ms = now.saturating_duration_since(t0).as_secs_f64() * 1000.0;
            let delay = arrived_ms - sent_ms;
            self.window_min_delay = Some(self.window_min_delay.map_or(delay, |m| m.min(delay)));
        }
        let elapsed = now.saturating_duration_since(start);
        // A window needs enough packets for its loss figure to mean something (at 5 % random
        // loss, 3 of 20 lost happens often; 9 of 40 hardly ever).
        if elapsed < Self::WINDOW
            || (self.received + self.missing < Self::MIN_PACKETS && elapsed < Self::WINDOW * 4)
        {
            return None;
        }
        // Close the window.
        let incoming_kbps = self.bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1000.0;
        let total = self.received + self.missing;
        let loss = if total == 0 {
            0.0
        } else {
            f64::from(self.missing) / f64::from(total)
        };
        let mut queuing_ms = 0.0;
        if let Some(m) = self.window_min_delay {
            self.minima.push_back((now, m));
            while self
                .minima
                .front()
                .is_some_and(|(t, _)| now.saturating_duration_since(*t) > Duration::from_secs(10))
            {
                self.minima.pop_front();
            }
            let base = self
                .minima
                .iter()
                .map(|(_, d)| *d)
                .fold(f64::INFINITY, f64::min);
            queuing_ms = m - base;
        }
        self.window_start = Some(now);
        (self.received, self.missing, self.bytes) = (0, 0, 0);
        self.window_min_delay = None;
        (loss > Self::LOSS || queuing_ms > 100.0).then(|| Congestion {
            limit_kbps: (incoming_kbps * 0.85).round().max(1.0) as u32,
            incoming_kbps: incoming_kbps.round() as u32,
            loss,
            queuing_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn heavy_loss_cuts_quickly_and_a_clean_path_recovers() {
        let t0 = Instant::now();
        let mut c = RateController::new(800, 50, 1500, t0);
        // 20 % loss (51/256): below 300 kbit/s within a handful of reports (~1 s each).
        let mut reports = 0;
        while c.kbps() >= 300 {
            reports += 1;
            c.on_report(51, secs(t0, f64::from(reports)));
            assert!(
                reports <= 10,
                "still at {} after {reports} reports",
                c.kbps()
            );
        }
        // Moderate loss holds the rate.
        let held = c.kbps();
        let t = secs(t0, 20.0);
        c.on_report(13, t);
        c.tick(t);
        assert_eq!(c.kbps(), held, "5 % loss holds");
        // Clean reports and ticks climb back, but never past the maximum.
        for i in 0..100 {
            let t = secs(t0, 21.0 + f64::from(i));
            c.on_report(0, t);
            c.tick(t);
        }
        assert_eq!(c.kbps(), 1500);
        // Total loss never goes below the floor.
        for i in 0..100 {
            c.on_report(255, secs(t0, 200.0 + f64::from(i)));
        }
        assert_eq!(c.kbps(), 50);
    }

    #[test]
    fn a_receiver_ceiling_applies_at_once_and_holds_growth_off() {
        let t0 = Instant::now();
        let mut c = RateController::new(800, 50, 1500, t0);
        c.on_limit(250, secs(t0, 1.0));
        assert_eq!(c.kbps(), 250);
        c.on_report(0, secs(t0, 1.5));
        c.tick(secs(t0, 2.0));
        assert_eq!(c.kbps(), 250, "no growth right after a ceiling");
        c.on_report(0, secs(t0, 3.5));
        c.tick(secs(t0, 4.0));
        assert_eq!(c.kbps(), 270, "then 8 % a second");
        // A higher ceiling does not raise the rate.
        c.on_limit(900, secs(t0, 4.5));
        assert_eq!(c.kbps(), 270);
    }

    #[test]
    fn silence_from_the_peer_backs_off() {
        let t0 = Instant::now();
        let mut c = RateController::new(800, 50, 1500, t0);
        c.tick(secs(t0, 1.0));
        assert!(c.kbps() > 800, "fresh feedback (connection start): grows");
        let before = c.kbps();
        c.tick(secs(t0, 2.5));
        assert_eq!(c.kbps(), (f64::from(before) * 0.7).round() as u32);
        for i in 0..20 {
            c.tick(secs(t0, 3.0 + f64::from(i)));
        }
        assert_eq!(c.kbps(), 50);
    }

    #[test]
    fn the_shared_encoder_follows_the_slowest_peer() {
        let t0 = Instant::now();
        let mut set = RateSet::new(800, 50, 1500);
        assert_eq!(set.target(), 800, "nobody connected yet");
        set.connect("fast", t0);
        set.connect("slow", t0);
        for i in 1..=5 {
            let t = secs(t0, f64::from(i));
            set.on_report(&"fast", 0, t);
            set.on_report(&"slow", 80, t);
            set.tick(t);
        }
        let slow = set.target();
        assert!(slow < 400, "{slow}");
        assert!(set.peers["fast"].kbps() > 800);
        set.remove(&"slow");
        assert_eq!(set.target(), set.peers["fast"].kbps(), "the slow one left");
        set.set_max(600);
        assert_eq!(set.target(), 600);
    }

    /// Feeds `seconds` of a 30 fps stream of `kbps` through a link of `cap_kbps` with a
    /// 200 ms tail-drop queue; returns the verdicts.
    fn through_a_cap(kbps: f64, cap_kbps: f64, seconds: f64) -> Vec<Congestion> {
        let t0 = Instant::now();
        let mut d = CongestionDetector::default();
        let mut out = Vec::new();
        let mut free_at = 0.0f64; // s
        let (mut seq, frame_bytes) = (0u16, kbps * 1000.0 / 8.0 / 30.0);
        let packets = (frame_bytes / 1200.0).ceil() as usize;
        for f in 0..(seconds * 30.0) as u32 {
            let sent = f64::from(f) / 30.0;
            for _ in 0..packets {
                seq = seq.wrapping_add(1);
                let size = frame_bytes / packets as f64;
                let start = free_at.max(sent);
                if start - sent > 0.2 {
                    continue; // dropped
                }
                free_at = start + size * 8.0 / (cap_kbps * 1000.0);
                let ts = (sent * 90_000.0) as u32;
                if let Some(c) = d.on_packet(seq, ts, 90_000, size as usize, secs(t0, free_at)) {
                    out.push(c);
                }
            }
        }
        out
    }

    #[test]
    fn a_capped_link_is_seen_and_the_ceiling_is_below_the_cap() {
        let verdicts = through_a_cap(800.0, 300.0, 4.0);
        let first = verdicts.first().expect("congestion seen");
        assert!(
            first.limit_kbps < 300 && first.limit_kbps > 150,
            "{first:?}"
        );
        // Within the cap nothing is reported.
        assert!(through_a_cap(250.0, 300.0, 4.0).is_empty());
    }

    #[test]
    fn a_growing_queue_is_seen_before_loss() {
        // 5 % over the cap: the 200 ms queue fills over ~4 s before anything is dropped.
        let verdicts = through_a_cap(315.0, 300.0, 5.0);
        let first = verdicts.first().expect("queuing seen");
        assert!(first.queuing_ms > 100.0 && first.loss < 0.02, "{first:?}");
    }

    #[test]
    fn constant_delay_and_light_random_loss_are_not_congestion() {
        use rand::{Rng as _, SeedableRng as _};
        let t0 = Instant::now();
        let mut d = CongestionDetector::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // 60 s of 45 packets a second with 5 % random loss and 50 ms of constant delay.
        let mut verdicts = 0;
        for i in 0..2700u32 {
            if rng.gen_bool(0.05) {
                continue;
            }
            let t = secs(t0, f64::from(i) / 45.0 + 0.05);
            verdicts += usize::from(d.on_packet(i as u16, i * 2000, 90_000, 1000, t).is_some());
        }
        assert_eq!(verdicts, 0);
    }
}
