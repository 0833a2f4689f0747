//! The call's sans-IO core: `(state, input, now) -> effects`. It decides each peer's link
//! life (who offers, ICE restart, rebuilds with [`RECOVERY_BACKOFF`]), which encoder owes a
//! keyframe, how the video estimate is split between camera and screen, what is announced
//! as our media state, and who is the active speaker. It never touches a socket, a device,
//! a clock or the WebRTC stack: the actor ([`super::actor`]) feeds it and carries its
//! effects out, and the tests drive it on a simulated clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parley_shared::signal::{ClientMsg, MediaState};
use parley_shared::PeerId;

use super::policy::{allocate, total_limit, Allocation};
use super::{CallEvent, Device};
use crate::backoff::Backoff;
use crate::media::level::ActiveSpeaker;
use crate::media::rate::RateSet;
use crate::rtc::{LinkState, MediaKind};

/// Rebuilding a failed link waits 1 s, 2 s, 4 s… up to 16 s between fresh connections.
pub const RECOVERY_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(16));
/// How much longer than the failure timeout a recovery step gets to connect.
pub const RECOVERY_SLACK: Duration = Duration::from_secs(5);

/// What the core is fixed with.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// Ceilings of the camera and of a screen share (kbit/s).
    pub camera_kbps: u32,
    pub screen_kbps: u32,
    /// Whether we send audio at all (a microphone or a tone).
    pub has_mic: bool,
    /// How long a silent link takes to count as failed.
    pub ice_failed_after: Duration,
}

/// What happened, as the actor tells it.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The room let us in (again, after a reconnect); `participants` are the others.
    Welcome {
        me: PeerId,
        participants: Vec<PeerId>,
    },
    /// A peer offers; `same_session` when it comes from the peer connection we already
    /// have with it (an ICE restart), not a new one.
    Offer {
        from: PeerId,
        sdp: String,
        same_session: bool,
    },
    PeerLeft(PeerId),
    /// A link could not be made (the WebRTC stack refused).
    LinkUnavailable(PeerId),
    LinkState {
        peer: PeerId,
        state: LinkState,
    },
    /// A peer asked for a keyframe on this line.
    KeyframeRequest(MediaKind),
    /// A peer's receiver report: the fraction of our packets lost (0–255).
    Loss {
        peer: PeerId,
        fraction: u8,
    },
    /// A peer's ceiling for one of our tracks (kbit/s).
    Limit {
        peer: PeerId,
        kind: MediaKind,
        kbps: u32,
    },
    /// A peer's audio level over the last 100 ms.
    AudioLevel {
        peer: PeerId,
        dbfs: f32,
    },
    AudioEnded(PeerId),
    MutedByHost,
    /// Once a second.
    Tick,
    SetMic(bool),
    SetCamera(bool),
    /// A capture thread for `kind` runs (replacing any before it).
    VideoStarted {
        kind: MediaKind,
        id: u64,
    },
    StopScreen,
    /// Capture thread `id` stopped on an error (device gone).
    VideoEnded {
        kind: MediaKind,
        id: u64,
        error: String,
    },
}

/// What a capture thread is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCommand {
    /// Send, or idle with the line kept.
    On(bool),
    Keyframe,
    /// A peer connected: a keyframe now, and quick keyframes for a while.
    NewPeer,
    Bitrate(u32),
    Stop,
}

/// What the actor must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Send(ClientMsg),
    /// Make a new peer connection to `peer`, closing any before it.
    NewLink {
        peer: PeerId,
        offerer: bool,
    },
    /// Create an offer on the link to `peer` and send it.
    Offer {
        peer: PeerId,
        ice_restart: bool,
    },
    /// If our line for `kind` was never negotiated with `peer` (its offer had fewer lines),
    /// offer again on the same link to add it.
    AddLine {
        peer: PeerId,
        kind: MediaKind,
    },
    /// Take `peer`'s offer on its link and send our answer.
    Answer {
        peer: PeerId,
        sdp: String,
    },
    CloseLink(PeerId),
    Video {
        kind: MediaKind,
        cmd: VideoCommand,
    },
    /// Send audio, or stop.
    Mic(bool),
    /// The peer's audio leaves the mix.
    PeerGone(PeerId),
    Emit(CallEvent),
}

/// What the application can read at any time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallState {
    /// Our peer id, once welcomed.
    pub me: Option<PeerId>,
    pub media: MediaState,
    /// The camera encoder's target (kbit/s; 0 without a camera).
    pub camera_kbps: u32,
}

/// One peer's link and how it is being kept alive.
#[derive(Debug)]
struct LinkLife {
    /// We sent the first offer (we joined after them), so we drive recovery.
    offerer: bool,
    /// ICE restarts tried since the link last connected.
    restarts: u32,
    /// Fresh connections made since the link last connected.
    rebuilds: u32,
    /// When the last recovery step was taken (None: connected, or never failed).
    attempt_at: Option<Instant>,
    /// When the next one is due (after a failed step, with backoff).
    next_attempt: Option<Instant>,
}

impl LinkLife {
    fn new(offerer: bool) -> Self {
        Self {
            offerer,
            restarts: 0,
            rebuilds: 0,
            attempt_at: None,
            next_attempt: None,
        }
    }
}

/// One of our outgoing video lines while its capture runs.
#[derive(Debug)]
struct Line {
    id: u64,
    on: bool,
    /// The bitrate last given to its encoder (0: none yet).
    kbps: u32,
}

pub struct CallCore {
    cfg: CoreConfig,
    me: Option<PeerId>,
    links: HashMap<PeerId, LinkLife>,
    /// Per-peer send-rate estimates for all our video; the shared encoders follow the lowest.
    rates: RateSet<PeerId>,
    split: (u32, u32),
    mic_on: bool,
    camera: Option<Line>,
    screen: Option<Line>,
    speakers: ActiveSpeaker,
    out: Vec<Effect>,
}

impl CallCore {
    pub fn new(cfg: CoreConfig) -> Self {
        Self {
            rates: RateSet::new(cfg.camera_kbps, 50, cfg.camera_kbps),
            split: (cfg.camera_kbps, 0),
            cfg,
            me: None,
            links: HashMap::new(),
            mic_on: true,
            camera: None,
            screen: None,
            speakers: ActiveSpeaker::default(),
            out: Vec::new(),
        }
    }

    pub fn state(&self) -> CallState {
        CallState {
            me: self.me.clone(),
            media: self.media(),
            camera_kbps: self.camera.as_ref().map_or(0, |c| c.kbps),
        }
    }

    /// What is being sent: a microphone that is on, a camera that is on, a share.
    pub fn media(&self) -> MediaState {
        MediaState {
            audio: self.cfg.has_mic && self.mic_on,
            video: self.camera.as_ref().is_some_and(|c| c.on),
            screen: self.screen.is_some(),
        }
    }

    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Effect> {
        match input {
            Input::Welcome { me, participants } => {
                self.me = Some(me);
                // Everyone learns what we send as we arrive (and again after a reconnect).
                self.announce();
                // The newcomer offers to everyone already there.
                for peer in participants {
                    if !self.links.contains_key(&peer) {
                        self.links.insert(peer.clone(), LinkLife::new(true));
                        self.connect_afresh(peer);
                    }
                }
            }
            Input::Offer {
                from,
                sdp,
                same_session,
            } => {
                // An offer on a live link is an ICE restart; one from a new peer connection
                // (another DTLS fingerprint) replaces ours, keeping its recovery count.
                let known = self.links.get_mut(&from);
                match known {
                    Some(_) if same_session => {}
                    Some(l) => {
                        l.offerer = false;
                        l.next_attempt = None;
                        self.push(Effect::NewLink {
                            peer: from.clone(),
                            offerer: false,
                        });
                    }
                    None => {
                        self.links.insert(from.clone(), LinkLife::new(false));
                        self.push(Effect::NewLink {
                            peer: from.clone(),
                            offerer: false,
                        });
                    }
                }
                self.push(Effect::Answer { peer: from, sdp });
            }
            Input::PeerLeft(peer) => {
                if self.links.remove(&peer).is_some() {
                    self.push(Effect::CloseLink(peer.clone()));
                }
                self.rates.remove(&peer);
                self.speakers.remove(&peer.0);
                self.apply_rates();
                self.push(Effect::PeerGone(peer));
            }
            Input::LinkUnavailable(peer) => {
                self.links.remove(&peer);
            }
            Input::LinkState { peer, state } => {
                match state {
                    LinkState::Connected => {
                        // A new receiver needs a keyframe to start decoding.
                        for kind in self.running() {
                            self.push(Effect::Video {
                                kind,
                                cmd: VideoCommand::NewPeer,
                            });
                        }
                        self.rates.connect(peer.clone(), now);
                        if let Some(l) = self.links.get_mut(&peer) {
                            *l = LinkLife::new(l.offerer);
                        }
                        if self.screen.is_some() {
                            self.push(Effect::AddLine {
                                peer: peer.clone(),
                                kind: MediaKind::Screen,
                            });
                        }
                    }
                    LinkState::Failed => self.on_failed(&peer, now),
                    _ => {}
                }
                self.push(Effect::Emit(CallEvent::Link { peer, state }));
            }
            Input::KeyframeRequest(kind) => {
                if self.running().contains(&kind) {
                    self.push(Effect::Video {
                        kind,
                        cmd: VideoCommand::Keyframe,
                    });
                }
            }
            Input::Loss { peer, fraction } => self.rates.on_report(&peer, fraction, now),
            Input::Limit { peer, kind, kbps } => {
                // The ceiling is for one track; the estimate is for all our video to the peer.
                let share = match kind {
                    MediaKind::Camera => self.split.0,
                    MediaKind::Screen => self.split.1,
                    MediaKind::Audio => return self.take(),
                };
                self.rates
                    .on_limit(&peer, total_limit(kbps, share, self.split), now);
                self.apply_rates();
            }
            Input::AudioLevel { peer, dbfs } => {
                let change = self.speakers.update(&peer.0, dbfs, now);
                self.push(Effect::Emit(CallEvent::AudioLevel { peer, dbfs }));
                if let Some(active) = change {
                    self.push(Effect::Emit(CallEvent::ActiveSpeaker {
                        peer: active.map(PeerId),
                    }));
                }
            }
            Input::AudioEnded(peer) => self.speakers.remove(&peer.0),
            Input::MutedByHost => {
                // The host muted us: stop sending (the user may unmute themselves).
                self.mic_on = false;
                self.push(Effect::Mic(false));
            }
            Input::Tick => {
                self.rates.tick(now);
                self.apply_rates();
                let quality: Vec<CallEvent> = self
                    .links
                    .keys()
                    .filter_map(|peer| {
                        let send_kbps = self.rates.peer_kbps(peer)?;
                        Some(CallEvent::Quality {
                            peer: peer.clone(),
                            send_kbps,
                        })
                    })
                    .collect();
                for ev in quality {
                    self.push(Effect::Emit(ev));
                }
                self.watch_recoveries(now);
            }
            Input::SetMic(on) => {
                self.mic_on = on;
                self.push(Effect::Mic(on));
                self.announce();
            }
            Input::SetCamera(on) => {
                if let Some(c) = &mut self.camera {
                    c.on = on;
                    self.push(Effect::Video {
                        kind: MediaKind::Camera,
                        cmd: VideoCommand::On(on),
                    });
                }
                self.apply_rates();
                self.announce();
            }
            Input::VideoStarted { kind, id } => {
                match kind {
                    MediaKind::Camera => {
                        // A switched camera keeps the old one's on/off.
                        let on = self.camera.as_ref().is_none_or(|c| c.on);
                        self.camera = Some(Line { id, on, kbps: 0 });
                        if !on {
                            self.push(Effect::Video {
                                kind,
                                cmd: VideoCommand::On(false),
                            });
                        }
                    }
                    MediaKind::Screen => {
                        self.screen = Some(Line {
                            id,
                            on: true,
                            kbps: 0,
                        });
                        // A link made by answering an offer with one video line has no line
                        // for the screen yet: each link adds it if so.
                        let mut peers: Vec<PeerId> = self.links.keys().cloned().collect();
                        peers.sort_by(|a, b| a.0.cmp(&b.0));
                        for peer in peers {
                            self.push(Effect::AddLine { peer, kind });
                        }
                    }
                    MediaKind::Audio => return self.take(),
                }
                self.apply_rates();
                self.announce();
            }
            Input::StopScreen => {
                if self.screen.take().is_some() {
                    self.push(Effect::Video {
                        kind: MediaKind::Screen,
                        cmd: VideoCommand::Stop,
                    });
                }
                self.apply_rates();
                self.announce();
            }
            Input::VideoEnded { kind, id, error } => {
                let line = match kind {
                    MediaKind::Camera => &mut self.camera,
                    MediaKind::Screen => &mut self.screen,
                    MediaKind::Audio => return self.take(),
                };
                // A thread replaced since ending on its own says nothing of the new one.
                if line.as_ref().is_some_and(|l| l.id == id) {
                    *line = None;
                    let device = match kind {
                        MediaKind::Screen => Device::Screen,
                        _ => Device::Camera,
                    };
                    self.push(Effect::Emit(CallEvent::DeviceLost { device, error }));
                    self.apply_rates();
                    self.announce();
                }
            }
        }
        self.take()
    }

    fn take(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.out)
    }

    fn push(&mut self, e: Effect) {
        self.out.push(e);
    }

    fn announce(&mut self) {
        let state = self.media();
        self.push(Effect::Send(ClientMsg::MediaState(state)));
    }

    fn running(&self) -> Vec<MediaKind> {
        let mut v = Vec::with_capacity(2);
        if self.camera.is_some() {
            v.push(MediaKind::Camera);
        }
        if self.screen.is_some() {
            v.push(MediaKind::Screen);
        }
        v
    }

    /// Spends the estimate on the running encoders; tells those whose target changed.
    fn apply_rates(&mut self) {
        let sharing = self.screen.is_some();
        let max = self.cfg.camera_kbps + if sharing { self.cfg.screen_kbps } else { 0 };
        self.rates.set_max(max);
        let camera_on = self.camera.as_ref().is_some_and(|c| c.on);
        let Allocation {
            camera,
            screen,
            split,
        } = allocate(
            self.rates.target(),
            self.cfg.camera_kbps,
            self.cfg.screen_kbps,
            camera_on,
            sharing,
        );
        self.split = split;
        let mut told = Vec::new();
        for (kind, line, kbps) in [
            (MediaKind::Camera, &mut self.camera, camera),
            (MediaKind::Screen, &mut self.screen, screen),
        ] {
            if let Some(l) = line {
                if l.kbps != kbps {
                    l.kbps = kbps;
                    told.push(Effect::Video {
                        kind,
                        cmd: VideoCommand::Bitrate(kbps),
                    });
                }
            }
        }
        self.out.extend(told);
    }

    /// A link failed: the side that offered restarts ICE at once; when that fails too it
    /// builds new peer connections, with backoff, for as long as the peer is in the meeting.
    /// The other side waits for its offers. Until it connects again, the peer's rate
    /// estimate waits.
    fn on_failed(&mut self, peer: &PeerId, now: Instant) {
        self.rates.remove(peer);
        let Some(l) = self.links.get_mut(peer) else {
            return;
        };
        if !l.offerer {
            return;
        }
        if l.restarts == 0 {
            self.recover(peer.clone(), now);
        } else {
            l.next_attempt = Some(now + RECOVERY_BACKOFF.delay(l.rebuilds + 1));
        }
    }

    /// Takes the next recovery step for `peer` now: an ICE restart first, then rebuilds.
    fn recover(&mut self, peer: PeerId, now: Instant) {
        let Some(l) = self.links.get_mut(&peer) else {
            return;
        };
        l.attempt_at = Some(now);
        l.next_attempt = None;
        if l.restarts == 0 {
            l.restarts = 1;
            tracing::info!("media connection failed: restarting ICE");
            self.push(Effect::Offer {
                peer,
                ice_restart: true,
            });
        } else {
            l.rebuilds += 1;
            tracing::info!(
                attempt = l.rebuilds,
                "media connection still down: new peer connection"
            );
            self.connect_afresh(peer);
        }
    }

    /// A new peer connection to `peer`, and our offer on it.
    fn connect_afresh(&mut self, peer: PeerId) {
        self.push(Effect::NewLink {
            peer: peer.clone(),
            offerer: true,
        });
        self.push(Effect::Offer {
            peer,
            ice_restart: false,
        });
    }

    /// A recovery step that has not connected within the wait (an ICE restart can hang in
    /// "checking" when no candidate can be gathered) is followed by the next one.
    fn watch_recoveries(&mut self, now: Instant) {
        let wait = self.cfg.ice_failed_after + RECOVERY_SLACK;
        let mut due: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(_, l)| match l.next_attempt {
                Some(t) => t <= now,
                None => l.attempt_at.is_some_and(|t| now.duration_since(t) >= wait),
            })
            .map(|(p, _)| p.clone())
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        for peer in due {
            self.recover(peer, now);
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
