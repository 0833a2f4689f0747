//! Send-rate control for video. The `webrtc` crate estimates no bandwidth, so each peer's
//! receiver reports drive a loss-based controller (the loss half of Google Congestion
//! Control): heavy loss cuts the rate in proportion, little loss lets it grow 8 % per report,
//! in between it holds. With one encoder shared by the mesh, the encoder follows the slowest
//! peer ([`RateSet::target`]).

use std::collections::HashMap;
use std::hash::Hash;

/// One path's estimate.
#[derive(Clone, Debug)]
pub struct RateController {
    min_kbps: f64,
    max_kbps: f64,
    kbps: f64,
}

impl RateController {
    pub fn new(start_kbps: u32, min_kbps: u32, max_kbps: u32) -> Self {
        Self {
            min_kbps: f64::from(min_kbps),
            max_kbps: f64::from(max_kbps),
            kbps: f64::from(start_kbps),
        }
    }

    pub fn kbps(&self) -> u32 {
        self.kbps.round() as u32
    }

    /// Takes one report's loss fraction (RTCP `fraction_lost`, 0–255 for 0–100 %) and returns
    /// the new target.
    pub fn on_report(&mut self, fraction_lost: u8) -> u32 {
        let loss = f64::from(fraction_lost) / 256.0;
        if loss > 0.10 {
            self.kbps *= 1.0 - 0.5 * loss;
        } else if loss < 0.02 {
            self.kbps *= 1.08;
        }
        self.kbps = self.kbps.clamp(self.min_kbps, self.max_kbps);
        self.kbps()
    }
}

/// Estimates for every peer; the shared encoder runs at the lowest.
#[derive(Debug)]
pub struct RateSet<K> {
    start: u32,
    min: u32,
    max: u32,
    peers: HashMap<K, RateController>,
}

impl<K: Eq + Hash> RateSet<K> {
    pub fn new(start_kbps: u32, min_kbps: u32, max_kbps: u32) -> Self {
        Self {
            start: start_kbps,
            min: min_kbps,
            max: max_kbps,
            peers: HashMap::new(),
        }
    }

    pub fn on_report(&mut self, peer: K, fraction_lost: u8) -> u32 {
        let (start, min, max) = (self.start, self.min, self.max);
        self.peers
            .entry(peer)
            .or_insert_with(|| RateController::new(start, min, max))
            .on_report(fraction_lost);
        self.target()
    }

    pub fn remove(&mut self, peer: &K) -> u32 {
        self.peers.remove(peer);
        self.target()
    }

    /// The rate the shared encoder should use.
    pub fn target(&self) -> u32 {
        self.peers
            .values()
            .map(RateController::kbps)
            .min()
            .unwrap_or(self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_loss_cuts_quickly_and_a_clean_path_recovers() {
        let mut c = RateController::new(800, 50, 1500);
        // 20 % loss (51/256): below 300 kbit/s within a handful of reports (~1 s each).
        let mut reports = 0;
        while c.on_report(51) >= 300 {
            reports += 1;
            assert!(
                reports < 10,
                "still at {} after {reports} reports",
                c.kbps()
            );
        }
        assert!(reports <= 10);
        // Moderate loss holds the rate.
        let held = c.kbps();
        assert_eq!(c.on_report(13), held, "5 % loss holds");
        // Clean reports climb back, but never past the maximum.
        for _ in 0..100 {
            c.on_report(0);
        }
        assert_eq!(c.kbps(), 1500);
        // Total loss never goes below the floor.
        for _ in 0..100 {
            c.on_report(255);
        }
        assert_eq!(c.kbps(), 50);
    }

    #[test]
    fn the_shared_encoder_follows_the_slowest_peer() {
        let mut set = RateSet::new(800, 50, 1500);
        assert_eq!(set.target(), 800);
        set.on_report("fast", 0);
        for _ in 0..5 {
            set.on_report("slow", 80);
        }
        let slow = set.target();
        assert!(slow < 400, "{slow}");
        assert!(set.peers["fast"].kbps() > 800);
        assert_eq!(
            set.remove(&"slow"),
            set.peers["fast"].kbps(),
            "the slow one left"
        );
    }
}
