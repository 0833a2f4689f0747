//! Abuse limits and bad requests: 429 with Retry-After, body size, content type, unknown routes.

use std::time::Duration;

use serde_json::json;

use crate::fixture::TestServer;

#[tokio::test]
async fn login_is_limited_per_ip() {
    let s = TestServer::with_config(|c| {
        c.limits.login_per_ip = 5;
        c.limits.login_per_ip_window_secs = 60;
    })
    .await;
    let u = s.register("uma").await;
    for _ in 0..5 {
        s.post(
            "/api/auth/login",
            None,
            json!({"login": "uma", "password": u.password}),
        )
        .await
        .expect(200);
    }
    let r = s
        .post(
            "/api/auth/login",
            None,
            json!({"login": "uma", "password": u.password}),
        )
        .await
        .expect_err(429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=12).contains(&retry),
        "one slot refills every 12 s: {retry}"
    );
    s.advance(Duration::from_secs(retry));
    s.post(
        "/api/auth/login",
        None,
        json!({"login": "uma", "password": u.password}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn failed_logins_are_limited_per_account() {
    let s = TestServer::with_config(|c| c.limits.login_failures_per_account = 3).await;
    let u = s.register("vera").await;
    let bystander = s.register("walt").await;
    for _ in 0..3 {
        s.post(
            "/api/auth/login",
            None,
            json!({"login": "vera", "password": "wrong wrong"}),
        )
        .await
        .expect_err(401, "invalid_credentials");
    }
    // Paused, even with the right password, until the window refills.
    s.post(
        "/api/auth/login",
        None,
        json!({"login": "vera", "password": u.password}),
    )
    .await
    .expect_err(429, "rate_limited");
    // By e-mail too: the limit belongs to the account, not the spelling of the login.
    s.post(
        "/api/auth/login",
        None,
        json!({"login": u.email, "password": u.password}),
    )
    .await
    .expect_err(429, "rate_limited");
    // Other accounts are unaffected.
    s.post(
        "/api/auth/login",
        None,
        json!({"login": "walt", "password": bystander.password}),
    )
    .await
    .expect(200);
    // The window (an hour) refills one failure in every 20 minutes.
    s.advance(Duration::from_secs(20 * 60));
    s.post(
        "/api/auth/login",
        None,
        json!({"login": "vera", "password": u.password}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn unknown_accounts_are_limited_the_same_way() {
    let s = TestServer::with_config(|c| c.limits.login_failures_per_account = 2).await;
    for _ in 0..2 {
        s.post(
            "/api/auth/login",
            None,
            json!({"login": "ghost", "password": "whatever1"}),
        )
        .await
        .expect_err(401, "invalid_credentials");
    }
    s.post(
        "/api/auth/login",
        None,
        json!({"login": "ghost", "password": "whatever1"}),
    )
    .await
    .expect_err(429, "rate_limited");
}

#[tokio::test]
async fn registration_is_limited_per_ip() {
    let s = TestServer::with_config(|c| c.limits.register_per_ip = 2).await;
    s.register("xena").await;
    s.register("yuri").await;
    let r = s
        .post("/api/auth/register", None, json!({"username": "zack", "email": "zack@example.org", "password": "zack's long passphrase"}))
        .await
        .expect_err(429, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(&s.pool())
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn oversized_malformed_and_non_json_bodies() {
    let s = TestServer::start().await;
    let huge =
        json!({"username": "big", "email": "big@example.org", "password": "p".repeat(20_000)});
    s.post("/api/auth/register", None, huge)
        .await
        .expect_err(413, "payload_too_large");
    let raw = |body: &'static str, ct: &'static str| {
        s.http
            .post(s.url("/api/auth/login"))
            .header("content-type", ct)
            .body(body)
    };
    s.send(raw("{\"login\": ", "application/json"))
        .await
        .expect_err(400, "malformed_request");
    s.send(raw("[1,2,3]", "application/json"))
        .await
        .expect_err(400, "malformed_request");
    s.send(raw(
        "login=a&password=b",
        "application/x-www-form-urlencoded",
    ))
    .await
    .expect_err(415, "unsupported_media_type");
    // Unknown fields are ignored, as the protocol promises.
    let u = s.register("ann").await;
    s.post(
        "/api/auth/login",
        None,
        json!({"login": "ann", "password": u.password, "remember": true}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let s = TestServer::start().await;
    s.get("/api/nope", None).await.expect_err(404, "not_found");
    s.delete("/api/auth/login", None)
        .await
        .expect_err(405, "method_not_allowed");
}

#[tokio::test]
async fn health_reports_database() {
    let s = TestServer::start().await;
    let h = s.get("/api/health", None).await.expect(200);
    assert_eq!(h.body["status"], "ok");
    assert_eq!(h.body["database"], "ok");
}

#[tokio::test]
async fn suite_runs_on_the_backend_the_environment_asks_for() {
    let s = TestServer::start().await;
    let want_pg = std::env::var(crate::fixture::POSTGRES_ENV).is_ok_and(|v| !v.is_empty());
    let expected = if want_pg {
        parley_server::db::Backend::Postgres
    } else {
        parley_server::db::Backend::Sqlite
    };
    assert_eq!(s.backend(), expected);
    // And the schema is really there: a registered user is a row.
    let u = s.register("rowcheck").await;
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE id = $1")
        .bind(&u.id)
        .fetch_one(&s.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
}
