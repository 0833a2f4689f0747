//! A call: the signaling [`Session`] plus one WebRTC link per remote peer (a mesh; the
//! newcomer offers), local media senders, and decoders for what arrives. Everything the
//! application shows comes out as [`CallEvent`]s; commands go in through [`Call`]. A failing
//! peer never takes the call down: its link is closed and the others go on.
//!
//! - [`core`]: the decisions, sans IO (link life and recovery, keyframes, bitrate split,
//!   media state, active speaker), tested on a simulated clock.
//! - [`policy`]: the small pure rules the core and the capture threads apply.
//! - `actor`: the one task doing the I/O around the core.
//! - `send` / `receive`: capture and encode threads, audio senders; receive tasks.
//! - [`preview`]: the chosen devices outside a call (a settings dialog's check).

mod actor;
pub mod core;
pub mod policy;
pub mod preview;
mod receive;
mod send;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parley_shared::signal::{ClientMsg, MediaState};
use parley_shared::PeerId;
use tokio::sync::{mpsc, oneshot, watch};

use self::actor::{Actor, Command};
use self::core::{CallCore, CallState, CoreConfig};
use self::send::{
    send_mic, send_tone, Internal, SendStats, SourceFactory, VideoHandle, VideoSetup,
};
use crate::media::adapt::CpuThresholds;
use crate::media::aec::{Denoiser, VoiceProcessor};
use crate::media::capture::{ScreenCapture, ScreenTarget, VideoCapture};
use crate::media::devices::{DeviceError, Mic, Mixer, Speaker};
use crate::media::frame::I420Frame;
use crate::rtc::{self, LinkState, LocalTracks, MediaKind, RtcOptions};
use crate::signaling::{Event, JoinOptions, Session, TokenSource};

/// Where outgoing video comes from.
#[derive(Clone, Debug)]
pub enum VideoSource {
    /// The moving, stamped test pattern.
    Synthetic,
    /// A camera by id or name (None: the first one).
    Camera(Option<String>),
}

/// Where outgoing audio comes from.
#[derive(Clone, Debug)]
pub enum AudioSource {
    /// A sine tone at this frequency (Hz).
    Tone(f32),
    /// A microphone (None: the system default).
    Device(Option<String>),
}

#[derive(Clone, Debug)]
pub struct CallConfig {
    pub camera: Option<VideoSource>,
    pub mic: Option<AudioSource>,
    /// Play what arrives on this speaker ("default" for the system default).
    pub speaker: Option<String>,
    /// Echo cancellation, noise suppression and gain control on a device microphone.
    pub voice_processing: bool,
    /// Which noise suppressor (with `voice_processing`).
    pub denoiser: Denoiser,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video_kbps: u32,
    /// Screen sharing: frame rate, most bits per second, and widest picture sent (wider
    /// screens are scaled down).
    pub screen_fps: u32,
    pub screen_kbps: u32,
    pub screen_max_width: u32,
    /// Decode what arrives (off: received media is read and dropped, costing no CPU).
    pub decode: bool,
    /// Hand our own camera's frames to the application as [`CallEvent::LocalVideo`] at up to
    /// this rate (a self view); 0: none.
    pub preview_fps: u32,
    /// Step the camera's picture down when this computer cannot keep up with encoding it,
    /// and back up when it can ([`crate::media::adapt`]); None: always the full size.
    pub cpu_adaptation: Option<CpuThresholds>,
    pub rtc: RtcOptions,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            camera: None,
            mic: None,
            speaker: None,
            voice_processing: true,
            denoiser: Denoiser::WebRtc,
            width: 640,
            height: 480,
            fps: 30,
            video_kbps: 800,
            screen_fps: 15,
            screen_kbps: 1500,
            screen_max_width: 1920,
            decode: true,
            preview_fps: 0,
            cpu_adaptation: Some(CpuThresholds::default()),
            rtc: RtcOptions::default(),
        }
    }
}

/// What the application sees.
#[derive(Clone, Debug, PartialEq)]
pub enum CallEvent {
    /// From the meeting (participants, chat, controls…).
    Signal(Event),
    /// The media connection to a peer changed state (`connected`, `failed`…): ICE and DTLS.
    Link { peer: PeerId, state: LinkState },
    /// The ICE part of a media connection changed state (`checking`, `connected`…); with
    /// [`CallEvent::Link`] it splits a connection's setup time into ICE and DTLS.
    Ice { peer: PeerId, state: String },
    /// A decoded video frame from a peer.
    Video {
        peer: PeerId,
        kind: MediaKind,
        frame: Arc<I420Frame>,
    },
    /// Our own camera's picture as captured (the self view; see `CallConfig::preview_fps`).
    LocalVideo { frame: Arc<I420Frame> },
    /// 20 ms of decoded audio from a peer (48 kHz mono), as it is played.
    Audio { peer: PeerId, samples: Vec<f32> },
    /// Once a second per connected peer: how fast our video may go to them (kbit/s, the
    /// congestion controller's estimate) — a connection-quality figure for the UI.
    Quality { peer: PeerId, send_kbps: u32 },
    /// A peer's audio level over the last 100 ms (dBFS; -100 is silence).
    AudioLevel { peer: PeerId, dbfs: f32 },
    /// The active speaker changed (None: nobody is talking).
    ActiveSpeaker { peer: Option<PeerId> },
    /// Our own microphone's level over the last 100 ms, as sent (dBFS), for a level meter.
    MicLevel { dbfs: f32 },
    /// Our camera's picture changed size to fit this computer's CPU: smaller when encoding
    /// took more than the frame time allows (`busy_pct` of it), larger again when there is
    /// room. Remote peers see the new size on their next frame.
    CameraAdapted {
        width: u32,
        height: u32,
        busy_pct: f32,
    },
    /// A local device stopped working (unplugged camera, closed shared window…); what it fed
    /// is off until another is chosen.
    DeviceLost { device: Device, error: String },
}

/// Local devices, as [`CallEvent::DeviceLost`] names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Camera,
    Screen,
    Microphone,
    Speaker,
}

/// The audio devices a call holds open.
#[derive(Default)]
struct Devices {
    mic: Option<Mic>,
    speaker: Option<Speaker>,
}

/// Why a call could not start, or a command could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("webrtc: {0}")]
    Rtc(#[from] rtc::RtcError),
    /// The camera or screen capture.
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("microphone: {0}")]
    Microphone(DeviceError),
    #[error("speaker: {0}")]
    Speaker(DeviceError),
}

/// A running call. Dropping it leaves the meeting.
pub struct Call {
    commands: mpsc::Sender<Command>,
    pub events: mpsc::Receiver<CallEvent>,
    out: mpsc::Sender<CallEvent>,
    internal: mpsc::Sender<Internal>,
    state: watch::Receiver<CallState>,
    /// The microphone switch as the actor sets it (the audio senders follow it).
    mic_on: watch::Receiver<bool>,
    config: CallConfig,
    tracks: LocalTracks,
    stats: Arc<SendStats>,
    /// Video decoders open now, one per remote camera or screen that is sending.
    decoders: Arc<AtomicU64>,
    voice: Option<VoiceProcessor>,
    mixer: Option<Mixer>,
    devices: std::sync::Mutex<Devices>,
    /// Numbers capture threads, so the end of a replaced one is told from the running one's.
    next_video: AtomicU64,
}

impl Call {
    pub async fn start<T: TokenSource>(
        ws_url: String,
        tokens: T,
        join: JoinOptions,
        config: CallConfig,
    ) -> Result<Self, CallError> {
        let api = Arc::new(rtc::build_api(&config.rtc)?);
        let (out, events) = mpsc::channel(1024);
        let (internal, internal_rx) = mpsc::channel(256);
        let (mic_tx, mic_on) = watch::channel(true);
        let (state_tx, state) = watch::channel(CallState::default());
        let uses_mic = matches!(config.mic, Some(AudioSource::Device(_)));
        let voice = if config.voice_processing && uses_mic {
            Some(
                VoiceProcessor::new(config.denoiser)
                    .map_err(|e| CallError::Microphone(DeviceError::Audio(e.to_string())))?,
            )
        } else {
            None
        };
        let mixer = config.speaker.as_ref().map(|_| Mixer::default());
        let mut call = Self {
            commands: mpsc::channel(1).0,
            events,
            out: out.clone(),
            internal: internal.clone(),
            state,
            mic_on,
            config: config.clone(),
            tracks: LocalTracks::new(&ulid::Ulid::new().to_string()),
            stats: Arc::default(),
            decoders: Arc::default(),
            voice,
            mixer: mixer.clone(),
            devices: Default::default(),
            next_video: AtomicU64::new(1),
        };
        // Devices first: a missing camera or microphone is an error before anyone is called.
        let mut initial_video = Vec::new();
        if let Some(source) = &config.camera {
            initial_video.push(call.open_camera(source.clone()).await?);
        }
        match &config.mic {
            Some(AudioSource::Tone(hz)) => {
                tokio::spawn(send_tone(call.tracks.clone(), *hz, call.mic_on.clone()));
            }
            Some(AudioSource::Device(name)) => call.select_mic(name.as_deref())?,
            None => {}
        }
        if let Some(name) = &config.speaker {
            call.select_speaker(Some(name))?;
        }
        let session = Session::start(ws_url, tokens, join);
        let (commands, cmd_rx) = mpsc::channel(64);
        call.commands = commands;
        let actor = Actor {
            core: CallCore::new(CoreConfig {
                camera_kbps: config.video_kbps,
                screen_kbps: config.screen_kbps,
                has_mic: config.mic.is_some(),
                ice_failed_after: config
                    .rtc
                    .ice_failed_after
                    .unwrap_or(Duration::from_secs(10)),
            }),
            api,
            rtc: config.rtc.clone(),
            tracks: call.tracks.clone(),
            session,
            out,
            internal,
            mic: mic_tx,
            state: state_tx,
            decode: config.decode || mixer.is_some(),
            mixer,
            initial_video,
            decoders: call.decoders.clone(),
        };
        tokio::spawn(actor.run(cmd_rx, internal_rx));
        Ok(call)
    }

    /// Our peer id in the meeting (None until welcomed).
    pub fn peer_id(&self) -> Option<PeerId> {
        self.state.borrow().me.clone()
    }

    /// What this participant sends, as the others are told.
    pub fn media_state(&self) -> MediaState {
        self.state.borrow().media
    }

    /// The camera encoder's current target (kbit/s), as the congestion controller set it.
    pub fn video_bitrate_kbps(&self) -> u32 {
        self.state.borrow().camera_kbps
    }

    /// Encoded video bytes sent so far (what the encoders produced, before RTP overhead).
    pub fn video_bytes_sent(&self) -> u64 {
        self.stats.bytes.load(Ordering::Relaxed)
    }

    /// Video decoders open now: one per remote camera or screen sending to us. A line silent
    /// for 3 s (a camera off, a share ended) closes its decoder.
    pub fn video_decoders(&self) -> u64 {
        self.decoders.load(Ordering::Relaxed)
    }

    /// Sends a chat message (delivered once, even across reconnects). Returns its
    /// `client_msg_id`, which the server's `chat_ack` names.
    pub async fn chat(&self, text: String) -> String {
        let client_msg_id = ulid::Ulid::new().to_string();
        let cmd = Command::Chat {
            client_msg_id: client_msg_id.clone(),
            text,
        };
        let _ = self.commands.send(cmd).await;
        client_msg_id
    }

    /// Sends a protocol message (hand, reactions, host controls…).
    pub async fn send(&self, msg: ClientMsg) {
        let _ = self.commands.send(Command::Send(msg)).await;
    }

    /// Sends a command and waits until the call has carried it out.
    async fn ask(&self, cmd: impl FnOnce(oneshot::Sender<()>) -> Command) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(cmd(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Turns the camera off or on; no renegotiation (the camera line stays, silent).
    pub async fn set_camera(&self, on: bool) {
        self.ask(|r| Command::SetCamera(on, r)).await;
    }

    /// Mutes or unmutes the microphone (muted: nothing is sent).
    pub async fn set_mic(&self, on: bool) {
        self.ask(|r| Command::SetMic(on, r)).await;
    }

    /// Switches the camera (the synthetic source or a device by id or name) while in the
    /// call; the new one starts with a keyframe, nobody renegotiates, on or off as before.
    pub async fn select_camera(&self, source: VideoSource) -> Result<(), CallError> {
        let handle = self.open_camera(source).await?;
        self.ask(|r| Command::Video(handle, r)).await;
        Ok(())
    }

    async fn open_camera(&self, source: VideoSource) -> Result<VideoHandle, CallError> {
        let c = &self.config;
        let (w, h, fps) = (c.width, c.height, c.fps);
        let make = send::camera_factory(source, w, h, fps);
        let kbps = match self.video_bitrate_kbps() {
            0 => c.video_kbps,
            k => k,
        };
        let setup = VideoSetup {
            kind: MediaKind::Camera,
            id: self.next_video.fetch_add(1, Ordering::Relaxed),
            fps,
            kbps,
            preview_fps: c.preview_fps,
            cpu_adaptation: c.cpu_adaptation,
        };
        Ok(self.start_video(setup, make).await?)
    }

    /// Starts sharing a monitor or window (replacing any share running); the screen line was
    /// negotiated with the call, so this only starts sending on it.
    pub async fn start_screen(&self, target: ScreenTarget) -> Result<(), CallError> {
        let max_width = self.config.screen_max_width;
        let make: SourceFactory = Box::new(move || {
            Ok(Box::new(ScreenCapture::open(&target, max_width)?) as Box<dyn VideoCapture>)
        });
        let setup = VideoSetup {
            kind: MediaKind::Screen,
            id: self.next_video.fetch_add(1, Ordering::Relaxed),
            fps: self.config.screen_fps,
            kbps: self.config.screen_kbps,
            preview_fps: 0,
            // Screens keep their size (text must stay legible); their frame rate is low.
            cpu_adaptation: None,
        };
        let handle = self.start_video(setup, make).await?;
        self.ask(|r| Command::Video(handle, r)).await;
        Ok(())
    }

    /// Stops sharing.
    pub async fn stop_screen(&self) {
        self.ask(Command::StopScreen).await;
    }

    async fn start_video(
        &self,
        setup: VideoSetup,
        make: SourceFactory,
    ) -> Result<VideoHandle, DeviceError> {
        send::start_video(
            setup,
            make,
            self.tracks.clone(),
            self.stats.clone(),
            self.out.clone(),
            self.internal.clone(),
        )
        .await
    }

    /// Switches the microphone (None or "default": the system default) while in the call.
    pub fn select_mic(&self, name: Option<&str>) -> Result<(), CallError> {
        let out = self.out.clone();
        let (mic, frames) = Mic::start(name, self.voice.clone(), move |error| {
            let _ = out.try_send(CallEvent::DeviceLost {
                device: Device::Microphone,
                error,
            });
        })
        .map_err(CallError::Microphone)?;
        // The old microphone closes when replaced; its sender task ends with its channel.
        lock(&self.devices).mic = Some(mic);
        tokio::spawn(send_mic(
            self.tracks.clone(),
            frames,
            self.mic_on.clone(),
            self.out.clone(),
        ));
        Ok(())
    }

    /// Switches the speaker while in the call (the mix goes on where it left off).
    pub fn select_speaker(&self, name: Option<&str>) -> Result<(), CallError> {
        let Some(mixer) = &self.mixer else {
            return Ok(());
        };
        let mut devices = lock(&self.devices);
        devices.speaker = None; // close the old one first: some devices allow one stream
        let out = self.out.clone();
        devices.speaker = Some(
            Speaker::start(name, mixer.clone(), self.voice.clone(), move |error| {
                let _ = out.try_send(CallEvent::DeviceLost {
                    device: Device::Speaker,
                    error,
                });
            })
            .map_err(CallError::Speaker)?,
        );
        Ok(())
    }

    /// After a device was lost: audio falls back to the system default (Some: what that
    /// did); video waits for the user's choice (None).
    pub fn fall_back(&self, device: Device) -> Option<Result<(), CallError>> {
        match device {
            Device::Microphone => Some(self.select_mic(None)),
            Device::Speaker => Some(self.select_speaker(None)),
            Device::Camera | Device::Screen => None,
        }
    }

    pub async fn leave(&self) {
        let _ = self.commands.send(Command::Leave).await;
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
