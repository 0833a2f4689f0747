//! What we receive: one task per remote track. Audio goes through a jitter buffer to the
//! mixer and the application; video is reordered (NACKs for holes), put together into frames
//! ([`FrameAssembler`]) and decoded, with congestion feedback to the sender.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_shared::PeerId;
use tokio::sync::mpsc;

use super::send::Internal;
use super::CallEvent;
use crate::media::audio::{OpusDecoder, FRAME_SAMPLES};
use crate::media::devices::Mixer;
use crate::media::jitter::{JitterBuffer, Playout};
use crate::media::level::level_dbfs;
use crate::media::rate::CongestionDetector;
use crate::media::reorder::{Ordered, Reorder};
use crate::media::vp8::Vp8Decoder;
use crate::media::vp8_rtp::{Assembled, FrameAssembler};
use crate::rtc::{self, MediaKind, RemoteTrack, RtpPacket};

/// Plays one peer's audio: packets into a jitter buffer as they arrive, one 20 ms frame out
/// per 20 ms (decoded, FEC-recovered or concealed) to the mixer and the application, with
/// the peer's level every 100 ms (the actor picks the active speaker from it).
pub(super) async fn receive_audio(
    peer: PeerId,
    track: RemoteTrack,
    out: mpsc::Sender<CallEvent>,
    mixer: Option<Mixer>,
    internal: mpsc::Sender<Internal>,
) {
    let Ok(mut dec) = OpusDecoder::new() else {
        return;
    };
    let mut jitter = JitterBuffer::new(track.clock_rate().max(1));
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut frames = 0u64;
    let mut level_sum = 0f32;
    loop {
        let playout = tokio::select! {
            read = track.read() => {
                let Some(pkt) = read else { break };
                jitter.push(pkt.seq, pkt.timestamp, pkt.payload.to_vec(), Instant::now());
                continue;
            }
            _ = tick.tick() => jitter.pop(Instant::now()),
        };
        let decoded = match playout {
            Playout::Packet(p) => dec.decode(&p),
            Playout::Fec(next) => dec.recover(Some(&next)),
            Playout::Conceal => dec.recover(None),
            Playout::Silence => Ok(Vec::new()),
        };
        let mut samples = match decoded {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "undecodable audio");
                continue;
            }
        };
        samples.truncate(FRAME_SAMPLES * 6);
        // Levels (silence counts: it is what ends a talk spurt).
        frames += 1;
        level_sum += if samples.is_empty() {
            -100.0
        } else {
            level_dbfs(&samples)
        };
        if frames % 5 == 0 {
            let dbfs = level_sum / 5.0;
            level_sum = 0.0;
            let _ = internal
                .send(Internal::Level {
                    peer: peer.clone(),
                    dbfs,
                })
                .await;
        }
        if samples.is_empty() {
            continue;
        }
        if let Some(m) = &mixer {
            m.push(&peer.0, &samples);
        }
        if out
            .send(CallEvent::Audio {
                peer: peer.clone(),
                samples,
            })
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = internal.send(Internal::AudioEnded(peer)).await;
}

/// A video line that sends nothing for this long (a camera turned off, a share stopped, an
/// outage) gives its decoder back: a 720p VP8 decoder holds several reference frames (about
/// 10 MB with the reassembly buffer), and a receiver would otherwise keep one for every screen
/// anyone ever shared in the call. The sender restarts with a keyframe, so nothing is lost.
pub(super) const DECODER_IDLE: Duration = Duration::from_secs(3);

/// A receive task's decoder, opened on the first frame after a silence and counted while open
/// (`Call::video_decoders`).
struct DecoderSlot {
    dec: Option<Vp8Decoder>,
    open: Arc<AtomicU64>,
}

impl DecoderSlot {
    fn get(&mut self) -> Result<&mut Vp8Decoder, crate::media::vp8::VpxError> {
        let dec = match self.dec.take() {
            Some(dec) => dec,
            None => {
                let dec = Vp8Decoder::new()?;
                self.open.fetch_add(1, Ordering::Relaxed);
                dec
            }
        };
        Ok(self.dec.insert(dec))
    }

    /// Closes the decoder (its memory goes back to the OS); says whether one was open.
    fn release(&mut self) -> bool {
        let had = self.dec.take().is_some();
        if had {
            self.open.fetch_sub(1, Ordering::Relaxed);
            crate::media::release_freed_memory();
        }
        had
    }
}

impl Drop for DecoderSlot {
    fn drop(&mut self) {
        self.release();
    }
}

/// Reassembles VP8 frames from RTP, decodes them, and asks for a keyframe after a loss
/// instead of decoding garbage. The decoder is closed while the line is silent
/// ([`DECODER_IDLE`]).
pub(super) async fn receive_video(
    peer: PeerId,
    kind: MediaKind,
    track: RemoteTrack,
    link: Option<Arc<rtc::Link>>,
    out: mpsc::Sender<CallEvent>,
    decoders: Arc<AtomicU64>,
) {
    let mut dec = DecoderSlot {
        dec: None,
        open: decoders,
    };
    let ssrc = track.ssrc();
    let mut frames = FrameAssembler::default();
    // Hold out-of-order packets up to 300 ms so NACK retransmissions (the NACK interceptor
    // batches every 100 ms, then a round trip) can fill holes; only a loss costs this wait.
    let mut reorder = Reorder::new(Duration::from_millis(300), 1024);
    let mut congestion = CongestionDetector::default();
    let clock = track.clock_rate();
    loop {
        let pkt = match tokio::time::timeout(DECODER_IDLE, track.read()).await {
            Ok(Some(pkt)) => pkt,
            Ok(None) => break,
            Err(_silent) => {
                if dec.release() {
                    tracing::debug!(?kind, "video line silent: decoder closed");
                    frames.restart();
                }
                continue;
            }
        };
        let size = pkt.payload.len() + 12;
        let now = Instant::now();
        if let Some(c) = congestion.on_packet(pkt.seq, pkt.timestamp, clock, size, now) {
            tracing::debug!(?c, "congestion: asking the sender to slow down");
            if let Some(l) = &link {
                l.send_limit(ssrc, c.limit_kbps).await;
            }
        }
        let items = reorder.push(pkt.seq, pkt, now);
        let missing = reorder.to_nack(now);
        if let (false, Some(l)) = (missing.is_empty(), &link) {
            l.send_nack(ssrc, &missing).await;
        }
        for item in items {
            let pkt: RtpPacket = match item {
                Ordered::Gap => {
                    frames.gap();
                    continue;
                }
                Ordered::Packet(p) => p,
            };
            let frame = match frames.push(&pkt.payload, pkt.marker, now) {
                Assembled::Frame(f) => f,
                Assembled::AskKeyframe => {
                    if let Some(l) = &link {
                        tracing::debug!(?kind, "asking for a keyframe");
                        l.request_keyframe(ssrc).await;
                    }
                    continue;
                }
                Assembled::Pending | Assembled::Dropped => continue,
            };
            let dec = match dec.get() {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "no video decoder");
                    return;
                }
            };
            match dec.decode(&frame) {
                Ok(decoded) => {
                    for f in decoded {
                        let ev = CallEvent::Video {
                            peer: peer.clone(),
                            kind,
                            frame: Arc::new(f),
                        };
                        if out.send(ev).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "undecodable frame");
                    frames.decode_failed();
                }
            }
        }
    }
}
