//! Calls between headless engine participants on loopback: real server, real signaling,
//! real WebRTC (ICE, DTLS-SRTP), VP8 and Opus, checked from the decoded pixels and samples.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{meeting, user, StaticToken};
use parley_engine::call::{AudioSource, Call, CallConfig, CallEvent, VideoSource};
use parley_engine::media::adapt::CpuThresholds;
use parley_engine::media::audio::tone_strength;
use parley_engine::media::synthetic::read_stamp;
use parley_engine::rest::Api;
use parley_engine::rtc::{MediaKind, RtcOptions};
use parley_engine::signaling::{Event, JoinOptions};
use parley_shared::signal::{ClientMsg, ServerMsg};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn server() -> common::TestServer {
    common::server_with(|_| {}).await
}

/// What one participant received, by sender user id.
#[derive(Default)]
struct Received {
    frames: HashMap<String, Vec<u32>>,
    latency_ms: Vec<u64>,
    audio: HashMap<String, Vec<f32>>,
    /// Latest audio level (dBFS) by sender.
    /// Every level reported per peer (one per 100 ms).
    levels: HashMap<String, Vec<f32>>,
    /// Active-speaker announcements (user ids; None: nobody).
    active: Vec<Option<String>>,
}

/// Drains `call`'s events for `for_how_long`, mapping peer ids to user ids.
async fn collect(mut call: Call, for_how_long: Duration) -> (Call, Received) {
    let mut who: HashMap<String, String> = HashMap::new();
    let mut got = Received::default();
    let deadline = tokio::time::Instant::now() + for_how_long;
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, call.events.recv()).await {
        match ev {
            CallEvent::Signal(Event::Server(ServerMsg::Welcome { participants, .. })) => {
                for p in participants {
                    who.insert(p.peer_id.0, p.user_id.to_string());
                }
            }
            CallEvent::Signal(Event::Server(ServerMsg::PeerJoined { participant })) => {
                who.insert(participant.peer_id.0, participant.user_id.to_string());
            }
            CallEvent::Video { peer, kind, frame } => {
                assert_eq!(kind, MediaKind::Camera);
                let Some(user) = who.get(&peer.0) else {
                    continue;
                };
                if let Some(stamp) = read_stamp(&frame) {
                    got.frames
                        .entry(user.clone())
                        .or_default()
                        .push(stamp.frame);
                    got.latency_ms
                        .push(now_ms().saturating_sub(stamp.capture_ms));
                }
            }
            CallEvent::Audio { peer, samples } => {
                if let Some(user) = who.get(&peer.0) {
                    got.audio.entry(user.clone()).or_default().extend(samples);
                }
            }
            CallEvent::AudioLevel { peer, dbfs } => {
                if let Some(user) = who.get(&peer.0) {
                    got.levels.entry(user.clone()).or_default().push(dbfs);
                }
            }
            CallEvent::ActiveSpeaker { peer } => {
                got.active.push(peer.and_then(|p| who.get(&p.0).cloned()));
            }
            _ => {}
        }
    }
    (call, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_participants_see_and_hear_each_other() {
    let mut server = server().await;
    let api = Api::new(&format!("http://{}", server.addr));
    let people = [("ann", 440.0f32), ("bob", 700.0), ("cat", 1100.0)];
    let mut users = Vec::new();
    for (name, _) in people {
        users.push(user(&api, name).await);
    }
    let code = meeting(&api, &users[0].1, "Three-way").await;
    let mut calls = Vec::new();
    for (i, (name, hz)) in people.iter().enumerate() {
        let call = Call::start(
            api.ws_url(),
            StaticToken(users[i].1.clone()),
            JoinOptions {
                code: code.clone(),
                display_name: name.to_string(),
                passcode: None,
            },
            test_config(*hz),
        )
        .await
        .unwrap();
        calls.push(call);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let collected: Vec<(Call, Received)> = futures_util::future::join_all(
        calls
            .into_iter()
            .map(|c| collect(c, Duration::from_secs(8))),
    )
    .await;

    let mut all_latency: Vec<u64> = Vec::new();
    for (i, (_, got)) in collected.iter().enumerate() {
        let me = people[i].0;
        for (j, (other, hz)) in people.iter().enumerate() {
            if i == j {
                assert!(
                    !got.frames.contains_key(&users[j].0),
                    "{me} received itself"
                );
                continue;
            }
            let frames = got
                .frames
                .get(&users[j].0)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            assert!(
                frames.len() >= 40,
                "{me} decoded only {} frames from {other}",
                frames.len()
            );
            assert!(
                frames.windows(2).all(|w| w[1] > w[0]),
                "{me}: frames from {other} out of order"
            );
            let span = frames.last().unwrap() - frames.first().unwrap() + 1;
            let missing = span as usize - frames.len();
            assert!(
                missing * 10 <= span as usize,
                "{me}: {missing} of {span} frames from {other} missing on loopback"
            );
            let audio = got.audio.get(&users[j].0).map(Vec::as_slice).unwrap_or(&[]);
            assert!(
                audio.len() >= 48_000 * 3,
                "{me} got {} samples from {other}",
                audio.len()
            );
            assert!(
                tone_strength(audio, *hz, 20.0) > 0.5,
                "{me} does not hear {other}'s {hz} Hz"
            );
            // A 0.3-amplitude tone is about -13.5 dBFS.
            // The median of the second half (one report can catch a concealed packet).
            let mut levels = got.levels.get(&users[j].0).cloned().unwrap_or_default();
            levels.drain(..levels.len() / 2);
            levels.sort_by(f32::total_cmp);
            let level = levels.get(levels.len() / 2).copied().unwrap_or(-100.0);
            assert!(
                (-17.0..-10.0).contains(&level),
                "{me} sees {other}'s level at {level} dBFS"
            );
        }
        // Everyone else talks all the time: an active speaker is named, and it is not us.
        let first = got.active.first().cloned().flatten();
        assert!(
            first.is_some() && first.as_deref() != Some(users[i].0.as_str()),
            "{me}: active speaker {first:?}"
        );
        // The mix of everything received holds both other tones and not our own.
        let streams: Vec<&Vec<f32>> = got.audio.values().collect();
        let len = streams.iter().map(|s| s.len()).min().unwrap_or(0);
        let mix: Vec<f32> = (0..len)
            .map(|k| streams.iter().map(|s| s[k]).sum())
            .collect();
        for (j, (other, hz)) in people.iter().enumerate() {
            let s = tone_strength(&mix, *hz, 20.0);
            if i == j {
                assert!(s < 0.05, "{me} hears its own tone ({s})");
            } else {
                assert!(s > 0.3, "{me}'s mix lacks {other}'s tone ({s})");
            }
        }
        all_latency.extend(&got.latency_ms);
    }
    all_latency.sort_unstable();
    eprintln!(
        "three-way call: capture-to-decode latency median {} ms, p95 {} ms over {} frames",
        all_latency[all_latency.len() / 2],
        all_latency[all_latency.len() * 95 / 100],
        all_latency.len()
    );
    for (call, _) in collected {
        // A clean loopback path reports no loss: the controller leaves the rate alone.
        assert_eq!(call.video_bitrate_kbps(), 300);
        call.leave().await;
    }
    server.stop().await;
}

/// Everything one participant received, with arrival times.
async fn record(
    mut events: tokio::sync::mpsc::Receiver<CallEvent>,
    for_how_long: Duration,
) -> Vec<(tokio::time::Instant, CallEvent)> {
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + for_how_long;
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, events.recv()).await {
        all.push((tokio::time::Instant::now(), ev));
    }
    all
}

fn test_config(hz: f32) -> CallConfig {
    CallConfig {
        camera: Some(VideoSource::Synthetic),
        mic: Some(AudioSource::Tone(hz)),
        speaker: None,
        voice_processing: false,
        width: 320,
        height: 240,
        fps: 15,
        video_kbps: 300,
        decode: true,
        rtc: RtcOptions {
            loopback_only: true,
            relay_only: false,
            ..Default::default()
        },
        ..CallConfig::default()
    }
}

/// Ann (the host) and Bob in a new meeting called `title`, Bob joining 300 ms after her.
async fn ann_and_bob(
    title: &str,
    ann: CallConfig,
    bob: CallConfig,
) -> (common::TestServer, Call, Call) {
    let server = server().await;
    let api = Api::new(&format!("http://{}", server.addr));
    let (_, ann_token) = user(&api, "ann").await;
    let (_, bob_token) = user(&api, "bob").await;
    let code = meeting(&api, &ann_token, title).await;
    let join = |name: &str| JoinOptions {
        code: code.clone(),
        display_name: name.into(),
        passcode: None,
    };
    let ann = Call::start(api.ws_url(), StaticToken(ann_token), join("ann"), ann)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bob = Call::start(api.ws_url(), StaticToken(bob_token), join("bob"), bob)
        .await
        .unwrap();
    (server, ann, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn camera_turns_off_and_on_without_renegotiation() {
    let (mut server, mut ann, mut bob) =
        ann_and_bob("Camera shy", test_config(440.0), test_config(880.0)).await;
    let start = tokio::time::Instant::now();
    let ann_events = std::mem::replace(&mut ann.events, tokio::sync::mpsc::channel(1).1);
    let bob_events = std::mem::replace(&mut bob.events, tokio::sync::mpsc::channel(1).1);
    let ann_log = tokio::spawn(record(ann_events, Duration::from_secs(9)));
    let bob_log = tokio::spawn(record(bob_events, Duration::from_secs(9)));
    // On for 3 s, off for 3 s, on again for 3 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ann.set_camera(false).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ann.set_camera(true).await;
    let (ann_log, bob_log) = (ann_log.await.unwrap(), bob_log.await.unwrap());

    let frames_between = |from_s: f32, to_s: f32| {
        bob_log
            .iter()
            .filter(|(at, ev)| {
                let t = at.duration_since(start).as_secs_f32();
                matches!(ev, CallEvent::Video { .. }) && t >= from_s && t < to_s
            })
            .count()
    };
    let (before, during, after) = (
        frames_between(1.5, 3.0),
        frames_between(3.5, 6.0),
        frames_between(7.0, 9.0),
    );
    assert!(before >= 15, "{before} frames before");
    assert_eq!(during, 0, "no frames while the camera is off");
    assert!(after >= 20, "{after} frames after turning it back on");
    // Audio flowed the whole time.
    let audio_while_off = bob_log
        .iter()
        .filter(|(at, ev)| {
            let t = at.duration_since(start).as_secs_f32();
            matches!(ev, CallEvent::Audio { .. }) && (3.5..6.0).contains(&t)
        })
        .count();
    assert!(
        audio_while_off >= 100,
        "{audio_while_off} audio frames while the camera was off"
    );
    // One offer and one answer in the whole call: the toggles renegotiated nothing.
    let count = |log: &[(tokio::time::Instant, CallEvent)], ty: fn(&ServerMsg) -> bool| {
        log.iter()
            .filter(|(_, ev)| matches!(ev, CallEvent::Signal(Event::Server(m)) if ty(m)))
            .count()
    };
    assert_eq!(count(&ann_log, |m| matches!(m, ServerMsg::Offer { .. })), 1);
    assert_eq!(
        count(&bob_log, |m| matches!(m, ServerMsg::Answer { .. })),
        1
    );
    assert_eq!(count(&bob_log, |m| matches!(m, ServerMsg::Offer { .. })), 0);
    ann.leave().await;
    bob.leave().await;
    server.stop().await;
}

/// A camera that cannot keep up (here: thresholds that count any encoding as too much) steps
/// its picture down, 640×480 → 480×360 → 320×240 (no lower: 240×180 is under the floor), a
/// step per two 2-second windows; Bob decodes every size, the stamped frame numbers keep
/// increasing across the changes, and Ann is told each new size.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overloaded_camera_steps_its_picture_down() {
    let busy = CallConfig {
        width: 640,
        height: 480,
        cpu_adaptation: Some(CpuThresholds {
            high_pct: 0.0,
            low_pct: 0.0,
        }),
        ..test_config(440.0)
    };
    let (mut server, mut ann, mut bob) = ann_and_bob("Busy laptop", busy, test_config(880.0)).await;
    let ann_events = std::mem::replace(&mut ann.events, tokio::sync::mpsc::channel(1).1);
    let bob_events = std::mem::replace(&mut bob.events, tokio::sync::mpsc::channel(1).1);
    let ann_log = tokio::spawn(record(ann_events, Duration::from_secs(14)));
    let bob_log = tokio::spawn(record(bob_events, Duration::from_secs(14)));
    let (ann_log, bob_log) = (ann_log.await.unwrap(), bob_log.await.unwrap());

    let told: Vec<(u32, u32)> = ann_log
        .iter()
        .filter_map(|(_, ev)| match ev {
            CallEvent::CameraAdapted { width, height, .. } => Some((*width, *height)),
            _ => None,
        })
        .collect();
    assert_eq!(told, [(480, 360), (320, 240)]);
    // (size, stamped frame number) of every frame Bob decoded from Ann, in arrival order.
    let seen: Vec<((u32, u32), Option<u32>)> = bob_log
        .iter()
        .filter_map(|(_, ev)| match ev {
            CallEvent::Video { frame, .. } => Some((
                (frame.width, frame.height),
                read_stamp(frame).map(|s| s.frame),
            )),
            _ => None,
        })
        .collect();
    let mut sizes: Vec<(u32, u32)> = seen.iter().map(|(size, _)| *size).collect();
    sizes.dedup();
    assert_eq!(sizes, [(640, 480), (480, 360), (320, 240)]);
    let numbers: Vec<u32> = seen.iter().filter_map(|(_, n)| *n).collect();
    assert!(
        numbers.len() + 2 >= seen.len(),
        "stamps readable at every size: {} of {}",
        numbers.len(),
        seen.len()
    );
    assert!(numbers.windows(2).all(|w| w[1] > w[0]), "frames in order");
    let small = seen.iter().filter(|(size, _)| *size == (320, 240)).count();
    assert!(
        small >= 15,
        "video goes on at the smallest size: {small} frames"
    );
    ann.leave().await;
    bob.leave().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_mute_stops_the_participants_audio() {
    let (mut server, mut ann, bob) =
        ann_and_bob("Quiet please", test_config(440.0), test_config(880.0)).await;
    let start = tokio::time::Instant::now();
    let ann_events = std::mem::replace(&mut ann.events, tokio::sync::mpsc::channel(1).1);
    let log = tokio::spawn(record(ann_events, Duration::from_secs(7)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Ann (the host) mutes Bob by his peer id, as a host's UI would.
    assert!(bob.media_state().audio);
    let bob_peer = bob.peer_id().expect("Bob was welcomed");
    ann.send(ClientMsg::Mute { peer: bob_peer }).await;
    let log = log.await.unwrap();
    let bob_audio = |from: f32, to: f32| {
        log.iter()
            .filter(|(at, ev)| {
                let t = at.duration_since(start).as_secs_f32();
                matches!(ev, CallEvent::Audio { .. }) && (from..to).contains(&t)
            })
            .count()
    };
    assert!(bob_audio(1.5, 3.0) >= 50, "Bob heard before the mute");
    assert_eq!(
        bob_audio(4.5, 7.0),
        0,
        "nothing from Bob after the host muted him"
    );
    assert!(!bob.media_state().audio, "Bob's own state says muted");
    ann.leave().await;
    bob.leave().await;
    server.stop().await;
}
