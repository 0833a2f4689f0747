//! Where WebRTC's audio processing module does not build (Windows): no echo cancellation
//! and no WebRTC noise suppression (RNNoise takes it, [`super::VoiceProcessor::new`]); the
//! microphone goes through untouched otherwise.

use super::AecError;

#[derive(Clone)]
pub(super) struct Passthrough;

impl Passthrough {
    pub(super) const ECHO_CANCELLATION: bool = false;
    pub(super) const NOISE_SUPPRESSION: bool = false;

    pub(super) fn new(_noise_suppression: bool) -> Result<Self, AecError> {
        Ok(Self)
    }

    pub(super) fn capture(&mut self, _frame: &mut [f32]) {}

    pub(super) fn render(&mut self, _frame: &mut [f32]) {}
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn without_an_echo_canceller_the_microphone_is_left_as_it_is() {
        let mut p = Passthrough::new(true).unwrap();
        let mut frame: Vec<f32> = (0..480).map(|i| (i as f32 / 480.0) - 0.5).collect();
        let before = frame.clone();
        p.render(&mut frame);
        p.capture(&mut frame);
        assert_eq!(frame, before);
    }
}
