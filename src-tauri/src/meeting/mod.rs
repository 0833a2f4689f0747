//! The meeting room's back end, as Tauri glue: at most one live [`Call`], driven by the UI's
//! commands. What the call reports goes through the engine's room model ([`Room`]); this
//! module turns it into a snapshot for the UI ([`RoomEvent`], sent whole on every change),
//! chat ([`ChatEvent`]), audio levels, reactions and notices. Video frames go to the webview
//! as binary packets ([`video`]).
//!
//! One lock guards the meeting's state and is never held across an await; video frames have
//! their own ([`video::Frames`]).

mod plain;
mod preview;
mod pump;
mod sources;
pub mod video;

use std::sync::Arc;

use parley_engine::call::{AudioSource, Call, CallConfig, CallError, Device, VideoSource};
use parley_engine::media::aec::Denoiser;
use parley_engine::room::{HostAction, Person, Room, Status};
use parley_engine::signaling::{Closed, JoinOptions, TokenError, TokenSource};
use parley_shared::signal::ClientMsg;
use parley_shared::{MeetingCode, PeerId, UserId};
use tauri::{AppHandle, Manager as _};
use tauri_specta::Event as _;
use tokio::sync::mpsc;

pub use self::sources::{camera_source, fake_media, mic_source, SYNTHETIC_CAMERA, TONE_MIC};
pub use self::video::{VideoFormat, VideoPacket};
use crate::types::{
    AppError, ChatEvent, ChatView, HostActionArg, NoticeAction, NoticeEvent, NoticeLevel,
    ParticipantView, PreviewView, ReactionEvent, RoomEvent, RoomStatus, RoomView, WaitingView,
};
use crate::Shell;

/// Self-view frame rate (in a call and in the settings preview).
const PREVIEW_FPS: u32 = 15;

/// What to join, and how.
pub struct JoinRequest {
    pub code: MeetingCode,
    pub title: String,
    pub my_name: String,
    pub my_user: Option<UserId>,
    pub passcode: Option<String>,
    pub camera_on: bool,
    pub mic_on: bool,
}

struct Live {
    call: Arc<Call>,
    /// Which camera the call was started with (for turning it on later).
    camera: Option<VideoSource>,
}

/// What only this app knows about the meeting (the room model holds the rest).
#[derive(Default)]
struct Local {
    code: String,
    title: String,
    hand: bool,
    /// Whether a microphone / camera could be opened at all.
    has_mic: bool,
    has_camera: bool,
    share_name: Option<String>,
    /// Why it ended: a stable code and words for people.
    ended: Option<String>,
    ended_message: Option<String>,
}

#[derive(Default)]
struct State {
    /// Counts calls, so a finished call's late events do not touch the next one's room.
    generation: u64,
    joining: bool,
    live: Option<Live>,
    room: Option<Room>,
    local: Local,
    preview: Option<parley_engine::call::preview::Preview>,
}

/// The meeting state shared by the commands, the event pump and the tray.
#[derive(Default)]
pub struct Meetings {
    state: std::sync::Mutex<State>,
    pub frames: video::Frames,
}

fn participant(p: &Person) -> ParticipantView {
    ParticipantView {
        peer_id: p.peer_id.to_string(),
        user_id: p.user_id.to_string(),
        name: p.name.clone(),
        role: p.role.into(),
        mic: p.media.audio,
        camera: p.media.video,
        screen: p.media.screen,
        hand: p.hand,
        link: p.link.into(),
        send_kbps: p.send_kbps,
        guest: p.guest,
    }
}

fn view(s: &State) -> RoomView {
    let media = s
        .live
        .as_ref()
        .map(|l| l.call.media_state())
        .unwrap_or_default();
    let room = s.room.as_ref();
    RoomView {
        code: s.local.code.clone(),
        title: s.local.title.clone(),
        status: room.map_or(RoomStatus::Idle, |r| r.status.into()),
        ended: s.local.ended.clone(),
        ended_message: s.local.ended_message.clone(),
        me: room.and_then(|r| r.me.as_ref().map(|p| p.to_string())),
        my_name: room.map(|r| r.my_name.clone()).unwrap_or_default(),
        my_role: room
            .map_or(parley_shared::api::Role::Participant, |r| r.my_role)
            .into(),
        mic: media.audio,
        camera: media.video,
        screen: media.screen,
        hand: s.local.hand,
        has_mic: s.local.has_mic,
        has_camera: s.local.has_camera || media.video,
        locked: room.is_some_and(|r| r.locked),
        participants: room
            .map(|r| r.people.iter().map(participant).collect())
            .unwrap_or_default(),
        waiting: room
            .map(|r| {
                r.waiting
                    .iter()
                    .map(|w| WaitingView {
                        peer_id: w.peer_id.to_string(),
                        name: w.name.clone(),
                        guest: w.guest,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        share_name: if media.screen {
            s.local.share_name.clone()
        } else {
            None
        },
    }
}

/// The signed-in account's tokens, for the call's signaling.
struct Tokens(AppHandle);

impl TokenSource for Tokens {
    async fn token(&self, refresh: bool) -> Result<String, TokenError> {
        self.0.state::<Shell>().account.token(refresh).await
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

fn ended_message(c: &Closed) -> (String, String) {
    match c {
        Closed::Left => ("left".into(), "You left the meeting.".into()),
        Closed::MeetingEnded => ("meeting_ended".into(), "The meeting has ended.".into()),
        Closed::Removed => (
            "removed".into(),
            "A host removed you from the meeting.".into(),
        ),
        Closed::Denied => ("denied".into(), "The host did not let you in.".into()),
        Closed::Refused { code, message } => (code.as_str().to_string(), message.clone()),
        Closed::Lost(why) => (
            "connection_lost".into(),
            format!("The connection to the meeting was lost ({why})."),
        ),
    }
}

fn not_in_meeting() -> AppError {
    AppError::new("not_in_meeting", "You are not in a meeting.")
}

impl Meetings {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn room(&self) -> RoomView {
        view(&self.lock())
    }

    pub fn chat(&self) -> Vec<ChatView> {
        self.lock()
            .room
            .as_ref()
            .map(|r| r.chat.iter().cloned().map(ChatView::from).collect())
            .unwrap_or_default()
    }

    /// True while in a call (or joining or waiting).
    pub fn in_call(&self) -> bool {
        let s = self.lock();
        s.joining || s.room.as_ref().is_some_and(|r| r.status.is_live())
    }

    fn call(&self) -> Result<Arc<Call>, AppError> {
        self.lock()
            .live
            .as_ref()
            .map(|l| l.call.clone())
            .ok_or_else(not_in_meeting)
    }

    /// Changes the state (if `generation` is still the current call's; None when not) and
    /// tells the UI.
    fn update<T>(
        &self,
        app: &AppHandle,
        generation: u64,
        change: impl FnOnce(&mut State) -> T,
    ) -> Option<T> {
        let (out, view) = {
            let mut s = self.lock();
            if s.generation != generation {
                return None;
            }
            let out = change(&mut s);
            (out, view(&s))
        };
        let _ = RoomEvent(view).emit(app);
        crate::tray::refresh(app);
        Some(out)
    }

    /// Tells the UI the room changed (the call's own state, e.g. the microphone switch).
    fn changed(&self, app: &AppHandle) -> RoomView {
        let g = self.lock().generation;
        self.update(app, g, |_| ());
        self.room()
    }

    fn notice(app: &AppHandle, level: NoticeLevel, text: impl Into<String>) {
        let _ = NoticeEvent {
            level,
            text: text.into(),
            action: None,
        }
        .emit(app);
    }

    /// A device problem, said plainly, with the way to the device settings.
    fn device_notice(app: &AppHandle, text: String) {
        let _ = NoticeEvent {
            level: NoticeLevel::Warning,
            text,
            action: Some(NoticeAction::DeviceSettings),
        }
        .emit(app);
    }

    /// Joins a meeting: opens the devices (a missing one is left out and reported, never a
    /// reason not to join), connects, and starts reporting to the UI.
    pub async fn join(&self, app: &AppHandle, req: JoinRequest) -> Result<RoomView, AppError> {
        {
            let mut s = self.lock();
            if s.joining || s.room.as_ref().is_some_and(|r| r.status.is_live()) {
                if s.local.code == req.code.as_str() {
                    return Ok(view(&s));
                }
                return Err(AppError::new(
                    "already_in_meeting",
                    "Leave the meeting you are in first.",
                ));
            }
            s.joining = true;
            // The settings preview holds the camera and microphone: let go of them first.
            s.preview = None;
        }
        let started = self.start_call(app, &req).await;
        let (generation, call, events) = {
            let mut s = self.lock();
            s.joining = false;
            let (mut call, camera, mic, missing) = started?;
            if let Some(text) = plain::joined_without(&missing) {
                Self::device_notice(app, text);
            }
            let events = std::mem::replace(&mut call.events, mpsc::channel(1).1);
            s.generation += 1;
            let mut room = Room::new(&req.my_name);
            room.my_user = req.my_user.clone();
            s.room = Some(room);
            s.local = Local {
                code: req.code.to_string(),
                title: req.title.clone(),
                has_mic: mic,
                has_camera: camera.is_some(),
                ..Local::default()
            };
            let call = Arc::new(call);
            s.live = Some(Live {
                call: call.clone(),
                camera,
            });
            (s.generation, call, events)
        };
        app.state::<Shell>()
            .settings
            .add_recent(req.code.as_str(), &req.title);
        if !req.camera_on {
            call.set_camera(false).await;
        }
        if !req.mic_on {
            call.set_mic(false).await;
        }
        self.update(app, generation, |_| ());
        tokio::spawn(pump::pump(app.clone(), generation, events));
        Ok(self.room())
    }

    /// Starts the call, leaving out each device that will not open. Returns the call, its
    /// camera, whether it has a microphone, and what was left out.
    async fn start_call(
        &self,
        app: &AppHandle,
        req: &JoinRequest,
    ) -> Result<(Call, Option<VideoSource>, bool, Vec<Device>), AppError> {
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
        loop {
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
                code: req.code.clone(),
                display_name: req.my_name.clone(),
                passcode: req.passcode.clone(),
            };
            match Call::start(ws_url.clone(), Tokens(app.clone()), join, config).await {
                Ok(call) => return Ok((call, camera, mic.is_some(), missing)),
                Err(e) => {
                    let failed = failed_device(&e);
                    let dropped = match failed {
                        Some(Device::Camera) => camera.take().is_some(),
                        Some(Device::Speaker) => speaker.take().is_some(),
                        Some(_) => mic.take().is_some(),
                        None => false,
                    };
                    let Some(device) = failed.filter(|_| dropped) else {
                        return Err(AppError::new("media_device", e.to_string()));
                    };
                    tracing::info!(error = %e, "joining without a device");
                    missing.push(device);
                }
            }
        }
    }

    /// Leaves the meeting (the others see us go at once).
    pub async fn leave(&self) {
        let live = {
            let mut s = self.lock();
            let live = s.live.take();
            if live.is_some() {
                s.local.ended.get_or_insert_with(|| "left".into());
            }
            live
        };
        if let Some(l) = live {
            l.call.leave().await;
        }
    }

    pub async fn set_mic(&self, app: &AppHandle, on: bool) -> Result<RoomView, AppError> {
        self.call()?.set_mic(on).await;
        Ok(self.changed(app))
    }

    pub async fn set_camera(&self, app: &AppHandle, on: bool) -> Result<RoomView, AppError> {
        let call = self.call()?;
        call.set_camera(on).await;
        if on && !call.media_state().video {
            // Joined without a camera (or it was lost): try to open one now.
            let stored = app.state::<Shell>().settings.get();
            let source = self
                .lock()
                .live
                .as_ref()
                .and_then(|l| l.camera.clone())
                .unwrap_or_else(|| camera_source(stored.camera.as_deref()));
            call.select_camera(source)
                .await
                .map_err(|e| AppError::new("media_device", e.to_string()))?;
        }
        Ok(self.changed(app))
    }

    pub async fn set_hand(&self, app: &AppHandle, raised: bool) -> Result<(), AppError> {
        self.call()?.send(ClientMsg::Hand { raised }).await;
        let g = self.lock().generation;
        self.update(app, g, |s| s.local.hand = raised);
        Ok(())
    }

    pub async fn react(&self, app: &AppHandle, emoji: String) -> Result<(), AppError> {
        let msg = ClientMsg::Reaction {
            emoji: emoji.clone(),
        };
        self.call()?.send(msg).await;
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
        let call = self.call()?;
        let id = call.chat(text.clone()).await;
        let (sender_id, sender) = {
            let mut s = self.lock();
            let room = s.room.as_mut().ok_or_else(not_in_meeting)?;
            room.chat_sent(&id, &text);
            let user = room.my_user.as_ref().map(|u| u.to_string());
            (user.unwrap_or_default(), room.my_name.clone())
        };
        let _ = ChatEvent {
            message: ChatView {
                id: id.clone(),
                seq: 0.0,
                sender_id,
                sender,
                guest: false,
                text,
                at_ms: parley_engine::clock::unix_ms() as f64,
            },
            mine: true,
            pending: true,
            client_msg_id: Some(id),
            read: true,
        }
        .emit(app);
        Ok(())
    }

    /// Whether chat message `seq` of the current meeting was read before on this computer.
    fn chat_read(&self, app: &AppHandle, seq: f64) -> bool {
        let code = self.lock().local.code.clone();
        (seq as i64) <= app.state::<Shell>().settings.get().chat_read(&code)
    }

    /// The current meeting's chat is read up to `seq` (kept across restarts).
    pub fn mark_chat_read(&self, app: &AppHandle, seq: f64) {
        let code = self.lock().local.code.clone();
        if !code.is_empty() {
            app.state::<Shell>()
                .settings
                .update(|s| s.mark_chat_read(&code, seq as i64));
        }
    }

    /// A host action; those on one participant need `peer`.
    pub async fn host(&self, action: HostActionArg, peer: Option<String>) -> Result<(), AppError> {
        let call = self.call()?;
        let on = |a: HostAction| {
            peer.clone()
                .map(|p| a.message(PeerId(p)))
                .ok_or_else(|| AppError::new("invalid", "Which participant?"))
        };
        let msg = match action {
            HostActionArg::Admit => on(HostAction::Admit)?,
            HostActionArg::Deny => on(HostAction::Deny)?,
            HostActionArg::Mute => on(HostAction::Mute)?,
            HostActionArg::Remove => on(HostAction::Remove)?,
            HostActionArg::Promote => on(HostAction::Promote)?,
            HostActionArg::Lock => ClientMsg::Lock,
            HostActionArg::Unlock => ClientMsg::Unlock,
            HostActionArg::CloseGuestEntry => ClientMsg::CloseGuestEntry,
            HostActionArg::End => ClientMsg::End,
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
            .map_err(|e: parley_engine::media::capture::BadTarget| {
                AppError::new("invalid", e.to_string())
            })?;
        self.call()?
            .start_screen(target)
            .await
            .map_err(|e| AppError::new("media_device", e.to_string()))?;
        let g = self.lock().generation;
        self.update(app, g, |s| s.local.share_name = Some(name));
        Ok(self.room())
    }

    pub async fn stop_share(&self, app: &AppHandle) -> Result<RoomView, AppError> {
        self.call()?.stop_screen().await;
        let g = self.lock().generation;
        self.update(app, g, |s| s.local.share_name = None);
        Ok(self.room())
    }

    /// Applies a device choice to the call in progress, if any.
    pub async fn apply_device(
        &self,
        kind: crate::types::DeviceKind,
        id: Option<&str>,
    ) -> Result<(), AppError> {
        use crate::types::DeviceKind;
        let Ok(call) = self.call() else {
            return Ok(());
        };
        let err = |e: CallError| AppError::new("media_device", e.to_string());
        match kind {
            DeviceKind::Camera => {
                let source = camera_source(id);
                if let Some(l) = self.lock().live.as_mut() {
                    l.camera = Some(source.clone());
                }
                call.select_camera(source).await.map_err(err)
            }
            DeviceKind::Mic => match mic_source(id) {
                AudioSource::Device(name) => call.select_mic(name.as_deref()).map_err(err),
                AudioSource::Tone(_) => Ok(()), // takes effect at the next join
            },
            DeviceKind::Speaker => call.select_speaker(id).map_err(err),
            DeviceKind::Noise => Ok(()), // takes effect at the next join
        }
    }

    /// Starts (again, with the current choices) or stops the device preview. In a call the
    /// call's own self view and meter serve instead, so this does nothing there.
    pub async fn preview(&self, app: &AppHandle, on: bool, camera: bool) -> PreviewView {
        self.lock().preview = None; // stops the old one
        if !on || self.in_call() {
            return PreviewView::default();
        }
        let (running, view) = preview::start(app, camera).await;
        let mut s = self.lock();
        if !s.joining && s.live.is_none() {
            s.preview = Some(running);
        }
        view
    }
}

/// Status of the current meeting's room, for the pump.
fn status(s: &State) -> Option<Status> {
    s.room.as_ref().map(|r| r.status)
}
