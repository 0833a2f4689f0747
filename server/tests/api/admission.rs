//! Meeting admission attacked as an attacker would: raw REST and WebSocket clients, several
//! sockets per user, rooms that retire, a server that restarts. Admission is stored once per
//! user and meeting and is the only way past the waiting room, lock and passcode; a bar
//! (denied, removed) holds on every socket and across retirement and restarts.

use std::time::Duration;

use serde_json::{json, Value};

use crate::fixture::{TestServer, TestUser, Ws};

/// Opens a socket for `user` and sends `join` (with `passcode` if given); returns the socket
/// and the first answer (`welcome`, `waiting` or an `error`).
async fn knock(s: &TestServer, user: &TestUser, code: &str, passcode: Option<&str>) -> (Ws, Value) {
    let mut ws = s.ws(&user.access).await;
    ws.send(json!({"type": "join", "code": code, "display_name": "Eve", "passcode": passcode}))
        .await;
    let first = ws.recv().await;
    (ws, first)
}

/// True when nothing but `waiting` (or nothing at all) arrives for `ms` — in particular no
/// `welcome` and no chat.
async fn never_welcomed(ws: &mut Ws, ms: u64) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return true;
        }
        match ws.next(left).await {
            Some(m) if m["type"] == "welcome" || m["type"] == "chat" => return false,
            Some(_) => continue,
            None => return true,
        }
    }
}

#[tokio::test]
async fn leaving_or_dropping_the_waiting_room_never_admits() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let eve = s.register("eve").await;
    let code = s
        .create_meeting(&host, json!({"title": "Board", "waiting_room": true}))
        .await;
    let (mut h, _) = s.join_ws(&host, &code).await;
    h.send(json!({"type": "chat", "client_msg_id": "c1", "text": "secret plans"}))
        .await;
    h.recv_type("chat_ack").await;

    // REST: join (waiting), leave, join again — still waiting, not joined.
    let join = format!("/api/meetings/{code}/join");
    let leave = format!("/api/meetings/{code}/leave");
    for round in 0..3 {
        let r = s
            .post(&join, Some(&eve.access), json!({}))
            .await
            .expect(200);
        assert_eq!(r.body["waiting"], true, "round {round}: {}", r.body);
        s.post(&leave, Some(&eve.access), json!({}))
            .await
            .expect(204);
    }
    // Waiting users see neither the chat nor the meeting's details.
    s.get(&format!("/api/meetings/{code}/messages"), Some(&eve.access))
        .await
        .expect_err(403, "not_participant");
    s.get(&format!("/api/meetings/{code}"), Some(&eve.access))
        .await
        .expect_err(403, "not_participant");

    // WebSocket: wait, drop the socket, reconnect — waiting again, never welcomed.
    for round in 0..3 {
        let (mut ws, first) = knock(&s, &eve, &code, None).await;
        assert_eq!(first["type"], "waiting", "round {round}: {first}");
        if round == 1 {
            ws.send(json!({"type": "leave"})).await;
        }
        drop(ws);
        h.recv_type("waiting_done").await;
    }
    let (mut ws, first) = knock(&s, &eve, &code, None).await;
    assert_eq!(first["type"], "waiting");
    assert!(never_welcomed(&mut ws, 1500).await);
    let stored: (String, Option<i64>) =
        sqlx::query_as("SELECT status, admitted_at FROM participants WHERE user_id = $1")
            .bind(&eve.id)
            .fetch_one(&s.pool())
            .await
            .unwrap();
    assert_eq!(stored, ("waiting".to_string(), None));

    // Once the host admits her, the admission is stored and holds for the next visit.
    let waiting_peer = h.recv_type("waiting_peer").await["peer_id"].clone();
    h.send(json!({"type": "admit", "peer": waiting_peer})).await;
    ws.recv_type("welcome").await;
    ws.send(json!({"type": "leave"})).await;
    assert!(ws.closed().await);
    let (_ws, first) = knock(&s, &eve, &code, None).await;
    assert_eq!(
        first["type"], "welcome",
        "an admitted user comes back in: {first}"
    );
    s.get(&format!("/api/meetings/{code}/messages"), Some(&eve.access))
        .await
        .expect(200);
}

#[tokio::test]
async fn a_removed_user_is_out_on_every_socket_and_stays_out() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let eve = s.register("eve").await;
    let code = s
        .create_meeting(&host, json!({"title": "Locked", "passcode": "open-sesame"}))
        .await;
    let (mut h, _) = s.join_ws(&host, &code).await;
    let (mut e1, w1) = knock(&s, &eve, &code, Some("open-sesame")).await;
    assert_eq!(w1["type"], "welcome", "{w1}");
    let (mut e2, w2) = knock(&s, &eve, &code, Some("open-sesame")).await;
    assert_eq!(w2["type"], "welcome", "{w2}");
    h.recv_type("peer_joined").await;
    h.recv_type("peer_joined").await;

    h.send(json!({"type": "remove", "peer": w1["peer_id"]}))
        .await;
    assert_eq!(e1.recv_type("removed").await["type"], "removed");
    assert!(e1.closed().await, "the removed socket closes");
    assert_eq!(e2.recv_type("removed").await["type"], "removed");
    assert!(e2.closed().await, "the user's other socket closes too");

    // Lock the meeting, then let the room empty and retire.
    h.send(json!({"type": "lock"})).await;
    h.recv_type("lock_changed").await;
    h.send(json!({"type": "leave"})).await;
    assert!(h.closed().await);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let refused = |v: &Value| v["type"] == "error" && v["code"] == "not_participant";
    for attempt in 0..2 {
        let (_ws, first) = knock(&s, &eve, &code, Some("open-sesame")).await;
        assert!(refused(&first), "attempt {attempt}: {first}");
        s.post(
            &format!("/api/meetings/{code}/join"),
            Some(&eve.access),
            json!({"passcode": "open-sesame"}),
        )
        .await
        .expect_err(403, "not_participant");
        s.get(&format!("/api/meetings/{code}/messages"), Some(&eve.access))
            .await
            .expect_err(403, "not_participant");
    }
    let (status, reason): (String, Option<String>) =
        sqlx::query_as("SELECT status, barred_reason FROM participants WHERE user_id = $1")
            .bind(&eve.id)
            .fetch_one(&s.pool())
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("denied", Some("removed"))
    );

    // After a restart too.
    let mut s = s;
    s.restart().await;
    let (_ws, first) = knock(&s, &eve, &code, Some("open-sesame")).await;
    assert!(refused(&first), "after a restart: {first}");

    // The removal is in the audit log, with the host as actor.
    let actions: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT actor_id, action FROM audit_log ORDER BY at, id")
            .fetch_all(&s.pool())
            .await
            .unwrap();
    assert!(
        actions.contains(&(Some(host.id.clone()), "removed".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&(Some(host.id.clone()), "lock".into())),
        "{actions:?}"
    );

    // Only a host lifts the bar; then she enters without passcode and past the lock.
    let readmit = format!("/api/meetings/{code}/participants/{}/readmit", eve.id);
    s.post(&readmit, Some(&eve.access), json!({}))
        .await
        .expect_err(403, "not_participant");
    s.post(&readmit, Some(&host.access), json!({}))
        .await
        .expect(204);
    let (_ws, first) = knock(&s, &eve, &code, None).await;
    assert_eq!(first["type"], "welcome", "{first}");
}

#[tokio::test]
async fn a_denied_user_cannot_knock_again() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let eve = s.register("eve").await;
    let code = s
        .create_meeting(&host, json!({"title": "Board", "waiting_room": true}))
        .await;
    let (mut h, _) = s.join_ws(&host, &code).await;
    let (mut e1, first) = knock(&s, &eve, &code, None).await;
    assert_eq!(first["type"], "waiting");
    let (mut e2, first) = knock(&s, &eve, &code, None).await;
    assert_eq!(first["type"], "waiting");
    let peer = h.recv_type("waiting_peer").await["peer_id"].clone();
    h.send(json!({"type": "deny", "peer": peer})).await;
    for ws in [&mut e1, &mut e2] {
        ws.recv_type("denied").await;
        assert!(ws.closed().await);
    }
    let (_ws, again) = knock(&s, &eve, &code, None).await;
    assert_eq!(
        (again["type"].as_str(), again["code"].as_str()),
        (Some("error"), Some("not_participant")),
        "{again}"
    );
    s.post(
        &format!("/api/meetings/{code}/join"),
        Some(&eve.access),
        json!({}),
    )
    .await
    .expect_err(403, "not_participant");
}

#[tokio::test]
async fn deleting_a_meeting_ends_its_live_room() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let ann = s.register("ann").await;
    let code = s.create_meeting(&host, json!({"title": "Gone"})).await;
    let (_h, _) = s.join_ws(&host, &code).await;
    let (mut a, _) = s.join_ws(&ann, &code).await;
    s.delete(&format!("/api/meetings/{code}"), Some(&host.access))
        .await
        .expect(204);
    a.recv_type("meeting_ended").await;
    assert!(a.closed().await);
}

#[tokio::test]
async fn a_name_cannot_disguise_itself_with_direction_overrides() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let eve = s.register("eve").await;
    let code = s.create_meeting(&host, json!({"title": "Names"})).await;
    let mut ws = s.ws(&eve.access).await;
    // "Eve\u{202E}tsoh" shows as "Evehost" in a right-to-left override.
    ws.send(json!({"type": "join", "code": code, "display_name": "Eve\u{202e}tsoh"}))
        .await;
    let refused = ws.recv_type("error").await;
    assert_eq!(refused["code"], "invalid_display_name", "{refused}");
}
