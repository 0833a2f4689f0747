//! Voice processing around the sound card: echo cancellation (the speaker's signal is the
//! far-end reference), noise suppression, automatic gain control and a high-pass filter. It
//! works on 10 ms frames; callers hand it any length and it keeps the remainder.
//!
//! Where WebRTC's audio processing module builds (Linux: Debian's libwebrtc-audio-processing;
//! macOS: the crate's bundled copy) it does all four ([`apm`]). On Windows it does not build
//! (its bundled build needs autotools, which refuse MSVC): there the microphone gets RNNoise
//! and no echo cancellation ([`passthrough`]), [`VoiceProcessor::echo_cancellation`] says so
//! and the app shows it. [`Denoiser::RnNoise`] swaps in nnnoiseless (RNNoise, a small recurrent
//! network: stronger on non-stationary noise such as keyboards, more CPU) everywhere.

#[cfg(unix)]
mod apm;
// Compiled everywhere (so it is tested here), used on Windows.
#[cfg_attr(unix, allow(dead_code))]
mod passthrough;

#[cfg(unix)]
use apm::Apm as Backend;
#[cfg(not(unix))]
use passthrough::Passthrough as Backend;

/// Samples in one 10 ms frame at 48 kHz.
pub const NUM_SAMPLES_PER_FRAME: i32 = 480;

#[derive(Debug, thiserror::Error)]
#[error("audio processing: {0}")]
pub struct AecError(String);

/// Which noise suppressor cleans the microphone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Denoiser {
    /// WebRTC's, part of the audio processing module (RNNoise where that is missing).
    #[default]
    WebRtc,
    RnNoise,
}

/// One processor shared by the capture (near end) and playback (far end) threads.
#[derive(Clone)]
pub struct VoiceProcessor {
    backend: Backend,
    rnnoise: Option<std::sync::Arc<std::sync::Mutex<RnNoise>>>,
}

/// nnnoiseless on 10 ms frames (its frame is 480 samples at 48 kHz, in 16-bit scale).
struct RnNoise {
    state: Box<nnnoiseless::DenoiseState<'static>>,
    out: Vec<f32>,
}

impl RnNoise {
    fn process(&mut self, frame: &mut [f32]) {
        let n = nnnoiseless::DenoiseState::FRAME_SIZE;
        for chunk in frame.chunks_mut(n) {
            if chunk.len() != n {
                continue;
            }
            let input: Vec<f32> = chunk.iter().map(|s| s * 32768.0).collect();
            self.out.resize(n, 0.0);
            self.state.process_frame(&mut self.out, &input);
            for (s, o) in chunk.iter_mut().zip(&self.out) {
                *s = (o / 32768.0).clamp(-1.0, 1.0);
            }
        }
    }
}

impl VoiceProcessor {
    pub fn new(denoiser: Denoiser) -> Result<Self, AecError> {
        let webrtc_ns = denoiser == Denoiser::WebRtc && Backend::NOISE_SUPPRESSION;
        let backend = Backend::new(webrtc_ns)?;
        let rnnoise = (!webrtc_ns).then(|| {
            std::sync::Arc::new(std::sync::Mutex::new(RnNoise {
                state: nnnoiseless::DenoiseState::new(),
                out: Vec::new(),
            }))
        });
        Ok(Self { backend, rnnoise })
    }

    /// Whether the speaker's sound is taken out of the microphone on this system (false on
    /// Windows: headphones keep the echo out there).
    pub fn echo_cancellation() -> bool {
        Backend::ECHO_CANCELLATION
    }

    /// The near end: cleans a 10 ms microphone frame in place.
    pub fn capture(&mut self, frame: &mut [f32]) {
        self.backend.capture(frame);
        if let Some(rn) = &self.rnnoise {
            rn.lock().unwrap_or_else(|p| p.into_inner()).process(frame);
        }
    }

    /// The far end: a 10 ms frame about to be played (what the echo will sound like).
    pub fn render(&mut self, frame: &mut [f32]) {
        self.backend.render(frame);
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

    #[test]
    #[cfg(unix)]
    fn the_far_end_signal_is_removed_from_the_microphone() {
        use crate::media::audio::Tone;
        // The "room": the microphone hears the speaker's tone (660 Hz, continuous, at half
        // level, 30 ms late) while the near-end talker speaks in bursts (300 Hz, 240 ms on,
        // 240 ms off: non-stationary, as speech is; a steady tone is noise to the suppressor).
        let mut vp = VoiceProcessor::new(Denoiser::WebRtc).unwrap();
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

    #[test]
    fn both_denoisers_take_steady_noise_out() {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for denoiser in [Denoiser::WebRtc, Denoiser::RnNoise] {
            #[cfg(not(unix))]
            if denoiser == Denoiser::WebRtc {
                continue; // RNNoise stands in for it there
            }
            let mut vp = VoiceProcessor::new(denoiser).unwrap();
            let (mut before, mut after) = (Vec::new(), Vec::new());
            // 3 s of fan-like noise (white noise through a one-pole low-pass) at about
            // -31 dBFS, in 10 ms frames.
            let mut y = 0f32;
            for _ in 0..300 {
                let mut frame: Vec<f32> = (0..480)
                    .map(|_| {
                        y = 0.9 * y + 0.1 * rng.gen_range(-0.2..0.2);
                        y
                    })
                    .collect();
                before.extend_from_slice(&frame);
                vp.capture(&mut frame);
                after.extend_from_slice(&frame);
            }
            // The last second, once both have adapted.
            let tail = |v: &[f32]| crate::media::audio::rms(&v[v.len() - 48_000..]);
            let db = 20.0 * (tail(&after) / tail(&before)).log10();
            println!("{denoiser:?}: steady noise {db:.1} dB");
            // Measured: WebRTC about -11 dB, RNNoise about -47 dB.
            let want = if denoiser == Denoiser::RnNoise {
                -30.0
            } else {
                -10.0
            };
            assert!(db < want, "{denoiser:?} left the noise at {db:.1} dB");
        }
    }
}
