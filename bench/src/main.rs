//! Parley's benchmarks (issue 6). `parley-bench signaling` runs the signaling load against
//! Parley's server and a Socket.IO 4 server in the same run and prints both, with ratios;
//! `parley-bench join` measures join time to the first decoded frame, step by step;
//! `parley-bench abuse` runs idle and slow-reading attackers beside honest participants
//! against the server's default limits.
//! Run through `scripts/bench-*.sh`, which build and install what they need.

mod abuse;
mod call_soak;
mod figures;
mod join;
mod server;
mod signaling;
mod soak;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use server::Server;
use signaling::Report;

#[derive(Parser)]
#[command(about = "Parley's benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// WebSocket clients in meetings of 4: join storm with offer/answer/ICE, then chat at
    /// stepped rates until p99 delivery latency passes 50 ms.
    Signaling {
        #[arg(long, default_value_t = 2000)]
        clients: usize,
        /// Chat messages per second per client, one phase each, until p99 > 50 ms.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,6,8,12,16")]
        rates: Vec<f64>,
        #[arg(long, default_value_t = 10)]
        phase_secs: u64,
        /// The parley-server binary (default: next to this one).
        #[arg(long)]
        server_bin: Option<PathBuf>,
        /// Make the server's data directory (its SQLite file) under this directory, e.g.
        /// /dev/shm to see what the server does without the disk's fsync latency.
        #[arg(long)]
        data_under: Option<PathBuf>,
        /// The Socket.IO server's directory (bench/socketio, after `npm install`).
        #[arg(long, default_value = "bench/socketio")]
        socketio_dir: PathBuf,
        /// Write the results here as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Against the default limits: sockets that never join, participants that stop reading,
    /// and honest participants in meetings of 4 joining and chatting among them. Fails when
    /// an honest join or chat message is lost or the server's memory passes `--max-rss-mib`.
    Abuse {
        #[arg(long, default_value_t = 1000)]
        idle: usize,
        #[arg(long, default_value_t = 100)]
        slow: usize,
        #[arg(long, default_value_t = 100)]
        honest: usize,
        /// Guests flooding the honest meetings from as many loopback addresses (issue 33):
        /// the meetings then have a waiting room and guest access on, their hosts admit
        /// their members and ignore the guests; 0 leaves guests out.
        #[arg(long, default_value_t = 0)]
        guests: usize,
        /// Seconds of chat (1 message per second per honest participant); past the server's
        /// 45 s idle timeout, so the slow readers are seen cut off.
        #[arg(long, default_value_t = 60)]
        secs: u64,
        /// The bound the server's resident memory must stay under.
        #[arg(long, default_value_t = 256.0)]
        max_rss_mib: f64,
        #[arg(long)]
        server_bin: Option<PathBuf>,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Clients in meetings of 4 joining, chatting, toggling cameras, leaving, dropping and
    /// resuming, closing and rejoining, for `--secs`; fails when anything went wrong or the
    /// server's RSS, descriptors or threads at the end exceed their value after warm-up by
    /// more than `--tolerance` (issue 18).
    Soak {
        #[command(flatten)]
        options: soak::Options,
        #[arg(long, default_value_t = 0.05)]
        tolerance: f64,
        #[arg(long)]
        server_bin: Option<PathBuf>,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Four engine participants in one call for half an hour (camera toggles, screen shares,
    /// a network outage every 5 minutes through a TURN relay); fails on an error or when the
    /// engine process's memory, threads or descriptors grow after warm-up.
    CallSoak {
        #[command(flatten)]
        options: call_soak::Options,
        #[arg(long, default_value_t = 0.05)]
        tolerance: f64,
        #[arg(long)]
        server_bin: Option<PathBuf>,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// The call soak's TURN relay (a child process of `call-soak`): prints `relay ADDR`, then
    /// cuts and restores the network on `cut` and `restore` lines of stdin.
    #[command(hide = true)]
    TurnRelay {
        #[arg(long)]
        secret: String,
    },
    /// Writes Parley's synthetic camera picture as a Y4M file (for Chromium's fake camera).
    Y4m {
        #[arg(long, default_value_t = 640)]
        width: u32,
        #[arg(long, default_value_t = 480)]
        height: u32,
        #[arg(long, default_value_t = 300)]
        frames: u32,
        out: PathBuf,
    },
    /// Two participants on loopback: a guest joins a host's meeting again and again; time
    /// from the join command to the first decoded remote frame, split into steps.
    Join {
        #[arg(long, default_value_t = 20)]
        joins: usize,
        #[arg(long, default_value_t = 640)]
        width: u32,
        #[arg(long, default_value_t = 480)]
        height: u32,
        /// The parley-server binary (default: next to this one).
        #[arg(long)]
        server_bin: Option<PathBuf>,
        /// Write the results here as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

/// Writes `frames` of Parley's synthetic camera picture as a Y4M file (30 fps), so Chromium's
/// fake camera (`--use-file-for-fake-video-capture`) sends the same picture as parley-cli.
fn write_y4m(path: &std::path::Path, width: u32, height: u32, frames: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg")?;
    let mut source = parley_engine::media::synthetic::SyntheticVideo::new(width, height);
    for i in 0..frames {
        let frame = source.next_frame(u64::from(i) * 1000 / 30);
        out.write_all(b"FRAME\n")?;
        out.write_all(&frame.data)?;
    }
    out.flush()?;
    Ok(())
}

fn server_bin(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(match given {
        Some(b) => b,
        None => std::env::current_exe()?
            .parent()
            .context("no directory")?
            .join("parley-server"),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Signaling {
            clients,
            rates,
            phase_secs,
            server_bin,
            data_under,
            socketio_dir,
            json,
        } => {
            let bin = self::server_bin(server_bin)?;
            let meetings = clients / signaling::GROUP;

            eprintln!("== Parley: {clients} clients");
            let s = Server::parley(&bin, data_under.as_deref()).await?;
            let target = signaling::parley_target(&s.base_url, meetings).await?;
            let parley = signaling::run(&s, target, clients, &rates, phase_secs).await?;
            s.stop().await;

            eprintln!("== Socket.IO 4: {clients} clients");
            let s = Server::socketio(&socketio_dir).await?;
            let target = signaling::Target::SocketIo {
                ws_url: s.base_url.replacen("http://", "ws://", 1)
                    + "/socket.io/?EIO=4&transport=websocket",
            };
            let sio = signaling::run(&s, target, clients, &rates, phase_secs).await?;
            s.stop().await;

            print_table(&parley, &sio);
            write_json(
                json,
                &serde_json::json!({ "parley": parley, "socketio": sio }),
            )?;
        }
        Cmd::Soak {
            options,
            tolerance,
            server_bin,
            json,
        } => {
            let bin = self::server_bin(server_bin)?;
            // The soak's clients keep the sign-in they start with (renewing it is not what
            // the soak is about): a run longer than the default 15 minutes gives it a life
            // that outlasts the run, or every client is turned away when it expires.
            let ttl = (options.secs + options.warmup_secs + 600)
                .max(15 * 60)
                .to_string();
            let s = Server::parley_lifted(&bin, None, &[("PARLEY_ACCESS_TOKEN_TTL_SECS", &ttl)])
                .await?;
            let signaling::Target::Parley { tokens, codes, .. } =
                signaling::parley_target(&s.base_url, options.clients / signaling::GROUP).await?
            else {
                anyhow::bail!("not a Parley target");
            };
            let report = soak::run(&s, tokens, codes, &options).await;
            s.stop().await;
            let report = report?;
            write_json(json, &report)?;
            soak::verdict(&report, tolerance)?;
        }
        Cmd::CallSoak {
            options,
            tolerance,
            server_bin,
            json,
        } => {
            if options.outage_secs.is_empty() {
                anyhow::bail!("--outage-secs takes at least one length");
            }
            let report = call_soak::run(&self::server_bin(server_bin)?, &options).await?;
            write_json(json, &report)?;
            call_soak::verdict(&report, tolerance)?;
        }
        Cmd::TurnRelay { secret } => call_soak::turn_relay(&secret).await?,
        Cmd::Abuse {
            idle,
            slow,
            honest,
            guests,
            secs,
            max_rss_mib,
            server_bin,
            json,
        } => {
            let s = Server::parley_with(&self::server_bin(server_bin)?, None, &[]).await?;
            let report = abuse::run(&s, idle, slow, honest, guests, secs).await;
            s.stop().await;
            let report = report?;
            abuse::print_table(&report);
            write_json(json, &report)?;
            if report.honest_joined < report.honest {
                anyhow::bail!(
                    "{} honest participants could not join",
                    report.honest - report.honest_joined
                );
            }
            if report.chat_delivered < report.chat_expected {
                anyhow::bail!(
                    "{} of {} honest chat deliveries were lost",
                    report.chat_expected - report.chat_delivered,
                    report.chat_expected
                );
            }
            if report.guests > 0 {
                let bound = abuse::guest_row_bound(&report);
                if report.guest_rows_stored > bound {
                    anyhow::bail!(
                        "{} guest rows stored, over the entry budget's {bound}",
                        report.guest_rows_stored
                    );
                }
                let seats = report.meetings as u64 * abuse::GUEST_WAITING_SEATS;
                if report.guest_waiting_peak > seats {
                    anyhow::bail!(
                        "{} guests waited at once, over the {seats} guest seats",
                        report.guest_waiting_peak
                    );
                }
            }
            if report.server_rss_peak_mib > max_rss_mib {
                anyhow::bail!(
                    "server memory peaked at {:.1} MiB (bound {max_rss_mib} MiB)",
                    report.server_rss_peak_mib
                );
            }
        }
        Cmd::Y4m {
            width,
            height,
            frames,
            out,
        } => write_y4m(&out, width, height, frames)?,
        Cmd::Join {
            joins,
            width,
            height,
            server_bin,
            json,
        } => {
            let s = Server::parley(&self::server_bin(server_bin)?, None).await?;
            let report = join::run(&s.base_url, joins, width, height).await;
            s.stop().await;
            let report = report?;
            join::print_table(&report);
            write_json(json, &report)?;
        }
    }
    Ok(())
}

/// Writes a run's results where `--json` asked for them (nowhere without it).
fn write_json(path: Option<PathBuf>, results: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(&path, serde_json::to_string_pretty(results)?)?;
        eprintln!("results: {}", path.display());
    }
    Ok(())
}

fn print_table(p: &Report, s: &Report) {
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let last_ok = |r: &Report| {
        r.phases
            .iter()
            .rev()
            .find(|ph| ph.p99_ms <= 50.0)
            .map(|ph| (ph.p50_ms, ph.p99_ms, ph.server_cpu, ph.cpu_us_per_delivered))
            .unwrap_or((f64::NAN, f64::NAN, f64::NAN, f64::NAN))
    };
    let first = |r: &Report| {
        r.phases
            .first()
            .map(|ph| {
                (
                    ph.delivered_per_sec,
                    ph.p50_ms,
                    ph.p99_ms,
                    ph.server_cpu,
                    ph.cpu_us_per_delivered,
                )
            })
            .unwrap_or((f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN))
    };
    let (pf, sf) = (first(p), first(s));
    let (pl, sl) = (last_ok(p), last_ok(s));
    println!(
        "| {} clients, meetings of 4 | Parley | Socket.IO 4 | Parley / Socket.IO |",
        p.clients
    );
    println!("|---|---|---|---|");
    let row = |name: &str, a: f64, b: f64| {
        println!("| {name} | {a:.2} | {b:.2} | {:.2} |", ratio(a, b));
    };
    row("join storm, s", p.join_storm_secs, s.join_storm_secs);
    row("chat at 1/s per client: delivered/s", pf.0, sf.0);
    row("  p50 ms", pf.1, sf.1);
    row("  p99 ms", pf.2, sf.2);
    row("  server CPU, cores", pf.3, sf.3);
    row("  server CPU per delivered message, µs", pf.4, sf.4);
    row(
        "sustained delivered/s (p99 ≤ 50 ms)",
        p.sustained_per_sec,
        s.sustained_per_sec,
    );
    row("  p99 ms at that rate", pl.1, sl.1);
    row("  server CPU at that rate, cores", pl.2, sl.2);
    row("  server CPU per delivered message there, µs", pl.3, sl.3);
    row(
        "server RSS before clients, MiB",
        p.server_rss_base_mib,
        s.server_rss_base_mib,
    );
    row(
        "server RSS, clients idle, MiB",
        p.server_rss_idle_mib,
        s.server_rss_idle_mib,
    );
    row(
        "RSS per idle connection, KiB",
        p.rss_per_idle_connection_kib,
        s.rss_per_idle_connection_kib,
    );
    println!("| client errors | {} | {} | |", p.errors, s.errors);
    println!(
        "| messages refused by the server | {} | {} | |",
        p.refused, s.refused
    );
}
