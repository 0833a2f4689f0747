//! WebRTC's audio processing module (the `webrtc-audio-processing` crate): echo
//! cancellation, noise suppression, gain control, high-pass filter.

use webrtc_audio_processing as apm;

use super::AecError;

#[derive(Clone)]
pub(super) struct Apm {
    capture: apm::Processor,
    render: apm::Processor,
}

impl Apm {
    pub(super) const ECHO_CANCELLATION: bool = true;
    pub(super) const NOISE_SUPPRESSION: bool = true;

    /// `noise_suppression`: WebRTC's own (off when RNNoise does it).
    pub(super) fn new(noise_suppression: bool) -> Result<Self, AecError> {
        let mut p = apm::Processor::new(&apm::InitializationConfig {
            num_capture_channels: 1,
            num_render_channels: 1,
            enable_experimental_agc: false,
            enable_intelligibility_enhancer: false,
        })
        .map_err(|e| AecError(e.to_string()))?;
        p.set_config(apm::Config {
            echo_cancellation: Some(apm::EchoCancellation {
                suppression_level: apm::EchoCancellationSuppressionLevel::High,
                enable_extended_filter: true,
                enable_delay_agnostic: true,
                stream_delay_ms: None,
            }),
            noise_suppression: noise_suppression.then_some(apm::NoiseSuppression {
                suppression_level: apm::NoiseSuppressionLevel::High,
            }),
            gain_control: Some(apm::GainControl {
                mode: apm::GainControlMode::AdaptiveDigital,
                target_level_dbfs: 3,
                compression_gain_db: 9,
                enable_limiter: true,
            }),
            enable_high_pass_filter: true,
            ..Default::default()
        });
        Ok(Self {
            render: p.clone(),
            capture: p,
        })
    }

    pub(super) fn capture(&mut self, frame: &mut [f32]) {
        if let Err(e) = self.capture.process_capture_frame(frame) {
            tracing::debug!(error = %e, "capture processing failed");
        }
    }

    pub(super) fn render(&mut self, frame: &mut [f32]) {
        if let Err(e) = self.render.process_render_frame(frame) {
            tracing::debug!(error = %e, "render processing failed");
        }
    }
}

const _: () = assert!(apm::NUM_SAMPLES_PER_FRAME == super::NUM_SAMPLES_PER_FRAME);
