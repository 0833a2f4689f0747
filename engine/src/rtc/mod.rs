//! The one module that touches a WebRTC stack. What leaves it is Parley's own types
//! ([`Api`], [`Link`], [`LinkState`], [`LinkEvent`], [`RemoteTrack`], [`RtpPacket`],
//! [`RtcError`]), so the call core, the CLI and the app never name the stack.
//!
//! One implementation, `v017` on webrtc 0.17. A second one on webrtc 0.21 was measured against
//! it and retired (docs/decisions.md, "webrtc 0.17 or 0.21"; git tag `webrtc-021-line`).

use std::time::Duration;

use parley_shared::signal::IceCandidate;

mod v017;
pub use v017::{build_api, Api, Link, LocalTracks, RemoteTrack, RtcError};

/// A peer connection's state (ICE and DTLS together), as `RTCPeerConnectionState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::New => "new",
            LinkState::Connecting => "connecting",
            LinkState::Connected => "connected",
            LinkState::Disconnected => "disconnected",
            LinkState::Failed => "failed",
            LinkState::Closed => "closed",
        }
    }
}

impl std::fmt::Display for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One received RTP packet, as the media path needs it.
pub struct RtpPacket {
    pub seq: u16,
    pub timestamp: u32,
    /// The last packet of a video frame.
    pub marker: bool,
    pub payload: bytes::Bytes,
}

/// Which of the three media lines a track belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Camera,
    Screen,
}

impl MediaKind {
    pub fn track_id(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Camera => "camera",
            MediaKind::Screen => "screen",
        }
    }
}

/// Network options.
#[derive(Clone, Debug, Default)]
pub struct RtcOptions {
    /// Gather only loopback candidates (tests; never touches another interface).
    pub loopback_only: bool,
    /// Use only TURN-relayed candidates (every packet goes through the relay).
    pub relay_only: bool,
    /// How long a silent connection takes to count as failed (and be restarted); the
    /// default is 10 s (2 s of it "disconnected"), quicker than the library's 30 s.
    pub ice_failed_after: Option<Duration>,
}

/// What a link reports.
pub enum LinkEvent {
    /// A local ICE candidate to trickle to the peer.
    Ice(IceCandidate),
    State(LinkState),
    /// The ICE agent's state (`connected` comes before DTLS is done and `State` follows).
    IceState(String),
    Track(MediaKind, RemoteTrack),
    /// The peer asked for a keyframe (PLI/FIR) on this track.
    KeyframeRequest(MediaKind),
    /// Fraction of our packets the peer reports lost (0–255 = 0–100 %) on one stream.
    Loss(u8),
    /// The peer saw congestion on this track and asks us to send at most this (kbit/s).
    Limit(MediaKind, u32),
}

/// Remote candidates held before the remote description; a browser gathers a handful per
/// interface and protocol, so this is far more than an honest peer sends.
pub(crate) const MAX_HELD_CANDIDATES: usize = 64;

/// What a link knows of the remote side, the same on both lines: the peer's DTLS
/// fingerprint once its description is set (an offer with another one comes from a new peer
/// connection, not an ICE restart of this one), and the candidates that came before it.
pub(crate) struct Remote {
    fingerprint: std::sync::Mutex<Option<String>>,
    /// None until the remote description is set; then candidates go straight in.
    pending: std::sync::Mutex<Option<Vec<IceCandidate>>>,
}

impl Remote {
    pub(crate) fn new() -> Self {
        Self {
            fingerprint: Default::default(),
            pending: std::sync::Mutex::new(Some(Vec::new())),
        }
    }

    /// Whether `sdp` (an offer) comes from the same remote peer connection.
    pub(crate) fn same_session(&self, sdp: &str) -> bool {
        let known = self
            .fingerprint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        known.is_some() && known == fingerprint(sdp)
    }

    /// A remote description is about to be set.
    pub(crate) fn remember(&self, sdp: &str) {
        *self.fingerprint.lock().unwrap_or_else(|p| p.into_inner()) = fingerprint(sdp);
    }

    /// The remote description is set: the candidates held until now, to add.
    pub(crate) fn described(&self) -> Vec<IceCandidate> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default()
    }

    /// A remote candidate: held (None) before the description, returned to add after it.
    /// At most [`MAX_HELD_CANDIDATES`] are held: a peer that trickles without ever sending
    /// its description cannot make us hold more.
    pub(crate) fn candidate(&self, c: IceCandidate) -> Option<IceCandidate> {
        match &mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(held) => {
                if held.len() < MAX_HELD_CANDIDATES {
                    held.push(c);
                }
                None
            }
            None => Some(c),
        }
    }
}

/// The DTLS fingerprint line of an SDP (session or first media level).
fn fingerprint(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=fingerprint:"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(n: u32) -> IceCandidate {
        IceCandidate {
            candidate: format!("candidate:{n} 1 udp 1 127.0.0.1 {n} typ host"),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        }
    }

    #[test]
    fn candidates_wait_for_the_description_and_sessions_are_told_by_fingerprint() {
        let r = Remote::new();
        // Trickled before the peer's description: held, in order.
        assert!(r.candidate(cand(1)).is_none());
        assert!(r.candidate(cand(2)).is_none());
        assert!(!r.same_session("v=0\r\na=fingerprint:sha-256 AA\r\n"));
        r.remember("v=0\r\na=fingerprint:sha-256 AA\r\n");
        let held: Vec<String> = r.described().into_iter().map(|c| c.candidate).collect();
        assert_eq!(held, vec![cand(1).candidate, cand(2).candidate]);
        // Afterwards: straight through, and nothing is held twice.
        assert_eq!(
            r.candidate(cand(3)).map(|c| c.candidate),
            Some(cand(3).candidate)
        );
        assert!(r.described().is_empty());
        // An ICE restart keeps the fingerprint; a new peer connection brings another.
        assert!(r.same_session("v=0\r\na=fingerprint:sha-256 AA\r\n"));
        assert!(!r.same_session("v=0\r\na=fingerprint:sha-256 BB\r\n"));
    }

    #[test]
    fn a_peer_that_never_describes_itself_cannot_make_us_hold_its_candidates() {
        let r = Remote::new();
        for n in 0..10_000 {
            assert!(r.candidate(cand(n)).is_none());
        }
        let held = r.described();
        assert_eq!(held.len(), MAX_HELD_CANDIDATES);
        assert_eq!(
            held[0].candidate,
            cand(0).candidate,
            "the first ones are kept"
        );
    }
}
