//! [`super`] on webrtc 0.17: peer connections with three transceivers from the start (audio,
//! camera, screen) so media toggles never renegotiate, trickle ICE, RTCP read on every sender
//! (PLI/FIR become keyframe requests, receiver reports loss figures, REMB a receiver's rate
//! ceiling).

use std::sync::{Arc, Weak};
use std::time::Duration;

use parley_shared::signal::{IceCandidate, IceServer};
use parley_shared::PeerId;

use super::{LinkEvent, LinkState, MediaKind, Remote, RtcOptions, RtpPacket};
use tokio::sync::mpsc;
use webrtc::api::interceptor_registry::{configure_rtcp_reports, configure_twcc_receiver_only};
use webrtc::api::media_engine::{MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{APIBuilder, API};
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice_transport::ice_candidate::{RTCIceCandidate, RTCIceCandidateInit};
use webrtc::ice_transport::ice_gathering_state::RTCIceGatheringState;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::interceptor::nack::responder::Responder;
use webrtc::interceptor::registry::Registry;
use webrtc::media::Sample;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use webrtc::rtcp::receiver_report::ReceiverReport;
use webrtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::rtp_transceiver::RTCPFeedback;
use webrtc::rtp_transceiver::{RTCRtpTransceiver, RTCRtpTransceiverInit};
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::track::track_local::TrackLocal;

use webrtc::track::track_remote::TrackRemote;

/// What the WebRTC stack refused (a description, a candidate, a connection).
#[derive(Debug, thiserror::Error)]
#[error("webrtc: {0}")]
pub struct RtcError(#[from] webrtc::Error);

impl From<RTCPeerConnectionState> for LinkState {
    fn from(s: RTCPeerConnectionState) -> Self {
        match s {
            RTCPeerConnectionState::Unspecified | RTCPeerConnectionState::New => LinkState::New,
            RTCPeerConnectionState::Connecting => LinkState::Connecting,
            RTCPeerConnectionState::Connected => LinkState::Connected,
            RTCPeerConnectionState::Disconnected => LinkState::Disconnected,
            RTCPeerConnectionState::Failed => LinkState::Failed,
            RTCPeerConnectionState::Closed => LinkState::Closed,
        }
    }
}

/// A remote peer's track on one of our media lines.
pub struct RemoteTrack(Arc<TrackRemote>);

impl RemoteTrack {
    /// The next packet; None once the track has ended.
    pub async fn read(&self) -> Option<RtpPacket> {
        let (pkt, _) = self.0.read_rtp().await.ok()?;
        Some(RtpPacket {
            seq: pkt.header.sequence_number,
            timestamp: pkt.header.timestamp,
            marker: pkt.header.marker,
            payload: pkt.payload,
        })
    }

    /// The RTP clock rate of the negotiated codec (Hz).
    pub fn clock_rate(&self) -> u32 {
        self.0.codec().capability.clock_rate
    }

    pub fn ssrc(&self) -> u32 {
        self.0.ssrc()
    }

    /// Reads and drops everything (so an unused track cannot back up the transport).
    pub fn drain(self) {
        tokio::spawn(async move { while self.0.read_rtp().await.is_ok() {} });
    }
}

/// Packets each outgoing stream keeps for answering NACKs: 2^10 = 1,024, 6 s of a 1.5 Mbit/s
/// screen and half a minute of a small camera, where a retransmission is only useful within
/// ~1 s (the receiver gives a hole up after 300 ms, asks twice). The library's default,
/// 8,192, held ~8 MB of packets per outgoing track once full: the call soak saw a four-person call
/// grow 8 MB a minute for its first minutes for that alone.
const NACK_HISTORY_LOG2: u8 = 10;

/// How long a closed connection may finish gathering before it is closed anyway (a TURN
/// allocation gives up after ~40 s of retransmissions).
const GATHERING_LIMIT: Duration = Duration::from_secs(45);

/// The WebRTC stack's shared configuration (codecs, interceptors, network settings).
pub struct Api(API);

/// Builds the `webrtc` API object: default codecs, interceptors for RTCP reports, answering
/// NACKs and TWCC feedback; mDNS off, UDP over IPv4.
pub fn build_api(opts: &RtcOptions) -> Result<Api, RtcError> {
    let mut media = MediaEngine::default();
    media.register_default_codecs()?;
    // The defaults minus the NACK generator: it asks for every missing packet every 100 ms
    // until it comes, which on a congested link becomes a retransmission storm. The receive
    // path asks itself, twice at most (media::reorder); the responder answers the peer's asks.
    for parameter in ["", "pli"] {
        media.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RTPCodecType::Video,
        );
    }
    let mut registry = Registry::new();
    registry.add(Box::new(
        Responder::builder().with_log2_size(NACK_HISTORY_LOG2),
    ));
    let registry = configure_rtcp_reports(registry);
    let registry = configure_twcc_receiver_only(registry, &mut media)?;
    let mut settings = SettingEngine::default();
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    settings.set_network_types(vec![NetworkType::Udp4]);
    let failed = opts.ice_failed_after.unwrap_or(Duration::from_secs(10));
    let disconnected = (failed / 2).min(Duration::from_secs(2));
    settings.set_ice_timeouts(
        Some(disconnected),
        Some(failed - disconnected),
        Some(Duration::from_secs(1)),
    );
    // A pair found through a peer's check (peer-reflexive: its candidate had not been
    // trickled to us yet) is as good as the host pair it usually is; the library's default
    // made such a pair wait a second before it could be chosen (the join benchmark saw ICE
    // take ~1 s instead of ~60 ms in half the joins).
    settings.set_prflx_acceptance_min_wait(Some(Duration::ZERO));
    if opts.loopback_only {
        settings.set_include_loopback_candidate(true);
        settings.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    }
    Ok(Api(APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build()))
}

/// Our outgoing tracks, shared by every peer connection (each medium is encoded once).
#[derive(Clone)]
pub struct LocalTracks {
    audio: Arc<TrackLocalStaticSample>,
    camera: Arc<TrackLocalStaticSample>,
    screen: Arc<TrackLocalStaticSample>,
}

impl LocalTracks {
    pub fn new(stream_id: &str) -> Self {
        let cap = |mime: &str| RTCRtpCodecCapability {
            mime_type: mime.to_owned(),
            ..Default::default()
        };
        let track = |mime: &str, kind: MediaKind| {
            Arc::new(TrackLocalStaticSample::new(
                cap(mime),
                kind.track_id().to_owned(),
                stream_id.to_owned(),
            ))
        };
        Self {
            audio: track(MIME_TYPE_OPUS, MediaKind::Audio),
            camera: track(MIME_TYPE_VP8, MediaKind::Camera),
            screen: track(MIME_TYPE_VP8, MediaKind::Screen),
        }
    }

    /// Sends one encoded frame (or Opus packet) of `kind` to every connected peer.
    pub async fn write(&self, kind: MediaKind, data: Vec<u8>, duration: Duration) {
        let track = match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Camera => &self.camera,
            MediaKind::Screen => &self.screen,
        };
        let sample = Sample {
            data: data.into(),
            duration,
            ..Default::default()
        };
        if let Err(e) = track.write_sample(&sample).await {
            tracing::debug!(error = %e, ?kind, "sample not sent");
        }
    }
}

/// One peer connection to one remote peer.
pub struct Link {
    pc: Arc<RTCPeerConnection>,
    /// Our three transceivers (audio, camera, screen), to tell which have a negotiated line.
    ours: Vec<(MediaKind, Weak<RTCRtpTransceiver>)>,
    remote: Remote,
}

impl Link {
    pub async fn new(
        api: &Api,
        opts: &RtcOptions,
        ice_servers: &[IceServer],
        tracks: &LocalTracks,
        peer: PeerId,
        events: mpsc::Sender<(PeerId, LinkEvent)>,
    ) -> Result<Self, RtcError> {
        let config = RTCConfiguration {
            ice_servers: ice_servers
                .iter()
                .map(|s| RTCIceServer {
                    urls: s.urls.clone(),
                    username: s.username.clone().unwrap_or_default(),
                    credential: s.credential.clone().unwrap_or_default(),
                })
                .collect(),
            ice_transport_policy: if opts.relay_only {
                webrtc::peer_connection::policy::ice_transport_policy::RTCIceTransportPolicy::Relay
            } else {
                Default::default()
            },
            ..Default::default()
        };
        let pc = Arc::new(api.0.new_peer_connection(config).await?);
        // Which transceiver carries what: remote media is known by the line it was
        // negotiated on (each of ours is matched to the remote's lines by kind, in order),
        // never by the track ids another WebRTC stack chose.
        let mut lines: Vec<(MediaKind, Weak<RTCRtpTransceiver>)> = Vec::new();
        for (kind, track) in [
            (MediaKind::Audio, &tracks.audio),
            (MediaKind::Camera, &tracks.camera),
            (MediaKind::Screen, &tracks.screen),
        ] {
            let t = pc
                .add_transceiver_from_track(
                    Arc::clone(track) as Arc<dyn TrackLocal + Send + Sync>,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Sendrecv,
                        send_encodings: vec![],
                    }),
                )
                .await?;
            lines.push((kind, Arc::downgrade(&t)));
            // Keep reading RTCP: without it NACK and PLI do nothing.
            let sender = t.sender().await;
            let (ev, p) = (events.clone(), peer.clone());
            tokio::spawn(async move {
                while let Ok((packets, _)) = sender.read_rtcp().await {
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
        }
        let (ev, p) = (events.clone(), peer.clone());
        pc.on_ice_candidate(Box::new(move |c: Option<RTCIceCandidate>| {
            let (ev, p) = (ev.clone(), p.clone());
            Box::pin(async move {
                let Some(init) = c.and_then(|c| c.to_json().ok()) else {
                    return;
                };
                let cand = IceCandidate {
                    candidate: init.candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_mline_index: init.sdp_mline_index,
                    username_fragment: init.username_fragment,
                };
                let _ = ev.send((p, LinkEvent::Ice(cand))).await;
            })
        }));
        let (ev, p) = (events.clone(), peer.clone());
        pc.on_ice_connection_state_change(Box::new(
            move |s: webrtc::ice_transport::ice_connection_state::RTCIceConnectionState| {
                let (ev, p) = (ev.clone(), p.clone());
                Box::pin(async move {
                    let _ = ev.send((p, LinkEvent::IceState(s.to_string()))).await;
                })
            },
        ));
        let (ev, p) = (events.clone(), peer.clone());
        pc.on_peer_connection_state_change(Box::new(move |s: RTCPeerConnectionState| {
            let (ev, p) = (ev.clone(), p.clone());
            Box::pin(async move {
                let _ = ev.send((p, LinkEvent::State(s.into()))).await;
            })
        }));
        let ours = lines.clone();
        let (ev, p) = (events, peer);
        pc.on_track(Box::new(move |track, _receiver, transceiver| {
            let (ev, p) = (ev.clone(), p.clone());
            let kind = lines
                .iter()
                .find(|(_, t)| t.upgrade().is_some_and(|t| Arc::ptr_eq(&t, &transceiver)))
                .map(|(kind, _)| *kind);
            Box::pin(async move {
                match kind {
                    Some(kind) => {
                        let _ = ev
                            .send((p, LinkEvent::Track(kind, RemoteTrack(track))))
                            .await;
                    }
                    // A line beyond our three (a third video, a second audio): nothing to
                    // show it in. Read and dropped so it cannot back up the transport.
                    None => {
                        tracing::info!(kind = %track.kind(), "an extra media line is ignored");
                        RemoteTrack(track).drain();
                    }
                }
            })
        }));
        Ok(Self {
            pc,
            ours,
            remote: Remote::new(),
        })
    }

    /// Creates the offer (optionally restarting ICE) and returns its SDP.
    pub async fn offer(&self, ice_restart: bool) -> Result<String, RtcError> {
        let opts = ice_restart.then_some(
            webrtc::peer_connection::offer_answer_options::RTCOfferOptions {
                ice_restart: true,
                ..Default::default()
            },
        );
        let offer = self.pc.create_offer(opts).await?;
        self.pc.set_local_description(offer.clone()).await?;
        Ok(offer.sdp)
    }

    /// Whether our line for `kind` has no m-line in the session yet: the peer's offer had
    /// fewer lines than we send (another WebRTC stack with one video line, say). Our own
    /// offer adds it.
    pub async fn lacks_line(&self, kind: MediaKind) -> bool {
        let t = self
            .ours
            .iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, t)| t.upgrade());
        match t {
            Some(t) => self.pc.remote_description().await.is_some() && t.mid().is_none(),
            None => false,
        }
    }

    /// Whether `sdp` (an offer) comes from the same remote peer connection as this link's.
    pub async fn same_session(&self, sdp: &str) -> bool {
        self.remote.same_session(sdp)
    }

    fn remember_fingerprint(&self, sdp: &str) {
        self.remote.remember(sdp);
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

    /// Asks the sender of `ssrc` to send these packets again (RTCP NACK).
    pub async fn send_nack(&self, ssrc: u32, seqs: &[u16]) {
        let nack = TransportLayerNack {
            sender_ssrc: 0,
            media_ssrc: ssrc,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        };
        let _ = self.pc.write_rtcp(&[Box::new(nack)]).await;
    }

    /// Tells the sender of `ssrc` to send at most `kbps` (RTCP REMB).
    pub async fn send_limit(&self, ssrc: u32, kbps: u32) {
        let remb = ReceiverEstimatedMaximumBitrate {
            sender_ssrc: 0,
            bitrate: kbps as f32 * 1000.0,
            ssrcs: vec![ssrc],
        };
        let _ = self.pc.write_rtcp(&[Box::new(remb)]).await;
    }

    /// Asks the sender of `ssrc` for a keyframe.
    pub async fn request_keyframe(&self, ssrc: u32) {
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        let _ = self.pc.write_rtcp(&[Box::new(pli)]).await;
    }

    /// Closes the connection. One still gathering candidates (an ICE restart during an
    /// outage: its TURN allocation waits for the relay) is silenced now and closed when its
    /// gathering ends: webrtc-ice adds a relay candidate whose allocation completes after
    /// its agent closed and never closes it, keeping its socket, TURN client and agent alive
    /// (the call soak: 18 descriptors after five outages).
    pub async fn close(&self) {
        if self.pc.ice_gathering_state() != RTCIceGatheringState::Gathering {
            let _ = self.pc.close().await;
            return;
        }
        self.pc.on_ice_candidate(Box::new(|_| Box::pin(async {})));
        self.pc
            .on_ice_connection_state_change(Box::new(|_| Box::pin(async {})));
        self.pc
            .on_peer_connection_state_change(Box::new(|_| Box::pin(async {})));
        self.pc.on_track(Box::new(|_, _, _| Box::pin(async {})));
        let pc = Arc::clone(&self.pc);
        tokio::spawn(async move {
            let mut done = pc.gathering_complete_promise().await;
            let _ = tokio::time::timeout(GATHERING_LIMIT, done.recv()).await;
            let _ = pc.close().await;
        });
    }
}

fn ice_init(c: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_mline_index,
        username_fragment: c.username_fragment,
    }
}
