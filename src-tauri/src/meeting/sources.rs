//! Which devices the app opens: the user's choices, or the test pattern and tone.

use parley_engine::call::{AudioSource, VideoSource};

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
