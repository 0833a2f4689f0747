//! Audio pieces that need no device: 48 kHz mono 20 ms frames, a tone source, Opus with
//! in-band FEC, and spectrum analysis to tell which tones a recording contains.

use std::f32::consts::TAU;

pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 960;

/// A sine tone, frame by frame, phase-continuous.
pub struct Tone {
    freq: f32,
    amplitude: f32,
    phase: f32,
}

impl Tone {
    pub fn new(freq_hz: f32, amplitude: f32) -> Self {
        Self {
            freq: freq_hz,
            amplitude,
            phase: 0.0,
        }
    }

    pub fn next_frame(&mut self) -> Vec<f32> {
        let step = TAU * self.freq / SAMPLE_RATE as f32;
        (0..FRAME_SAMPLES)
            .map(|_| {
                let s = self.phase.sin() * self.amplitude;
                self.phase = (self.phase + step) % TAU;
                s
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("opus: {0}")]
pub struct OpusError(#[from] opus::Error);

/// Opus for voice: 48 kHz mono, 20 ms, in-band FEC on.
pub struct OpusEncoder {
    inner: opus::Encoder,
    out: Vec<u8>,
}

impl OpusEncoder {
    pub fn new(bitrate_bps: i32) -> Result<Self, OpusError> {
        let mut inner =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)?;
        inner.set_bitrate(opus::Bitrate::Bits(bitrate_bps))?;
        inner.set_inband_fec(true)?;
        inner.set_packet_loss_perc(10)?;
        Ok(Self {
            inner,
            out: vec![0; 1500],
        })
    }

    /// Encodes one 20 ms frame of samples in -1.0..=1.0.
    pub fn encode(&mut self, frame: &[f32]) -> Result<Vec<u8>, OpusError> {
        let n = self.inner.encode_float(frame, &mut self.out)?;
        Ok(self.out[..n].to_vec())
    }
}

pub struct OpusDecoder {
    inner: opus::Decoder,
}

impl OpusDecoder {
    pub fn new() -> Result<Self, OpusError> {
        Ok(Self {
            inner: opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)?,
        })
    }

    /// Decodes one packet into 20 ms of samples.
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<f32>, OpusError> {
        let mut out = vec![0f32; FRAME_SAMPLES * 6];
        let n = self.inner.decode_float(packet, &mut out, false)?;
        out.truncate(n);
        Ok(out)
    }

    /// Rebuilds a lost frame: from the FEC data in the `next` packet when there is one,
    /// otherwise by concealment.
    pub fn recover(&mut self, next: Option<&[u8]>) -> Result<Vec<f32>, OpusError> {
        let mut out = vec![0f32; FRAME_SAMPLES];
        let n = match next {
            Some(p) => self.inner.decode_float(p, &mut out, true)?,
            None => self.inner.decode_float(&[], &mut out, false)?,
        };
        out.truncate(n);
        Ok(out)
    }
}

/// The strongest component within ±`tolerance_hz` of `freq_hz`, relative to the strongest
/// component of the whole spectrum (1.0 = the loudest thing in the recording; a tone that is
/// absent scores near 0).
pub fn tone_strength(samples: &[f32], freq_hz: f32, tolerance_hz: f32) -> f32 {
    let n = samples.len().next_power_of_two().min(1 << 18);
    if samples.len() < 1024 {
        return 0.0;
    }
    let take = samples.len().min(n);
    let mut buf: Vec<rustfft::num_complex::Complex<f32>> = samples[..take]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // Hann window.
            let w = 0.5 - 0.5 * (TAU * i as f32 / take as f32).cos();
            rustfft::num_complex::Complex::new(s * w, 0.0)
        })
        .collect();
    buf.resize(n, rustfft::num_complex::Complex::new(0.0, 0.0));
    rustfft::FftPlanner::new()
        .plan_fft_forward(n)
        .process(&mut buf);
    let mags: Vec<f32> = buf[..n / 2].iter().map(|c| c.norm()).collect();
    let hz_per_bin = SAMPLE_RATE as f32 / n as f32;
    let lo = ((freq_hz - tolerance_hz) / hz_per_bin).floor().max(0.0) as usize;
    let hi = (((freq_hz + tolerance_hz) / hz_per_bin).ceil() as usize).min(mags.len() - 1);
    let peak = mags[lo..=hi].iter().cloned().fold(0.0f32, f32::max);
    let max = mags.iter().cloned().fold(1e-12f32, f32::max);
    peak / max
}

/// The amplitude of the component at `freq_hz` (±`tolerance_hz`), as a sine of that
/// amplitude would show it: 0.3 for `Tone::new(f, 0.3)`. An absolute level, for comparing
/// recordings.
pub fn tone_level(samples: &[f32], freq_hz: f32, tolerance_hz: f32) -> f32 {
    let n = samples.len().min(1 << 18);
    if n < 1024 {
        return 0.0;
    }
    let bins = |f: f32| (f * n as f32 / SAMPLE_RATE as f32).round() as i64;
    let (lo, hi) = (
        bins(freq_hz - tolerance_hz).max(1),
        bins(freq_hz + tolerance_hz),
    );
    // A direct DFT over the few bins in range (no padding, Hann window, coherent gain 0.5).
    let mut best = 0f32;
    for k in lo..=hi {
        let (mut re, mut im) = (0f32, 0f32);
        for (i, s) in samples[..n].iter().enumerate() {
            let w = 0.5 - 0.5 * (TAU * i as f32 / n as f32).cos();
            let ph = TAU * k as f32 * i as f32 / n as f32;
            re += s * w * ph.cos();
            im -= s * w * ph.sin();
        }
        best = best.max((re * re + im * im).sqrt() * 2.0 / (0.5 * n as f32));
    }
    best
}

/// Root-mean-square level.
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn two_tones_survive_opus_and_are_told_apart() {
        let mut a = Tone::new(440.0, 0.3);
        let mut b = Tone::new(1250.0, 0.3);
        let mut enc = OpusEncoder::new(32_000).unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        for i in 0..100 {
            let mix: Vec<f32> = a
                .next_frame()
                .iter()
                .zip(b.next_frame())
                .map(|(x, y)| x + y)
                .collect();
            let packet = enc.encode(&mix).unwrap();
            if i == 50 {
                out.extend(dec.recover(Some(&packet)).unwrap()); // "lost" frame 49 via FEC
            }
            out.extend(dec.decode(&packet).unwrap());
        }
        let (a, b, none) = (
            tone_strength(&out, 440.0, 15.0),
            tone_strength(&out, 1250.0, 15.0),
            tone_strength(&out, 800.0, 15.0),
        );
        assert!(a > 0.5 && b > 0.5, "both tones present: {a} {b}");
        assert!(none < 0.05, "no tone where none was played: {none}");
        assert!(rms(&out) > 0.1);
        let level = tone_level(&out[..48_000], 440.0, 5.0);
        assert!((0.2..0.4).contains(&level), "≈ 0.3: {level}");
    }
}
