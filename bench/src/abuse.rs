//! `parley-bench abuse`: the server's defences under load (issue 14). Against a server with
//! its default limits, at once: `idle` sockets that connect and never join (reconnecting
//! whenever the server closes them), `slow` participants that join and then stop reading,
//! and `honest` participants in meetings of four (with the slow readers in the same rooms)
//! who join and chat at 1 message per second each. Reports how many honest joins and chat
//! deliveries succeeded and how fast, what the attackers got, and the server's memory.
//!
//! With `guests`, a guest flood besides (issue 33): the honest meetings have a waiting room
//! and guest access on, their hosts admit their members and leave guests waiting, and
//! `guests` clients, each from a loopback address of its own, enter as guests and knock again
//! and again for as long as the run lasts. The honest side must not notice; the guests'
//! seats in each waiting room, the guest rows stored and the server's memory stay bounded.
//!
//! Attackers and honest people come from different loopback addresses (127.0.0.0/8 is all
//! loopback), as they would from different hosts, so the per-address caps apply to each.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _};
use parley_shared::signal::SUBPROTOCOL;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use crate::server::{register, Server};

/// Sockets per user and per address the server allows by default (`ws_per_user`,
/// `ws_per_ip`): the attackers spread over enough accounts and addresses to use them all.
const PER_USER: usize = 10;
const PER_ADDRESS: usize = 100;
/// People per honest meeting.
const GROUP: usize = 4;
/// The server's default open-link guest entries per meeting in ten minutes
/// (`guest_entries_per_meeting`): what a run shorter than that may store per meeting.
pub const GUEST_ENTRIES_PER_MEETING: u64 = 100;
/// The server's default guest seats in one waiting room (`max_waiting_guests`).
pub const GUEST_WAITING_SEATS: u64 = 10;

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub idle_target: usize,
    /// Most idle sockets open at once (sampled).
    pub idle_open_peak: u64,
    pub idle_connects: u64,
    pub idle_refused: u64,
    pub slow_readers: usize,
    /// Slow readers the server had disconnected by the end.
    pub slow_cut_off: usize,
    pub honest: usize,
    pub honest_joined: usize,
    pub join_p50_ms: f64,
    pub join_p95_ms: f64,
    pub chat_expected: u64,
    pub chat_delivered: u64,
    pub chat_p50_ms: f64,
    pub chat_p99_ms: f64,
    /// Guest clients flooding (0: none), the honest meetings they flood.
    pub guests: usize,
    pub meetings: usize,
    pub guest_entry_attempts: u64,
    /// Entries the server answered with tokens (each stores a guest).
    pub guest_entries: u64,
    pub guest_joins_waiting: u64,
    pub guest_joins_refused: u64,
    /// Most guests waiting at once, all meetings together.
    pub guest_waiting_peak: u64,
    /// Guest user rows in the database at the end.
    pub guest_rows_stored: u64,
    /// Seconds the guests flooded: the entry budget refills over them.
    pub guest_flood_secs: f64,
    pub server_rss_start_mib: f64,
    pub server_rss_peak_mib: f64,
    pub server_rss_end_mib: f64,
    pub chat_secs: u64,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A WebSocket to `ws_url` from loopback address `from`.
async fn connect(ws_url: &str, port: u16, token: &str, from: [u8; 4]) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    socket.bind((std::net::Ipv4Addr::from(from), 0).into())?;
    let tcp = socket.connect(([127, 0, 0, 1], port).into()).await?;
    tcp.set_nodelay(true)?;
    let mut req = ws_url.into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    req.headers_mut()
        .insert("sec-websocket-protocol", SUBPROTOCOL.parse()?);
    Ok(tokio_tungstenite::client_async(req, tcp).await?.0)
}

async fn next_json(ws: &mut Ws) -> Option<Value> {
    while let Some(frame) = ws.next().await {
        match frame {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    None
}

fn epoch_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

#[derive(Default)]
struct Counters {
    idle_open: AtomicU64,
    idle_connects: AtomicU64,
    idle_refused: AtomicU64,
    delivered: AtomicU64,
    /// Honest people welcomed so far: the chat starts when all are.
    honest_in: AtomicU64,
    guest_attempts: AtomicU64,
    guest_entries: AtomicU64,
    guest_waiting: AtomicU64,
    guest_waiting_now: AtomicU64,
    guest_refused: AtomicU64,
}

/// One flooding guest from address `from`: enters `code` and knocks, again and again, until
/// `stop`; holds each waiting socket until the server closes it.
async fn flood_as_guest(
    base: String,
    ws_url: String,
    port: u16,
    code: String,
    from: [u8; 4],
    stop: Arc<AtomicBool>,
    c: Arc<Counters>,
) {
    let Ok(http) = reqwest::Client::builder()
        .local_address(Some(std::net::IpAddr::from(from)))
        .build()
    else {
        return;
    };
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        c.guest_attempts.fetch_add(1, Ordering::Relaxed);
        let name = format!("Guest {}.{} #{n}", from[2], from[3]);
        let entry = http
            .post(format!("{base}/api/guests"))
            .json(&json!({"code": code, "display_name": name}))
            .send()
            .await;
        let token = match entry {
            Ok(r) if r.status().as_u16() == 201 => r
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["tokens"]["access_token"].as_str().map(String::from)),
            _ => None,
        };
        let Some(token) = token else {
            // Refused (a budget, a bar): try again shortly, as a bot would.
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        c.guest_entries.fetch_add(1, Ordering::Relaxed);
        let Ok(mut ws) = connect(&ws_url, port, &token, from).await else {
            continue;
        };
        let join = json!({"type": "join", "code": code, "display_name": name});
        if ws.send(Message::text(join.to_string())).await.is_err() {
            continue;
        }
        match next_json(&mut ws).await {
            Some(m) if m["type"] == "waiting" => {
                c.guest_waiting.fetch_add(1, Ordering::Relaxed);
                c.guest_waiting_now.fetch_add(1, Ordering::Relaxed);
                while !stop.load(Ordering::Relaxed) {
                    match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
                        Ok(Some(Ok(_))) | Err(_) => {}
                        Ok(_) => break,
                    }
                }
                c.guest_waiting_now.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {
                c.guest_refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// The most guest rows the open-link budget lets a run store: its full bucket per meeting,
/// and what it refills over the flood (100 per 600 s, continuously).
pub fn guest_row_bound(r: &Report) -> u64 {
    let per_meeting = GUEST_ENTRIES_PER_MEETING as f64 * (1.0 + r.guest_flood_secs / 600.0);
    (r.meetings as f64 * per_meeting).ceil() as u64
}

/// Guest user rows in the server's SQLite database.
fn guest_rows(server: &Server) -> anyhow::Result<u64> {
    let file = server.sqlite_file().context("the server's database file")?;
    let db = rusqlite::Connection::open_with_flags(
        file,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let n: i64 = db.query_row(
        "SELECT COUNT(*) FROM users WHERE guest_of IS NOT NULL",
        [],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub async fn run(
    server: &Server,
    idle: usize,
    slow: usize,
    honest: usize,
    guests: usize,
    chat_secs: u64,
) -> anyhow::Result<Report> {
    let base = server.base_url.clone();
    let port: u16 = base.rsplit(':').next().context("port")?.parse()?;
    let ws_url = base.replacen("http://", "ws://", 1) + "/api/ws";
    let http = reqwest::Client::new();
    let honest = honest.max(GROUP) / GROUP * GROUP;
    let meetings = honest / GROUP;

    eprintln!(
        "accounts: {} attackers, {slow} slow readers, {honest} honest",
        idle.div_ceil(PER_USER)
    );
    let mut attackers = Vec::new();
    for i in 0..idle.div_ceil(PER_USER) {
        attackers.push(register(&http, &base, &format!("idle{i}")).await?);
    }
    let mut slow_tokens = Vec::new();
    for i in 0..slow {
        slow_tokens.push(register(&http, &base, &format!("slow{i}")).await?);
    }
    let mut honest_tokens = Vec::new();
    for i in 0..honest {
        honest_tokens.push(register(&http, &base, &format!("honest{i}")).await?);
    }
    let mut codes = Vec::new();
    for m in 0..meetings {
        let r: Value = http
            .post(format!("{base}/api/meetings"))
            .bearer_auth(&honest_tokens[m * GROUP])
            .json(&json!({"title": format!("abuse {m}"), "waiting_room": guests > 0, "allow_guests": guests > 0}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        codes.push(r["code"].as_str().context("no code")?.to_string());
    }

    let rss_start = server.rss_kib()?;
    let flood_start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let rss_peak = Arc::new(AtomicU64::new(rss_start));
    let idle_peak = Arc::new(AtomicU64::new(0));
    let guest_peak = Arc::new(AtomicU64::new(0));

    // Idle sockets: 127.0.0.10 and up, PER_ADDRESS each; reconnect when closed.
    let mut tasks = Vec::new();
    for i in 0..idle {
        let (ws_url, token) = (ws_url.clone(), attackers[i / PER_USER].clone());
        let from = [127, 0, 0, 10 + u8::try_from(i / PER_ADDRESS).unwrap_or(200)];
        let (stop, c) = (stop.clone(), counters.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match connect(&ws_url, port, &token, from).await {
                    Ok(mut ws) => {
                        c.idle_connects.fetch_add(1, Ordering::Relaxed);
                        c.idle_open.fetch_add(1, Ordering::Relaxed);
                        // Never join; read (answers pings) until the server gives up on us.
                        loop {
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                            match tokio::time::timeout(Duration::from_millis(500), ws.next()).await
                            {
                                Ok(Some(Ok(_))) | Err(_) => {}
                                Ok(_) => break,
                            }
                        }
                        c.idle_open.fetch_sub(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        c.idle_refused.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }));
    }

    // Guests: 127.0.10.1 and up, one address each, spread over the honest meetings.
    for k in 0..guests {
        let from = [
            127,
            0,
            10 + u8::try_from(k / 250).unwrap_or(200),
            1 + u8::try_from(k % 250).unwrap_or(0),
        ];
        tasks.push(tokio::spawn(flood_as_guest(
            base.clone(),
            ws_url.clone(),
            port,
            codes[k % meetings].clone(),
            from,
            stop.clone(),
            counters.clone(),
        )));
    }

    // Slow readers: 127.0.0.2, join a meeting, then never read again.
    let mut slow_socks = Vec::new();
    for (i, token) in slow_tokens.iter().enumerate() {
        let mut ws = connect(&ws_url, port, token, [127, 0, 0, 2]).await?;
        let code = &codes[i % meetings];
        ws.send(Message::text(
            json!({"type": "join", "code": code, "display_name": format!("slow{i}")}).to_string(),
        ))
        .await?;
        match next_json(&mut ws).await {
            Some(m) if m["type"] == "welcome" => slow_socks.push(ws),
            // With guests, the meetings have a waiting room: a slow reader stops reading
            // there, and its host admits it like any member.
            Some(m) if m["type"] == "waiting" && guests > 0 => slow_socks.push(ws),
            other => bail!("slow reader {i} was not let in: {other:?}"),
        }
    }

    // Sampler: server memory, idle sockets open.
    let sampler = {
        let (stop, rss_peak, idle_peak, c) = (
            stop.clone(),
            rss_peak.clone(),
            idle_peak.clone(),
            counters.clone(),
        );
        let pid_rss = server.rss_probe();
        let guest_peak = guest_peak.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(kib) = pid_rss() {
                    rss_peak.fetch_max(kib, Ordering::Relaxed);
                }
                idle_peak.fetch_max(c.idle_open.load(Ordering::Relaxed), Ordering::Relaxed);
                guest_peak.fetch_max(
                    c.guest_waiting_now.load(Ordering::Relaxed),
                    Ordering::Relaxed,
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    eprintln!(
        "attack running: {} idle sockets open, {} slow readers in the rooms, {} guests waiting",
        counters.idle_open.load(Ordering::Relaxed),
        slow_socks.len(),
        counters.guest_waiting_now.load(Ordering::Relaxed),
    );

    // Honest participants: 127.0.0.3 and up, half a cap each; join, then chat.
    let join_ms = Arc::new(Mutex::new(Vec::new()));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut people = Vec::new();
    // Hosts first (each meeting's first person), then the members: a member who knocks finds
    // its host in, whatever server version is measured.
    let order: Vec<usize> = (0..honest)
        .filter(|i| i % GROUP == 0)
        .chain((0..honest).filter(|i| i % GROUP != 0))
        .collect();
    for (n, i) in order.into_iter().enumerate() {
        if n == meetings {
            let hosts_in = Instant::now() + Duration::from_secs(30);
            while counters.honest_in.load(Ordering::Relaxed) < meetings as u64
                && Instant::now() < hosts_in
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let token = &honest_tokens[i];
        let (ws_url, token, code) = (ws_url.clone(), token.clone(), codes[i / GROUP].clone());
        let from = [
            127,
            0,
            0,
            3 + u8::try_from(i / (PER_ADDRESS / 2)).unwrap_or(5),
        ];
        let (join_ms, latencies, c) = (join_ms.clone(), latencies.clone(), counters.clone());
        people.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let mut ws = connect(&ws_url, port, &token, from).await?;
            ws.send(Message::text(
                json!({"type": "join", "code": code, "display_name": format!("honest{i}")}).to_string(),
            ))
            .await?;
            // A member may wait for its host to admit it (with guests, the meetings have a
            // waiting room); a host admits its members and leaves guests waiting.
            let admit = |m: &Value| {
                (m["type"] == "waiting_peer" && m["guest"] != true).then(|| {
                    Message::text(json!({"type": "admit", "peer": m["peer_id"]}).to_string())
                })
            };
            loop {
                match next_json(&mut ws).await {
                    Some(m) if m["type"] == "welcome" => break,
                    Some(m) if m["type"] == "error" => bail!("honest {i} refused: {m}"),
                    Some(_) => {}
                    None => bail!("honest {i}: socket closed before welcome"),
                }
            }
            if let Ok(mut v) = join_ms.lock() {
                v.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            c.honest_in.fetch_add(1, Ordering::Relaxed);
            // Everyone is in before the chat starts (30 s at most); hosts admit meanwhile.
            let all_in = Instant::now() + Duration::from_secs(30);
            while c.honest_in.load(Ordering::Relaxed) < honest as u64 && Instant::now() < all_in {
                if let Ok(Some(m)) =
                    tokio::time::timeout(Duration::from_millis(100), next_json(&mut ws)).await
                {
                    if let Some(a) = admit(&m) {
                        ws.send(a).await?;
                    }
                    // Someone in already chats: count it (dropped here, it was once counted
                    // lost: 1-3 of ~1,850 a run).
                    if m["type"] == "chat" {
                        if let Some(sent) = m["message"]["text"].as_str().and_then(|t| t.parse::<f64>().ok()) {
                            c.delivered.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut v) = latencies.lock() { v.push(epoch_ms() - sent); }
                        }
                    }
                }
            }
            let end = Instant::now() + Duration::from_secs(chat_secs);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut n = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick(), if Instant::now() < end => {
                        n += 1;
                        let text = format!("{:.3}", epoch_ms());
                        ws.send(Message::text(json!({"type": "chat", "client_msg_id": format!("{i}-{n}"), "text": text}).to_string())).await?;
                    }
                    m = tokio::time::timeout(Duration::from_secs(3), next_json(&mut ws)) => match m {
                        Ok(Some(m)) if admit(&m).is_some() => {
                            if let Some(a) = admit(&m) {
                                ws.send(a).await?;
                            }
                        }
                        Ok(Some(m)) if m["type"] == "chat" => {
                            if let Some(sent) = m["message"]["text"].as_str().and_then(|t| t.parse::<f64>().ok()) {
                                c.delivered.fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut v) = latencies.lock() { v.push(epoch_ms() - sent); }
                            }
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => bail!("honest {i}: socket closed during the chat"),
                        Err(_) if Instant::now() >= end => break,
                        Err(_) => {}
                    }
                }
            }
            let _ = ws.send(Message::text(json!({"type": "leave"}).to_string())).await;
            Ok::<u64, anyhow::Error>(n)
        }));
    }
    let mut honest_joined = 0;
    let mut sent = 0;
    let mut failures = Vec::new();
    for p in people {
        match p.await? {
            Ok(n) => {
                honest_joined += 1;
                sent += n;
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    for f in failures.iter().take(5) {
        eprintln!("honest participant failed: {f}");
    }

    // Were the slow readers cut off? Drain what was buffered; a live socket would still be
    // there after it.
    let mut slow_cut_off = 0;
    for mut ws in slow_socks {
        let drained = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
        if drained.is_ok() {
            slow_cut_off += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let guest_flood_secs = flood_start.elapsed().as_secs_f64();
    let _ = sampler.await;
    for t in tasks {
        t.abort();
    }
    let rss_end = server.rss_kib()?;
    let guest_rows_stored = if guests > 0 { guest_rows(server)? } else { 0 };

    let mut joins = join_ms.lock().map(|v| v.clone()).unwrap_or_default();
    joins.sort_by(f64::total_cmp);
    let mut lat = latencies.lock().map(|v| v.clone()).unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    Ok(Report {
        idle_target: idle,
        idle_open_peak: idle_peak.load(Ordering::Relaxed),
        idle_connects: counters.idle_connects.load(Ordering::Relaxed),
        idle_refused: counters.idle_refused.load(Ordering::Relaxed),
        slow_readers: slow,
        slow_cut_off,
        honest,
        honest_joined,
        join_p50_ms: percentile(&joins, 0.5),
        join_p95_ms: percentile(&joins, 0.95),
        // Each message reaches the other three honest people of its meeting.
        chat_expected: sent * (GROUP as u64 - 1),
        chat_delivered: counters.delivered.load(Ordering::Relaxed),
        chat_p50_ms: percentile(&lat, 0.5),
        chat_p99_ms: percentile(&lat, 0.99),
        guests,
        meetings,
        guest_entry_attempts: counters.guest_attempts.load(Ordering::Relaxed),
        guest_entries: counters.guest_entries.load(Ordering::Relaxed),
        guest_joins_waiting: counters.guest_waiting.load(Ordering::Relaxed),
        guest_joins_refused: counters.guest_refused.load(Ordering::Relaxed),
        guest_waiting_peak: guest_peak.load(Ordering::Relaxed),
        guest_rows_stored,
        guest_flood_secs,
        server_rss_start_mib: mib(rss_start),
        server_rss_peak_mib: mib(rss_peak.load(Ordering::Relaxed)),
        server_rss_end_mib: mib(rss_end),
        chat_secs,
    })
}

pub fn print_table(r: &Report) {
    println!("| abuse load | figure |");
    println!("|---|---|");
    println!(
        "| idle sockets (never join): target / peak open / connects / refused | {} / {} / {} / {} |",
        r.idle_target, r.idle_open_peak, r.idle_connects, r.idle_refused
    );
    println!(
        "| slow readers: joined / cut off by the server | {} / {} |",
        r.slow_readers, r.slow_cut_off
    );
    println!(
        "| honest participants joined | {} of {} |",
        r.honest_joined, r.honest
    );
    println!(
        "| honest join (connect → welcome) p50 / p95, ms | {:.1} / {:.1} |",
        r.join_p50_ms, r.join_p95_ms
    );
    println!(
        "| honest chat delivered | {} of {} |",
        r.chat_delivered, r.chat_expected
    );
    println!(
        "| honest chat latency p50 / p99, ms | {:.1} / {:.1} |",
        r.chat_p50_ms, r.chat_p99_ms
    );
    if r.guests > 0 {
        println!(
            "| guest flood: clients (one address each) / meetings | {} / {} |",
            r.guests, r.meetings
        );
        println!(
            "| guest entries: tried / let in (stored a guest) | {} / {} |",
            r.guest_entry_attempts, r.guest_entries
        );
        println!(
            "| guest knocks: waiting / refused; most waiting at once (seats: {} per meeting) | {} / {}; {} |",
            GUEST_WAITING_SEATS, r.guest_joins_waiting, r.guest_joins_refused, r.guest_waiting_peak
        );
        println!(
            "| guest rows stored at the end / the entry budget's bound over {:.0} s | {} / {} |",
            r.guest_flood_secs,
            r.guest_rows_stored,
            guest_row_bound(r)
        );
    }
    println!(
        "| server RSS start / peak / end, MiB | {:.1} / {:.1} / {:.1} |",
        r.server_rss_start_mib, r.server_rss_peak_mib, r.server_rss_end_mib
    );
}
