//! [`super`] on webrtc's 0.21 line (the async layer over the sans-IO `rtc` core), built
//! with `--features webrtc-021` for the measurement in docs/decisions.md ("webrtc 0.17 or
//! 0.21"). The same public items as v017.rs, so the call core, the CLI and the app build
//! unchanged on either line.
//!
//! What differs underneath: a local track binds to one peer connection in 0.21, so every
//! link gets its own three tracks and [`LocalTracks`] writes each encoded frame to all of
//! them (encoded once, packetised per peer); RTCP about our tracks is read from the tracks
//! (`TrackLocal::poll`), RTCP we send goes out through the remote track it is about; a remote
//! track's line is the transceiver its receiver belongs to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parley_shared::signal::{IceCandidate, IceServer};
use parley_shared::PeerId;
use rtc021::media::Sample;
use rtc021::media_stream::MediaStreamTrack;
use rtc021::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc021::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc021::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc021::rtcp::receiver_report::ReceiverReport;
use rtc021::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};
use rtc021::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc021::rtp_transceiver::RTCRtpTransceiverId;
use tokio::sync::mpsc;
use webrtc021::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc021::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc021::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc021::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceConnectionState, RTCIceServer, RTCIceTransportPolicy,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};
use webrtc021::rtp_transceiver::{
    RTCRtpTransceiverDirection, RTCRtpTransceiverInit, RtpSender, RtpTransceiver,
};

use super::{LinkEvent, LinkState, MediaKind, Remote, RtcOptions, RtpPacket};

mod chain;
use chain::{gcc, media_and_interceptors, Estimator};

/// What the WebRTC stack refused (a description, a candidate, a connection).
#[derive(Debug, thiserror::Error)]
#[error("webrtc: {0}")]
pub struct RtcError(#[from] webrtc021::error::Error);

impl From<RTCPeerConnectionState> for LinkState {
    fn from(s: RTCPeerConnectionState) -> Self {
        match s {
            RTCPeerConnectionState::Connecting => LinkState::Connecting,
            RTCPeerConnectionState::Connected => LinkState::Connected,
            RTCPeerConnectionState::Disconnected => LinkState::Disconnected,
            RTCPeerConnectionState::Failed => LinkState::Failed,
            RTCPeerConnectionState::Closed => LinkState::Closed,
            _ => LinkState::New,
        }
    }
}

/// A remote peer's track on one of our media lines.
pub struct RemoteTrack {
    track: Arc<dyn TrackRemote>,
    ssrc: u32,
    clock_rate: u32,
}

impl RemoteTrack {
    /// The next packet; None once the track has ended.
    pub async fn read(&self) -> Option<RtpPacket> {
        loop {
            match self.track.poll().await? {
                TrackRemoteEvent::OnRtpPacket(pkt) => {
                    return Some(RtpPacket {
                        seq: pkt.header.sequence_number,
                        timestamp: pkt.header.timestamp,
                        marker: pkt.header.marker,
                        payload: pkt.payload,
                    })
                }
                TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => return None,
                _ => {}
            }
        }
    }

    /// The RTP clock rate of the negotiated codec (Hz).
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Reads and drops everything (so an unused track cannot back up the transport).
    pub fn drain(self) {
        tokio::spawn(async move { while self.read().await.is_some() {} });
    }
}

/// The WebRTC stack's configuration. 0.21 takes its media engine, interceptors and settings
/// by value for each peer connection, so they are made anew per link ([`Link::new`]).
pub struct Api;

const KINDS: [MediaKind; 3] = [MediaKind::Audio, MediaKind::Camera, MediaKind::Screen];

/// The codec each of our tracks is written in.
fn codec(kind: MediaKind) -> RTCRtpCodec {
    match kind {
        MediaKind::Audio => RTCRtpCodec {
            mime_type: "audio/opus".to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        MediaKind::Camera | MediaKind::Screen => RTCRtpCodec {
            mime_type: "video/VP8".to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
    }
}

/// Checks the configuration once (codecs and interceptors register).
pub fn build_api(opts: &RtcOptions) -> Result<Api, RtcError> {
    let _ = opts;
    media_and_interceptors(None)?;
    Ok(Api)
}

/// One medium's track on one link.
struct Outgoing {
    kind: MediaKind,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    sender: Arc<dyn RtpSender>,
    /// The negotiated payload type, looked up on the first frame after each negotiation
    /// (`u16::MAX`: not known).
    payload_type: AtomicU16,
}

impl Outgoing {
    async fn payload_type(&self) -> Option<u8> {
        let known = self.payload_type.load(Ordering::Relaxed);
        if known != u16::MAX {
            return Some(known as u8);
        }
        let mime = codec(self.kind).mime_type;
        let params = self.sender.get_parameters().await.ok()?;
        let pt = params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(&mime))?
            .payload_type;
        self.payload_type.store(u16::from(pt), Ordering::Relaxed);
        Some(pt)
    }
}

/// Our outgoing media, shared by every peer connection (each medium is encoded once and
/// written to every link's track).
#[derive(Clone, Default)]
pub struct LocalTracks {
    stream_id: String,
    links: Arc<std::sync::Mutex<Vec<Weak<Vec<Outgoing>>>>>,
}

impl LocalTracks {
    pub fn new(stream_id: &str) -> Self {
        Self {
            stream_id: stream_id.to_owned(),
            links: Default::default(),
        }
    }

    fn add(&self, link: &Arc<Vec<Outgoing>>) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links.retain(|l| l.strong_count() > 0);
        links.push(Arc::downgrade(link));
    }

    /// Sends one encoded frame (or Opus packet) of `kind` to every connected peer.
    pub async fn write(&self, kind: MediaKind, data: Vec<u8>, duration: Duration) {
        let links: Vec<Arc<Vec<Outgoing>>> = self
            .links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let sample = Sample {
            data: data.into(),
            duration,
            ..Sample::new(Instant::now())
        };
        for link in links {
            let Some(out) = link.iter().find(|o| o.kind == kind) else {
                continue;
            };
            let Some(pt) = out.payload_type().await else {
                continue;
            };
            if let Err(e) = out.track.write_sample(out.ssrc, pt, &sample, &[]).await {
                tracing::debug!(error = %e, ?kind, "sample not sent");
            }
        }
    }
}

pub(super) type Events = mpsc::Sender<(PeerId, LinkEvent)>;
type RemoteTracks = Arc<std::sync::Mutex<HashMap<u32, Arc<dyn TrackRemote>>>>;

/// The peer connection's callbacks, turned into [`LinkEvent`]s.
struct Handler {
    events: Events,
    peer: PeerId,
    /// Our transceivers by line, set once they exist (after the connection is built).
    lines: Arc<OnceLock<Vec<(MediaKind, RTCRtpTransceiverId)>>>,
    remote: RemoteTracks,
}

impl Handler {
    async fn send(&self, event: LinkEvent) {
        let _ = self.events.send((self.peer.clone(), event)).await;
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let Ok(init) = event.candidate.to_json() else {
            return;
        };
        self.send(LinkEvent::Ice(IceCandidate {
            candidate: init.candidate,
            sdp_mid: init.sdp_mid,
            sdp_mline_index: init.sdp_mline_index,
            username_fragment: init.username_fragment,
        }))
        .await;
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        self.send(LinkEvent::IceState(state.to_string())).await;
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.send(LinkEvent::State(state.into())).await;
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        // The track's first event names its receiver (so its line) and SSRC. Read off the
        // driver's task: the driver waits for this callback.
        let (events, peer, lines, remote) = (
            self.events.clone(),
            self.peer.clone(),
            Arc::clone(&self.lines),
            Arc::clone(&self.remote),
        );
        tokio::spawn(async move {
            let init = loop {
                match track.poll().await {
                    Some(TrackRemoteEvent::OnOpen(init)) => break init,
                    Some(TrackRemoteEvent::OnEnded) | None => return,
                    Some(_) => {}
                }
            };
            let transceiver = RTCRtpTransceiverId::from(init.receiver_id);
            let kind = lines
                .get()
                .and_then(|l| l.iter().find(|(_, id)| *id == transceiver))
                .map(|(kind, _)| *kind);
            let clock_rate = match track.codec(init.ssrc).await {
                Some(codec) => codec.clock_rate,
                None if kind == Some(MediaKind::Audio) => 48_000,
                None => 90_000,
            };
            remote
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(init.ssrc, Arc::clone(&track));
            let track = RemoteTrack {
                track,
                ssrc: init.ssrc,
                clock_rate,
            };
            match kind {
                Some(kind) => {
                    let _ = events.send((peer, LinkEvent::Track(kind, track))).await;
                }
                // A line beyond our three: nothing to show it in.
                None => {
                    tracing::info!("an extra media line is ignored");
                    track.drain();
                }
            }
        });
    }
}

/// One peer connection to one remote peer.
pub struct Link {
    pc: Box<dyn PeerConnection>,
    ours: Vec<(MediaKind, Arc<dyn RtpTransceiver>)>,
    outgoing: Arc<Vec<Outgoing>>,
    tracks: RemoteTracks,
    remote: Remote,
}

impl Link {
    pub async fn new(
        api: &Api,
        opts: &RtcOptions,
        ice_servers: &[IceServer],
        tracks: &LocalTracks,
        peer: PeerId,
        events: Events,
    ) -> Result<Self, RtcError> {
        let _ = api;
        let estimator = gcc().then(|| Estimator::new(peer.clone(), events.clone()));
        let (media, registry) = media_and_interceptors(estimator)?;
        let failed = opts.ice_failed_after.unwrap_or(Duration::from_secs(10));
        let disconnected = (failed / 2).min(Duration::from_secs(2));
        let mut settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc021::ice::mdns::MulticastDnsMode::Disabled)
            .with_network_types(vec![rtc021::ice::network_type::NetworkType::Udp4])
            .with_ice_timeouts(
                Some(disconnected),
                Some(failed - disconnected),
                Some(Duration::from_secs(1)),
            )
            .with_prflx_acceptance_min_wait(Some(Duration::ZERO));
        if opts.loopback_only {
            settings = settings.with_include_loopback_candidate(true);
        }
        let config = RTCConfigurationBuilder::new()
            .with_ice_servers(
                ice_servers
                    .iter()
                    .map(|s| RTCIceServer {
                        urls: s.urls.clone(),
                        username: s.username.clone().unwrap_or_default(),
                        credential: s.credential.clone().unwrap_or_default(),
                    })
                    .collect(),
            )
            .with_ice_transport_policy(if opts.relay_only {
                RTCIceTransportPolicy::Relay
            } else {
                RTCIceTransportPolicy::All
            })
            .build();
        let lines = Arc::new(OnceLock::new());
        let remote: RemoteTracks = Default::default();
        let handler = Handler {
            events: events.clone(),
            peer: peer.clone(),
            lines: Arc::clone(&lines),
            remote: Arc::clone(&remote),
        };
        let bind = if opts.loopback_only {
            "127.0.0.1:0"
        } else {
            "0.0.0.0:0"
        };
        let pc = PeerConnectionBuilder::new()
            .with_configuration(config)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings.build())
            .with_handler(Arc::new(handler))
            .with_udp_addrs(vec![bind])
            .build()
            .await?;
        let pc: Box<dyn PeerConnection> = Box::new(pc);

        let mut ours = Vec::new();
        let mut outgoing = Vec::new();
        for kind in KINDS {
            let ssrc: u32 = rand_ssrc();
            let codec = codec(kind);
            let media_kind = if kind == MediaKind::Audio {
                RtpCodecKind::Audio
            } else {
                RtpCodecKind::Video
            };
            let track = Arc::new(TrackLocalStaticSample::new(
                Instant::now(),
                MediaStreamTrack::new(
                    tracks.stream_id.clone(),
                    // Unique, not just "camera": 0.21 routes RTCP by track id and looks among
                    // the remote tracks first, so a peer whose track has the same id would
                    // receive the PLIs and receiver reports meant for ours.
                    format!("{}-{ssrc:08x}", kind.track_id()),
                    kind.track_id().to_owned(),
                    media_kind,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters {
                            ssrc: Some(ssrc),
                            ..Default::default()
                        },
                        codec,
                        active: true,
                        ..Default::default()
                    }],
                ),
            )?);
            let t = pc
                .add_transceiver_from_track(
                    Arc::clone(&track) as Arc<dyn TrackLocal>,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Sendrecv,
                        streams: vec![],
                        send_encodings: vec![],
                    }),
                )
                .await?;
            let sender = t.sender().await?.ok_or_else(|| {
                RtcError(webrtc021::error::Error::Other(
                    "transceiver has no sender".into(),
                ))
            })?;
            // Keep reading RTCP about our track: PLI/FIR, REMB and receiver reports.
            let (ev, p, reader) = (events.clone(), peer.clone(), Arc::clone(&track));
            tokio::spawn(async move {
                while let Some(event) = reader.poll().await {
                    let TrackLocalEvent::OnRtcpPacket(packets) = event else {
                        continue;
                    };
                    for pkt in packets {
                        let any = pkt.as_any();
                        if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
                            let _ = ev.send((p.clone(), LinkEvent::KeyframeRequest(kind))).await;
                        } else if let Some(remb) =
                            any.downcast_ref::<ReceiverEstimatedMaximumBitrate>()
                        {
                            let kbps = (remb.bitrate / 1000.0).max(1.0) as u32;
                            let _ = ev.send((p.clone(), LinkEvent::Limit(kind, kbps))).await;
                        } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                            for r in &rr.reports {
                                let _ =
                                    ev.send((p.clone(), LinkEvent::Loss(r.fraction_lost))).await;
                            }
                        }
                    }
                }
            });
            ours.push((kind, Arc::clone(&t)));
            outgoing.push(Outgoing {
                kind,
                track,
                ssrc,
                sender,
                payload_type: AtomicU16::new(u16::MAX),
            });
        }
        let _ = lines.set(ours.iter().map(|(k, t)| (*k, t.id())).collect());
        let outgoing = Arc::new(outgoing);
        tracks.add(&outgoing);
        Ok(Self {
            pc,
            ours,
            outgoing,
            tracks: remote,
            remote: Remote::new(),
        })
    }

    /// Creates the offer (optionally restarting ICE) and returns its SDP.
    pub async fn offer(&self, ice_restart: bool) -> Result<String, RtcError> {
        let opts = ice_restart.then_some(rtc021::peer_connection::configuration::RTCOfferOptions {
            ice_restart: true,
        });
        let offer = self.pc.create_offer(opts).await?;
        self.pc.set_local_description(offer.clone()).await?;
        Ok(offer.sdp)
    }

    /// Whether our line for `kind` has no m-line in the session yet (see rtc.rs).
    pub async fn lacks_line(&self, kind: MediaKind) -> bool {
        let Some((_, t)) = self.ours.iter().find(|(k, _)| *k == kind) else {
            return false;
        };
        self.pc.remote_description().await.is_some() && matches!(t.mid().await, Ok(None))
    }

    /// Whether `sdp` (an offer) comes from the same remote peer connection as this link's.
    pub async fn same_session(&self, sdp: &str) -> bool {
        self.remote.same_session(sdp)
    }

    fn remember_fingerprint(&self, sdp: &str) {
        self.remote.remember(sdp);
        for out in self.outgoing.iter() {
            out.payload_type.store(u16::MAX, Ordering::Relaxed);
        }
    }

    /// Takes the peer's offer and returns our answer's SDP.
    pub async fn answer(&self, sdp: String) -> Result<String, RtcError> {
        self.remember_fingerprint(&sdp);
        self.pc
            .set_remote_description(RTCSessionDescription::offer(sdp)?)
            .await?;
        self.flush_ice().await;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer.clone()).await?;
        Ok(answer.sdp)
    }

    pub async fn accept_answer(&self, sdp: String) -> Result<(), RtcError> {
        self.remember_fingerprint(&sdp);
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        self.flush_ice().await;
        Ok(())
    }

    async fn flush_ice(&self) {
        for c in self.remote.described() {
            self.add_now(c).await;
        }
    }

    async fn add_now(&self, c: IceCandidate) {
        if let Err(e) = self.pc.add_ice_candidate(ice_init(c)).await {
            tracing::debug!(error = %e, "ice candidate refused");
        }
    }

    /// Adds a remote candidate (held until the remote description is set).
    pub async fn add_ice(&self, c: IceCandidate) {
        if let Some(c) = self.remote.candidate(c) {
            self.add_now(c).await;
        }
    }

    fn remote_track(&self, ssrc: u32) -> Option<Arc<dyn TrackRemote>> {
        self.tracks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ssrc)
            .cloned()
    }

    async fn write_rtcp(&self, ssrc: u32, pkt: Box<dyn rtc021::rtcp::Packet>) {
        if let Some(track) = self.remote_track(ssrc) {
            let _ = track.write_rtcp(vec![pkt]).await;
        }
    }

    /// Asks the sender of `ssrc` to send these packets again (RTCP NACK).
    pub async fn send_nack(&self, ssrc: u32, seqs: &[u16]) {
        let nack = TransportLayerNack {
            sender_ssrc: 0,
            media_ssrc: ssrc,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        };
        self.write_rtcp(ssrc, Box::new(nack)).await;
    }

    /// Tells the sender of `ssrc` to send at most `kbps` (RTCP REMB).
    pub async fn send_limit(&self, ssrc: u32, kbps: u32) {
        let remb = ReceiverEstimatedMaximumBitrate {
            sender_ssrc: 0,
            bitrate: kbps as f32 * 1000.0,
            ssrcs: vec![ssrc],
        };
        self.write_rtcp(ssrc, Box::new(remb)).await;
    }

    /// Asks the sender of `ssrc` for a keyframe.
    pub async fn request_keyframe(&self, ssrc: u32) {
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        self.write_rtcp(ssrc, Box::new(pli)).await;
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

fn rand_ssrc() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    (h.finish() as u32).max(1)
}

fn ice_init(c: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_mline_index,
        username_fragment: c.username_fragment,
        ..Default::default()
    }
}
