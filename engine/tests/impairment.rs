//! A call through a TURN relay with a user-space impairment relay in front of it
//! (parley_test_support::turn): 5 % random loss and 50 ms delay on every packet towards the
//! participants, a rate cap, outages.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::StaticToken;
use parley_engine::call::{AudioSource, Call, CallConfig, CallEvent, VideoSource};
use parley_engine::media::audio::tone_strength;
use parley_engine::media::synthetic::read_stamp;
use parley_engine::rest::Api;
use parley_engine::rtc::RtcOptions;
use parley_engine::signaling::{Event, JoinOptions};
use parley_shared::signal::ServerMsg;
use parley_test_support::turn::{impairment_relay, turn_server, Impairment, RelayStats};
use webrtc::turn;

const SECRET: &str = "impairment-test-turn-secret";

/// The measurements are about the network, not about two calls fighting over two cores:
/// the tests in this file run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A two-person call whose media crosses the TURN relay behind the impairment.
struct Harness {
    ann: Call,
    bob: Call,
    stats: Arc<RelayStats>,
    server: common::TestServer,
    turn: turn::server::Server,
}

async fn impaired_call(imp: Impairment, width: u32, height: u32, video_kbps: u32) -> Harness {
    let (turn, turn_addr) = turn_server(SECRET).await;
    let (relay_addr, stats) = impairment_relay(turn_addr, imp).await;
    let server = common::server_with(|c| {
        c.turn_urls = vec![format!("turn:{relay_addr}?transport=udp")];
        c.turn_secret = Some(SECRET.into());
    })
    .await;
    let api = Api::new(&format!("http://{}", server.addr));
    let (_, ann_token) = common::user(&api, "ann").await;
    let (_, bob_token) = common::user(&api, "bob").await;
    let tokens = [ann_token, bob_token];
    let code = common::meeting(&api, &tokens[0], "Rough line").await;
    let config = |hz| CallConfig {
        camera: Some(VideoSource::Synthetic),
        mic: Some(AudioSource::Tone(hz)),
        speaker: None,
        voice_processing: false,
        width,
        height,
        fps: 30,
        video_kbps,
        decode: true,
        rtc: RtcOptions {
            loopback_only: true,
            relay_only: true,
            ice_failed_after: Some(Duration::from_secs(3)),
        },
        ..CallConfig::default()
    };
    let join = |name: &str| JoinOptions {
        code: code.clone(),
        display_name: name.into(),
        passcode: None,
    };
    let ann = Call::start(
        api.ws_url(),
        StaticToken(tokens[0].clone()),
        join("ann"),
        config(523.0),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bob = Call::start(
        api.ws_url(),
        StaticToken(tokens[1].clone()),
        join("bob"),
        config(880.0),
    )
    .await
    .unwrap();
    Harness {
        ann,
        bob,
        stats,
        server,
        turn,
    }
}

impl Harness {
    async fn stop(mut self) {
        self.ann.leave().await;
        self.bob.leave().await;
        self.server.stop().await;
        self.turn.close().await.unwrap();
    }
}

/// What Bob received from Ann: (seconds since start, frame number) and (seconds, samples).
#[derive(Default)]
struct BobSaw {
    frames: Vec<(f32, u32)>,
    /// (seconds, state) of Bob's media connection to Ann.
    links: Vec<(f32, String)>,
    /// When Ann's answers (to Bob's offers) arrived.
    answers: Vec<f32>,
    /// Bob's connection-quality figures for Ann (his send estimate, kbit/s).
    quality: Vec<u32>,
    audio: Vec<(f32, Vec<f32>)>,
    /// (seconds, Ann's encoder target in kbit/s, Ann's video bytes sent so far), sampled as
    /// events arrive.
    ann_kbps: Vec<(f32, u32, u64)>,
}

async fn watch(h: &mut Harness, for_how_long: Duration) -> BobSaw {
    watch_until(h, for_how_long, |_, _| false).await
}

/// Like [`watch`], and after every event asks `done` (what Bob saw so far, seconds since the
/// start) whether to stop early.
async fn watch_until(
    h: &mut Harness,
    at_most: Duration,
    mut done: impl FnMut(&BobSaw, f32) -> bool,
) -> BobSaw {
    let start = tokio::time::Instant::now();
    let mut ann_peer = None;
    let mut saw = BobSaw::default();
    let deadline = start + at_most;
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, h.bob.events.recv()).await {
        let t = start.elapsed().as_secs_f32();
        if saw
            .ann_kbps
            .last()
            .is_none_or(|(last, _, _)| t - last >= 0.25)
        {
            saw.ann_kbps
                .push((t, h.ann.video_bitrate_kbps(), h.ann.video_bytes_sent()));
        }
        match ev {
            CallEvent::Signal(Event::Server(ServerMsg::Welcome { participants, .. })) => {
                ann_peer = participants.first().map(|p| p.peer_id.clone());
            }
            CallEvent::Video { peer, frame, .. } if Some(&peer) == ann_peer.as_ref() => {
                if let Some(s) = read_stamp(&frame) {
                    saw.frames.push((t, s.frame));
                }
            }
            CallEvent::Link { state, .. } => saw.links.push((t, state.to_string())),
            CallEvent::Quality { send_kbps, .. } => saw.quality.push(send_kbps),
            CallEvent::Signal(Event::Server(ServerMsg::Answer { .. })) => saw.answers.push(t),
            CallEvent::Audio { peer, samples } if Some(&peer) == ann_peer.as_ref() => {
                saw.audio.push((t, samples));
            }
            _ => {}
        }
        if done(&saw, t) {
            break;
        }
    }
    saw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn call_holds_with_loss_and_delay_through_a_turn_relay() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let imp = Impairment {
        loss: 0.05,
        delay: Duration::from_millis(50),
        ..Impairment::default()
    };
    let mut h = impaired_call(imp, 320, 240, 400).await;
    // 8 s are measured, from 1 s after the first frame (however long connecting took).
    let window = 8.0;
    let saw = watch_until(&mut h, Duration::from_secs(30), |saw, t| {
        saw.frames
            .first()
            .is_some_and(|(first, _)| t >= first + 1.0 + window)
    })
    .await;
    let from = saw
        .frames
        .first()
        .map(|(t, _)| t + 1.0)
        .expect("video arrives");
    let fps = saw.frames.iter().filter(|(t, _)| *t >= from).count() as f32 / window;
    let late: Vec<f32> = saw
        .audio
        .iter()
        .filter(|(t, _)| *t >= from)
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    let audio_secs = late.len() as f32 / 48_000.0;
    let (fwd, drop) = (
        h.stats.forwarded.load(Ordering::Relaxed),
        h.stats.dropped.load(Ordering::Relaxed),
    );
    eprintln!(
        "impaired call (5 % loss, 50 ms delay, TURN relay): {fps:.1} fps of 30 decoded, \
         {audio_secs:.1} s of audio in {window} s, relay dropped {drop} of {} packets ({:.1} %)",
        fwd + drop,
        100.0 * drop as f64 / (fwd + drop).max(1) as f64
    );
    assert!(drop > 50, "the impairment really dropped packets");
    assert!(fps >= 20.0, "video holds: {fps:.1} fps");
    assert!(
        saw.frames.windows(2).all(|w| w[1].1 > w[0].1),
        "frames in order"
    );
    assert!(
        audio_secs >= window * 0.9,
        "audio keeps playing: {audio_secs:.1} s"
    );
    assert!(
        tone_strength(&late, 523.0, 20.0) > 0.5,
        "Ann's tone comes through"
    );
    h.stop().await;
}

/// Both directions capped (each participant's downstream, as `tc tbf` on its link would),
/// both starting at 800 kbit/s: feedback has to cross a congested queue too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sender_backs_off_under_a_300_kbit_cap_and_video_keeps_moving() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let imp = Impairment {
        delay: Duration::from_millis(20),
        cap_bps: Some(300_000),
        ..Impairment::default()
    };
    let mut h = impaired_call(imp, 320, 240, 800).await;
    let saw = watch(&mut h, Duration::from_secs(16)).await;
    // Ann's actual video send rate over 2 s windows, and the first window (counted from when
    // frames flow) in which it is below the cap.
    let flowing = saw
        .frames
        .first()
        .map(|(t, _)| *t)
        .expect("some frames arrive");
    let rates: Vec<(f32, f64)> = saw
        .ann_kbps
        .iter()
        .filter_map(|&(t, _, bytes)| {
            let (t0, _, b0) = *saw.ann_kbps.iter().find(|(t0, _, _)| t - t0 <= 2.0)?;
            (t - t0 >= 1.5).then(|| (t, (bytes - b0) as f64 * 8.0 / 1000.0 / f64::from(t - t0)))
        })
        .collect();
    let below = rates
        .iter()
        .find(|(t, kbps)| *t >= flowing + 2.0 && *kbps < 300.0)
        .map(|(t, _)| t - flowing);
    let final_target = saw.ann_kbps.last().map(|(_, k, _)| *k).unwrap_or(0);
    let final_rate = rates.last().map(|(_, r)| *r).unwrap_or(0.0);
    let first_rate = rates
        .iter()
        .find(|(t, _)| *t >= flowing)
        .map(|(_, r)| *r)
        .unwrap_or(0.0);
    let last_fps = saw.frames.iter().filter(|(t, _)| *t >= 12.0).count() as f32 / 4.0;
    eprintln!(
        "300 kbit/s cap: sending {first_rate:.0} kbit/s when video started (target 800), below \
         the cap {below:?} s later; at the end sending {final_rate:.0} kbit/s (target \
         {final_target}); {last_fps:.1} fps decoded in the last 4 s"
    );
    // The estimate saws around the cap (cut to 85 % of what arrived, then probing up 8 %/s),
    // so one sample can sit just above it: the median of the last five must not.
    let mut last: Vec<u32> = saw.quality.iter().rev().take(5).copied().collect();
    last.sort_unstable();
    assert!(
        last.len() == 5 && last[2] < 300,
        "Bob's view of his own sending to Ann reflects the cap: last five {last:?}"
    );
    let below = below.expect("the sender never went below the cap");
    assert!(below <= 10.0, "took {below:.1} s");
    assert!(last_fps >= 5.0, "video keeps moving: {last_fps:.1} fps");
    assert!(
        saw.frames.windows(2).all(|w| w[1].1 > w[0].1),
        "frames in order"
    );
    h.stop().await;
}

/// Cuts the network for `outage` seconds once video has flowed for 3 s, and watches until
/// `after` seconds past the outage's end; returns what Bob saw and when the outage began and
/// ended, after checking what every recovery must show. (The cut waits for video rather than
/// a fixed time: on a busy machine the first connection alone can take seconds.)
async fn call_through_an_outage(outage: u64, after: u64) -> (BobSaw, f32, f32) {
    const FLOWING: f32 = 3.0;
    let imp = Impairment::default();
    let blackout = imp.blackout.clone();
    let mut h = impaired_call(imp, 320, 240, 400).await;
    let (flowing_tx, flowing_rx) = tokio::sync::oneshot::channel::<()>();
    let cut = tokio::spawn(async move {
        if flowing_rx.await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_secs_f32(FLOWING)).await;
        blackout.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(outage)).await;
        blackout.store(false, Ordering::Relaxed);
    });
    let mut flowing_tx = Some(flowing_tx);
    let saw = watch_until(
        &mut h,
        Duration::from_secs(20 + outage + after),
        |saw, t| {
            let Some(&(first, _)) = saw.frames.first() else {
                return false;
            };
            if let Some(tx) = flowing_tx.take() {
                let _ = tx.send(());
            }
            t >= first + FLOWING + (outage + after) as f32
        },
    )
    .await;
    cut.await.unwrap();
    h.stop().await;
    let first = saw.frames.first().map(|(t, _)| *t).expect("video flowed");
    let (start, end) = (first + FLOWING, first + FLOWING + outage as f32);
    let total = end + after as f32;
    let fps = |from: f32, to: f32| {
        saw.frames
            .iter()
            .filter(|(t, _)| (from..to).contains(t))
            .count() as f32
            / (to - from)
    };
    let states: Vec<String> = saw
        .links
        .iter()
        .map(|(t, s)| format!("{t:.1}s {s}"))
        .collect();
    let last = total - 4.0;
    eprintln!(
        "outage {start:.1}-{end:.1} s: {:.1} fps before, {:.1} during, {:.1} in the last 4 s; \
         link {states:?}; answers at {:?}",
        fps(start - 2.5, start),
        fps(start + 1.0, end),
        fps(last, total),
        saw.answers
    );
    assert!(
        fps(start - 2.5, start) >= 20.0,
        "video flowed before the outage"
    );
    assert!(fps(start + 1.0, end) < 1.0, "nothing crossed the outage");
    assert!(
        saw.links.iter().any(|(t, s)| *t > start && s == "failed"),
        "the connection failed: {states:?}"
    );
    assert!(
        saw.links.iter().any(|(t, s)| *t > end && s == "connected"),
        "connected again after the outage: {states:?}"
    );
    assert!(fps(last, total) >= 20.0, "video flows again");
    let after: Vec<u32> = saw
        .frames
        .iter()
        .filter(|(t, _)| *t >= end)
        .map(|(_, n)| *n)
        .collect();
    assert!(
        after.windows(2).all(|w| w[1] > w[0]),
        "frame numbers keep increasing"
    );
    (saw, start, end)
}

/// An outage longer than the failure timeout (3 s here): the connection fails, Bob (who
/// offered) restarts ICE, and the call comes back by itself once the network does, in the
/// same meeting session and on the same peer connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn media_comes_back_after_an_outage_by_ice_restart() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (saw, _, _) = call_through_an_outage(6, 9).await;
    assert_eq!(
        saw.answers.len(),
        2,
        "the first answer and the ICE restart's"
    );
}

/// An outage that outlasts the ICE restart too: Bob builds a new peer connection (Ann sees a
/// new DTLS fingerprint and replaces hers), and that one connects when the network is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_ice_restart_is_followed_by_a_new_connection() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (saw, start, end) = call_through_an_outage(14, 11).await;
    let during: Vec<f32> = saw
        .answers
        .iter()
        .copied()
        .filter(|t| (start..end).contains(t))
        .collect();
    assert!(
        during.len() >= 2,
        "an ICE restart and at least one new connection during the outage: {during:?}"
    );
}
