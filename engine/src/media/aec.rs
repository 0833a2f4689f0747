//! Voice processing around the sound card: echo cancellation (the speaker's signal is the
//! far-end reference), noise suppression, automatic gain control and a high-pass filter, from
//! WebRTC's audio processing module (Debian's libwebrtc-audio-processing through the
//! `webrtc-audio-processing` crate). It works on 10 ms frames; callers hand it any length and
//! it keeps the remainder.

use webrtc_audio_processing as apm;

pub use apm::NUM_SAMPLES_PER_FRAME;

#[derive(Debug, thiserror::Error)]
#[error("audio processing: {0}")]
pub struct AecError(String);

/// One processor shared by the capture (near end) and playback (far end) threads.
#[derive(Clone)]
pub struct VoiceProcessor {
    capture: apm::Processor,
    render: apm::Processor,
}

impl VoiceProcessor {
    pub fn new() -> Result<Self, AecError> {
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
            noise_suppression: Some(apm::NoiseSuppression {
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

    /// The near end: cleans a 10 ms microphone frame in place.
    pub fn capture(&mut self, frame: &mut [f32]) {
        if let Err(e) = self.capture.process_capture_frame(frame) {
            tracing::debug!(error = %e, "capture processing failed");
        }
    }

    /// The far end: a 10 ms frame about to be played (what the echo will sound like).
    pub fn render(&mut self, frame: &mut [f32]) {
        if let Err(e) = self.render.process_render_frame(frame) {
            tracing::debug!(error = %e, "render processing failed");
        }
    }
}

/// Cuts a stream of samples into 10 ms frames, keeping the remainder for next time.
#[derive(Default)]
pub struct Framer {
    pending: Vec<f32>,
}

impl Framer {
    /// Appends `samples` and calls `each` on every complete 10 ms frame.
    pub fn push(&mut self, samples: &[f32], mut each: impl FnMut(&mut [f32])) -> Vec<f32> {
        self.pending.extend_from_slice(samples);
        let n = NUM_SAMPLES_PER_FRAME as usize;
        let whole = self.pending.len() / n * n;
        let mut out: Vec<f32> = self.pending.drain(..whole).collect();
        for frame in out.chunks_mut(n) {
            each(frame);
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::media::audio::Tone;

    #[test]
    fn the_far_end_signal_is_removed_from_the_microphone() {
        // The "room": the microphone hears the speaker's tone (660 Hz, continuous, at half
        // level, 30 ms late) while the near-end talker speaks in bursts (300 Hz, 240 ms on,
        // 240 ms off: non-stationary, as speech is; a steady tone is noise to the suppressor).
        let mut vp = VoiceProcessor::new().unwrap();
        let mut far = Tone::new(660.0, 0.3);
        let mut near = Tone::new(300.0, 0.2);
        let delay = 30 * 48;
        let mut played: Vec<f32> = vec![0.0; delay];
        let (mut sent, mut unprocessed) = (Vec::new(), Vec::new());
        for i in 0..400 {
            // 400 × 20 ms = 8 s
            let mut spk = far.next_frame();
            for f in spk.chunks_mut(480) {
                vp.render(f);
            }
            played.extend_from_slice(&spk);
            let echo: Vec<f32> = played.drain(..spk.len()).collect();
            let talking = (i / 12) % 2 == 0;
            let voice = near.next_frame();
            let mut mic: Vec<f32> = voice
                .iter()
                .zip(&echo)
                .map(|(n, e)| if talking { n + 0.5 * e } else { 0.5 * e })
                .collect();
            unprocessed.extend_from_slice(&mic);
            for f in mic.chunks_mut(480) {
                vp.capture(f);
            }
            sent.extend(mic);
        }
        // The last 4 s, after convergence.
        let lvl = crate::media::audio::tone_level;
        let (a, b) = (sent.len() - 4 * 48_000, sent.len());
        let echo_in = lvl(&unprocessed[a..b], 660.0, 3.0);
        let echo_out = lvl(&sent[a..b], 660.0, 3.0);
        let talk_in = lvl(&unprocessed[a..b], 300.0, 3.0);
        let talk_out = lvl(&sent[a..b], 300.0, 3.0);
        let db = |x: f32, y: f32| 20.0 * (x / y.max(1e-9)).log10();
        eprintln!(
            "aec unit: echo {echo_in:.4} -> {echo_out:.5} ({:.1} dB), talker {talk_in:.4} -> \
             {talk_out:.4} ({:.1} dB)",
            db(echo_in, echo_out),
            db(talk_in, talk_out)
        );
        assert!(db(echo_in, echo_out) >= 30.0, "the echo is removed");
        assert!(db(talk_in, talk_out) <= 10.0, "the talker stays");
    }
}
