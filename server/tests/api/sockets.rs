//! Live sockets attacked as an attacker would: sessions revoked under an open socket, tokens
//! that expire, floods, clients that stop reading, sockets that never join, oversized frames,
//! and more sockets than a user or address may hold.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fixture::{TestServer, TestUser, Ws};

/// Reads until the server closes the socket; returns the error codes it sent on the way and
/// how long the close took.
async fn until_closed(ws: &mut Ws, within: Duration) -> (Vec<String>, Option<Duration>) {
    let start = Instant::now();
    let mut codes = Vec::new();
    loop {
        let left = within.saturating_sub(start.elapsed());
        if left.is_zero() {
            return (codes, None);
        }
        match ws.next(left).await {
            Some(m) if m["type"] == "error" => codes.push(m["code"].as_str().unwrap_or("").into()),
            Some(_) => {}
            None => return (codes, Some(start.elapsed())),
        }
    }
}

async fn login(s: &TestServer, u: &TestUser) -> (String, String) {
    let r = s
        .post(
            "/api/auth/login",
            None,
            json!({"login": u.email, "password": u.password}),
        )
        .await
        .expect(200);
    (
        r.body["tokens"]["access_token"].as_str().unwrap().into(),
        r.body["tokens"]["refresh_token"].as_str().unwrap().into(),
    )
}

async fn join_with(s: &TestServer, access: &str, code: &str) -> Ws {
    let mut ws = s.ws(access).await;
    ws.send(json!({"type": "join", "code": code, "display_name": "Ann"}))
        .await;
    ws.recv_type("welcome").await;
    ws
}

#[tokio::test]
async fn a_revoked_session_loses_its_sockets_within_a_second() {
    let s = TestServer::start().await;
    let ann = s.register("ann").await;
    let code = s.create_meeting(&ann, json!({"title": "Revoked"})).await;

    // Logout: the session's socket is told and closed at once.
    let (access, refresh) = login(&s, &ann).await;
    let mut ws = join_with(&s, &access, &code).await;
    s.post("/api/auth/logout", None, json!({"refresh_token": refresh}))
        .await
        .expect(204);
    let (codes, took) = until_closed(&mut ws, Duration::from_secs(3)).await;
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(1)),
        "closed after {took:?}"
    );
    assert_eq!(codes, vec!["session_revoked"]);

    // A reused refresh token revokes the session, and its socket.
    let (access, refresh) = login(&s, &ann).await;
    let mut ws = join_with(&s, &access, &code).await;
    s.post("/api/auth/refresh", None, json!({"refresh_token": refresh}))
        .await
        .expect(200);
    s.post("/api/auth/refresh", None, json!({"refresh_token": refresh}))
        .await
        .expect_err(401, "refresh_token_reused");
    let (codes, took) = until_closed(&mut ws, Duration::from_secs(3)).await;
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(1)),
        "closed after {took:?}"
    );
    assert_eq!(codes, vec!["session_revoked"]);

    // A password change signs out every other session: their sockets close, its own stays.
    let (other_access, _) = login(&s, &ann).await;
    let mut other = join_with(&s, &other_access, &code).await;
    let mut mine = join_with(&s, &ann.access, &code).await;
    s.post(
        "/api/auth/password",
        Some(&ann.access),
        json!({"current_password": ann.password, "new_password": "a brand new passphrase"}),
    )
    .await
    .expect(204);
    let (codes, took) = until_closed(&mut other, Duration::from_secs(3)).await;
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(1)),
        "closed after {took:?}"
    );
    assert_eq!(codes, vec!["session_revoked"]);
    mine.send(json!({"type": "ping"})).await;
    assert_eq!(mine.recv_type("pong").await["type"], "pong");

    // A password reset signs out everything.
    s.post(
        "/api/auth/password-reset/request",
        None,
        json!({"email": ann.email}),
    )
    .await
    .expect(202);
    let reset = s.mail.code_for(&ann.email, 2).await;
    s.post(
        "/api/auth/password-reset/confirm",
        None,
        json!({"email": ann.email, "code": reset, "new_password": "yet another passphrase"}),
    )
    .await
    .expect(204);
    let (codes, took) = until_closed(&mut mine, Duration::from_secs(3)).await;
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(1)),
        "closed after {took:?}"
    );
    assert_eq!(codes, vec!["session_revoked"]);
}

#[tokio::test]
async fn a_socket_ends_with_its_token_unless_it_reauthenticates() {
    let s = TestServer::with_config(|c| c.access_token_ttl_secs = 3).await;
    let ann = s.register("ann").await;
    let bob = s.register("bob").await;
    let code = s
        .create_meeting(&ann, json!({"title": "Short lived"}))
        .await;
    let mut ws = join_with(&s, &ann.access, &code).await;

    // Asked to re-authenticate before expiry; answers with a fresh token and lives on.
    let asked = ws.recv_type("reauth_required").await;
    assert!(asked["within_secs"].as_u64().unwrap() <= 3, "{asked}");
    // Someone else's token is refused (the socket stays Ann's).
    ws.send(json!({"type": "reauth", "access_token": bob.access}))
        .await;
    assert_eq!(ws.recv_type("error").await["code"], "invalid_token");
    let fresh = s
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": ann.refresh}),
        )
        .await
        .expect(200);
    let fresh_access = fresh.body["access_token"].as_str().unwrap().to_string();
    ws.send(json!({"type": "reauth", "access_token": fresh_access}))
        .await;
    let ok = ws.recv_type("reauthed").await;
    assert!(ok["expires_in_secs"].as_u64().unwrap() >= 2, "{ok}");
    let started = Instant::now();
    // Past the first token's expiry: still open.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ws.send(json!({"type": "ping"})).await;
    ws.recv_type("pong").await;

    // Without another reauth it closes when the fresh token expires.
    let (codes, took) = until_closed(&mut ws, Duration::from_secs(6)).await;
    assert!(took.is_some(), "still open");
    assert!(started.elapsed() >= Duration::from_secs(2), "closed early");
    assert_eq!(codes, vec!["auth_expired"]);
}

#[tokio::test]
async fn a_flooder_is_cut_off_and_the_others_are_still_served() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let eve = s.register("eve").await;
    let ann = s.register("ann").await;
    let code = s.create_meeting(&host, json!({"title": "Flooded"})).await;
    let (mut h, _) = s.join_ws(&host, &code).await;
    let (mut a, _) = s.join_ws(&ann, &code).await;
    let (mut e, _) = s.join_ws(&eve, &code).await;
    h.recv_type("peer_joined").await;
    a.recv_type("peer_joined").await;

    // Eve sends 5,000 reactions, hands and media states as fast as she can.
    for i in 0..5000 {
        let msg = match i % 3 {
            0 => json!({"type": "reaction", "emoji": "🎉"}),
            1 => json!({"type": "hand", "raised": i % 2 == 0}),
            _ => {
                json!({"type": "media_state", "audio": true, "video": i % 2 == 0, "screen": false})
            }
        };
        if e.try_send(msg).await.is_err() {
            break;
        }
    }
    let (codes, took) = until_closed(&mut e, Duration::from_secs(10)).await;
    assert!(took.is_some(), "the flooder stays connected");
    assert!(codes.contains(&"rate_limited".to_string()), "{codes:?}");
    assert_eq!(
        codes.last().map(String::as_str),
        Some("flooding"),
        "{codes:?}"
    );

    // Ann received a bounded share of it and is still served: the host's chat reaches her.
    h.send(json!({"type": "chat", "client_msg_id": "after", "text": "still here?"}))
        .await;
    let mut relayed = 0;
    let chat = loop {
        let m = a.recv().await;
        match m["type"].as_str() {
            Some("chat") => break m,
            Some("reaction" | "hand" | "media_state") => relayed += 1,
            _ => {}
        }
    };
    assert_eq!(chat["message"]["text"], "still here?");
    assert!(relayed <= 450, "{relayed} flood messages reached Ann");
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_told_and_disconnected_not_left_silent() {
    let s = TestServer::with_config(|c| {
        c.limits.ws_messages_per_sec = 100_000;
        c.limits.ws_message_burst = 100_000;
        c.limits.ws_send_timeout_secs = 1;
        c.reconnect_grace_secs = 1;
    })
    .await;
    let host = s.register("host").await;
    let slow = s.register("slow").await;
    let code = s.create_meeting(&host, json!({"title": "Slow"})).await;
    let (mut h, _) = s.join_ws(&host, &code).await;
    let (mut v, vw) = s.join_ws(&slow, &code).await;
    h.recv_type("peer_joined").await;
    let victim = vw["peer_id"].clone();

    // The host relays 30 KiB offers to the victim, who reads none of them: ~30 MiB, far
    // more than the socket buffers and the outbox hold.
    let sdp = "v".repeat(30 * 1024);
    for _ in 0..1000 {
        h.send(json!({"type": "offer", "to": victim, "sdp": sdp}))
            .await;
    }
    // The host keeps being served while the victim is cut off … (its ping is read after its
    // 30 MiB of offers: on a loaded 2-core machine a debug build takes seconds for those)
    h.send(json!({"type": "ping"})).await;
    h.recv_type_within("pong", Duration::from_secs(30)).await;
    // … and hears the victim leave once its grace is over (the room's clock is the test's).
    let deadline = Instant::now() + Duration::from_secs(20);
    let left = loop {
        assert!(
            Instant::now() < deadline,
            "the host never heard of the victim"
        );
        s.advance(Duration::from_millis(500));
        match h.next(Duration::from_millis(200)).await {
            Some(m) if m["type"] == "peer_left" => break m,
            Some(_) => {}
            None => {}
        }
    };
    assert_eq!(left["peer_id"], victim);
    // The victim, reading at last, finds its socket closed after what was buffered.
    let (_codes, took) = until_closed(&mut v, Duration::from_secs(20)).await;
    assert!(took.is_some(), "the victim's socket is still open");
}

#[tokio::test]
async fn sockets_that_never_join_are_closed() {
    let s = TestServer::with_config(|c| c.limits.ws_join_timeout_secs = 1).await;
    let ann = s.register("ann").await;
    let mut ws = s.ws(&ann.access).await;
    let (codes, took) = until_closed(&mut ws, Duration::from_secs(5)).await;
    assert!(took.is_some_and(|t| t < Duration::from_secs(3)), "{took:?}");
    assert_eq!(codes, vec!["join_timeout"]);
}

#[tokio::test]
async fn an_oversized_frame_ends_the_socket_before_it_is_read() {
    let s = TestServer::start().await;
    let ann = s.register("ann").await;
    let code = s.create_meeting(&ann, json!({"title": "Big"})).await;
    let mut ws = join_with(&s, &ann.access, &code).await;
    let huge = json!({"type": "chat", "client_msg_id": "huge", "text": "x".repeat(70_000)});
    let _ = ws.try_send(huge).await;
    let (_, took) = until_closed(&mut ws, Duration::from_secs(5)).await;
    assert!(took.is_some(), "a 70 KB message was accepted");
    // The user reconnects; nothing of it was stored.
    let (_ws2, _) = s.join_ws(&ann, &code).await;
    let r = s
        .get(&format!("/api/meetings/{code}/messages"), Some(&ann.access))
        .await
        .expect(200);
    assert_eq!(r.body["messages"], json!([]));
}

#[tokio::test]
async fn sockets_are_capped_per_user_and_per_address() {
    let s = TestServer::with_config(|c| {
        c.limits.ws_per_user = 2;
        c.limits.ws_per_ip = 3;
    })
    .await;
    let ann = s.register("ann").await;
    let bob = s.register("bob").await;
    let _a1 = s.ws(&ann.access).await;
    let a2 = s.ws(&ann.access).await;
    let refused = s.try_ws(Some(&ann.access), Some("parley.v1")).await;
    assert_too_many(refused);
    let _b1 = s.ws(&bob.access).await;
    // The address holds three now: Bob's second is refused though he has one.
    assert_too_many(s.try_ws(Some(&bob.access), Some("parley.v1")).await);
    // A closed socket frees its place.
    drop(a2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.ws(&bob.access).await;
}

fn assert_too_many(r: Result<Ws, tokio_tungstenite::tungstenite::Error>) {
    match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 429);
            let body: Value =
                serde_json::from_slice(res.body().as_deref().unwrap_or(b"{}")).unwrap();
            assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("the socket was accepted"),
    }
}
