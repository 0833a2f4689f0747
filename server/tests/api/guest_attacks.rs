//! Guests as attackers (issue 33): each test performs one attack the way someone without an
//! account would — raw HTTP and WebSocket clients, several source addresses on 127.0.0.x,
//! bursts in parallel — against a server with default limits, and asserts what an honest
//! host, member or guest then observes.

use std::time::Duration;

use serde_json::{json, Value};

use crate::fixture::TestServer;
use crate::guests::allow_guests;

/// Enters `code` as guest `name` from `ip`; the response (201 with tokens, or the error).
async fn enter_from(s: &TestServer, ip: &str, code: &str, name: &str) -> crate::fixture::Resp {
    s.post_from(
        ip,
        "/api/guests",
        None,
        json!({"code": code, "display_name": name}),
    )
    .await
}

fn access(r: &crate::fixture::Resp) -> String {
    r.body["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Joins with `token` as `name`, and the first answer.
async fn join(s: &TestServer, token: &str, code: &str, name: &str) -> (crate::fixture::Ws, Value) {
    s.try_join(token, code, name).await
}

async fn stored_role(s: &TestServer, code: &str, user: &str) -> Option<String> {
    sqlx::query_as::<_, (String,)>(
        "SELECT p.role FROM participants p JOIN meetings m ON m.id = p.meeting_id \
         WHERE m.code = $1 AND p.user_id = $2",
    )
    .bind(code)
    .bind(user)
    .fetch_optional(&s.pool())
    .await
    .unwrap()
    .map(|(r,)| r)
}

#[tokio::test]
async fn no_guest_becomes_host_and_a_stand_in_cannot_promote_or_end() {
    let s = TestServer::start().await;
    let owner = s.register("owner").await;
    let code = s.create_meeting(&owner, json!({"title": "Board"})).await;
    allow_guests(&s, &owner, &code, true).await;
    let (mut host, _) = s.join_ws(&owner, &code).await;

    // The guest arrives first, then an attacker's free account and its accomplice.
    let g = enter_from(&s, "127.0.0.21", &code, "Gus").await.expect(201);
    let (mut guest, w) = join(&s, &access(&g), &code, "Gus").await;
    assert_eq!(w["type"], "welcome", "{w}");
    let mallory = s.register("mallory").await;
    let (mut mal, _) = s.join_ws(&mallory, &code).await;
    let accomplice = s.register("trudy").await;
    let (mut acc, _) = s.join_ws(&accomplice, &code).await;

    // The owner leaves: the longest-present signed-in person stands in, never the guest.
    host.send(json!({"type": "leave"})).await;
    let changed = guest.recv_type("role_changed").await;
    assert_ne!(
        changed["peer_id"], w["peer_id"],
        "a guest became host: {changed}"
    );
    let mal_peer = changed["peer_id"].clone();
    assert_eq!(changed["role"], "host");

    // The stand-in tries to make its accomplice co-host, then to end the meeting.
    let acc_peer = mal.recv_type("peer_joined").await["participant"]["peer_id"].clone();
    let theirs: Vec<Value> = {
        mal.send(json!({"type": "promote", "peer": acc_peer})).await;
        let e = mal.recv_type("error").await;
        mal.send(json!({"type": "end"})).await;
        let e2 = mal.recv_type("error").await;
        vec![e, e2]
    };
    for e in &theirs {
        assert_eq!(e["code"], "not_host", "{e}");
    }
    // Nor over REST: no personal link, no guest access, no end (the stand-in is not stored).
    s.post(
        &format!("/api/meetings/{code}/guest-links"),
        Some(&mallory.access),
        json!({"label": "for me"}),
    )
    .await
    .expect_err(403, "not_host");
    s.post(
        &format!("/api/meetings/{code}/end"),
        Some(&mallory.access),
        json!({}),
    )
    .await
    .expect_err(403, "not_host");
    assert_eq!(
        stored_role(&s, &code, &accomplice.id).await.as_deref(),
        Some("participant")
    );
    assert_eq!(
        stored_role(&s, &code, &mallory.id).await.as_deref(),
        Some("participant")
    );

    // The owner returns: host again, nothing of the stand-in's survives.
    let (_host, welcome) = s.join_ws(&owner, &code).await;
    assert_eq!(welcome["role"], "host");
    // (Its accomplice heard the hand-over first, then the hand-back.)
    let back = loop {
        let m = acc.recv_type("role_changed").await;
        if m["role"] != "host" {
            break m;
        }
    };
    assert_eq!(
        (&back["peer_id"], &back["role"]),
        (&mal_peer, &json!("participant"))
    );
    let m = s
        .get(&format!("/api/meetings/{code}"), Some(&owner.access))
        .await
        .expect(200);
    assert!(m.body["ended_at_ms"].is_null(), "{}", m.body);
}

#[tokio::test]
async fn a_meeting_of_guests_alone_goes_on_without_a_host() {
    let s = TestServer::start().await;
    let owner = s.register("owner").await;
    let code = s.create_meeting(&owner, json!({"title": "Open"})).await;
    allow_guests(&s, &owner, &code, true).await;
    let (mut host, _) = s.join_ws(&owner, &code).await;
    let a = enter_from(&s, "127.0.0.31", &code, "Ana").await.expect(201);
    let b = enter_from(&s, "127.0.0.32", &code, "Bea").await.expect(201);
    let (mut ga, _) = join(&s, &access(&a), &code, "Ana").await;
    let (mut gb, _) = join(&s, &access(&b), &code, "Bea").await;
    host.send(json!({"type": "leave"})).await;
    ga.recv_type("peer_left").await;
    // Nobody is made host; the guests still chat and raise hands, and cannot end it.
    ga.send(json!({"type": "end"})).await;
    assert_eq!(ga.recv_type("error").await["code"], "not_host");
    ga.send(json!({"type": "chat", "client_msg_id": "c1", "text": "still here"}))
        .await;
    let said = gb.recv_type("chat").await;
    assert_eq!(said["message"]["text"], "still here");
    gb.expect_silence(300).await;
    // The owner comes back to the meeting as host.
    let (_h, welcome) = s.join_ws(&owner, &code).await;
    assert_eq!(welcome["role"], "host");
}

#[tokio::test]
async fn a_removed_guests_pre_minted_tokens_are_refused() {
    let s = TestServer::start().await;
    let owner = s.register("owner").await;
    let code = s.create_meeting(&owner, json!({"title": "Talk"})).await;
    allow_guests(&s, &owner, &code, true).await;
    let (mut host, _) = s.join_ws(&owner, &code).await;

    // The attacker stocks up tokens from one address before misbehaving.
    let ip = "127.0.0.41";
    let mut tokens = Vec::new();
    for i in 0..3 {
        tokens.push(access(
            &enter_from(&s, ip, &code, &format!("Eve{i}"))
                .await
                .expect(201),
        ));
    }
    // Only two sign-ins per source live at once: the oldest unused one is gone already.
    let first = s.try_ws(Some(&tokens[0]), Some("parley.v1")).await;
    assert!(
        first.is_err(),
        "the oldest stocked-up token still opens a socket"
    );

    let (mut eve, w) = join(&s, &tokens[1], &code, "Eve").await;
    assert_eq!(w["type"], "welcome", "{w}");
    let joined = host.recv_type("peer_joined").await;
    host.send(json!({"type": "remove", "peer": joined["participant"]["peer_id"]}))
        .await;
    eve.recv_type("removed").await;

    // The token minted before the removal does not walk back in.
    let back = s.try_ws(Some(&tokens[2]), Some("parley.v1")).await;
    match back {
        Err(_) => {}
        Ok(mut ws) => {
            ws.send(json!({"type": "join", "code": code, "display_name": "Eve2"}))
                .await;
            let first = ws.recv().await;
            assert_eq!(first["type"], "error", "{first}");
        }
    }
    // Nor does a new one from the same address.
    enter_from(&s, ip, &code, "Eve3")
        .await
        .expect_err(403, "guest_removed");
    // The host's room saw Eve leave and nobody come back.
    host.recv_type("peer_left").await;
    host.expect_silence(300).await;
}

#[tokio::test]
async fn the_join_itself_refuses_a_guest_from_a_removed_guests_source() {
    // A token the removal did not sign out (made while the removal was being stored) is
    // still refused when it joins: the check is made at every join, not only at entry.
    let s = TestServer::with_config(|c| c.limits.guest_sessions_per_source = 10).await;
    let owner = s.register("owner").await;
    let code = s.create_meeting(&owner, json!({"title": "Talk"})).await;
    allow_guests(&s, &owner, &code, true).await;
    let (mut host, _) = s.join_ws(&owner, &code).await;
    let ip = "127.0.0.42";
    let kept = access(&enter_from(&s, ip, &code, "Kay").await.expect(201));
    let r = enter_from(&s, ip, &code, "Eve").await.expect(201);
    let (mut eve, _) = join(&s, &access(&r), &code, "Eve").await;
    let joined = host.recv_type("peer_joined").await;
    host.send(json!({"type": "remove", "peer": joined["participant"]["peer_id"]}))
        .await;
    eve.recv_type("removed").await;
    // Undo the sign-out behind the server's back, as if the token had been made after it.
    sqlx::query("UPDATE sessions SET revoked_at = NULL, revoke_reason = NULL WHERE user_id IN (SELECT id FROM users WHERE guest_of IS NOT NULL AND username <> $1)")
        .bind("-")
        .execute(&s.pool())
        .await
        .unwrap();
    let (_ws, first) = join(&s, &kept, &code, "Kay").await;
    assert_eq!(
        (&first["type"], &first["code"]),
        (&json!("error"), &json!("guest_removed")),
        "{first}"
    );
}

#[tokio::test]
async fn a_crowd_of_guests_leaves_seats_for_invitees_and_the_hosts_link_works() {
    let s = TestServer::start().await;
    let owner = s.register("owner").await;
    let code = s
        .create_meeting(&owner, json!({"title": "Town hall", "waiting_room": true}))
        .await;
    allow_guests(&s, &owner, &code, true).await;
    let link = s
        .post(
            &format!("/api/meetings/{code}/guest-links"),
            Some(&owner.access),
            json!({"label": "Speaker"}),
        )
        .await
        .expect(201);
    let link_token = link.body["token"].as_str().unwrap().to_owned();
    let (_host, _) = s.join_ws(&owner, &code).await;

    // 50 guests from 5 addresses, all at once, each entering and knocking.
    let attempts = (0..50).map(|i| {
        let s = &s;
        let code = code.clone();
        async move {
            let ip = format!("127.0.0.{}", 51 + i % 5);
            let r = enter_from(s, &ip, &code, &format!("Bot{i}")).await;
            if r.status.as_u16() != 201 {
                return (r.code().to_owned(), None);
            }
            // A later entry from the same address may have signed this one out already.
            let Ok(mut ws) = s.try_ws(Some(&access(&r)), Some("parley.v1")).await else {
                return ("signed_out".to_owned(), None);
            };
            ws.send(json!({"type": "join", "code": code, "display_name": format!("Bot{i}")}))
                .await;
            let outcome = match ws.next(Duration::from_secs(5)).await {
                Some(first) if first["type"] == "waiting" => "waiting".to_owned(),
                Some(first) => first["code"].as_str().unwrap_or("?").to_owned(),
                None => "signed_out".to_owned(),
            };
            (outcome, Some(ws))
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let waiting = results.iter().filter(|(o, _)| o == "waiting").count();
    assert!(waiting <= 10, "{waiting} guests hold waiting-room seats");
    for (o, _) in &results {
        assert!(
            [
                "waiting",
                "meeting_full",
                "too_many_guests",
                "signed_out",
                "session_revoked"
            ]
            .contains(&o.as_str()),
            "unexpected outcome {o}"
        );
    }

    // A signed-in invitee still finds a seat in the waiting room.
    let invitee = s.register("invitee").await;
    let (_inv, first) = s.try_join(&invitee.access, &code, "Invitee").await;
    assert_eq!(first["type"], "waiting", "{first}");

    // Strangers spend the open link's budget from 10 more addresses...
    for a in 0..10 {
        let ip = format!("127.0.1.{}", 10 + a);
        for i in 0..10 {
            let _ = enter_from(&s, &ip, &code, &format!("Spam{a}x{i}")).await;
        }
    }
    enter_from(&s, "127.0.1.99", &code, "One more")
        .await
        .expect_err(429, "rate_limited");
    // ...and the person the host invited by name still gets in with the personal link.
    s.post_from(
        "127.0.2.1",
        "/api/guests",
        None,
        json!({"code": code, "display_name": "Speaker", "link_token": link_token}),
    )
    .await
    .expect(201);
    drop(results);
}

#[tokio::test]
async fn wrong_guest_passcodes_never_lock_out_a_member_with_the_right_one() {
    let s = TestServer::start().await;
    let owner = s.register("owner").await;
    let code = s
        .create_meeting(&owner, json!({"title": "Closed", "passcode": "sesame-42"}))
        .await;
    allow_guests(&s, &owner, &code, true).await;
    // 10 addresses, 5 wrong guesses each, in parallel.
    let guesses = (0..50).map(|i| {
        let s = &s;
        let code = code.clone();
        async move {
            s.post_from(
                &format!("127.0.3.{}", 1 + i % 10),
                "/api/guests",
                None,
                json!({"code": code, "display_name": format!("G{i}"), "passcode": format!("wrong-{i}")}),
            )
            .await
            .code()
            .to_owned()
        }
    });
    let codes = futures_util::future::join_all(guesses).await;
    assert_eq!(
        codes.iter().filter(|c| *c == "wrong_passcode").count(),
        50,
        "{codes:?}"
    );
    // The guests' budget is spent: the next guest is told to wait...
    s.post_from(
        "127.0.3.99",
        "/api/guests",
        None,
        json!({"code": code, "display_name": "Late", "passcode": "sesame-42"}),
    )
    .await
    .expect_err(429, "rate_limited");
    // ...but a signed-in user with the right passcode walks in.
    let member = s.register("member").await;
    s.post(
        &format!("/api/meetings/{code}/join"),
        Some(&member.access),
        json!({"passcode": "sesame-42"}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn guests_are_marked_in_chat_live_and_in_history() {
    let s = TestServer::start().await;
    let owner = s.register("dana").await;
    let code = s.create_meeting(&owner, json!({"title": "Chat"})).await;
    allow_guests(&s, &owner, &code, true).await;
    let (mut host, _) = s.join_ws(&owner, &code).await;
    let g = enter_from(&s, "127.0.0.61", &code, "Dana (host)")
        .await
        .expect(201);
    let (mut guest, _) = join(&s, &access(&g), &code, "Dana (host)").await;
    guest
        .send(json!({"type": "chat", "client_msg_id": "g1", "text": "please re-send the passcode"}))
        .await;
    let live = host.recv_type("chat").await;
    assert_eq!(live["message"]["guest"], true, "{live}");
    host.send(json!({"type": "chat", "client_msg_id": "h1", "text": "no"}))
        .await;
    let from_host = guest.recv_type("chat").await;
    assert!(from_host["message"].get("guest").is_none(), "{from_host}");
    let history = s
        .get(
            &format!("/api/meetings/{code}/messages"),
            Some(&owner.access),
        )
        .await
        .expect(200);
    let msgs = history.body["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["guest"], true, "{}", history.body);
    assert!(msgs[1].get("guest").is_none(), "{}", history.body);
    // Replayed to a socket that asks for the chat it missed.
    let mut again = s.ws(&owner.access).await;
    again
        .send(json!({"type": "join", "code": code, "display_name": "dana", "after_seq": 0}))
        .await;
    let replay = again.recv_type("chat").await;
    assert_eq!(replay["message"]["guest"], true, "{replay}");
}

#[tokio::test]
async fn a_guest_cannot_take_a_name_that_passes_for_someone_present() {
    let s = TestServer::start().await;
    let owner = s.register("dana").await;
    let code = s.create_meeting(&owner, json!({"title": "Names"})).await;
    allow_guests(&s, &owner, &code, true).await;
    let (_host, _) = s.join_ws(&owner, &code).await;
    for (i, name) in ["Dana", "DANA", " d a n a ", "D\u{0430}na"]
        .iter()
        .enumerate()
    {
        let g = enter_from(&s, &format!("127.0.0.{}", 70 + i), &code, name)
            .await
            .expect(201);
        let (_ws, first) = join(&s, &access(&g), &code, name).await;
        assert_eq!(
            (&first["type"], &first["code"]),
            (&json!("error"), &json!("name_taken")),
            "{name}: {first}"
        );
    }
}

#[tokio::test]
async fn turning_guests_off_sends_the_waiting_ones_away_at_once() {
    let s = TestServer::start().await;
    let owner = s.register("owner").await;
    let code = s
        .create_meeting(&owner, json!({"title": "Lobby", "waiting_room": true}))
        .await;
    allow_guests(&s, &owner, &code, true).await;
    let (mut host, _) = s.join_ws(&owner, &code).await;
    let mut waiting = Vec::new();
    for i in 0..4 {
        let g = enter_from(&s, &format!("127.0.0.{}", 80 + i), &code, &format!("W{i}"))
            .await
            .expect(201);
        let (ws, first) = join(&s, &access(&g), &code, &format!("W{i}")).await;
        assert_eq!(first["type"], "waiting");
        host.recv_type("waiting_peer").await;
        waiting.push(ws);
    }
    let member = s.register("member").await;
    let (mut m, first) = s.try_join(&member.access, &code, "Member").await;
    assert_eq!(first["type"], "waiting");
    host.recv_type("waiting_peer").await;
    s.put(
        &format!("/api/meetings/{code}/guest-access"),
        Some(&owner.access),
        json!({"allowed": false}),
    )
    .await
    .expect(200);
    for ws in &mut waiting {
        let (got, _) = ws
            .until_closed(Duration::from_secs(5))
            .await
            .expect("closed");
        assert!(
            got.iter().any(|m| m["code"] == "guests_not_allowed"),
            "{got:?}"
        );
    }
    for _ in 0..4 {
        host.recv_type("waiting_done").await;
    }
    // The member still waits.
    m.expect_silence(200).await;
}

#[tokio::test]
async fn a_single_use_link_lets_one_person_in_and_the_host_sees_the_count() {
    let s = TestServer::start().await;
    let owner = s.register("owner").await;
    let code = s
        .create_meeting(&owner, json!({"title": "Interview"}))
        .await;
    let made = |single: bool| {
        let s = &s;
        let owner = &owner;
        let code = code.clone();
        async move {
            s.post(
                &format!("/api/meetings/{code}/guest-links"),
                Some(&owner.access),
                json!({"label": "Candidate", "single_use": single}),
            )
            .await
            .expect(201)
        }
    };
    let once = made(true).await;
    let many = made(false).await;
    let token = |r: &crate::fixture::Resp| r.body["token"].as_str().unwrap().to_owned();
    let use_link = |ip: &'static str, t: String| {
        let s = &s;
        let code = code.clone();
        async move {
            s.post_from(
                ip,
                "/api/guests",
                None,
                json!({"code": code, "display_name": "Cand", "link_token": t}),
            )
            .await
        }
    };
    // Two people race with the single-use link: one gets in.
    let (a, b) = tokio::join!(
        use_link("127.0.4.1", token(&once)),
        use_link("127.0.4.2", token(&once))
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 403]);
    let refused = if a.status.as_u16() == 403 { &a } else { &b };
    assert_eq!(refused.code(), "guest_link_used");
    for ip in ["127.0.4.3", "127.0.4.4", "127.0.4.5"] {
        use_link(ip, token(&many)).await.expect(201);
    }
    let list = s
        .get(
            &format!("/api/meetings/{code}/guest-links"),
            Some(&owner.access),
        )
        .await
        .expect(200);
    let links = list.body["links"].as_array().unwrap();
    let by_id = |id: &Value| links.iter().find(|l| &l["id"] == id).unwrap().clone();
    let o = by_id(&once.body["link"]["id"]);
    assert_eq!((&o["single_use"], &o["uses"]), (&json!(true), &json!(1)));
    let m = by_id(&many.body["link"]["id"]);
    assert_eq!((&m["single_use"], &m["uses"]), (&json!(false), &json!(3)));
}

#[tokio::test]
async fn the_invite_page_is_no_free_oracle() {
    let s = TestServer::start().await;
    let owner = s.register("owner").await;
    let code = s.create_meeting(&owner, json!({"title": "Real"})).await;
    let ip = "127.0.5.1";
    let mut statuses = Vec::new();
    for i in 0..61 {
        // Known and unknown codes alike spend the same budget.
        let path = if i % 2 == 0 {
            format!("/j/{code}")
        } else {
            "/j/bcdf-ghjk-mnpq".to_owned()
        };
        let r = TestServer::client_from(ip)
            .get(s.url(&path))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(
        statuses[..60].iter().all(|&c| c == 200 || c == 404),
        "{statuses:?}"
    );
    assert_eq!(statuses[60], 429);
    // Another address is not affected.
    let r = TestServer::client_from("127.0.5.2")
        .get(s.url(&format!("/j/{code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn a_guests_turn_credentials_last_an_hour_and_are_renewed_while_in_the_call() {
    // Sign-ins of 3 s: the socket asks for a fresh token within a second or two.
    let s = TestServer::with_config(|c| {
        c.turn_urls = vec!["turn:127.0.0.1:3478".into()];
        c.turn_secret = Some("turn-secret-for-tests".into());
        c.access_token_ttl_secs = 3;
    })
    .await;
    let owner = s.register("owner").await;
    let code = s.create_meeting(&owner, json!({"title": "Relay"})).await;
    allow_guests(&s, &owner, &code, true).await;
    let (mut host, hw) = s.join_ws(&owner, &code).await;
    let expiry = |servers: &Value| -> i64 {
        servers
            .as_array()
            .unwrap()
            .iter()
            .find_map(|s| s["username"].as_str())
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let now_s = |s: &TestServer| parley_server::clock::Clock::now_ms(&s.clock) / 1000;
    assert_eq!(
        expiry(&hw["ice_servers"]) - now_s(&s),
        12 * 3600,
        "members keep 12 h"
    );
    let g = enter_from(&s, "127.0.6.1", &code, "Gia").await.expect(201);
    let mut refresh = g.body["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut guest, gw) = join(&s, &access(&g), &code, "Gia").await;
    assert_eq!(
        expiry(&gw["ice_servers"]) - now_s(&s),
        3600,
        "a guest's last an hour"
    );

    // Later the socket asks for a fresh token; with it come fresh credentials, an hour from
    // then (the server's clock moved on meanwhile).
    s.advance(Duration::from_secs(600));
    guest
        .recv_type_within("reauth_required", Duration::from_secs(10))
        .await;
    let r = s
        .post("/api/auth/refresh", None, json!({"refresh_token": refresh}))
        .await
        .expect(200);
    refresh = r.body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let fresh = r.body["access_token"].as_str().unwrap().to_owned();
    guest
        .send(json!({"type": "reauth", "access_token": fresh}))
        .await;
    let renewed = guest.recv_type("ice_servers").await;
    assert_eq!(
        expiry(&renewed["ice_servers"]) - now_s(&s),
        3600,
        "{renewed}"
    );

    // Removed: the socket closes and nothing renews it; the refresh token is dead too.
    let joined = host.recv_type("peer_joined").await;
    host.send(json!({"type": "remove", "peer": joined["participant"]["peer_id"]}))
        .await;
    guest.recv_type("removed").await;
    s.post("/api/auth/refresh", None, json!({"refresh_token": refresh}))
        .await
        .expect_err(401, "invalid_refresh_token");
}

#[tokio::test]
async fn guest_rows_are_purged_once_their_sign_in_or_meeting_is_over() {
    let s = TestServer::start().await;
    let owner = s.register("owner").await;
    let code = s.create_meeting(&owner, json!({"title": "Passing"})).await;
    allow_guests(&s, &owner, &code, true).await;
    let (mut host, _) = s.join_ws(&owner, &code).await;
    // Three guests: one only enters, one chats, one is removed.
    enter_from(&s, "127.0.7.1", &code, "Quiet")
        .await
        .expect(201);
    let chatty = enter_from(&s, "127.0.7.2", &code, "Chatty")
        .await
        .expect(201);
    let (mut c, _) = join(&s, &access(&chatty), &code, "Chatty").await;
    c.send(json!({"type": "chat", "client_msg_id": "c1", "text": "hi"}))
        .await;
    c.recv_type("chat_ack").await;
    let troll = enter_from(&s, "127.0.7.3", &code, "Troll")
        .await
        .expect(201);
    let (mut t, _) = join(&s, &access(&troll), &code, "Troll").await;
    let joined = loop {
        let m = host.recv_type("peer_joined").await;
        if m["participant"]["display_name"] == "Troll" {
            break m;
        }
    };
    host.send(json!({"type": "remove", "peer": joined["participant"]["peer_id"]}))
        .await;
    t.recv_type("removed").await;
    drop(c);

    let pool = s.pool();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (i64,)>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
                .0
        }
    };
    let guests = "SELECT COUNT(*) FROM users WHERE guest_of IS NOT NULL";
    let guest_sessions =
        "SELECT COUNT(*) FROM sessions WHERE user_id IN (SELECT id FROM users WHERE guest_of IS NOT NULL)";
    let guest_audit =
        "SELECT COUNT(*) FROM audit_log WHERE actor_id IN (SELECT id FROM users WHERE guest_of IS NOT NULL)";
    assert_eq!(count(guests).await, 3);
    let ttl_ms = 12 * 3600 * 1000;
    let purge = |now: i64| {
        let pool = pool.clone();
        async move {
            parley_server::meetings::guests::purge(&pool, now, ttl_ms)
                .await
                .unwrap()
        }
    };
    let now = || parley_server::clock::Clock::now_ms(&s.clock);
    assert_eq!(purge(now()).await, 0, "nothing goes while sign-ins last");

    // A day later every sign-in is over: the quiet guest goes with its session and audit row;
    // the chatty one stays (history names it) without sessions; the removed one stays while
    // the meeting runs (its bar keeps its address out).
    s.advance(Duration::from_secs(24 * 3600));
    assert_eq!(purge(now()).await, 1);
    assert_eq!(count(guests).await, 2);
    assert_eq!(count(guest_sessions).await, 0);
    enter_from(&s, "127.0.7.3", &code, "Troll again")
        .await
        .expect_err(403, "guest_removed");
    let signed_in = s
        .post(
            "/api/auth/login",
            None,
            json!({"login": "owner", "password": owner.password}),
        )
        .await
        .expect(200);
    let token = signed_in.body["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let history = s
        .get(&format!("/api/meetings/{code}/messages"), Some(&token))
        .await
        .expect(200);
    assert_eq!(history.body["messages"][0]["guest"], true);

    // The meeting ends; an hour on, the removed guest goes too.
    s.post(
        &format!("/api/meetings/{code}/end"),
        Some(&token),
        json!({}),
    )
    .await
    .expect(200);
    s.advance(Duration::from_secs(2 * 3600));
    assert_eq!(purge(now()).await, 1);
    assert_eq!(count(guests).await, 1, "the guest who chatted stays");
    assert_eq!(
        count(guest_audit).await,
        1,
        "its entry's audit row stays with it"
    );
}
