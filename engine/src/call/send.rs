//! What we send: one capture → I420 → VP8 thread per video line, told what to do over a
//! channel ([`VideoCommand`]), and the audio senders (a tone, or a microphone's frames).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use parley_shared::PeerId;
use tokio::sync::{mpsc, oneshot, watch};

use super::core::VideoCommand;
use super::policy::KeyframeGate;
use super::{CallEvent, VideoSource};
use crate::media::adapt::{CpuAdapter, CpuThresholds, Scaler};
use crate::media::audio::{OpusEncoder, Tone};
use crate::media::capture::{CameraCapture, VideoCapture};
use crate::media::devices::DeviceError;
use crate::media::level::level_dbfs;
use crate::media::synthetic::SyntheticVideo;
use crate::media::vp8::{EncoderConfig, Vp8Encoder};
use crate::rtc::{LocalTracks, MediaKind};

/// What the senders count, for the application's statistics.
#[derive(Default)]
pub(super) struct SendStats {
    /// Encoded video bytes (what the encoders produced, before RTP overhead).
    pub bytes: AtomicU64,
}

/// What the capture threads and receive tasks tell the actor.
#[derive(Debug)]
pub(super) enum Internal {
    /// Capture thread `id` stopped on an error.
    VideoEnded {
        kind: MediaKind,
        id: u64,
        error: String,
    },
    /// A peer's audio level over the last 100 ms.
    Level {
        peer: PeerId,
        dbfs: f32,
    },
    AudioEnded(PeerId),
}

/// A running capture thread, as the actor holds it.
pub(super) struct VideoHandle {
    pub kind: MediaKind,
    pub id: u64,
    control: std_mpsc::Sender<VideoCommand>,
}

impl VideoHandle {
    pub fn tell(&self, cmd: VideoCommand) {
        let _ = self.control.send(cmd);
    }
}

pub(super) type SourceFactory =
    Box<dyn FnOnce() -> Result<Box<dyn VideoCapture>, DeviceError> + Send>;

/// Opens a camera source (on the thread that will capture from it).
pub(super) fn camera_factory(source: VideoSource, w: u32, h: u32, fps: u32) -> SourceFactory {
    match source {
        VideoSource::Synthetic => {
            Box::new(move || Ok(Box::new(SyntheticVideo::new(w, h)) as Box<dyn VideoCapture>))
        }
        VideoSource::Camera(name) => Box::new(move || {
            Ok(Box::new(CameraCapture::open(name.as_deref(), w, h, fps)?) as Box<dyn VideoCapture>)
        }),
    }
}

/// How a capture thread is set up.
pub(super) struct VideoSetup {
    pub kind: MediaKind,
    pub id: u64,
    pub fps: u32,
    pub kbps: u32,
    /// Self-view frames per second handed to the application (0: none).
    pub preview_fps: u32,
    pub cpu_adaptation: Option<CpuThresholds>,
}

/// Starts a capture and encode thread; returns once the source is open (or says why it
/// could not be). The thread ends when its handle is dropped or told to stop.
pub(super) async fn start_video(
    setup: VideoSetup,
    make: SourceFactory,
    tracks: LocalTracks,
    stats: Arc<SendStats>,
    events: mpsc::Sender<CallEvent>,
    internal: mpsc::Sender<Internal>,
) -> Result<VideoHandle, DeviceError> {
    let (control, commands) = std_mpsc::channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let kind = setup.kind;
    // Encoded frames go to the peers from an async task: the capture thread only hands them
    // over.
    let (frames, mut rx) = mpsc::channel::<(Vec<u8>, Duration)>(8);
    tokio::spawn(async move {
        while let Some((data, duration)) = rx.recv().await {
            tracks.write(kind, data, duration).await;
        }
    });
    let id = setup.id;
    let job = VideoJob {
        setup,
        commands,
        stats,
        events,
        internal,
        frames,
    };
    std::thread::Builder::new()
        .name(format!("parley-{}", kind.track_id()))
        .spawn(move || match make() {
            Ok(source) => {
                let _ = ready_tx.send(Ok(()));
                job.run(source);
                // The source, the encoder and their frames are gone.
                crate::media::release_freed_memory();
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        })
        .map_err(|e| DeviceError::Camera(e.to_string()))?;
    ready_rx
        .await
        .map_err(|_| DeviceError::Camera("capture thread ended".into()))??;
    Ok(VideoHandle { kind, id, control })
}

/// One outgoing video line's capture → I420 → VP8 → RTP loop, on a thread of its own
/// (capture APIs block; encoding would hold up the async runtime).
struct VideoJob {
    setup: VideoSetup,
    commands: std_mpsc::Receiver<VideoCommand>,
    stats: Arc<SendStats>,
    events: mpsc::Sender<CallEvent>,
    internal: mpsc::Sender<Internal>,
    frames: mpsc::Sender<(Vec<u8>, Duration)>,
}

impl VideoJob {
    fn run(self, mut source: Box<dyn VideoCapture>) {
        let VideoSetup {
            kind,
            id,
            fps,
            kbps,
            preview_fps,
            cpu_adaptation,
        } = self.setup;
        let period = Duration::from_secs(1) / fps.max(1);
        let mut on = true;
        let mut want_kbps = kbps;
        let mut keyframes = KeyframeGate::default();
        let mut enc: Option<Vp8Encoder> = None;
        let mut next = Instant::now();
        let mut last_sent: Option<Instant> = None;
        let preview_period = (preview_fps > 0).then(|| Duration::from_secs(1) / preview_fps);
        let mut last_preview: Option<Instant> = None;
        let began = Instant::now();
        let mut adapter: Option<CpuAdapter> = None;
        let mut scaler = Scaler::default();
        let mut source_sizes = false;
        let mut last_busy = None;
        loop {
            let now = Instant::now();
            loop {
                match self.commands.try_recv() {
                    Ok(VideoCommand::On(b)) => on = b,
                    Ok(VideoCommand::Keyframe) => keyframes.request(),
                    Ok(VideoCommand::NewPeer) => keyframes.new_peer(now),
                    Ok(VideoCommand::Bitrate(k)) => want_kbps = k,
                    Ok(VideoCommand::Stop) | Err(std_mpsc::TryRecvError::Disconnected) => return,
                    Err(std_mpsc::TryRecvError::Empty) => break,
                }
            }
            if next > now {
                std::thread::sleep(next - now);
            }
            // Late frames are skipped, not bunched up.
            next = (next + period).max(Instant::now());
            if !on {
                keyframes.request(); // restart with a keyframe
                continue;
            }
            let captured = Instant::now();
            let frame = match source.capture(crate::clock::unix_ms() as u64) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, ?kind, "capture stopped");
                    let _ = self.internal.try_send(Internal::VideoEnded {
                        kind,
                        id,
                        error: e.to_string(),
                    });
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
            if let (None, Some(limits)) = (&adapter, cpu_adaptation) {
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
                    fps,
                    bitrate_kbps: want_kbps,
                }) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        tracing::error!(error = %e, "no video encoder");
                        return;
                    }
                };
            }
            let Some(enc) = enc.as_mut() else { return };
            if want_kbps != enc.bitrate_kbps() {
                let _ = enc.set_bitrate_kbps(want_kbps);
            }
            let force = keyframes.force(captured);
            if force {
                tracing::debug!(?kind, "keyframe forced");
            }
            let encoded = enc.encode(&frame, force);
            if let Some(a) = adapter.as_mut() {
                let done = Instant::now();
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

/// Sends a tone while the microphone switch is on; ends with the call.
pub(super) async fn send_tone(tracks: LocalTracks, hz: f32, mut on: watch::Receiver<bool>) {
    let mut tone = Tone::new(hz, 0.3);
    let mut enc = match OpusEncoder::new(32_000) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "no audio encoder");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while on.has_changed().is_ok() {
        tick.tick().await;
        let frame = tone.next_frame();
        if !*on.borrow_and_update() {
            continue;
        }
        if let Ok(packet) = enc.encode(&frame) {
            tracks
                .write(MediaKind::Audio, packet, Duration::from_millis(20))
                .await;
        }
    }
}

/// Sends a microphone's 20 ms frames while the switch is on, with its level every 100 ms;
/// ends when the microphone is replaced or closed, or with the call.
pub(super) async fn send_mic(
    tracks: LocalTracks,
    mut frames: mpsc::Receiver<Vec<f32>>,
    mut on: watch::Receiver<bool>,
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
        if on.has_changed().is_err() {
            return;
        }
        if !*on.borrow_and_update() {
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
