//! Join time: from the join command to the first decoded remote video frame, two participants
//! on loopback. A host sits in the meeting sending synthetic video; a guest joins, waits for
//! the host's first decoded frame, leaves, and joins again. Each join is split into the steps
//! a user waits for: the REST join, the WebSocket welcome, ICE connected, DTLS done (the peer
//! connection connected) and the first decoded frame, each measured from the join command.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use parley_engine::call::{Call, CallConfig, CallEvent, VideoSource};
use parley_engine::rest::Api;
use parley_engine::rtc::{LinkState, MediaKind, RtcOptions};
use parley_engine::signaling::{Event, JoinOptions, StaticToken};
use parley_shared::api::{CreateMeetingRequest, RegisterRequest};
use parley_shared::signal::ServerMsg;
use parley_shared::MeetingCode;
use serde::Serialize;

/// How long one join may take before the run fails.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);

/// One join's milestones, milliseconds after the join command.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub rest_ms: f64,
    pub welcome_ms: f64,
    pub ice_ms: f64,
    pub dtls_ms: f64,
    pub first_frame_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub joins: Vec<Sample>,
    pub width: u32,
    pub height: u32,
}

async fn sign_up(api: &Api, name: &str) -> anyhow::Result<String> {
    let r = api
        .register(&RegisterRequest {
            username: name.into(),
            email: format!("{name}@example.org"),
            password: format!("{name}-Str0ng-Passphrase"),
        })
        .await
        .with_context(|| format!("registering {name}"))?;
    Ok(r.tokens
        .context("the server wants e-mail verification")?
        .access_token)
}

/// Joins `code` as `name`, sending synthetic video; `decode` whether to decode what arrives.
async fn start_call(
    api: &Api,
    token: &str,
    code: &MeetingCode,
    name: &str,
    (width, height): (u32, u32),
    decode: bool,
) -> anyhow::Result<Call> {
    let config = CallConfig {
        camera: Some(VideoSource::Synthetic),
        mic: None,
        speaker: None,
        voice_processing: false,
        width,
        height,
        decode,
        rtc: RtcOptions {
            loopback_only: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let join = JoinOptions {
        code: code.clone(),
        display_name: name.into(),
        passcode: None,
    };
    Ok(Call::start(api.ws_url(), StaticToken(token.into()), join, config).await?)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Runs `joins` joins against the server at `base_url`.
pub async fn run(base_url: &str, joins: usize, width: u32, height: u32) -> anyhow::Result<Report> {
    let api = Api::new(base_url);
    let host_token = sign_up(&api, "joinhost").await?;
    let guest_token = sign_up(&api, "joinguest").await?;
    let code: MeetingCode = api
        .create_meeting(
            &host_token,
            &CreateMeetingRequest {
                title: "Join time".into(),
                passcode: None,
                waiting_room: false,
                allow_guests: false,
            },
        )
        .await?
        .code;

    let mut host = start_call(&api, &host_token, &code, "host", (width, height), false).await?;
    // Wait for the host's welcome, then keep its events drained (a full queue stalls a call).
    let deadline = Instant::now() + JOIN_TIMEOUT;
    loop {
        let ev = tokio::time::timeout_at(deadline.into(), host.events.recv())
            .await
            .context("the host was not welcomed")?
            .context("the host's call ended")?;
        if let CallEvent::Signal(Event::Server(ServerMsg::Welcome { .. })) = ev {
            break;
        }
    }
    let mut host_events = std::mem::replace(&mut host.events, tokio::sync::mpsc::channel(1).1);
    let drain = tokio::spawn(async move { while host_events.recv().await.is_some() {} });

    let mut samples = Vec::with_capacity(joins);
    for i in 0..joins {
        let s = one_join(&api, &guest_token, &code, width, height)
            .await
            .with_context(|| format!("join {}", i + 1))?;
        eprintln!(
            "  join {:>2}: REST {:>6.1} ms, welcome {:>6.1}, ICE {:>6.1}, DTLS {:>6.1}, first frame {:>6.1}",
            i + 1,
            s.rest_ms,
            s.welcome_ms,
            s.ice_ms,
            s.dtls_ms,
            s.first_frame_ms
        );
        samples.push(s);
        // Let the host see the guest go before the next join.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    host.leave().await;
    drop(host);
    drain.abort();
    Ok(Report {
        joins: samples,
        width,
        height,
    })
}

async fn one_join(
    api: &Api,
    token: &str,
    code: &MeetingCode,
    width: u32,
    height: u32,
) -> anyhow::Result<Sample> {
    let t0 = Instant::now();
    // What the app does when the user presses Join: the REST join (admission, passcode)…
    api.join_meeting(token, code, None).await?;
    let rest_ms = ms(t0);
    // …then the call: devices, the signaling connection, the peer connections.
    let mut call = start_call(api, token, code, "guest", (width, height), true).await?;
    let (mut welcome_ms, mut ice_ms, mut dtls_ms) = (None, None, None);
    let deadline = Instant::now() + JOIN_TIMEOUT;
    let first_frame_ms = loop {
        let Ok(ev) = tokio::time::timeout_at(deadline.into(), call.events.recv()).await else {
            bail!(
                "no remote frame within {JOIN_TIMEOUT:?} (welcome {welcome_ms:?}, ICE {ice_ms:?}, DTLS {dtls_ms:?})"
            );
        };
        match ev.context("the call ended")? {
            CallEvent::Signal(Event::Server(ServerMsg::Welcome { .. })) => {
                welcome_ms.get_or_insert(ms(t0));
            }
            CallEvent::Signal(Event::Closed(why)) => bail!("the call closed: {why:?}"),
            CallEvent::Ice { state, .. } if state == "connected" => {
                ice_ms.get_or_insert(ms(t0));
            }
            CallEvent::Link {
                state: LinkState::Connected,
                ..
            } => {
                dtls_ms.get_or_insert(ms(t0));
            }
            CallEvent::Video {
                kind: MediaKind::Camera,
                ..
            } => break ms(t0),
            _ => {}
        }
    };
    call.leave().await;
    let nan = f64::NAN;
    Ok(Sample {
        rest_ms,
        welcome_ms: welcome_ms.unwrap_or(nan),
        ice_ms: ice_ms.unwrap_or(nan),
        dtls_ms: dtls_ms.unwrap_or(nan),
        first_frame_ms,
    })
}

/// The `p`th percentile (0–1) of `values` (nearest rank).
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((v.len() as f64) * p).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// Prints p50/p95 of each step.
pub fn print_table(r: &Report) {
    println!(
        "| join to first frame, {} joins, {}×{} | p50 ms | p95 ms |",
        r.joins.len(),
        r.width,
        r.height
    );
    println!("|---|---|---|");
    type Step = (&'static str, fn(&Sample) -> f64);
    let steps: [Step; 5] = [
        ("REST join", |s| s.rest_ms),
        ("WebSocket welcome", |s| s.welcome_ms),
        ("ICE connected", |s| s.ice_ms),
        ("DTLS connected", |s| s.dtls_ms),
        ("first decoded frame", |s| s.first_frame_ms),
    ];
    for (name, f) in steps {
        let v: Vec<f64> = r.joins.iter().map(f).collect();
        println!(
            "| {name} | {:.1} | {:.1} |",
            percentile(&v, 0.5),
            percentile(&v, 0.95)
        );
    }
}
