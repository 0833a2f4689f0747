//! `parley-cli`: Parley without a window. Sign in, manage meetings, sit in a meeting's chat.
//!
//! Exit codes (stable, for scripts):
//!   0 done · 1 local failure (e.g. credentials file) · 2 bad usage · 3 not signed in or
//!   sign-in refused · 4 the server refused the request (its error code is printed) ·
//!   5 server unreachable or connection lost · 6 `join` ended by others (meeting ended,
//!   removed, not admitted).
//! Errors go to stderr as `parley-cli: <code>: <message>`; `<code>` is the server's stable
//! error code when there is one.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use parley_engine::call::{AudioSource, Call, CallConfig, CallEvent, Device, VideoSource};
use parley_engine::credentials::{Credentials, Location, Store};
use parley_engine::media::capture::ScreenTarget;
use parley_engine::rest::{Api, ApiError};
use parley_engine::signaling::{Closed, Event, JoinOptions, Roster, Session, TokenSource};
use parley_shared::api::{CreateMeetingRequest, LoginRequest, Meeting, RegisterRequest, Role};
use parley_shared::signal::{ClientMsg, ServerMsg};
use parley_shared::MeetingCode;
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::Mutex;

#[derive(Parser)]
#[command(
    name = "parley-cli",
    version,
    about = "Parley from the command line: accounts, meetings, chat.",
    after_help = "Exit codes: 0 ok, 1 local failure, 2 usage, 3 not signed in, 4 refused by the server, \
                  5 server unreachable / connection lost, 6 meeting ended, removed or not admitted."
)]
struct Cli {
    /// The Parley server.
    #[arg(
        long,
        env = "PARLEY_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// Print JSON (one object per line) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an account (the password is prompted for, or read from the first line of stdin).
    Register {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
    },
    /// Confirm your e-mail address with the 6-digit code you were sent.
    Verify {
        code: String,
        /// The address (default: the signed-in account's).
        #[arg(long)]
        email: Option<String>,
    },
    /// Sign in with username or e-mail (password prompted, or the first line of stdin).
    Login { login: String },
    /// Sign out and forget the stored tokens.
    Logout,
    /// Show the signed-in account.
    Whoami,
    /// Create, list, show and end meetings.
    #[command(subcommand)]
    Meetings(MeetingsCmd),
    /// Join a meeting: prints what happens, sends each line of stdin as chat
    /// (`/help` lists the commands). Ends at end of input, `/leave` or Ctrl-C.
    Join {
        code: String,
        /// Name shown to the others (default: your username).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        passcode: Option<String>,
        /// Do not read stdin; stay until the meeting ends or Ctrl-C.
        #[arg(long)]
        listen: bool,
        /// Send video: `default` (the first camera), a camera id or name from `devices`, or
        /// `synthetic` (a moving pattern stamped with frame number and time).
        #[arg(long, value_name = "SOURCE")]
        camera: Option<String>,
        /// Share a screen from the start: `monitor` (the primary one), `monitor:ID` or
        /// `window:ID` from `devices`. `/share` and `/unshare` toggle it in the meeting.
        #[arg(long, value_name = "TARGET")]
        screen: Option<String>,
        /// Send audio: `default` (the system microphone), a device name from `devices`,
        /// `tone:HZ` (a sine tone) or `none`.
        #[arg(long, value_name = "SOURCE")]
        mic: Option<String>,
        /// Play the others: `default` or a device name from `devices`.
        #[arg(long, value_name = "DEVICE")]
        speaker: Option<String>,
        /// Turn off echo cancellation, noise suppression and gain control on the microphone.
        #[arg(long)]
        raw_mic: bool,
        /// Suppress noise with RNNoise (nnnoiseless) instead of WebRTC's suppressor: stronger
        /// on keyboards and other non-steady noise, a little more CPU.
        #[arg(long)]
        rnnoise: bool,
        /// Write what arrives here: one WAV per peer, `frames.csv` (peer, kind, frame,
        /// capture and arrival time), and a PGM snapshot of every 30th frame.
        #[arg(long, value_name = "DIR")]
        record_dir: Option<std::path::PathBuf>,
        /// Gather only loopback ICE candidates (tests and single-machine demos).
        #[arg(long)]
        loopback_only: bool,
        /// Camera picture size and rate, `WIDTHxHEIGHT@FPS` (default 640x480@30).
        #[arg(long, value_name = "WxH@FPS", value_parser = parse_video_size)]
        video: Option<(u32, u32, u32)>,
        /// Most bits per second for the camera's video, kbit/s (default 800).
        #[arg(long, value_name = "KBPS", value_parser = clap::value_parser!(u32).range(50..=20_000))]
        video_kbps: Option<u32>,
        /// Always send the camera's full size, even when this computer cannot keep up with
        /// encoding it (by default the picture steps down then, and back up when it can).
        #[arg(long)]
        no_cpu_adaptation: bool,
    },
    /// List cameras, microphones, speakers and shareable screens.
    Devices,
    /// Print a meeting's chat history.
    History {
        code: String,
        #[arg(long, default_value_t = 0)]
        after_seq: i64,
    },
}

#[derive(Subcommand)]
enum MeetingsCmd {
    /// Create a meeting; prints its code.
    Create {
        title: String,
        #[arg(long)]
        passcode: Option<String>,
        #[arg(long)]
        waiting_room: bool,
    },
    /// Meetings you host or joined, newest first.
    List,
    /// One meeting's details.
    Show { code: String },
    /// End a meeting for everyone (host only).
    End { code: String },
}

/// A failure with its exit code and the code/message printed for it.
struct Failure {
    exit: u8,
    code: String,
    message: String,
}

impl Failure {
    fn new(exit: u8, code: &str, message: impl Into<String>) -> Self {
        Self {
            exit,
            code: code.into(),
            message: message.into(),
        }
    }

    fn not_signed_in(server: &str) -> Self {
        Self::new(
            3,
            "not_signed_in",
            format!("not signed in to {server}; run `parley-cli login`"),
        )
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        match &e {
            ApiError::Server {
                status: 401,
                code,
                message,
            } => Self::new(3, code, message.clone()),
            ApiError::Server { code, message, .. } => Self::new(4, code, message.clone()),
            ApiError::Unreachable { .. } => Self::new(5, "unreachable", e.to_string()),
            ApiError::Protocol { .. } => Self::new(5, "bad_response", e.to_string()),
        }
    }
}

impl From<parley_engine::credentials::StoreError> for Failure {
    fn from(e: parley_engine::credentials::StoreError) -> Self {
        Self::new(1, "credentials", e.to_string())
    }
}

type Res<T> = Result<T, Failure>;

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
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("parley-cli: runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("parley-cli: {}: {}", f.code, f.message);
            ExitCode::from(f.exit)
        }
    }
}

/// The signed-in account, refreshing its tokens when the server says they expired.
struct Auth {
    api: Api,
    store: Store,
    creds: Mutex<Credentials>,
}

impl Auth {
    fn load(api: &Api, store: &Store) -> Res<Arc<Self>> {
        let creds = store
            .load(api.base())?
            .ok_or_else(|| Failure::not_signed_in(api.base()))?;
        Ok(Arc::new(Self {
            api: api.clone(),
            store: store.clone(),
            creds: Mutex::new(creds),
        }))
    }

    /// Trades the refresh token for a new pair and stores it; returns the new access token.
    async fn refresh(&self) -> Res<String> {
        let mut creds = self.creds.lock().await;
        let pair = match self.api.refresh(&creds.refresh_token).await {
            Ok(p) => p,
            Err(e) if e.is_auth() => return Err(Failure::not_signed_in(self.api.base())),
            Err(e) => return Err(e.into()),
        };
        creds.access_token = pair.access_token;
        creds.refresh_token = pair.refresh_token;
        self.store.save(&creds)?;
        Ok(creds.access_token.clone())
    }

    /// Runs `call` with the access token, refreshing once if it was refused.
    async fn call<T>(&self, call: impl AsyncFn(String) -> Result<T, ApiError>) -> Res<T> {
        let token = self.creds.lock().await.access_token.clone();
        match call(token).await {
            Err(e) if e.is_auth() => {
                let token = self.refresh().await?;
                Ok(call(token).await?)
            }
            other => Ok(other?),
        }
    }
}

/// The session's view of [`Auth`].
struct Tokens(Arc<Auth>);

impl TokenSource for Tokens {
    async fn token(&self, refresh: bool) -> Result<String, String> {
        if refresh {
            self.0.refresh().await.map_err(|f| f.message)
        } else {
            Ok(self.0.creds.lock().await.access_token.clone())
        }
    }
}

fn parse_code(code: &str) -> Res<MeetingCode> {
    MeetingCode::parse(code).map_err(|_| {
        Failure::new(
            2,
            "invalid_meeting_code",
            format!("{code:?} is not a meeting code (like bcdf-ghjk-mnpq)"),
        )
    })
}

/// The password: prompted without echo on a terminal, else the first line of stdin.
fn read_password(confirm: bool) -> Res<String> {
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password("Password: ")
            .map_err(|e| Failure::new(1, "input", e.to_string()))?;
        if confirm {
            let again = rpassword::prompt_password("Again: ")
                .map_err(|e| Failure::new(1, "input", e.to_string()))?;
            if again != p {
                return Err(Failure::new(2, "password_mismatch", "the passwords differ"));
            }
        }
        Ok(p)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::new(1, "input", e.to_string()))?;
        let p = line.trim_end_matches(['\r', '\n']).to_string();
        if p.is_empty() {
            return Err(Failure::new(2, "no_password", "no password on stdin"));
        }
        Ok(p)
    }
}

fn note_location(loc: &Location) {
    match loc {
        Location::Keychain => eprintln!("signed in; tokens kept in the OS keychain"),
        Location::File { why, .. } => {
            eprintln!("signed in; {why}: tokens kept in {loc}, readable only by you")
        }
    }
}

fn out_json(v: &impl serde::Serialize) {
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
                        println!("#{} {}: {}", m.seq, m.sender_name, m.text);
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
                .map_err(|e| Failure::new(2, "invalid_media_source", format!("screen {e}")))?;
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
            join(&api, auth, code, name, passcode, listen, json, media).await?;
        }
    }
    Ok(())
}

async fn meetings(api: &Api, store: &Store, json: bool, cmd: MeetingsCmd) -> Res<()> {
    let auth = Auth::load(api, store)?;
    match cmd {
        MeetingsCmd::Create {
            title,
            passcode,
            waiting_room,
        } => {
            let req = CreateMeetingRequest {
                title,
                passcode,
                waiting_room,
            };
            let m = auth
                .call(async |t| api.create_meeting(&t, &req).await)
                .await?;
            if json {
                out_json(&m);
            } else {
                println!("{}", m.code);
            }
        }
        MeetingsCmd::List => {
            let mut cursor: Option<String> = None;
            loop {
                let c = cursor.clone();
                let page = auth
                    .call(async |t| api.meetings(&t, c.as_deref()).await)
                    .await?;
                for m in &page.meetings {
                    if json {
                        out_json(m);
                    } else {
                        println!(
                            "{}  {:<9} {:<11} {}",
                            m.code,
                            state(m),
                            role(m.my_role),
                            m.title
                        );
                    }
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        MeetingsCmd::Show { code } => {
            let code = parse_code(&code)?;
            let m = auth.call(async |t| api.meeting(&t, &code).await).await?;
            if json {
                out_json(&m);
            } else {
                println!("code:         {}", m.code);
                println!("title:        {}", m.title);
                println!("host:         {}", m.host.username);
                println!("state:        {}", state(&m));
                println!(
                    "passcode:     {}",
                    if m.has_passcode { "yes" } else { "no" }
                );
                println!(
                    "waiting room: {}",
                    if m.waiting_room { "yes" } else { "no" }
                );
                println!("locked:       {}", if m.locked { "yes" } else { "no" });
                println!("your role:    {}", role(m.my_role));
            }
        }
        MeetingsCmd::End { code } => {
            let code = parse_code(&code)?;
            auth.call(async |t| api.end_meeting(&t, &code).await)
                .await?;
            if !json {
                println!("ended {code}");
            }
        }
    }
    Ok(())
}

fn state(m: &Meeting) -> &'static str {
    match (m.started_at_ms, m.ended_at_ms) {
        (_, Some(_)) => "ended",
        (Some(_), None) => "started",
        (None, None) => "scheduled",
    }
}

fn role(r: Role) -> &'static str {
    match r {
        Role::Host => "host",
        Role::Cohost => "co-host",
        _ => "participant",
    }
}

const HELP: &str = "type to chat; commands: /who /hand /lower /react EMOJI /camera on|off /mic on|off \
/camera|/mic|/speaker DEVICE /share [monitor|monitor:ID|window:ID] /unshare /mute NAME /remove NAME \
/promote NAME /admit NAME /deny NAME /lock /unlock /end /leave (start a chat line with // to send a literal /)";

/// Sits in a meeting until it ends for us; returns the exit status.
#[allow(clippy::too_many_arguments)]
async fn join(
    api: &Api,
    auth: Arc<Auth>,
    code: MeetingCode,
    name: String,
    passcode: Option<String>,
    listen: bool,
    json: bool,
    media: Option<(CallConfig, Option<Recorder>, Option<ScreenTarget>)>,
) -> Res<()> {
    let options = JoinOptions {
        code: code.clone(),
        display_name: name,
        passcode,
    };
    let mut session = match media {
        None => Conn::Plain(Session::start(api.ws_url(), Tokens(auth), options)),
        Some((config, recorder, screen)) => {
            let device_err =
                |e: parley_engine::call::CallError| Failure::new(1, "media_device", e.to_string());
            let call = Call::start(api.ws_url(), Tokens(auth), options, config)
                .await
                .map_err(device_err)?;
            if let Some(target) = screen {
                call.start_screen(target).await.map_err(device_err)?;
            }
            Conn::Media(Box::new(call), recorder)
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
    let mut roster = Roster::default();
    let mut me = None;
    let mut entered = false;
    let mut ended_by_me = false;
    loop {
        tokio::select! {
            ev = session.next() => {
                let Some(ev) = ev else { return Err(Failure::new(5, "lost", "the session stopped")) };
                if let Event::Closed(c) = ev {
                    session.finish();
                    if ended_by_me && c == Closed::MeetingEnded {
                        return Ok(());
                    }
                    return closed(c, json);
                }
                show(&ev, &mut roster, &mut me, &mut entered, &code, json);
            }
            // Input waits until we are in: the join's outcome decides the exit code.
            line = lines.recv(), if !listen && entered => match line.flatten() {
                None => session.leave().await,
                Some(line) => {
                    ended_by_me |= line.trim() == "/end";
                    command(&session, &roster, line).await
                }
            },
            Some(()) = stop_rx.recv() => session.leave().await,
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

/// The meeting connection: signaling only, or a full call with media.
enum Conn {
    Plain(Session),
    Media(Box<Call>, Option<Recorder>),
}

impl Conn {
    /// The next meeting event; media events go to the recorder on the way.
    async fn next(&mut self) -> Option<Event> {
        match self {
            Conn::Plain(s) => s.events.recv().await,
            Conn::Media(call, rec) => loop {
                match call.events.recv().await? {
                    CallEvent::Signal(ev) => {
                        if let (Some(r), Event::Server(msg)) = (rec.as_mut(), &ev) {
                            r.roster.update(msg);
                        }
                        return Some(ev);
                    }
                    CallEvent::DeviceLost { device, error } => {
                        eprintln!("parley-cli: {device:?} stopped: {error}");
                        // Audio falls back to the system default; video waits for a choice.
                        let switched = match device {
                            Device::Microphone => Some(call.select_mic(None)),
                            Device::Speaker => Some(call.select_speaker(None)),
                            _ => None,
                        };
                        match switched {
                            Some(Ok(())) => {
                                eprintln!("parley-cli: switched to the default {device:?}")
                            }
                            Some(Err(e)) => eprintln!("parley-cli: no {device:?}: {e}"),
                            None => {}
                        }
                    }
                    CallEvent::CameraAdapted {
                        width,
                        height,
                        busy_pct,
                    } => eprintln!(
                        "parley-cli: camera now sent at {width}x{height} (capturing and encoding \
                         took {busy_pct:.0} % of the frame time)"
                    ),
                    other => {
                        if let Some(r) = rec.as_mut() {
                            r.record(other);
                        }
                    }
                }
            },
        }
    }

    async fn chat(&self, text: String) {
        match self {
            Conn::Plain(s) => {
                s.chat(text).await;
            }
            Conn::Media(c, _) => {
                c.chat(text).await;
            }
        }
    }

    async fn send(&self, msg: ClientMsg) {
        match self {
            Conn::Plain(s) => s.send(msg).await,
            Conn::Media(c, _) => c.send(msg).await,
        }
    }

    async fn leave(&self) {
        match self {
            Conn::Plain(s) => s.leave().await,
            Conn::Media(c, _) => c.leave().await,
        }
    }

    /// Flushes recordings.
    fn finish(&mut self) {
        if let Conn::Media(_, Some(r)) = self {
            r.finish();
        }
    }
}

/// `640x360@30` → (640, 360, 30): even sizes from 16×16 to 3840×2160, 1–60 fps.
fn parse_video_size(s: &str) -> Result<(u32, u32, u32), String> {
    let bad = || format!("{s:?}: use WIDTHxHEIGHT@FPS, like 640x360@30");
    let (size, fps) = s.split_once('@').ok_or_else(bad)?;
    let (w, h) = size.split_once('x').ok_or_else(bad)?;
    let (w, h, fps): (u32, u32, u32) = (
        w.parse().map_err(|_| bad())?,
        h.parse().map_err(|_| bad())?,
        fps.parse().map_err(|_| bad())?,
    );
    let even = |v: u32, max: u32| (16..=max).contains(&v) && v % 2 == 0;
    if !even(w, 3840) || !even(h, 2160) || !(1..=60).contains(&fps) {
        return Err(bad());
    }
    Ok((w, h, fps))
}

fn media_config(
    camera: Option<String>,
    mic: Option<String>,
    speaker: Option<String>,
    record_dir: Option<std::path::PathBuf>,
    loopback_only: bool,
    sharing: bool,
) -> Res<Option<(CallConfig, Option<Recorder>)>> {
    if camera.is_none() && mic.is_none() && speaker.is_none() && record_dir.is_none() && !sharing {
        return Ok(None);
    }
    let usage = |m: String| Failure::new(2, "invalid_media_source", m);
    let camera = match camera.as_deref() {
        None | Some("none") => None,
        Some("synthetic") => Some(VideoSource::Synthetic),
        Some("default") => Some(VideoSource::Camera(None)),
        Some(device) => Some(VideoSource::Camera(Some(device.to_string()))),
    };
    let mic = match mic.as_deref() {
        None | Some("none") => None,
        Some("default") => Some(AudioSource::Device(None)),
        Some(t) if t.starts_with("tone:") => {
            match t
                .strip_prefix("tone:")
                .and_then(|hz| hz.parse::<f32>().ok())
            {
                Some(hz) if (20.0..=20_000.0).contains(&hz) => Some(AudioSource::Tone(hz)),
                _ => return Err(usage(format!("mic {t:?}: use tone:HZ with HZ in 20-20000"))),
            }
        }
        Some(device) => Some(AudioSource::Device(Some(device.to_string()))),
    };
    let recorder = match record_dir {
        Some(dir) => {
            Some(Recorder::new(dir).map_err(|e| Failure::new(1, "record_dir", e.to_string()))?)
        }
        None => None,
    };
    let config = CallConfig {
        camera,
        mic,
        speaker,
        voice_processing: true,
        width: 640,
        height: 480,
        fps: 30,
        video_kbps: 800,
        screen_fps: 15,
        screen_kbps: 1500,
        screen_max_width: 1920,
        denoiser: Default::default(),
        decode: recorder.is_some(),
        preview_fps: 0,
        cpu_adaptation: Some(Default::default()),
        rtc: parley_engine::rtc::RtcOptions {
            loopback_only,
            relay_only: false,
            ..Default::default()
        },
    };
    Ok(Some((config, recorder)))
}

/// Writes received media to a directory.
struct Recorder {
    dir: std::path::PathBuf,
    roster: Roster,
    wavs: std::collections::HashMap<String, hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
    csv: std::io::LineWriter<std::fs::File>,
    count: std::collections::HashMap<String, u64>,
}

impl Recorder {
    fn new(dir: std::path::PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        // Line by line: tests and benchmarks read it while the call runs.
        let mut csv = std::io::LineWriter::new(std::fs::File::create(dir.join("frames.csv"))?);
        writeln!(csv, "peer,kind,frame,capture_ms,received_ms,width,height")?;
        Ok(Self {
            dir,
            roster: Roster::default(),
            wavs: Default::default(),
            csv,
            count: Default::default(),
        })
    }

    /// A file-name-safe label for a peer.
    fn label(&self, peer: &parley_shared::PeerId) -> String {
        self.roster
            .name(peer)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    fn record(&mut self, ev: CallEvent) {
        match ev {
            CallEvent::Audio { peer, samples } => {
                let label = self.label(&peer);
                if !self.wavs.contains_key(&label) {
                    let spec = hound::WavSpec {
                        channels: 1,
                        sample_rate: parley_engine::media::audio::SAMPLE_RATE,
                        bits_per_sample: 16,
                        sample_format: hound::SampleFormat::Int,
                    };
                    match hound::WavWriter::create(self.dir.join(format!("{label}.wav")), spec) {
                        Ok(w) => {
                            self.wavs.insert(label.clone(), w);
                        }
                        Err(e) => return eprintln!("parley-cli: record: {e}"),
                    }
                }
                if let Some(w) = self.wavs.get_mut(&label) {
                    for s in samples {
                        let _ = w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16);
                    }
                }
            }
            CallEvent::Video { peer, kind, frame } => {
                let label = self.label(&peer);
                let kind = kind.track_id();
                let stamp = parley_engine::media::synthetic::read_stamp(&frame);
                let received = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                let _ = writeln!(
                    self.csv,
                    "{label},{kind},{},{},{received},{},{}",
                    stamp.map(|s| s.frame.to_string()).unwrap_or_default(),
                    stamp.map(|s| s.capture_ms.to_string()).unwrap_or_default(),
                    frame.width,
                    frame.height
                );
                let n = self.count.entry(format!("{label}-{kind}")).or_insert(0);
                if *n % 30 == 0 {
                    let path = self.dir.join(format!("{label}-{kind}-{n:06}.pgm"));
                    let mut bytes =
                        format!("P5\n{} {}\n255\n", frame.width, frame.height).into_bytes();
                    bytes.extend_from_slice(&frame.data[..(frame.width * frame.height) as usize]);
                    let _ = std::fs::write(path, bytes);
                }
                *n += 1;
            }
            _ => {}
        }
    }

    fn finish(&mut self) {
        let _ = self.csv.flush();
        for (_, w) in self.wavs.drain() {
            let _ = w.finalize();
        }
    }
}

/// Acts on one line typed by the user.
async fn command(session: &Conn, roster: &Roster, line: String) {
    let line = line.trim_end_matches('\r');
    if line.trim().is_empty() {
        return;
    }
    if let Some(literal) = line.strip_prefix("//") {
        session.chat(format!("/{literal}")).await;
        return;
    }
    let Some(cmd) = line.strip_prefix('/') else {
        session.chat(line.to_string()).await;
        return;
    };
    let (verb, arg) = cmd.split_once(' ').unwrap_or((cmd, ""));
    let arg = arg.trim();
    let peer = |arg: &str| roster.find(arg);
    let msg = match verb {
        "leave" | "quit" => return session.leave().await,
        "help" => return eprintln!("{HELP}"),
        "who" => return eprintln!("{}", roster_line(roster)),
        "hand" => ClientMsg::Hand { raised: true },
        "lower" => ClientMsg::Hand { raised: false },
        "react" if !arg.is_empty() => ClientMsg::Reaction {
            emoji: arg.to_string(),
        },
        "camera" | "mic" | "speaker" | "share" | "unshare" => {
            let Conn::Media(call, _) = session else {
                return eprintln!(
                    "/{verb} needs a call with media: join with --camera, --mic or --screen"
                );
            };
            let on = match arg {
                "on" | "" => true,
                "off" => false,
                _ => true,
            };
            // `/camera NAME`, `/mic NAME`, `/speaker NAME`: switch devices mid-call.
            let device = !matches!(arg, "on" | "off" | "") && verb != "share";
            if device || verb == "speaker" {
                let name = (!arg.is_empty()).then_some(arg);
                let done = match verb {
                    "camera" => {
                        let source = match arg {
                            "synthetic" => VideoSource::Synthetic,
                            "default" => VideoSource::Camera(None),
                            other => VideoSource::Camera(Some(other.to_string())),
                        };
                        call.select_camera(source).await
                    }
                    "mic" => call.select_mic(name),
                    _ => call.select_speaker(name),
                };
                match done {
                    Ok(()) => eprintln!("parley-cli: {verb}: now {arg}"),
                    Err(e) => eprintln!("parley-cli: /{verb}: {e}"),
                }
                return;
            }
            let done: Result<(), String> = match verb {
                "camera" => {
                    call.set_camera(on).await;
                    Ok(())
                }
                "mic" => {
                    call.set_mic(on).await;
                    Ok(())
                }
                "unshare" => {
                    call.stop_screen().await;
                    Ok(())
                }
                _ => {
                    let target = if arg.is_empty() || arg == "on" {
                        Ok(ScreenTarget::Monitor(None))
                    } else {
                        arg.parse::<ScreenTarget>()
                    };
                    match target {
                        Ok(t) => call.start_screen(t).await.map_err(|e| e.to_string()),
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = done {
                eprintln!("parley-cli: /{verb}: {e}");
            }
            return;
        }
        "lock" => ClientMsg::Lock,
        "unlock" => ClientMsg::Unlock,
        "end" => ClientMsg::End,
        "mute" | "remove" | "promote" | "admit" | "deny" => match peer(arg) {
            Some(peer) => match verb {
                "mute" => ClientMsg::Mute { peer },
                "remove" => ClientMsg::Remove { peer },
                "promote" => ClientMsg::Promote { peer },
                "admit" => ClientMsg::Admit { peer },
                _ => ClientMsg::Deny { peer },
            },
            None => return eprintln!("nobody (or more than one) here is called {arg:?}; /who"),
        },
        _ => return eprintln!("unknown command /{verb}; {HELP}"),
    };
    session.send(msg).await;
}

fn roster_line(roster: &Roster) -> String {
    let names = roster.names();
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
        Closed::MeetingEnded => Err(Failure::new(6, "meeting_ended", "the meeting has ended")),
        Closed::Removed => Err(Failure::new(
            6,
            "removed",
            "you were removed from the meeting",
        )),
        Closed::Denied => Err(Failure::new(6, "denied", "the host did not let you in")),
        Closed::Refused { code, message } if code == "unauthorized" => {
            Err(Failure::new(3, &code, message))
        }
        Closed::Refused { code, message } => Err(Failure::new(4, &code, message)),
        Closed::Lost(why) => Err(Failure::new(5, "connection_lost", why)),
    }
}

/// Prints one event.
fn show(
    ev: &Event,
    roster: &mut Roster,
    me: &mut Option<parley_shared::PeerId>,
    entered: &mut bool,
    code: &MeetingCode,
    json: bool,
) {
    let msg = match ev {
        Event::Server(m) => m,
        Event::Reconnecting { attempt, why } => {
            if json {
                out_json(&serde_json::json!({"type": "reconnecting", "attempt": attempt}));
            }
            eprintln!("connection lost ({why}); reconnecting (attempt {attempt})");
            return;
        }
        Event::Closed(_) => return,
    };
    roster.update(msg);
    let again = match msg {
        ServerMsg::Welcome { peer_id, .. } => {
            *me = Some(peer_id.clone());
            std::mem::replace(entered, true)
        }
        _ => false,
    };
    if json {
        out_json(msg);
        let _ = std::io::stdout().flush();
        if let ServerMsg::PeerLeft { peer_id } = msg {
            roster.forget(peer_id);
        }
        return;
    }
    let line = match msg {
        ServerMsg::Welcome {
            role: r,
            participants,
            ..
        } => {
            let others: Vec<&str> = participants
                .iter()
                .map(|p| p.display_name.as_str())
                .collect();
            let here = if others.is_empty() {
                "nobody else is here yet".to_string()
            } else {
                format!("here: {}", others.join(", "))
            };
            if again {
                format!("* back in {code}")
            } else {
                format!("* joined {code} as {}; {here}", role(*r))
            }
        }
        ServerMsg::Waiting => "* waiting for the host to let you in".into(),
        ServerMsg::WaitingPeer { display_name, .. } => {
            format!("* {display_name} is waiting to join (/admit {display_name} or /deny {display_name})")
        }
        ServerMsg::PeerJoined { participant } => format!("* {} joined", participant.display_name),
        ServerMsg::PeerLeft { peer_id } => {
            let line = format!("* {} left", roster.name(peer_id));
            roster.forget(peer_id);
            line
        }
        ServerMsg::Chat { message } => format!("{}: {}", message.sender_name, message.text),
        ServerMsg::MediaState { peer_id, media } => format!(
            "* {}: mic {}, camera {}, screen {}",
            roster.name(peer_id),
            on(media.audio),
            on(media.video),
            on(media.screen)
        ),
        ServerMsg::Hand { peer_id, raised } => format!(
            "* {} {} a hand",
            roster.name(peer_id),
            if *raised { "raised" } else { "lowered" }
        ),
        ServerMsg::Reaction { peer_id, emoji } => {
            format!("* {} reacted {emoji}", roster.name(peer_id))
        }
        ServerMsg::RoleChanged { peer_id, role: r } => {
            let who = if me.as_ref() == Some(peer_id) {
                "you are".to_string()
            } else {
                format!("{} is", roster.name(peer_id))
            };
            format!("* {who} now {}", role(*r))
        }
        ServerMsg::LockChanged { locked } => {
            format!("* meeting {}", if *locked { "locked" } else { "unlocked" })
        }
        ServerMsg::MutedByHost => "* the host muted you".into(),
        ServerMsg::Removed => "* you were removed from the meeting".into(),
        ServerMsg::Denied => "* the host did not let you in".into(),
        ServerMsg::MeetingEnded => "* the meeting has ended".into(),
        ServerMsg::ServerShutdown => "* the server is restarting".into(),
        ServerMsg::Error { code, message } => {
            eprintln!("parley-cli: {code}: {message}");
            return;
        }
        // Acks, signaling for media (no media here) and anything newer: nothing to show.
        _ => return,
    };
    println!("{line}");
    let _ = std::io::stdout().flush();
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

#[cfg(test)]
mod tests {
    use super::parse_video_size;

    #[test]
    fn video_sizes_are_parsed_and_checked() {
        assert_eq!(parse_video_size("640x360@30"), Ok((640, 360, 30)));
        assert_eq!(parse_video_size("1280x720@15"), Ok((1280, 720, 15)));
        for bad in [
            "640x360",
            "640@30",
            "641x360@30",
            "8x8@30",
            "640x360@0",
            "axb@c",
            "",
        ] {
            assert!(parse_video_size(bad).is_err(), "{bad:?} accepted");
        }
    }
}
