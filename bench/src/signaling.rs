//! Signaling load: N WebSocket clients in meetings of 4 on loopback. At join each pair does
//! offer/answer and 20 ICE messages (10 each way; the newcomer offers, as in a real call);
//! then every client chats at a fixed rate, stepped up phase by phase. The same workload runs
//! against Parley's server and against a Socket.IO 4 server (bench/socketio/server.js), each
//! a separate process whose memory and CPU are read from /proc.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _};
use parley_shared::signal::{ClientMsg, IceCandidate, ServerMsg, SUBPROTOCOL};
use parley_shared::{MeetingCode, PeerId};
use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use crate::server::Server;

/// Clients per meeting.
pub const GROUP: usize = 4;
/// ICE candidates each side of a pair sends.
const ICE_PER_SIDE: usize = 10;
/// A phase fails the latency goal above this p99.
const P99_GOAL_MS: f64 = 50.0;

/// Which server speaks to the clients.
#[derive(Clone)]
pub enum Target {
    /// `ws://…/api/ws`: one access token per seat in a meeting (4 accounts), meeting codes.
    Parley {
        ws_url: String,
        tokens: Vec<String>,
        codes: Vec<String>,
    },
    /// Engine.IO 4 over WebSocket.
    SocketIo { ws_url: String },
}

/// What a client sees, whatever the protocol.
enum Seen {
    Welcome {
        others: Vec<String>,
    },
    Offer {
        from: String,
    },
    Answer {
        from: String,
    },
    Ice,
    Chat {
        text: String,
    },
    /// Engine.IO ping: answer "3".
    Ping,
    /// The server refused something.
    Refused(String),
    Other,
}

/// What a client says.
enum Say<'a> {
    Join { meeting: usize, name: &'a str },
    Offer { to: &'a str },
    Answer { to: &'a str },
    Ice { to: &'a str, n: usize },
    Chat { id: u64, text: &'a str },
}

/// A plausible SDP body (~2.4 KB, the size of a one-audio one-video offer).
fn sdp() -> &'static str {
    static SDP: OnceLock<String> = OnceLock::new();
    SDP.get_or_init(|| {
        let mut s = String::from("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n");
        let mut i = 0;
        while s.len() < 2400 {
            s.push_str(&format!(
                "a=rtpmap:{} VP8/90000\r\na=rtcp-fb:{} nack pli\r\na=fmtp:{} x-google-start-bitrate=800\r\n",
                96 + i % 30,
                96 + i % 30,
                96 + i % 30
            ));
            i += 1;
        }
        s
    })
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Self::Parley { .. } => "parley",
            Self::SocketIo { .. } => "socket.io",
        }
    }

    fn encode(&self, say: Say<'_>, seat: usize) -> anyhow::Result<String> {
        let candidate = |n: usize| IceCandidate {
            candidate: format!(
                "candidate:{n} 1 udp 2122260223 127.0.0.1 {} typ host generation 0",
                40000 + n
            ),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: Some("bench".into()),
        };
        Ok(match self {
            Self::Parley { codes, .. } => {
                let msg = match say {
                    Say::Join { meeting, name } => ClientMsg::Join {
                        code: MeetingCode::parse(&codes[meeting])?,
                        display_name: name.to_string(),
                        passcode: None,
                        resume_token: None,
                        after_seq: None,
                    },
                    Say::Offer { to } => ClientMsg::Offer {
                        to: PeerId(to.into()),
                        sdp: sdp().into(),
                    },
                    Say::Answer { to } => ClientMsg::Answer {
                        to: PeerId(to.into()),
                        sdp: sdp().into(),
                    },
                    Say::Ice { to, n } => ClientMsg::Ice {
                        to: PeerId(to.into()),
                        candidate: candidate(n),
                    },
                    Say::Chat { id, text } => ClientMsg::Chat {
                        client_msg_id: format!("{seat}-{id}"),
                        text: text.into(),
                    },
                };
                serde_json::to_string(&msg)?
            }
            Self::SocketIo { .. } => {
                let (ack, event, data) = match say {
                    Say::Join { meeting, name } => (
                        String::new(),
                        "join",
                        serde_json::json!({"code": format!("m{meeting}"), "name": name}),
                    ),
                    Say::Offer { to } => (
                        String::new(),
                        "offer",
                        serde_json::json!({"to": to, "sdp": sdp()}),
                    ),
                    Say::Answer { to } => (
                        String::new(),
                        "answer",
                        serde_json::json!({"to": to, "sdp": sdp()}),
                    ),
                    Say::Ice { to, n } => (
                        String::new(),
                        "ice",
                        serde_json::json!({"to": to, "candidate": candidate(n)}),
                    ),
                    Say::Chat { id, text } => (
                        id.to_string(),
                        "chat",
                        serde_json::json!({"client_msg_id": format!("{seat}-{id}"), "text": text}),
                    ),
                };
                format!("42{ack}{}", serde_json::json!([event, data]))
            }
        })
    }

    fn decode(&self, text: &str) -> Seen {
        match self {
            Self::Parley { .. } => match serde_json::from_str::<ServerMsg>(text) {
                Ok(ServerMsg::Welcome { participants, .. }) => Seen::Welcome {
                    others: participants.into_iter().map(|p| p.peer_id.0).collect(),
                },
                Ok(ServerMsg::Offer { from, .. }) => Seen::Offer { from: from.0 },
                Ok(ServerMsg::Answer { from, .. }) => Seen::Answer { from: from.0 },
                Ok(ServerMsg::Ice { .. }) => Seen::Ice,
                Ok(ServerMsg::Chat { message }) => Seen::Chat { text: message.text },
                Ok(ServerMsg::Error { code, message }) => {
                    Seen::Refused(format!("{code:?}: {message}"))
                }
                _ => Seen::Other,
            },
            Self::SocketIo { .. } => {
                if text == "2" {
                    return Seen::Ping;
                }
                let Some(body) = text.strip_prefix("42") else {
                    return Seen::Other;
                };
                let Ok(serde_json::Value::Array(v)) = serde_json::from_str(body) else {
                    return Seen::Other;
                };
                let (Some(event), Some(data)) = (v.first().and_then(|e| e.as_str()), v.get(1))
                else {
                    return Seen::Other;
                };
                let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
                match event {
                    "welcome" => Seen::Welcome {
                        others: data["participants"]
                            .as_array()
                            .map(|a| a.iter().map(|p| s(&p["peer_id"])).collect())
                            .unwrap_or_default(),
                    },
                    "offer" => Seen::Offer {
                        from: s(&data["from"]),
                    },
                    "answer" => Seen::Answer {
                        from: s(&data["from"]),
                    },
                    "ice" => Seen::Ice,
                    "chat" => Seen::Chat {
                        text: s(&data["message"]["text"]),
                    },
                    _ => Seen::Other,
                }
            }
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(target: &Target, seat: usize) -> anyhow::Result<Ws> {
    match target {
        Target::Parley { ws_url, tokens, .. } => {
            let mut req = ws_url.as_str().into_client_request()?;
            let h = req.headers_mut();
            h.insert(
                "authorization",
                format!("Bearer {}", tokens[seat % GROUP]).parse()?,
            );
            h.insert("sec-websocket-protocol", SUBPROTOCOL.parse()?);
            Ok(tokio_tungstenite::connect_async(req).await?.0)
        }
        Target::SocketIo { ws_url } => {
            let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str()).await?;
            // Engine.IO open ("0{…}"), then connect to the default namespace.
            next_text(&mut ws).await?;
            ws.send(Message::text("40")).await?;
            let ok = next_text(&mut ws).await?;
            if !ok.starts_with("40") {
                bail!("socket.io refused the namespace: {ok}");
            }
            Ok(ws)
        }
    }
}

async fn next_text(ws: &mut Ws) -> anyhow::Result<String> {
    while let Some(m) = ws.next().await {
        if let Message::Text(t) = m? {
            return Ok(t.to_string());
        }
    }
    bail!("closed")
}

/// Counters shared by all clients.
#[derive(Default)]
struct Tally {
    welcomes: AtomicU64,
    offers: AtomicU64,
    answers: AtomicU64,
    ice: AtomicU64,
    chats: AtomicU64,
    errors: AtomicU64,
    refused: AtomicU64,
    /// Chat delivery latencies (µs) in the current phase.
    latencies: Mutex<Vec<u32>>,
}

fn clock() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn micros() -> u64 {
    clock().elapsed().as_micros() as u64
}

/// One client: joins, does its part of the signaling, chats at the rate `rate` says (0: not).
async fn client(
    target: Arc<Target>,
    seat: usize,
    tally: Arc<Tally>,
    gate: Arc<Semaphore>,
    mut rate: watch::Receiver<f64>,
) -> anyhow::Result<()> {
    let meeting = seat / GROUP;
    let name = format!("bench-{seat}");
    let mut ws = {
        let _permit = gate.acquire().await?;
        let mut ws = connect(&target, seat).await?;
        let join = target.encode(
            Say::Join {
                meeting,
                name: &name,
            },
            seat,
        )?;
        ws.send(Message::text(join)).await?;
        ws
    };
    let mut ticker: Option<tokio::time::Interval> = None;
    let mut sent = 0u64;
    loop {
        let tick = async {
            match ticker.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            m = ws.next() => {
                let Some(m) = m else { return Ok(()) };
                let text = match m? {
                    Message::Text(t) => t,
                    Message::Close(_) => return Ok(()),
                    _ => continue,
                };
                let mut out = Vec::new();
                match target.decode(&text) {
                    Seen::Welcome { others } => {
                        tally.welcomes.fetch_add(1, Ordering::Relaxed);
                        for o in &others {
                            out.push(target.encode(Say::Offer { to: o }, seat)?);
                        }
                    }
                    Seen::Offer { from } => {
                        tally.offers.fetch_add(1, Ordering::Relaxed);
                        out.push(target.encode(Say::Answer { to: &from }, seat)?);
                        for n in 0..ICE_PER_SIDE {
                            out.push(target.encode(Say::Ice { to: &from, n }, seat)?);
                        }
                    }
                    Seen::Answer { from } => {
                        tally.answers.fetch_add(1, Ordering::Relaxed);
                        for n in 0..ICE_PER_SIDE {
                            out.push(target.encode(Say::Ice { to: &from, n }, seat)?);
                        }
                    }
                    Seen::Ice => {
                        tally.ice.fetch_add(1, Ordering::Relaxed);
                    }
                    Seen::Chat { text } => {
                        tally.chats.fetch_add(1, Ordering::Relaxed);
                        if let Some(t) = text.strip_prefix("t=").and_then(|t| t.parse::<u64>().ok()) {
                            let us = micros().saturating_sub(t).min(u32::MAX as u64) as u32;
                            if let Ok(mut l) = tally.latencies.lock() {
                                l.push(us);
                            }
                        }
                    }
                    Seen::Ping => out.push("3".to_string()),
                    Seen::Refused(why) => {
                        if tally.refused.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("client {seat}: the server refused: {why}");
                        }
                    }
                    Seen::Other => {}
                }
                for o in out {
                    ws.feed(Message::text(o)).await?;
                }
                ws.flush().await?;
            }
            _ = tick => {
                sent += 1;
                let text = format!("t={}", micros());
                let msg = target.encode(Say::Chat { id: sent, text: &text }, seat)?;
                ws.send(Message::text(msg)).await?;
            }
            changed = rate.changed() => {
                if changed.is_err() {
                    let _ = ws.close(None).await;
                    return Ok(());
                }
                let r = *rate.borrow_and_update();
                ticker = (r > 0.0).then(|| {
                    // Spread the clients' ticks over the period.
                    let period = Duration::from_secs_f64(1.0 / r);
                    let offset = period.mul_f64((seat % 97) as f64 / 97.0);
                    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    t
                });
            }
        }
    }
}

/// One chat phase's figures.
#[derive(Debug, Serialize)]
pub struct Phase {
    /// Chat messages each client sends per second.
    pub rate_per_client: f64,
    /// Chat messages delivered to clients per second (each goes to the 3 others).
    pub delivered_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Server CPU, in cores (1.0 = one core busy).
    pub server_cpu: f64,
    /// Server CPU time per delivered chat message, in microseconds (the issue 18 figure).
    pub cpu_us_per_delivered: f64,
}

/// A whole run against one server.
#[derive(Debug, Serialize)]
pub struct Report {
    pub server: String,
    pub clients: usize,
    pub join_storm_secs: f64,
    pub signaling_messages: u64,
    pub server_rss_base_mib: f64,
    pub server_rss_idle_mib: f64,
    pub rss_per_idle_connection_kib: f64,
    pub phases: Vec<Phase>,
    /// Highest delivered chat messages per second with p99 ≤ 50 ms.
    pub sustained_per_sec: f64,
    pub errors: u64,
    /// Messages the server answered with an error.
    pub refused: u64,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Runs the workload against `server` (already started, with `target` set up).
pub async fn run(
    server: &Server,
    target: Target,
    clients: usize,
    rates: &[f64],
    phase_secs: u64,
) -> anyhow::Result<Report> {
    clock();
    let meetings = clients / GROUP;
    let clients = meetings * GROUP;
    let tally = Arc::new(Tally::default());
    let gate = Arc::new(Semaphore::new(64));
    let (rate_tx, rate_rx) = watch::channel(0.0f64);
    let target = Arc::new(target);
    let base = server.rss_kib()?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for seat in 0..clients {
        let (target, tally, gate, rate) =
            (target.clone(), tally.clone(), gate.clone(), rate_rx.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = client(target, seat, tally.clone(), gate, rate).await {
                tally.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("client {seat}: {e:#}");
            }
        }));
    }
    // The join storm ends when every pair's offer, answer and ICE have arrived.
    let pairs = (meetings * GROUP * (GROUP - 1) / 2) as u64;
    let want_ice = pairs * 2 * ICE_PER_SIDE as u64;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (o, a, i) = (
            tally.offers.load(Ordering::Relaxed),
            tally.answers.load(Ordering::Relaxed),
            tally.ice.load(Ordering::Relaxed),
        );
        if o >= pairs && a >= pairs && i >= want_ice {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{}: join storm incomplete after 180 s: {} welcomes of {clients}, offers {o}/{pairs}, answers {a}/{pairs}, ice {i}/{want_ice}, {} client errors",
                target.name(),
                tally.welcomes.load(Ordering::Relaxed),
                tally.errors.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let storm = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = server.rss_kib()?;

    let mut phases = Vec::new();
    for &r in rates {
        let _ = rate_tx.send(r);
        // Settle, then measure.
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Ok(mut l) = tally.latencies.lock() {
            l.clear();
        }
        let c0 = tally.chats.load(Ordering::Relaxed);
        let cpu0 = server.cpu_secs()?;
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(phase_secs)).await;
        let secs = t0.elapsed().as_secs_f64();
        let cpu = (server.cpu_secs()? - cpu0) / secs;
        let delivered = (tally.chats.load(Ordering::Relaxed) - c0) as f64 / secs;
        let mut lat = tally
            .latencies
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        lat.sort_unstable();
        let phase = Phase {
            rate_per_client: r,
            delivered_per_sec: delivered,
            p50_ms: percentile(&lat, 0.50),
            p99_ms: percentile(&lat, 0.99),
            server_cpu: cpu,
            cpu_us_per_delivered: if delivered > 0.0 {
                cpu * 1e6 / delivered
            } else {
                f64::NAN
            },
        };
        eprintln!(
            "  {:>9} {r:>5.1} msg/s per client: {:>8.0} delivered/s, p50 {:>7.1} ms, p99 {:>7.1} ms, server CPU {:.2} cores, {:.1} µs per delivered",
            target.name(),
            phase.delivered_per_sec,
            phase.p50_ms,
            phase.p99_ms,
            phase.server_cpu,
            phase.cpu_us_per_delivered
        );
        let over = phase.p99_ms.is_nan() || phase.p99_ms > P99_GOAL_MS;
        phases.push(phase);
        if over {
            break;
        }
        let _ = rate_tx.send(0.0);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(rate_tx);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let sustained = phases
        .iter()
        .filter(|p| p.p99_ms <= P99_GOAL_MS)
        .map(|p| p.delivered_per_sec)
        .fold(0.0, f64::max);
    Ok(Report {
        server: target.name().into(),
        clients,
        join_storm_secs: storm,
        signaling_messages: pairs * (2 + 2 * ICE_PER_SIDE as u64),
        server_rss_base_mib: base as f64 / 1024.0,
        server_rss_idle_mib: idle as f64 / 1024.0,
        rss_per_idle_connection_kib: idle.saturating_sub(base) as f64 / clients as f64,
        phases,
        sustained_per_sec: sustained,
        errors: tally.errors.load(Ordering::Relaxed),
        refused: tally.refused.load(Ordering::Relaxed),
    })
}

/// Parley's side: four accounts (one per seat) and a meeting per group, over REST.
pub async fn parley_target(base_url: &str, meetings: usize) -> anyhow::Result<Target> {
    let http = reqwest::Client::new();
    let mut tokens = Vec::new();
    for seat in 0..GROUP {
        tokens.push(crate::server::register(&http, base_url, &format!("seat{seat}")).await?);
    }
    let mut codes = Vec::with_capacity(meetings);
    for i in 0..meetings {
        let r: serde_json::Value = http
            .post(format!("{base_url}/api/meetings"))
            .bearer_auth(&tokens[0])
            .json(&serde_json::json!({"title": format!("bench {i}")}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let code = r["code"]
            .as_str()
            .or_else(|| r["meeting"]["code"].as_str())
            .context("create meeting gave no code")?;
        codes.push(code.to_string());
    }
    let ws_url = base_url.replacen("http://", "ws://", 1) + "/api/ws";
    Ok(Target::Parley {
        ws_url,
        tokens,
        codes,
    })
}
