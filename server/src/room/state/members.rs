//! How people come and go: joining (passcode, lock, waiting room, bars), entering,
//! admission, leaving and being removed, and the checks host actions make.

use parley_shared::api::Role;
use parley_shared::signal::ServerMsg;
use parley_shared::{ErrorCode, PeerId, UserId};

use super::*;

impl Room {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn join(
        &mut self,
        peer: PeerId,
        user: UserId,
        name: String,
        role: Role,
        admitted: bool,
        guest: bool,
        resume_token: String,
        resume: Option<String>,
        fx: &mut Vec<Effect>,
    ) {
        let refuse = |fx: &mut Vec<Effect>, code, msg: &str| {
            fx.push(err(&peer, code, msg));
            fx.push(Effect::Close(peer.clone()));
        };
        if self.ended {
            return refuse(fx, ErrorCode::MeetingEnded, "this meeting has ended");
        }
        if let Some(bar) = self.barred.get(&user) {
            return refuse(fx, ErrorCode::NotParticipant, bar.message());
        }
        // Resume: the same user presenting the token of a peer still holding its slot.
        if let Some(token) = resume {
            let found = self
                .peers
                .iter()
                .position(|p| p.user == user && p.in_call() && p.resume_token == token);
            if let Some(i) = found {
                let old = self.peers[i].id.clone();
                self.peers[i].state = PeerState::Joined;
                let p = self.peers[i].clone();
                fx.push(Effect::Replace(old.clone()));
                let participants = self
                    .participants()
                    .into_iter()
                    .filter(|x| x.peer_id != old)
                    .collect();
                fx.push(Effect::Welcome {
                    peer: old,
                    role: p.role,
                    participants,
                    resume_token: p.resume_token,
                    locked: self.locked,
                    resumed: true,
                });
                return;
            }
        }
        // A guest names themselves: a name that passes for someone present's is refused, so a
        // guest cannot pose as the host or another participant in the list and in chat.
        if guest
            && self.peers.iter().any(|p| {
                p.user != user && parley_shared::validate::names_confusable(&p.name, &name)
            })
        {
            return refuse(
                fx,
                ErrorCode::NameTaken,
                "someone in this meeting already has a name like that; choose another",
            );
        }
        // A guest's stored role is never more than participant, whatever was recorded.
        let role = if user == self.owner {
            Role::Host
        } else if guest {
            Role::Participant
        } else {
            role
        };
        let moderator = role.can_moderate();
        if !moderator && !admitted && self.locked {
            return refuse(
                fx,
                ErrorCode::MeetingLocked,
                "the host has locked this meeting",
            );
        }
        if self.peers.iter().filter(|p| p.in_call()).count() >= self.cfg.max_peers {
            return refuse(fx, ErrorCode::MeetingFull, "this meeting is full");
        }
        let waiting = self.waiting_room && !moderator && !admitted;
        let waiters = |guests: bool| {
            self.peers
                .iter()
                .filter(|p| p.state == PeerState::Waiting && (!guests || p.guest))
                .count()
        };
        // Guests have seats of their own in the waiting room: a crowd of them from an open
        // link never takes the seats of members and invitees.
        if waiting && guest && waiters(true) >= self.cfg.max_waiting_guests {
            return refuse(
                fx,
                ErrorCode::MeetingFull,
                "too many guests are waiting; try again later",
            );
        }
        if waiting && waiters(false) >= self.cfg.max_waiting {
            return refuse(
                fx,
                ErrorCode::MeetingFull,
                "the waiting room is full; try again later",
            );
        }
        self.next_order += 1;
        let p = Peer {
            id: peer.clone(),
            user: user.clone(),
            name,
            role,
            base_role: role,
            media: MediaState::default(),
            hand: false,
            guest,
            state: if waiting {
                PeerState::Waiting
            } else {
                PeerState::Joined
            },
            resume_token: resume_token.clone(),
            order: self.next_order,
        };
        let info = p.info();
        self.peers.push(p);
        if waiting {
            fx.push(Effect::Send(peer.clone(), ServerMsg::Waiting));
            fx.push(Effect::Store(Stored::Waiting(user.clone())));
            self.tell_moderators(
                ServerMsg::WaitingPeer {
                    peer_id: peer,
                    user_id: user,
                    display_name: info.display_name,
                    guest: info.guest,
                },
                fx,
            );
            return;
        }
        self.enter(&peer, resume_token, fx);
    }

    pub(super) fn enter(&mut self, peer: &PeerId, resume_token: String, fx: &mut Vec<Effect>) {
        let Some(p) = self.peer(peer).cloned() else {
            return;
        };
        let participants = self
            .participants()
            .into_iter()
            .filter(|x| &x.peer_id != peer)
            .collect();
        fx.push(Effect::Welcome {
            peer: peer.clone(),
            role: p.role,
            participants,
            resume_token,
            locked: self.locked,
            resumed: false,
        });
        self.broadcast(
            peer,
            &ServerMsg::PeerJoined {
                participant: p.info(),
            },
            fx,
        );
        fx.push(Effect::Store(Stored::Joined(p.user.clone())));
        if p.role == Role::Host {
            self.demote_other_hosts(peer, fx);
        }
        if p.role.can_moderate() {
            self.tell_who_waits(peer, fx);
        }
    }

    /// A host or co-host who arrives (or stands in) hears who is already waiting: the
    /// waiting room's knocks were sent only to the moderators present at the time.
    pub(super) fn tell_who_waits(&self, to: &PeerId, fx: &mut Vec<Effect>) {
        for w in self.peers.iter().filter(|p| p.state == PeerState::Waiting) {
            fx.push(Effect::Send(
                to.clone(),
                ServerMsg::WaitingPeer {
                    peer_id: w.id.clone(),
                    user_id: w.user.clone(),
                    display_name: w.name.clone(),
                    guest: w.guest,
                },
            ));
        }
    }

    /// When the owner returns, whoever stood in as host steps back to their own role.
    pub(super) fn demote_other_hosts(&mut self, host: &PeerId, fx: &mut Vec<Effect>) {
        let others: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|p| &p.id != host && p.role == Role::Host)
            .map(|p| p.id.clone())
            .collect();
        for id in others {
            if let Some(p) = self.peer_mut(&id) {
                p.role = p.base_role;
                let role = p.role;
                self.broadcast(
                    &PeerId(String::new()),
                    &ServerMsg::RoleChanged { peer_id: id, role },
                    fx,
                );
            }
        }
    }

    pub(super) fn admit(&mut self, by: &PeerId, peer: &PeerId, fx: &mut Vec<Effect>) {
        if !self.require_moderator(by, fx) {
            return;
        }
        match self.peer(peer) {
            Some(p) if p.state == PeerState::Waiting => {
                if self.peers.iter().filter(|p| p.in_call()).count() >= self.cfg.max_peers {
                    fx.push(err(by, ErrorCode::MeetingFull, "this meeting is full"));
                    return;
                }
                let token = p.resume_token.clone();
                let user = p.user.clone();
                if let Some(p) = self.peer_mut(peer) {
                    p.state = PeerState::Joined;
                }
                self.audit(by, "admit", Some(user), fx);
                self.tell_moderators(
                    ServerMsg::WaitingDone {
                        peer_id: peer.clone(),
                    },
                    fx,
                );
                self.enter(peer, token, fx);
            }
            _ => fx.push(err(
                by,
                ErrorCode::PeerNotFound,
                "nobody with that id is waiting",
            )),
        }
    }

    /// Removes a peer for good: others are told, and a departing host hands over.
    pub(super) fn depart(&mut self, peer: &PeerId, fx: &mut Vec<Effect>) {
        let Some(i) = self.peers.iter().position(|p| &p.id == peer) else {
            return;
        };
        let p = self.peers.remove(i);
        fx.push(Effect::Store(Stored::Left(p.user.clone())));
        if p.state == PeerState::Waiting {
            self.tell_moderators(ServerMsg::WaitingDone { peer_id: p.id }, fx);
            return;
        }
        self.broadcast(
            peer,
            &ServerMsg::PeerLeft {
                peer_id: p.id.clone(),
            },
            fx,
        );
        if p.role == Role::Host
            && !self
                .peers
                .iter()
                .any(|q| q.role == Role::Host && q.in_call())
        {
            // The heir is a signed-in person, never a guest (anyone can become one from an
            // open link): a co-host first, then whoever has been in longest. With nobody
            // eligible the meeting goes on without a host until its owner or a co-host returns.
            let heir = self
                .peers
                .iter()
                .filter(|q| q.in_call() && !q.guest)
                .min_by_key(|q| (q.base_role != Role::Cohost, q.order))
                .map(|q| q.id.clone());
            // A stand-in: not stored, so it ends with the room or when the owner returns.
            if let Some(heir) = heir {
                if let Some(h) = self.peer_mut(&heir) {
                    let was_moderator = h.role.can_moderate();
                    h.role = Role::Host;
                    self.broadcast(
                        &PeerId(String::new()),
                        &ServerMsg::RoleChanged {
                            peer_id: heir.clone(),
                            role: Role::Host,
                        },
                        fx,
                    );
                    if !was_moderator {
                        self.tell_who_waits(&heir, fx);
                    }
                }
            }
        }
    }

    /// Denies or removes `user` on every socket they have in the room, and stores the bar.
    pub(super) fn bar(&mut self, by: &PeerId, user: &UserId, bar: Bar, fx: &mut Vec<Effect>) {
        let notice = match bar {
            Bar::Denied => ServerMsg::Denied,
            Bar::Removed => ServerMsg::Removed,
        };
        let theirs: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|p| &p.user == user)
            .map(|p| p.id.clone())
            .collect();
        let mut departures = Vec::new();
        for peer in &theirs {
            fx.push(Effect::Send(peer.clone(), notice.clone()));
            self.depart(peer, &mut departures);
        }
        // The user's own sockets hear nothing after the notice (not each other's departure).
        departures.retain(|e| !matches!(e, Effect::Send(to, _) if theirs.contains(to)));
        fx.append(&mut departures);
        fx.extend(theirs.into_iter().map(Effect::Close));
        // After `depart`'s `Left`, so the stored status ends as barred.
        fx.push(Effect::Store(Stored::Barred(user.clone(), bar)));
        self.barred.insert(user.clone(), bar);
        self.audit(by, bar.as_str(), Some(user.clone()), fx);
    }

    /// Records a host action in the audit log.
    pub(super) fn audit(
        &self,
        by: &PeerId,
        action: &'static str,
        target: Option<UserId>,
        fx: &mut Vec<Effect>,
    ) {
        if let Some(p) = self.peer(by) {
            fx.push(Effect::Store(Stored::Audit {
                actor: p.user.clone(),
                action,
                target,
            }));
        }
    }

    pub(super) fn relay(&self, from: &PeerId, to: &PeerId, msg: ServerMsg, fx: &mut Vec<Effect>) {
        if !self.require_joined(from, fx) {
            return;
        }
        match self.peer(to) {
            Some(p) if p.state == PeerState::Joined && to != from => {
                fx.push(Effect::Send(to.clone(), msg))
            }
            _ => fx.push(err(
                from,
                ErrorCode::PeerNotFound,
                "no such peer in this meeting",
            )),
        }
    }

    pub(super) fn require_joined(&self, peer: &PeerId, fx: &mut Vec<Effect>) -> bool {
        let ok = self.is_joined(peer);
        if !ok {
            fx.push(err(
                peer,
                ErrorCode::OutOfState,
                "you are not in the call yet",
            ));
        }
        ok
    }

    pub(super) fn require_moderator(&self, by: &PeerId, fx: &mut Vec<Effect>) -> bool {
        match self.peer(by) {
            Some(p) if p.state == PeerState::Joined && p.role.can_moderate() => true,
            Some(p) if p.state == PeerState::Joined => {
                fx.push(err(
                    by,
                    ErrorCode::NotHost,
                    "only the host or a co-host can do this",
                ));
                false
            }
            _ => {
                fx.push(err(
                    by,
                    ErrorCode::OutOfState,
                    "you are not in the call yet",
                ));
                false
            }
        }
    }

    /// Only the meeting's own host (its owner) passes: a stand-in host may run the call
    /// (admit, mute, remove, lock) but not change who runs it or end it.
    pub(super) fn require_owner(&self, by: &PeerId, fx: &mut Vec<Effect>) -> bool {
        match self.peer(by) {
            Some(p) if p.state == PeerState::Joined && p.base_role == Role::Host => true,
            Some(p) if p.state == PeerState::Joined => {
                fx.push(err(by, ErrorCode::NotHost, "only the host can do this"));
                false
            }
            _ => {
                fx.push(err(
                    by,
                    ErrorCode::OutOfState,
                    "you are not in the call yet",
                ));
                false
            }
        }
    }

    pub(super) fn tell_moderators(&self, msg: ServerMsg, fx: &mut Vec<Effect>) {
        for m in self.moderators() {
            fx.push(Effect::Send(m, msg.clone()));
        }
    }
}
