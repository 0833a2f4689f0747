//! Device trouble in words a person understands: what is missing and what still works, once,
//! instead of the engine's error text (which goes to the log).

use parley_engine::call::Device;
use parley_engine::media::devices::DeviceError;

/// One sentence for joining without some devices; None when nothing is missing.
pub fn joined_without(missing: &[Device]) -> Option<String> {
    let has = |d| missing.contains(&d);
    let text = match (
        has(Device::Camera),
        has(Device::Microphone),
        has(Device::Speaker),
    ) {
        (false, false, false) => return None,
        (true, false, false) => "No camera found — the others see your name instead of video.",
        (false, true, false) => "No microphone found — you can still listen and chat.",
        (false, false, true) => {
            "No speaker found — you will not hear the others, but they hear you and you can chat."
        }
        (true, true, false) => "No camera or microphone found — you can still listen and chat.",
        (true, false, true) => "No camera or speaker found — you can still talk and chat.",
        (false, true, true) => "No microphone or speaker found — you can still watch and chat.",
        (true, true, true) => {
            "No camera, microphone or speaker found — you can still watch and chat."
        }
    };
    Some(text.to_string())
}

/// What the preview says about a device that would not open.
pub fn device_problem(device: Device, e: &DeviceError) -> String {
    match (device, e) {
        // Actionable as they stand: where to allow it.
        (_, DeviceError::CameraDenied | DeviceError::ScreenDenied) => e.to_string(),
        (Device::Camera, DeviceError::NoCamera | DeviceError::UnknownCamera { .. }) => {
            "No camera found — the others will see your name instead of video.".into()
        }
        (Device::Camera, _) => {
            "Your camera could not be opened — another app may be using it.".into()
        }
        (Device::Microphone, DeviceError::NoAudioDevice(_)) => {
            "No microphone found — you can still listen and chat.".into()
        }
        (Device::Microphone, _) => {
            "Your microphone could not be opened — you can still listen and chat.".into()
        }
        (Device::Speaker, _) => "No speaker found — you will not hear the others.".into(),
        (Device::Screen, _) => "The screen could not be shared.".into(),
    }
}

/// A device that stopped in a call; `replaced`: the system's default one took over.
pub fn device_lost(device: Device, replaced: bool) -> String {
    match (device, replaced) {
        (Device::Microphone, true) => {
            "Your microphone stopped — Parley switched to the system's default one."
        }
        (Device::Microphone, false) => {
            "Your microphone stopped and no other was found — you can still listen and chat."
        }
        (Device::Speaker, true) => {
            "Your speaker stopped — Parley switched to the system's default one."
        }
        (Device::Speaker, false) => {
            "Your speaker stopped and no other was found — chat still works."
        }
        (Device::Camera, _) => "Your camera stopped — choose another in Audio and video settings.",
        (Device::Screen, _) => "Screen sharing stopped.",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_devices_at_all_is_one_sentence_without_error_text() {
        let all = [Device::Microphone, Device::Speaker, Device::Camera];
        let text = joined_without(&all).unwrap();
        assert_eq!(
            text,
            "No camera, microphone or speaker found — you can still watch and chat."
        );
        assert_eq!(joined_without(&[]), None);
        assert_eq!(
            joined_without(&[Device::Microphone]).unwrap(),
            "No microphone found — you can still listen and chat."
        );
    }

    #[test]
    fn a_missing_device_in_the_preview_is_said_plainly() {
        let no_mic = DeviceError::Audio("The requested audio device is not available.".into());
        assert_eq!(
            device_problem(Device::Microphone, &no_mic),
            "Your microphone could not be opened — you can still listen and chat."
        );
        assert!(device_problem(Device::Camera, &DeviceError::NoCamera).starts_with("No camera"));
        assert!(
            device_problem(Device::Camera, &DeviceError::CameraDenied).contains("System Settings")
        );
    }
}
