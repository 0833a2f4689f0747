//! The client's room model: one reducer from what the meeting says (server messages, session
//! events) and what the call reports (links, quality, lost devices) to what a participant
//! sees: who is here and what they send, who waits, our role, the chat in order, and why the
//! meeting ended. The desktop app and parley-cli both show this; each only renders it.

use std::collections::HashMap;

use parley_shared::api::Role;
use parley_shared::signal::{ChatMessage, ClientMsg, MediaState, Participant, ServerMsg};
use parley_shared::{ErrorCode, PeerId, UserId};

use crate::call::{CallEvent, Device};
use crate::rtc::LinkState;
use crate::signaling::{Closed, Event};

/// Where we are in the meeting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    #[default]
    Joining,
    Waiting,
    In,
    Reconnecting,
    Ended,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Joining => "joining",
            Status::Waiting => "waiting",
            Status::In => "in",
            Status::Reconnecting => "reconnecting",
            Status::Ended => "ended",
        }
    }

    /// Joining, waiting, in or reconnecting: the meeting holds us.
    pub fn is_live(self) -> bool {
        self != Status::Ended
    }
}

/// Another participant, as we see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub peer_id: PeerId,
    pub user_id: UserId,
    pub name: String,
    pub role: Role,
    pub media: MediaState,
    pub hand: bool,
    /// Our media connection to them.
    pub link: LinkState,
    /// How fast our video may go to them (kbit/s), once measured.
    pub send_kbps: Option<u32>,
    /// Came in through the invite link without an account.
    pub guest: bool,
}

impl Person {
    fn from(p: &Participant) -> Self {
        Self {
            peer_id: p.peer_id.clone(),
            user_id: p.user_id.clone(),
            name: p.display_name.clone(),
            role: p.role,
            media: p.media,
            hand: p.hand_raised,
            link: LinkState::New,
            send_kbps: None,
            guest: p.guest,
        }
    }
}

/// Someone in the waiting room (shown to hosts and co-hosts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiter {
    pub peer_id: PeerId,
    pub name: String,
    /// Came in through the invite link without an account.
    pub guest: bool,
}

/// What a host or co-host does to one participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostAction {
    Admit,
    Deny,
    Mute,
    Remove,
    Promote,
}

impl HostAction {
    pub const ALL: [HostAction; 5] = [
        HostAction::Admit,
        HostAction::Deny,
        HostAction::Mute,
        HostAction::Remove,
        HostAction::Promote,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HostAction::Admit => "admit",
            HostAction::Deny => "deny",
            HostAction::Mute => "mute",
            HostAction::Remove => "remove",
            HostAction::Promote => "promote",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The protocol message that does it to `peer`.
    pub fn message(self, peer: PeerId) -> ClientMsg {
        match self {
            HostAction::Admit => ClientMsg::Admit { peer },
            HostAction::Deny => ClientMsg::Deny { peer },
            HostAction::Mute => ClientMsg::Mute { peer },
            HostAction::Remove => ClientMsg::Remove { peer },
            HostAction::Promote => ClientMsg::Promote { peer },
        }
    }
}

/// What changed, in a participant's terms: what a UI announces or prints.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// In the room; `again` after a reconnect.
    Entered {
        again: bool,
    },
    Waiting,
    WaitingPeer(Waiter),
    WaitingDone(PeerId),
    PeerJoined(Person),
    PeerLeft {
        peer: PeerId,
        name: String,
    },
    Media {
        peer: PeerId,
        name: String,
        media: MediaState,
    },
    Hand {
        peer: PeerId,
        name: String,
        raised: bool,
    },
    Reaction {
        peer: PeerId,
        name: String,
        emoji: String,
    },
    /// A role changed; `peer` None: ours.
    Role {
        peer: Option<PeerId>,
        name: String,
        role: Role,
    },
    Locked(bool),
    MutedByHost,
    /// A chat message not seen before (in `seq` order after replays).
    Chat(ChatMessage),
    /// Our message was stored: its id and place.
    ChatAck {
        client_msg_id: String,
        message: ChatMessage,
    },
    Link {
        peer: PeerId,
        state: LinkState,
    },
    Quality {
        peer: PeerId,
        send_kbps: u32,
    },
    Reconnecting {
        attempt: u32,
        why: String,
    },
    Ended(Closed),
    Error {
        code: ErrorCode,
        message: String,
    },
    ServerRestarting,
    /// A local device stopped; `fallback` is what to switch to (the system default for
    /// audio; video waits for the user's choice).
    DeviceLost {
        device: Device,
        error: String,
        fallback: bool,
    },
}

/// The room as one participant sees it.
#[derive(Clone, Debug)]
pub struct Room {
    pub status: Status,
    pub me: Option<PeerId>,
    pub my_user: Option<UserId>,
    pub my_name: String,
    pub my_role: Role,
    pub hand: bool,
    pub locked: bool,
    /// The others, in the order they came.
    pub people: Vec<Person>,
    pub waiting: Vec<Waiter>,
    /// The chat, by `seq`, each message once.
    pub chat: Vec<ChatMessage>,
    pub ended: Option<Closed>,
    /// Our chat sent and not yet stored: client_msg_id → text.
    pending: HashMap<String, String>,
    welcomed: bool,
}

impl Room {
    pub fn new(my_name: &str) -> Self {
        Self {
            status: Status::Joining,
            me: None,
            my_user: None,
            my_name: my_name.into(),
            my_role: Role::Participant,
            hand: false,
            locked: false,
            people: Vec::new(),
            waiting: Vec::new(),
            chat: Vec::new(),
            ended: None,
            pending: HashMap::new(),
            welcomed: false,
        }
    }

    /// A participant's name (theirs, a waiting person's, or "peer …").
    pub fn name(&self, peer: &PeerId) -> String {
        self.people
            .iter()
            .find(|p| p.peer_id == *peer)
            .map(|p| p.name.clone())
            .or_else(|| {
                self.waiting
                    .iter()
                    .find(|w| w.peer_id == *peer)
                    .map(|w| w.name.clone())
            })
            .unwrap_or_else(|| format!("peer {peer}"))
    }

    /// The one participant or waiting person called `name` (case-insensitive), if exactly one
    /// is.
    pub fn find(&self, name: &str) -> Option<PeerId> {
        let mut hits = self
            .people
            .iter()
            .map(|p| (&p.peer_id, &p.name))
            .chain(self.waiting.iter().map(|w| (&w.peer_id, &w.name)))
            .filter(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(id, _)| id.clone());
        let first = hits.next()?;
        hits.next().is_none().then_some(first)
    }

    /// Everyone else's name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.people.iter().map(|p| p.name.as_str()).collect();
        v.sort_unstable();
        v
    }

    /// We sent a chat message (shown as pending until [`Change::ChatAck`]).
    pub fn chat_sent(&mut self, client_msg_id: &str, text: &str) {
        self.pending.insert(client_msg_id.into(), text.into());
    }

    /// Keeps a message in the chat, in `seq` order; false if it was there already.
    pub fn add_chat(&mut self, m: ChatMessage) -> bool {
        if self.chat.iter().any(|c| c.id == m.id) {
            return false;
        }
        let at = self.chat.partition_point(|c| c.seq <= m.seq);
        self.chat.insert(at, m);
        true
    }

    fn person(&mut self, peer: &PeerId) -> Option<&mut Person> {
        self.people.iter_mut().find(|p| p.peer_id == *peer)
    }

    /// Takes one call event (meeting events included).
    pub fn on_call(&mut self, ev: &CallEvent) -> Vec<Change> {
        match ev {
            CallEvent::Signal(e) => self.on_event(e),
            CallEvent::Link { peer, state } => {
                let Some(p) = self.person(peer) else {
                    return vec![];
                };
                p.link = *state;
                vec![Change::Link {
                    peer: peer.clone(),
                    state: *state,
                }]
            }
            CallEvent::Quality { peer, send_kbps } => {
                let Some(p) = self.person(peer) else {
                    return vec![];
                };
                p.send_kbps = Some(*send_kbps);
                vec![Change::Quality {
                    peer: peer.clone(),
                    send_kbps: *send_kbps,
                }]
            }
            CallEvent::DeviceLost { device, error } => vec![Change::DeviceLost {
                device: *device,
                error: error.clone(),
                fallback: matches!(device, Device::Microphone | Device::Speaker),
            }],
            _ => vec![],
        }
    }

    /// Takes one meeting event.
    pub fn on_event(&mut self, ev: &Event) -> Vec<Change> {
        match ev {
            Event::Server(msg) => self.on_server(msg),
            Event::Reconnecting { attempt, why } => {
                self.status = Status::Reconnecting;
                vec![Change::Reconnecting {
                    attempt: *attempt,
                    why: why.clone(),
                }]
            }
            Event::Closed(c) => {
                self.status = Status::Ended;
                self.ended = Some(c.clone());
                self.people.clear();
                self.waiting.clear();
                vec![Change::Ended(c.clone())]
            }
        }
    }

    fn on_server(&mut self, msg: &ServerMsg) -> Vec<Change> {
        let one = |c| vec![c];
        match msg {
            ServerMsg::Welcome {
                peer_id,
                role,
                participants,
                locked,
                ..
            } => {
                // After a reconnect: what we knew of each link stays.
                let old: HashMap<PeerId, Person> = self
                    .people
                    .drain(..)
                    .map(|p| (p.peer_id.clone(), p))
                    .collect();
                self.people = participants
                    .iter()
                    .map(|p| {
                        let mut v = Person::from(p);
                        if let Some(o) = old.get(&v.peer_id) {
                            (v.link, v.send_kbps) = (o.link, o.send_kbps);
                        }
                        v
                    })
                    .collect();
                self.status = Status::In;
                self.me = Some(peer_id.clone());
                self.my_role = *role;
                self.locked = *locked;
                let again = std::mem::replace(&mut self.welcomed, true);
                one(Change::Entered { again })
            }
            ServerMsg::Waiting => {
                self.status = Status::Waiting;
                one(Change::Waiting)
            }
            ServerMsg::WaitingPeer {
                peer_id,
                display_name,
                guest,
                ..
            } => {
                let w = Waiter {
                    peer_id: peer_id.clone(),
                    name: display_name.clone(),
                    guest: *guest,
                };
                self.waiting.retain(|x| x.peer_id != *peer_id);
                self.waiting.push(w.clone());
                one(Change::WaitingPeer(w))
            }
            ServerMsg::WaitingDone { peer_id } => {
                self.waiting.retain(|x| x.peer_id != *peer_id);
                one(Change::WaitingDone(peer_id.clone()))
            }
            ServerMsg::PeerJoined { participant } => {
                let p = Person::from(participant);
                self.people.retain(|x| x.peer_id != p.peer_id);
                self.people.push(p.clone());
                one(Change::PeerJoined(p))
            }
            ServerMsg::PeerLeft { peer_id } => {
                let name = self.name(peer_id);
                self.people.retain(|x| x.peer_id != *peer_id);
                one(Change::PeerLeft {
                    peer: peer_id.clone(),
                    name,
                })
            }
            ServerMsg::MediaState { peer_id, media } => {
                let name = self.name(peer_id);
                if let Some(p) = self.person(peer_id) {
                    p.media = *media;
                }
                one(Change::Media {
                    peer: peer_id.clone(),
                    name,
                    media: *media,
                })
            }
            ServerMsg::Hand { peer_id, raised } => {
                let name = self.name(peer_id);
                if self.me.as_ref() == Some(peer_id) {
                    self.hand = *raised;
                }
                if let Some(p) = self.person(peer_id) {
                    p.hand = *raised;
                }
                one(Change::Hand {
                    peer: peer_id.clone(),
                    name,
                    raised: *raised,
                })
            }
            ServerMsg::Reaction { peer_id, emoji } => one(Change::Reaction {
                peer: peer_id.clone(),
                name: self.name(peer_id),
                emoji: emoji.clone(),
            }),
            ServerMsg::RoleChanged { peer_id, role } => {
                if self.me.as_ref() == Some(peer_id) {
                    self.my_role = *role;
                    return one(Change::Role {
                        peer: None,
                        name: self.my_name.clone(),
                        role: *role,
                    });
                }
                let name = self.name(peer_id);
                if let Some(p) = self.person(peer_id) {
                    p.role = *role;
                }
                one(Change::Role {
                    peer: Some(peer_id.clone()),
                    name,
                    role: *role,
                })
            }
            ServerMsg::LockChanged { locked } => {
                self.locked = *locked;
                one(Change::Locked(*locked))
            }
            ServerMsg::MutedByHost => one(Change::MutedByHost),
            ServerMsg::Chat { message } => {
                if self.add_chat(message.clone()) {
                    one(Change::Chat(message.clone()))
                } else {
                    vec![]
                }
            }
            ServerMsg::ChatAck {
                client_msg_id,
                id,
                seq,
            } => {
                let Some(text) = self.pending.remove(client_msg_id) else {
                    return vec![];
                };
                let message = ChatMessage {
                    id: id.clone(),
                    seq: *seq,
                    sender: self
                        .my_user
                        .clone()
                        .unwrap_or_else(|| UserId(String::new())),
                    sender_name: self.my_name.clone(),
                    guest: false,
                    text,
                    at_ms: crate::clock::unix_ms(),
                };
                self.add_chat(message.clone());
                one(Change::ChatAck {
                    client_msg_id: client_msg_id.clone(),
                    message,
                })
            }
            ServerMsg::Error { code, message } => one(Change::Error {
                code: *code,
                message: message.clone(),
            }),
            ServerMsg::ServerShutdown => one(Change::ServerRestarting),
            // Removed, denied, ended: the session's `Closed` follows and says it.
            _ => vec![],
        }
    }
}

#[cfg(test)]
#[path = "room_tests.rs"]
mod tests;
