#![allow(clippy::unwrap_used)]

use parley_shared::signal::{ChatMessage, MediaState, Participant, ServerMsg};

use super::*;

fn pid(s: &str) -> PeerId {
    PeerId(s.into())
}

fn someone(peer: &str, name: &str) -> Participant {
    Participant {
        peer_id: pid(peer),
        user_id: UserId(format!("u-{peer}")),
        display_name: name.into(),
        role: Role::Participant,
        media: MediaState::default(),
        hand_raised: false,
        guest: false,
    }
}

fn welcome(participants: Vec<Participant>) -> Event {
    Event::Server(ServerMsg::Welcome {
        peer_id: pid("me"),
        role: Role::Participant,
        participants,
        ice_servers: vec![],
        resume_token: "r".into(),
        locked: false,
        last_seq: 0,
    })
}

fn server(m: ServerMsg) -> Event {
    Event::Server(m)
}

fn chat(seq: i64, text: &str) -> ChatMessage {
    ChatMessage {
        id: format!("m{seq}"),
        seq,
        sender: UserId("u-bob".into()),
        sender_name: "Bob".into(),
        guest: false,
        text: text.into(),
        at_ms: 0,
    }
}

#[test]
fn the_roster_follows_the_meeting() {
    let mut r = Room::new("Ann");
    assert_eq!(r.status, Status::Joining);
    assert_eq!(
        r.on_event(&welcome(vec![someone("b", "Bob")])),
        vec![Change::Entered { again: false }]
    );
    assert_eq!((r.status, r.names()), (Status::In, vec!["Bob"]));
    let joined = r.on_event(&server(ServerMsg::PeerJoined {
        participant: someone("c", "Cyd"),
    }));
    assert!(matches!(&joined[..], [Change::PeerJoined(p)] if p.name == "Cyd"));
    assert_eq!(r.find("cyd"), Some(pid("c")));
    let media = MediaState {
        audio: true,
        video: true,
        screen: false,
    };
    r.on_event(&server(ServerMsg::MediaState {
        peer_id: pid("c"),
        media,
    }));
    assert_eq!(r.people[1].media, media);
    r.on_event(&server(ServerMsg::Hand {
        peer_id: pid("b"),
        raised: true,
    }));
    assert!(r.people[0].hand);
    // Who left is named (the name is gone from the roster after).
    assert_eq!(
        r.on_event(&server(ServerMsg::PeerLeft { peer_id: pid("b") })),
        vec![Change::PeerLeft {
            peer: pid("b"),
            name: "Bob".into()
        }]
    );
    assert_eq!(r.names(), vec!["Cyd"]);
    assert_eq!(r.name(&pid("b")), "peer b");
}

#[test]
fn roles_waiting_room_and_lock() {
    let mut r = Room::new("Ann");
    r.on_event(&welcome(vec![someone("b", "Bob")]));
    assert_eq!(
        r.on_event(&server(ServerMsg::RoleChanged {
            peer_id: pid("me"),
            role: Role::Cohost
        })),
        vec![Change::Role {
            peer: None,
            name: "Ann".into(),
            role: Role::Cohost
        }]
    );
    assert_eq!(r.my_role, Role::Cohost);
    r.on_event(&server(ServerMsg::RoleChanged {
        peer_id: pid("b"),
        role: Role::Cohost,
    }));
    assert_eq!(r.people[0].role, Role::Cohost);
    r.on_event(&server(ServerMsg::WaitingPeer {
        peer_id: pid("w"),
        user_id: UserId("u-w".into()),
        display_name: "Wes".into(),
        guest: false,
    }));
    assert_eq!(
        r.find("wes"),
        Some(pid("w")),
        "a waiting person can be admitted by name"
    );
    r.on_event(&server(ServerMsg::WaitingDone { peer_id: pid("w") }));
    assert!(r.waiting.is_empty());
    r.on_event(&server(ServerMsg::LockChanged { locked: true }));
    assert!(r.locked);
}

#[test]
fn chat_is_kept_once_in_order_and_acks_show_our_own() {
    let mut r = Room::new("Ann");
    r.on_event(&welcome(vec![]));
    assert_eq!(
        r.on_event(&server(ServerMsg::Chat {
            message: chat(2, "two")
        })),
        vec![Change::Chat(chat(2, "two"))]
    );
    // The history arrives later and fills in before it; a replay is not shown twice.
    assert!(r.add_chat(chat(1, "one")));
    assert!(!r.add_chat(chat(2, "two")));
    assert_eq!(
        r.on_event(&server(ServerMsg::Chat {
            message: chat(2, "two")
        })),
        vec![]
    );
    r.chat_sent("c1", "mine");
    let acked = r.on_event(&server(ServerMsg::ChatAck {
        client_msg_id: "c1".into(),
        id: "m3".into(),
        seq: 3,
    }));
    assert!(
        matches!(&acked[..], [Change::ChatAck { client_msg_id, message }]
            if client_msg_id == "c1" && message.text == "mine" && message.sender_name == "Ann")
    );
    let texts: Vec<&str> = r.chat.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, vec!["one", "two", "mine"]);
    // An ack for chat we did not send (another device of ours) changes nothing.
    assert_eq!(
        r.on_event(&server(ServerMsg::ChatAck {
            client_msg_id: "other".into(),
            id: "m4".into(),
            seq: 4
        })),
        vec![]
    );
}

#[test]
fn reconnects_keep_link_figures_and_endings_empty_the_room() {
    let mut r = Room::new("Ann");
    r.on_event(&welcome(vec![someone("b", "Bob")]));
    r.on_call(&CallEvent::Link {
        peer: pid("b"),
        state: LinkState::Connected,
    });
    r.on_call(&CallEvent::Quality {
        peer: pid("b"),
        send_kbps: 640,
    });
    r.on_event(&Event::Reconnecting {
        attempt: 1,
        why: "lost".into(),
    });
    assert_eq!(r.status, Status::Reconnecting);
    assert_eq!(
        r.on_event(&welcome(vec![someone("b", "Bob")])),
        vec![Change::Entered { again: true }]
    );
    assert_eq!(
        (r.people[0].link, r.people[0].send_kbps),
        (LinkState::Connected, Some(640))
    );
    r.on_event(&Event::Closed(Closed::Removed));
    assert_eq!(r.status, Status::Ended);
    assert_eq!(r.ended, Some(Closed::Removed));
    assert!(r.people.is_empty());
}

#[test]
fn lost_audio_devices_fall_back_and_video_waits() {
    let mut r = Room::new("Ann");
    for (device, fallback) in [
        (Device::Microphone, true),
        (Device::Speaker, true),
        (Device::Camera, false),
        (Device::Screen, false),
    ] {
        assert_eq!(
            r.on_call(&CallEvent::DeviceLost {
                device,
                error: "unplugged".into()
            }),
            vec![Change::DeviceLost {
                device,
                error: "unplugged".into(),
                fallback
            }]
        );
    }
}
