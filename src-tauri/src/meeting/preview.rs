//! The settings dialog's preview outside a call: the engine's device preview (the chosen
//! camera through the call's capture sources, the chosen microphone's level) drawn as the
//! self view and the meter.

use parley_engine::call::preview::{Preview, PreviewEvent};
use tauri::{AppHandle, Manager as _};
use tauri_specta::Event as _;

use parley_engine::call::Device;

use super::{camera_source, mic_source, plain, Meetings, PREVIEW_FPS};
use crate::types::{LevelsEvent, PreviewView};
use crate::Shell;

/// Starts a preview with the stored choices; it runs until the returned value is dropped.
/// A device that would not open is left out, and said in the view beside it.
pub(super) async fn start(app: &AppHandle, with_camera: bool) -> (Preview, PreviewView) {
    let stored = app.state::<Shell>().settings.get();
    let camera = with_camera.then(|| camera_source(stored.camera.as_deref()));
    let mic = mic_source(stored.mic.as_deref());
    let (preview, mut events, problems) =
        Preview::start(camera, Some(mic), (640, 480, PREVIEW_FPS)).await;
    let mut view = PreviewView::default();
    for (device, e) in &problems {
        tracing::info!(?device, error = %e, "preview without a device");
        let text = Some(plain::device_problem(*device, e));
        match device {
            Device::Camera => view.camera_problem = text,
            _ => view.mic_problem = text,
        }
    }
    let app = app.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                PreviewEvent::Frame(f) => {
                    app.state::<Shell>()
                        .meetings
                        .frames
                        .send(super::video::KIND_SELF, "self", &f)
                }
                PreviewEvent::MicLevel(mic) => {
                    let _ = LevelsEvent {
                        peers: Vec::new(),
                        mic,
                        active_speaker: None,
                    }
                    .emit(&app);
                }
                PreviewEvent::DeviceLost { device, error } => {
                    tracing::info!(?device, %error, "a previewed device stopped");
                    Meetings::device_notice(&app, plain::device_lost(device, false));
                }
            }
        }
    });
    (preview, view)
}
