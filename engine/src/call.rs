//! A call: the signaling [`Session`] plus one WebRTC [`Link`] per remote peer (a mesh; the
//! newcomer offers), local media senders, and decoders for what arrives. Everything the
//! application shows comes out as [`CallEvent`]s; commands go in through [`Call`]. A failing
//! peer never takes the call down: its link is closed and the others go on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parley_shared::signal::{ClientMsg, IceServer, ServerMsg};
use parley_shared::PeerId;
use tokio::sync::mpsc;

use crate::media::aec::VoiceProcessor;
use crate::media::audio::{OpusDecoder, OpusEncoder, Tone, FRAME_SAMPLES};
use crate::media::devices::{DeviceError, Mic, Mixer, Speaker};
use crate::media::frame::I420Frame;
use crate::media::rate::RateSet;
use crate::media::reorder::{Ordered, Reorder};
use crate::media::synthetic::SyntheticVideo;
use crate::media::vp8::{EncoderConfig, Vp8Decoder, Vp8Encoder};
use crate::rtc::{self, LinkEvent, LinkState, LocalTracks, MediaKind, RtcOptions, TrackRemote};
use crate::signaling::{Event, JoinOptions, Session, TokenSource};

/// Where outgoing video comes from.
#[derive(Clone, Debug)]
pub enum VideoSource {
    /// The moving, stamped test pattern.
    Synthetic,
}

/// Where outgoing audio comes from.
#[derive(Clone, Debug)]
pub enum AudioSource {
    /// A sine tone at this frequency (Hz).
    Tone(f32),
    /// A microphone (None: the system default).
    Device(Option<String>),
}

#[derive(Clone, Debug)]
pub struct CallConfig {
    pub camera: Option<VideoSource>,
    pub mic: Option<AudioSource>,
    /// Play what arrives on this speaker ("default" for the system default).
    pub speaker: Option<String>,
    /// Echo cancellation, noise suppression and gain control on a device microphone.
    pub voice_processing: bool,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video_kbps: u32,
    /// Decode what arrives (off: received media is read and dropped, costing no CPU).
    pub decode: bool,
    pub rtc: RtcOptions,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            camera: None,
            mic: None,
            speaker: None,
            voice_processing: true,
            width: 640,
            height: 480,
            fps: 30,
            video_kbps: 800,
            decode: true,
            rtc: RtcOptions::default(),
        }
    }
}

/// What the application sees.
#[derive(Clone, Debug)]
pub enum CallEvent {
    /// From the meeting (participants, chat, controls…).
    Signal(Event),
    /// The media connection to a peer changed state (`connected`, `failed`…).
    Link { peer: PeerId, state: String },
    /// A decoded video frame from a peer.
    Video {
        peer: PeerId,
        kind: MediaKind,
        frame: Arc<I420Frame>,
    },
    /// 20 ms of decoded audio from a peer (48 kHz mono).
    Audio { peer: PeerId, samples: Vec<f32> },
}

/// The audio devices a call holds open.
#[derive(Default)]
struct Devices {
    mic: Option<Mic>,
    speaker: Option<Speaker>,
}

/// Why a call could not start.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("webrtc: {0}")]
    Rtc(#[from] rtc::RtcError),
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// A running call. Dropping it leaves the meeting.
pub struct Call {
    /// Open microphone and speaker; dropped (closed) with the call.
    _devices: Devices,
    commands: mpsc::Sender<ClientMsg>,
    pub events: mpsc::Receiver<CallEvent>,
    camera_on: Arc<AtomicBool>,
    bitrate: Arc<AtomicU32>,
    sent_bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Call {
    pub fn start<T: TokenSource>(
        ws_url: String,
        tokens: T,
        join: JoinOptions,
        config: CallConfig,
    ) -> Result<Self, CallError> {
        let api = Arc::new(rtc::build_api(&config.rtc)?);
        let session = Session::start(ws_url, tokens, join);
        let (out, events) = mpsc::channel(1024);
        let (commands, cmd_rx) = mpsc::channel(64);
        let tracks = LocalTracks::new(&ulid::Ulid::new().to_string());
        let keyframe = Arc::new(AtomicBool::new(true));
        let bitrate = Arc::new(AtomicU32::new(config.video_kbps));
        let video_bitrate = bitrate.clone();
        let sent_packets = Arc::new(AtomicU64::new(0));
        let sent_bytes = Arc::new(AtomicU64::new(0));
        let video_bitrate_out = bitrate.clone();
        let camera_on = Arc::new(AtomicBool::new(config.camera.is_some()));
        let stop = Arc::new(AtomicBool::new(false));
        if let Some(VideoSource::Synthetic) = config.camera {
            tokio::spawn(send_video(
                tracks.clone(),
                config.clone(),
                keyframe.clone(),
                video_bitrate,
                sent_packets.clone(),
                sent_bytes.clone(),
                camera_on.clone(),
                stop.clone(),
            ));
        }
        let mut devices = Devices::default();
        let uses_mic = matches!(config.mic, Some(AudioSource::Device(_)));
        let voice = if config.voice_processing && uses_mic {
            Some(VoiceProcessor::new().map_err(|e| DeviceError::Audio(e.to_string()))?)
        } else {
            None
        };
        match &config.mic {
            Some(AudioSource::Tone(hz)) => {
                tokio::spawn(send_tone(tracks.clone(), *hz, stop.clone()));
            }
            Some(AudioSource::Device(name)) => {
                let (mic, frames) = Mic::start(name.as_deref(), voice.clone())?;
                devices.mic = Some(mic);
                tokio::spawn(send_mic(tracks.clone(), frames, stop.clone()));
            }
            None => {}
        }
        let mixer = match &config.speaker {
            Some(name) => {
                let mixer = Mixer::default();
                devices.speaker = Some(Speaker::start(Some(name), mixer.clone(), voice.clone())?);
                Some(mixer)
            }
            None => None,
        };
        let actor = Actor {
            api,
            tracks,
            session,
            out,
            links: HashMap::new(),
            ice_servers: Vec::new(),
            keyframe,
            decode: config.decode || mixer.is_some(),
            rtc: config.rtc.clone(),
            mixer,
            rates: RateSet::new(config.video_kbps, 50, config.video_kbps.max(50)),
            bitrate,
            sent_packets,
            loss: HashMap::new(),
        };
        tokio::spawn(actor.run(cmd_rx));
        Ok(Self {
            _devices: devices,
            commands,
            events,
            camera_on,
            bitrate: video_bitrate_out,
            sent_bytes,
            stop,
        })
    }

    /// Sends a chat message (delivered once, even across reconnects).
    pub async fn chat(&self, text: String) {
        let _ = self
            .commands
            .send(ClientMsg::Chat {
                client_msg_id: String::new(),
                text,
            })
            .await;
    }

    /// Sends a protocol message (hand, host controls…).
    pub async fn send(&self, msg: ClientMsg) {
        let _ = self.commands.send(msg).await;
    }

    /// The video encoder's current target (kbit/s), as the congestion controller set it.
    pub fn video_bitrate_kbps(&self) -> u32 {
        self.bitrate.load(Ordering::Relaxed)
    }

    /// Encoded video bytes sent so far (what the encoder produced, before RTP overhead).
    pub fn video_bytes_sent(&self) -> u64 {
        self.sent_bytes.load(Ordering::Relaxed)
    }

    /// Turns the camera off or on; no renegotiation (the camera line stays, silent).
    pub fn set_camera(&self, on: bool) {
        self.camera_on.store(on, Ordering::SeqCst);
    }

    pub async fn leave(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.commands.send(ClientMsg::Leave).await;
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
async fn send_video(
    tracks: LocalTracks,
    c: CallConfig,
    keyframe: Arc<AtomicBool>,
    bitrate: Arc<AtomicU32>,
    sent_packets: Arc<AtomicU64>,
    sent_bytes: Arc<AtomicU64>,
    on: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    let mut source = SyntheticVideo::new(c.width, c.height);
    let mut enc = match Vp8Encoder::new(EncoderConfig {
        width: c.width,
        height: c.height,
        fps: c.fps,
        bitrate_kbps: c.video_kbps,
    }) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "no video encoder");
            return;
        }
    };
    let period = Duration::from_secs(1) / c.fps.max(1);
    let mut last_key = tokio::time::Instant::now() - Duration::from_secs(1);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        if !on.load(Ordering::SeqCst) {
            keyframe.store(true, Ordering::SeqCst); // restart with a keyframe
            continue;
        }
        let want = bitrate.load(Ordering::Relaxed);
        if want != enc.bitrate_kbps() {
            let _ = enc.set_bitrate_kbps(want);
        }
        let frame = source.next_frame(now_ms());
        // Keyframes on request, but at most one a second: on a lossy or capped link every
        // keyframe is large, and a storm of them would starve the picture.
        let force = last_key.elapsed() >= Duration::from_millis(1000)
            && keyframe.swap(false, Ordering::SeqCst);
        if force {
            last_key = tokio::time::Instant::now();
        }
        match enc.encode(&frame, force) {
            Ok(out) => {
                for e in out {
                    // The packetizer cuts frames into ~1200-byte RTP packets.
                    sent_packets.fetch_add(e.data.len().div_ceil(1200) as u64, Ordering::Relaxed);
                    sent_bytes.fetch_add(e.data.len() as u64, Ordering::Relaxed);
                    tracks.write(MediaKind::Camera, e.data, period).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "encode failed"),
        }
    }
}

async fn send_tone(tracks: LocalTracks, hz: f32, stop: Arc<AtomicBool>) {
    let mut tone = Tone::new(hz, 0.3);
    let mut enc = match OpusEncoder::new(32_000) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "no audio encoder");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        if let Ok(packet) = enc.encode(&tone.next_frame()) {
            tracks
                .write(MediaKind::Audio, packet, Duration::from_millis(20))
                .await;
        }
    }
}

async fn send_mic(
    tracks: LocalTracks,
    mut frames: mpsc::Receiver<Vec<f32>>,
    stop: Arc<AtomicBool>,
) {
    let mut enc = match OpusEncoder::new(32_000) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "no audio encoder");
            return;
        }
    };
    while let Some(frame) = frames.recv().await {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(packet) = enc.encode(&frame) {
            tracks
                .write(MediaKind::Audio, packet, Duration::from_millis(20))
                .await;
        }
    }
}

struct Actor {
    api: Arc<webrtc::api::API>,
    tracks: LocalTracks,
    session: Session,
    out: mpsc::Sender<CallEvent>,
    links: HashMap<PeerId, Arc<rtc::Link>>,
    ice_servers: Vec<IceServer>,
    keyframe: Arc<AtomicBool>,
    decode: bool,
    rtc: RtcOptions,
    /// Where received audio is played, when a speaker is on.
    mixer: Option<Mixer>,
    /// Per-peer send-rate estimates; the shared video encoder follows the lowest.
    rates: RateSet<PeerId>,
    bitrate: Arc<AtomicU32>,
    /// Video packets sent so far (all peers get the same packets).
    sent_packets: Arc<AtomicU64>,
    /// Per peer, this second: the packets it NACKed (a packet is NACKed again every 100 ms
    /// until it arrives, so they are counted once each), and the worst receiver-report loss.
    loss: HashMap<PeerId, (std::collections::HashSet<u16>, u8)>,
}

impl Actor {
    async fn run(mut self, mut commands: mpsc::Receiver<ClientMsg>) {
        let (link_tx, mut link_rx) = mpsc::channel::<(PeerId, LinkEvent)>(256);
        let mut rate_tick = tokio::time::interval(Duration::from_secs(1));
        let mut sent_before = 0u64;
        loop {
            tokio::select! {
                _ = rate_tick.tick() => {
                    let sent = self.sent_packets.load(Ordering::Relaxed);
                    let period = sent.saturating_sub(sent_before).max(1);
                    sent_before = sent;
                    self.update_rates(period);
                }
                ev = self.session.events.recv() => {
                    let Some(ev) = ev else { break };
                    let closed = matches!(ev, Event::Closed(_));
                    if let Event::Server(msg) = &ev {
                        self.on_signal(msg, &link_tx).await;
                    }
                    let _ = self.out.send(CallEvent::Signal(ev)).await;
                    if closed {
                        break;
                    }
                }
                Some((peer, ev)) = link_rx.recv() => self.on_link(peer, ev).await,
                cmd = commands.recv() => match cmd {
                    Some(ClientMsg::Leave) | None => self.session.leave().await,
                    Some(ClientMsg::Chat { text, .. }) => { self.session.chat(text).await; }
                    Some(msg) => self.session.send(msg).await,
                },
            }
        }
        for (_, link) in self.links.drain() {
            link.close().await;
        }
    }

    async fn link(
        &mut self,
        peer: &PeerId,
        link_tx: &mpsc::Sender<(PeerId, LinkEvent)>,
    ) -> Option<Arc<rtc::Link>> {
        if let Some(l) = self.links.get(peer) {
            return Some(l.clone());
        }
        match rtc::Link::new(
            &self.api,
            &self.rtc,
            &self.ice_servers,
            &self.tracks,
            peer.clone(),
            link_tx.clone(),
        )
        .await
        {
            Ok(l) => {
                let l = Arc::new(l);
                self.links.insert(peer.clone(), l.clone());
                Some(l)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a peer connection");
                None
            }
        }
    }

    async fn on_signal(&mut self, msg: &ServerMsg, link_tx: &mpsc::Sender<(PeerId, LinkEvent)>) {
        match msg {
            ServerMsg::Welcome {
                participants,
                ice_servers,
                ..
            } => {
                self.ice_servers = ice_servers.clone();
                // The newcomer offers to everyone already there.
                for p in participants {
                    if self.links.contains_key(&p.peer_id) {
                        continue;
                    }
                    if let Some(link) = self.link(&p.peer_id, link_tx).await {
                        match link.offer(false).await {
                            Ok(sdp) => {
                                self.session
                                    .send(ClientMsg::Offer {
                                        to: p.peer_id.clone(),
                                        sdp,
                                    })
                                    .await
                            }
                            Err(e) => tracing::warn!(error = %e, "offer failed"),
                        }
                    }
                }
            }
            ServerMsg::Offer { from, sdp } => {
                if let Some(link) = self.link(from, link_tx).await {
                    match link.answer(sdp.clone()).await {
                        Ok(sdp) => {
                            self.session
                                .send(ClientMsg::Answer {
                                    to: from.clone(),
                                    sdp,
                                })
                                .await
                        }
                        Err(e) => tracing::warn!(error = %e, "answer failed"),
                    }
                }
            }
            ServerMsg::Answer { from, sdp } => {
                if let Some(link) = self.links.get(from) {
                    if let Err(e) = link.accept_answer(sdp.clone()).await {
                        tracing::warn!(error = %e, "answer refused");
                    }
                }
            }
            ServerMsg::Ice { from, candidate } => {
                if let Some(link) = self.links.get(from) {
                    link.add_ice(candidate.clone()).await;
                }
            }
            ServerMsg::PeerLeft { peer_id } => {
                if let Some(link) = self.links.remove(peer_id) {
                    link.close().await;
                }
                let kbps = self.rates.remove(peer_id);
                self.bitrate.store(kbps, Ordering::Relaxed);
                if let Some(m) = &self.mixer {
                    m.remove(&peer_id.0);
                }
            }
            _ => {}
        }
    }

    /// Once a second: each connected peer's loss (NACKed share of the video packets sent, or
    /// its receiver reports, whichever is worse) drives its rate estimate; the shared encoder
    /// follows the lowest. NACKs count loss before retransmission hides it.
    fn update_rates(&mut self, packets_sent: u64) {
        let peers: Vec<PeerId> = self.links.keys().cloned().collect();
        for peer in peers {
            let (nacked, rr) = self.loss.remove(&peer).unwrap_or_default();
            let nack_fraction = (nacked.len() as u64 * 256 / packets_sent).min(255) as u8;
            self.rates.on_report(peer, nack_fraction.max(rr));
        }
        self.bitrate.store(self.rates.target(), Ordering::Relaxed);
    }

    async fn on_link(&mut self, peer: PeerId, ev: LinkEvent) {
        match ev {
            LinkEvent::Ice(candidate) => {
                self.session
                    .send(ClientMsg::Ice {
                        to: peer,
                        candidate,
                    })
                    .await
            }
            LinkEvent::State(state) => {
                if state == LinkState::Connected {
                    // A new receiver needs a keyframe to start decoding.
                    self.keyframe.store(true, Ordering::SeqCst);
                }
                if state == LinkState::Failed {
                    if let Some(link) = self.links.remove(&peer) {
                        link.close().await;
                    }
                    let kbps = self.rates.remove(&peer);
                    self.bitrate.store(kbps, Ordering::Relaxed);
                }
                let _ = self
                    .out
                    .send(CallEvent::Link {
                        peer,
                        state: state.to_string(),
                    })
                    .await;
            }
            LinkEvent::KeyframeRequest => self.keyframe.store(true, Ordering::SeqCst),
            LinkEvent::Loss(fraction) => {
                let e = self.loss.entry(peer).or_default();
                e.1 = e.1.max(fraction);
            }
            LinkEvent::Nacked(seqs) => {
                self.loss.entry(peer).or_default().0.extend(seqs);
            }
            LinkEvent::Track(_, track) if !self.decode => {
                tokio::spawn(async move { while track.read_rtp().await.is_ok() {} });
            }
            LinkEvent::Track(kind, track) => {
                let link = self.links.get(&peer).cloned();
                let out = self.out.clone();
                match kind {
                    MediaKind::Audio => {
                        tokio::spawn(receive_audio(peer, track, out, self.mixer.clone()));
                    }
                    MediaKind::Camera | MediaKind::Screen => {
                        tokio::spawn(receive_video(peer, kind, track, link, out));
                    }
                }
            }
        }
    }
}

async fn receive_audio(
    peer: PeerId,
    track: Arc<TrackRemote>,
    out: mpsc::Sender<CallEvent>,
    mixer: Option<Mixer>,
) {
    let Ok(mut dec) = OpusDecoder::new() else {
        return;
    };
    let mut last_seq: Option<u16> = None;
    while let Ok((pkt, _)) = track.read_rtp().await {
        let seq = pkt.header.sequence_number;
        if let Some(prev) = last_seq {
            let gap = seq.wrapping_sub(prev);
            if gap == 0 || gap > 0x8000 {
                continue; // duplicate or late
            }
            // Lost packets: the first from this packet's FEC, the rest concealed.
            for i in 1..gap.min(10) {
                let fec = (i == gap - 1).then_some(&pkt.payload[..]);
                if let Ok(samples) = dec.recover(fec) {
                    let _ = out
                        .send(CallEvent::Audio {
                            peer: peer.clone(),
                            samples,
                        })
                        .await;
                }
            }
        }
        last_seq = Some(seq);
        match dec.decode(&pkt.payload) {
            Ok(samples) if !samples.is_empty() => {
                let samples = if samples.len() > FRAME_SAMPLES * 6 {
                    samples[..FRAME_SAMPLES * 6].to_vec()
                } else {
                    samples
                };
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
                    return;
                }
            }
            _ => {}
        }
    }
}

/// Reassembles VP8 frames from RTP (a frame ends at the marker bit), decodes them, and asks
/// for a keyframe after a loss instead of decoding garbage.
async fn receive_video(
    peer: PeerId,
    kind: MediaKind,
    track: Arc<TrackRemote>,
    link: Option<Arc<rtc::Link>>,
    out: mpsc::Sender<CallEvent>,
) {
    use webrtc::rtp::packetizer::Depacketizer as _;
    let Ok(mut dec) = Vp8Decoder::new() else {
        return;
    };
    let ssrc = track.ssrc();
    let mut buf: Vec<u8> = Vec::new();
    let mut broken = false;
    let mut need_keyframe = true;
    let mut last_pli = tokio::time::Instant::now() - Duration::from_secs(10);
    // Hold out-of-order packets up to 300 ms so NACK retransmissions (the NACK interceptor
    // batches every 100 ms, then a round trip) can fill holes; only a loss costs this wait.
    let mut reorder = Reorder::new(Duration::from_millis(300), 1024);
    while let Ok((pkt, _)) = track.read_rtp().await {
        let seq = pkt.header.sequence_number;
        for item in reorder.push(seq, pkt, std::time::Instant::now()) {
            let pkt = match item {
                Ordered::Gap => {
                    // A packet is gone for good: its frame is lost, and the frames after it
                    // reference it, so decoding resumes at the next keyframe.
                    broken = true;
                    need_keyframe = true;
                    continue;
                }
                Ordered::Packet(p) => p,
            };
            let mut vp8 = webrtc::rtp::codecs::vp8::Vp8Packet::default();
            let Ok(payload) = vp8.depacketize(&pkt.payload) else {
                broken = true;
                continue;
            };
            if vp8.s == 1 && vp8.pid == 0 {
                // Start of a new frame.
                buf.clear();
                broken = false;
            }
            buf.extend_from_slice(&payload);
            if !pkt.header.marker {
                continue;
            }
            let is_key = buf.first().is_some_and(|b| b & 1 == 0);
            if broken || (need_keyframe && !is_key) {
                need_keyframe = true;
                if last_pli.elapsed() > Duration::from_millis(1000) {
                    if let Some(l) = &link {
                        l.request_keyframe(ssrc).await;
                    }
                    last_pli = tokio::time::Instant::now();
                }
                buf.clear();
                continue;
            }
            match dec.decode(&buf) {
                Ok(frames) => {
                    need_keyframe = false;
                    for f in frames {
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
                    need_keyframe = true;
                }
            }
            buf.clear();
        }
    }
}
