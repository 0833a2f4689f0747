//! Audio devices in their own format. A device is opened in the channel count and rate it
//! offers (WASAPI's shared mode converts nothing, a USB headset may be 44.1 kHz stereo, a
//! Mac's built-in output is stereo). What a microphone captures is turned into the 48 kHz mono
//! the engine works in (channels averaged, then rubato's FFT resampler in 10 ms chunks); what a
//! speaker plays is made from it the other way (resampled, then the same in every channel).
//! At 48 kHz mono nothing is done at all.

use std::collections::VecDeque;

use rubato::{FftFixedIn, Resampler as _};

use super::audio::SAMPLE_RATE;

/// A format no resampler can be made for (a rate of 0, no channels).
#[derive(Debug, thiserror::Error)]
#[error("cannot convert {channels} channel(s) at {rate} Hz to 48 kHz mono: {reason}")]
pub struct FormatError {
    pub rate: u32,
    pub channels: u16,
    reason: String,
}

/// Checks a device format (`rate`, `channels`) and makes the mono resampler from `from` Hz
/// to `to` Hz in chunks of `chunk` input samples; None when the rates are the same.
fn resampler(
    rate: u32,
    channels: u16,
    from: u32,
    to: u32,
    chunk: usize,
) -> Result<Option<FftFixedIn<f32>>, FormatError> {
    let error = |reason: &str| FormatError {
        rate,
        channels,
        reason: reason.to_owned(),
    };
    if channels == 0 {
        return Err(error("no channels"));
    }
    if rate == 0 {
        return Err(error("no sample rate"));
    }
    if from == to {
        return Ok(None);
    }
    FftFixedIn::<f32>::new(from as usize, to as usize, chunk, 1, 1)
        .map(Some)
        .map_err(|e| error(&e.to_string()))
}

/// Interleaved frames at the device's rate and channel count in, 48 kHz mono out.
pub struct ToMono48k {
    channels: usize,
    /// None at 48 kHz: averaging the channels is all there is to do.
    resampler: Option<FftFixedIn<f32>>,
    /// Mono samples at the device rate, waiting for a full chunk.
    pending: Vec<f32>,
    chunk: usize,
}

impl ToMono48k {
    pub fn new(rate: u32, channels: u16) -> Result<Self, FormatError> {
        let chunk = (rate as usize / 100).max(1);
        let resampler = resampler(rate, channels, rate, SAMPLE_RATE, chunk)?;
        Ok(Self {
            channels: usize::from(channels),
            resampler,
            pending: Vec::with_capacity(chunk * 2),
            chunk,
        })
    }

    /// Converts one callback's worth of interleaved samples, appending to `out`. A trailing
    /// partial frame (fewer samples than channels) is ignored; devices deliver whole frames.
    pub fn push(&mut self, interleaved: &[f32], out: &mut Vec<f32>) {
        let n = self.channels as f32;
        let mono = interleaved
            .chunks_exact(self.channels)
            .map(|frame| frame.iter().sum::<f32>() / n);
        let Some(resampler) = self.resampler.as_mut() else {
            out.extend(mono);
            return;
        };
        self.pending.extend(mono);
        let mut start = 0;
        while self.pending.len() - start >= self.chunk {
            let input = [&self.pending[start..start + self.chunk]];
            match resampler.process(&input, None) {
                Ok(chunks) => {
                    if let Some(samples) = chunks.first() {
                        out.extend_from_slice(samples);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "microphone audio not resampled"),
            }
            start += self.chunk;
        }
        self.pending.drain(..start);
    }
}

/// 48 kHz mono in, interleaved frames at the device's rate and channel count out (for a
/// speaker). Pull-driven, as playback is: the device asks for a buffer, the converter takes
/// what it needs from the source.
pub struct FromMono48k {
    channels: usize,
    /// None at 48 kHz: the source is asked for exactly the frames wanted.
    resampler: Option<FftFixedIn<f32>>,
    /// Mono samples at the device rate, converted and not yet played (less than 10 ms).
    ready: VecDeque<f32>,
    scratch: Vec<f32>,
}

/// The piece a resampling speaker takes from its source: 10 ms at 48 kHz.
const PULL: usize = SAMPLE_RATE as usize / 100;

impl FromMono48k {
    pub fn new(rate: u32, channels: u16) -> Result<Self, FormatError> {
        let resampler = resampler(rate, channels, SAMPLE_RATE, rate, PULL)?;
        Ok(Self {
            channels: usize::from(channels),
            resampler,
            ready: VecDeque::with_capacity(rate as usize / 50),
            scratch: Vec::with_capacity(PULL),
        })
    }

    /// Fills `out` (interleaved, the device's format) from `source`, which fills each slice it
    /// is handed with 48 kHz mono (the mixer, silence where it has nothing). A trailing partial
    /// frame is silence.
    pub fn fill(&mut self, out: &mut [f32], mut source: impl FnMut(&mut [f32])) {
        let frames = out.len() / self.channels;
        match self.resampler.as_mut() {
            None => {
                self.scratch.resize(frames, 0.0);
                source(&mut self.scratch);
                self.ready.extend(self.scratch.iter().copied());
            }
            Some(resampler) => {
                while self.ready.len() < frames {
                    self.scratch.resize(PULL, 0.0);
                    source(&mut self.scratch);
                    match resampler.process(&[&self.scratch[..]], None) {
                        Ok(chunks) => {
                            if let Some(samples) = chunks.first() {
                                self.ready.extend(samples.iter().copied());
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "speaker audio not resampled");
                            self.ready.extend(std::iter::repeat_n(0.0, frames));
                        }
                    }
                }
            }
        }
        for (frame, s) in out
            .chunks_exact_mut(self.channels)
            .zip(self.ready.drain(..frames))
        {
            frame.fill(s);
        }
        out[frames * self.channels..].fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::tone_strength;

    /// One second of a 1 kHz tone, the same in every channel but the last, which is silent
    /// (a stereo microphone often has one dead side).
    fn tone(rate: u32, channels: u16) -> Vec<f32> {
        (0..rate)
            .flat_map(|i| {
                let s = 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / rate as f32).sin();
                (0..channels).map(move |c| {
                    if channels > 1 && c == channels - 1 {
                        0.0
                    } else {
                        s
                    }
                })
            })
            .collect()
    }

    #[test]
    fn stereo_and_mono_at_44_1_48_and_96_khz_become_48_khz_mono() {
        for rate in [44_100, 48_000, 96_000] {
            for channels in [1u16, 2] {
                let input = tone(rate, channels);
                let mut conv = ToMono48k::new(rate, channels).unwrap();
                let mut out = Vec::new();
                // Callbacks of uneven sizes, as devices deliver them.
                let mut rest = input.as_slice();
                for frames in [256usize, 441, 1024, 7, 480].iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let take = (frames * usize::from(channels)).min(rest.len());
                    conv.push(&rest[..take], &mut out);
                    rest = &rest[take..];
                }
                // One second in, one second out (less the resampler's last partial chunk).
                let len = out.len() as i64;
                assert!(
                    (len - 48_000).abs() <= 960,
                    "{rate} Hz x{channels}: {len} samples"
                );
                // Past the resampler's start-up, the tone is there at 1 kHz, alone.
                let steady = &out[4_800..];
                let at = tone_strength(steady, 1000.0, 20.0);
                let off = tone_strength(steady, 1500.0, 20.0);
                assert!(at > 0.3, "{rate} Hz x{channels}: tone {at}");
                assert!(off < 0.05, "{rate} Hz x{channels}: elsewhere {off}");
                // Averaged channels: a dead side halves the level, it does not add noise.
                let peak = steady.iter().fold(0.0f32, |m, s| m.max(s.abs()));
                let expect = if channels == 1 { 0.5 } else { 0.25 };
                assert!(
                    (peak - expect).abs() < 0.05,
                    "{rate} Hz x{channels}: peak {peak}"
                );
            }
        }
    }

    #[test]
    fn a_format_without_rate_or_channels_is_refused() {
        assert!(ToMono48k::new(0, 2).is_err());
        assert!(ToMono48k::new(48_000, 0).is_err());
        assert!(FromMono48k::new(0, 2).is_err());
        assert!(FromMono48k::new(44_100, 0).is_err());
    }

    #[test]
    fn a_speaker_at_44_1_48_or_96_khz_in_one_or_two_channels_plays_the_48_khz_mono_tone() {
        for rate in [44_100, 48_000, 96_000] {
            for channels in [1u16, 2] {
                // One second of a 1 kHz tone at 48 kHz, handed out as the mixer does.
                let tone = tone(SAMPLE_RATE, 1);
                let mut next = 0;
                let mut pulled = 0;
                let mut source = |buf: &mut [f32]| {
                    for s in buf.iter_mut() {
                        *s = tone.get(next).copied().unwrap_or(0.0);
                        next += 1;
                    }
                    pulled += buf.len();
                };
                let mut conv = FromMono48k::new(rate, channels).unwrap();
                let mut played = Vec::new();
                // Buffers of uneven sizes, as devices ask for them, until a second is played.
                for frames in [512usize, 441, 1024, 7, 480].iter().cycle() {
                    if played.len() >= rate as usize * usize::from(channels) {
                        break;
                    }
                    let mut buf = vec![9.0f32; frames * usize::from(channels)];
                    conv.fill(&mut buf, &mut source);
                    played.extend_from_slice(&buf);
                }
                // What is played for a second of device time took a second from the source
                // (less than one pull ahead: bounded latency).
                let frames = played.len() / usize::from(channels);
                let want = (frames as f64 * f64::from(SAMPLE_RATE) / f64::from(rate)) as i64;
                assert!(
                    (pulled as i64 - want).abs() <= PULL as i64 + 1024,
                    "{rate} Hz x{channels}: pulled {pulled} for {frames} frames"
                );
                // Every channel the same, never the 9.0 the buffers held before.
                for frame in played.chunks_exact(usize::from(channels)) {
                    assert!(frame.iter().all(|s| *s == frame[0] && s.abs() <= 1.0));
                }
                // Back to 48 kHz mono (the microphone's path, tested above), the tone is there
                // at 1 kHz, alone, at its level.
                let mut back = Vec::new();
                ToMono48k::new(rate, channels)
                    .unwrap()
                    .push(&played, &mut back);
                let steady = &back[9_600..40_000];
                let at = tone_strength(steady, 1000.0, 20.0);
                let off = tone_strength(steady, 1500.0, 20.0);
                assert!(at > 0.3, "{rate} Hz x{channels}: tone {at}");
                assert!(off < 0.05, "{rate} Hz x{channels}: elsewhere {off}");
                let peak = steady.iter().fold(0.0f32, |m, s| m.max(s.abs()));
                assert!(
                    (peak - 0.5).abs() < 0.05,
                    "{rate} Hz x{channels}: peak {peak}"
                );
            }
        }
    }
}
