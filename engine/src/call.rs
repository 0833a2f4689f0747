//! A call: the signaling [`Session`] plus one WebRTC [`Link`] per remote peer (a mesh; the
//! newcomer offers), local media senders, and decoders for what arrives. Everything the
//! application shows comes out as [`CallEvent`]s; commands go in through [`Call`]. A failing
//! peer never takes the call down: its link is closed and the others go on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parley_shared::signal::{ClientMsg, IceServer, MediaState, ServerMsg};
use parley_shared::PeerId;
use tokio::sync::mpsc;

use crate::media::adapt::{CpuAdapter, CpuThresholds, Scaler};
use crate::media::aec::{Denoiser, VoiceProcessor};
use crate::media::audio::{OpusDecoder, OpusEncoder, Tone, FRAME_SAMPLES};
use crate::media::capture::{CameraCapture, ScreenCapture, ScreenTarget, VideoCapture};
use crate::media::devices::{DeviceError, Mic, Mixer, Speaker};
use crate::media::frame::I420Frame;
use crate::media::jitter::{JitterBuffer, Playout};
use crate::media::level::{level_dbfs, ActiveSpeaker};
use crate::media::rate::{CongestionDetector, RateSet};
use crate::media::reorder::{Ordered, Reorder};
use crate::media::synthetic::SyntheticVideo;
use crate::media::vp8::{EncoderConfig, Vp8Decoder, Vp8Encoder};
use crate::rtc::{self, LinkEvent, LinkState, LocalTracks, MediaKind, RtcOptions, TrackRemote};
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
#[derive(Clone, Debug)]
pub enum CallEvent {
    /// From the meeting (participants, chat, controls…).
    Signal(Event),
    /// The media connection to a peer changed state (`connected`, `failed`…): ICE and DTLS.
    Link { peer: PeerId, state: String },
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

/// Control of one outgoing video track, shared by its capture thread, the call and the actor.
struct VideoCtl {
    kind: MediaKind,
    /// Sending (off: the thread idles, the track stays negotiated).
    on: AtomicBool,
    /// Ends the capture thread.
    stop: AtomicBool,
    keyframe: AtomicBool,
    /// Until when (ms on the [`epoch_ms`] clock) keyframe requests are answered quickly: a
    /// peer that just connected has nothing to decode until its first keyframe arrives.
    fast_keyframes_until: AtomicU64,
    bitrate: AtomicU32,
}

/// Milliseconds since the first call (a process-local monotonic clock for atomics).
fn epoch_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// Keyframes on request at most this often, and this often while a peer has just connected.
const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(1000);
const NEW_PEER_KEYFRAME_INTERVAL: Duration = Duration::from_millis(150);
/// How long after a connection its keyframe requests count as a new peer's.
const NEW_PEER_WINDOW_MS: u64 = 2000;

/// The outgoing video tracks now running, shared by [`Call`] and the actor.
#[derive(Default)]
struct Senders {
    camera: Option<Arc<VideoCtl>>,
    screen: Option<Arc<VideoCtl>>,
}

type Shared<T> = Arc<std::sync::Mutex<T>>;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the video threads count, for the stats.
#[derive(Default)]
struct SendStats {
    bytes: AtomicU64,
}

/// A running call. Dropping it leaves the meeting.
pub struct Call {
    devices: std::sync::Mutex<Devices>,
    commands: mpsc::Sender<ClientMsg>,
    pub events: mpsc::Receiver<CallEvent>,
    out: mpsc::Sender<CallEvent>,
    config: CallConfig,
    tracks: LocalTracks,
    senders: Shared<Senders>,
    stats: Arc<SendStats>,
    voice: Option<VoiceProcessor>,
    mixer: Option<Mixer>,
    mic_on: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Our peer id in the meeting, once welcomed.
    me: Shared<Option<PeerId>>,
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
        let tracks = LocalTracks::new(&ulid::Ulid::new().to_string());
        let stats = Arc::new(SendStats::default());
        let senders: Shared<Senders> = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mic_on = Arc::new(AtomicBool::new(true));
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
            devices: Default::default(),
            commands: mpsc::channel(1).0,
            events,
            out: out.clone(),
            config: config.clone(),
            tracks: tracks.clone(),
            senders: senders.clone(),
            stats: stats.clone(),
            voice,
            mixer: mixer.clone(),
            mic_on,
            stop,
            me: Default::default(),
        };
        // Devices first: a missing camera or microphone is an error before anyone is called.
        if let Some(source) = &config.camera {
            call.start_camera(source.clone()).await?;
        }
        match &config.mic {
            Some(AudioSource::Tone(hz)) => {
                tokio::spawn(send_tone(
                    tracks.clone(),
                    *hz,
                    call.mic_on.clone(),
                    call.stop.clone(),
                ));
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
        let (link_tx, link_rx) = mpsc::channel::<(PeerId, LinkEvent)>(256);
        let actor = Actor {
            link_tx,
            speakers: Default::default(),
            mic_on: call.mic_on.clone(),
            has_mic: config.mic.is_some(),
            me: call.me.clone(),
            api,
            tracks,
            session,
            out,
            links: HashMap::new(),
            ice_servers: Vec::new(),
            senders,
            decode: config.decode || mixer.is_some(),
            rtc: config.rtc.clone(),
            mixer,
            rates: RateSet::new(config.video_kbps, 50, config.video_kbps),
            video_kbps: config.video_kbps,
            screen_kbps: config.screen_kbps,
            split: (config.video_kbps, 0),
        };
        tokio::spawn(actor.run(cmd_rx, link_rx));
        Ok(call)
    }

    /// Our peer id in the meeting (None until welcomed).
    pub fn peer_id(&self) -> Option<PeerId> {
        lock(&self.me).clone()
    }

    /// Sends a chat message (delivered once, even across reconnects). Returns its
    /// `client_msg_id`, which the server's `chat_ack` names.
    pub async fn chat(&self, text: String) -> String {
        let client_msg_id = ulid::Ulid::new().to_string();
        let _ = self
            .commands
            .send(ClientMsg::Chat {
                client_msg_id: client_msg_id.clone(),
                text,
            })
            .await;
        client_msg_id
    }

    /// Sends a protocol message (hand, host controls…).
    pub async fn send(&self, msg: ClientMsg) {
        let _ = self.commands.send(msg).await;
    }

    /// The camera encoder's current target (kbit/s), as the congestion controller set it.
    pub fn video_bitrate_kbps(&self) -> u32 {
        lock(&self.senders)
            .camera
            .as_ref()
            .map(|c| c.bitrate.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Encoded video bytes sent so far (what the encoders produced, before RTP overhead).
    pub fn video_bytes_sent(&self) -> u64 {
        self.stats.bytes.load(Ordering::Relaxed)
    }

    /// What this participant sends, as the others are told.
    pub fn media_state(&self) -> MediaState {
        media_state(&self.senders, self.config.mic.is_some(), &self.mic_on)
    }

    async fn announce(&self) {
        let state = self.media_state();
        let _ = self.commands.send(ClientMsg::MediaState(state)).await;
    }

    /// Turns the camera off or on; no renegotiation (the camera line stays, silent).
    pub async fn set_camera(&self, on: bool) {
        if let Some(c) = &lock(&self.senders).camera {
            c.on.store(on, Ordering::SeqCst);
        }
        self.announce().await;
    }

    /// Mutes or unmutes the microphone (muted: nothing is sent).
    pub async fn set_mic(&self, on: bool) {
        self.mic_on.store(on, Ordering::SeqCst);
        self.announce().await;
    }

    /// Switches the camera (the synthetic source or a device by id or name) while in the
    /// call; the new one starts with a keyframe, nobody renegotiates.
    pub async fn select_camera(&self, source: VideoSource) -> Result<(), CallError> {
        let was_on = lock(&self.senders)
            .camera
            .as_ref()
            .is_none_or(|c| c.on.load(Ordering::SeqCst));
        self.start_camera(source).await?;
        if let Some(c) = &lock(&self.senders).camera {
            c.on.store(was_on, Ordering::SeqCst);
        }
        self.announce().await;
        Ok(())
    }

    async fn start_camera(&self, source: VideoSource) -> Result<(), CallError> {
        let c = &self.config;
        let (w, h, fps) = (c.width, c.height, c.fps);
        let make: SourceFactory = match source {
            VideoSource::Synthetic => {
                Box::new(move || Ok(Box::new(SyntheticVideo::new(w, h)) as Box<dyn VideoCapture>))
            }
            VideoSource::Camera(name) => Box::new(move || {
                Ok(Box::new(CameraCapture::open(name.as_deref(), w, h, fps)?)
                    as Box<dyn VideoCapture>)
            }),
        };
        let bitrate = self.video_bitrate_kbps();
        let bitrate = if bitrate == 0 { c.video_kbps } else { bitrate };
        let ctl = self
            .start_video(MediaKind::Camera, make, fps, bitrate)
            .await?;
        if let Some(old) = lock(&self.senders).camera.replace(ctl) {
            old.stop.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Starts sharing a monitor or window (replacing any share running); the screen line was
    /// negotiated with the call, so this only starts sending on it.
    pub async fn start_screen(&self, target: ScreenTarget) -> Result<(), CallError> {
        let max_width = self.config.screen_max_width;
        let make: SourceFactory = Box::new(move || {
            Ok(Box::new(ScreenCapture::open(&target, max_width)?) as Box<dyn VideoCapture>)
        });
        let ctl = self
            .start_video(
                MediaKind::Screen,
                make,
                self.config.screen_fps,
                self.config.screen_kbps,
            )
            .await?;
        if let Some(old) = lock(&self.senders).screen.replace(ctl) {
            old.stop.store(true, Ordering::SeqCst);
        }
        self.announce().await;
        Ok(())
    }

    /// Stops sharing.
    pub async fn stop_screen(&self) {
        if let Some(old) = lock(&self.senders).screen.take() {
            old.stop.store(true, Ordering::SeqCst);
        }
        self.announce().await;
    }

    /// Starts a capture and encode thread for `kind`; returns once the source is open (or
    /// says why it could not be).
    async fn start_video(
        &self,
        kind: MediaKind,
        make: SourceFactory,
        fps: u32,
        kbps: u32,
    ) -> Result<Arc<VideoCtl>, DeviceError> {
        let ctl = Arc::new(VideoCtl {
            kind,
            on: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            keyframe: AtomicBool::new(true),
            fast_keyframes_until: AtomicU64::new(0),
            bitrate: AtomicU32::new(kbps),
        });
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let job = VideoJob {
            ctl: ctl.clone(),
            fps,
            preview_fps: match kind {
                MediaKind::Camera => self.config.preview_fps,
                _ => 0,
            },
            // Screens keep their size (text must stay legible); their frame rate is low.
            cpu_adaptation: match kind {
                MediaKind::Camera => self.config.cpu_adaptation,
                _ => None,
            },
            stats: self.stats.clone(),
            events: self.out.clone(),
            call_stop: self.stop.clone(),
            frames: {
                // Encoded frames go to the peers from an async task: the capture thread only
                // hands them over.
                let (tx, mut rx) = mpsc::channel::<(Vec<u8>, Duration)>(8);
                let tracks = self.tracks.clone();
                tokio::spawn(async move {
                    while let Some((data, duration)) = rx.recv().await {
                        tracks.write(kind, data, duration).await;
                    }
                });
                tx
            },
        };
        let thread_err = |e: std::io::Error| DeviceError::Camera(e.to_string());
        std::thread::Builder::new()
            .name(format!("parley-{}", kind.track_id()))
            .spawn(move || match make() {
                Ok(source) => {
                    let _ = ready_tx.send(Ok(()));
                    job.run(source);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(thread_err)?;
        ready_rx
            .await
            .map_err(|_| DeviceError::Camera("capture thread ended".into()))??;
        Ok(ctl)
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
            self.stop.clone(),
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

    pub async fn leave(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.commands.send(ClientMsg::Leave).await;
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let s = lock(&self.senders);
        for c in [&s.camera, &s.screen].into_iter().flatten() {
            c.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// What is being sent: a microphone that is on, cameras and screens that run.
fn media_state(senders: &Shared<Senders>, has_mic: bool, mic_on: &AtomicBool) -> MediaState {
    let s = lock(senders);
    let on = |c: &Option<Arc<VideoCtl>>| {
        c.as_ref()
            .is_some_and(|c| c.on.load(Ordering::SeqCst) && !c.stop.load(Ordering::SeqCst))
    };
    MediaState {
        audio: has_mic && mic_on.load(Ordering::SeqCst),
        video: on(&s.camera),
        screen: on(&s.screen),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

type SourceFactory = Box<dyn FnOnce() -> Result<Box<dyn VideoCapture>, DeviceError> + Send>;

/// One outgoing video track's capture → I420 → VP8 → RTP loop, on a thread of its own
/// (capture APIs block; encoding would hold up the async runtime).
struct VideoJob {
    ctl: Arc<VideoCtl>,
    fps: u32,
    /// Self-view frames per second handed to the application (0: none).
    preview_fps: u32,
    cpu_adaptation: Option<CpuThresholds>,
    stats: Arc<SendStats>,
    events: mpsc::Sender<CallEvent>,
    call_stop: Arc<AtomicBool>,
    frames: mpsc::Sender<(Vec<u8>, Duration)>,
}

impl VideoJob {
    fn run(self, mut source: Box<dyn VideoCapture>) {
        let ctl = &self.ctl;
        let period = Duration::from_secs(1) / self.fps.max(1);
        let mut enc: Option<Vp8Encoder> = None;
        let mut next = std::time::Instant::now();
        let mut last_key = std::time::Instant::now() - Duration::from_secs(1);
        let mut last_sent: Option<std::time::Instant> = None;
        let preview_period =
            (self.preview_fps > 0).then(|| Duration::from_secs(1) / self.preview_fps);
        let mut last_preview: Option<std::time::Instant> = None;
        let began = std::time::Instant::now();
        let mut adapter: Option<CpuAdapter> = None;
        let mut scaler = Scaler::default();
        let mut source_sizes = false;
        let mut last_busy = None;
        while !ctl.stop.load(Ordering::SeqCst) && !self.call_stop.load(Ordering::SeqCst) {
            let now = std::time::Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            // Late frames are skipped, not bunched up.
            next = (next + period).max(std::time::Instant::now());
            if !ctl.on.load(Ordering::SeqCst) {
                ctl.keyframe.store(true, Ordering::SeqCst); // restart with a keyframe
                continue;
            }
            let captured = std::time::Instant::now();
            let frame = match source.capture(now_ms()) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, kind = ?ctl.kind, "capture stopped");
                    ctl.on.store(false, Ordering::SeqCst);
                    let device = match ctl.kind {
                        MediaKind::Screen => Device::Screen,
                        _ => Device::Camera,
                    };
                    let ev = CallEvent::DeviceLost {
                        device,
                        error: e.to_string(),
                    };
                    let _ = self.events.try_send(ev);
                    return;
                }
            };
            if let Some(p) = preview_period {
                // A little slack so a 30 fps capture with a 30 fps preview skips nothing.
                if last_preview.is_none_or(|t| captured - t + period / 4 >= p) {
                    last_preview = Some(captured);
                    let frame = Arc::new(frame.clone());
                    let _ = self.events.try_send(CallEvent::LocalVideo { frame });
                }
            }
            if let (None, Some(limits)) = (&adapter, self.cpu_adaptation) {
                adapter = Some(CpuAdapter::new((frame.width, frame.height), limits));
            }
            let frame = match &adapter {
                Some(a) if !source_sizes => {
                    let (w, h) = a.size();
                    scaler.scale(frame, w, h)
                }
                _ => frame,
            };
            // (Re)create the encoder for the frame's size: a shared window can be resized.
            let size = (frame.width, frame.height);
            if enc.as_ref().is_none_or(|e| e.size() != size) {
                enc = match Vp8Encoder::new(EncoderConfig {
                    width: size.0,
                    height: size.1,
                    fps: self.fps,
                    bitrate_kbps: ctl.bitrate.load(Ordering::Relaxed),
                }) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        tracing::error!(error = %e, "no video encoder");
                        return;
                    }
                };
            }
            let Some(enc) = enc.as_mut() else { return };
            let want = ctl.bitrate.load(Ordering::Relaxed);
            if want != enc.bitrate_kbps() {
                let _ = enc.set_bitrate_kbps(want);
            }
            // Keyframes on request, but at most one a second: on a lossy or capped link every
            // keyframe is large, and a storm of them would starve the picture. Just after a
            // peer connects, quicker: the keyframe sent at "connected" can reach it before it
            // reads the track, and its first picture then waited for the next allowed one
            // (the join benchmark saw first frames up to a second after DTLS).
            let interval = if epoch_ms() < ctl.fast_keyframes_until.load(Ordering::Relaxed) {
                NEW_PEER_KEYFRAME_INTERVAL
            } else {
                KEYFRAME_MIN_INTERVAL
            };
            let force =
                last_key.elapsed() >= interval && ctl.keyframe.swap(false, Ordering::SeqCst);
            if force {
                last_key = std::time::Instant::now();
                tracing::debug!(kind = ?ctl.kind, "keyframe forced");
            }
            let encoded = enc.encode(&frame, force);
            if let Some(a) = adapter.as_mut() {
                let done = std::time::Instant::now();
                // The frame's cost to this thread: capturing (less any wait for the device),
                // the self view, scaling and encoding.
                let work = (done - captured).saturating_sub(source.waited());
                let change = a.frame(done - began, work);
                if a.busy_pct() != last_busy {
                    last_busy = a.busy_pct();
                    tracing::debug!(busy_pct = ?last_busy, size = ?a.size(), "camera thread busy");
                }
                if let Some(change) = change {
                    tracing::info!(
                        width = change.width,
                        height = change.height,
                        busy_pct = change.busy_pct,
                        "camera picture resized to fit the CPU"
                    );
                    // A source that can make frames of the new size saves the scaling.
                    source_sizes = source.set_size(change.width, change.height);
                    let _ = self.events.try_send(CallEvent::CameraAdapted {
                        width: change.width,
                        height: change.height,
                        busy_pct: change.busy_pct,
                    });
                }
            }
            match encoded {
                Ok(out) => {
                    for e in out {
                        self.stats
                            .bytes
                            .fetch_add(e.data.len() as u64, Ordering::Relaxed);
                        // The RTP clock follows the capture clock (frames skipped under load
                        // leave a longer gap), so receivers can read queuing delay from it.
                        let duration = captured - last_sent.unwrap_or(captured - period);
                        last_sent = Some(captured);
                        if self.frames.blocking_send((e.data, duration)).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "encode failed"),
            }
        }
    }
}

async fn send_tone(tracks: LocalTracks, hz: f32, on: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    let mut tone = Tone::new(hz, 0.3);
    let mut enc = match OpusEncoder::new(32_000) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "no audio encoder");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        let frame = tone.next_frame();
        if !on.load(Ordering::Relaxed) {
            continue;
        }
        if let Ok(packet) = enc.encode(&frame) {
            tracks
                .write(MediaKind::Audio, packet, Duration::from_millis(20))
                .await;
        }
    }
}

async fn send_mic(
    tracks: LocalTracks,
    mut frames: mpsc::Receiver<Vec<f32>>,
    on: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    events: mpsc::Sender<CallEvent>,
) {
    let (mut count, mut sum) = (0u32, 0f32);
    let mut enc = match OpusEncoder::new(32_000) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "no audio encoder");
            return;
        }
    };
    while let Some(frame) = frames.recv().await {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if !on.load(Ordering::Relaxed) {
            continue;
        }
        count += 1;
        sum += level_dbfs(&frame);
        if count == 5 {
            let _ = events.try_send(CallEvent::MicLevel { dbfs: sum / 5.0 });
            (count, sum) = (0, 0.0);
        }
        if let Ok(packet) = enc.encode(&frame) {
            tracks
                .write(MediaKind::Audio, packet, Duration::from_millis(20))
                .await;
        }
    }
}

struct Actor {
    api: Arc<webrtc::api::API>,
    tracks: LocalTracks,
    session: Session,
    out: mpsc::Sender<CallEvent>,
    links: HashMap<PeerId, PeerLink>,
    /// Where every link reports (given to each new link).
    link_tx: mpsc::Sender<(PeerId, LinkEvent)>,
    /// Who is talking, fed by every peer's audio.
    speakers: Shared<ActiveSpeaker>,
    /// The microphone switch (a host's mute turns it off).
    mic_on: Arc<AtomicBool>,
    has_mic: bool,
    me: Shared<Option<PeerId>>,
    ice_servers: Vec<IceServer>,
    senders: Shared<Senders>,
    decode: bool,
    rtc: RtcOptions,
    /// Where received audio is played, when a speaker is on.
    mixer: Option<Mixer>,
    /// Per-peer send-rate estimates for all our video; the shared encoders follow the lowest.
    rates: RateSet<PeerId>,
    video_kbps: u32,
    screen_kbps: u32,
    /// The last split of the estimate: (camera, screen) kbit/s.
    split: (u32, u32),
}

/// One remote peer's connection and how it is being kept alive.
struct PeerLink {
    link: Arc<rtc::Link>,
    /// We sent the first offer (we joined after them), so we drive recovery.
    offerer: bool,
    /// ICE restarts tried since the link last connected.
    restarts: u32,
    /// Fresh connections made since the link last connected.
    rebuilds: u32,
    /// When the last recovery step was taken (None: connected, or never failed).
    attempt_at: Option<std::time::Instant>,
    /// When the next one is due (after a failed step, with backoff).
    next_attempt: Option<std::time::Instant>,
}

/// After a failure: one ICE restart, then new peer connections (a "rejoin" of the media), as
/// long as the peer is in the meeting, waiting longer after each failed one up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(16);
/// How much longer than the failure timeout a recovery step gets to connect.
const RECOVERY_SLACK: Duration = Duration::from_secs(5);

impl Actor {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<ClientMsg>,
        mut link_rx: mpsc::Receiver<(PeerId, LinkEvent)>,
    ) {
        let mut rate_tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = rate_tick.tick() => {
                    self.rates.tick(std::time::Instant::now());
                    self.apply_rates();
                    for peer in self.links.keys() {
                        if let Some(send_kbps) = self.rates.peer_kbps(peer) {
                            let _ = self.out.try_send(CallEvent::Quality {
                                peer: peer.clone(),
                                send_kbps,
                            });
                        }
                    }
                    self.watch_recoveries().await;
                }
                ev = self.session.events.recv() => {
                    let Some(ev) = ev else { break };
                    let closed = matches!(ev, Event::Closed(_));
                    if let Event::Server(msg) = &ev {
                        self.on_signal(msg).await;
                    }
                    let _ = self.out.send(CallEvent::Signal(ev)).await;
                    if closed {
                        break;
                    }
                }
                Some((peer, ev)) = link_rx.recv() => self.on_link(peer, ev).await,
                cmd = commands.recv() => match cmd {
                    Some(ClientMsg::Leave) | None => self.session.leave().await,
                    Some(ClientMsg::Chat { client_msg_id, text }) => {
                        self.session.chat_as(client_msg_id, text).await;
                    }
                    Some(msg) => self.session.send(msg).await,
                },
            }
        }
        for (_, l) in self.links.drain() {
            l.link.close().await;
        }
    }

    /// Makes a new peer connection to `peer`, replacing (and closing) any old one.
    async fn new_link(&mut self, peer: &PeerId, offerer: bool) -> Option<Arc<rtc::Link>> {
        let (restarts, rebuilds, attempt_at) = match self.links.remove(peer) {
            Some(old) => {
                old.link.close().await;
                (old.restarts, old.rebuilds, old.attempt_at)
            }
            None => (0, 0, None),
        };
        match rtc::Link::new(
            &self.api,
            &self.rtc,
            &self.ice_servers,
            &self.tracks,
            peer.clone(),
            self.link_tx.clone(),
        )
        .await
        {
            Ok(l) => {
                let link = Arc::new(l);
                self.links.insert(
                    peer.clone(),
                    PeerLink {
                        link: link.clone(),
                        offerer,
                        restarts,
                        rebuilds,
                        attempt_at,
                        next_attempt: None,
                    },
                );
                Some(link)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a peer connection");
                None
            }
        }
    }

    /// Sends `peer` an offer on `link` (an ICE restart when `restart`).
    async fn send_offer(&mut self, peer: &PeerId, link: &rtc::Link, restart: bool) {
        match link.offer(restart).await {
            Ok(sdp) => {
                self.session
                    .send(ClientMsg::Offer {
                        to: peer.clone(),
                        sdp,
                    })
                    .await
            }
            Err(e) => tracing::warn!(error = %e, "offer failed"),
        }
    }

    async fn on_signal(&mut self, msg: &ServerMsg) {
        match msg {
            ServerMsg::Welcome {
                peer_id,
                participants,
                ice_servers,
                ..
            } => {
                *lock(&self.me) = Some(peer_id.clone());
                self.ice_servers = ice_servers.clone();
                // Everyone learns what we send as we arrive (and again after a reconnect).
                let state = media_state(&self.senders, self.has_mic, &self.mic_on);
                self.session.send(ClientMsg::MediaState(state)).await;
                // The newcomer offers to everyone already there.
                for p in participants {
                    if self.links.contains_key(&p.peer_id) {
                        continue;
                    }
                    if let Some(link) = self.new_link(&p.peer_id, true).await {
                        self.send_offer(&p.peer_id, &link, false).await;
                    }
                }
            }
            ServerMsg::Offer { from, sdp } => {
                // An offer on a live link is an ICE restart; one from a new peer connection
                // (another DTLS fingerprint) replaces ours.
                let link = match self.links.get(from) {
                    Some(l) if l.link.same_session(sdp).await => Some(l.link.clone()),
                    _ => self.new_link(from, false).await,
                };
                if let Some(link) = link {
                    match link.answer(sdp.clone()).await {
                        Ok(sdp) => {
                            self.session
                                .send(ClientMsg::Answer {
                                    to: from.clone(),
                                    sdp,
                                })
                                .await
                        }
                        Err(e) => tracing::warn!(error = %e, "answer failed"),
                    }
                }
            }
            ServerMsg::Answer { from, sdp } => {
                if let Some(l) = self.links.get(from) {
                    if let Err(e) = l.link.accept_answer(sdp.clone()).await {
                        tracing::warn!(error = %e, "answer refused");
                    }
                }
            }
            ServerMsg::Ice { from, candidate } => {
                if let Some(l) = self.links.get(from) {
                    l.link.add_ice(candidate.clone()).await;
                }
            }
            ServerMsg::MutedByHost => {
                // The host muted us: stop sending (the user may unmute themselves).
                self.mic_on.store(false, Ordering::SeqCst);
            }
            ServerMsg::PeerLeft { peer_id } => {
                if let Some(l) = self.links.remove(peer_id) {
                    l.link.close().await;
                }
                self.rates.remove(peer_id);
                self.apply_rates();
                if let Some(m) = &self.mixer {
                    m.remove(&peer_id.0);
                }
            }
            _ => {}
        }
    }

    /// Splits the estimate between camera and screen: a share gets two thirds (text needs
    /// the bits more than a face), the camera the rest; each within its own ceiling.
    fn apply_rates(&mut self) {
        let senders = self.senders.clone();
        let s = lock(&senders);
        let sharing = s
            .screen
            .as_ref()
            .is_some_and(|c| !c.stop.load(Ordering::Relaxed));
        self.rates
            .set_max(self.video_kbps + if sharing { self.screen_kbps } else { 0 });
        let total = self.rates.target();
        let camera_on = s
            .camera
            .as_ref()
            .is_some_and(|c| c.on.load(Ordering::Relaxed));
        let (camera, screen) = match (sharing, camera_on) {
            (true, true) => {
                let screen = (total * 2 / 3).min(self.screen_kbps);
                (total.saturating_sub(screen).min(self.video_kbps), screen)
            }
            (true, false) => (self.video_kbps.min(total), total.min(self.screen_kbps)),
            _ => (total.min(self.video_kbps), self.screen_kbps.min(total)),
        };
        if let Some(c) = &s.camera {
            c.bitrate.store(camera.max(30), Ordering::Relaxed);
        }
        if let Some(c) = &s.screen {
            c.bitrate.store(screen.max(30), Ordering::Relaxed);
        }
        self.split = (
            if camera_on { camera } else { 0 },
            if sharing { screen } else { 0 },
        );
    }

    fn request_keyframes(&self, kind: Option<MediaKind>) {
        let s = lock(&self.senders);
        for c in [&s.camera, &s.screen].into_iter().flatten() {
            if kind.is_none_or(|k| k == c.kind) {
                c.keyframe.store(true, Ordering::SeqCst);
            }
        }
    }

    /// A peer connected: for a short while, answer keyframe requests quickly.
    fn new_peer_keyframes(&self) {
        let until = epoch_ms() + NEW_PEER_WINDOW_MS;
        let s = lock(&self.senders);
        for c in [&s.camera, &s.screen].into_iter().flatten() {
            c.fast_keyframes_until.store(until, Ordering::Relaxed);
            c.keyframe.store(true, Ordering::SeqCst);
        }
    }

    /// A link failed: the side that offered restarts ICE at once; when that fails too it
    /// builds new peer connections, with backoff, for as long as the peer is in the meeting.
    /// The other side waits for its offers.
    async fn on_failed(&mut self, peer: &PeerId) {
        let Some(l) = self.links.get_mut(peer) else {
            return;
        };
        if !l.offerer {
            return;
        }
        if l.restarts == 0 {
            self.recover(peer.clone()).await;
        } else {
            let backoff = (Duration::from_secs(1) * 2u32.pow(l.rebuilds.min(4))).min(MAX_BACKOFF);
            l.next_attempt = Some(std::time::Instant::now() + backoff);
        }
        // Until it connects again, this peer's estimate waits.
        self.rates.remove(peer);
    }

    /// Takes the next recovery step for `peer` now.
    async fn recover(&mut self, peer: PeerId) {
        let Some(l) = self.links.get_mut(&peer) else {
            return;
        };
        l.attempt_at = Some(std::time::Instant::now());
        l.next_attempt = None;
        if l.restarts == 0 {
            l.restarts = 1;
            let link = l.link.clone();
            tracing::info!("media connection failed: restarting ICE");
            self.send_offer(&peer, &link, true).await;
        } else {
            l.rebuilds += 1;
            tracing::info!(
                attempt = l.rebuilds,
                "media connection still down: new peer connection"
            );
            if let Some(link) = self.new_link(&peer, true).await {
                self.send_offer(&peer, &link, false).await;
            }
        }
    }

    /// A recovery step that has not connected within the wait (an ICE restart can hang in
    /// "checking" when no candidate can be gathered) is followed by the next one.
    async fn watch_recoveries(&mut self) {
        let wait = self.rtc.ice_failed_after.unwrap_or(Duration::from_secs(10)) + RECOVERY_SLACK;
        let now = std::time::Instant::now();
        let due: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(_, l)| match l.next_attempt {
                Some(t) => t <= now,
                None => l.attempt_at.is_some_and(|t| now.duration_since(t) >= wait),
            })
            .map(|(p, _)| p.clone())
            .collect();
        for peer in due {
            self.recover(peer).await;
        }
    }

    async fn on_link(&mut self, peer: PeerId, ev: LinkEvent) {
        match ev {
            LinkEvent::Ice(candidate) => {
                self.session
                    .send(ClientMsg::Ice {
                        to: peer,
                        candidate,
                    })
                    .await
            }
            LinkEvent::State(state) => {
                if state == LinkState::Connected {
                    // A new receiver needs a keyframe to start decoding.
                    self.new_peer_keyframes();
                    self.rates.connect(peer.clone(), std::time::Instant::now());
                    if let Some(l) = self.links.get_mut(&peer) {
                        (l.restarts, l.rebuilds) = (0, 0);
                        (l.attempt_at, l.next_attempt) = (None, None);
                    }
                }
                if state == LinkState::Failed {
                    self.on_failed(&peer).await;
                }
                let _ = self
                    .out
                    .send(CallEvent::Link {
                        peer,
                        state: state.to_string(),
                    })
                    .await;
            }
            LinkEvent::IceState(state) => {
                let _ = self.out.send(CallEvent::Ice { peer, state }).await;
            }
            LinkEvent::KeyframeRequest(kind) => self.request_keyframes(Some(kind)),
            LinkEvent::Loss(fraction) => {
                self.rates
                    .on_report(&peer, fraction, std::time::Instant::now());
            }
            LinkEvent::Limit(kind, kbps) => {
                // The ceiling is for one track; the estimate is for all our video to the peer.
                let (camera, screen) = self.split;
                let share = match kind {
                    MediaKind::Camera => camera,
                    MediaKind::Screen => screen,
                    MediaKind::Audio => return,
                };
                let total = (camera + screen).max(1);
                let limit =
                    u64::from(kbps) * u64::from(total) / u64::from(share.max(total / 20).max(1));
                self.rates.on_limit(
                    &peer,
                    limit.min(u64::from(u32::MAX)) as u32,
                    std::time::Instant::now(),
                );
                self.apply_rates();
            }
            LinkEvent::Track(_, track) if !self.decode => {
                tokio::spawn(async move { while track.read_rtp().await.is_ok() {} });
            }
            LinkEvent::Track(kind, track) => {
                let link = self.links.get(&peer).map(|l| l.link.clone());
                let out = self.out.clone();
                match kind {
                    MediaKind::Audio => {
                        tokio::spawn(receive_audio(
                            peer,
                            track,
                            out,
                            self.mixer.clone(),
                            self.speakers.clone(),
                        ));
                    }
                    MediaKind::Camera | MediaKind::Screen => {
                        tokio::spawn(receive_video(peer, kind, track, link, out));
                    }
                }
            }
        }
    }
}

/// Plays one peer's audio: packets into a jitter buffer as they arrive, one 20 ms frame out
/// per 20 ms (decoded, FEC-recovered or concealed) to the mixer and the application, with
/// the peer's level every 100 ms and active-speaker changes.
async fn receive_audio(
    peer: PeerId,
    track: Arc<TrackRemote>,
    out: mpsc::Sender<CallEvent>,
    mixer: Option<Mixer>,
    speakers: Shared<ActiveSpeaker>,
) {
    let Ok(mut dec) = OpusDecoder::new() else {
        return;
    };
    let mut jitter = JitterBuffer::new(track.codec().capability.clock_rate.max(1));
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut frames = 0u64;
    let mut level_sum = 0f32;
    loop {
        let playout = tokio::select! {
            read = track.read_rtp() => {
                let Ok((pkt, _)) = read else { break };
                jitter.push(
                    pkt.header.sequence_number,
                    pkt.header.timestamp,
                    pkt.payload.to_vec(),
                    std::time::Instant::now(),
                );
                continue;
            }
            _ = tick.tick() => jitter.pop(std::time::Instant::now()),
        };
        let decoded = match playout {
            Playout::Packet(p) => dec.decode(&p),
            Playout::Fec(next) => dec.recover(Some(&next)),
            Playout::Conceal => dec.recover(None),
            Playout::Silence => Ok(Vec::new()),
        };
        let mut samples = match decoded {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "undecodable audio");
                continue;
            }
        };
        samples.truncate(FRAME_SAMPLES * 6);
        // Levels (silence counts: it is what ends a talk spurt).
        frames += 1;
        level_sum += if samples.is_empty() {
            -100.0
        } else {
            level_dbfs(&samples)
        };
        if frames % 5 == 0 {
            let dbfs = level_sum / 5.0;
            level_sum = 0.0;
            let change = lock(&speakers).update(&peer.0, dbfs, std::time::Instant::now());
            let _ = out.try_send(CallEvent::AudioLevel {
                peer: peer.clone(),
                dbfs,
            });
            if let Some(active) = change {
                let _ = out
                    .send(CallEvent::ActiveSpeaker {
                        peer: active.map(PeerId),
                    })
                    .await;
            }
        }
        if samples.is_empty() {
            continue;
        }
        if let Some(m) = &mixer {
            m.push(&peer.0, &samples);
        }
        if out
            .send(CallEvent::Audio {
                peer: peer.clone(),
                samples,
            })
            .await
            .is_err()
        {
            break;
        }
    }
    lock(&speakers).remove(&peer.0);
}

/// Reassembles VP8 frames from RTP (a frame ends at the marker bit), decodes them, and asks
/// for a keyframe after a loss instead of decoding garbage.
async fn receive_video(
    peer: PeerId,
    kind: MediaKind,
    track: Arc<TrackRemote>,
    link: Option<Arc<rtc::Link>>,
    out: mpsc::Sender<CallEvent>,
) {
    use webrtc::rtp::packetizer::Depacketizer as _;
    let Ok(mut dec) = Vp8Decoder::new() else {
        return;
    };
    let ssrc = track.ssrc();
    let mut buf: Vec<u8> = Vec::new();
    let mut broken = false;
    let mut need_keyframe = true;
    let mut last_pli = tokio::time::Instant::now() - Duration::from_secs(10);
    // Hold out-of-order packets up to 300 ms so NACK retransmissions (the NACK interceptor
    // batches every 100 ms, then a round trip) can fill holes; only a loss costs this wait.
    let mut reorder = Reorder::new(Duration::from_millis(300), 1024);
    let mut congestion = CongestionDetector::default();
    let clock = track.codec().capability.clock_rate;
    while let Ok((pkt, _)) = track.read_rtp().await {
        let seq = pkt.header.sequence_number;
        let size = pkt.payload.len() + 12;
        let now = std::time::Instant::now();
        if let Some(c) = congestion.on_packet(seq, pkt.header.timestamp, clock, size, now) {
            tracing::debug!(?c, "congestion: asking the sender to slow down");
            if let Some(l) = &link {
                l.send_limit(ssrc, c.limit_kbps).await;
            }
        }
        let items = reorder.push(seq, pkt, now);
        let missing = reorder.to_nack(now);
        if let (false, Some(l)) = (missing.is_empty(), &link) {
            l.send_nack(ssrc, &missing).await;
        }
        for item in items {
            let pkt = match item {
                Ordered::Gap => {
                    // A packet is gone for good: its frame is lost, and the frames after it
                    // reference it, so decoding resumes at the next keyframe.
                    broken = true;
                    need_keyframe = true;
                    continue;
                }
                Ordered::Packet(p) => p,
            };
            let mut vp8 = webrtc::rtp::codecs::vp8::Vp8Packet::default();
            let Ok(payload) = vp8.depacketize(&pkt.payload) else {
                broken = true;
                continue;
            };
            if vp8.s == 1 && vp8.pid == 0 {
                // Start of a new frame.
                buf.clear();
                broken = false;
            }
            buf.extend_from_slice(&payload);
            if !pkt.header.marker {
                continue;
            }
            let is_key = buf.first().is_some_and(|b| b & 1 == 0);
            if broken || (need_keyframe && !is_key) {
                need_keyframe = true;
                if last_pli.elapsed() > Duration::from_millis(1000) {
                    if let Some(l) = &link {
                        tracing::debug!(?kind, "asking for a keyframe");
                        l.request_keyframe(ssrc).await;
                    }
                    last_pli = tokio::time::Instant::now();
                }
                buf.clear();
                continue;
            }
            match dec.decode(&buf) {
                Ok(frames) => {
                    need_keyframe = false;
                    for f in frames {
                        let ev = CallEvent::Video {
                            peer: peer.clone(),
                            kind,
                            frame: Arc::new(f),
                        };
                        if out.send(ev).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "undecodable frame");
                    need_keyframe = true;
                }
            }
            buf.clear();
        }
    }
}
