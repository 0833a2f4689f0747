//! A live meeting's membership, roles, admission and relay rules as a pure state machine:
//! `(state, input, now) -> effects`. No sockets, no database, no clock: the room task around
//! it does the I/O, so every rule here is unit-tested in microseconds.

use std::collections::HashMap;

mod members;

use parley_shared::api::Role;
use parley_shared::signal::{IceCandidate, MediaState, Participant, ServerMsg};
use parley_shared::{ErrorCode, PeerId, UserId};

pub use crate::meetings::store::Bar;

/// Tunables of a room.
#[derive(Debug, Clone, Copy)]
pub struct RoomConfig {
    /// How long a dropped peer keeps its slot.
    pub grace_ms: i64,
    /// Participants in the call at once (a mesh: every pair has a connection).
    pub max_peers: usize,
    /// Users in the waiting room at once; more are turned away until someone is let in.
    pub max_waiting: usize,
    /// Guests among them: the rest of the seats stay for signed-in people.
    pub max_waiting_guests: usize,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            grace_ms: 30_000,
            max_peers: 8,
            max_waiting: 50,
            max_waiting_guests: 10,
        }
    }
}

/// Where a peer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Waiting,
    Joined,
    /// Joined, socket lost at `since_ms`; the slot is kept for the grace period.
    Dropped {
        since_ms: i64,
    },
}

/// A participant or waiting user.
#[derive(Debug, Clone)]
pub struct Peer {
    pub id: PeerId,
    pub user: UserId,
    pub name: String,
    pub role: Role,
    /// The role stored for the user; `role` differs only while they stand in for an absent
    /// host (a hand-over lasts as long as the meeting's owner is away, and is not stored).
    pub base_role: Role,
    pub media: MediaState,
    pub hand: bool,
    /// Came in through an invite link without an account.
    pub guest: bool,
    pub state: PeerState,
    pub resume_token: String,
    /// Order of admission; the lowest is the longest present.
    pub order: u64,
}

impl Peer {
    fn info(&self) -> Participant {
        Participant {
            peer_id: self.id.clone(),
            user_id: self.user.clone(),
            display_name: self.name.clone(),
            role: self.role,
            media: self.media,
            hand_raised: self.hand,
            guest: self.guest,
        }
    }

    fn in_call(&self) -> bool {
        matches!(self.state, PeerState::Joined | PeerState::Dropped { .. })
    }
}

/// What can happen to a room.
#[derive(Debug, Clone)]
pub enum Input {
    /// A signed-in user's socket asks to enter. `peer` and `resume_token` are fresh values
    /// for a new peer; `resume` is the token the client presented, if any.
    Join {
        peer: PeerId,
        user: UserId,
        name: String,
        /// Role recorded for this user in the meeting (host for its owner).
        role: Role,
        /// Admitted before (stored): skips the lock and the waiting room.
        admitted: bool,
        /// A guest (no account): shown as one to everybody.
        guest: bool,
        resume_token: String,
        resume: Option<String>,
    },
    /// The peer's socket closed without `leave`.
    Dropped {
        peer: PeerId,
    },
    Leave {
        peer: PeerId,
    },
    Offer {
        from: PeerId,
        to: PeerId,
        sdp: String,
    },
    Answer {
        from: PeerId,
        to: PeerId,
        sdp: String,
    },
    Ice {
        from: PeerId,
        to: PeerId,
        candidate: IceCandidate,
    },
    Media {
        peer: PeerId,
        media: MediaState,
    },
    Hand {
        peer: PeerId,
        raised: bool,
    },
    Reaction {
        peer: PeerId,
        emoji: String,
    },
    Admit {
        by: PeerId,
        peer: PeerId,
    },
    Deny {
        by: PeerId,
        peer: PeerId,
    },
    Mute {
        by: PeerId,
        peer: PeerId,
    },
    Remove {
        by: PeerId,
        peer: PeerId,
    },
    Promote {
        by: PeerId,
        peer: PeerId,
    },
    Lock {
        by: PeerId,
        locked: bool,
    },
    End {
        by: PeerId,
    },
    /// A host lifted `user`'s bar (REST): they may enter again.
    Readmit {
        user: UserId,
    },
    /// Guest entry turned off: the guests still waiting are sent away in the same action (not
    /// barred: a host who turns it on again lets them try again). `by` a peer over the socket
    /// (the host or a co-host, and it is stored), or `None` when it was done over REST.
    CloseGuestEntry {
        by: Option<PeerId>,
    },
    /// Time passes: expire dropped peers.
    Tick,
}

/// What the room task must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Send(PeerId, ServerMsg),
    /// Tell the peer it is in: the task adds ICE servers, chat position and missed chat.
    Welcome {
        peer: PeerId,
        role: Role,
        participants: Vec<Participant>,
        resume_token: String,
        locked: bool,
        resumed: bool,
    },
    /// Close the peer's socket (after what was sent to it).
    Close(PeerId),
    /// The socket of `old` is replaced by the new connection of the same peer.
    Replace(PeerId),
    Store(Stored),
}

/// Changes to persist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Waiting(UserId),
    /// In the call: also records the admission.
    Joined(UserId),
    Left(UserId),
    /// Denied or removed: holds across room retirement and restarts.
    Barred(UserId, Bar),
    Role(UserId, Role),
    Locked(bool),
    /// Guest entry turned off.
    GuestsOff,
    Ended,
    /// A host action, for the audit log.
    Audit {
        actor: UserId,
        action: &'static str,
        target: Option<UserId>,
    },
}

/// One live meeting.
#[derive(Debug)]
pub struct Room {
    cfg: RoomConfig,
    owner: UserId,
    locked: bool,
    waiting_room: bool,
    ended: bool,
    peers: Vec<Peer>,
    /// Users denied or removed while this room ran (also stored; the connection checks the
    /// stored bar before a join reaches the room, this catches joins already under way).
    barred: HashMap<UserId, Bar>,
    next_order: u64,
}

fn err(to: &PeerId, code: ErrorCode, message: &str) -> Effect {
    Effect::Send(to.clone(), ServerMsg::error(code, message))
}

impl Room {
    /// A room for a meeting owned by `owner`, with its stored settings.
    pub fn new(cfg: RoomConfig, owner: UserId, locked: bool, waiting_room: bool) -> Self {
        Self {
            cfg,
            owner,
            locked,
            waiting_room,
            ended: false,
            peers: Vec::new(),
            barred: HashMap::new(),
            next_order: 0,
        }
    }

    pub fn peer(&self, id: &PeerId) -> Option<&Peer> {
        self.peers.iter().find(|p| &p.id == id)
    }

    fn peer_mut(&mut self, id: &PeerId) -> Option<&mut Peer> {
        self.peers.iter_mut().find(|p| &p.id == id)
    }

    /// True while the peer is in the call with a live socket.
    pub fn is_joined(&self, id: &PeerId) -> bool {
        self.peer(id).is_some_and(|p| p.state == PeerState::Joined)
    }

    /// True when nobody is in the room or waiting: the task may stop.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub fn has_ended(&self) -> bool {
        self.ended
    }

    /// Peers in the call, oldest first.
    pub fn participants(&self) -> Vec<Participant> {
        self.in_call().into_iter().map(Peer::info).collect()
    }

    /// The peers in the call (not waiting), in join order.
    fn in_call(&self) -> Vec<&Peer> {
        let mut v: Vec<&Peer> = self.peers.iter().filter(|p| p.in_call()).collect();
        v.sort_by_key(|p| p.order);
        v
    }

    /// The ids of the peers in the call (not waiting), in join order: whom a broadcast reaches.
    /// What `participants` would list, without copying each peer's name and state.
    pub fn in_call_ids(&self) -> Vec<PeerId> {
        self.in_call().into_iter().map(|p| p.id.clone()).collect()
    }

    /// The earliest time a dropped peer expires, for the task's timer.
    pub fn next_deadline(&self) -> Option<i64> {
        self.peers
            .iter()
            .filter_map(|p| match p.state {
                PeerState::Dropped { since_ms } => Some(since_ms + self.cfg.grace_ms),
                _ => None,
            })
            .min()
    }

    fn others(&self, except: &PeerId) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|p| p.state == PeerState::Joined && &p.id != except)
            .map(|p| p.id.clone())
            .collect()
    }

    fn moderators(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|p| p.state == PeerState::Joined && p.role.can_moderate())
            .map(|p| p.id.clone())
            .collect()
    }

    fn broadcast(&self, except: &PeerId, msg: &ServerMsg, fx: &mut Vec<Effect>) {
        for to in self.others(except) {
            fx.push(Effect::Send(to, msg.clone()));
        }
    }

    /// Applies one input.
    pub fn handle(&mut self, input: Input, now_ms: i64) -> Vec<Effect> {
        let mut fx = Vec::new();
        match input {
            Input::Join {
                peer,
                user,
                name,
                role,
                admitted,
                guest,
                resume_token,
                resume,
            } => self.join(
                peer,
                user,
                name,
                role,
                admitted,
                guest,
                resume_token,
                resume,
                &mut fx,
            ),
            Input::Dropped { peer } => match self.peer(&peer).map(|p| p.state) {
                Some(PeerState::Joined) => {
                    if let Some(p) = self.peer_mut(&peer) {
                        p.state = PeerState::Dropped { since_ms: now_ms };
                    }
                }
                Some(PeerState::Waiting) => self.depart(&peer, &mut fx),
                _ => {}
            },
            Input::Leave { peer } => {
                if self.peer(&peer).is_some() {
                    self.depart(&peer, &mut fx);
                    fx.push(Effect::Close(peer));
                }
            }
            Input::Offer { from, to, sdp } => self.relay(
                &from,
                &to,
                ServerMsg::Offer {
                    from: from.clone(),
                    sdp,
                },
                &mut fx,
            ),
            Input::Answer { from, to, sdp } => self.relay(
                &from,
                &to,
                ServerMsg::Answer {
                    from: from.clone(),
                    sdp,
                },
                &mut fx,
            ),
            Input::Ice {
                from,
                to,
                candidate,
            } => self.relay(
                &from,
                &to,
                ServerMsg::Ice {
                    from: from.clone(),
                    candidate,
                },
                &mut fx,
            ),
            Input::Media { peer, media } => {
                if self.require_joined(&peer, &mut fx) {
                    if let Some(p) = self.peer_mut(&peer) {
                        p.media = media;
                    }
                    self.broadcast(
                        &peer,
                        &ServerMsg::MediaState {
                            peer_id: peer.clone(),
                            media,
                        },
                        &mut fx,
                    );
                }
            }
            Input::Hand { peer, raised } => {
                if self.require_joined(&peer, &mut fx) {
                    if let Some(p) = self.peer_mut(&peer) {
                        p.hand = raised;
                    }
                    self.broadcast(
                        &peer,
                        &ServerMsg::Hand {
                            peer_id: peer.clone(),
                            raised,
                        },
                        &mut fx,
                    );
                }
            }
            Input::Reaction { peer, emoji } => {
                if self.require_joined(&peer, &mut fx) {
                    self.broadcast(
                        &peer,
                        &ServerMsg::Reaction {
                            peer_id: peer.clone(),
                            emoji,
                        },
                        &mut fx,
                    );
                }
            }
            Input::Admit { by, peer } => self.admit(&by, &peer, &mut fx),
            Input::Deny { by, peer } => {
                if self.require_moderator(&by, &mut fx) {
                    match self.peer(&peer) {
                        Some(p) if p.state == PeerState::Waiting => {
                            let user = p.user.clone();
                            self.bar(&by, &user, Bar::Denied, &mut fx);
                        }
                        _ => fx.push(err(
                            &by,
                            ErrorCode::PeerNotFound,
                            "nobody with that id is waiting",
                        )),
                    }
                }
            }
            Input::Mute { by, peer } => {
                if self.require_moderator(&by, &mut fx) {
                    match self.peer_mut(&peer) {
                        Some(p) if p.in_call() => {
                            p.media.audio = false;
                            let media = p.media;
                            let user = p.user.clone();
                            self.audit(&by, "mute", Some(user), &mut fx);
                            fx.push(Effect::Send(peer.clone(), ServerMsg::MutedByHost));
                            self.broadcast(
                                &peer,
                                &ServerMsg::MediaState {
                                    peer_id: peer.clone(),
                                    media,
                                },
                                &mut fx,
                            );
                        }
                        _ => fx.push(err(
                            &by,
                            ErrorCode::PeerNotFound,
                            "that peer is not in this meeting",
                        )),
                    }
                }
            }
            Input::Remove { by, peer } => {
                if self.require_moderator(&by, &mut fx) {
                    let me = self.peer(&by).map(|p| p.user.clone());
                    // A stand-in removes participants and guests, not the people the owner
                    // chose to run the meeting.
                    let stand_in = self.peer(&by).is_some_and(|p| !p.base_role.can_moderate());
                    match self.peer(&peer) {
                        Some(p) if p.user == self.owner || Some(&p.user) == me.as_ref() => {
                            fx.push(err(&by, ErrorCode::NotHost, "the host cannot be removed"));
                        }
                        Some(p) if stand_in && p.base_role.can_moderate() => {
                            fx.push(err(
                                &by,
                                ErrorCode::NotHost,
                                "only the host can remove a co-host",
                            ));
                        }
                        Some(p) => {
                            let user = p.user.clone();
                            self.bar(&by, &user, Bar::Removed, &mut fx);
                        }
                        None => fx.push(err(
                            &by,
                            ErrorCode::PeerNotFound,
                            "that peer is not in this meeting",
                        )),
                    }
                }
            }
            Input::Promote { by, peer } => {
                if self.require_owner(&by, &mut fx) {
                    match self.peer_mut(&peer) {
                        Some(p) if p.in_call() && p.guest => fx.push(err(
                            &by,
                            ErrorCode::GuestNotAllowed,
                            "a guest cannot be made co-host; ask them to sign in",
                        )),
                        Some(p) if p.in_call() && p.role == Role::Participant => {
                            p.role = Role::Cohost;
                            p.base_role = Role::Cohost;
                            let user = p.user.clone();
                            let msg = ServerMsg::RoleChanged {
                                peer_id: peer.clone(),
                                role: Role::Cohost,
                            };
                            self.broadcast(&PeerId(String::new()), &msg, &mut fx);
                            self.audit(&by, "promote", Some(user.clone()), &mut fx);
                            fx.push(Effect::Store(Stored::Role(user, Role::Cohost)));
                        }
                        Some(p) if p.in_call() => {}
                        _ => fx.push(err(
                            &by,
                            ErrorCode::PeerNotFound,
                            "that peer is not in this meeting",
                        )),
                    }
                }
            }
            Input::Lock { by, locked } => {
                if self.require_moderator(&by, &mut fx) && self.locked != locked {
                    self.locked = locked;
                    self.broadcast(
                        &PeerId(String::new()),
                        &ServerMsg::LockChanged { locked },
                        &mut fx,
                    );
                    fx.push(Effect::Store(Stored::Locked(locked)));
                    self.audit(&by, if locked { "lock" } else { "unlock" }, None, &mut fx);
                }
            }
            Input::End { by } => {
                if self.require_owner(&by, &mut fx) {
                    self.audit(&by, "end", None, &mut fx);
                    self.end(&mut fx);
                }
            }
            Input::Readmit { user } => {
                self.barred.remove(&user);
            }
            Input::CloseGuestEntry { by } => {
                if let Some(by) = &by {
                    let stored_moderator =
                        self.peer(by).is_some_and(|p| p.base_role.can_moderate());
                    if !stored_moderator {
                        if self.require_joined(by, &mut fx) {
                            fx.push(err(
                                by,
                                ErrorCode::NotHost,
                                "only the host or a co-host can change guest access",
                            ));
                        }
                        return fx;
                    }
                    if !self.require_moderator(by, &mut fx) {
                        return fx;
                    }
                    fx.push(Effect::Store(Stored::GuestsOff));
                    self.audit(by, "guests_disallow", None, &mut fx);
                }
                let waiting: Vec<PeerId> = self
                    .peers
                    .iter()
                    .filter(|p| p.guest && p.state == PeerState::Waiting)
                    .map(|p| p.id.clone())
                    .collect();
                for peer in waiting {
                    fx.push(err(
                        &peer,
                        ErrorCode::GuestsNotAllowed,
                        "the host has turned guest entry off",
                    ));
                    self.depart(&peer, &mut fx);
                    fx.push(Effect::Close(peer));
                }
            }
            Input::Tick => {
                let expired: Vec<PeerId> = self
                    .peers
                    .iter()
                    .filter(|p| matches!(p.state, PeerState::Dropped { since_ms } if now_ms - since_ms >= self.cfg.grace_ms))
                    .map(|p| p.id.clone())
                    .collect();
                for peer in expired {
                    self.depart(&peer, &mut fx);
                }
            }
        }
        fx
    }

    /// Ends the meeting for everyone (also used when the meeting is ended over REST).
    pub fn end(&mut self, fx: &mut Vec<Effect>) {
        if self.ended {
            return;
        }
        self.ended = true;
        for p in &self.peers {
            fx.push(Effect::Send(p.id.clone(), ServerMsg::MeetingEnded));
            fx.push(Effect::Close(p.id.clone()));
        }
        self.peers.clear();
        fx.push(Effect::Store(Stored::Ended));
    }
}
