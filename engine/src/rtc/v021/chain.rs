//! The interceptor chain of a 0.21 peer connection: codecs and the interceptors Parley uses,
//! the one that hands the call its RTCP, and GCC for the measurement with
//! `PARLEY_RTC021_GCC=1`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parley_shared::PeerId;
use rtc021::interceptor::{
    Attribute, BandwidthEstimator, EstimatorStats, Gcc, Interceptor, NackResponderBuilder,
    Packet as InterceptorPacket, PacketReport, Registry, Slot, StreamInfo, TaggedPacket,
};
use rtc021::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc021::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc021::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc021::rtcp::receiver_report::ReceiverReport;
use rtc021::rtp_transceiver::rtp_sender::{RTCPFeedback, RtpCodecKind};
use rtc021::sansio::Protocol;
use webrtc021::peer_connection::{
    configure_congestion_control, configure_rtcp_reports, configure_twcc_receiver_only,
    CongestionFeedback, MediaEngine,
};

use super::{Events, RtcError};
use crate::rtc::LinkEvent;

/// Default codecs; interceptors for RTCP reports, answering NACKs and TWCC feedback (the
/// same set as on 0.17: no NACK generator, the receive path asks itself).
pub(super) fn media_and_interceptors(
    estimator: Option<Estimator>,
) -> Result<(MediaEngine, Registry), RtcError> {
    let mut media = MediaEngine::default();
    media.register_default_codecs()?;
    for parameter in ["", "pli"] {
        media.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    let registry = Registry::new().with(Slot::NackResponder, NackResponderBuilder::new().build());
    let registry = configure_rtcp_reports(registry);
    let registry = match estimator {
        // Send-side GCC with its pacer (and the TWCC recorder serving the peer's estimate).
        Some(e) => configure_congestion_control(registry, e, CongestionFeedback::Twcc, &mut media)?,
        None => configure_twcc_receiver_only(registry, &mut media)?,
    };
    // Inbound RTCP ends inside the interceptor chain on 0.21 unless one marks it for the
    // application: application-most, after every interceptor has read it.
    let registry = registry.with(Slot::from(14_000), Feedback::default());
    Ok((media, registry))
}

/// `PARLEY_RTC021_GCC=1`: the rate comes from 0.21's send-side GCC (and its pacer paces what
/// leaves) instead of Parley's controller (media::rate). For the measurement only.
pub(super) fn gcc() -> bool {
    std::env::var_os("PARLEY_RTC021_GCC").is_some_and(|v| v == "1")
}

/// GCC, telling the call its target ([`LinkEvent::Estimate`]) whenever it moves by 5 % or a
/// second has passed. The estimator lives inside the interceptor chain, so it pushes.
pub(super) struct Estimator {
    gcc: Gcc,
    peer: PeerId,
    events: Events,
    told: Option<(u32, Instant)>,
}

impl Estimator {
    pub(super) fn new(peer: PeerId, events: Events) -> Self {
        Self {
            gcc: Gcc::new(300_000.0, 50_000.0, 5_000_000.0),
            peer,
            events,
            told: None,
        }
    }

    fn publish(&mut self, now: Instant) {
        let kbps = (self.gcc.target_bitrate() / 1000.0) as u32;
        let stale = self.told.is_none_or(|(k, t)| {
            k.abs_diff(kbps) * 20 > k || now.saturating_duration_since(t) >= Duration::from_secs(1)
        });
        if stale
            && self
                .events
                .try_send((self.peer.clone(), LinkEvent::Estimate(kbps)))
                .is_ok()
        {
            self.told = Some((kbps, now));
        }
    }
}

impl BandwidthEstimator for Estimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.gcc.on_reports(now, reports);
        self.publish(now);
    }

    fn target_bitrate(&self) -> f64 {
        self.gcc.target_bitrate()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
        self.publish(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

/// Marks the RTCP the call acts on for the application: keyframe requests, receiver
/// reports (loss) and REMB (a receiver's ceiling). Everything else stays in the chain.
#[derive(Default)]
struct Feedback {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

fn for_the_call(pkt: &dyn rtc021::rtcp::Packet) -> bool {
    let any = pkt.as_any();
    any.is::<PictureLossIndication>()
        || any.is::<FullIntraRequest>()
        || any.is::<ReceiverReport>()
        || any.is::<ReceiverEstimatedMaximumBitrate>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for Feedback {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc021::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let InterceptorPacket::Rtcp(packets) = &msg.message.packet {
            let keep: Vec<Box<dyn rtc021::rtcp::Packet>> = packets
                .iter()
                .filter(|p| for_the_call(p.as_ref()))
                .cloned()
                .collect();
            if keep.is_empty() {
                return Ok(());
            }
            msg.message.packet = InterceptorPacket::Rtcp(keep);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for Feedback {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}
