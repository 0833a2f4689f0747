//! The settings dialog's preview outside a call: the engine's device preview (the chosen
//! camera through the call's capture sources, the chosen microphone's level) drawn as the
//! self view and the meter.

use parley_engine::call::preview::{Preview, PreviewEvent};
use tauri::{AppHandle, Manager as _};
use tauri_specta::Event as _;

use super::{camera_source, mic_source, Meetings, PREVIEW_FPS};
use crate::types::{AppError, LevelsEvent, NoticeLevel};
use crate::Shell;

/// Starts a preview with the stored choices; it runs until the returned value is dropped.
/// A device that would not open is left out, and the first such error returned beside it.
pub(super) async fn start(app: &AppHandle) -> (Preview, Option<AppError>) {
    let stored = app.state::<Shell>().settings.get();
    let camera = camera_source(stored.camera.as_deref());
    let mic = mic_source(stored.mic.as_deref());
    let (preview, mut events, problems) =
        Preview::start(Some(camera), Some(mic), (640, 480, PREVIEW_FPS)).await;
    let problem = problems
        .first()
        .map(|e| AppError::new("media_device", e.to_string()));
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
                    Meetings::notice(
                        &app,
                        NoticeLevel::Warning,
                        format!("{device:?} stopped: {error}"),
                    );
                }
            }
        }
    });
    (preview, problem)
}
