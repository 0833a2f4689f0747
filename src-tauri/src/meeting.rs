//! The meeting room's back end: at most one live [`Call`], driven by the UI's commands. What
//! the call reports becomes a room snapshot ([`RoomEvent`], sent whole on every change), chat
//! ([`ChatEvent`]), audio levels ([`LevelsEvent`], ten times a second), reactions and notices.
//! Video frames go to the webview as binary packets over a Tauri channel (see [`packet`]),
//! never as JSON.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parley_engine::call::{
    AudioSource, Call, CallConfig, CallError, CallEvent, Device, VideoSource,
};
use parley_engine::media::aec::Denoiser;
use parley_engine::media::devices::DeviceError;
use parley_engine::media::frame::I420Frame;
use parley_engine::signaling::{Closed, Event, JoinOptions, TokenSource};
use parley_shared::api::Role;
use parley_shared::signal::{ClientMsg, Participant, ServerMsg};
use parley_shared::{MeetingCode, PeerId};
use tauri::ipc::{Channel, InvokeResponseBody, IpcResponse};
use tauri::{AppHandle, Manager as _};
use tauri_specta::Event as _;
use tokio::sync::mpsc;

use crate::types::{
    AppError, ChatEvent, ChatView, LevelsEvent, NoticeEvent, ParticipantView, ReactionEvent,
    RoomEvent, RoomView, WaitingView,
};
use crate::Shell;

/// Frames of one track handed to the webview and not yet reported drawn; beyond this, that
/// track's frames are dropped rather than queued: a busy UI is sent only what it can draw
/// (receiving a frame costs the webview as much as drawing it), and shows fresh pictures.
const MAX_FRAMES_IN_FLIGHT: u32 = 2;
/// Self-view frame rate.
const PREVIEW_FPS: u32 = 15;

/// Video packet kinds (byte 1 of a packet).
pub const KIND_CAMERA: u8 = 0;
pub const KIND_SCREEN: u8 = 1;
pub const KIND_SELF: u8 = 2;

/// One video frame for the webview: `[format, kind, width u16 LE, height u16 LE, id length, id
/// bytes…, pixels]`, the pixels tightly packed as I420 (Y, U, V planes; format 1) or RGBA
/// (format 2). The TypeScript side (`ui/src/lib/video.ts`) reads the same layout.
pub struct VideoPacket(pub Vec<u8>);

/// How the webview gets its pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, specta::Type)]
#[serde(rename_all = "lowercase")]
pub enum VideoFormat {
    /// For a WebGL shader: a third of RGBA's bytes, converted on the GPU.
    I420,
    /// For a 2D canvas (`putImageData`), converted here with SIMD: for a webview without
    /// WebGL, or on a machine without a GPU, where WebGL would run in software.
    Rgba,
}

impl VideoFormat {
    /// What to send a UI that asked for `asked`: RGBA where GL is software (the UI cannot
    /// tell: WebKit names no real renderer to pages); `PARLEY_VIDEO_FORMAT=i420|rgba`
    /// overrides both (measurements).
    pub fn for_this_machine(asked: Self) -> Self {
        match std::env::var("PARLEY_VIDEO_FORMAT").as_deref() {
            Ok("i420") => Self::I420,
            Ok("rgba") => Self::Rgba,
            _ if software_gl() => Self::Rgba,
            _ => asked,
        }
    }
}

/// No GPU to render with: on Linux, no DRM render node (`/dev/dri/renderD*`), so GL is
/// Mesa's software rasteriser. Elsewhere the webview's own GPU checks are trusted.
pub fn software_gl() -> bool {
    if !cfg!(target_os = "linux") {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/dev/dri") else {
        return true;
    };
    !dir.flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
}

impl IpcResponse for VideoPacket {
    fn body(self) -> tauri::Result<InvokeResponseBody> {
        Ok(InvokeResponseBody::Raw(self.0))
    }
}

impl specta::Type for VideoPacket {
    fn inline(_: &mut specta::TypeCollection, _: specta::Generics) -> specta::datatype::DataType {
        // Arrives in JavaScript as an ArrayBuffer; specta has no name for that.
        specta::datatype::DataType::Unknown
    }
}

/// Builds a [`VideoPacket`].
pub fn packet(format: VideoFormat, kind: u8, peer: &str, frame: &I420Frame) -> Vec<u8> {
    let id = &peer.as_bytes()[..peer.len().min(255)];
    let (w, h) = (frame.width.min(65535), frame.height.min(65535));
    let pixels = match format {
        VideoFormat::I420 => frame.data.len(),
        VideoFormat::Rgba => w as usize * h as usize * 4,
    };
    let mut out = Vec::with_capacity(7 + id.len() + pixels);
    out.push(match format {
        VideoFormat::I420 => 1,
        VideoFormat::Rgba => 2,
    });
    out.push(kind);
    out.extend_from_slice(&(w as u16).to_le_bytes());
    out.extend_from_slice(&(h as u16).to_le_bytes());
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    match format {
        VideoFormat::I420 => out.extend_from_slice(&frame.data),
        VideoFormat::Rgba => {
            let start = out.len();
            out.resize(start + pixels, 255);
            if i420_to_rgba(frame, &mut out[start..]).is_err() {
                out.truncate(start); // a malformed frame: the UI skips a short packet
            }
        }
    }
    out
}

/// BT.601 limited range, as the engine's encoder and decoder use.
fn i420_to_rgba(frame: &I420Frame, rgba: &mut [u8]) -> Result<(), yuv::YuvError> {
    let (w, h) = (frame.width, frame.height);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let y_len = (w * h) as usize;
    let c_len = (cw * ch) as usize;
    let data = &frame.data;
    if data.len() < y_len + 2 * c_len {
        return Err(yuv::YuvError::PointerOverflow);
    }
    let image = yuv::YuvPlanarImage {
        y_plane: &data[..y_len],
        y_stride: w,
        u_plane: &data[y_len..y_len + c_len],
        u_stride: cw,
        v_plane: &data[y_len + c_len..y_len + 2 * c_len],
        v_stride: cw,
        width: w,
        height: h,
    };
    yuv::yuv420_to_rgba(
        &image,
        rgba,
        w * 4,
        yuv::YuvRange::Limited,
        yuv::YuvStandardMatrix::Bt601,
    )
}

/// What to join, and how.
pub struct JoinRequest {
    pub code: MeetingCode,
    pub title: String,
    pub my_name: String,
    pub passcode: Option<String>,
    pub camera_on: bool,
    pub mic_on: bool,
}

struct Live {
    call: Arc<Call>,
    /// Which devices the call was started with (for turning the camera on later).
    camera: Option<VideoSource>,
}

/// The meeting state shared by the commands, the event pump and the tray.
#[derive(Default)]
pub struct Meetings {
    live: tokio::sync::Mutex<Option<Live>>,
    room: std::sync::Mutex<RoomView>,
    chat: std::sync::Mutex<Vec<ChatView>>,
    /// Chat sent and not yet acknowledged: client_msg_id → text.
    pending: std::sync::Mutex<HashMap<String, String>>,
    video: std::sync::Mutex<Option<(Channel<VideoPacket>, VideoFormat)>>,
    /// Frames in flight per track (`peer/kind`).
    in_flight: std::sync::Mutex<HashMap<String, u32>>,
    /// Frames dropped because the UI was behind (for the rendering figures).
    pub dropped: AtomicU64,
    /// Counts calls, so a finished call's late events do not touch the next one's room.
    generation: AtomicU64,
    preview: std::sync::Mutex<Option<Preview>>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn role_name(r: Role) -> String {
    match r {
        Role::Host => "host",
        Role::Cohost => "cohost",
        _ => "participant",
    }
    .into()
}

fn participant(p: &Participant) -> ParticipantView {
    ParticipantView {
        peer_id: p.peer_id.to_string(),
        user_id: p.user_id.to_string(),
        name: p.display_name.clone(),
        role: role_name(p.role),
        mic: p.media.audio,
        camera: p.media.video,
        screen: p.media.screen,
        hand: p.hand_raised,
        link: "new".into(),
        send_kbps: None,
    }
}

/// Whether fake media is on (`PARLEY_FAKE_MEDIA=1`): a "Test pattern" camera and a
/// "Test tone" microphone are offered and chosen by default. For machines without devices
/// (the end-to-end tests); users see their real devices.
pub fn fake_media() -> bool {
    std::env::var("PARLEY_FAKE_MEDIA").is_ok_and(|v| v == "1")
}

pub const SYNTHETIC_CAMERA: &str = "synthetic";
pub const TONE_MIC: &str = "tone:440";

pub fn camera_source(id: Option<&str>) -> VideoSource {
    match id {
        Some(SYNTHETIC_CAMERA) => VideoSource::Synthetic,
        None if fake_media() => VideoSource::Synthetic,
        other => VideoSource::Camera(other.map(str::to_string)),
    }
}

pub fn mic_source(name: Option<&str>) -> AudioSource {
    match name {
        Some(n) if n.starts_with("tone:") => AudioSource::Tone(n[5..].parse().unwrap_or(440.0)),
        None if fake_media() => AudioSource::Tone(440.0),
        other => AudioSource::Device(other.map(str::to_string)),
    }
}

/// The signed-in account's tokens, for the call's signaling.
struct Tokens(AppHandle);

impl TokenSource for Tokens {
    async fn token(&self, refresh: bool) -> Result<String, String> {
        let shell = self.0.state::<Shell>();
        shell.account.token(refresh).await.map_err(|e| e.message)
    }
}

/// Which device a start-up error is about.
fn failed_device(e: &CallError) -> Option<Device> {
    match e {
        CallError::Device(_) => Some(Device::Camera),
        CallError::Microphone(_) => Some(Device::Microphone),
        CallError::Speaker(_) => Some(Device::Speaker),
        CallError::Rtc(_) => None,
    }
}

impl Meetings {
    pub fn room(&self) -> RoomView {
        lock(&self.room).clone()
    }

    pub fn chat(&self) -> Vec<ChatView> {
        lock(&self.chat).clone()
    }

    /// True while in a call (or joining or waiting).
    pub fn in_call(&self) -> bool {
        matches!(
            lock(&self.room).status.as_str(),
            "joining" | "waiting" | "in" | "reconnecting"
        )
    }

    async fn call(&self) -> Result<Arc<Call>, AppError> {
        self.live
            .lock()
            .await
            .as_ref()
            .map(|l| l.call.clone())
            .ok_or_else(|| AppError::new("not_in_meeting", "You are not in a meeting."))
    }

    /// Changes the room (if `generation` is still the current call) and tells the UI.
    fn update(&self, app: &AppHandle, generation: u64, change: impl FnOnce(&mut RoomView)) {
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        let view = {
            let mut room = lock(&self.room);
            change(&mut room);
            room.clone()
        };
        let _ = RoomEvent(view).emit(app);
        crate::tray::refresh(app);
    }

    fn notice(app: &AppHandle, level: &str, text: impl Into<String>) {
        let _ = NoticeEvent {
            level: level.into(),
            text: text.into(),
        }
        .emit(app);
    }

    pub fn set_video_channel(&self, channel: Channel<VideoPacket>, format: VideoFormat) {
        *lock(&self.video) = Some((channel, format));
        lock(&self.in_flight).clear();
    }

    /// The UI is done (drew or skipped) with one frame of each track named (`peer/kind`).
    pub fn frames_done(&self, tracks: &[String]) {
        let mut in_flight = lock(&self.in_flight);
        for t in tracks {
            if let Some(n) = in_flight.get_mut(t) {
                *n = n.saturating_sub(1);
            }
        }
    }

    fn send_frame(&self, kind: u8, peer: &str, frame: &I420Frame) {
        let video = lock(&self.video);
        let Some((channel, format)) = video.as_ref() else {
            return;
        };
        let track = format!("{peer}/{kind}");
        {
            let mut in_flight = lock(&self.in_flight);
            let n = in_flight.entry(track.clone()).or_insert(0);
            if *n >= MAX_FRAMES_IN_FLIGHT {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            *n += 1;
        }
        if channel
            .send(VideoPacket(packet(*format, kind, peer, frame)))
            .is_err()
        {
            self.frames_done(&[track]);
        }
    }

    /// Joins a meeting: opens the devices (a missing one is left out and reported, never a
    /// reason not to join), connects, and starts reporting to the UI.
    pub async fn join(&self, app: &AppHandle, req: JoinRequest) -> Result<RoomView, AppError> {
        let JoinRequest {
            code,
            title,
            my_name,
            passcode,
            camera_on,
            mic_on,
        } = req;
        let mut live = self.live.lock().await;
        if live.is_some() && self.in_call() {
            if lock(&self.room).code == code.as_str() {
                return Ok(self.room());
            }
            return Err(AppError::new(
                "already_in_meeting",
                "Leave the meeting you are in first.",
            ));
        }
        // The settings preview holds the camera and microphone: let go of them first.
        *lock(&self.preview) = None;
        let shell = app.state::<Shell>();
        let stored = shell.settings.get();
        let mut camera = Some(camera_source(stored.camera.as_deref()));
        let mut mic = Some(mic_source(stored.mic.as_deref()));
        let mut speaker = Some(stored.speaker.clone().unwrap_or_else(|| "default".into()));
        let denoiser = match stored.noise.as_deref() {
            Some("rnnoise") => Denoiser::RnNoise,
            _ => Denoiser::WebRtc,
        };
        let ws_url = shell.account.api().await.ws_url();
        let mut missing = Vec::new();
        let call = loop {
            let config = CallConfig {
                camera: camera.clone(),
                mic: mic.clone(),
                speaker: speaker.clone(),
                denoiser,
                preview_fps: PREVIEW_FPS,
                rtc: parley_engine::rtc::RtcOptions {
                    // Tests keep media on loopback (PARLEY_LOOPBACK_ONLY=1).
                    loopback_only: std::env::var("PARLEY_LOOPBACK_ONLY").is_ok_and(|v| v == "1"),
                    ..Default::default()
                },
                ..CallConfig::default()
            };
            let join = JoinOptions {
                code: code.clone(),
                display_name: my_name.clone(),
                passcode: passcode.clone(),
            };
            match Call::start(ws_url.clone(), Tokens(app.clone()), join, config).await {
                Ok(call) => break call,
                Err(e) => {
                    let dropped = match failed_device(&e) {
                        Some(Device::Camera) => camera.take().is_some(),
                        Some(Device::Speaker) => speaker.take().is_some(),
                        Some(_) => mic.take().is_some(),
                        None => false,
                    };
                    if !dropped {
                        return Err(AppError::new("media_device", e.to_string()));
                    }
                    tracing::info!(error = %e, "joining without a device");
                    missing.push(e.to_string());
                }
            }
        };
        let mut call = call;
        let events = std::mem::replace(&mut call.events, mpsc::channel(1).1);
        if !camera_on {
            call.set_camera(false).await;
        }
        if !mic_on {
            call.set_mic(false).await;
        }
        let state = call.media_state();
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        *lock(&self.chat) = Vec::new();
        lock(&self.pending).clear();
        *lock(&self.room) = RoomView {
            code: code.to_string(),
            title: title.clone(),
            status: "joining".into(),
            my_name,
            my_role: "participant".into(),
            mic: state.audio,
            camera: state.video,
            has_mic: mic.is_some(),
            has_camera: camera.is_some(),
            ..RoomView::default()
        };
        shell.settings.add_recent(code.as_str(), &title);
        *live = Some(Live {
            call: Arc::new(call),
            camera,
        });
        drop(live);
        for m in missing {
            Self::notice(app, "warning", format!("Joined without it: {m}"));
        }
        self.update(app, generation, |_| {});
        tokio::spawn(pump(app.clone(), generation, events));
        Ok(self.room())
    }

    /// Leaves the meeting (the others see us go at once).
    pub async fn leave(&self) {
        let live = self.live.lock().await.take();
        if let Some(l) = live {
            l.call.leave().await;
            lock(&self.room).ended.get_or_insert_with(|| "left".into());
        }
    }

    pub async fn set_mic(&self, app: &AppHandle, on: bool) -> Result<RoomView, AppError> {
        let call = self.call().await?;
        call.set_mic(on).await;
        let audio = call.media_state().audio;
        let g = self.generation.load(Ordering::SeqCst);
        self.update(app, g, |r| r.mic = audio);
        Ok(self.room())
    }

    pub async fn set_camera(&self, app: &AppHandle, on: bool) -> Result<RoomView, AppError> {
        let call = self.call().await?;
        call.set_camera(on).await;
        if on && !call.media_state().video {
            // Joined without a camera (or it was lost): try to open one now.
            let source = {
                let live = self.live.lock().await;
                let stored = app.state::<Shell>().settings.get();
                live.as_ref()
                    .and_then(|l| l.camera.clone())
                    .unwrap_or_else(|| camera_source(stored.camera.as_deref()))
            };
            call.select_camera(source)
                .await
                .map_err(|e| AppError::new("media_device", e.to_string()))?;
        }
        let video = call.media_state().video;
        let g = self.generation.load(Ordering::SeqCst);
        self.update(app, g, |r| {
            r.camera = video;
            r.has_camera |= video;
        });
        Ok(self.room())
    }

    pub async fn set_hand(&self, app: &AppHandle, raised: bool) -> Result<(), AppError> {
        self.call().await?.send(ClientMsg::Hand { raised }).await;
        let g = self.generation.load(Ordering::SeqCst);
        self.update(app, g, |r| r.hand = raised);
        Ok(())
    }

    pub async fn react(&self, app: &AppHandle, emoji: String) -> Result<(), AppError> {
        self.call()
            .await?
            .send(ClientMsg::Reaction {
                emoji: emoji.clone(),
            })
            .await;
        let room = self.room();
        let _ = ReactionEvent {
            peer_id: room.me.unwrap_or_default(),
            name: room.my_name,
            emoji,
        }
        .emit(app);
        Ok(())
    }

    /// Sends a chat message; it shows at once as pending, then as sent when the server
    /// acknowledges it (delivered once, even across reconnects).
    pub async fn send_chat(&self, app: &AppHandle, text: String) -> Result<(), AppError> {
        let text = text.trim().to_string();
        if text.is_empty() {
            return Err(AppError::new("invalid", "The message is empty."));
        }
        if text.len() > parley_shared::validate::MAX_CHAT_BYTES {
            return Err(AppError::new("chat_too_long", "That message is too long."));
        }
        let call = self.call().await?;
        let id = call.chat(text.clone()).await;
        lock(&self.pending).insert(id.clone(), text.clone());
        let user = app.state::<Shell>().account.user().await;
        let _ = ChatEvent {
            message: ChatView {
                id: id.clone(),
                seq: 0.0,
                sender_id: user.map(|u| u.id.to_string()).unwrap_or_default(),
                sender: self.room().my_name,
                text,
                at_ms: now_ms(),
            },
            mine: true,
            pending: true,
            client_msg_id: Some(id),
        }
        .emit(app);
        Ok(())
    }

    /// A host action: `admit`, `deny`, `mute`, `remove`, `promote` (with a peer), `lock`,
    /// `unlock`, `end`.
    pub async fn host(&self, action: &str, peer: Option<String>) -> Result<(), AppError> {
        let call = self.call().await?;
        let peer = || {
            peer.clone()
                .map(PeerId)
                .ok_or_else(|| AppError::new("invalid", "Which participant?"))
        };
        let msg = match action {
            "admit" => ClientMsg::Admit { peer: peer()? },
            "deny" => ClientMsg::Deny { peer: peer()? },
            "mute" => ClientMsg::Mute { peer: peer()? },
            "remove" => ClientMsg::Remove { peer: peer()? },
            "promote" => ClientMsg::Promote { peer: peer()? },
            "lock" => ClientMsg::Lock,
            "unlock" => ClientMsg::Unlock,
            "end" => ClientMsg::End,
            other => {
                return Err(AppError::new(
                    "invalid",
                    format!("{other:?} is not a host action."),
                ))
            }
        };
        call.send(msg).await;
        Ok(())
    }

    pub async fn start_share(
        &self,
        app: &AppHandle,
        target: &str,
        name: String,
    ) -> Result<RoomView, AppError> {
        let target = target
            .parse()
            .map_err(|e: String| AppError::new("invalid", e))?;
        let call = self.call().await?;
        call.start_screen(target)
            .await
            .map_err(|e| AppError::new("media_device", e.to_string()))?;
        let g = self.generation.load(Ordering::SeqCst);
        self.update(app, g, |r| {
            r.screen = true;
            r.share_name = Some(name);
        });
        Ok(self.room())
    }

    pub async fn stop_share(&self, app: &AppHandle) -> Result<RoomView, AppError> {
        self.call().await?.stop_screen().await;
        let g = self.generation.load(Ordering::SeqCst);
        self.update(app, g, |r| {
            r.screen = false;
            r.share_name = None;
        });
        Ok(self.room())
    }

    /// Applies a device choice to the call in progress, if any.
    pub async fn apply_device(&self, kind: &str, id: Option<&str>) -> Result<(), AppError> {
        let Ok(call) = self.call().await else {
            return Ok(());
        };
        let err = |e: CallError| AppError::new("media_device", e.to_string());
        match kind {
            "camera" => {
                let source = camera_source(id);
                if let Some(l) = self.live.lock().await.as_mut() {
                    l.camera = Some(source.clone());
                }
                call.select_camera(source).await.map_err(err)
            }
            "mic" => match mic_source(id) {
                AudioSource::Device(name) => call.select_mic(name.as_deref()).map_err(err),
                AudioSource::Tone(_) => Ok(()), // takes effect at the next join
            },
            "speaker" => call.select_speaker(id).map_err(err),
            _ => Ok(()),
        }
    }
}

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0)
}

fn ended_message(c: &Closed) -> (String, String) {
    match c {
        Closed::Left => ("left".into(), "You left the meeting.".into()),
        Closed::MeetingEnded => ("meeting_ended".into(), "The meeting has ended.".into()),
        Closed::Removed => (
            "removed".into(),
            "A host removed you from the meeting.".into(),
        ),
        Closed::Denied => ("denied".into(), "The host did not let you in.".into()),
        Closed::Refused { code, message } => (code.clone(), message.clone()),
        Closed::Lost(why) => (
            "connection_lost".into(),
            format!("The connection to the meeting was lost ({why})."),
        ),
    }
}

/// Turns the call's events into room updates and UI events until the call ends.
async fn pump(app: AppHandle, generation: u64, mut events: mpsc::Receiver<CallEvent>) {
    let mut levels: HashMap<PeerId, f32> = HashMap::new();
    let mut mic_level = -100.0f32;
    let mut active: Option<PeerId> = None;
    let mut history_loaded = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let ev = tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => ev,
                None => break,
            },
            _ = tick.tick() => {
                let shell = app.state::<Shell>();
                let m = &shell.meetings;
                if m.generation.load(Ordering::SeqCst) == generation && m.room().status == "in" {
                    let _ = LevelsEvent {
                        peers: levels.iter().map(|(p, d)| (p.to_string(), *d)).collect(),
                        mic: mic_level,
                        active_speaker: active.as_ref().map(|p| p.to_string()),
                    }
                    .emit(&app);
                }
                continue;
            }
        };
        let shell = app.state::<Shell>();
        let m = &shell.meetings;
        if m.generation.load(Ordering::SeqCst) != generation {
            break;
        }
        match ev {
            CallEvent::Video { peer, kind, frame } => {
                let k = match kind {
                    parley_engine::rtc::MediaKind::Screen => KIND_SCREEN,
                    _ => KIND_CAMERA,
                };
                m.send_frame(k, peer.as_str(), &frame);
            }
            CallEvent::LocalVideo { frame } => m.send_frame(KIND_SELF, "self", &frame),
            // The self view shows what the camera captures; the smaller picture sent to fit
            // the CPU is for the peers (logged by the engine).
            CallEvent::Audio { .. } | CallEvent::Ice { .. } | CallEvent::CameraAdapted { .. } => {}
            CallEvent::AudioLevel { peer, dbfs } => {
                levels.insert(peer, dbfs);
            }
            CallEvent::MicLevel { dbfs } => mic_level = dbfs,
            CallEvent::ActiveSpeaker { peer } => active = peer,
            CallEvent::Link { peer, state } => m.update(&app, generation, |r| {
                if let Some(p) = r
                    .participants
                    .iter_mut()
                    .find(|p| p.peer_id == peer.as_str())
                {
                    p.link = state;
                }
            }),
            CallEvent::Quality { peer, send_kbps } => m.update(&app, generation, |r| {
                if let Some(p) = r
                    .participants
                    .iter_mut()
                    .find(|p| p.peer_id == peer.as_str())
                {
                    p.send_kbps = Some(send_kbps);
                }
            }),
            CallEvent::DeviceLost { device, error } => {
                Meetings::notice(&app, "warning", format!("{device:?} stopped: {error}"));
                // Audio falls back to the system default; video waits for a choice.
                if let Ok(call) = m.call().await {
                    match device {
                        Device::Microphone => {
                            if let Err(e) = call.select_mic(None) {
                                Meetings::notice(&app, "error", format!("No microphone: {e}"));
                            }
                        }
                        Device::Speaker => {
                            if let Err(e) = call.select_speaker(None) {
                                Meetings::notice(&app, "error", format!("No speaker: {e}"));
                            }
                        }
                        _ => {}
                    }
                    let state = call.media_state();
                    m.update(&app, generation, |r| {
                        r.camera = state.video;
                        r.screen = state.screen;
                        r.mic = state.audio;
                        if !state.screen {
                            r.share_name = None;
                        }
                    });
                }
            }
            CallEvent::Signal(Event::Reconnecting { .. }) => {
                m.update(&app, generation, |r| r.status = "reconnecting".into());
            }
            CallEvent::Signal(Event::Closed(c)) => {
                let (code, text) = ended_message(&c);
                m.live.lock().await.take();
                m.update(&app, generation, |r| {
                    r.status = "ended".into();
                    r.ended = Some(r.ended.clone().unwrap_or(code));
                    r.ended_message = Some(text);
                    r.participants.clear();
                    r.waiting.clear();
                    r.screen = false;
                    r.share_name = None;
                });
                break;
            }
            CallEvent::Signal(Event::Server(msg)) => {
                if let ServerMsg::Welcome { .. } = &msg {
                    if !history_loaded {
                        history_loaded = true;
                        tokio::spawn(load_history(app.clone(), generation));
                    }
                }
                server_msg(&app, m, generation, msg).await;
            }
        }
    }
}

async fn server_msg(app: &AppHandle, m: &Meetings, g: u64, msg: ServerMsg) {
    match msg {
        ServerMsg::Welcome {
            peer_id,
            role,
            participants,
            locked,
            ..
        } => m.update(app, g, |r| {
            let old: HashMap<String, ParticipantView> = r
                .participants
                .drain(..)
                .map(|p| (p.peer_id.clone(), p))
                .collect();
            r.participants = participants
                .iter()
                .map(|p| {
                    let mut v = participant(p);
                    if let Some(o) = old.get(&v.peer_id) {
                        v.link = o.link.clone();
                        v.send_kbps = o.send_kbps;
                    }
                    v
                })
                .collect();
            r.status = "in".into();
            r.me = Some(peer_id.to_string());
            r.my_role = role_name(role);
            r.locked = locked;
        }),
        ServerMsg::Waiting => m.update(app, g, |r| r.status = "waiting".into()),
        ServerMsg::WaitingPeer {
            peer_id,
            display_name,
            ..
        } => {
            Meetings::notice(app, "info", format!("{display_name} is waiting to join."));
            m.update(app, g, |r| {
                r.waiting.retain(|w| w.peer_id != peer_id.as_str());
                r.waiting.push(WaitingView {
                    peer_id: peer_id.to_string(),
                    name: display_name,
                });
            })
        }
        ServerMsg::WaitingDone { peer_id } => m.update(app, g, |r| {
            r.waiting.retain(|w| w.peer_id != peer_id.as_str())
        }),
        ServerMsg::PeerJoined { participant: p } => m.update(app, g, |r| {
            r.participants.retain(|x| x.peer_id != p.peer_id.as_str());
            r.participants.push(participant(&p));
        }),
        ServerMsg::PeerLeft { peer_id } => m.update(app, g, |r| {
            r.participants.retain(|x| x.peer_id != peer_id.as_str())
        }),
        ServerMsg::MediaState { peer_id, media } => m.update(app, g, |r| {
            if let Some(p) = r
                .participants
                .iter_mut()
                .find(|p| p.peer_id == peer_id.as_str())
            {
                p.mic = media.audio;
                p.camera = media.video;
                p.screen = media.screen;
            }
        }),
        ServerMsg::Hand { peer_id, raised } => m.update(app, g, |r| {
            if let Some(p) = r
                .participants
                .iter_mut()
                .find(|p| p.peer_id == peer_id.as_str())
            {
                p.hand = raised;
            }
        }),
        ServerMsg::Reaction { peer_id, emoji } => {
            let name = m
                .room()
                .participants
                .iter()
                .find(|p| p.peer_id == peer_id.as_str())
                .map(|p| p.name.clone())
                .unwrap_or_default();
            let _ = ReactionEvent {
                peer_id: peer_id.to_string(),
                name,
                emoji,
            }
            .emit(app);
        }
        ServerMsg::RoleChanged { peer_id, role } => m.update(app, g, |r| {
            if r.me.as_deref() == Some(peer_id.as_str()) {
                r.my_role = role_name(role);
            } else if let Some(p) = r
                .participants
                .iter_mut()
                .find(|p| p.peer_id == peer_id.as_str())
            {
                p.role = role_name(role);
            }
        }),
        ServerMsg::LockChanged { locked } => m.update(app, g, |r| r.locked = locked),
        ServerMsg::MutedByHost => {
            Meetings::notice(app, "info", "A host muted your microphone.");
            m.update(app, g, |r| r.mic = false);
        }
        ServerMsg::Chat { message } => {
            let view = ChatView::from(message);
            let mine = false;
            if add_chat(m, &view) {
                notify_chat(app, &view);
                let _ = ChatEvent {
                    message: view,
                    mine,
                    pending: false,
                    client_msg_id: None,
                }
                .emit(app);
            }
        }
        ServerMsg::ChatAck {
            client_msg_id,
            id,
            seq,
        } => {
            let Some(text) = lock(&m.pending).remove(&client_msg_id) else {
                return;
            };
            let user = app.state::<Shell>().account.user().await;
            let view = ChatView {
                id,
                seq: seq as f64,
                sender_id: user.map(|u| u.id.to_string()).unwrap_or_default(),
                sender: m.room().my_name,
                text,
                at_ms: now_ms(),
            };
            add_chat(m, &view);
            let _ = ChatEvent {
                message: view,
                mine: true,
                pending: false,
                client_msg_id: Some(client_msg_id),
            }
            .emit(app);
        }
        ServerMsg::Error { code, message } => {
            Meetings::notice(app, "error", format!("{message} ({})", code.as_str()));
        }
        ServerMsg::ServerShutdown => {
            Meetings::notice(app, "warning", "The server is restarting; reconnecting…");
        }
        _ => {}
    }
}

/// Keeps a message in the room's chat; false if it was there already.
fn add_chat(m: &Meetings, view: &ChatView) -> bool {
    let mut chat = lock(&m.chat);
    if chat.iter().any(|c| c.id == view.id) {
        return false;
    }
    let at = chat.partition_point(|c| c.seq <= view.seq);
    chat.insert(at, view.clone());
    true
}

/// A desktop notification for chat while the window is hidden or unfocused.
fn notify_chat(app: &AppHandle, view: &ChatView) {
    let visible = app
        .get_webview_window("main")
        .map(|w| w.is_visible().unwrap_or(true) && w.is_focused().unwrap_or(true))
        .unwrap_or(true);
    if !visible {
        crate::notify(app, &view.sender, &view.text);
    }
}

/// The meeting's earlier chat, from the server's history.
async fn load_history(app: AppHandle, generation: u64) {
    let shell = app.state::<Shell>();
    let m = &shell.meetings;
    let Ok(code) = MeetingCode::parse(&m.room().code) else {
        return;
    };
    let me = shell.account.user().await.map(|u| u.id.to_string());
    let mut after = 0i64;
    loop {
        let page: Result<_, AppError> = async {
            crate::with_token!(shell.account, |api, t| api
                .history(&t, &code, after, 500)
                .await)
        }
        .await;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(error = %e, "chat history not loaded");
                return;
            }
        };
        let n = page.messages.len();
        for entry in page.messages {
            after = entry.seq;
            let view = ChatView::from(entry);
            if m.generation.load(Ordering::SeqCst) != generation {
                return;
            }
            if add_chat(m, &view) {
                let _ = ChatEvent {
                    mine: me.as_deref() == Some(view.sender_id.as_str()),
                    message: view,
                    pending: false,
                    client_msg_id: None,
                }
                .emit(&app);
            }
        }
        if n < 500 {
            return;
        }
    }
}

/// The settings dialog's preview outside a call: the chosen camera drawn as the self view and
/// the chosen microphone's level, until stopped.
pub struct Preview {
    stop: Arc<std::sync::atomic::AtomicBool>,
    _mic: Option<parley_engine::media::devices::Mic>,
}

impl Drop for Preview {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Meetings {
    /// Starts (again, with the current choices) or stops the device preview. In a call the
    /// call's own self view and meter serve instead, so this does nothing there.
    pub fn preview(&self, app: &AppHandle, on: bool) -> Result<(), AppError> {
        let mut slot = lock(&self.preview);
        *slot = None; // stops the old one
        if !on || self.in_call() {
            return Ok(());
        }
        let stored = app.state::<Shell>().settings.get();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let err = |e: DeviceError| AppError::new("media_device", e.to_string());
        // Camera: its own thread (capture blocks), 15 frames a second.
        let source = camera_source(stored.camera.as_deref());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (app2, stop2) = (app.clone(), stop.clone());
        std::thread::Builder::new()
            .name("parley-preview".into())
            .spawn(move || {
                use parley_engine::media::capture::{CameraCapture, VideoCapture};
                let opened: Result<Box<dyn VideoCapture>, DeviceError> = match source {
                    VideoSource::Synthetic => Ok(Box::new(
                        parley_engine::media::synthetic::SyntheticVideo::new(640, 480),
                    )),
                    VideoSource::Camera(id) => CameraCapture::open(id.as_deref(), 640, 480, 30)
                        .map(|c| Box::new(c) as Box<dyn VideoCapture>),
                };
                let mut cam = match opened {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let period = Duration::from_secs(1) / PREVIEW_FPS;
                while !stop2.load(Ordering::SeqCst) {
                    let t = std::time::Instant::now();
                    match cam.capture(now_ms() as u64) {
                        Ok(f) => app2
                            .state::<Shell>()
                            .meetings
                            .send_frame(KIND_SELF, "self", &f),
                        Err(e) => {
                            Meetings::notice(&app2, "warning", format!("Camera stopped: {e}"));
                            return;
                        }
                    }
                    std::thread::sleep(period.saturating_sub(t.elapsed()));
                }
            })
            .map_err(|e| AppError::new("media_device", e.to_string()))?;
        let camera_error = ready_rx
            .recv()
            .unwrap_or_else(|_| Err(DeviceError::Camera("preview ended".into())))
            .err();
        // Microphone: its level, ten times a second, as the meter's `mic`.
        let (mic, mut frames) = match mic_source(stored.mic.as_deref()) {
            AudioSource::Device(name) => {
                let (mic, frames) =
                    parley_engine::media::devices::Mic::start(name.as_deref(), None, |_| {})
                        .map_err(err)?;
                (Some(mic), frames)
            }
            AudioSource::Tone(hz) => {
                // The test tone: its frames, paced like a microphone's.
                let (tx, rx) = mpsc::channel(50);
                let stop3 = stop.clone();
                tokio::spawn(async move {
                    let mut tone = parley_engine::media::audio::Tone::new(hz, 0.3);
                    let mut tick = tokio::time::interval(Duration::from_millis(20));
                    while !stop3.load(Ordering::SeqCst) {
                        tick.tick().await;
                        if tx.send(tone.next_frame()).await.is_err() {
                            return;
                        }
                    }
                });
                (None, rx)
            }
        };
        let (app4, stop4) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            let mut window: Vec<f32> = Vec::new();
            while let Some(frame) = frames.recv().await {
                if stop4.load(Ordering::SeqCst) {
                    return;
                }
                window.extend_from_slice(&frame);
                if window.len() >= 4800 {
                    let _ = LevelsEvent {
                        peers: Vec::new(),
                        mic: parley_engine::media::level::level_dbfs(&window),
                        active_speaker: None,
                    }
                    .emit(&app4);
                    window.clear();
                }
            }
        });
        *slot = Some(Preview { stop, _mic: mic });
        match camera_error {
            Some(e) => Err(err(e)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of one colour (Y, U, V), `w`×`h`.
    fn flat(w: u32, h: u32, (y, u, v): (u8, u8, u8)) -> I420Frame {
        let (ys, cs) = ((w * h) as usize, (w.div_ceil(2) * h.div_ceil(2)) as usize);
        let mut data = vec![y; ys + 2 * cs];
        data[ys..ys + cs].fill(u);
        data[ys + cs..].fill(v);
        I420Frame {
            width: w,
            height: h,
            data,
        }
    }

    fn header(p: &[u8]) -> (u8, u8, u16, u16, &str, &[u8]) {
        let id_len = p[6] as usize;
        (
            p[0],
            p[1],
            u16::from_le_bytes([p[2], p[3]]),
            u16::from_le_bytes([p[4], p[5]]),
            std::str::from_utf8(&p[7..7 + id_len]).unwrap(),
            &p[7 + id_len..],
        )
    }

    #[test]
    fn i420_packets_carry_the_planes_as_they_are() {
        let f = flat(4, 2, (81, 90, 240));
        let p = packet(VideoFormat::I420, KIND_SCREEN, "peer-1", &f);
        let (format, kind, w, h, id, pixels) = header(&p);
        assert_eq!((format, kind, w, h, id), (1, KIND_SCREEN, 4, 2, "peer-1"));
        assert_eq!(pixels, &f.data[..]);
    }

    #[test]
    fn rgba_packets_hold_bt601_limited_range_colours() {
        // BT.601 limited range: (16,128,128) black, (235,128,128) white, (81,90,240) red.
        for ((y, u, v), want) in [
            ((16, 128, 128), [0u8, 0, 0]),
            ((235, 128, 128), [255, 255, 255]),
            ((81, 90, 240), [255, 0, 0]),
            ((145, 54, 34), [0, 255, 0]),
        ] {
            // Odd sizes: the chroma planes round up.
            let p = packet(VideoFormat::Rgba, KIND_CAMERA, "p", &flat(5, 3, (y, u, v)));
            let (format, _, w, h, _, pixels) = header(&p);
            assert_eq!((format, w, h), (2, 5, 3));
            assert_eq!(pixels.len(), 5 * 3 * 4);
            for px in pixels.chunks(4) {
                for c in 0..3 {
                    let d = (px[c] as i32 - want[c] as i32).abs();
                    assert!(d <= 3, "{:?} from {:?}, want {want:?}", px, (y, u, v));
                }
                assert_eq!(px[3], 255);
            }
        }
    }

    #[test]
    fn a_short_frame_makes_a_packet_without_pixels() {
        let mut f = flat(8, 8, (16, 128, 128));
        f.data.truncate(10);
        let p = packet(VideoFormat::Rgba, KIND_CAMERA, "p", &f);
        let (format, _, w, h, _, pixels) = header(&p);
        assert_eq!((format, w, h, pixels.len()), (2, 8, 8, 0));
    }
}
