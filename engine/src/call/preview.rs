//! A device check outside a call: the chosen camera's picture and the chosen microphone's
//! level, through the same capture sources and microphone path a call uses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::send::camera_factory;
use super::{AudioSource, Device, VideoSource};
use crate::media::audio::Tone;
use crate::media::devices::{DeviceError, Mic};
use crate::media::frame::I420Frame;
use crate::media::level::level_dbfs;

/// What a preview shows.
#[derive(Clone, Debug)]
pub enum PreviewEvent {
    Frame(Arc<I420Frame>),
    /// The microphone's level over the last 100 ms (dBFS).
    MicLevel(f32),
    DeviceLost {
        device: Device,
        error: String,
    },
}

/// A running preview; dropping it closes the devices.
pub struct Preview {
    stop: Arc<AtomicBool>,
    _mic: Option<Mic>,
}

impl Drop for Preview {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Preview {
    /// Opens `camera` (at `width`×`height`, `fps` pictures a second) and `mic`. A device
    /// that will not open is left out and its error returned, with which it was, beside a
    /// preview of the rest.
    pub async fn start(
        camera: Option<VideoSource>,
        mic: Option<AudioSource>,
        (width, height, fps): (u32, u32, u32),
    ) -> (
        Self,
        mpsc::Receiver<PreviewEvent>,
        Vec<(Device, DeviceError)>,
    ) {
        let mut problems = Vec::new();
        let (events, rx) = mpsc::channel(64);
        let stop = Arc::new(AtomicBool::new(false));
        if let Some(source) = camera {
            let make = camera_factory(source, width, height, fps);
            let (ready_tx, ready_rx) = oneshot::channel();
            let (events, stop) = (events.clone(), stop.clone());
            let spawned = std::thread::Builder::new()
                .name("parley-preview".into())
                .spawn(move || {
                    let mut cam = match make() {
                        Ok(c) => {
                            let _ = ready_tx.send(Ok(()));
                            c
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let period = Duration::from_secs(1) / fps.max(1);
                    while !stop.load(Ordering::SeqCst) {
                        let t = Instant::now();
                        let ev = match cam.capture(crate::clock::unix_ms() as u64) {
                            Ok(f) => PreviewEvent::Frame(Arc::new(f)),
                            Err(e) => {
                                let _ = events.blocking_send(PreviewEvent::DeviceLost {
                                    device: Device::Camera,
                                    error: e.to_string(),
                                });
                                return;
                            }
                        };
                        // A preview nobody draws fast enough skips pictures.
                        let _ = events.try_send(ev);
                        std::thread::sleep(period.saturating_sub(t.elapsed()));
                    }
                })
                .map_err(|e| DeviceError::Camera(e.to_string()));
            let opened = match spawned {
                Ok(_) => ready_rx
                    .await
                    .unwrap_or_else(|_| Err(DeviceError::Camera("preview ended".into()))),
                Err(e) => Err(e),
            };
            if let Err(e) = opened {
                problems.push((Device::Camera, e));
            }
        }
        let mic = match mic {
            None => None,
            Some(AudioSource::Device(name)) => {
                let lost = events.clone();
                match Mic::start(name.as_deref(), None, move |error| {
                    let _ = lost.try_send(PreviewEvent::DeviceLost {
                        device: Device::Microphone,
                        error,
                    });
                }) {
                    Ok((mic, frames)) => {
                        tokio::spawn(levels(frames, events.clone(), stop.clone()));
                        Some(mic)
                    }
                    Err(e) => {
                        problems.push((Device::Microphone, e));
                        None
                    }
                }
            }
            Some(AudioSource::Tone(hz)) => {
                // The test tone: its frames, paced like a microphone's.
                let (tx, frames) = mpsc::channel(50);
                let stop2 = stop.clone();
                tokio::spawn(async move {
                    let mut tone = Tone::new(hz, 0.3);
                    let mut tick = tokio::time::interval(Duration::from_millis(20));
                    while !stop2.load(Ordering::SeqCst) {
                        tick.tick().await;
                        if tx.send(tone.next_frame()).await.is_err() {
                            return;
                        }
                    }
                });
                tokio::spawn(levels(frames, events.clone(), stop.clone()));
                None
            }
        };
        (Self { stop, _mic: mic }, rx, problems)
    }
}

/// The level of every 100 ms of microphone frames.
async fn levels(
    mut frames: mpsc::Receiver<Vec<f32>>,
    events: mpsc::Sender<PreviewEvent>,
    stop: Arc<AtomicBool>,
) {
    let mut window: Vec<f32> = Vec::new();
    while let Some(frame) = frames.recv().await {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        window.extend_from_slice(&frame);
        if window.len() >= 4800 {
            let _ = events.try_send(PreviewEvent::MicLevel(level_dbfs(&window)));
            window.clear();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_synthetic_camera_and_a_tone_preview_moving_pictures_and_a_level() {
        let (preview, mut rx, problems) = Preview::start(
            Some(VideoSource::Synthetic),
            Some(AudioSource::Tone(440.0)),
            (320, 240, 15),
        )
        .await;
        assert!(problems.is_empty(), "{problems:?}");
        let (mut frames, mut level) = (Vec::new(), None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while (frames.len() < 3 || level.is_none()) && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some(PreviewEvent::Frame(f))) => frames.push(f),
                Ok(Some(PreviewEvent::MicLevel(db))) => level = Some(db),
                other => panic!("{other:?}"),
            }
        }
        assert!(frames.len() >= 3 && frames[0].width == 320);
        assert_ne!(frames[0].data, frames[2].data, "the picture moves");
        // A 0.3 sine is about -13 dBFS.
        let db = level.unwrap();
        assert!((-16.0..-10.0).contains(&db), "{db} dBFS");
        drop(preview);
    }

    #[tokio::test]
    async fn a_missing_camera_is_left_out_and_said() {
        let (_preview, mut rx, problems) = Preview::start(
            Some(VideoSource::Camera(Some("no such camera".into()))),
            Some(AudioSource::Tone(440.0)),
            (320, 240, 15),
        )
        .await;
        assert_eq!(problems.len(), 1, "the camera's error: {problems:?}");
        assert_eq!(problems[0].0, Device::Camera);
        // The microphone's level still comes.
        let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert!(matches!(ev, Ok(Some(PreviewEvent::MicLevel(_)))), "{ev:?}");
    }
}
