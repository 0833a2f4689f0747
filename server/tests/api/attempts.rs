//! Attempt limits raced as an attacker would: bursts of parallel guesses, each limit reserving
//! its try before the slow argon2 check; delays that slow one source without locking the owner
//! out from another.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use crate::fixture::{Resp, TestServer};

/// How many of `answers` were checked and found wrong (`status` + `code`), how many refused
/// by a limit (429), and asserts nothing else came back.
fn tally(answers: &[Resp], status: u16, code: &str) -> (usize, usize) {
    let wrong = answers
        .iter()
        .filter(|r| r.status.as_u16() == status && r.code() == code)
        .count();
    let limited = answers
        .iter()
        .filter(|r| r.status.as_u16() == 429 && r.code() == "rate_limited")
        .count();
    assert_eq!(
        wrong + limited,
        answers.len(),
        "unexpected answers: {:?}",
        answers
            .iter()
            .map(|r| (r.status.as_u16(), r.code().to_string()))
            .collect::<Vec<_>>()
    );
    (wrong, limited)
}

#[tokio::test]
async fn two_hundred_parallel_wrong_passcodes_are_checked_at_most_five_times() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let eve = s.register("eve").await;
    let code = s
        .create_meeting(
            &host,
            json!({"title": "Vault", "passcode": "right-passcode"}),
        )
        .await;
    let join = format!("/api/meetings/{code}/join");
    let burst = (0..200).map(|i| {
        s.post(
            &join,
            Some(&eve.access),
            json!({"passcode": format!("guess-{i:04}")}),
        )
    });
    let answers = join_all(burst).await;
    let (checked, limited) = tally(&answers, 403, "wrong_passcode");
    assert!(checked <= 5, "{checked} guesses were checked");
    assert_eq!(checked + limited, 200);
    // The limit holds for the right passcode too, until the window refills.
    s.post(
        &join,
        Some(&eve.access),
        json!({"passcode": "right-passcode"}),
    )
    .await
    .expect_err(429, "rate_limited");
    // The WebSocket join shares the same limit.
    let mut ws = s.ws(&eve.access).await;
    ws.send(json!({"type": "join", "code": code, "display_name": "Eve", "passcode": "guess"}))
        .await;
    let refused = ws.recv_type("error").await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    s.advance(Duration::from_secs(10 * 60));
    s.post(
        &join,
        Some(&eve.access),
        json!({"passcode": "right-passcode"}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn a_right_passcode_gives_its_try_back() {
    let s = TestServer::start().await;
    let host = s.register("host").await;
    let code = s
        .create_meeting(
            &host,
            json!({"title": "Vault", "passcode": "right-passcode"}),
        )
        .await;
    let join = format!("/api/meetings/{code}/join");
    // Ten people with the right passcode use no one's budget: the meeting's stays whole.
    for i in 0..10 {
        let u = s.register(&format!("guest{i}")).await;
        s.post(
            &join,
            Some(&u.access),
            json!({"passcode": "right-passcode"}),
        )
        .await
        .expect(200);
    }
    let eve = s.register("eve").await;
    for _ in 0..5 {
        s.post(&join, Some(&eve.access), json!({"passcode": "nope-nope"}))
            .await
            .expect_err(403, "wrong_passcode");
    }
    s.post(&join, Some(&eve.access), json!({"passcode": "nope-nope"}))
        .await
        .expect_err(429, "rate_limited");
}

/// A server that believes `X-Forwarded-For` from loopback, so one test can speak from
/// several sources the way clients behind a reverse proxy do.
async fn behind_a_proxy() -> TestServer {
    TestServer::with_config(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await
}

async fn login_from(s: &TestServer, ip: String, login: &str, password: String) -> Resp {
    s.send(
        s.http
            .post(s.url("/api/auth/login"))
            .header("x-forwarded-for", ip.as_str())
            .json(&json!({"login": login, "password": password})),
    )
    .await
}

#[tokio::test]
async fn a_burst_of_guessed_passwords_is_checked_five_times_and_the_owner_still_signs_in() {
    let s = behind_a_proxy().await;
    let vera = s.register("vera").await;
    let burst =
        (0..200).map(|i| login_from(&s, "203.0.113.7".into(), "vera", format!("guess {i}")));
    let answers = join_all(burst).await;
    let (checked, _) = tally(&answers, 401, "invalid_credentials");
    assert!(checked <= 5, "{checked} passwords were checked");
    let r = login_from(&s, "203.0.113.7".into(), "vera", "guess again".into()).await;
    let r = r.expect_err(429, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    // The owner, from her own address, is not locked out by the attacker's failures.
    login_from(&s, "198.51.100.20".into(), "vera", vera.password.clone())
        .await
        .expect(200);
    // The attacker's waits grow: 1 s after the free failures, then 2 s, 4 s…
    s.advance(Duration::from_secs(1));
    login_from(&s, "203.0.113.7".into(), "vera", "guess 1s".into())
        .await
        .expect_err(401, "invalid_credentials");
    s.advance(Duration::from_secs(1));
    login_from(&s, "203.0.113.7".into(), "vera", "guess 2s".into())
        .await
        .expect_err(429, "rate_limited");
    s.advance(Duration::from_secs(1));
    login_from(&s, "203.0.113.7".into(), "vera", "guess 3s".into())
        .await
        .expect_err(401, "invalid_credentials");
}

#[tokio::test]
async fn many_sources_together_stop_at_the_account_ceiling() {
    let s = TestServer::with_config(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.limits.login_failures_per_account = 20;
    })
    .await;
    let vera = s.register("vera").await;
    // 40 sources × 3 guesses each, all at once: at most 20 checked in the hour.
    let burst = (0..120).map(|i| {
        let ip = format!("192.0.2.{}", i / 3 + 1);
        login_from(&s, ip, "vera", format!("guess {i}"))
    });
    let answers = join_all(burst).await;
    let (checked, _) = tally(&answers, 401, "invalid_credentials");
    assert!(checked <= 20, "{checked} passwords were checked");
    // IPv6 sources share their /64: hopping addresses inside it buys nothing.
    let s6 = behind_a_proxy().await;
    s6.register("walt").await;
    let hops = (0..50).map(|i| {
        login_from(
            &s6,
            format!("2001:db8:7:7::{:x}", i + 1),
            "walt",
            "guess".into(),
        )
    });
    let (checked, _) = tally(&join_all(hops).await, 401, "invalid_credentials");
    assert!(checked <= 5, "{checked} checked across one /64");
    let _ = vera;
}

#[tokio::test]
async fn password_change_is_throttled() {
    let s = TestServer::start().await;
    let vera = s.register("vera").await;
    let burst = (0..50).map(|i| {
        s.post(
            "/api/auth/password",
            Some(&vera.access),
            json!({"current_password": format!("guess {i}"), "new_password": "a brand new passphrase"}),
        )
    });
    let (checked, _) = tally(&join_all(burst).await, 403, "invalid_credentials");
    assert!(checked <= 5, "{checked} current passwords were checked");
}
