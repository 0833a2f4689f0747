//! Media options of `join`, and the recorder of what arrives (`--record-dir`).

use std::io::Write as _;

use parley_engine::call::{AudioSource, CallConfig, CallEvent, VideoSource};
use parley_engine::room::Room;

use crate::exit::{Exit, Failure, Res};

/// `640x360@30` → (640, 360, 30): even sizes from 16×16 to 3840×2160, 1–60 fps.
pub fn parse_video_size(s: &str) -> Result<(u32, u32, u32), String> {
    let bad = || format!("{s:?}: use WIDTHxHEIGHT@FPS, like 640x360@30");
    let (size, fps) = s.split_once('@').ok_or_else(bad)?;
    let (w, h) = size.split_once('x').ok_or_else(bad)?;
    let (w, h, fps): (u32, u32, u32) = (
        w.parse().map_err(|_| bad())?,
        h.parse().map_err(|_| bad())?,
        fps.parse().map_err(|_| bad())?,
    );
    let even = |v: u32, max: u32| (16..=max).contains(&v) && v % 2 == 0;
    if !even(w, 3840) || !even(h, 2160) || !(1..=60).contains(&fps) {
        return Err(bad());
    }
    Ok((w, h, fps))
}

pub fn media_config(
    camera: Option<String>,
    mic: Option<String>,
    speaker: Option<String>,
    record_dir: Option<std::path::PathBuf>,
    loopback_only: bool,
    sharing: bool,
) -> Res<Option<(CallConfig, Option<Recorder>)>> {
    if camera.is_none() && mic.is_none() && speaker.is_none() && record_dir.is_none() && !sharing {
        return Ok(None);
    }
    let usage = |m: String| Failure::new(Exit::Usage, "invalid_media_source", m);
    let camera = match camera.as_deref() {
        None | Some("none") => None,
        Some("synthetic") => Some(VideoSource::Synthetic),
        Some("default") => Some(VideoSource::Camera(None)),
        Some(device) => Some(VideoSource::Camera(Some(device.to_string()))),
    };
    let mic = match mic.as_deref() {
        None | Some("none") => None,
        Some("default") => Some(AudioSource::Device(None)),
        Some(t) if t.starts_with("tone:") => {
            match t
                .strip_prefix("tone:")
                .and_then(|hz| hz.parse::<f32>().ok())
            {
                Some(hz) if (20.0..=20_000.0).contains(&hz) => Some(AudioSource::Tone(hz)),
                _ => return Err(usage(format!("mic {t:?}: use tone:HZ with HZ in 20-20000"))),
            }
        }
        Some(device) => Some(AudioSource::Device(Some(device.to_string()))),
    };
    let recorder = match record_dir {
        Some(dir) => Some(
            Recorder::new(dir)
                .map_err(|e| Failure::new(Exit::Local, "record_dir", e.to_string()))?,
        ),
        None => None,
    };
    let config = CallConfig {
        camera,
        mic,
        speaker,
        decode: recorder.is_some(),
        rtc: parley_engine::rtc::RtcOptions {
            loopback_only,
            ..Default::default()
        },
        ..CallConfig::default()
    };
    Ok(Some((config, recorder)))
}

/// Writes received media to a directory.
pub struct Recorder {
    dir: std::path::PathBuf,
    wavs: std::collections::HashMap<String, hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
    csv: std::io::LineWriter<std::fs::File>,
    count: std::collections::HashMap<String, u64>,
}

impl Recorder {
    pub fn new(dir: std::path::PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        // Line by line: tests and benchmarks read it while the call runs.
        let mut csv = std::io::LineWriter::new(std::fs::File::create(dir.join("frames.csv"))?);
        writeln!(csv, "peer,kind,frame,capture_ms,received_ms,width,height")?;
        Ok(Self {
            dir,
            wavs: Default::default(),
            csv,
            count: Default::default(),
        })
    }

    /// A file-name-safe label for a peer.
    fn label(peer: &parley_shared::PeerId, room: &Room) -> String {
        room.name(peer)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    pub fn record(&mut self, ev: CallEvent, room: &Room) {
        match ev {
            CallEvent::Audio { peer, samples } => {
                let label = Self::label(&peer, room);
                if !self.wavs.contains_key(&label) {
                    let spec = hound::WavSpec {
                        channels: 1,
                        sample_rate: parley_engine::media::audio::SAMPLE_RATE,
                        bits_per_sample: 16,
                        sample_format: hound::SampleFormat::Int,
                    };
                    match hound::WavWriter::create(self.dir.join(format!("{label}.wav")), spec) {
                        Ok(w) => {
                            self.wavs.insert(label.clone(), w);
                        }
                        Err(e) => return eprintln!("parley-cli: record: {e}"),
                    }
                }
                if let Some(w) = self.wavs.get_mut(&label) {
                    for s in samples {
                        let _ = w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16);
                    }
                }
            }
            CallEvent::Video { peer, kind, frame } => {
                let label = Self::label(&peer, room);
                let kind = kind.track_id();
                let stamp = parley_engine::media::synthetic::read_stamp(&frame);
                let received = parley_engine::clock::unix_ms();
                let _ = writeln!(
                    self.csv,
                    "{label},{kind},{},{},{received},{},{}",
                    stamp.map(|s| s.frame.to_string()).unwrap_or_default(),
                    stamp.map(|s| s.capture_ms.to_string()).unwrap_or_default(),
                    frame.width,
                    frame.height
                );
                let n = self.count.entry(format!("{label}-{kind}")).or_insert(0);
                if *n % 30 == 0 {
                    let path = self.dir.join(format!("{label}-{kind}-{n:06}.pgm"));
                    let mut bytes =
                        format!("P5\n{} {}\n255\n", frame.width, frame.height).into_bytes();
                    bytes.extend_from_slice(&frame.data[..(frame.width * frame.height) as usize]);
                    let _ = std::fs::write(path, bytes);
                }
                *n += 1;
            }
            _ => {}
        }
    }

    pub fn finish(&mut self) {
        let _ = self.csv.flush();
        for (_, w) in self.wavs.drain() {
            let _ = w.finalize();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_video_size;

    #[test]
    fn video_sizes_are_parsed_and_checked() {
        assert_eq!(parse_video_size("640x360@30"), Ok((640, 360, 30)));
        assert_eq!(parse_video_size("1280x720@15"), Ok((1280, 720, 15)));
        for bad in [
            "640x360",
            "640@30",
            "641x360@30",
            "8x8@30",
            "640x360@0",
            "axb@c",
            "",
        ] {
            assert!(parse_video_size(bad).is_err(), "{bad:?} accepted");
        }
    }
}
