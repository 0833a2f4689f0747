//! The call's actor: the one task that owns the signaling session, the peer connections and
//! the capture threads' handles. It turns what happens into [`Input`]s for the core and
//! carries the core's [`Effect`]s out; it decides nothing itself.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_shared::signal::{ClientMsg, IceServer, ServerMsg};
use parley_shared::PeerId;
use tokio::sync::{mpsc, oneshot, watch};

use super::core::{CallCore, CallState, Effect, Input, VideoCommand};
use super::receive::{receive_audio, receive_video};
use super::send::{Internal, VideoHandle};
use super::CallEvent;
use crate::media::devices::Mixer;
use crate::rtc::{self, LinkEvent, LocalTracks, MediaKind, RtcOptions};
use crate::signaling::{Event, Session};

/// What the [`super::Call`] handle asks; those with a reply are answered once carried out.
pub(super) enum Command {
    Send(ClientMsg),
    Chat {
        client_msg_id: String,
        text: String,
    },
    Leave,
    SetMic(bool, oneshot::Sender<()>),
    SetCamera(bool, oneshot::Sender<()>),
    /// A capture thread is running: use it (replacing the line's old one).
    Video(VideoHandle, oneshot::Sender<()>),
    StopScreen(oneshot::Sender<()>),
}

pub(super) struct Actor {
    pub core: CallCore,
    pub api: Arc<rtc::Api>,
    pub rtc: RtcOptions,
    pub tracks: LocalTracks,
    pub session: Session,
    pub out: mpsc::Sender<CallEvent>,
    /// Given to receive tasks.
    pub internal: mpsc::Sender<Internal>,
    /// The microphone switch, as the audio senders follow it.
    pub mic: watch::Sender<bool>,
    /// What the application reads.
    pub state: watch::Sender<CallState>,
    /// Decode what arrives (else read and drop it).
    pub decode: bool,
    /// Where received audio is played, when a speaker is on.
    pub mixer: Option<Mixer>,
    /// Capture threads already running when the call starts.
    pub initial_video: Vec<VideoHandle>,
    /// Video decoders open in the receive tasks (`Call::video_decoders`).
    pub decoders: Arc<AtomicU64>,
}

struct Io {
    links: HashMap<PeerId, Arc<rtc::Link>>,
    link_tx: mpsc::Sender<(PeerId, LinkEvent)>,
    video: HashMap<MediaKind, VideoHandle>,
    ice_servers: Vec<IceServer>,
}

impl Actor {
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut internal: mpsc::Receiver<Internal>,
    ) {
        let (link_tx, mut link_rx) = mpsc::channel::<(PeerId, LinkEvent)>(256);
        let mut io = Io {
            links: HashMap::new(),
            link_tx,
            video: HashMap::new(),
            ice_servers: Vec::new(),
        };
        for handle in std::mem::take(&mut self.initial_video) {
            let input = Input::VideoStarted {
                kind: handle.kind,
                id: handle.id,
            };
            io.video.insert(handle.kind, handle);
            self.apply(&mut io, input).await;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => self.apply(&mut io, Input::Tick).await,
                ev = self.session.events.recv() => {
                    let Some(ev) = ev else { break };
                    let closed = matches!(ev, Event::Closed(_));
                    if let Event::Server(msg) = &ev {
                        self.on_signal(&mut io, msg).await;
                    }
                    let _ = self.out.send(CallEvent::Signal(ev)).await;
                    if closed {
                        break;
                    }
                }
                Some((peer, ev)) = link_rx.recv() => self.on_link(&mut io, peer, ev).await,
                Some(msg) = internal.recv() => {
                    let input = match msg {
                        Internal::VideoEnded { kind, id, error } => Input::VideoEnded { kind, id, error },
                        Internal::Level { peer, dbfs } => Input::AudioLevel { peer, dbfs },
                        Internal::AudioEnded(peer) => Input::AudioEnded(peer),
                    };
                    self.apply(&mut io, input).await;
                }
                cmd = commands.recv() => match cmd {
                    Some(Command::Leave) | None => self.session.leave().await,
                    Some(Command::Chat { client_msg_id, text }) => {
                        self.session.chat_as(client_msg_id, text).await;
                    }
                    Some(Command::Send(msg)) => self.session.send(msg).await,
                    Some(Command::SetMic(on, reply)) => {
                        self.apply(&mut io, Input::SetMic(on)).await;
                        let _ = reply.send(());
                    }
                    Some(Command::SetCamera(on, reply)) => {
                        self.apply(&mut io, Input::SetCamera(on)).await;
                        let _ = reply.send(());
                    }
                    Some(Command::Video(handle, reply)) => {
                        let input = Input::VideoStarted { kind: handle.kind, id: handle.id };
                        if let Some(old) = io.video.insert(handle.kind, handle) {
                            old.tell(VideoCommand::Stop);
                        }
                        self.apply(&mut io, input).await;
                        let _ = reply.send(());
                    }
                    Some(Command::StopScreen(reply)) => {
                        self.apply(&mut io, Input::StopScreen).await;
                        let _ = reply.send(());
                    }
                },
            }
        }
        for (_, link) in io.links.drain() {
            link.close().await;
        }
    }

    /// Feeds the core and carries out what it decides (and what that leads to).
    async fn apply(&mut self, io: &mut Io, input: Input) {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            for effect in self.core.handle(input, Instant::now()) {
                if let Some(next) = self.execute(io, effect).await {
                    inputs.push_back(next);
                }
            }
        }
        let state = self.core.state();
        self.state.send_if_modified(|s| {
            let changed = *s != state;
            *s = state;
            changed
        });
    }

    async fn execute(&mut self, io: &mut Io, effect: Effect) -> Option<Input> {
        match effect {
            Effect::Send(msg) => self.session.send(msg).await,
            Effect::NewLink { peer, .. } => {
                if let Some(old) = io.links.remove(&peer) {
                    old.close().await;
                }
                match rtc::Link::new(
                    &self.api,
                    &self.rtc,
                    &io.ice_servers,
                    &self.tracks,
                    peer.clone(),
                    io.link_tx.clone(),
                )
                .await
                {
                    Ok(link) => {
                        io.links.insert(peer, Arc::new(link));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot create a peer connection");
                        return Some(Input::LinkUnavailable(peer));
                    }
                }
            }
            Effect::Offer { peer, ice_restart } => {
                let link = io.links.get(&peer)?;
                match link.offer(ice_restart).await {
                    Ok(sdp) => self.session.send(ClientMsg::Offer { to: peer, sdp }).await,
                    Err(e) => tracing::warn!(error = %e, "offer failed"),
                }
            }
            Effect::AddLine { peer, kind } => {
                let link = io.links.get(&peer)?;
                if link.lacks_line(kind).await {
                    tracing::info!(?kind, "offering a line the peer's offer did not have");
                    match link.offer(false).await {
                        Ok(sdp) => self.session.send(ClientMsg::Offer { to: peer, sdp }).await,
                        Err(e) => tracing::warn!(error = %e, "offer failed"),
                    }
                }
            }
            Effect::Answer { peer, sdp } => {
                let link = io.links.get(&peer)?;
                match link.answer(sdp).await {
                    Ok(sdp) => self.session.send(ClientMsg::Answer { to: peer, sdp }).await,
                    Err(e) => tracing::warn!(error = %e, "answer failed"),
                }
            }
            Effect::CloseLink(peer) => {
                if let Some(link) = io.links.remove(&peer) {
                    link.close().await;
                }
            }
            Effect::Video { kind, cmd } => {
                if let Some(handle) = io.video.get(&kind) {
                    handle.tell(cmd);
                }
                if cmd == VideoCommand::Stop {
                    io.video.remove(&kind);
                }
            }
            Effect::Mic(on) => {
                self.mic.send_replace(on);
            }
            Effect::PeerGone(peer) => {
                if let Some(m) = &self.mixer {
                    m.remove(&peer.0);
                }
            }
            Effect::Emit(ev) => match ev {
                // Figures the application may skip when it is behind.
                CallEvent::Quality { .. } | CallEvent::AudioLevel { .. } => {
                    let _ = self.out.try_send(ev);
                }
                ev => {
                    let _ = self.out.send(ev).await;
                }
            },
        }
        None
    }

    async fn on_signal(&mut self, io: &mut Io, msg: &ServerMsg) {
        match msg {
            ServerMsg::Welcome {
                peer_id,
                participants,
                ice_servers,
                ..
            } => {
                io.ice_servers = ice_servers.clone();
                let input = Input::Welcome {
                    me: peer_id.clone(),
                    participants: participants.iter().map(|p| p.peer_id.clone()).collect(),
                };
                self.apply(io, input).await;
            }
            ServerMsg::Offer { from, sdp } => {
                let same_session = match io.links.get(from) {
                    Some(l) => l.same_session(sdp).await,
                    None => false,
                };
                let input = Input::Offer {
                    from: from.clone(),
                    sdp: sdp.clone(),
                    same_session,
                };
                self.apply(io, input).await;
            }
            ServerMsg::Answer { from, sdp } => {
                if let Some(l) = io.links.get(from) {
                    if let Err(e) = l.accept_answer(sdp.clone()).await {
                        tracing::warn!(error = %e, "answer refused");
                    }
                }
            }
            ServerMsg::Ice { from, candidate } => {
                if let Some(l) = io.links.get(from) {
                    l.add_ice(candidate.clone()).await;
                }
            }
            ServerMsg::MutedByHost => self.apply(io, Input::MutedByHost).await,
            // Renewed credentials (a guest's TURN lives an hour): for the connections made
            // from now on.
            ServerMsg::IceServers { ice_servers } => io.ice_servers = ice_servers.clone(),
            ServerMsg::PeerLeft { peer_id } => {
                self.apply(io, Input::PeerLeft(peer_id.clone())).await;
            }
            _ => {}
        }
    }

    async fn on_link(&mut self, io: &mut Io, peer: PeerId, ev: LinkEvent) {
        let input = match ev {
            LinkEvent::Ice(candidate) => {
                let msg = ClientMsg::Ice {
                    to: peer,
                    candidate,
                };
                return self.session.send(msg).await;
            }
            LinkEvent::IceState(state) => {
                let _ = self.out.send(CallEvent::Ice { peer, state }).await;
                return;
            }
            LinkEvent::Track(_, track) if !self.decode => return track.drain(),
            LinkEvent::Track(kind, track) => {
                let out = self.out.clone();
                match kind {
                    MediaKind::Audio => {
                        let (mixer, internal) = (self.mixer.clone(), self.internal.clone());
                        tokio::spawn(receive_audio(peer, track, out, mixer, internal));
                    }
                    MediaKind::Camera | MediaKind::Screen => {
                        let link = io.links.get(&peer).cloned();
                        let decoders = self.decoders.clone();
                        tokio::spawn(receive_video(peer, kind, track, link, out, decoders));
                    }
                }
                return;
            }
            LinkEvent::State(state) => Input::LinkState { peer, state },
            LinkEvent::KeyframeRequest(kind) => Input::KeyframeRequest(kind),
            LinkEvent::Loss(fraction) => Input::Loss { peer, fraction },
            LinkEvent::Limit(kind, kbps) => Input::Limit { peer, kind, kbps },
        };
        self.apply(io, input).await;
    }
}
