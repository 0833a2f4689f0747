//! The engine's soak (issue 18): four participants in one meeting for half an hour, each an
//! engine [`Call`] in this process, sending synthetic camera video and a tone, decoding what
//! arrives. Cameras go off and on in turn, each participant shares the screen of a private X
//! display in turn, and every few minutes the network goes away for a while: all media
//! crosses a TURN relay (a child process, `parley-bench turn-relay`, so its memory is not
//! counted) whose impairment relay drops everything during an outage, long enough that the
//! connections fail and come back by ICE restart or by a new connection. This process's RSS,
//! threads and descriptors are sampled throughout: what the engine holds after each event
//! must be given back (webrtc-rs is known to leak on close).

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use parley_engine::call::{AudioSource, Call, CallConfig, CallEvent, VideoSource};
use parley_engine::media::capture::ScreenTarget;
use parley_engine::rest::Api;
use parley_engine::rtc::{LinkState, MediaKind, RtcOptions};
use parley_engine::signaling::{Event, JoinOptions, StaticToken};
use parley_shared::api::CreateMeetingRequest;
use parley_shared::MeetingCode;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::figures::{counted, growth_table, in_mib};
use crate::server::{register, Process, Server};

/// The TURN secret the soak's server and relay share (loopback only, made up for the run).
const SECRET: &str = "call-soak-turn-secret";
const PEOPLE: [(&str, f32); 4] = [
    ("ann", 440.0),
    ("bob", 550.0),
    ("cat", 660.0),
    ("dan", 880.0),
];
/// A media connection that sees nothing for this long fails (then ICE restart).
const ICE_FAILED_AFTER: Duration = Duration::from_secs(3);
/// After an outage ends, how long the calls may take to carry video again before a quiet
/// receiver counts as an error.
const RECOVERY: Duration = Duration::from_secs(30);

/// What the soak does, and how long (the command line's options).
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    #[arg(long, default_value_t = 1800)]
    pub secs: u64,
    #[arg(long, default_value_t = 360)]
    pub warmup_secs: u64,
    #[arg(long, default_value_t = 10)]
    pub sample_secs: u64,
    /// An outage starts every this many seconds…
    #[arg(long, default_value_t = 300)]
    pub outage_every_secs: u64,
    /// …lasting these many seconds, in turn (3 s without packets fails a connection: 6 s
    /// recovers by ICE restart, 14 s outlasts it).
    #[arg(long, value_delimiter = ',', default_values_t = [6, 14], required = true, num_args = 1..)]
    pub outage_secs: Vec<u64>,
    /// A camera goes off (and the previous one on again) every this many seconds.
    #[arg(long, default_value_t = 20)]
    pub toggle_every_secs: u64,
    /// Someone starts sharing every this many seconds and stops after `share_secs`.
    #[arg(long, default_value_t = 120)]
    pub share_every_secs: u64,
    #[arg(long, default_value_t = 40)]
    pub share_secs: u64,
    #[arg(long, default_value_t = 320)]
    pub width: u32,
    #[arg(long, default_value_t = 240)]
    pub height: u32,
    #[arg(long, default_value_t = 15)]
    pub fps: u32,
}

/// What one participant's events showed.
#[derive(Default)]
struct Seen {
    camera_frames: AtomicU64,
    screen_frames: AtomicU64,
    failed: AtomicU64,
    connected: AtomicU64,
    /// The call ended (it should not before the end of the run).
    ended: Mutex<Option<String>>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    pub at_secs: f64,
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
    /// Decoded camera and screen frames, all receivers, since the previous sample.
    pub camera_frames: u64,
    pub screen_frames: u64,
    /// The fewest decoded camera frames any one receiver had since the previous sample.
    pub least_camera_frames: u64,
    /// Inside an outage or its recovery time.
    pub disturbed: bool,
    /// A screen share was running when the sample was taken (its capture, encoder and the
    /// receivers' decoders hold frames: the warm-up and end figures come from samples without).
    pub sharing: bool,
    /// Video decoders open in all four engines (each closes a line's after 3 s of silence).
    pub decoders: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub secs: u64,
    pub warmup_secs: u64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub start: Sample,
    pub warm: Sample,
    pub end: Sample,
    pub peak_after_warmup: Sample,
    pub samples: Vec<Sample>,
    pub outages: Vec<(f64, u64)>,
    pub camera_toggles: u64,
    pub screen_shares: u64,
    pub camera_frames: u64,
    pub screen_frames: u64,
    /// Media connections that failed and that connected (first connections included).
    pub links_failed: u64,
    pub links_connected: u64,
    pub errors: Vec<String>,
}

/// `parley-bench turn-relay`: a TURN server on loopback behind an impairment relay; prints
/// `relay ADDR` once it listens, then reads `cut` and `restore` lines (an outage starts, ends)
/// until its input closes.
pub async fn turn_relay(secret: &str) -> anyhow::Result<()> {
    use parley_test_support::turn::{impairment_relay, turn_server, Impairment};
    let (server, turn_addr) = turn_server(secret).await;
    let imp = Impairment::default();
    let blackout = imp.blackout.clone();
    let (addr, _) = impairment_relay(turn_addr, imp).await;
    let mut out = tokio::io::stdout();
    out.write_all(format!("relay {addr}\n").as_bytes()).await?;
    out.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "cut" => blackout.store(true, Ordering::Relaxed),
            "restore" => blackout.store(false, Ordering::Relaxed),
            other => bail!("turn-relay: {other:?} is neither cut nor restore"),
        }
    }
    server.close().await?;
    Ok(())
}

/// The relay child: its address, and a way to cut and restore the network.
struct Relay {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    addr: String,
}

impl Relay {
    async fn start() -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["turn-relay", "--secret", SECRET])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the TURN relay")?;
        let stdin = child.stdin.take().context("relay stdin")?;
        let mut lines = BufReader::new(child.stdout.take().context("relay stdout")?).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("the TURN relay did not start")??
            .context("the TURN relay exited")?;
        let addr = line
            .strip_prefix("relay ")
            .with_context(|| format!("the TURN relay said {line:?}"))?
            .to_owned();
        Ok(Self { child, stdin, addr })
    }

    async fn set(&mut self, cut: bool) -> anyhow::Result<()> {
        let line: &[u8] = if cut { b"cut\n" } else { b"restore\n" };
        self.stdin.write_all(line).await?;
        Ok(self.stdin.flush().await?)
    }
}

fn config(o: &Options, hz: f32) -> CallConfig {
    CallConfig {
        camera: Some(VideoSource::Synthetic),
        mic: Some(AudioSource::Tone(hz)),
        speaker: None,
        voice_processing: false,
        width: o.width,
        height: o.height,
        fps: o.fps,
        video_kbps: 300,
        decode: true,
        rtc: RtcOptions {
            loopback_only: true,
            relay_only: true,
            ice_failed_after: Some(ICE_FAILED_AFTER),
        },
        ..CallConfig::default()
    }
}

/// Counts what `call`'s events show into `seen` until the call ends.
fn watch(call: &mut Call, seen: Arc<Seen>) -> tokio::task::JoinHandle<()> {
    let mut events = std::mem::replace(&mut call.events, tokio::sync::mpsc::channel(1).1);
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                CallEvent::Video { kind, .. } => {
                    let n = match kind {
                        MediaKind::Screen => &seen.screen_frames,
                        _ => &seen.camera_frames,
                    };
                    n.fetch_add(1, Ordering::Relaxed);
                }
                CallEvent::Link { state, .. } => match state {
                    LinkState::Failed => drop(seen.failed.fetch_add(1, Ordering::Relaxed)),
                    LinkState::Connected => drop(seen.connected.fetch_add(1, Ordering::Relaxed)),
                    _ => {}
                },
                CallEvent::Signal(Event::Closed(why)) => {
                    *seen.ended.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(format!("{why:?}"));
                }
                CallEvent::DeviceLost { device, error } => {
                    *seen.ended.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(format!("lost {device:?}: {error}"));
                }
                _ => {}
            }
        }
    })
}

/// Runs the soak; `server_bin` is the parley-server to start (with the relay as its TURN).
pub async fn run(server_bin: &std::path::Path, o: &Options) -> anyhow::Result<Report> {
    let x = parley_test_support::xvfb::Xvfb::start(1280, 720);
    // Screen capture reads DISPLAY; nothing else in this process uses X.
    std::env::set_var("DISPLAY", &x.display);
    let mut relay = Relay::start().await?;
    let turn_urls = format!("[\"turn:{}?transport=udp\"]", relay.addr);
    let server = Server::parley_with(
        server_bin,
        None,
        &[
            ("PARLEY_TURN_URLS", turn_urls.as_str()),
            ("PARLEY_TURN_SECRET", SECRET),
            // Longer than the run: the participants' tokens are never refreshed.
            ("PARLEY_ACCESS_TOKEN_TTL_SECS", "7200"),
            ("PARLEY_TURN_CREDENTIAL_TTL_SECS", "7200"),
        ],
    )
    .await?;
    let result = soak(&server, &mut relay, o).await;
    server.stop().await;
    let _ = relay.child.kill().await;
    drop(x);
    result
}

async fn soak(server: &Server, relay: &mut Relay, o: &Options) -> anyhow::Result<Report> {
    let http = reqwest::Client::new();
    let api = Api::new(&server.base_url);
    let mut tokens = Vec::new();
    for (name, _) in PEOPLE {
        tokens.push(register(&http, &server.base_url, name).await?);
    }
    let code: MeetingCode = api
        .create_meeting(
            &tokens[0],
            &CreateMeetingRequest {
                title: "Call soak".into(),
                passcode: None,
                waiting_room: false,
                allow_guests: false,
            },
        )
        .await?
        .code;
    let me = std::process::id();
    let t0 = Instant::now();
    let start = Process::of(me)?;
    let mut calls = Vec::new();
    let mut seen = Vec::new();
    let mut watchers = Vec::new();
    for (i, (name, hz)) in PEOPLE.iter().enumerate() {
        let join = JoinOptions {
            code: code.clone(),
            display_name: (*name).into(),
            passcode: None,
        };
        let mut call = Call::start(
            api.ws_url(),
            StaticToken(tokens[i].clone()),
            join,
            config(o, *hz),
        )
        .await
        .with_context(|| format!("{name} joining"))?;
        let s = Arc::new(Seen::default());
        watchers.push(watch(&mut call, s.clone()));
        calls.push(call);
        seen.push(s);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let mut errors = Vec::new();
    let mut samples = vec![Sample {
        at_secs: 0.0,
        rss_kib: start.rss_kib,
        fds: start.fds,
        threads: start.threads,
        camera_frames: 0,
        screen_frames: 0,
        least_camera_frames: 0,
        disturbed: true,
        sharing: false,
        decoders: 0,
    }];
    let mut outages: Vec<(f64, u64)> = Vec::new();
    let (mut toggles, mut shares) = (0u64, 0u64);
    let mut camera_off: Option<usize> = None;
    let mut sharing: Option<(usize, f64)> = None;
    let mut cut_until: Option<f64> = None;
    let mut last_counts = vec![0u64; PEOPLE.len()];
    let mut last_screen = 0u64;
    let (mut next_outage, mut next_toggle, mut next_share, mut next_sample) = (
        o.outage_every_secs as f64,
        o.toggle_every_secs as f64,
        o.share_every_secs as f64 / 2.0,
        o.sample_secs as f64,
    );
    let secs = o.secs as f64;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let t = t0.elapsed().as_secs_f64();
        if t >= secs {
            break;
        }
        if let Some(until) = cut_until {
            if t >= until {
                relay.set(false).await?;
                cut_until = None;
            }
        } else if o.outage_every_secs > 0 && t >= next_outage {
            let len = o.outage_secs[outages.len() % o.outage_secs.len().max(1)];
            relay.set(true).await?;
            eprintln!("  call soak {t:>6.0} s: network cut for {len} s");
            outages.push((t, len));
            cut_until = Some(t + len as f64);
            next_outage += o.outage_every_secs as f64;
        }
        if o.toggle_every_secs > 0 && t >= next_toggle {
            if let Some(i) = camera_off.take() {
                calls[i].set_camera(true).await;
            }
            let i = (toggles as usize) % calls.len();
            calls[i].set_camera(false).await;
            camera_off = Some(i);
            toggles += 1;
            next_toggle += o.toggle_every_secs as f64;
        }
        match sharing {
            Some((i, since)) if t >= since + o.share_secs as f64 => {
                calls[i].stop_screen().await;
                sharing = None;
            }
            None if o.share_every_secs > 0 && t >= next_share => {
                let i = (shares as usize) % calls.len();
                if let Err(e) = calls[i].start_screen(ScreenTarget::Monitor(None)).await {
                    errors.push(format!("{:.0} s: {} could not share: {e}", t, PEOPLE[i].0));
                }
                sharing = Some((i, t));
                shares += 1;
                next_share += o.share_every_secs as f64;
            }
            _ => {}
        }
        for (i, s) in seen.iter().enumerate() {
            if let Some(why) = s.ended.lock().unwrap_or_else(|e| e.into_inner()).take() {
                errors.push(format!("{:.0} s: {}: {why}", t, PEOPLE[i].0));
            }
        }
        if t >= next_sample {
            next_sample += o.sample_secs as f64;
            let p = Process::of(me)?;
            let counts: Vec<u64> = seen
                .iter()
                .map(|s| s.camera_frames.load(Ordering::Relaxed))
                .collect();
            let screen: u64 = seen
                .iter()
                .map(|s| s.screen_frames.load(Ordering::Relaxed))
                .sum();
            let got: Vec<u64> = counts
                .iter()
                .zip(&last_counts)
                .map(|(now, before)| now - before)
                .collect();
            let since = t - o.sample_secs as f64;
            let disturbed = outages
                .iter()
                .any(|&(at, len)| since < at + len as f64 + RECOVERY.as_secs_f64() && t > at)
                || since < RECOVERY.as_secs_f64();
            let sample = Sample {
                at_secs: t,
                rss_kib: p.rss_kib,
                fds: p.fds,
                threads: p.threads,
                camera_frames: got.iter().sum(),
                screen_frames: screen - last_screen,
                least_camera_frames: got.iter().copied().min().unwrap_or(0),
                disturbed,
                sharing: sharing.is_some(),
                decoders: calls.iter().map(|c| c.video_decoders()).sum(),
            };
            // At most one camera is off: every receiver sees at least two others.
            let least = (o.fps as u64 * o.sample_secs) / 2;
            if !disturbed && sample.least_camera_frames < least {
                errors.push(format!(
                    "{t:.0} s: a receiver decoded {} camera frames in {} s (at least {least} expected)",
                    sample.least_camera_frames, o.sample_secs
                ));
            }
            eprintln!(
                "  call soak {:>6.0} s: RSS {:>7.1} MiB, {:>3} threads, {:>4} fds, camera frames {:>5} (least {:>4}), screen frames {:>4}, decoders {:>2}{}",
                t,
                p.rss_kib as f64 / 1024.0,
                p.threads,
                p.fds,
                sample.camera_frames,
                sample.least_camera_frames,
                sample.screen_frames,
                sample.decoders,
                if disturbed { " (outage or recovery)" } else { "" }
            );
            samples.push(sample);
            last_counts = counts;
            last_screen = screen;
        }
    }
    if cut_until.is_some() {
        relay.set(false).await?;
    }
    for call in &calls {
        call.leave().await;
    }
    for w in watchers {
        let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
    }
    // Like is compared with like: the warm-up and end figures are taken with no share running.
    let warm = *samples
        .iter()
        .find(|s| s.at_secs >= o.warmup_secs as f64 && !s.sharing)
        .context("no sample without a share after the warm-up")?;
    let end = *samples
        .iter()
        .rev()
        .find(|s| !s.sharing)
        .context("no sample")?;
    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at_secs >= warm.at_secs)
        .collect();
    let peak_after_warmup = Sample {
        at_secs: f64::NAN,
        rss_kib: after.iter().map(|s| s.rss_kib).max().unwrap_or(0),
        fds: after.iter().map(|s| s.fds).max().unwrap_or(0),
        threads: after.iter().map(|s| s.threads).max().unwrap_or(0),
        ..end
    };
    let sum = |f: fn(&Seen) -> &AtomicU64| -> u64 {
        seen.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
    };
    Ok(Report {
        secs: o.secs,
        warmup_secs: o.warmup_secs,
        width: o.width,
        height: o.height,
        fps: o.fps,
        start: samples[0],
        warm,
        end,
        peak_after_warmup,
        outages,
        camera_toggles: toggles,
        screen_shares: shares,
        camera_frames: sum(|s| &s.camera_frames),
        screen_frames: sum(|s| &s.screen_frames),
        links_failed: sum(|s| &s.failed),
        links_connected: sum(|s| &s.connected),
        samples,
        errors,
    })
}

/// Prints the figures and says whether the run held: no error, video after every outage,
/// and RSS, threads and descriptors at the end within `tolerance` of their value after
/// warm-up.
pub fn verdict(r: &Report, tolerance: f64) -> anyhow::Result<()> {
    let at = [&r.start, &r.warm, &r.end, &r.peak_after_warmup];
    let rows = [
        in_mib("engine process RSS, MiB", at, |s| s.rss_kib),
        counted("threads", at, |s| s.threads),
        counted("open file descriptors", at, |s| s.fds),
    ];
    growth_table(
        &format!(
            "4 engines, {}x{}@{}, {} s",
            r.width, r.height, r.fps, r.secs
        ),
        r.warmup_secs,
        &rows,
    );
    println!(
        "outages {} ({}), camera toggles {}, screen shares {}; decoded camera frames {}, screen frames {}; media connections failed {}, connected {}; errors {}",
        r.outages.len(),
        r.outages
            .iter()
            .map(|(at, len)| format!("{at:.0} s for {len} s"))
            .collect::<Vec<_>>()
            .join(", "),
        r.camera_toggles,
        r.screen_shares,
        r.camera_frames,
        r.screen_frames,
        r.links_failed,
        r.links_connected,
        r.errors.len()
    );
    let mut problems = r.errors.clone();
    if r.screen_shares > 0 && r.screen_frames == 0 {
        problems.push("no shared screen frame was decoded".into());
    }
    problems.extend(rows.iter().filter_map(|g| g.grown(tolerance)));
    if problems.is_empty() {
        println!("call soak: held (within {:.0} %)", tolerance * 100.0);
        Ok(())
    } else {
        for p in &problems {
            eprintln!("  {p}");
        }
        bail!("call soak: {}", problems.join("; "))
    }
}
