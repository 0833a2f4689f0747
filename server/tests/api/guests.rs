//! Guests: entering one meeting from its invite link without an account, and everything a
//! guest's tokens must not open. Each refusal is tried the way a guest (or someone holding a
//! guest's token) would try it.

use serde_json::{json, Value};

use crate::fixture::{TestServer, TestUser};

/// Enters `code` as a guest; returns the response (201 with tokens, or the error).
async fn enter(s: &TestServer, body: Value) -> crate::fixture::Resp {
    s.post("/api/guests", None, body).await
}

async fn guest_token(s: &TestServer, code: &str, name: &str) -> String {
    let r = enter(s, json!({"code": code, "display_name": name}))
        .await
        .expect(201);
    r.body["tokens"]["access_token"].as_str().unwrap().into()
}

pub(crate) async fn allow_guests(s: &TestServer, host: &TestUser, code: &str, allowed: bool) {
    let r = s
        .put(
            &format!("/api/meetings/{code}/guest-access"),
            Some(&host.access),
            json!({"allowed": allowed}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["allow_guests"], allowed);
}

#[tokio::test]
async fn guests_are_off_until_the_host_allows_them_then_meet_the_waiting_room() {
    let s = TestServer::start().await;
    let host = s.register("hostess").await;
    let code = s
        .create_meeting(&host, json!({"title": "Open day", "waiting_room": true}))
        .await;
    let m = s
        .get(&format!("/api/meetings/{code}"), Some(&host.access))
        .await
        .expect(200);
    assert_eq!(m.body["allow_guests"], false, "off by default");
    enter(&s, json!({"code": code, "display_name": "Gus"}))
        .await
        .expect_err(403, "guests_not_allowed");
    // Or allowed from the start.
    let open = s
        .create_meeting(&host, json!({"title": "Open", "allow_guests": true}))
        .await;
    enter(&s, json!({"code": open, "display_name": "Gus"}))
        .await
        .expect(201);

    allow_guests(&s, &host, &code, true).await;
    let r = enter(&s, json!({"code": code, "display_name": "  Gus  "}))
        .await
        .expect(201);
    assert_eq!(r.body["display_name"], "Gus");
    assert_eq!(r.body["title"], "Open day");
    let token = r.body["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let guest_id = r.body["user_id"].as_str().unwrap().to_owned();

    let (mut h, _) = s.join_ws(&host, &code).await;
    let (mut g, first) = s.try_join(&token, &code, "Gus").await;
    assert_eq!(first["type"], "waiting", "{first}");
    let knock = h.recv_type("waiting_peer").await;
    assert_eq!(knock["display_name"], "Gus");
    assert_eq!(knock["guest"], true, "the host sees a guest is knocking");
    h.send(json!({"type": "admit", "peer": knock["peer_id"]}))
        .await;
    let welcome = g.recv_type("welcome").await;
    assert_eq!(welcome["participants"][0]["display_name"], "hostess");
    let joined = h.recv_type("peer_joined").await;
    assert_eq!(joined["participant"]["guest"], true, "{joined}");
    assert_eq!(joined["participant"]["user_id"], guest_id.as_str());

    // Chat from the guest is stored under the name they gave.
    g.send(json!({"type": "chat", "client_msg_id": "g1", "text": "hello from a guest"}))
        .await;
    let said = h.recv_type("chat").await;
    assert_eq!(said["message"]["sender_name"], "Gus", "{said}");
    let history = s
        .get(
            &format!("/api/meetings/{code}/messages"),
            Some(&host.access),
        )
        .await
        .expect(200);
    assert_eq!(history.body["messages"][0]["sender_name"], "Gus");
    assert_eq!(history.body["messages"][0]["text"], "hello from a guest");
}

#[tokio::test]
async fn a_guest_token_opens_its_meeting_and_nothing_else() {
    let s = TestServer::start().await;
    let host = s.register("hostess").await;
    let code = s.create_meeting(&host, json!({"title": "Ours"})).await;
    let other = s.create_meeting(&host, json!({"title": "Theirs"})).await;
    allow_guests(&s, &host, &code, true).await;
    allow_guests(&s, &host, &other, true).await;
    let token = guest_token(&s, &code, "Gus").await;

    // No REST: not the meeting list, not this meeting's details or history, not creating one,
    // not its own account.
    for path in [
        "/api/meetings".to_string(),
        format!("/api/meetings/{code}"),
        format!("/api/meetings/{code}/messages"),
        "/api/auth/me".to_string(),
    ] {
        s.get(&path, Some(&token))
            .await
            .expect_err(403, "guest_not_allowed");
    }
    s.post("/api/meetings", Some(&token), json!({"title": "Mine now"}))
        .await
        .expect_err(403, "guest_not_allowed");
    s.post(
        &format!("/api/meetings/{code}/lock"),
        Some(&token),
        json!({}),
    )
    .await
    .expect_err(403, "guest_not_allowed");
    s.put(
        &format!("/api/meetings/{code}/guest-access"),
        Some(&token),
        json!({"allowed": false}),
    )
    .await
    .expect_err(403, "guest_not_allowed");

    // Another meeting that lets guests in is still another meeting.
    let (_ws, first) = s.try_join(&token, &other, "Gus").await;
    assert_eq!(first["type"], "error", "{first}");
    assert_eq!(first["code"], "guest_not_allowed");

    // Its own meeting works (no waiting room here).
    let (_ws, first) = s.try_join(&token, &code, "Gus").await;
    assert_eq!(first["type"], "welcome", "{first}");

    // A guest cannot sign in as the user row it is.
    let r = s
        .get(&format!("/api/meetings/{code}"), Some(&host.access))
        .await;
    assert_eq!(r.status, 200);
    let username: (String,) =
        sqlx::query_as("SELECT username FROM users WHERE guest_of IS NOT NULL")
            .fetch_one(&s.pool())
            .await
            .unwrap();
    for password in ["", "!", "guest"] {
        s.post(
            "/api/auth/login",
            None,
            json!({"login": username.0, "password": password}),
        )
        .await
        .expect_err(401, "invalid_credentials");
    }
}

#[tokio::test]
async fn guests_turned_off_keep_new_and_returning_open_link_guests_out() {
    let s = TestServer::start().await;
    let host = s.register("hostess").await;
    let code = s.create_meeting(&host, json!({"title": "Short"})).await;
    allow_guests(&s, &host, &code, true).await;
    let token = guest_token(&s, &code, "Gus").await;
    allow_guests(&s, &host, &code, false).await;
    enter(&s, json!({"code": code, "display_name": "Late"}))
        .await
        .expect_err(403, "guests_not_allowed");
    let (_ws, first) = s.try_join(&token, &code, "Gus").await;
    assert_eq!(first["code"], "guests_not_allowed", "{first}");
}

#[tokio::test]
async fn a_passcode_is_asked_of_open_link_guests_and_a_personal_link_stands_for_it() {
    let s = TestServer::start().await;
    let host = s.register("hostess").await;
    let code = s
        .create_meeting(&host, json!({"title": "Board", "passcode": "s3cret-pass"}))
        .await;
    allow_guests(&s, &host, &code, true).await;
    enter(&s, json!({"code": code, "display_name": "Gus"}))
        .await
        .expect_err(403, "passcode_required");
    enter(
        &s,
        json!({"code": code, "display_name": "Gus", "passcode": "wrong-pass"}),
    )
    .await
    .expect_err(403, "wrong_passcode");
    let r = enter(
        &s,
        json!({"code": code, "display_name": "Gus", "passcode": "s3cret-pass"}),
    )
    .await
    .expect(201);
    // Entered with the passcode: the room does not ask again.
    let token = r.body["tokens"]["access_token"].as_str().unwrap();
    let (_ws, first) = s.try_join(token, &code, "Gus").await;
    assert_eq!(first["type"], "welcome", "{first}");

    allow_guests(&s, &host, &code, false).await;
    let link = s
        .post(
            &format!("/api/meetings/{code}/guest-links"),
            Some(&host.access),
            json!({"label": "Dana from Acme"}),
        )
        .await
        .expect(201);
    let link_token = link.body["token"].as_str().unwrap();
    let r = enter(
        &s,
        json!({"code": code, "display_name": "Dana", "link_token": link_token}),
    )
    .await
    .expect(201);
    let token = r.body["tokens"]["access_token"].as_str().unwrap();
    let (_ws, first) = s.try_join(token, &code, "Dana").await;
    assert_eq!(first["type"], "welcome", "{first}");
}

#[tokio::test]
async fn a_revoked_link_lets_nobody_in_and_signs_its_guests_out() {
    let s = TestServer::start().await;
    let host = s.register("hostess").await;
    let code = s.create_meeting(&host, json!({"title": "Interview"})).await;
    let other = s.create_meeting(&host, json!({"title": "Other"})).await;
    let link = s
        .post(
            &format!("/api/meetings/{code}/guest-links"),
            Some(&host.access),
            json!({"label": "Candidate"}),
        )
        .await
        .expect(201);
    let link_id = link.body["link"]["id"].as_str().unwrap().to_owned();
    let link_token = link.body["token"].as_str().unwrap().to_owned();
    // The token is not shown again.
    let list = s
        .get(
            &format!("/api/meetings/{code}/guest-links"),
            Some(&host.access),
        )
        .await
        .expect(200);
    assert_eq!(list.body["links"][0]["label"], "Candidate");
    assert!(!list.body.to_string().contains(&link_token));

    // Another meeting's code with this link's token: not its link.
    enter(
        &s,
        json!({"code": other, "display_name": "Cand", "link_token": link_token}),
    )
    .await
    .expect_err(403, "guest_link_invalid");
    enter(
        &s,
        json!({"code": code, "display_name": "Cand", "link_token": "made-up-token"}),
    )
    .await
    .expect_err(403, "guest_link_invalid");

    let r = enter(
        &s,
        json!({"code": code, "display_name": "Cand", "link_token": link_token}),
    )
    .await
    .expect(201);
    let token = r.body["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let refresh = r.body["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut ws, first) = s.try_join(&token, &code, "Cand").await;
    assert_eq!(first["type"], "welcome", "{first}");

    s.delete(
        &format!("/api/meetings/{code}/guest-links/{link_id}"),
        Some(&host.access),
    )
    .await
    .expect(204);
    // In the call: told and disconnected.
    let bye = ws.recv_type("error").await;
    assert_eq!(bye["code"], "session_revoked", "{bye}");
    assert!(ws.closed().await);
    // Its tokens are dead, and the link lets nobody else in.
    assert!(
        s.try_ws(Some(&token), Some("parley.v1")).await.is_err(),
        "a revoked guest's token is refused at the upgrade"
    );
    s.post("/api/auth/refresh", None, json!({"refresh_token": refresh}))
        .await
        .expect_err(401, "invalid_refresh_token");
    enter(
        &s,
        json!({"code": code, "display_name": "Cand", "link_token": link_token}),
    )
    .await
    .expect_err(403, "guest_link_revoked");
}

#[tokio::test]
async fn an_expired_link_says_so() {
    let s = TestServer::start().await;
    let host = s.register("hostess").await;
    let code = s.create_meeting(&host, json!({"title": "Tomorrow"})).await;
    let link = s
        .post(
            &format!("/api/meetings/{code}/guest-links"),
            Some(&host.access),
            json!({"label": "Sam", "expires_in_hours": 1}),
        )
        .await
        .expect(201);
    let link_token = link.body["token"].as_str().unwrap();
    s.advance(std::time::Duration::from_secs(3601));
    enter(
        &s,
        json!({"code": code, "display_name": "Sam", "link_token": link_token}),
    )
    .await
    .expect_err(403, "guest_link_expired");
}

#[tokio::test]
async fn unknown_ended_and_malformed_codes_are_told_apart() {
    let s = TestServer::start().await;
    let host = s.register("hostess").await;
    let code = s.create_meeting(&host, json!({"title": "Done"})).await;
    allow_guests(&s, &host, &code, true).await;
    enter(&s, json!({"code": "not a code", "display_name": "Gus"}))
        .await
        .expect_err(400, "invalid_meeting_code");
    enter(&s, json!({"code": "bcdf-ghjk-mnpq", "display_name": "Gus"}))
        .await
        .expect_err(404, "meeting_not_found");
    enter(&s, json!({"code": code, "display_name": ""}))
        .await
        .expect_err(400, "invalid_display_name");
    s.post(
        &format!("/api/meetings/{code}/end"),
        Some(&host.access),
        json!({}),
    )
    .await
    .expect(200);
    enter(&s, json!({"code": code, "display_name": "Gus"}))
        .await
        .expect_err(410, "meeting_ended");
}

#[tokio::test]
async fn guest_entries_are_limited_per_address_and_per_meeting() {
    let s = TestServer::with_config(|c| {
        c.limits.guest_entries_per_ip = 3;
        c.limits.guest_entries_per_meeting = 1000;
    })
    .await;
    let host = s.register("hostess").await;
    let code = s.create_meeting(&host, json!({"title": "Busy"})).await;
    allow_guests(&s, &host, &code, true).await;
    for i in 0..3 {
        enter(&s, json!({"code": code, "display_name": format!("G{i}")}))
            .await
            .expect(201);
    }
    let r = enter(&s, json!({"code": code, "display_name": "G4"}))
        .await
        .expect_err(429, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    let guests: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE guest_of IS NOT NULL")
        .fetch_one(&s.pool())
        .await
        .unwrap();
    assert_eq!(guests.0, 3, "a refused entry makes no guest");

    let s = TestServer::with_config(|c| {
        c.limits.guest_entries_per_ip = 1000;
        c.limits.guest_entries_per_meeting = 2;
    })
    .await;
    let host = s.register("hostess").await;
    let code = s.create_meeting(&host, json!({"title": "Busy"})).await;
    let quiet = s.create_meeting(&host, json!({"title": "Quiet"})).await;
    allow_guests(&s, &host, &code, true).await;
    allow_guests(&s, &host, &quiet, true).await;
    for i in 0..2 {
        enter(&s, json!({"code": code, "display_name": format!("G{i}")}))
            .await
            .expect(201);
    }
    enter(&s, json!({"code": code, "display_name": "G3"}))
        .await
        .expect_err(429, "rate_limited");
    // Another meeting is not held up by this one's crowd.
    enter(&s, json!({"code": quiet, "display_name": "Q"}))
        .await
        .expect(201);
}

#[tokio::test]
async fn a_guest_session_renews_but_does_not_outlive_its_day() {
    let s = TestServer::start().await;
    let host = s.register("hostess").await;
    let code = s.create_meeting(&host, json!({"title": "Long"})).await;
    allow_guests(&s, &host, &code, true).await;
    let r = enter(&s, json!({"code": code, "display_name": "Gus"}))
        .await
        .expect(201);
    let ttl = s.config.guest_session_ttl_secs;
    assert_eq!(r.body["tokens"]["refresh_expires_in"], ttl);
    let mut refresh = r.body["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    s.advance(std::time::Duration::from_secs(ttl / 2));
    let r = s
        .post("/api/auth/refresh", None, json!({"refresh_token": refresh}))
        .await
        .expect(200);
    assert_eq!(r.body["refresh_expires_in"], ttl - ttl / 2, "not extended");
    refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    s.advance(std::time::Duration::from_secs(ttl - ttl / 2));
    s.post("/api/auth/refresh", None, json!({"refresh_token": refresh}))
        .await
        .expect_err(401, "invalid_refresh_token");
}

#[tokio::test]
async fn a_browser_carries_its_token_in_the_subprotocol_list() {
    let s = TestServer::start().await;
    let host = s.register("hostess").await;
    let code = s
        .create_meeting(&host, json!({"title": "Web", "allow_guests": true}))
        .await;
    let token = guest_token(&s, &code, "Gus").await;
    // As `new WebSocket(url, ["parley.v1", "parley.auth." + token])` offers it.
    let mut ws = s
        .try_ws(None, Some(&format!("parley.v1, parley.auth.{token}")))
        .await
        .expect("the token in the subprotocol list is taken");
    ws.send(json!({"type": "join", "code": code, "display_name": "Gus"}))
        .await;
    assert_eq!(ws.recv().await["type"], "welcome");
    // A forged one, a missing one: refused at the upgrade.
    for protocols in [
        "parley.v1, parley.auth.not-a-token",
        "parley.v1, parley.auth.",
        "parley.v1",
    ] {
        assert!(
            s.try_ws(None, Some(protocols)).await.is_err(),
            "{protocols} got through"
        );
    }
}

#[tokio::test]
async fn a_removed_guest_cannot_come_back_as_a_new_guest_or_by_their_link() {
    let s = TestServer::start().await;
    let host = s.register("hostess").await;
    let code = s
        .create_meeting(&host, json!({"title": "Town hall", "allow_guests": true}))
        .await;
    let (mut host_ws, first) = s.try_join(&host.access, &code, "hostess").await;
    assert_eq!(first["type"], "welcome", "{first}");

    // An open-link guest is removed, then tries again as a "new" guest from the same place.
    let token = guest_token(&s, &code, "Troll").await;
    let (mut ws, first) = s.try_join(&token, &code, "Troll").await;
    assert_eq!(first["type"], "welcome", "{first}");
    let peer = first["peer_id"].as_str().unwrap().to_owned();
    host_ws.recv_type("peer_joined").await;
    host_ws.send(json!({"type": "remove", "peer": peer})).await;
    ws.recv_type("removed").await;
    let r = enter(&s, json!({"code": code, "display_name": "Not the troll"})).await;
    r.expect_err(403, "guest_removed");
    // Their sign-in ended with the removal.
    let again = s.try_ws(Some(&token), Some("parley.v1")).await;
    assert!(
        again.is_err(),
        "the removed guest's token still opens a socket"
    );

    // A personal link's guest is removed: the link is revoked with the bar.
    let link = s
        .post(
            &format!("/api/meetings/{code}/guest-links"),
            Some(&host.access),
            json!({"label": "Speaker"}),
        )
        .await
        .expect(201);
    let link_token = link.body["token"].as_str().unwrap().to_owned();
    let r = enter(
        &s,
        json!({"code": code, "display_name": "Speaker", "link_token": link_token}),
    )
    .await
    .expect(201);
    let token = r.body["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut ws, first) = s.try_join(&token, &code, "Speaker").await;
    assert_eq!(first["type"], "welcome", "{first}");
    let peer = first["peer_id"].as_str().unwrap().to_owned();
    host_ws.recv_type("peer_joined").await;
    host_ws.send(json!({"type": "remove", "peer": peer})).await;
    ws.recv_type("removed").await;
    enter(
        &s,
        json!({"code": code, "display_name": "Speaker", "link_token": link_token}),
    )
    .await
    .expect_err(403, "guest_link_revoked");

    // Signed-in people from the same address are not affected.
    let member = s.register("member").await;
    let (_, first) = s.try_join(&member.access, &code, "member").await;
    assert_eq!(first["type"], "welcome", "{first}");
}
