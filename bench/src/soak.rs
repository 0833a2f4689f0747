//! `parley-bench soak` (issue 18): N clients in meetings of 4 for a while, each living the
//! life of a participant over and over: join, chat, toggle its camera, then leave, drop its
//! connection and resume within the grace period, or close and come back fresh. The server's
//! resident memory, open file descriptors and threads are sampled throughout; the run fails
//! when the figures at the end are more than `--tolerance` above the figures after warm-up,
//! or when anything went wrong (a refusal, a lost acknowledgement, a failed connection).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _};
use parley_shared::signal::{ClientMsg, MediaState, ServerMsg, SUBPROTOCOL};
use parley_shared::MeetingCode;
use serde::Serialize;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use crate::figures::{counted, growth_table, in_mib, Growth};
use crate::server::Server;

/// People per meeting.
const GROUP: usize = 4;
/// Mean time between two chat messages of one client, seconds.
const CHAT_EVERY_SECS: f64 = 2.0;
/// How long anything the client waits for (a welcome, the last acknowledgements) may take.
const WAIT: Duration = Duration::from_secs(15);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One reading of the server process.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    pub at_secs: f64,
    pub rss_kib: u64,
    /// Of the RSS: the heap and stacks, and mapped files (code first run late counts here).
    pub rss_anon_kib: u64,
    pub rss_file_kib: u64,
    pub fds: u64,
    pub threads: u64,
    /// Clients in a meeting at the time.
    pub connected: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub clients: usize,
    pub secs: u64,
    pub warmup_secs: u64,
    /// Before any client.
    pub start: Sample,
    /// The first sample at or after the warm-up.
    pub warm: Sample,
    /// The last sample under load.
    pub end: Sample,
    /// Highest after warm-up.
    pub peak_after_warmup: Sample,
    pub samples: Vec<Sample>,
    /// Joins welcomed, by kind.
    pub joins: u64,
    pub resumes: u64,
    pub leaves: u64,
    pub drops: u64,
    pub rejoins: u64,
    pub chats_sent: u64,
    pub chats_acked: u64,
    pub chats_delivered: u64,
    pub media_toggles: u64,
    /// Connections that failed, welcomes that did not come, acknowledgements missing at the
    /// end, messages the server refused.
    pub errors: u64,
}

#[derive(Default)]
struct Tally {
    connected: AtomicU64,
    joins: AtomicU64,
    resumes: AtomicU64,
    leaves: AtomicU64,
    drops: AtomicU64,
    rejoins: AtomicU64,
    chats_sent: AtomicU64,
    chats_acked: AtomicU64,
    chats_delivered: AtomicU64,
    media_toggles: AtomicU64,
    errors: AtomicU64,
}

impl Tally {
    fn error(&self, seat: usize, what: impl std::fmt::Display) {
        if self.errors.fetch_add(1, Ordering::Relaxed) < 10 {
            eprintln!("soak: client {seat}: {what}");
        }
    }
}

/// splitmix64: each client's choices, repeatable from its seat.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How a stay ends.
#[derive(Clone, Copy)]
enum Exit {
    /// `leave`, then the close handshake.
    Leave,
    /// The connection just ends (no close frame); the client resumes at once.
    Drop,
    /// A close, a pause, and a fresh join (no resume token).
    Rejoin,
}

struct Seat {
    seat: usize,
    code: MeetingCode,
    token: String,
    ws_url: String,
    /// Held over a dropped connection, for the resume.
    resume: Option<String>,
    last_seq: i64,
    /// Sent and not yet acknowledged: sent again after a resume, as the app does.
    unacked: BTreeMap<String, String>,
    sent: u64,
    camera: bool,
}

impl Seat {
    async fn connect(&self) -> anyhow::Result<Ws> {
        let mut req = self.ws_url.as_str().into_client_request()?;
        let h = req.headers_mut();
        h.insert("authorization", format!("Bearer {}", self.token).parse()?);
        h.insert("sec-websocket-protocol", SUBPROTOCOL.parse()?);
        Ok(tokio_tungstenite::connect_async(req).await?.0)
    }

    /// Connects and joins; returns the socket once welcomed.
    async fn join(&mut self, tally: &Tally) -> anyhow::Result<Ws> {
        let mut ws = self.connect().await?;
        let resuming = self.resume.is_some();
        let join = ClientMsg::Join {
            code: self.code.clone(),
            display_name: format!("soak {}", self.seat),
            passcode: None,
            resume_token: self.resume.take(),
            after_seq: resuming.then_some(self.last_seq),
        };
        send(&mut ws, &join).await?;
        let welcome = tokio::time::timeout(WAIT, async {
            while let Some(m) = ws.next().await {
                if let Message::Text(t) = m? {
                    match serde_json::from_str::<ServerMsg>(&t)? {
                        ServerMsg::Welcome {
                            resume_token,
                            last_seq,
                            ..
                        } => return anyhow::Ok((resume_token, last_seq)),
                        ServerMsg::Error { code, message } => {
                            bail!("join refused: {code:?}: {message}")
                        }
                        _ => {}
                    }
                }
            }
            bail!("closed before the welcome")
        })
        .await
        .context("no welcome")??;
        self.resume = Some(welcome.0);
        if !resuming {
            self.last_seq = self.last_seq.max(welcome.1);
        }
        tally.joins.fetch_add(1, Ordering::Relaxed);
        if resuming {
            tally.resumes.fetch_add(1, Ordering::Relaxed);
        }
        // What was not acknowledged before the drop goes again, with the same ids.
        for (id, text) in self.unacked.clone() {
            send(
                &mut ws,
                &ClientMsg::Chat {
                    client_msg_id: id,
                    text,
                },
            )
            .await?;
        }
        Ok(ws)
    }

    /// Handles what the server sent.
    fn seen(&mut self, text: &str, tally: &Tally) -> anyhow::Result<()> {
        match serde_json::from_str::<ServerMsg>(text)? {
            ServerMsg::ChatAck {
                client_msg_id, seq, ..
            } => {
                if self.unacked.remove(&client_msg_id).is_some() {
                    tally.chats_acked.fetch_add(1, Ordering::Relaxed);
                }
                self.last_seq = self.last_seq.max(seq);
            }
            ServerMsg::Chat { message } => {
                tally.chats_delivered.fetch_add(1, Ordering::Relaxed);
                self.last_seq = self.last_seq.max(message.seq);
            }
            ServerMsg::Error { code, message } => {
                tally.error(self.seat, format!("refused: {code:?}: {message}"));
            }
            _ => {}
        }
        Ok(())
    }

    /// One stay: chats and camera toggles until `until`, then `exit`.
    async fn stay(
        &mut self,
        mut ws: Ws,
        until: tokio::time::Instant,
        exit: Exit,
        rng: &mut Rng,
        tally: &Tally,
    ) -> anyhow::Result<()> {
        let mut next_chat = tokio::time::Instant::now() + chat_gap(rng);
        loop {
            tokio::select! {
                m = ws.next() => match m {
                    Some(Ok(Message::Text(t))) => self.seen(&t, tally)?,
                    Some(Ok(Message::Close(_))) | None => bail!("the server closed the socket"),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                },
                () = tokio::time::sleep_until(next_chat) => {
                    next_chat += chat_gap(rng);
                    self.sent += 1;
                    let id = format!("{}-{}", self.seat, self.sent);
                    let text = format!("message {} from seat {}", self.sent, self.seat);
                    self.unacked.insert(id.clone(), text.clone());
                    tally.chats_sent.fetch_add(1, Ordering::Relaxed);
                    send(&mut ws, &ClientMsg::Chat { client_msg_id: id, text }).await?;
                    if rng.below(10) == 0 {
                        self.camera = !self.camera;
                        tally.media_toggles.fetch_add(1, Ordering::Relaxed);
                        let media = MediaState { audio: true, video: self.camera, screen: false };
                        send(&mut ws, &ClientMsg::MediaState(media)).await?;
                    }
                }
                () = tokio::time::sleep_until(until) => break,
            }
        }
        match exit {
            Exit::Drop => {
                // The socket goes without a word (a lost network); the resume token stays.
                tally.drops.fetch_add(1, Ordering::Relaxed);
                drop(ws);
                Ok(())
            }
            Exit::Leave | Exit::Rejoin => {
                // Wait for the last acknowledgements, then leave properly.
                let waited = tokio::time::timeout(WAIT, async {
                    while !self.unacked.is_empty() {
                        match ws.next().await {
                            Some(Ok(Message::Text(t))) => self.seen(&t, tally)?,
                            Some(Ok(_)) => {}
                            Some(Err(e)) => return Err(e.into()),
                            None => bail!("closed with messages unacknowledged"),
                        }
                    }
                    anyhow::Ok(())
                })
                .await;
                match waited {
                    Ok(r) => r?,
                    Err(_) => bail!("{} messages not acknowledged", self.unacked.len()),
                }
                send(&mut ws, &ClientMsg::Leave).await?;
                // The server closes a leaver's socket: read up to its close.
                let _ = tokio::time::timeout(WAIT, async {
                    while let Some(Ok(m)) = ws.next().await {
                        if let Message::Close(_) = m {
                            break;
                        }
                    }
                })
                .await;
                self.resume = None;
                if matches!(exit, Exit::Leave) {
                    tally.leaves.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.rejoins.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
        }
    }
}

fn chat_gap(rng: &mut Rng) -> Duration {
    Duration::from_secs_f64(CHAT_EVERY_SECS * (0.5 + rng.unit()))
}

async fn send(ws: &mut Ws, msg: &ClientMsg) -> anyhow::Result<()> {
    ws.send(Message::text(serde_json::to_string(msg)?)).await?;
    Ok(())
}

/// One client's life until `end`.
async fn life(mut seat: Seat, end: tokio::time::Instant, stay: (u64, u64), tally: Arc<Tally>) {
    let mut rng = Rng(seat.seat as u64 * 7919 + 1);
    // Arrivals spread over the first seconds, as people do.
    tokio::time::sleep(Duration::from_millis(rng.below(10_000))).await;
    while tokio::time::Instant::now() < end {
        let ws = match seat.join(&tally).await {
            Ok(ws) => ws,
            Err(e) => {
                tally.error(seat.seat, format!("{e:#}"));
                seat.resume = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        tally.connected.fetch_add(1, Ordering::Relaxed);
        let this_stay = Duration::from_secs(stay.0 + rng.below(stay.1.saturating_sub(stay.0) + 1));
        let until = (tokio::time::Instant::now() + this_stay).min(end);
        let exit = if until >= end {
            Exit::Leave
        } else {
            match rng.below(10) {
                0..=3 => Exit::Leave,
                4..=7 => Exit::Drop,
                _ => Exit::Rejoin,
            }
        };
        let outcome = seat.stay(ws, until, exit, &mut rng, &tally).await;
        tally.connected.fetch_sub(1, Ordering::Relaxed);
        if let Err(e) = outcome {
            tally.error(seat.seat, format!("{e:#}"));
            seat.resume = None;
            continue;
        }
        match exit {
            Exit::Drop => {}
            Exit::Rejoin => tokio::time::sleep(Duration::from_millis(500 + rng.below(2500))).await,
            // Someone who left comes back to the next meeting a little later.
            Exit::Leave => tokio::time::sleep(Duration::from_secs(1 + rng.below(5))).await,
        }
    }
    if !seat.unacked.is_empty() {
        tally.error(
            seat.seat,
            format!("{} messages never acknowledged", seat.unacked.len()),
        );
    }
}

fn sample(server: &Server, t0: Instant, tally: &Tally) -> anyhow::Result<Sample> {
    let p = server.process()?;
    Ok(Sample {
        at_secs: t0.elapsed().as_secs_f64(),
        rss_kib: p.rss_kib,
        rss_anon_kib: p.rss_anon_kib,
        rss_file_kib: p.rss_file_kib,
        fds: p.fds,
        threads: p.threads,
        connected: tally.connected.load(Ordering::Relaxed),
    })
}

/// What the soak does, and how long (the command line's options).
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    #[arg(long, default_value_t = 2000)]
    pub clients: usize,
    #[arg(long, default_value_t = 600)]
    pub secs: u64,
    #[arg(long, default_value_t = 120)]
    pub warmup_secs: u64,
    #[arg(long, default_value_t = 10)]
    pub sample_secs: u64,
    /// How long one stay in a meeting lasts, seconds: uniform between the two.
    #[arg(long, value_delimiter = ',', default_values_t = [20, 90])]
    pub stay_secs: Vec<u64>,
}

/// Runs the soak against `server` (started, with accounts `tokens` and meeting `codes`).
pub async fn run(
    server: &Server,
    tokens: Vec<String>,
    codes: Vec<String>,
    o: &Options,
) -> anyhow::Result<Report> {
    let (secs, warmup_secs, sample_secs) = (o.secs, o.warmup_secs, o.sample_secs);
    let stay_secs = match o.stay_secs[..] {
        [least, most] => (least, most.max(least)),
        _ => bail!("--stay-secs takes two numbers: MIN,MAX"),
    };
    let clients = codes.len() * GROUP;
    let ws_url = server.base_url.replacen("http://", "ws://", 1) + "/api/ws";
    let tally = Arc::new(Tally::default());
    let t0 = Instant::now();
    let start = sample(server, t0, &tally)?;
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let seat = Seat {
            seat: i,
            code: MeetingCode::parse(&codes[i / GROUP])?,
            token: tokens[i % GROUP].clone(),
            ws_url: ws_url.clone(),
            resume: None,
            last_seq: 0,
            unacked: BTreeMap::new(),
            sent: 0,
            camera: false,
        };
        tasks.push(tokio::spawn(life(seat, end, stay_secs, tally.clone())));
    }
    let mut samples = vec![start];
    let mut tick = tokio::time::interval(Duration::from_secs(sample_secs.max(1)));
    tick.tick().await;
    while tokio::time::Instant::now() < end {
        tick.tick().await;
        let s = sample(server, t0, &tally)?;
        eprintln!(
            "  soak {:>5.0} s: {:>5} in meetings, RSS {:>7.1} MiB, {:>5} fds, {:>3} threads, {} chats delivered, {} errors",
            s.at_secs,
            s.connected,
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.threads,
            tally.chats_delivered.load(Ordering::Relaxed),
            tally.errors.load(Ordering::Relaxed),
        );
        samples.push(s);
    }
    for t in tasks {
        let _ = tokio::time::timeout(WAIT * 2, t).await;
    }
    let under_load: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.at_secs <= secs as f64 + 0.5)
        .collect();
    let warm = *under_load
        .iter()
        .find(|s| s.at_secs >= warmup_secs as f64)
        .context("the run is shorter than its warm-up")?;
    let end = *under_load.last().context("no sample")?;
    let after: Vec<&Sample> = under_load
        .iter()
        .filter(|s| s.at_secs >= warm.at_secs)
        .collect();
    let peak_after_warmup = Sample {
        at_secs: f64::NAN,
        rss_kib: after.iter().map(|s| s.rss_kib).max().unwrap_or(0),
        rss_anon_kib: after.iter().map(|s| s.rss_anon_kib).max().unwrap_or(0),
        rss_file_kib: after.iter().map(|s| s.rss_file_kib).max().unwrap_or(0),
        fds: after.iter().map(|s| s.fds).max().unwrap_or(0),
        threads: after.iter().map(|s| s.threads).max().unwrap_or(0),
        connected: after.iter().map(|s| s.connected).max().unwrap_or(0),
    };
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Ok(Report {
        clients,
        secs,
        warmup_secs,
        start,
        warm,
        end,
        peak_after_warmup,
        samples,
        joins: n(&tally.joins),
        resumes: n(&tally.resumes),
        leaves: n(&tally.leaves),
        drops: n(&tally.drops),
        rejoins: n(&tally.rejoins),
        chats_sent: n(&tally.chats_sent),
        chats_acked: n(&tally.chats_acked),
        chats_delivered: n(&tally.chats_delivered),
        media_toggles: n(&tally.media_toggles),
        errors: n(&tally.errors),
    })
}

/// Prints the figures and says whether the run held: no error, and RSS, descriptors and
/// threads at the end within `tolerance` (0.05 = 5 %) of their value after warm-up.
pub fn verdict(r: &Report, tolerance: f64) -> anyhow::Result<()> {
    let at = [&r.start, &r.warm, &r.end, &r.peak_after_warmup];
    let count = |name, f: fn(&Sample) -> u64| counted(name, at, f);
    let rss = in_mib("server RSS, MiB", at, |s| s.rss_kib);
    let anon = in_mib("of it anonymous (heap, stacks), MiB", at, |s| {
        s.rss_anon_kib
    });
    let file = in_mib("of it mapped files (code, libraries), MiB", at, |s| {
        s.rss_file_kib
    });
    let fds = count("open file descriptors", |s| s.fds);
    let threads = count("threads", |s| s.threads);
    growth_table(
        &format!("{} clients, meetings of 4, {} s", r.clients, r.secs),
        r.warmup_secs,
        &[
            rss,
            anon,
            file,
            fds,
            threads,
            count("clients in a meeting", |s| s.connected),
        ],
    );
    println!(
        "joins {} (resumes {}), leaves {}, dropped connections {}, close-and-rejoin {}; chat sent {}, acknowledged {}, delivered {}; camera toggles {}; errors {}",
        r.joins, r.resumes, r.leaves, r.drops, r.rejoins, r.chats_sent, r.chats_acked, r.chats_delivered, r.media_toggles, r.errors
    );
    let mut problems = Vec::new();
    if r.errors > 0 {
        problems.push(format!("{} errors", r.errors));
    }
    if r.chats_acked != r.chats_sent {
        problems.push(format!(
            "{} of {} chat messages acknowledged",
            r.chats_acked, r.chats_sent
        ));
    }
    // Descriptors follow the sockets open, which churn: the ones beyond the server's own
    // (before any client) are compared per client in a meeting.
    let base = r.start.fds as f64;
    let per = |s: &Sample| (s.fds as f64 - base).max(0.0) / s.connected.max(1) as f64;
    let fds_per_client = Growth {
        name: "file descriptors per client",
        start: 0.0,
        warm: per(&r.warm),
        end: per(&r.end),
        peak: per(&r.peak_after_warmup),
        decimals: 3,
    };
    let rss = Growth {
        name: "RSS, MiB",
        ..rss
    };
    problems.extend(
        [rss, fds_per_client, threads]
            .iter()
            .filter_map(|g| g.grown(tolerance)),
    );
    if problems.is_empty() {
        println!("soak: held (within {:.0} %)", tolerance * 100.0);
        Ok(())
    } else {
        bail!("soak: {}", problems.join("; "))
    }
}
