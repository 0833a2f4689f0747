//! Real devices: microphones and speakers through cpal (ALSA on Linux, so PulseAudio and
//! PipeWire work through their ALSA plugins). Cameras and screens: `capture`. Capture and playback run
//! on their own threads (cpal streams may not move between threads); audio is 48 kHz mono in
//! 20 ms frames, the unit the rest of the engine uses.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use cpal::traits::{DeviceTrait as _, HostTrait as _, StreamTrait as _};
use tokio::sync::mpsc;

use super::aec::{Framer, VoiceProcessor};
use super::audio::{FRAME_SAMPLES, SAMPLE_RATE};
use super::resample::{FromMono48k, ToMono48k};

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("no camera found")]
    NoCamera,
    #[error("camera: {0}")]
    Camera(String),
    #[error("no camera called {name:?} (available: {available})")]
    UnknownCamera { name: String, available: String },
    #[error("the camera was disconnected")]
    CameraGone,
    #[error(
        "Parley may not use the camera: allow it in System Settings → Privacy & Security → Camera"
    )]
    CameraDenied,
    #[error(
        "Parley may not record the screen: allow it in System Settings → Privacy & Security → \
         Screen Recording, then open Parley again"
    )]
    ScreenDenied,
    #[error("no such screen or window to share")]
    NoScreen,
    #[error("screen capture: {0}")]
    Screen(String),
    #[error("the shared window was closed")]
    ScreenGone,
    #[error("no {0} device found")]
    NoAudioDevice(&'static str),
    #[error("no {kind} device called {name:?} (available: {available})")]
    UnknownAudioDevice {
        kind: &'static str,
        name: String,
        available: String,
    },
    #[error("audio: {0}")]
    Audio(String),
}

fn name(d: &cpal::Device) -> String {
    d.description()
        .map(|desc| desc.name().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Microphones (input devices) by name.
pub fn audio_inputs() -> Vec<String> {
    cpal::default_host()
        .input_devices()
        .map(|ds| ds.map(|d| name(&d)).collect())
        .unwrap_or_default()
}

/// Speakers (output devices) by name.
pub fn audio_outputs() -> Vec<String> {
    cpal::default_host()
        .output_devices()
        .map(|ds| ds.map(|d| name(&d)).collect())
        .unwrap_or_default()
}

fn pick(input: bool, wanted: Option<&str>) -> Result<cpal::Device, DeviceError> {
    let host = cpal::default_host();
    let kind = if input { "microphone" } else { "speaker" };
    match wanted {
        None | Some("default") => if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        }
        .ok_or(DeviceError::NoAudioDevice(kind)),
        Some(w) => {
            let devices: Vec<cpal::Device> = if input {
                host.input_devices()
                    .map(|d| d.collect())
                    .unwrap_or_default()
            } else {
                host.output_devices()
                    .map(|d| d.collect())
                    .unwrap_or_default()
            };
            let names: Vec<String> = devices.iter().map(name).collect();
            devices.into_iter().find(|d| name(d) == w).ok_or_else(|| {
                DeviceError::UnknownAudioDevice {
                    kind,
                    name: w.to_string(),
                    available: names.join(", "),
                }
            })
        }
    }
}

/// The device's own channel count and rate (nothing on the way converts them on every host:
/// WASAPI's shared mode refuses a format the device does not have), with 10 ms buffers where
/// the device says it can (latency, and what the echo canceller lines up), its default size
/// elsewhere.
fn native_config(native: &cpal::SupportedStreamConfig) -> cpal::StreamConfig {
    let ten_ms = native.sample_rate() / 100;
    let buffer_size = match native.buffer_size() {
        cpal::SupportedBufferSize::Range { min, max } if (*min..=*max).contains(&ten_ms) => {
            cpal::BufferSize::Fixed(ten_ms)
        }
        _ => cpal::BufferSize::Default,
    };
    cpal::StreamConfig {
        channels: native.channels(),
        sample_rate: native.sample_rate(),
        buffer_size,
    }
}

/// Builds a cpal stream on a thread of its own (streams may not move between threads), starts
/// it (streams may start paused) and keeps it until the returned sender is dropped. Waits
/// until the stream runs or has failed.
fn run_stream(
    name: &str,
    build: impl FnOnce() -> Result<cpal::Stream, cpal::Error> + Send + 'static,
) -> Result<std::sync::mpsc::Sender<()>, DeviceError> {
    let audio = |e: &dyn std::fmt::Display| DeviceError::Audio(e.to_string());
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), DeviceError>>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let started = build().and_then(|stream| stream.play().map(|()| stream));
            match started {
                Ok(_stream) => {
                    let _ = ready_tx.send(Ok(()));
                    let _ = stop_rx.recv();
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(audio(&e)));
                }
            }
        })
        .map_err(|e| audio(&e))?;
    ready_rx
        .recv()
        .map_err(|_| DeviceError::Audio(format!("{name} thread ended")))??;
    Ok(stop_tx)
}

/// A stream error: a device that is gone is reported through `lost`; others are logged.
fn stream_error(what: &str, e: cpal::Error, lost: &dyn Fn(String)) {
    match e.kind() {
        cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::HostUnavailable => {
            lost(format!("the {what} is gone ({e})"))
        }
        _ => tracing::warn!(error = %e, "{what} stream error"),
    }
}

/// A running microphone. Dropping it stops the capture.
pub struct Mic {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Mic {
    /// Starts capturing from `device` (None: the default); 20 ms frames arrive on the receiver.
    /// With `voice`, every frame passes echo cancellation, noise suppression and gain control.
    /// `lost` is called (from the audio thread) when the device goes away, e.g. unplugged.
    pub fn start(
        device: Option<&str>,
        voice: Option<VoiceProcessor>,
        lost: impl Fn(String) + Send + 'static,
    ) -> Result<(Mic, mpsc::Receiver<Vec<f32>>), DeviceError> {
        let device = pick(true, device)?;
        // The device's own format, then 48 kHz mono here.
        let native = device
            .default_input_config()
            .map_err(|e| DeviceError::Audio(e.to_string()))?;
        let config = native_config(&native);
        let mut convert = ToMono48k::new(config.sample_rate, config.channels)
            .map_err(|e| DeviceError::Audio(e.to_string()))?;
        tracing::debug!(
            channels = config.channels,
            rate = config.sample_rate,
            "microphone opened in its own format"
        );
        let (frames_tx, frames_rx) = mpsc::channel::<Vec<f32>>(50);
        let stop = run_stream("parley-mic", move || {
            let mut pending: Vec<f32> = Vec::with_capacity(FRAME_SAMPLES * 2);
            let mut mono: Vec<f32> = Vec::with_capacity(FRAME_SAMPLES * 2);
            let mut framer = Framer::default();
            let mut voice = voice;
            device.build_input_stream(
                config,
                move |data: &[f32], _: &cpal::InputCallbackInfo| {
                    mono.clear();
                    convert.push(data, &mut mono);
                    match voice.as_mut() {
                        Some(v) => {
                            let clean = framer.push(&mono, |f| v.capture(f));
                            pending.extend_from_slice(&clean);
                        }
                        None => pending.extend_from_slice(&mono),
                    }
                    while pending.len() >= FRAME_SAMPLES {
                        let frame: Vec<f32> = pending.drain(..FRAME_SAMPLES).collect();
                        // A full queue means nobody reads fast enough: drop, never block
                        // the audio thread.
                        let _ = frames_tx.try_send(frame);
                    }
                },
                move |e| stream_error("microphone", e, &lost),
                None,
            )
        })?;
        Ok((Mic { _stop: stop }, frames_rx))
    }
}

/// Mixes every remote participant's decoded audio for the speaker: one queue per source,
/// summed sample by sample; a source that runs dry contributes silence (a gap, not a stall).
#[derive(Clone, Default)]
pub struct Mixer {
    inner: Arc<Mutex<BTreeMap<String, VecDeque<f32>>>>,
}

/// Most audio a source may queue before old samples are dropped (200 ms): bounds latency.
const MAX_QUEUED: usize = SAMPLE_RATE as usize / 5;

impl Mixer {
    /// Queues `samples` from `source`.
    pub fn push(&self, source: &str, samples: &[f32]) {
        let mut all = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let q = all.entry(source.to_string()).or_default();
        q.extend(samples.iter().copied());
        if q.len() > MAX_QUEUED {
            let extra = q.len() - MAX_QUEUED;
            q.drain(..extra);
        }
    }

    /// Forgets a source (e.g. the peer left).
    pub fn remove(&self, source: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(source);
    }

    /// Fills `out` with the mix.
    pub fn fill(&self, out: &mut [f32]) {
        out.fill(0.0);
        let n = out.len();
        let mut all = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for q in all.values_mut() {
            for (o, s) in out.iter_mut().zip(q.drain(..q.len().min(n))) {
                *o += s;
            }
        }
        for o in out.iter_mut() {
            *o = o.clamp(-1.0, 1.0);
        }
    }
}

/// A running speaker playing a [`Mixer`]. Dropping it stops playback.
pub struct Speaker {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Speaker {
    /// With `voice`, what is played becomes the echo canceller's far-end reference.
    /// `lost` is called (from the audio thread) when the device goes away, e.g. unplugged.
    pub fn start(
        device: Option<&str>,
        mixer: Mixer,
        voice: Option<VoiceProcessor>,
        lost: impl Fn(String) + Send + 'static,
    ) -> Result<Speaker, DeviceError> {
        let device = pick(false, device)?;
        // The device's own format, as for microphones: 48 kHz mono is made into it here.
        let native = device
            .default_output_config()
            .map_err(|e| DeviceError::Audio(e.to_string()))?;
        let config = native_config(&native);
        let mut convert = FromMono48k::new(config.sample_rate, config.channels)
            .map_err(|e| DeviceError::Audio(e.to_string()))?;
        tracing::debug!(
            channels = config.channels,
            rate = config.sample_rate,
            "speaker opened in its own format"
        );
        let stop = run_stream("parley-speaker", move || {
            let mut voice = voice;
            let mut framer = Framer::default();
            device.build_output_stream(
                config,
                move |out: &mut [f32], _: &cpal::OutputCallbackInfo| {
                    convert.fill(out, |mono| {
                        mixer.fill(mono);
                        if let Some(v) = voice.as_mut() {
                            // The reference is what is played, before it is spread over
                            // the device's channels; playback itself is untouched.
                            framer.push(mono, |f| v.render(f));
                        }
                    });
                },
                move |e| stream_error("speaker", e, &lost),
                None,
            )
        })?;
        Ok(Speaker { _stop: stop })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mixer_sums_sources_and_fills_gaps_with_silence() {
        let m = Mixer::default();
        m.push("a", &[0.25; 4]);
        m.push("b", &[0.5; 2]);
        let mut out = [9.0f32; 4];
        m.fill(&mut out);
        assert_eq!(out, [0.75, 0.75, 0.25, 0.25]);
        m.fill(&mut out);
        assert_eq!(out, [0.0; 4], "dry sources are silent");
        m.push("a", &[0.9; 2]);
        m.push("b", &[0.9; 2]);
        m.fill(&mut out[..2]);
        assert_eq!(out[..2], [1.0, 1.0], "clipped, not wrapped");
        m.push("a", &vec![0.1; MAX_QUEUED + 100]);
        m.remove("a");
        m.fill(&mut out);
        assert_eq!(out, [0.0; 4]);
    }
}
