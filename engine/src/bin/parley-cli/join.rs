//! `join`: sits in a meeting, prints what happens (rendered from the engine's room model),
//! sends what is typed.

use std::io::Write as _;
use std::sync::Arc;

use parley_engine::call::{Call, CallConfig, CallError, CallEvent, VideoSource};
use parley_engine::media::capture::ScreenTarget;
use parley_engine::rest::Api;
use parley_engine::room::{Change, Room};
use parley_engine::signaling::{Closed, Event, JoinOptions, Session};
use parley_shared::signal::{ClientMsg, MediaState};
use parley_shared::{ErrorCode, MeetingCode};
use tokio::io::AsyncBufReadExt as _;

use crate::auth::{Auth, Tokens};
use crate::exit::{Exit, Failure, Res};
use crate::line::{self, Line, Switch, HELP};
use crate::media::Recorder;
use crate::meetings::role;
use crate::out_json;

/// What `join` was asked for.
pub struct JoinArgs {
    pub code: MeetingCode,
    pub name: String,
    pub passcode: Option<String>,
    /// Do not read stdin.
    pub listen: bool,
    pub json: bool,
    pub media: Option<(CallConfig, Option<Recorder>, Option<ScreenTarget>)>,
}

/// The meeting connection: signaling only, or a full call with media.
enum Conn {
    Plain(Session),
    Media(Box<Call>),
}

impl Conn {
    async fn next(&mut self) -> Option<CallEvent> {
        match self {
            Conn::Plain(s) => s.events.recv().await.map(CallEvent::Signal),
            Conn::Media(call) => call.events.recv().await,
        }
    }

    async fn chat(&self, text: String) {
        match self {
            Conn::Plain(s) => drop(s.chat(text).await),
            Conn::Media(c) => drop(c.chat(text).await),
        }
    }

    async fn send(&self, msg: ClientMsg) {
        match self {
            Conn::Plain(s) => s.send(msg).await,
            Conn::Media(c) => c.send(msg).await,
        }
    }

    async fn leave(&self) {
        match self {
            Conn::Plain(s) => s.leave().await,
            Conn::Media(c) => c.leave().await,
        }
    }
}

/// Sits in a meeting until it ends for us.
pub async fn join(api: &Api, auth: Arc<Auth>, args: JoinArgs) -> Res<()> {
    let JoinArgs {
        code,
        name,
        passcode,
        listen,
        json,
        media,
    } = args;
    let options = JoinOptions {
        code: code.clone(),
        display_name: name.clone(),
        passcode,
    };
    let mut recorder = None;
    let mut conn = match media {
        None => Conn::Plain(Session::start(api.ws_url(), Tokens(auth), options)),
        Some((config, rec, screen)) => {
            let device_err =
                |e: CallError| Failure::new(Exit::Local, "media_device", e.to_string());
            let call = Call::start(api.ws_url(), Tokens(auth), options, config)
                .await
                .map_err(device_err)?;
            if let Some(target) = screen {
                call.start_screen(target).await.map_err(device_err)?;
            }
            recorder = rec;
            Conn::Media(Box::new(call))
        }
    };
    let (line_tx, mut lines) = tokio::sync::mpsc::channel::<Option<String>>(16);
    if !listen {
        tokio::spawn(async move {
            let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = stdin.next_line().await {
                if line_tx.send(Some(line)).await.is_err() {
                    return;
                }
            }
            let _ = line_tx.send(None).await;
        });
    }
    // Ctrl-C and SIGTERM are listened for once, for the whole meeting: a signal arriving
    // between two turns of the loop below must not be missed.
    let (stop_tx, mut stop_rx) = tokio::sync::mpsc::channel::<()>(1);
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated() => {}
        }
        let _ = stop_tx.send(()).await;
    });
    let mut room = Room::new(&name);
    let mut entered = false;
    let mut ended_by_me = false;
    loop {
        tokio::select! {
            ev = conn.next() => {
                let Some(ev) = ev else {
                    return Err(Failure::new(Exit::Unreachable, "lost", "the session stopped"));
                };
                match ev {
                    CallEvent::Audio { .. } | CallEvent::Video { .. } => {
                        if let Some(r) = recorder.as_mut() {
                            r.record(ev, &room);
                        }
                        continue;
                    }
                    CallEvent::CameraAdapted { width, height, busy_pct } => {
                        eprintln!(
                            "parley-cli: camera now sent at {width}x{height} (capturing and \
                             encoding took {busy_pct:.0} % of the frame time)"
                        );
                        continue;
                    }
                    _ => {}
                }
                if let (true, CallEvent::Signal(Event::Server(msg))) = (json, &ev) {
                    out_json(msg);
                    let _ = std::io::stdout().flush();
                }
                for change in room.on_call(&ev) {
                    if let Change::Entered { .. } = change {
                        entered = true;
                    }
                    if let Change::DeviceLost { device, fallback: true, .. } = change {
                        if let Conn::Media(call) = &conn {
                            match call.fall_back(device) {
                                Some(Ok(())) => {
                                    eprintln!("parley-cli: switched to the default {device:?}")
                                }
                                Some(Err(e)) => eprintln!("parley-cli: no {device:?}: {e}"),
                                None => {}
                            }
                        }
                    }
                    render(&change, &room, &code, json);
                }
                if let CallEvent::Signal(Event::Closed(c)) = ev {
                    if let Some(r) = recorder.as_mut() {
                        r.finish();
                    }
                    if ended_by_me && c == Closed::MeetingEnded {
                        return Ok(());
                    }
                    return closed(c, json);
                }
            }
            // Input waits until we are in: the join's outcome decides the exit code.
            line = lines.recv(), if !listen && entered => match line.flatten() {
                None => conn.leave().await,
                Some(text) => {
                    let line = line::parse(&text);
                    ended_by_me |= line == Line::End;
                    act(&conn, &room, line).await;
                }
            },
            Some(()) = stop_rx.recv() => conn.leave().await,
        }
    }
}

/// Resolves on SIGTERM (Unix), so `kill` leaves the meeting cleanly too.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await
}

/// Carries out one typed line.
async fn act(conn: &Conn, room: &Room, line: Line) {
    if let (true, Conn::Plain(_)) = (line.needs_media(), conn) {
        return eprintln!("that needs a call with media: join with --camera, --mic or --screen");
    }
    let msg = match line {
        Line::Nothing => return,
        Line::Chat(text) => return conn.chat(text).await,
        Line::Leave => return conn.leave().await,
        Line::Help => return eprintln!("{HELP}"),
        Line::Who => return eprintln!("{}", who(room)),
        Line::Invalid(why) => return eprintln!("{why}"),
        Line::Hand(raised) => ClientMsg::Hand { raised },
        Line::React(emoji) => ClientMsg::Reaction { emoji },
        Line::Lock => ClientMsg::Lock,
        Line::Unlock => ClientMsg::Unlock,
        Line::NoGuests => ClientMsg::CloseGuestEntry,
        Line::End => ClientMsg::End,
        Line::Host(action, name) => match room.find(&name) {
            Some(peer) => action.message(peer),
            None => return eprintln!("nobody (or more than one) here is called {name:?}; /who"),
        },
        media => {
            if let Conn::Media(call) = conn {
                if let Err(e) = media_line(call, media).await {
                    eprintln!("parley-cli: {e}");
                }
            }
            return;
        }
    };
    conn.send(msg).await;
}

/// A device or sharing line, in a call with media.
async fn media_line(call: &Call, line: Line) -> Result<(), String> {
    let device = |name: String| match name.as_str() {
        "synthetic" => VideoSource::Synthetic,
        "default" => VideoSource::Camera(None),
        _ => VideoSource::Camera(Some(name)),
    };
    let switched = |what: &str, name: &str| eprintln!("parley-cli: {what}: now {name}");
    match line {
        Line::Camera(Switch::On) => call.set_camera(true).await,
        Line::Camera(Switch::Off) => call.set_camera(false).await,
        Line::Camera(Switch::Device(name)) => {
            call.select_camera(device(name.clone()))
                .await
                .map_err(|e| format!("/camera: {e}"))?;
            switched("camera", &name);
        }
        Line::Mic(Switch::On) => call.set_mic(true).await,
        Line::Mic(Switch::Off) => call.set_mic(false).await,
        Line::Mic(Switch::Device(name)) => {
            call.select_mic(Some(&name))
                .map_err(|e| format!("/mic: {e}"))?;
            switched("mic", &name);
        }
        Line::Speaker(name) => {
            call.select_speaker(name.as_deref())
                .map_err(|e| format!("/speaker: {e}"))?;
            switched("speaker", name.as_deref().unwrap_or("default"));
        }
        Line::Share(target) => call
            .start_screen(target)
            .await
            .map_err(|e| format!("/share: {e}"))?,
        Line::Unshare => call.stop_screen().await,
        _ => {}
    }
    Ok(())
}

fn who(room: &Room) -> String {
    let names = room.names();
    if names.is_empty() {
        "nobody else is here".into()
    } else {
        format!("here besides you: {}", names.join(", "))
    }
}

fn closed(c: Closed, json: bool) -> Res<()> {
    if json {
        let reason = match &c {
            Closed::Left => "left",
            Closed::MeetingEnded => "meeting_ended",
            Closed::Removed => "removed",
            Closed::Denied => "denied",
            Closed::Refused { .. } => "refused",
            Closed::Lost(_) => "lost",
        };
        out_json(&serde_json::json!({"type": "closed", "reason": reason}));
    }
    match c {
        Closed::Left => Ok(()),
        Closed::MeetingEnded => Err(Failure::new(
            Exit::Ended,
            "meeting_ended",
            "the meeting has ended",
        )),
        Closed::Removed => Err(Failure::new(
            Exit::Ended,
            "removed",
            "you were removed from the meeting",
        )),
        Closed::Denied => Err(Failure::new(
            Exit::Ended,
            "denied",
            "the host did not let you in",
        )),
        Closed::Refused {
            code: ErrorCode::Unauthorized,
            message,
        } => Err(Failure::new(
            Exit::NotSignedIn,
            ErrorCode::Unauthorized.as_str(),
            message,
        )),
        Closed::Refused { code, message } => {
            Err(Failure::new(Exit::Refused, code.as_str(), message))
        }
        Closed::Lost(why) => Err(Failure::new(Exit::Unreachable, "connection_lost", why)),
    }
}

/// Prints one change (text mode; JSON mode prints the server's messages as they are).
fn render(change: &Change, room: &Room, code: &MeetingCode, json: bool) {
    if let Change::Reconnecting { attempt, why } = change {
        if json {
            out_json(&serde_json::json!({"type": "reconnecting", "attempt": attempt}));
        }
        return eprintln!("connection lost ({why}); reconnecting (attempt {attempt})");
    }
    if let Change::Error { code, message } = change {
        return eprintln!("parley-cli: {code}: {message}");
    }
    if let Change::DeviceLost { device, error, .. } = change {
        return eprintln!("parley-cli: {device:?} stopped: {error}");
    }
    if json {
        return;
    }
    let line = match change {
        Change::Entered { again: true } => format!("* back in {code}"),
        Change::Entered { again: false } => {
            let names = room
                .people
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>();
            let here = if names.is_empty() {
                "nobody else is here yet".to_string()
            } else {
                format!("here: {}", names.join(", "))
            };
            format!("* joined {code} as {}; {here}", role(room.my_role))
        }
        Change::Waiting => "* waiting for the host to let you in".into(),
        Change::WaitingPeer(w) => {
            let n = &w.name;
            let guest = if w.guest { " (guest)" } else { "" };
            format!("* {n}{guest} is waiting to join (/admit {n} or /deny {n})")
        }
        Change::PeerJoined(p) => {
            format!(
                "* {}{} joined",
                p.name,
                if p.guest { " (guest)" } else { "" }
            )
        }
        Change::PeerLeft { name, .. } => format!("* {name} left"),
        // A guest's name is their own word: marked, as in the participant list.
        Change::Chat(m) if m.guest => format!("{} (guest): {}", m.sender_name, m.text),
        Change::Chat(m) => format!("{}: {}", m.sender_name, m.text),
        Change::Media { name, media, .. } => format!("* {name}: {}", media_line_text(media)),
        Change::Hand { name, raised, .. } => {
            format!(
                "* {name} {} a hand",
                if *raised { "raised" } else { "lowered" }
            )
        }
        Change::Reaction { name, emoji, .. } => format!("* {name} reacted {emoji}"),
        Change::Role {
            peer: None,
            role: r,
            ..
        } => format!("* you are now {}", role(*r)),
        Change::Role { name, role: r, .. } => format!("* {name} is now {}", role(*r)),
        Change::Locked(locked) => {
            format!("* meeting {}", if *locked { "locked" } else { "unlocked" })
        }
        Change::MutedByHost => "* the host muted you".into(),
        Change::Ended(Closed::Removed) => "* you were removed from the meeting".into(),
        Change::Ended(Closed::Denied) => "* the host did not let you in".into(),
        Change::Ended(Closed::MeetingEnded) => "* the meeting has ended".into(),
        Change::ServerRestarting => "* the server is restarting".into(),
        // Acks, media links and anything newer: nothing to show.
        _ => return,
    };
    println!("{line}");
    let _ = std::io::stdout().flush();
}

fn media_line_text(m: &MediaState) -> String {
    let on = |b: bool| if b { "on" } else { "off" };
    format!(
        "mic {}, camera {}, screen {}",
        on(m.audio),
        on(m.video),
        on(m.screen)
    )
}
