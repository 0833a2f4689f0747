//! The call core on a simulated clock: every test runs in microseconds.
#![allow(clippy::unwrap_used)]

use super::*;

fn peer(s: &str) -> PeerId {
    PeerId(s.into())
}

struct Sim {
    core: CallCore,
    t0: Instant,
}

impl Sim {
    fn new() -> Self {
        Self {
            core: CallCore::new(CoreConfig {
                camera_kbps: 800,
                screen_kbps: 1500,
                has_mic: true,
                ice_failed_after: Duration::from_secs(10),
            }),
            t0: Instant::now(),
        }
    }

    fn at(&mut self, secs: f64, input: Input) -> Vec<Effect> {
        let now = self.t0 + Duration::from_secs_f64(secs);
        self.core.handle(input, now)
    }

    /// Welcomed into a room where `bob` already is: we offer to him.
    fn welcomed_with_bob(&mut self) -> Vec<Effect> {
        self.at(
            0.0,
            Input::Welcome {
                me: peer("me"),
                participants: vec![peer("bob")],
            },
        )
    }

    fn link(&mut self, secs: f64, state: LinkState) -> Vec<Effect> {
        self.at(
            secs,
            Input::LinkState {
                peer: peer("bob"),
                state,
            },
        )
    }
}

/// The link-life effects only (offers, new links, closes).
fn links(effects: &[Effect]) -> Vec<Effect> {
    effects
        .iter()
        .filter(|e| {
            matches!(
                e,
                Effect::NewLink { .. } | Effect::Offer { .. } | Effect::CloseLink(_)
            )
        })
        .cloned()
        .collect()
}

fn rebuild() -> Vec<Effect> {
    vec![
        Effect::NewLink {
            peer: peer("bob"),
            offerer: true,
        },
        Effect::Offer {
            peer: peer("bob"),
            ice_restart: false,
        },
    ]
}

fn restart() -> Vec<Effect> {
    vec![Effect::Offer {
        peer: peer("bob"),
        ice_restart: true,
    }]
}

fn bitrates(effects: &[Effect]) -> Vec<(MediaKind, u32)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Video {
                kind,
                cmd: VideoCommand::Bitrate(k),
            } => Some((*kind, *k)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_newcomer_offers_and_announces_what_it_sends() {
    let mut s = Sim::new();
    let fx = s.welcomed_with_bob();
    assert_eq!(
        fx[0],
        Effect::Send(ClientMsg::MediaState(MediaState {
            audio: true,
            video: false,
            screen: false
        }))
    );
    assert_eq!(links(&fx), rebuild(), "a link to Bob and an offer");
    assert_eq!(s.core.state().me, Some(peer("me")));
    // Welcomed again after a reconnect: the live link is kept.
    let fx = s.welcomed_with_bob();
    assert_eq!(links(&fx), vec![]);
}

#[test]
fn an_outage_gets_an_ice_restart_then_rebuilds_with_backoff() {
    let mut s = Sim::new();
    s.welcomed_with_bob();
    s.link(1.0, LinkState::Connected);
    // The line goes silent: failed 10 s later. First an ICE restart, at once.
    assert_eq!(links(&s.link(20.0, LinkState::Failed)), restart());
    // It gets the failure timeout plus slack (15 s) to connect before the next step.
    assert_eq!(links(&s.at(34.0, Input::Tick)), vec![]);
    assert_eq!(
        links(&s.at(35.0, Input::Tick)),
        rebuild(),
        "a fresh connection"
    );
    // That fails too: the next rebuild waits 2 s, then 4 s, 8 s, 16 s, and never longer.
    let mut t = 35.0;
    for wait in [2.0, 4.0, 8.0, 16.0, 16.0, 16.0] {
        t += 10.0;
        assert_eq!(
            links(&s.link(t, LinkState::Failed)),
            vec![],
            "no step at once"
        );
        assert_eq!(
            links(&s.at(t + wait - 0.5, Input::Tick)),
            vec![],
            "waits {wait} s"
        );
        assert_eq!(
            links(&s.at(t + wait, Input::Tick)),
            rebuild(),
            "after {wait} s"
        );
        t += wait;
    }
    // Connected again: the next outage starts over with an ICE restart.
    let fx = s.link(t + 1.0, LinkState::Connected);
    assert!(fx.contains(&Effect::Emit(CallEvent::Link {
        peer: peer("bob"),
        state: LinkState::Connected
    })));
    assert_eq!(links(&s.link(t + 20.0, LinkState::Failed)), restart());
}

#[test]
fn a_hanging_ice_restart_is_followed_by_a_rebuild() {
    // An ICE restart that never reaches "failed" (stuck in checking: no candidate could be
    // gathered) still moves on after the wait.
    let mut s = Sim::new();
    s.welcomed_with_bob();
    s.link(1.0, LinkState::Connected);
    assert_eq!(links(&s.link(20.0, LinkState::Failed)), restart());
    s.link(21.0, LinkState::Connecting);
    assert_eq!(links(&s.at(35.0, Input::Tick)), rebuild());
}

#[test]
fn the_answering_side_waits_for_offers() {
    let mut s = Sim::new();
    s.at(
        0.0,
        Input::Welcome {
            me: peer("me"),
            participants: vec![],
        },
    );
    let fx = s.at(
        1.0,
        Input::Offer {
            from: peer("bob"),
            sdp: "v=0".into(),
            same_session: false,
        },
    );
    assert_eq!(
        fx,
        vec![
            Effect::NewLink {
                peer: peer("bob"),
                offerer: false
            },
            Effect::Answer {
                peer: peer("bob"),
                sdp: "v=0".into()
            }
        ]
    );
    s.link(2.0, LinkState::Connected);
    assert_eq!(links(&s.link(20.0, LinkState::Failed)), vec![]);
    assert_eq!(links(&s.at(60.0, Input::Tick)), vec![], "it never offers");
    // Bob's ICE restart is answered on the same link; his rebuild replaces it.
    let fx = s.at(
        61.0,
        Input::Offer {
            from: peer("bob"),
            sdp: "restart".into(),
            same_session: true,
        },
    );
    assert_eq!(links(&fx), vec![]);
    let fx = s.at(
        70.0,
        Input::Offer {
            from: peer("bob"),
            sdp: "new".into(),
            same_session: false,
        },
    );
    assert_eq!(
        links(&fx),
        vec![Effect::NewLink {
            peer: peer("bob"),
            offerer: false
        }]
    );
}

#[test]
fn a_peer_leaving_closes_its_link_and_its_audio() {
    let mut s = Sim::new();
    s.welcomed_with_bob();
    let fx = s.at(5.0, Input::PeerLeft(peer("bob")));
    assert!(fx.contains(&Effect::CloseLink(peer("bob"))));
    assert!(fx.contains(&Effect::PeerGone(peer("bob"))));
    assert_eq!(
        links(&s.at(60.0, Input::Tick)),
        vec![],
        "nothing left to recover"
    );
}

#[test]
fn keyframes_go_to_running_encoders_and_a_new_peer_gets_one() {
    let mut s = Sim::new();
    s.welcomed_with_bob();
    s.at(
        0.5,
        Input::VideoStarted {
            kind: MediaKind::Camera,
            id: 1,
        },
    );
    let fx = s.link(1.0, LinkState::Connected);
    assert!(fx.contains(&Effect::Video {
        kind: MediaKind::Camera,
        cmd: VideoCommand::NewPeer
    }));
    assert!(!fx.iter().any(|e| matches!(
        e,
        Effect::Video {
            kind: MediaKind::Screen,
            ..
        }
    )));
    let fx = s.at(2.0, Input::KeyframeRequest(MediaKind::Camera));
    assert_eq!(
        fx,
        vec![Effect::Video {
            kind: MediaKind::Camera,
            cmd: VideoCommand::Keyframe
        }]
    );
    assert_eq!(s.at(2.0, Input::KeyframeRequest(MediaKind::Screen)), vec![]);
}

#[test]
fn a_screen_share_takes_its_share_of_a_receiver_ceiling() {
    let mut s = Sim::new();
    s.welcomed_with_bob();
    let fx = s.at(
        0.1,
        Input::VideoStarted {
            kind: MediaKind::Camera,
            id: 1,
        },
    );
    assert_eq!(bitrates(&fx), vec![(MediaKind::Camera, 800)]);
    s.link(1.0, LinkState::Connected);
    // Sharing beside the camera: two thirds of the 800 kbit/s estimate.
    let fx = s.at(
        2.0,
        Input::VideoStarted {
            kind: MediaKind::Screen,
            id: 2,
        },
    );
    assert_eq!(
        bitrates(&fx),
        vec![(MediaKind::Camera, 267), (MediaKind::Screen, 533)]
    );
    assert!(s.core.media().screen);
    // Bob's receiver can take 400 kbit/s of the screen: that is the screen's two thirds of
    // 600 in all, so the camera gets 200.
    let fx = s.at(
        3.0,
        Input::Limit {
            peer: peer("bob"),
            kind: MediaKind::Screen,
            kbps: 400,
        },
    );
    assert_eq!(
        bitrates(&fx),
        vec![(MediaKind::Camera, 200), (MediaKind::Screen, 400)]
    );
    // The share ends: the camera has the estimate to itself again.
    let fx = s.at(4.0, Input::StopScreen);
    assert!(fx.contains(&Effect::Video {
        kind: MediaKind::Screen,
        cmd: VideoCommand::Stop
    }));
    assert_eq!(bitrates(&fx), vec![(MediaKind::Camera, 600)]);
    assert!(!s.core.media().screen);
}

#[test]
fn media_state_follows_switches_devices_and_the_host() {
    let mut s = Sim::new();
    s.welcomed_with_bob();
    s.at(
        0.1,
        Input::VideoStarted {
            kind: MediaKind::Camera,
            id: 1,
        },
    );
    assert_eq!(
        s.core.media(),
        MediaState {
            audio: true,
            video: true,
            screen: false
        }
    );
    let fx = s.at(1.0, Input::SetCamera(false));
    assert!(fx.contains(&Effect::Video {
        kind: MediaKind::Camera,
        cmd: VideoCommand::On(false)
    }));
    assert!(!s.core.media().video);
    // A switched camera keeps the switch off.
    let fx = s.at(
        2.0,
        Input::VideoStarted {
            kind: MediaKind::Camera,
            id: 2,
        },
    );
    assert!(fx.contains(&Effect::Video {
        kind: MediaKind::Camera,
        cmd: VideoCommand::On(false)
    }));
    s.at(3.0, Input::SetCamera(true));
    // The host mutes us: audio stops, nothing is announced (the room knows).
    let fx = s.at(4.0, Input::MutedByHost);
    assert_eq!(fx, vec![Effect::Mic(false)]);
    assert!(!s.core.media().audio);
    // The camera unplugged: the old thread's end says nothing, the running one's does.
    assert_eq!(
        s.at(
            5.0,
            Input::VideoEnded {
                kind: MediaKind::Camera,
                id: 1,
                error: "gone".into()
            }
        ),
        vec![]
    );
    let fx = s.at(
        5.0,
        Input::VideoEnded {
            kind: MediaKind::Camera,
            id: 2,
            error: "unplugged".into(),
        },
    );
    assert!(fx.contains(&Effect::Emit(CallEvent::DeviceLost {
        device: Device::Camera,
        error: "unplugged".into()
    })));
    assert!(fx.contains(&Effect::Send(ClientMsg::MediaState(MediaState {
        audio: false,
        video: false,
        screen: false
    }))));
    assert_eq!(s.core.state().camera_kbps, 0);
}

#[test]
fn the_loudest_voice_is_the_active_speaker() {
    let mut s = Sim::new();
    let mut last = None;
    for i in 0..10 {
        for e in s.at(
            f64::from(i) * 0.1,
            Input::AudioLevel {
                peer: peer("bob"),
                dbfs: -20.0,
            },
        ) {
            if let Effect::Emit(CallEvent::ActiveSpeaker { peer }) = e {
                last = Some(peer);
            }
        }
    }
    assert_eq!(last, Some(Some(peer("bob"))));
}

#[test]
fn a_share_asks_for_its_line_on_every_link_and_on_links_that_connect_later() {
    let mut s = Sim::new();
    s.welcomed_with_bob();
    let add = Effect::AddLine {
        peer: peer("bob"),
        kind: MediaKind::Screen,
    };
    // Bob's link may have come from an offer without a second video line.
    let fx = s.at(
        1.0,
        Input::VideoStarted {
            kind: MediaKind::Screen,
            id: 1,
        },
    );
    assert!(fx.contains(&add));
    let fx = s.link(2.0, LinkState::Connected);
    assert!(fx.contains(&add), "connected while sharing");
    s.at(3.0, Input::StopScreen);
    let fx = s.link(4.0, LinkState::Connected);
    assert!(!fx.contains(&add), "not sharing: nothing to add");
}
