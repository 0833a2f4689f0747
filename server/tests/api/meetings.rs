//! Meetings: create, show, list, join (passcode, lock, waiting room, ended), leave, end, delete.

use serde_json::json;

use crate::fixture::TestServer;

fn is_code_shape(code: &str) -> bool {
    let groups: Vec<&str> = code.split('-').collect();
    groups.len() == 3
        && groups.iter().all(|g| {
            g.len() == 4
                && g.bytes()
                    .all(|b| b.is_ascii_lowercase() && !b"ilo".contains(&b))
        })
}

#[tokio::test]
async fn create_and_show_meeting() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let r = s
        .post(
            "/api/meetings",
            Some(&host.access),
            json!({"title": "  Weekly sync  "}),
        )
        .await
        .expect(201);
    let code = r.body["code"].as_str().unwrap().to_string();
    assert!(is_code_shape(&code), "{code}");
    assert_eq!(r.body["title"], "Weekly sync");
    assert_eq!(r.body["host"]["username"], "host");
    assert_eq!(r.body["has_passcode"], false);
    assert_eq!(r.body["waiting_room"], false);
    assert_eq!(r.body["locked"], false);
    assert_eq!(r.body["my_role"], "host");
    assert!(r.body["ended_at_ms"].is_null());

    let shown = s
        .get(&format!("/api/meetings/{code}"), Some(&host.access))
        .await
        .expect(200);
    assert_eq!(shown.body, r.body);
    // Codes are typed forgivingly.
    let loose = code.replace('-', "").to_uppercase();
    s.get(&format!("/api/meetings/{loose}"), Some(&host.access))
        .await
        .expect(200);
    s.get("/api/meetings/not-a-code", Some(&host.access))
        .await
        .expect_err(400, "invalid_meeting_code");
    s.get("/api/meetings/bcdf-ghjk-mnpq", Some(&host.access))
        .await
        .expect_err(404, "meeting_not_found");
    s.get(&format!("/api/meetings/{code}"), None)
        .await
        .expect_err(401, "unauthorized");
}

#[tokio::test]
async fn codes_are_unique_across_many_meetings() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let mut codes = std::collections::HashSet::new();
    for i in 0..40 {
        let code = s
            .create_meeting(&host, json!({"title": format!("m{i}")}))
            .await;
        assert!(is_code_shape(&code));
        assert!(codes.insert(code));
    }
}

#[tokio::test]
async fn create_validation() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    s.post("/api/meetings", Some(&host.access), json!({"title": ""}))
        .await
        .expect_err(400, "invalid_title");
    s.post(
        "/api/meetings",
        Some(&host.access),
        json!({"title": "x".repeat(121)}),
    )
    .await
    .expect_err(400, "invalid_title");
    s.post(
        "/api/meetings",
        Some(&host.access),
        json!({"title": "ok", "passcode": "123"}),
    )
    .await
    .expect_err(400, "invalid_passcode");
    s.post(
        "/api/meetings",
        Some(&host.access),
        json!({"title": "ok", "waiting_room": "yes"}),
    )
    .await
    .expect_err(400, "malformed_request");
    s.post("/api/meetings", None, json!({"title": "ok"}))
        .await
        .expect_err(401, "unauthorized");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM meetings")
        .fetch_one(&s.pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn non_participant_is_denied_details_until_joining() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let guest = s.register("guest").await;
    let code = s.create_meeting(&host, json!({"title": "Private"})).await;
    let path = format!("/api/meetings/{code}");
    s.get(&path, Some(&guest.access))
        .await
        .expect_err(403, "not_participant");
    s.post(&format!("{path}/leave"), Some(&guest.access), json!({}))
        .await
        .expect_err(403, "not_participant");

    let j = s
        .post(&format!("{path}/join"), Some(&guest.access), json!({}))
        .await
        .expect(200);
    assert_eq!(j.body["waiting"], false);
    assert_eq!(j.body["meeting"]["my_role"], "participant");
    assert_eq!(j.body["meeting"]["my_status"], "joined");
    assert!(j.body["meeting"]["started_at_ms"].is_i64());
    let shown = s.get(&path, Some(&guest.access)).await.expect(200);
    assert_eq!(shown.body["title"], "Private");
    // Stored as a participant row.
    let (role, status): (String, String) = sqlx::query_as(
        "SELECT p.role, p.status FROM participants p JOIN meetings m ON m.id = p.meeting_id WHERE m.code = $1 AND p.user_id = $2",
    )
    .bind(&code)
    .bind(&guest.id)
    .fetch_one(&s.pool())
    .await
    .unwrap();
    assert_eq!((role.as_str(), status.as_str()), ("participant", "joined"));
}

#[tokio::test]
async fn join_without_body_works() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let guest = s.register("guest").await;
    let code = s.create_meeting(&host, json!({"title": "Open"})).await;
    s.send(
        s.http
            .post(s.url(&format!("/api/meetings/{code}/join")))
            .bearer_auth(&guest.access),
    )
    .await
    .expect(200);
    s.send(
        s.http
            .post(s.url(&format!("/api/meetings/{code}/join")))
            .bearer_auth(&guest.access)
            .body("{oops"),
    )
    .await
    .expect_err(400, "malformed_request");
}

#[tokio::test]
async fn passcode_is_checked_and_attempts_are_limited() {
    let s = TestServer::with_config(|c| c.limits.passcode_failures_per_user = 3).await;
    let host = s.register("host").await;
    let guest = s.register("guest").await;
    let other = s.register("other").await;
    let r = s
        .post(
            "/api/meetings",
            Some(&host.access),
            json!({"title": "Secret", "passcode": "open sesame"}),
        )
        .await
        .expect(201);
    assert_eq!(r.body["has_passcode"], true);
    let code = r.body["code"].as_str().unwrap();
    let join = format!("/api/meetings/{code}/join");

    s.post(&join, Some(&host.access), json!({}))
        .await
        .expect(200); // the host needs none
    s.post(&join, Some(&guest.access), json!({}))
        .await
        .expect_err(403, "passcode_required");
    for _ in 0..3 {
        s.post(&join, Some(&guest.access), json!({"passcode": "guess"}))
            .await
            .expect_err(403, "wrong_passcode");
    }
    let limited = s
        .post(
            &join,
            Some(&guest.access),
            json!({"passcode": "open sesame"}),
        )
        .await
        .expect_err(429, "rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
    // Another user is not locked out by the guesser.
    s.post(
        &join,
        Some(&other.access),
        json!({"passcode": "open sesame"}),
    )
    .await
    .expect(200);
    // Once the window passes, the right passcode works; afterwards it is not asked again.
    s.advance(std::time::Duration::from_secs(601));
    s.post(
        &join,
        Some(&guest.access),
        json!({"passcode": "open sesame"}),
    )
    .await
    .expect(200);
    s.post(
        &format!("/api/meetings/{code}/leave"),
        Some(&guest.access),
        json!({}),
    )
    .await
    .expect(204);
    s.post(&join, Some(&guest.access), json!({}))
        .await
        .expect(200);
    // The passcode is stored hashed.
    let (hash,): (String,) = sqlx::query_as("SELECT passcode_hash FROM meetings WHERE code = $1")
        .bind(code)
        .fetch_one(&s.pool())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"));
}

#[tokio::test]
async fn locked_meeting_refuses_newcomers_but_not_the_host() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let early = s.register("early").await;
    let late = s.register("late").await;
    let code = s.create_meeting(&host, json!({"title": "Lockable"})).await;
    let base = format!("/api/meetings/{code}");
    s.post(&format!("{base}/join"), Some(&early.access), json!({}))
        .await
        .expect(200);
    s.post(&format!("{base}/lock"), Some(&early.access), json!({}))
        .await
        .expect_err(403, "not_host");
    s.post(&format!("{base}/lock"), Some(&late.access), json!({}))
        .await
        .expect_err(403, "not_participant");
    let locked = s
        .post(&format!("{base}/lock"), Some(&host.access), json!({}))
        .await
        .expect(200);
    assert_eq!(locked.body["locked"], true);
    s.post(&format!("{base}/join"), Some(&late.access), json!({}))
        .await
        .expect_err(403, "meeting_locked");
    // Someone let in before the lock may come back (the same rule as the live room).
    s.post(&format!("{base}/leave"), Some(&early.access), json!({}))
        .await
        .expect(204);
    s.post(&format!("{base}/join"), Some(&early.access), json!({}))
        .await
        .expect(200);
    s.post(&format!("{base}/join"), Some(&host.access), json!({}))
        .await
        .expect(200);
    s.post(&format!("{base}/unlock"), Some(&host.access), json!({}))
        .await
        .expect(200);
    s.post(&format!("{base}/join"), Some(&late.access), json!({}))
        .await
        .expect(200);
}

#[tokio::test]
async fn waiting_room_holds_newcomers() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let guest = s.register("guest").await;
    let code = s
        .create_meeting(&host, json!({"title": "Lobby", "waiting_room": true}))
        .await;
    let join = format!("/api/meetings/{code}/join");
    let h = s
        .post(&join, Some(&host.access), json!({}))
        .await
        .expect(200);
    assert_eq!(h.body["waiting"], false, "hosts skip the waiting room");
    let g = s
        .post(&join, Some(&guest.access), json!({}))
        .await
        .expect(200);
    assert_eq!(g.body["waiting"], true);
    assert_eq!(g.body["meeting"]["my_status"], "waiting");
    // The join answer names the meeting; its resources wait for admission. The waiting
    // user may leave the waiting room.
    assert_eq!(g.body["meeting"]["title"], "Lobby");
    s.get(&format!("/api/meetings/{code}"), Some(&guest.access))
        .await
        .expect_err(403, "not_participant");
    s.post(
        &format!("/api/meetings/{code}/leave"),
        Some(&guest.access),
        json!({}),
    )
    .await
    .expect(204);
}

#[tokio::test]
async fn end_is_host_only_and_final() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let guest = s.register("guest").await;
    let code = s.create_meeting(&host, json!({"title": "Ending"})).await;
    let base = format!("/api/meetings/{code}");
    s.post(&format!("{base}/join"), Some(&guest.access), json!({}))
        .await
        .expect(200);
    s.post(&format!("{base}/end"), Some(&guest.access), json!({}))
        .await
        .expect_err(403, "not_host");
    let ended = s
        .post(&format!("{base}/end"), Some(&host.access), json!({}))
        .await
        .expect(200);
    assert!(ended.body["ended_at_ms"].is_i64());
    s.post(&format!("{base}/join"), Some(&guest.access), json!({}))
        .await
        .expect_err(410, "meeting_ended");
    let g = s.get(&base, Some(&guest.access)).await.expect(200);
    assert_eq!(g.body["my_status"], "left", "ending moves everyone out");
    // Ending twice is harmless.
    let again = s
        .post(&format!("{base}/end"), Some(&host.access), json!({}))
        .await
        .expect(200);
    assert_eq!(again.body["ended_at_ms"], ended.body["ended_at_ms"]);
}

#[tokio::test]
async fn delete_is_host_only() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let guest = s.register("guest").await;
    let code = s.create_meeting(&host, json!({"title": "Doomed"})).await;
    let base = format!("/api/meetings/{code}");
    s.post(&format!("{base}/join"), Some(&guest.access), json!({}))
        .await
        .expect(200);
    s.delete(&base, Some(&guest.access))
        .await
        .expect_err(403, "not_host");
    s.delete(&base, Some(&host.access)).await.expect(204);
    s.get(&base, Some(&host.access))
        .await
        .expect_err(404, "meeting_not_found");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM participants")
        .fetch_one(&s.pool())
        .await
        .unwrap();
    assert_eq!(n, 0, "participants go with the meeting");
}

#[tokio::test]
async fn list_mine_newest_first_paginated() {
    let s = TestServer::start().await;
    let me = s.register("myself").await;
    let other = s.register("other").await;
    let mut mine = Vec::new();
    for i in 0..5 {
        mine.push(
            s.create_meeting(&me, json!({"title": format!("mine {i}")}))
                .await,
        );
        s.advance(std::time::Duration::from_millis(10));
    }
    let theirs = s
        .create_meeting(&other, json!({"title": "theirs, joined"}))
        .await;
    s.post(
        &format!("/api/meetings/{theirs}/join"),
        Some(&me.access),
        json!({}),
    )
    .await
    .expect(200);
    s.advance(std::time::Duration::from_millis(10));
    let unrelated = s.create_meeting(&other, json!({"title": "not mine"})).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/meetings?limit=2&cursor={c}"),
            None => "/api/meetings?limit=2".to_string(),
        };
        let page = s.get(&path, Some(&me.access)).await.expect(200);
        let items = page.body["meetings"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|m| m["code"].as_str().unwrap().to_string()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut expected: Vec<String> = mine.iter().rev().cloned().collect();
    expected.insert(0, theirs);
    assert_eq!(
        seen, expected,
        "newest first, hosted and joined, nothing else"
    );
    assert!(!seen.contains(&unrelated));

    s.get("/api/meetings?limit=0", Some(&me.access))
        .await
        .expect_err(400, "invalid_pagination");
    s.get("/api/meetings?limit=101", Some(&me.access))
        .await
        .expect_err(400, "invalid_pagination");
    s.get("/api/meetings?limit=abc", Some(&me.access))
        .await
        .expect_err(400, "invalid_pagination");
    s.get("/api/meetings?cursor=garbage", Some(&me.access))
        .await
        .expect_err(400, "invalid_pagination");
    let all = s.get("/api/meetings", Some(&me.access)).await.expect(200);
    assert_eq!(all.body["meetings"].as_array().unwrap().len(), 6);
}
