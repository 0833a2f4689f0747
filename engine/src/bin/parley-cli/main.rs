//! `parley-cli`: Parley without a window. Sign in, manage meetings, sit in a meeting's chat
//! or a whole call.
//!
//! Exit codes (stable, for scripts; [`exit::Exit`]):
//!   0 done · 1 local failure (e.g. credentials file) · 2 bad usage · 3 not signed in or
//!   sign-in refused · 4 the server refused the request (its error code is printed) ·
//!   5 server unreachable or connection lost · 6 `join` ended by others (meeting ended,
//!   removed, not admitted).
//! Errors go to stderr as `parley-cli: <code>: <message>`; `<code>` is the server's stable
//! error code when there is one.
//!
//! - `cli`: the arguments · `exit`: exit codes and failures · `auth`: stored tokens
//! - `meetings`: meetings and history · `join`: a meeting, rendered from the engine's room
//!   model · `line`: what a typed line means · `media`: media options and the recorder

mod auth;
mod cli;
mod exit;
mod join;
mod line;
mod media;
mod meetings;

use std::process::ExitCode;

use clap::Parser as _;
use parley_engine::credentials::{Credentials, Store};
use parley_engine::media::capture::ScreenTarget;
use parley_engine::rest::Api;
use parley_shared::api::{LoginRequest, RegisterRequest};

use crate::auth::{note_location, parse_code, read_password, Auth};
use crate::cli::{Cli, Command};
use crate::exit::{Exit, Failure, Res};
use crate::join::{join, JoinArgs};
use crate::media::media_config;
use crate::meetings::meetings;

fn main() -> ExitCode {
    // Diagnostics on stderr only when asked for (RUST_LOG=parley_engine=debug, …).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code()
            } else {
                0
            });
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("parley-cli: runtime: {e}");
            return ExitCode::from(Exit::Local.code());
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("parley-cli: {}: {}", f.code, f.message);
            ExitCode::from(f.exit.code())
        }
    }
}

pub fn out_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string(v).unwrap_or_default());
}

async fn run(cli: Cli) -> Res<()> {
    let api = Api::new(&cli.server);
    let store = Store::open_default();
    let json = cli.json;
    match cli.command {
        Command::Register { username, email } => {
            let password = read_password(true)?;
            let r = api
                .register(&RegisterRequest {
                    username,
                    email: email.clone(),
                    password,
                })
                .await?;
            if json {
                out_json(&r.user);
            } else {
                println!("registered {} ({})", r.user.username, r.user.email);
            }
            match r.tokens {
                Some(t) => note_location(&store.save(&Credentials {
                    server: api.base().to_string(),
                    user_id: r.user.id.to_string(),
                    username: r.user.username,
                    email: r.user.email,
                    access_token: t.access_token,
                    refresh_token: t.refresh_token,
                })?),
                None => eprintln!(
                    "check {email} for a 6-digit code, then: parley-cli verify --email {email} CODE; parley-cli login {email}"
                ),
            }
        }
        Command::Verify { code, email } => {
            let email = match email {
                Some(e) => e,
                None => Auth::load(&api, &store)?.creds.lock().await.email.clone(),
            };
            api.verify_email(&email, &code).await?;
            if !json {
                println!("{email} verified");
            }
        }
        Command::Login { login } => {
            let password = read_password(false)?;
            let r = api.login(&LoginRequest { login, password }).await?;
            if json {
                out_json(&r.user);
            } else {
                println!("signed in as {} ({})", r.user.username, r.user.email);
            }
            note_location(&store.save(&Credentials {
                server: api.base().to_string(),
                user_id: r.user.id.to_string(),
                username: r.user.username,
                email: r.user.email,
                access_token: r.tokens.access_token,
                refresh_token: r.tokens.refresh_token,
            })?);
        }
        Command::Logout => {
            if let Some(c) = store.load(api.base())? {
                // Forget locally even when the server cannot be told.
                let told = api.logout(&c.refresh_token).await;
                store.delete(api.base())?;
                if let Err(e) = told {
                    if !e.is_auth() {
                        eprintln!("signed out here; the server was not told: {e}");
                    }
                }
            }
            if !json {
                println!("signed out");
            }
        }
        Command::Whoami => {
            let auth = Auth::load(&api, &store)?;
            let me = auth.call(async |t| api.me(&t).await).await?;
            if json {
                out_json(&me);
            } else {
                println!("{} ({}) on {}", me.username, me.email, api.base());
            }
        }
        Command::Meetings(cmd) => meetings(&api, &store, json, cmd).await?,
        Command::Devices => {
            use parley_engine::media::{capture, devices};
            let cameras = match capture::cameras() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("parley-cli: cameras: {e}");
                    Vec::new()
                }
            };
            let screens = match capture::screens() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("parley-cli: screens: {e}");
                    Vec::new()
                }
            };
            let (mics, speakers) = (devices::audio_inputs(), devices::audio_outputs());
            let screen_id = |s: &capture::ScreenInfo| s.target.to_string();
            if json {
                out_json(&serde_json::json!({
                    "cameras": cameras.iter().map(|c| serde_json::json!({"id": c.id, "name": c.name})).collect::<Vec<_>>(),
                    "microphones": mics,
                    "speakers": speakers,
                    "screens": screens.iter().map(|s| serde_json::json!({
                        "id": screen_id(s), "name": s.name, "width": s.width, "height": s.height
                    })).collect::<Vec<_>>(),
                }));
            } else {
                let cameras: Vec<String> = cameras
                    .iter()
                    .map(|c| format!("{}  ({})", c.name, c.id))
                    .collect();
                let screens: Vec<String> = screens
                    .iter()
                    .map(|s| format!("{}  {}x{}  ({})", s.name, s.width, s.height, screen_id(s)))
                    .collect();
                for (what, list) in [
                    ("cameras", &cameras),
                    ("microphones", &mics),
                    ("speakers", &speakers),
                    ("screens", &screens),
                ] {
                    println!("{what}:");
                    if list.is_empty() {
                        println!("  (none)");
                    }
                    for d in list {
                        println!("  {d}");
                    }
                }
            }
        }
        Command::History { code, after_seq } => {
            let code = parse_code(&code)?;
            let auth = Auth::load(&api, &store)?;
            let mut after = after_seq;
            loop {
                let page = auth
                    .call(async |t| api.history(&t, &code, after, 500).await)
                    .await?;
                let Some(last) = page.messages.last() else {
                    break;
                };
                after = last.seq;
                for m in &page.messages {
                    if json {
                        out_json(m);
                    } else {
                        let guest = if m.guest { " (guest)" } else { "" };
                        println!("#{} {}{guest}: {}", m.seq, m.sender_name, m.text);
                    }
                }
            }
        }
        Command::Join {
            code,
            name,
            passcode,
            listen,
            camera,
            screen,
            mic,
            speaker,
            raw_mic,
            rnnoise,
            record_dir,
            loopback_only,
            video,
            video_kbps,
            no_cpu_adaptation,
        } => {
            let code = parse_code(&code)?;
            let screen = screen
                .map(|s| s.parse::<ScreenTarget>())
                .transpose()
                .map_err(|e| {
                    Failure::new(Exit::Usage, "invalid_media_source", format!("screen {e}"))
                })?;
            let wants_media = screen.is_some();
            let media = media_config(camera, mic, speaker, record_dir, loopback_only, wants_media)?
                .map(|(mut c, r)| {
                    if let Some((w, h, fps)) = video {
                        (c.width, c.height, c.fps) = (w, h, fps);
                    }
                    if let Some(kbps) = video_kbps {
                        c.video_kbps = kbps;
                    }
                    if no_cpu_adaptation {
                        c.cpu_adaptation = None;
                    }
                    c.voice_processing = !raw_mic;
                    if rnnoise {
                        c.denoiser = parley_engine::media::aec::Denoiser::RnNoise;
                    }
                    (c, r, screen)
                });
            let auth = Auth::load(&api, &store)?;
            let name = match name {
                Some(n) => n,
                None => auth.creds.lock().await.username.clone(),
            };
            let args = JoinArgs {
                code,
                name,
                passcode,
                listen,
                json,
                media,
            };
            join(&api, auth, args).await?;
        }
    }
    Ok(())
}
