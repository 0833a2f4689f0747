//! Screen sharing from a real X display: the test starts Xvfb, draws known pictures on its
//! root window over the X protocol, Ann shares that screen (xcap → I420 → VP8 → WebRTC) and
//! Bob's decoded frames must show what was drawn. Sharing stops and starts again mid-call
//! without renegotiation, and Bob's decoder for it is closed while it is off. Its own test
//! binary: it points DISPLAY at its Xvfb for the process.
#![cfg(all(unix, not(target_os = "macos")))] // an X display: Linux and the BSDs
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{meeting, user, StaticToken};
use parley_engine::call::{AudioSource, Call, CallConfig, CallEvent};
use parley_engine::media::capture::{screens, ScreenTarget};
use parley_engine::media::frame::I420Frame;
use parley_engine::rest::Api;
use parley_engine::rtc::{MediaKind, RtcOptions};
use parley_engine::signaling::{Event, JoinOptions};
use parley_shared::signal::ServerMsg;
use parley_test_support::xvfb::Xvfb;
use tokio::time::Instant;
use xcb::x;

const W: u16 = 640;
const H: u16 = 480;

/// A test picture: four quadrants (white with black stripes, black, red, blue), or the same
/// mirrored left to right. RGBA.
fn picture(mirrored: bool) -> Vec<u8> {
    let (w, h) = (usize::from(W), usize::from(H));
    let mut px = vec![0u8; w * h * 4];
    for y in 0..h {
        for x in 0..w {
            let xx = if mirrored { w - 1 - x } else { x };
            let rgb = match (xx < w / 2, y < h / 2) {
                (true, true) if (xx / 16) % 2 == 1 => [0, 0, 0],
                (true, true) => [255, 255, 255],
                (false, true) => [0, 0, 0],
                (true, false) => [220, 30, 30],
                (false, false) => [30, 30, 220],
            };
            px[(y * w + x) * 4..(y * w + x) * 4 + 4]
                .copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
        }
    }
    px
}

/// Puts an RGBA picture on the root window of `display` (24-bit TrueColor: BGRX in memory).
fn draw(display: &str, rgba: &[u8]) {
    let (conn, screen_num) = xcb::Connection::connect(Some(display)).unwrap();
    let screen = conn
        .get_setup()
        .roots()
        .nth(screen_num as usize)
        .unwrap()
        .to_owned();
    let root = x::Drawable::Window(screen.root());
    let gc: x::Gcontext = conn.generate_id();
    conn.send_and_check_request(&x::CreateGc {
        cid: gc,
        drawable: root,
        value_list: &[],
    })
    .unwrap();
    let bgrx: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[2], p[1], p[0], 0])
        .collect();
    let row = usize::from(W) * 4;
    // In strips: one request may not exceed the server's maximum request length.
    for (i, strip) in bgrx.chunks(row * 32).enumerate() {
        conn.send_and_check_request(&x::PutImage {
            format: x::ImageFormat::ZPixmap,
            drawable: root,
            gc,
            width: W,
            height: (strip.len() / row) as u16,
            dst_x: 0,
            dst_y: (i * 32) as i16,
            left_pad: 0,
            depth: screen.root_depth(),
            data: strip,
        })
        .unwrap();
    }
}

/// Mean absolute difference of the luma planes (0 = identical).
fn luma_distance(a: &I420Frame, b: &I420Frame) -> f64 {
    let n = (a.width * a.height) as usize;
    let sum: u64 = a.data[..n]
        .iter()
        .zip(&b.data[..n])
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / n as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_screen_arrives_as_drawn_and_toggles_without_renegotiation() {
    let xvfb = Xvfb::start(u32::from(W), u32::from(H));
    // This binary's only test: xcap finds the display through DISPLAY.
    std::env::set_var("DISPLAY", &xvfb.display);
    let first = picture(false);
    let second = picture(true);
    draw(&xvfb.display, &first);
    let listed = screens().unwrap();
    assert!(
        listed
            .iter()
            .any(|s| matches!(s.target, ScreenTarget::Monitor(_))
                && (s.width, s.height) == (u32::from(W), u32::from(H))),
        "the Xvfb monitor is listed: {listed:?}"
    );

    let mut server = common::server_with(|_| {}).await;
    let api = Api::new(&format!("http://{}", server.addr));
    let (_, ann_token) = user(&api, "ann").await;
    let (_, bob_token) = user(&api, "bob").await;
    let code = meeting(&api, &ann_token, "Screen share").await;
    let join = |name: &str| JoinOptions {
        code: code.clone(),
        display_name: name.into(),
        passcode: None,
    };
    let config = |hz| CallConfig {
        camera: None,
        mic: Some(AudioSource::Tone(hz)),
        voice_processing: false,
        screen_fps: 15,
        screen_kbps: 1500,
        rtc: RtcOptions {
            loopback_only: true,
            relay_only: false,
            ..Default::default()
        },
        ..CallConfig::default()
    };
    let ann = Call::start(
        api.ws_url(),
        StaticToken(ann_token),
        join("ann"),
        config(440.0),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut bob = Call::start(
        api.ws_url(),
        StaticToken(bob_token),
        join("bob"),
        config(880.0),
    )
    .await
    .unwrap();
    let start = Instant::now();
    let bob_events = std::mem::replace(&mut bob.events, tokio::sync::mpsc::channel(1).1);
    let bob_log = tokio::spawn(async move {
        let mut events = bob_events;
        let mut all = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(16);
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, events.recv()).await {
            all.push((Instant::now(), ev));
        }
        all
    });
    let at = |s: f32| start + Duration::from_secs_f32(s);
    tokio::time::sleep_until(at(1.5)).await;
    ann.start_screen(ScreenTarget::Monitor(None)).await.unwrap();
    tokio::time::sleep_until(at(4.5)).await;
    // Bob decodes Ann's screen (she has no camera): one decoder open.
    let decoding = bob.video_decoders();
    draw(&xvfb.display, &second);
    tokio::time::sleep_until(at(7.5)).await;
    ann.stop_screen().await;
    tokio::time::sleep_until(at(11.5)).await;
    // Her share ended 4 s ago: Bob's decoder for it is closed (it held ~10 MB at 720p, one per
    // screen ever shared in the call, until this was fixed).
    let after_share = bob.video_decoders();
    tokio::time::sleep_until(at(12.0)).await;
    ann.start_screen(ScreenTarget::Monitor(None)).await.unwrap();
    let log = bob_log.await.unwrap();
    assert_eq!(decoding, 1, "decoders open while Ann shares");
    assert_eq!(after_share, 0, "decoders open after her share ended");
    assert_eq!(
        bob.video_decoders(),
        1,
        "decoders open when she shares again"
    );

    let screen_frames = |from: f32, to: f32| -> Vec<Arc<I420Frame>> {
        log.iter()
            .filter(|(t, _)| *t >= at(from) && *t < at(to))
            .filter_map(|(_, ev)| match ev {
                CallEvent::Video {
                    kind: MediaKind::Screen,
                    frame,
                    ..
                } => Some(frame.clone()),
                _ => None,
            })
            .collect()
    };
    let want_first = I420Frame::from_rgba(u32::from(W), u32::from(H), &first);
    let want_second = I420Frame::from_rgba(u32::from(W), u32::from(H), &second);
    let check = |from: f32, to: f32, want: &I420Frame, other: &I420Frame, what: &str| {
        let frames = screen_frames(from, to);
        assert!(
            frames.len() >= 10,
            "{what}: {} screen frames in {from}-{to} s",
            frames.len()
        );
        let last = frames.last().unwrap();
        assert_eq!((last.width, last.height), (u32::from(W), u32::from(H)));
        let (near, far) = (luma_distance(last, want), luma_distance(last, other));
        println!(
            "{what}: {} frames, luma distance {near:.2} (other picture {far:.2})",
            frames.len()
        );
        assert!(
            near < 6.0,
            "{what}: decoded screen differs from the drawing by {near:.2}"
        );
        assert!(far > 40.0, "{what}: the other picture is far ({far:.2})");
    };
    check(3.0, 4.5, &want_first, &want_second, "shared");
    check(6.0, 7.5, &want_second, &want_first, "redrawn");
    assert_eq!(
        screen_frames(8.5, 12.0).len(),
        0,
        "no frames while not sharing"
    );
    check(14.0, 16.0, &want_second, &want_first, "shared again");
    // Bob saw Ann's media state follow the share, and nobody renegotiated.
    let screen_states: Vec<bool> = log
        .iter()
        .filter_map(|(_, ev)| match ev {
            CallEvent::Signal(Event::Server(ServerMsg::MediaState { media, .. })) => {
                Some(media.screen)
            }
            _ => None,
        })
        .collect();
    assert_eq!(screen_states, [true, false, true]);
    let count = |ty: fn(&ServerMsg) -> bool| {
        log.iter()
            .filter(|(_, ev)| matches!(ev, CallEvent::Signal(Event::Server(m)) if ty(m)))
            .count()
    };
    // Bob joined second, so he offered once and got one answer; no offer ever came back.
    assert_eq!(count(|m| matches!(m, ServerMsg::Answer { .. })), 1);
    assert_eq!(count(|m| matches!(m, ServerMsg::Offer { .. })), 0);
    ann.leave().await;
    bob.leave().await;
    server.stop().await;
}
