//! Unit tests of the room state machine: every rule, no I/O.

use parley_shared::api::Role;
use parley_shared::signal::{IceCandidate, MediaState, ServerMsg};
use parley_shared::{ErrorCode, PeerId, UserId};

use super::state::{Bar, Effect, Input, Room, RoomConfig, Stored};

const GRACE: i64 = 30_000;

fn pid(s: &str) -> PeerId {
    PeerId(s.into())
}

fn uid(s: &str) -> UserId {
    UserId(format!("u-{s}"))
}

fn room(waiting_room: bool) -> Room {
    Room::new(
        RoomConfig {
            grace_ms: GRACE,
            max_peers: 4,
            max_waiting: 3,
            max_waiting_guests: 2,
        },
        uid("host"),
        false,
        waiting_room,
    )
}

fn join(r: &mut Room, who: &str, role: Role) -> Vec<Effect> {
    join_with(r, who, role, false, None)
}

fn join_with(
    r: &mut Room,
    who: &str,
    role: Role,
    admitted: bool,
    resume: Option<&str>,
) -> Vec<Effect> {
    join_as(r, who, who, role, admitted, resume)
}

/// Joins peer `peer` as user `user` (one user may have several sockets).
fn join_as(
    r: &mut Room,
    peer: &str,
    user: &str,
    role: Role,
    admitted: bool,
    resume: Option<&str>,
) -> Vec<Effect> {
    r.handle(
        Input::Join {
            peer: pid(peer),
            user: uid(user),
            name: user.to_uppercase(),
            role,
            admitted,
            guest: false,
            resume_token: format!("tok-{peer}"),
            resume: resume.map(String::from),
        },
        0,
    )
}

/// Joins a guest (no account) named `name` as peer and user `who`.
fn join_guest(r: &mut Room, who: &str, name: &str) -> Vec<Effect> {
    r.handle(
        Input::Join {
            peer: pid(who),
            user: uid(who),
            name: name.into(),
            role: Role::Participant,
            admitted: false,
            guest: true,
            resume_token: format!("tok-{who}"),
            resume: None,
        },
        0,
    )
}

fn sent_to<'a>(fx: &'a [Effect], to: &str) -> Vec<&'a ServerMsg> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send(p, m) if p.as_str() == to => Some(m),
            _ => None,
        })
        .collect()
}

fn error_to(fx: &[Effect], to: &str) -> Option<ErrorCode> {
    sent_to(fx, to).iter().find_map(|m| match m {
        ServerMsg::Error { code, .. } => Some(*code),
        _ => None,
    })
}

fn welcomed(fx: &[Effect], who: &str) -> Option<(Role, Vec<String>, bool)> {
    fx.iter().find_map(|e| match e {
        Effect::Welcome {
            peer,
            role,
            participants,
            resumed,
            ..
        } if peer.as_str() == who => Some((
            *role,
            participants.iter().map(|p| p.peer_id.to_string()).collect(),
            *resumed,
        )),
        _ => None,
    })
}

fn closed(fx: &[Effect], who: &str) -> bool {
    fx.iter()
        .any(|e| matches!(e, Effect::Close(p) if p.as_str() == who))
}

#[test]
fn join_welcomes_and_announces() {
    let mut r = room(false);
    let fx = join(&mut r, "host", Role::Participant);
    assert_eq!(
        welcomed(&fx, "host"),
        Some((Role::Host, vec![], false)),
        "the owner is host"
    );
    let fx = join(&mut r, "ann", Role::Participant);
    assert_eq!(
        welcomed(&fx, "ann"),
        Some((Role::Participant, vec!["host".into()], false))
    );
    assert!(
        matches!(sent_to(&fx, "host")[..], [ServerMsg::PeerJoined { participant }] if participant.peer_id == pid("ann"))
    );
    assert!(
        sent_to(&fx, "ann").is_empty(),
        "no echo of one's own arrival"
    );
    assert!(fx.contains(&Effect::Store(Stored::Joined(uid("ann")))));
    let fx = join(&mut r, "bob", Role::Participant);
    assert_eq!(
        welcomed(&fx, "bob").unwrap().1,
        vec!["host".to_string(), "ann".into()],
        "oldest first"
    );
}

#[test]
fn leave_and_drop_with_grace() {
    let mut r = room(false);
    join(&mut r, "host", Role::Host);
    join(&mut r, "ann", Role::Participant);
    join(&mut r, "bob", Role::Participant);
    let fx = r.handle(Input::Leave { peer: pid("bob") }, 0);
    assert!(
        matches!(sent_to(&fx, "ann")[..], [ServerMsg::PeerLeft { peer_id }] if *peer_id == pid("bob"))
    );
    assert!(closed(&fx, "bob"));
    assert!(fx.contains(&Effect::Store(Stored::Left(uid("bob")))));

    // A dropped socket keeps its slot: nobody is told yet.
    let fx = r.handle(Input::Dropped { peer: pid("ann") }, 1_000);
    assert!(fx.is_empty());
    assert_eq!(r.next_deadline(), Some(1_000 + GRACE));
    assert!(r.handle(Input::Tick, 1_000 + GRACE - 1).is_empty());
    let fx = r.handle(Input::Tick, 1_000 + GRACE);
    assert!(
        matches!(sent_to(&fx, "host")[..], [ServerMsg::PeerLeft { peer_id }] if *peer_id == pid("ann"))
    );
    assert!(r.peer(&pid("ann")).is_none());
}

#[test]
fn resume_within_grace_restores_peer_state() {
    let mut r = room(false);
    join(&mut r, "host", Role::Host);
    join(&mut r, "ann", Role::Participant);
    r.handle(
        Input::Hand {
            peer: pid("ann"),
            raised: true,
        },
        0,
    );
    r.handle(
        Input::Media {
            peer: pid("ann"),
            media: MediaState {
                audio: true,
                video: true,
                screen: false,
            },
        },
        0,
    );
    r.handle(
        Input::Promote {
            by: pid("host"),
            peer: pid("ann"),
        },
        0,
    );
    r.handle(Input::Dropped { peer: pid("ann") }, 5_000);

    // Wrong token: treated as a new peer (a fresh id), the old slot stays until it expires.
    let fx = r.handle(
        Input::Join {
            peer: pid("ann2"),
            user: uid("ann"),
            name: "ANN".into(),
            role: Role::Cohost,
            admitted: true,
            guest: false,
            resume_token: "t2".into(),
            resume: Some("bogus".into()),
        },
        6_000,
    );
    assert!(welcomed(&fx, "ann2").is_some());
    r.handle(Input::Leave { peer: pid("ann2") }, 6_000);

    // Another user cannot steal the slot with the token.
    let fx = join_with(&mut r, "eve", Role::Participant, false, Some("tok-ann"));
    assert_eq!(welcomed(&fx, "eve").map(|w| w.2), Some(false));

    let fx = r.handle(
        Input::Join {
            peer: pid("ann3"),
            user: uid("ann"),
            name: "ANN".into(),
            role: Role::Cohost,
            admitted: true,
            guest: false,
            resume_token: "t3".into(),
            resume: Some("tok-ann".into()),
        },
        20_000,
    );
    let (role, _, resumed) = welcomed(&fx, "ann").expect("welcomed under the old peer id");
    assert_eq!((role, resumed), (Role::Cohost, true));
    assert!(fx.contains(&Effect::Replace(pid("ann"))));
    assert!(
        sent_to(&fx, "host").is_empty(),
        "others see no leave/join for a resume"
    );
    let p = r.peer(&pid("ann")).unwrap();
    assert!(p.hand && p.media.video);
    assert!(
        r.handle(Input::Tick, 5_000 + GRACE + 1).is_empty(),
        "the resumed peer no longer expires"
    );
}

#[test]
fn relay_reaches_only_the_target_in_the_room() {
    let mut r = room(false);
    join(&mut r, "host", Role::Host);
    join(&mut r, "ann", Role::Participant);
    join(&mut r, "bob", Role::Participant);
    let fx = r.handle(
        Input::Offer {
            from: pid("ann"),
            to: pid("bob"),
            sdp: "v=0".into(),
        },
        0,
    );
    assert_eq!(
        fx,
        vec![Effect::Send(
            pid("bob"),
            ServerMsg::Offer {
                from: pid("ann"),
                sdp: "v=0".into()
            }
        )]
    );
    let cand = IceCandidate {
        candidate: "candidate:1".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    };
    let fx = r.handle(
        Input::Ice {
            from: pid("bob"),
            to: pid("ann"),
            candidate: cand.clone(),
        },
        0,
    );
    assert_eq!(
        fx,
        vec![Effect::Send(
            pid("ann"),
            ServerMsg::Ice {
                from: pid("bob"),
                candidate: cand
            }
        )]
    );
    for to in ["nobody", "ann"] {
        let fx = r.handle(
            Input::Answer {
                from: pid("ann"),
                to: pid(to),
                sdp: "x".into(),
            },
            0,
        );
        assert_eq!(
            error_to(&fx, "ann"),
            Some(ErrorCode::PeerNotFound),
            "to {to}"
        );
        assert_eq!(fx.len(), 1);
    }
}

#[test]
fn waiting_room_admit_and_deny() {
    let mut r = room(true);
    join(&mut r, "host", Role::Host);
    let fx = join(&mut r, "ann", Role::Participant);
    assert_eq!(sent_to(&fx, "ann"), vec![&ServerMsg::Waiting]);
    assert!(
        matches!(sent_to(&fx, "host")[..], [ServerMsg::WaitingPeer { peer_id, .. }] if *peer_id == pid("ann"))
    );
    // A waiting peer cannot signal or be signalled.
    let fx = r.handle(
        Input::Offer {
            from: pid("ann"),
            to: pid("host"),
            sdp: "x".into(),
        },
        0,
    );
    assert_eq!(error_to(&fx, "ann"), Some(ErrorCode::OutOfState));
    let fx = r.handle(
        Input::Offer {
            from: pid("host"),
            to: pid("ann"),
            sdp: "x".into(),
        },
        0,
    );
    assert_eq!(error_to(&fx, "host"), Some(ErrorCode::PeerNotFound));

    join(&mut r, "bob", Role::Participant);
    let fx = r.handle(
        Input::Admit {
            by: pid("bob"),
            peer: pid("ann"),
        },
        0,
    );
    assert_eq!(
        error_to(&fx, "bob"),
        Some(ErrorCode::OutOfState),
        "a waiting peer cannot admit"
    );
    let fx = r.handle(
        Input::Admit {
            by: pid("host"),
            peer: pid("ann"),
        },
        0,
    );
    assert!(welcomed(&fx, "ann").is_some());
    assert!(sent_to(&fx, "host")
        .iter()
        .any(|m| matches!(m, ServerMsg::WaitingDone { .. })));
    assert!(sent_to(&fx, "host")
        .iter()
        .any(|m| matches!(m, ServerMsg::PeerJoined { .. })));

    let fx = r.handle(
        Input::Deny {
            by: pid("host"),
            peer: pid("bob"),
        },
        0,
    );
    assert_eq!(sent_to(&fx, "bob"), vec![&ServerMsg::Denied]);
    assert!(closed(&fx, "bob"));
    assert!(fx.contains(&Effect::Store(Stored::Barred(uid("bob"), Bar::Denied))));
    // A denied user cannot come back to the waiting room.
    let fx = join(&mut r, "bob", Role::Participant);
    assert_eq!(error_to(&fx, "bob"), Some(ErrorCode::NotParticipant));
    assert!(closed(&fx, "bob"));
    // Someone let in before skips the waiting room.
    let fx = join_with(&mut r, "cat", Role::Participant, true, None);
    assert!(welcomed(&fx, "cat").is_some());
}

#[test]
fn lock_blocks_newcomers_only() {
    let mut r = room(false);
    join(&mut r, "host", Role::Host);
    join(&mut r, "ann", Role::Participant);
    let fx = r.handle(
        Input::Lock {
            by: pid("ann"),
            locked: true,
        },
        0,
    );
    assert_eq!(error_to(&fx, "ann"), Some(ErrorCode::NotHost));
    let fx = r.handle(
        Input::Lock {
            by: pid("host"),
            locked: true,
        },
        0,
    );
    assert!(sent_to(&fx, "ann").contains(&&ServerMsg::LockChanged { locked: true }));
    assert!(fx.contains(&Effect::Store(Stored::Locked(true))));
    let fx = join(&mut r, "bob", Role::Participant);
    assert_eq!(error_to(&fx, "bob"), Some(ErrorCode::MeetingLocked));
    assert!(closed(&fx, "bob"));
    assert!(welcomed(
        &join_with(&mut r, "old", Role::Participant, true, None),
        "old"
    )
    .is_some());
}

#[test]
fn mute_remove_promote_end() {
    let mut r = room(false);
    join(&mut r, "host", Role::Host);
    join(&mut r, "ann", Role::Participant);
    join(&mut r, "bob", Role::Participant);
    r.handle(
        Input::Media {
            peer: pid("bob"),
            media: MediaState {
                audio: true,
                video: true,
                screen: false,
            },
        },
        0,
    );

    let fx = r.handle(
        Input::Mute {
            by: pid("ann"),
            peer: pid("bob"),
        },
        0,
    );
    assert_eq!(error_to(&fx, "ann"), Some(ErrorCode::NotHost));
    let fx = r.handle(
        Input::Promote {
            by: pid("host"),
            peer: pid("ann"),
        },
        0,
    );
    assert!(sent_to(&fx, "bob").contains(&&ServerMsg::RoleChanged {
        peer_id: pid("ann"),
        role: Role::Cohost
    }));
    let fx = r.handle(
        Input::Promote {
            by: pid("ann"),
            peer: pid("bob"),
        },
        0,
    );
    assert_eq!(
        error_to(&fx, "ann"),
        Some(ErrorCode::NotHost),
        "only the host promotes"
    );

    let fx = r.handle(
        Input::Mute {
            by: pid("ann"),
            peer: pid("bob"),
        },
        0,
    );
    assert_eq!(sent_to(&fx, "bob"), vec![&ServerMsg::MutedByHost]);
    let muted = MediaState {
        audio: false,
        video: true,
        screen: false,
    };
    assert!(sent_to(&fx, "host").contains(&&ServerMsg::MediaState {
        peer_id: pid("bob"),
        media: muted
    }));

    let fx = r.handle(
        Input::Remove {
            by: pid("ann"),
            peer: pid("host"),
        },
        0,
    );
    assert_eq!(
        error_to(&fx, "ann"),
        Some(ErrorCode::NotHost),
        "nobody removes the host"
    );
    let fx = r.handle(
        Input::Remove {
            by: pid("ann"),
            peer: pid("bob"),
        },
        0,
    );
    assert_eq!(sent_to(&fx, "bob"), vec![&ServerMsg::Removed]);
    assert!(closed(&fx, "bob"));
    assert!(sent_to(&fx, "host").contains(&&ServerMsg::PeerLeft {
        peer_id: pid("bob")
    }));
    let fx = join_with(&mut r, "bob", Role::Participant, true, None);
    assert_eq!(
        error_to(&fx, "bob"),
        Some(ErrorCode::NotParticipant),
        "a removed user cannot rejoin"
    );

    let fx = r.handle(Input::End { by: pid("ann") }, 0);
    assert_eq!(
        error_to(&fx, "ann"),
        Some(ErrorCode::NotHost),
        "a co-host does not end the meeting"
    );
    assert!(!r.has_ended());
    let fx = r.handle(Input::End { by: pid("host") }, 0);
    for who in ["host", "ann"] {
        assert!(sent_to(&fx, who).contains(&&ServerMsg::MeetingEnded));
        assert!(closed(&fx, who));
    }
    assert!(fx.contains(&Effect::Store(Stored::Ended)));
    assert!(r.has_ended() && r.is_empty());
    let fx = join(&mut r, "cat", Role::Participant);
    assert_eq!(error_to(&fx, "cat"), Some(ErrorCode::MeetingEnded));
}

#[test]
fn host_leaving_hands_over_to_longest_present_and_owner_reclaims() {
    let mut r = room(false);
    join(&mut r, "host", Role::Host);
    join(&mut r, "ann", Role::Participant);
    join(&mut r, "bob", Role::Participant);
    let fx = r.handle(Input::Leave { peer: pid("host") }, 0);
    assert!(sent_to(&fx, "bob").contains(&&ServerMsg::RoleChanged {
        peer_id: pid("ann"),
        role: Role::Host
    }));
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::Store(Stored::Role(..)))),
        "a stand-in host is not stored: {fx:?}"
    );
    assert_eq!(r.peer(&pid("ann")).unwrap().role, Role::Host);
    // The new host can run the meeting.
    let fx = r.handle(
        Input::Lock {
            by: pid("ann"),
            locked: true,
        },
        0,
    );
    assert!(error_to(&fx, "ann").is_none());
    // The owner comes back (past the lock) as host; the stand-in steps back to their role.
    let fx = join_with(&mut r, "host", Role::Host, true, None);
    assert_eq!(welcomed(&fx, "host").unwrap().0, Role::Host);
    assert_eq!(r.peer(&pid("ann")).unwrap().role, Role::Participant);
    assert!(sent_to(&fx, "bob").contains(&&ServerMsg::RoleChanged {
        peer_id: pid("ann"),
        role: Role::Participant
    }));
    assert!(!fx
        .iter()
        .any(|e| matches!(e, Effect::Store(Stored::Role(..)))));
}

#[test]
fn remove_closes_every_socket_of_the_user_and_bars_them() {
    let mut r = room(false);
    join(&mut r, "host", Role::Host);
    join_as(&mut r, "bob-1", "bob", Role::Participant, false, None);
    join_as(&mut r, "bob-2", "bob", Role::Participant, false, None);
    let fx = r.handle(
        Input::Remove {
            by: pid("host"),
            peer: pid("bob-1"),
        },
        0,
    );
    for peer in ["bob-1", "bob-2"] {
        assert_eq!(sent_to(&fx, peer), vec![&ServerMsg::Removed], "{peer}");
        assert!(closed(&fx, peer), "{peer} closed");
    }
    assert!(r.peer(&pid("bob-2")).is_none());
    // The bar is stored after the `left` rows, and the action is audited.
    let last_store = fx
        .iter()
        .rfind(|e| matches!(e, Effect::Store(Stored::Barred(..) | Stored::Left(_))));
    assert_eq!(
        last_store,
        Some(&Effect::Store(Stored::Barred(uid("bob"), Bar::Removed)))
    );
    assert!(fx.contains(&Effect::Store(Stored::Audit {
        actor: uid("host"),
        action: "removed",
        target: Some(uid("bob")),
    })));
    // Back on a third socket, even as "admitted": refused until a host re-admits.
    let fx = join_as(&mut r, "bob-3", "bob", Role::Participant, true, None);
    assert_eq!(error_to(&fx, "bob-3"), Some(ErrorCode::NotParticipant));
    r.handle(Input::Readmit { user: uid("bob") }, 0);
    let fx = join_as(&mut r, "bob-4", "bob", Role::Participant, true, None);
    assert!(welcomed(&fx, "bob-4").is_some());
}

#[test]
fn deny_turns_away_every_waiting_socket_of_the_user() {
    let mut r = room(true);
    join(&mut r, "host", Role::Host);
    join_as(&mut r, "eve-1", "eve", Role::Participant, false, None);
    join_as(&mut r, "eve-2", "eve", Role::Participant, false, None);
    let fx = r.handle(
        Input::Deny {
            by: pid("host"),
            peer: pid("eve-2"),
        },
        0,
    );
    for peer in ["eve-1", "eve-2"] {
        assert_eq!(sent_to(&fx, peer), vec![&ServerMsg::Denied], "{peer}");
        assert!(closed(&fx, peer));
    }
    assert!(r.is_empty() || r.peer(&pid("eve-1")).is_none());
}

#[test]
fn the_waiting_room_has_a_cap() {
    let mut r = room(true);
    join(&mut r, "host", Role::Host);
    for who in ["w1", "w2", "w3"] {
        let fx = join(&mut r, who, Role::Participant);
        assert_eq!(sent_to(&fx, who), vec![&ServerMsg::Waiting]);
    }
    let fx = join(&mut r, "w4", Role::Participant);
    assert_eq!(error_to(&fx, "w4"), Some(ErrorCode::MeetingFull));
    assert!(closed(&fx, "w4"));
    // Admitted users and hosts are not held back by a full waiting room.
    let fx = join_with(&mut r, "old", Role::Participant, true, None);
    assert!(welcomed(&fx, "old").is_some());
}

#[test]
fn presence_broadcasts_and_limits() {
    let mut r = room(false);
    join(&mut r, "host", Role::Host);
    join(&mut r, "ann", Role::Participant);
    let fx = r.handle(
        Input::Reaction {
            peer: pid("ann"),
            emoji: "🎉".into(),
        },
        0,
    );
    assert_eq!(
        fx,
        vec![Effect::Send(
            pid("host"),
            ServerMsg::Reaction {
                peer_id: pid("ann"),
                emoji: "🎉".into()
            }
        )]
    );
    let fx = r.handle(
        Input::Hand {
            peer: pid("ann"),
            raised: true,
        },
        0,
    );
    assert_eq!(
        fx,
        vec![Effect::Send(
            pid("host"),
            ServerMsg::Hand {
                peer_id: pid("ann"),
                raised: true
            }
        )]
    );
    let fx = r.handle(
        Input::Hand {
            peer: pid("ghost"),
            raised: true,
        },
        0,
    );
    assert_eq!(error_to(&fx, "ghost"), Some(ErrorCode::OutOfState));
    join(&mut r, "b", Role::Participant);
    join(&mut r, "c", Role::Participant);
    let fx = join(&mut r, "d", Role::Participant);
    assert_eq!(
        error_to(&fx, "d"),
        Some(ErrorCode::MeetingFull),
        "max_peers = 4"
    );
    let p = r.participants();
    assert!(p[1].hand_raised);
}

/// Whom a chat relay reaches: the peers in the call in join order, never one in the waiting
/// room, the same peers `participants` lists.
#[test]
fn a_broadcast_reaches_the_peers_in_the_call_and_no_waiting_one() {
    let mut r = room(true);
    join(&mut r, "host", Role::Host);
    join(&mut r, "ann", Role::Participant);
    join(&mut r, "bob", Role::Participant);
    r.handle(
        Input::Admit {
            by: pid("host"),
            peer: pid("bob"),
        },
        0,
    );
    assert_eq!(r.in_call_ids(), vec![pid("host"), pid("bob")]);
    let listed: Vec<PeerId> = r.participants().into_iter().map(|p| p.peer_id).collect();
    assert_eq!(r.in_call_ids(), listed);
}

#[test]
fn a_guest_is_never_heir_and_a_hostless_meeting_goes_on() {
    let mut r = room(false);
    join(&mut r, "host", Role::Host);
    join_guest(&mut r, "gus", "Gus");
    join(&mut r, "ann", Role::Participant);
    let fx = r.handle(Input::Leave { peer: pid("host") }, 0);
    assert_eq!(r.peer(&pid("gus")).unwrap().role, Role::Participant);
    assert_eq!(
        r.peer(&pid("ann")).unwrap().role,
        Role::Host,
        "the longest-present signed-in person stands in, not the earlier guest"
    );
    assert!(sent_to(&fx, "gus").contains(&&ServerMsg::RoleChanged {
        peer_id: pid("ann"),
        role: Role::Host
    }));

    // Only guests left: nobody stands in, and the call goes on (hands, chat).
    r.handle(Input::Leave { peer: pid("ann") }, 0);
    assert_eq!(r.peer(&pid("gus")).unwrap().role, Role::Participant);
    join_guest(&mut r, "gia", "Gia");
    assert_eq!(r.peer(&pid("gia")).unwrap().role, Role::Participant);
    let fx = r.handle(
        Input::Hand {
            peer: pid("gus"),
            raised: true,
        },
        0,
    );
    assert!(error_to(&fx, "gus").is_none());
    let fx = r.handle(
        Input::Lock {
            by: pid("gus"),
            locked: true,
        },
        0,
    );
    assert_eq!(error_to(&fx, "gus"), Some(ErrorCode::NotHost));
    let fx = r.handle(Input::End { by: pid("gus") }, 0);
    assert_eq!(error_to(&fx, "gus"), Some(ErrorCode::NotHost));
    assert!(!r.has_ended());
}

#[test]
fn a_co_host_is_heir_before_longer_present_participants() {
    let mut r = room(false);
    join(&mut r, "host", Role::Host);
    join(&mut r, "ann", Role::Participant);
    join(&mut r, "cy", Role::Cohost);
    r.handle(Input::Leave { peer: pid("host") }, 0);
    assert_eq!(r.peer(&pid("cy")).unwrap().role, Role::Host);
    assert_eq!(r.peer(&pid("ann")).unwrap().role, Role::Participant);
}

#[test]
fn a_stand_in_runs_the_call_but_cannot_promote_end_or_remove_co_hosts() {
    let mut r = room(true);
    join(&mut r, "host", Role::Host);
    join_with(&mut r, "ann", Role::Participant, true, None);
    join_with(&mut r, "cy", Role::Cohost, true, None);
    join_with(&mut r, "bob", Role::Participant, true, None);
    r.handle(Input::Leave { peer: pid("host") }, 0);
    assert_eq!(
        r.peer(&pid("cy")).unwrap().role,
        Role::Host,
        "co-host first"
    );
    r.handle(Input::Leave { peer: pid("cy") }, 0);
    // Cy comes back and is a co-host again; Ann stood in meanwhile.
    assert_eq!(r.peer(&pid("ann")).unwrap().role, Role::Host);
    join_with(&mut r, "cy", Role::Cohost, true, None);

    let fx = r.handle(
        Input::Promote {
            by: pid("ann"),
            peer: pid("bob"),
        },
        0,
    );
    assert_eq!(error_to(&fx, "ann"), Some(ErrorCode::NotHost));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Store(_))), "{fx:?}");
    let fx = r.handle(Input::End { by: pid("ann") }, 0);
    assert_eq!(error_to(&fx, "ann"), Some(ErrorCode::NotHost));
    assert!(!r.has_ended() && !fx.contains(&Effect::Store(Stored::Ended)));
    let fx = r.handle(
        Input::Remove {
            by: pid("ann"),
            peer: pid("cy"),
        },
        0,
    );
    assert_eq!(error_to(&fx, "ann"), Some(ErrorCode::NotHost));
    assert!(r.peer(&pid("cy")).is_some());

    // What a stand-in may do: lock, mute, admit, remove a participant.
    let fx = r.handle(
        Input::Lock {
            by: pid("ann"),
            locked: true,
        },
        0,
    );
    assert!(error_to(&fx, "ann").is_none());
    let fx = join(&mut r, "wes", Role::Participant);
    assert_eq!(error_to(&fx, "wes"), Some(ErrorCode::MeetingLocked));
    let fx = r.handle(
        Input::Remove {
            by: pid("ann"),
            peer: pid("bob"),
        },
        0,
    );
    assert_eq!(sent_to(&fx, "bob"), vec![&ServerMsg::Removed]);

    // The owner returns: host again, the stand-in back to participant.
    let fx = join_with(&mut r, "host", Role::Host, true, None);
    assert_eq!(welcomed(&fx, "host").unwrap().0, Role::Host);
    assert_eq!(r.peer(&pid("ann")).unwrap().role, Role::Participant);
}

#[test]
fn the_owner_cannot_promote_a_guest() {
    let mut r = room(false);
    join(&mut r, "host", Role::Host);
    join_guest(&mut r, "gus", "Gus");
    let fx = r.handle(
        Input::Promote {
            by: pid("host"),
            peer: pid("gus"),
        },
        0,
    );
    assert_eq!(error_to(&fx, "host"), Some(ErrorCode::GuestNotAllowed));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Store(_))));
}

#[test]
fn guests_have_seats_of_their_own_in_the_waiting_room() {
    let mut r = room(true);
    join(&mut r, "host", Role::Host);
    join_guest(&mut r, "g1", "G1");
    join_guest(&mut r, "g2", "G2");
    let fx = join_guest(&mut r, "g3", "G3");
    assert_eq!(error_to(&fx, "g3"), Some(ErrorCode::MeetingFull));
    // A signed-in invitee still finds a seat.
    let fx = join(&mut r, "ann", Role::Participant);
    assert_eq!(sent_to(&fx, "ann"), vec![&ServerMsg::Waiting]);

    // Turning guest entry off sends the waiting guests away, and nobody else.
    // Not by a participant, and only the owner or a stored co-host over the socket.
    join_with(&mut r, "bob", Role::Participant, true, None);
    let fx = r.handle(
        Input::CloseGuestEntry {
            by: Some(pid("bob")),
        },
        0,
    );
    assert_eq!(error_to(&fx, "bob"), Some(ErrorCode::NotHost));
    assert!(r.peer(&pid("g1")).is_some());
    let fx = r.handle(
        Input::CloseGuestEntry {
            by: Some(pid("host")),
        },
        0,
    );
    assert!(fx.contains(&Effect::Store(Stored::GuestsOff)));
    for g in ["g1", "g2"] {
        assert_eq!(error_to(&fx, g), Some(ErrorCode::GuestsNotAllowed));
        assert!(closed(&fx, g));
        assert!(r.peer(&pid(g)).is_none());
    }
    assert!(r.peer(&pid("ann")).is_some());
    assert!(sent_to(&fx, "host").contains(&&ServerMsg::WaitingDone { peer_id: pid("g1") }));
}

#[test]
fn a_guest_cannot_take_a_name_that_passes_for_someone_present() {
    let mut r = room(false);
    r.handle(
        Input::Join {
            peer: pid("host"),
            user: uid("host"),
            name: "Dana".into(),
            role: Role::Host,
            admitted: true,
            guest: false,
            resume_token: "t".into(),
            resume: None,
        },
        0,
    );
    for name in ["dana", "DANA", "Da na", "D\u{0430}na"] {
        let fx = join_guest(&mut r, "eve", name);
        assert_eq!(error_to(&fx, "eve"), Some(ErrorCode::NameTaken), "{name}");
        assert!(closed(&fx, "eve"));
    }
    let fx = join_guest(&mut r, "eve", "Eve");
    assert!(welcomed(&fx, "eve").is_some());
}

#[test]
fn a_host_who_arrives_or_stands_in_hears_who_is_waiting() {
    let mut r = room(true);
    join_with(&mut r, "ann", Role::Participant, true, None);
    join(&mut r, "wes", Role::Participant);
    let fx = join(&mut r, "host", Role::Host);
    assert!(
        sent_to(&fx, "host")
            .iter()
            .any(|m| matches!(m, ServerMsg::WaitingPeer { peer_id, .. } if peer_id == &pid("wes"))),
        "{fx:?}"
    );
    // The host leaves; Ann stands in and is told too.
    let fx = r.handle(Input::Leave { peer: pid("host") }, 0);
    assert!(sent_to(&fx, "ann")
        .iter()
        .any(|m| matches!(m, ServerMsg::WaitingPeer { peer_id, .. } if peer_id == &pid("wes"))));
}
