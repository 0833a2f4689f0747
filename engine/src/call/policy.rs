//! The call's small decisions, pure and tested: when a keyframe may be sent, how the video
//! estimate is split between camera and screen, and what a receiver's ceiling for one track
//! means for all our video to it.

use std::time::{Duration, Instant};

/// Keyframes on request at most this often, and this often while a peer has just connected.
pub const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(1000);
pub const NEW_PEER_KEYFRAME_INTERVAL: Duration = Duration::from_millis(150);
/// How long after a connection its keyframe requests count as a new peer's.
pub const NEW_PEER_WINDOW: Duration = Duration::from_millis(2000);
/// No video encoder is set below this (kbit/s).
pub const MIN_VIDEO_KBPS: u32 = 30;

/// When an encoder answers keyframe requests. On a lossy or capped link every keyframe is
/// large, and a storm of them would starve the picture: at most one a second. Just after a
/// peer connects, quicker: the keyframe sent at "connected" can reach it before it reads the
/// track, and its first picture then waited for the next allowed one (the join benchmark saw
/// first frames up to a second after DTLS).
#[derive(Debug)]
pub struct KeyframeGate {
    pending: bool,
    last: Option<Instant>,
    fast_until: Option<Instant>,
}

impl Default for KeyframeGate {
    fn default() -> Self {
        Self {
            pending: true,
            last: None,
            fast_until: None,
        }
    }
}

impl KeyframeGate {
    /// Someone asked for a keyframe (or the picture restarts after a pause).
    pub fn request(&mut self) {
        self.pending = true;
    }

    /// A peer connected: it needs a keyframe, and its requests are answered quickly for a
    /// while.
    pub fn new_peer(&mut self, now: Instant) {
        self.fast_until = Some(now + NEW_PEER_WINDOW);
        self.pending = true;
    }

    /// Whether the frame encoded at `now` must be a keyframe.
    pub fn force(&mut self, now: Instant) -> bool {
        let interval = match self.fast_until {
            Some(t) if now < t => NEW_PEER_KEYFRAME_INTERVAL,
            _ => KEYFRAME_MIN_INTERVAL,
        };
        let due = self.last.is_none_or(|t| now.duration_since(t) >= interval);
        if self.pending && due {
            self.pending = false;
            self.last = Some(now);
            return true;
        }
        false
    }
}

/// How the video estimate for all peers is spent (kbit/s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The encoders' targets (never below [`MIN_VIDEO_KBPS`]).
    pub camera: u32,
    pub screen: u32,
    /// What each sending track counts for (0 when it is not sending): the split a
    /// receiver's per-track ceiling is read against.
    pub split: (u32, u32),
}

/// Splits `total` between camera and screen: a share gets two thirds (text needs the bits
/// more than a face), the camera the rest; each within its own ceiling.
pub fn allocate(
    total: u32,
    camera_max: u32,
    screen_max: u32,
    camera_on: bool,
    sharing: bool,
) -> Allocation {
    let (camera, screen) = match (sharing, camera_on) {
        (true, true) => {
            let screen = (total * 2 / 3).min(screen_max);
            (total.saturating_sub(screen).min(camera_max), screen)
        }
        (true, false) => (camera_max.min(total), total.min(screen_max)),
        _ => (total.min(camera_max), screen_max.min(total)),
    };
    Allocation {
        camera: camera.max(MIN_VIDEO_KBPS),
        screen: screen.max(MIN_VIDEO_KBPS),
        split: (
            if camera_on { camera } else { 0 },
            if sharing { screen } else { 0 },
        ),
    }
}

/// A receiver asked for at most `kbps` on a track that gets `share` of our `split`: the same
/// ceiling for all our video to it, scaled up by the track's share (a track that gets almost
/// nothing counts as a twentieth, so one silent track cannot stall the rest).
pub fn total_limit(kbps: u32, share: u32, split: (u32, u32)) -> u32 {
    let total = (split.0 + split.1).max(1);
    let limit = u64::from(kbps) * u64::from(total) / u64::from(share.max(total / 20).max(1));
    limit.min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframes_answered_once_a_second_and_quickly_for_a_new_peer() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut g = KeyframeGate::default();
        assert!(g.force(t0), "the first frame is a keyframe");
        assert!(!g.force(ms(10)), "no request, no keyframe");
        g.request();
        assert!(!g.force(ms(500)), "a request waits for the interval");
        assert!(!g.force(ms(999)));
        assert!(g.force(ms(1000)), "and is answered then");
        // A peer connects: its requests are answered every 150 ms for 2 s.
        g.new_peer(ms(1100));
        assert!(
            !g.force(ms(1100)),
            "150 ms after the last keyframe at the earliest"
        );
        assert!(g.force(ms(1150)));
        g.request();
        assert!(!g.force(ms(1250)));
        assert!(g.force(ms(1300)));
        g.request();
        assert!(g.force(ms(3200)));
        g.request();
        assert!(!g.force(ms(3400)), "the window is over: a second again");
        assert!(g.force(ms(4200)));
    }

    #[test]
    fn a_screen_share_takes_two_thirds_within_the_ceilings() {
        // Camera alone: all of it, within its own ceiling.
        assert_eq!(
            allocate(600, 800, 1500, true, false),
            Allocation {
                camera: 600,
                screen: 600,
                split: (600, 0)
            }
        );
        // Sharing beside the camera under a 900 kbit/s estimate: 600 + 300.
        let a = allocate(900, 800, 1500, true, true);
        assert_eq!((a.camera, a.screen, a.split), (300, 600, (300, 600)));
        // A big estimate: each track at its ceiling.
        let a = allocate(5000, 800, 1500, true, true);
        assert_eq!((a.camera, a.screen), (800, 1500));
        // Camera off while sharing: the screen gets everything.
        let a = allocate(900, 800, 1500, false, true);
        assert_eq!((a.screen, a.split), (900, (0, 900)));
        // Nothing is ever set below the floor.
        let a = allocate(20, 800, 1500, true, true);
        assert_eq!((a.camera, a.screen), (MIN_VIDEO_KBPS, MIN_VIDEO_KBPS));
    }

    #[test]
    fn a_receiver_ceiling_on_the_screen_caps_its_share_of_the_total() {
        // The screen gets 600 of 900: a 400 kbit/s ceiling on it means 600 in all.
        assert_eq!(total_limit(400, 600, (300, 600)), 600);
        // On the camera's 300: 1,200 in all.
        assert_eq!(total_limit(400, 300, (300, 600)), 1200);
        // A track that gets nothing counts as a twentieth.
        assert_eq!(total_limit(100, 0, (1000, 0)), 2000);
        assert_eq!(total_limit(u32::MAX, 1, (1, 0)), u32::MAX, "no overflow");
    }
}
