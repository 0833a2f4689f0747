//! Host controls over real WebSocket clients: mute, promote, lock/unlock, remove (no rejoin),
//! end, host hand-over; TURN credentials in `welcome`; graceful shutdown.

use base64::Engine as _;
use hmac::Mac as _;
use parley_server::clock::Clock as _;
use serde_json::{json, Value};

use crate::fixture::TestServer;

fn code_of(err: &Value) -> &str {
    assert_eq!(err["type"], "error", "not an error: {err}");
    err["code"].as_str().unwrap_or("<none>")
}

async fn column(s: &TestServer, sql: &str, bind: &str) -> Option<String> {
    sqlx::query_scalar::<_, Option<String>>(sql)
        .bind(bind)
        .fetch_one(&s.pool())
        .await
        .unwrap()
}

async fn participant(s: &TestServer, user: &str) -> (String, String) {
    sqlx::query_as("SELECT status, role FROM participants WHERE user_id = $1")
        .bind(user)
        .fetch_one(&s.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn host_mutes_promotes_locks_removes_and_ends() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let ann = s.register("ann").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let code = s.create_meeting(&host, json!({"title": "Run it"})).await;
    let (mut h, hw) = s.join_ws(&host, &code).await;
    let (mut a, aw) = s.join_ws(&ann, &code).await;
    let (mut b, bw) = s.join_ws(&bob, &code).await;
    h.recv_type("peer_joined").await;
    h.recv_type("peer_joined").await;
    a.recv_type("peer_joined").await;
    let (ann_peer, bob_peer) = (aw["peer_id"].clone(), bw["peer_id"].clone());

    // A participant cannot use host controls; nobody else hears of the attempt.
    for msg in [
        json!({"type": "mute", "peer": bob_peer}),
        json!({"type": "remove", "peer": bob_peer}),
        json!({"type": "lock"}),
        json!({"type": "end"}),
    ] {
        a.send(msg).await;
        assert_eq!(code_of(&a.recv_type("error").await), "not_host");
    }
    b.expect_silence(200).await;

    // Mute: the target is told, the others see its audio off.
    a.send(json!({"type": "media_state", "audio": true, "video": true, "screen": false}))
        .await;
    assert_eq!(b.recv_type("media_state").await["media"]["audio"], true);
    h.recv_type("media_state").await;
    h.send(json!({"type": "mute", "peer": ann_peer})).await;
    a.recv_type("muted_by_host").await;
    let seen = b.recv_type("media_state").await;
    assert_eq!(seen["peer_id"], ann_peer);
    assert_eq!(
        seen["media"],
        json!({"audio": false, "video": true, "screen": false})
    );

    // Promote: everyone sees Bob become co-host, and it is stored.
    h.send(json!({"type": "promote", "peer": bob_peer})).await;
    for ws in [&mut h, &mut a, &mut b] {
        let rc = ws.recv_type("role_changed").await;
        assert_eq!((&rc["peer_id"], &rc["role"]), (&bob_peer, &json!("cohost")));
    }
    assert_eq!(participant(&s, &bob.id).await.1, "cohost");
    // A co-host cannot promote (host only).
    b.send(json!({"type": "promote", "peer": ann_peer})).await;
    assert_eq!(code_of(&b.recv_type("error").await), "not_host");

    // Lock by the co-host: newcomers are refused on both paths; unlock lets them in.
    b.send(json!({"type": "lock"})).await;
    for ws in [&mut h, &mut a, &mut b] {
        assert_eq!(ws.recv_type("lock_changed").await["locked"], true);
    }
    assert_eq!(
        column(
            &s,
            "SELECT CAST(locked AS TEXT) FROM meetings WHERE code = $1",
            &code
        )
        .await
        .as_deref(),
        Some("1")
    );
    let (_, refused) = s.try_join(&carol.access, &code, "carol").await;
    assert_eq!(code_of(&refused), "meeting_locked");
    s.post(
        &format!("/api/meetings/{code}/join"),
        Some(&carol.access),
        json!({}),
    )
    .await
    .expect_err(403, "meeting_locked");
    b.send(json!({"type": "unlock"})).await;
    for ws in [&mut h, &mut a, &mut b] {
        assert_eq!(ws.recv_type("lock_changed").await["locked"], false);
    }
    let (mut c, cw) = s.try_join(&carol.access, &code, "carol").await;
    assert_eq!(cw["type"], "welcome");
    assert_eq!(cw["locked"], false);
    for ws in [&mut h, &mut a, &mut b] {
        ws.recv_type("peer_joined").await;
    }

    // Remove: Ann is told and disconnected, the others see her leave, she cannot come back.
    b.send(json!({"type": "remove", "peer": hw["peer_id"]}))
        .await;
    assert_eq!(
        code_of(&b.recv_type("error").await),
        "not_host",
        "host cannot be removed"
    );
    h.send(json!({"type": "remove", "peer": ann_peer})).await;
    assert_eq!(a.recv().await["type"], "removed");
    assert!(a.closed().await);
    for ws in [&mut h, &mut b, &mut c] {
        assert_eq!(ws.recv_type("peer_left").await["peer_id"], ann_peer);
    }
    assert_eq!(participant(&s, &ann.id).await.0, "denied");
    let (_, again) = s.try_join(&ann.access, &code, "ann").await;
    assert_eq!(code_of(&again), "not_participant");
    let r = s
        .post(
            &format!("/api/meetings/{code}/join"),
            Some(&ann.access),
            json!({}),
        )
        .await;
    assert_eq!(
        r.status.as_u16(),
        403,
        "REST join after removal: {}",
        r.body
    );

    // A co-host cannot end it (the meeting's own host only, as over REST).
    b.send(json!({"type": "end"})).await;
    assert_eq!(code_of(&b.recv_type("error").await), "not_host");
    // End by the host: everyone is told, every socket closes, the meeting is over.
    h.send(json!({"type": "end"})).await;
    for ws in [&mut h, &mut b, &mut c] {
        assert_eq!(ws.recv_type("meeting_ended").await["type"], "meeting_ended");
        assert!(ws.closed().await);
    }
    assert!(column(
        &s,
        "SELECT CAST(ended_at AS TEXT) FROM meetings WHERE code = $1",
        &code
    )
    .await
    .is_some());
    assert_eq!(participant(&s, &carol.id).await.0, "left");
    let (_, late) = s.try_join(&host.access, &code, "host").await;
    assert_eq!(code_of(&late), "meeting_ended");
    let m = s
        .get(&format!("/api/meetings/{code}"), Some(&host.access))
        .await
        .expect(200);
    assert!(m.body["ended_at_ms"].is_number(), "{}", m.body);
}

#[tokio::test]
async fn host_leaving_hands_over_and_owner_takes_it_back() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let ann = s.register("ann").await;
    let bob = s.register("bob").await;
    let code = s
        .create_meeting(&host, json!({"title": "Relay race"}))
        .await;
    let (mut h, _) = s.join_ws(&host, &code).await;
    let (mut a, aw) = s.join_ws(&ann, &code).await;
    let (mut b, _) = s.join_ws(&bob, &code).await;
    a.recv_type("peer_joined").await;

    // The host leaves: Ann, present longest, becomes host, and can act as one.
    h.send(json!({"type": "leave"})).await;
    assert!(h.closed().await);
    for ws in [&mut a, &mut b] {
        ws.recv_type("peer_left").await;
        let rc = ws.recv_type("role_changed").await;
        assert_eq!(
            (&rc["peer_id"], &rc["role"]),
            (&aw["peer_id"], &json!("host"))
        );
    }
    // A stand-in: the stored role stays hers, so the hand-over ends with the meeting.
    assert_eq!(participant(&s, &ann.id).await.1, "participant");
    a.send(json!({"type": "lock"})).await;
    assert_eq!(b.recv_type("lock_changed").await["locked"], true);
    a.send(json!({"type": "unlock"})).await;
    assert_eq!(b.recv_type("lock_changed").await["locked"], false);

    // The owner returns as host; Ann steps back to her own role.
    let (_h2, hw2) = s.join_ws(&host, &code).await;
    assert_eq!(hw2["role"], "host");
    let rc = b.recv_type("role_changed").await;
    assert_eq!(
        (&rc["peer_id"], &rc["role"]),
        (&aw["peer_id"], &json!("participant"))
    );
    assert_eq!(participant(&s, &ann.id).await.1, "participant");
}

#[tokio::test]
async fn welcome_carries_turn_rest_credentials() {
    let s = TestServer::with_config(|c| {
        c.stun_urls = vec!["stun:127.0.0.1:3478".into()];
        c.turn_urls = vec!["turn:127.0.0.1:3478?transport=udp".into()];
        c.turn_secret = Some("coturn-static-auth-secret".into());
        c.turn_credential_ttl_secs = 600;
    })
    .await;
    let host = s.register("host").await;
    let code = s.create_meeting(&host, json!({"title": "Relayed"})).await;
    let now_s = s.clock.now_ms() / 1000;
    let (_h, hw) = s.join_ws(&host, &code).await;
    let servers = hw["ice_servers"].as_array().unwrap();
    assert_eq!(servers[0], json!({"urls": ["stun:127.0.0.1:3478"]}));
    let turn = &servers[1];
    assert_eq!(turn["urls"], json!(["turn:127.0.0.1:3478?transport=udp"]));
    let username = turn["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, host.id);
    assert_eq!(expiry.parse::<i64>().unwrap(), now_s + 600);
    // What coturn computes with `use-auth-secret` / `static-auth-secret`.
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(b"coturn-static-auth-secret").unwrap();
    mac.update(username.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(turn["credential"], expected);

    // Without a secret there is no TURN entry (and no credential leaks).
    let plain = TestServer::start().await;
    let u = plain.register("plain").await;
    let c2 = plain.create_meeting(&u, json!({"title": "Direct"})).await;
    let (_p, pw) = plain.join_ws(&u, &c2).await;
    assert_eq!(pw["ice_servers"], json!([]));
}

#[tokio::test]
async fn graceful_shutdown_tells_clients_and_keeps_acked_chat() {
    let mut s = TestServer::with_config(|c| {
        c.limits.chat_per_sec = 1000;
        c.limits.ws_messages_per_sec = 100_000;
        c.limits.ws_message_burst = 100_000;
    })
    .await;
    let host = s.register("host").await;
    let ann = s.register("ann").await;
    let code = s
        .create_meeting(&host, json!({"title": "Closing time"}))
        .await;
    let (mut h, _) = s.join_ws(&host, &code).await;
    let (mut a, _) = s.join_ws(&ann, &code).await;
    h.recv_type("peer_joined").await;
    for i in 0..20 {
        a.send(json!({"type": "chat", "client_msg_id": format!("m{i}"), "text": format!("last words {i}")}))
            .await;
    }
    let mut acked = 0;
    while acked < 20 {
        if a.recv_type("chat_ack").await["seq"].is_number() {
            acked += 1;
        }
    }

    let stopping = tokio::spawn(async move {
        s.restart().await;
        s
    });
    for ws in [&mut h, &mut a] {
        assert_eq!(
            ws.recv_type("server_shutdown").await["type"],
            "server_shutdown"
        );
        assert!(ws.closed().await);
    }
    let s = stopping.await.unwrap();
    let hist = s
        .get(
            &format!("/api/meetings/{code}/messages?limit=100"),
            Some(&host.access),
        )
        .await
        .expect(200);
    let texts: Vec<&str> = hist.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..20).map(|i| format!("last words {i}")).collect();
    assert_eq!(texts, want);
}

#[tokio::test]
async fn heartbeat_keeps_answering_sockets_and_closes_silent_ones() {
    let s = TestServer::with_config(|c| {
        c.ws_ping_secs = 1;
        c.ws_idle_timeout_secs = 2;
    })
    .await;
    let host = s.register("host").await;
    let ann = s.register("ann").await;
    let code = s.create_meeting(&host, json!({"title": "Heartbeat"})).await;
    let (mut h, _) = s.join_ws(&host, &code).await;
    let (mut a, aw) = s.join_ws(&ann, &code).await;
    h.recv_type("peer_joined").await;

    // The host's client reads (and so answers the server's pings); Ann's does not read at all.
    h.expect_silence(3500).await;
    assert!(a.closed().await, "a socket that never answers is closed");
    h.send(json!({"type": "ping"})).await;
    assert_eq!(
        h.recv().await["type"],
        "pong",
        "an answering socket stays open"
    );
    // Ann's place is kept for the grace period: no peer_left, and she resumes as herself.
    h.expect_silence(300).await;
    let mut a2 = s.ws(&ann.access).await;
    a2.send(json!({"type": "join", "code": code, "display_name": "ann",
                   "resume_token": aw["resume_token"]}))
        .await;
    assert_eq!(a2.recv_type("welcome").await["peer_id"], aw["peer_id"]);
}
