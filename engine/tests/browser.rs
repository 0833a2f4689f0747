//! Browsers as guests: Debian's Chromium (through chromedriver) and Firefox ESR (WebDriver
//! BiDi, puppeteer-core), driven by test-support/browser/driver.mjs with their fake camera
//! and microphone (Firefox with a window on a private Xvfb, the screen it shares), meet a
//! `parley-cli` host. The guest opens the https invite link, chooses "Join in this browser",
//! waits, is admitted, and both sides see moving video and hear each other's tone (in the
//! CLI's recording, and in the page through Web Audio); chat goes both ways; the browser
//! shares its screen and the CLI receives it; the host removes the guest, whose page says so
//! and who cannot come back, not even as a new guest.
//!
//! Browsers leave loopback out of ICE, so this runs inside a network namespace with private
//! veth addresses (scripts/browsers.sh → scripts/netns.sh; `PARLEY_TEST_BROWSERS=1`); without
//! it the test says why and passes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cli::{user, world, Joined};
use common::wav;
use parley_engine::media::audio::tone_strength;
use parley_test_support::browser::{enabled, Browser};
use serde_json::json;

const CLI_TONE: f32 = 500.0;
/// Chromium plays this file as its microphone.
const CHROMIUM_TONE: f32 = 880.0;
/// Firefox's fake microphone is a 1 kHz sine.
const FIREFOX_TONE: f32 = 1000.0;

/// A 48 kHz mono WAV of a sine at `hz` (Chromium loops it as its microphone).
fn tone_wav(path: &Path, hz: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..48_000 * 4 {
        let s = (2.0 * std::f32::consts::PI * hz * i as f32 / 48_000.0).sin() * 0.4;
        w.write_sample((s * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// Rows of the CLI's frames.csv for `who`'s `kind` video.
fn frames_received(rec: &Path, who: &str, kind: &str) -> usize {
    std::fs::read_to_string(rec.join("frames.csv"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(&format!("{who},{kind},")))
        .count()
}

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..60 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{what}: not within 30 s");
}

async fn share_screen(b: &mut Browser, cli: &mut Joined, rec: &Path) {
    b.click("Share").await;
    b.wait_text("● Sharing").await;
    cli.expect_line(|l| l.starts_with("* Gia:") && l.contains("screen on"))
        .await;
    until("the CLI receives the browser's screen", || {
        frames_received(rec, "Gia", "screen") >= 10
    })
    .await;
}

async fn guest_meets_cli_host(browser: &'static str) {
    if !enabled() {
        return;
    }
    // The page is served from 127.0.0.1 (camera and microphone need a secure context:
    // https, or localhost); the media goes over the namespace's veth addresses.
    let w = world().await;
    let host = user(&w.base);
    host.register("hana").await;
    let code = host
        .ok(
            &[
                "meetings",
                "create",
                "Design review",
                "--waiting-room",
                "--allow-guests",
            ],
            "",
        )
        .await
        .trim()
        .to_string();
    let rec = host.home.path().join("rec");
    let mut cli: Joined = host
        .join_with(
            &code,
            &[
                "--camera",
                "synthetic",
                "--video",
                "320x240@15",
                "--mic",
                "tone:500",
                "--record-dir",
                rec.to_str().unwrap(),
            ],
        )
        .await;

    let dir = tempfile::tempdir().unwrap();
    let tone = if browser == "firefox" {
        FIREFOX_TONE
    } else {
        CHROMIUM_TONE
    };
    let wav_path = dir.path().join("tone.wav");
    tone_wav(&wav_path, CHROMIUM_TONE);
    // Firefox shares the whole screen (with prompts off it asks nothing), so it gets a window
    // on a private display; Chromium's fake picker shares its tab, headless.
    let mut b = if browser == "firefox" {
        Browser::start_with_screen(browser, Some(&wav_path)).await
    } else {
        Browser::start(browser, Some(&wav_path)).await
    };

    // The invite link, then "Join in this browser".
    b.run(json!({"op": "goto", "url": format!("{}/j/{code}", w.base)}))
        .await;
    b.wait_text("Design review").await;
    if browser == "chromium" {
        b.picture("browser-invite").await;
    }
    // A first visit does not try the app (no "open this app?" prompt for a guest without it).
    assert_eq!(
        b.eval("return document.body.innerText.includes('Opening the meeting in the Parley app');")
            .await,
        false,
        "{browser}: the invite page tried the app on a first visit"
    );
    b.click("Join in this browser").await;
    b.wait_text("Join the meeting").await;
    // This meeting has no passcode: the form asks for none.
    assert_eq!(
        b.eval("return document.querySelector('#passcode') === null;")
            .await,
        true,
        "{browser}: a passcode field for a meeting without a passcode"
    );
    if browser == "chromium" {
        b.picture("browser-guest-form").await;
    }
    b.run(json!({"op": "type", "selector": "#name", "text": "Gia"}))
        .await;
    assert_eq!(
        b.eval("return document.querySelector('#name').value;")
            .await,
        "Gia"
    );
    b.click("Join").await;
    b.wait_text("Waiting for the host to let you in").await;
    if browser == "chromium" {
        b.picture("browser-waiting").await;
    }
    assert_eq!(
        b.eval("return location.hash + location.search;").await,
        "",
        "nothing left in the address bar"
    );

    // The host sees a guest waiting and admits her.
    cli.expect_line(|l| l.starts_with("* Gia (guest) is waiting"))
        .await;
    cli.type_line("/admit Gia").await;
    cli.expect_line(|l| l == "* Gia (guest) joined").await;
    b.wait_text("hana").await;

    // Video and sound both ways.
    b.sees_moving_video("hana").await;
    let hz = b.heard_peak_hz().await;
    eprintln!("{browser}: the page hears a tone at {hz:.0} Hz");
    assert!(
        (hz - f64::from(CLI_TONE)).abs() < 30.0,
        "{browser} hears the CLI's tone: loudest at {hz:.0} Hz"
    );
    until("the CLI receives the browser's camera", || {
        frames_received(&rec, "Gia", "camera") >= 30
    })
    .await;

    // Chat both ways.
    b.click("Chat").await;
    b.run(json!({"op": "type", "selector": "#chat-input", "text": "hello from the browser\n"}))
        .await;
    // Marked as a guest's: the name is hers to choose.
    cli.expect_line(|l| l == "Gia (guest): hello from the browser")
        .await;
    cli.type_line("hello from the terminal").await;
    b.wait_text("hello from the terminal").await;
    if browser == "chromium" {
        b.picture("browser-meeting").await;
    }

    // The browser shares its screen; the CLI receives it.
    share_screen(&mut b, &mut cli, &rec).await;

    // Removed: the page says so and offers no way back in.
    cli.type_line("/remove Gia").await;
    b.wait_text("A host removed you from the meeting.").await;
    assert!(
        b.try_run(json!({"op": "click", "text": "Back to home", "timeout_ms": 1000}))
            .await
            .is_err(),
        "a removed guest is not offered to rejoin"
    );
    // Nor let in as a "new" guest through the link again.
    b.run(json!({"op": "goto", "url": format!("{}/j/{code}", w.base)}))
        .await;
    b.click("Join in this browser").await;
    b.run(json!({"op": "type", "selector": "#name", "text": "Not Gia"}))
        .await;
    b.click("Join").await;
    b.wait_text("A host removed a guest from this meeting")
        .await;
    if browser == "chromium" {
        // Once this browser has opened the app from an invite page ("Open in Parley": here
        // Chromium's "open xdg-open?" prompt, left unanswered), the next invite page tries
        // the app first and says so.
        b.run(json!({"op": "goto", "url": format!("{}/j/{code}", w.base)}))
            .await;
        b.click("Open in Parley").await;
        b.run(json!({"op": "goto", "url": format!("{}/j/{code}", w.base)}))
            .await;
        b.wait_text("Opening the meeting in the Parley app").await;

        // A meeting with a passcode: its invite page tells the form to ask for it.
        let locked = host
            .ok(
                &[
                    "meetings",
                    "create",
                    "Locked",
                    "--passcode",
                    "open-sesame-42",
                    "--allow-guests",
                ],
                "",
            )
            .await
            .trim()
            .to_string();
        b.run(json!({"op": "goto", "url": format!("{}/j/{locked}", w.base)}))
            .await;
        b.wait_text("This meeting has a passcode").await;
        b.run(json!({"op": "goto", "url": format!("{}/web/#code={locked}&p=1", w.base)}))
            .await;
        b.wait_text("Join the meeting").await;
        assert_eq!(
            b.eval("return document.querySelector('#passcode') !== null;")
                .await,
            true,
            "the form asks for the passcode of a meeting that has one"
        );
    }
    b.close().await;

    // What the CLI recorded of her: her tone, not its own.
    assert_eq!(cli.finish().await, 0);
    let heard = wav(&rec.join("Gia.wav"));
    assert!(heard.len() >= 48_000 * 3, "{} samples", heard.len());
    let rms = (heard.iter().map(|x| x * x).sum::<f32>() / heard.len() as f32).sqrt();
    eprintln!(
        "{browser}: the CLI recorded {} s of the guest at rms {rms:.3}",
        heard.len() / 48_000
    );
    assert!(
        rms > 0.01,
        "the CLI hears {browser}'s microphone: rms {rms}"
    );
    assert!(
        tone_strength(&heard, tone, 25.0) > 0.3,
        "the CLI hears {browser}'s {tone} Hz tone; loudest near {} Hz, rms {:.4}",
        (2..=40)
            .map(|k| k as f32 * 50.0)
            .max_by(
                |a, b| tone_strength(&heard, *a, 25.0).total_cmp(&tone_strength(&heard, *b, 25.0))
            )
            .unwrap(),
        (heard.iter().map(|x| x * x).sum::<f32>() / heard.len() as f32).sqrt()
    );
    let pictures: Vec<PathBuf> = std::fs::read_dir(&rec)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("Gia-camera-")
        })
        .collect();
    assert!(pictures.len() >= 2, "{} pictures of Gia", pictures.len());
    let a = std::fs::read(&pictures[0]).unwrap();
    assert!(
        pictures[1..].iter().any(|p| std::fs::read(p).unwrap() != a),
        "{browser}'s camera moves"
    );
}

#[tokio::test]
async fn a_chromium_guest_meets_a_cli_host() {
    guest_meets_cli_host("chromium").await;
}

#[tokio::test]
async fn a_firefox_guest_meets_a_cli_host() {
    guest_meets_cli_host("firefox").await;
}
