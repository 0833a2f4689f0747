//! E-mail verification and password reset codes, delivered over real SMTP to a sink.

use std::time::Duration;

use serde_json::json;

use crate::fixture::TestServer;

#[tokio::test]
async fn verification_code_is_mailed_and_verifies_once() {
    let s = TestServer::start().await;
    let u = s.register("lena").await;
    let code = s.mail.code_for(&u.email, 1).await;
    let mail = s.mail.all();
    assert!(
        mail[0]
            .data
            .contains("Subject: Verify your Parley e-mail address"),
        "{}",
        mail[0].data
    );

    s.post(
        "/api/auth/verify-email",
        None,
        json!({"email": u.email, "code": "12345"}),
    )
    .await
    .expect_err(400, "code_invalid"); // malformed: not six digits

    let wrong = if code == "000000" { "000001" } else { "000000" };
    s.post(
        "/api/auth/verify-email",
        None,
        json!({"email": u.email, "code": wrong}),
    )
    .await
    .expect_err(403, "code_invalid");
    let r = s
        .post(
            "/api/auth/verify-email",
            None,
            json!({"email": u.email.to_uppercase(), "code": code}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["email_verified"], true);
    s.get("/api/auth/me", Some(&u.access))
        .await
        .expect(200)
        .body["email_verified"]
        .as_bool()
        .filter(|v| *v)
        .expect("verified");
    s.post(
        "/api/auth/verify-email",
        None,
        json!({"email": u.email, "code": code}),
    )
    .await
    .expect_err(403, "code_invalid"); // the same answer as any address: nothing to learn
}

#[tokio::test]
async fn codes_are_stored_hashed() {
    let s = TestServer::start().await;
    let u = s.register("mona").await;
    let code = s.mail.code_for(&u.email, 1).await;
    let rows: Vec<(String,)> = sqlx::query_as("SELECT code_hash FROM email_codes")
        .fetch_all(&s.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].0, code);
    assert_eq!(rows[0].0.len(), 64);
}

#[tokio::test]
async fn verification_code_expires_after_24_hours() {
    let s = TestServer::start().await;
    let u = s.register("nina").await;
    let code = s.mail.code_for(&u.email, 1).await;
    s.advance(Duration::from_secs(24 * 3600 + 1));
    s.post(
        "/api/auth/verify-email",
        None,
        json!({"email": u.email, "code": code}),
    )
    .await
    .expect_err(403, "code_invalid");
    // A new code works.
    s.post(
        "/api/auth/verify-email/resend",
        None,
        json!({"email": u.email}),
    )
    .await
    .expect(202);
    let fresh = s.mail.code_for(&u.email, 2).await;
    s.post(
        "/api/auth/verify-email",
        None,
        json!({"email": u.email, "code": fresh}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn five_wrong_tries_burn_the_code() {
    let s = TestServer::start().await;
    let u = s.register("olga").await;
    let code = s.mail.code_for(&u.email, 1).await;
    let wrong = if code == "999999" { "999998" } else { "999999" };
    for i in 0..4 {
        let r = s
            .post(
                "/api/auth/verify-email",
                None,
                json!({"email": u.email, "code": wrong}),
            )
            .await
            .expect_err(403, "code_invalid");
        // No count of tries left: it would tell that the address has a live code.
        assert!(
            !r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("left"),
            "try {i}"
        );
    }
    s.post(
        "/api/auth/verify-email",
        None,
        json!({"email": u.email, "code": wrong}),
    )
    .await
    .expect_err(403, "code_invalid");
    // Even the right code no longer works.
    s.post(
        "/api/auth/verify-email",
        None,
        json!({"email": u.email, "code": code}),
    )
    .await
    .expect_err(403, "code_invalid");
    let (verified,): (Option<i64>,) =
        sqlx::query_as("SELECT email_verified_at FROM users WHERE id = $1")
            .bind(&u.id)
            .fetch_one(&s.pool())
            .await
            .unwrap();
    assert_eq!(verified, None);
}

#[tokio::test]
async fn resend_has_a_cool_down_and_reveals_nothing() {
    let s = TestServer::start().await;
    let u = s.register("pia").await;
    // The sign-up mail is sent in the background: wait for it, or the resend's mail may
    // arrive first and pass for the older code.
    let first = s.mail.code_for(&u.email, 1).await;
    // Right after registration: cooling down.
    let r = s
        .post(
            "/api/auth/verify-email/resend",
            None,
            json!({"email": u.email}),
        )
        .await
        .expect_err(429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    s.advance(Duration::from_secs(61));
    let known = s
        .post(
            "/api/auth/verify-email/resend",
            None,
            json!({"email": u.email}),
        )
        .await
        .expect(202);
    let unknown = s
        .post(
            "/api/auth/verify-email/resend",
            None,
            json!({"email": "ghost@example.org"}),
        )
        .await
        .expect(202);
    assert_eq!(
        known.body, unknown.body,
        "the answer does not say whether the address is registered"
    );
    let second = s.mail.code_for(&u.email, 2).await;
    assert_eq!(
        s.mail
            .all()
            .iter()
            .filter(|m| m.to.contains(&u.email))
            .count(),
        2,
        "no mail for the unknown address"
    );
    assert!(s
        .mail
        .all()
        .iter()
        .all(|m| !m.to.contains(&"ghost@example.org".to_string())));
    // The newer code supersedes the older one.
    if first != second {
        s.post(
            "/api/auth/verify-email",
            None,
            json!({"email": u.email, "code": first}),
        )
        .await
        .expect_err(403, "code_invalid");
    }
    s.post(
        "/api/auth/verify-email",
        None,
        json!({"email": u.email, "code": second}),
    )
    .await
    .expect(200);
    s.post(
        "/api/auth/verify-email/resend",
        None,
        json!({"email": "not an address"}),
    )
    .await
    .expect_err(400, "invalid_email");
}

#[tokio::test]
async fn login_can_require_a_verified_email() {
    let s = TestServer::with_config(|c| c.require_verified_email = true).await;
    let r = s
        .post("/api/auth/register", None, json!({"username": "quinn", "email": "quinn@example.org", "password": "quinn's good passphrase"}))
        .await
        .expect(201);
    assert_eq!(r.body["verification_required"], true);
    assert!(r.body["tokens"].is_null(), "no tokens before verification");
    s.post(
        "/api/auth/login",
        None,
        json!({"login": "quinn", "password": "quinn's good passphrase"}),
    )
    .await
    .expect_err(403, "email_not_verified");
    let code = s.mail.code_for("quinn@example.org", 1).await;
    s.post(
        "/api/auth/verify-email",
        None,
        json!({"email": "quinn@example.org", "code": code}),
    )
    .await
    .expect(200);
    s.post(
        "/api/auth/login",
        None,
        json!({"login": "quinn", "password": "quinn's good passphrase"}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn password_reset_sets_new_password_and_signs_everyone_out() {
    let s = TestServer::start().await;
    let u = s.register("rita").await;
    s.mail.code_for(&u.email, 1).await; // the verification mail
    let known = s
        .post(
            "/api/auth/password-reset/request",
            None,
            json!({"email": u.email}),
        )
        .await
        .expect(202);
    let unknown = s
        .post(
            "/api/auth/password-reset/request",
            None,
            json!({"email": "nobody@example.org"}),
        )
        .await
        .expect(202);
    assert_eq!(known.body, unknown.body);
    let code = s.mail.code_for(&u.email, 2).await;
    assert!(s
        .mail
        .all()
        .iter()
        .any(|m| m.data.contains("Subject: Reset your Parley password")));

    // A verification code is not a reset code, and unknown addresses get the generic error.
    s.post("/api/auth/password-reset/confirm", None, json!({"email": "nobody@example.org", "code": code, "new_password": "brand new passphrase"}))
        .await
        .expect_err(403, "code_invalid");
    s.post(
        "/api/auth/password-reset/confirm",
        None,
        json!({"email": u.email, "code": code, "new_password": "12345678"}),
    )
    .await
    .expect_err(400, "password_too_common");
    s.post(
        "/api/auth/password-reset/confirm",
        None,
        json!({"email": u.email, "code": code, "new_password": "brand new passphrase"}),
    )
    .await
    .expect(204);
    s.post(
        "/api/auth/password-reset/confirm",
        None,
        json!({"email": u.email, "code": code, "new_password": "another new passphrase"}),
    )
    .await
    .expect_err(403, "code_invalid");

    s.get("/api/auth/me", Some(&u.access))
        .await
        .expect_err(401, "invalid_token");
    s.post(
        "/api/auth/refresh",
        None,
        json!({"refresh_token": u.refresh}),
    )
    .await
    .expect_err(401, "invalid_refresh_token");
    s.post(
        "/api/auth/login",
        None,
        json!({"login": "rita", "password": u.password}),
    )
    .await
    .expect_err(401, "invalid_credentials");
    let r = s
        .post(
            "/api/auth/login",
            None,
            json!({"login": "rita", "password": "brand new passphrase"}),
        )
        .await
        .expect(200);
    assert_eq!(
        r.body["user"]["email_verified"], true,
        "a reset code also proves the address"
    );
}

#[tokio::test]
async fn reset_code_burns_after_five_wrong_tries() {
    let s = TestServer::start().await;
    let u = s.register("sara").await;
    s.post(
        "/api/auth/password-reset/request",
        None,
        json!({"email": u.email}),
    )
    .await
    .expect(202);
    let code = s.mail.code_for(&u.email, 2).await;
    let wrong = if code == "111111" { "111112" } else { "111111" };
    for _ in 0..4 {
        s.post(
            "/api/auth/password-reset/confirm",
            None,
            json!({"email": u.email, "code": wrong, "new_password": "brand new passphrase"}),
        )
        .await
        .expect_err(403, "code_invalid");
    }
    s.post(
        "/api/auth/password-reset/confirm",
        None,
        json!({"email": u.email, "code": wrong, "new_password": "brand new passphrase"}),
    )
    .await
    .expect_err(403, "code_invalid");
    s.post(
        "/api/auth/password-reset/confirm",
        None,
        json!({"email": u.email, "code": code, "new_password": "brand new passphrase"}),
    )
    .await
    .expect_err(403, "code_invalid");
    s.post(
        "/api/auth/login",
        None,
        json!({"login": "sara", "password": u.password}),
    )
    .await
    .expect(200);
}

/// Asks for a reset code for `email` and returns the `n`-th mailed code.
async fn reset_code(s: &TestServer, email: &str, n: usize) -> String {
    s.post(
        "/api/auth/password-reset/request",
        None,
        json!({"email": email}),
    )
    .await
    .expect(202);
    s.mail.code_for(email, n).await
}

#[tokio::test]
async fn fresh_codes_do_not_buy_more_guesses() {
    // The attack: a new code every 60 s, five guesses each, forever. Tries are capped per
    // account across all its codes.
    let s = TestServer::start().await;
    let u = s.register("pia").await;
    let confirm = |code: &str| {
        s.post(
            "/api/auth/password-reset/confirm",
            None,
            json!({"email": u.email, "code": code, "new_password": "brand new passphrase"}),
        )
    };
    let mut guesses = 0;
    let mut refused = None;
    for round in 0..5 {
        let code = reset_code(&s, &u.email, round + 2).await;
        let wrong = if code == "000000" { "000001" } else { "000000" };
        for _ in 0..5 {
            let r = confirm(wrong).await;
            if r.status.as_u16() == 429 {
                refused.get_or_insert((round, code.clone()));
                break;
            }
            r.expect_err(403, "code_invalid");
            guesses += 1;
        }
        s.advance(Duration::from_secs(61));
    }
    assert_eq!(guesses, 10, "ten wrong tries per account in a day");
    // Even the right code of the latest mail is refused until the window refills.
    let (_, code) = refused.expect("the cap was reached");
    let latest = reset_code(&s, &u.email, 7).await;
    assert_ne!(latest, code);
    confirm(&latest).await.expect_err(429, "rate_limited");
    // The cap is keyed by the address, so unknown addresses are answered alike.
    for _ in 0..10 {
        s.post(
            "/api/auth/password-reset/confirm",
            None,
            json!({"email": "nobody@example.org", "code": "123456", "new_password": "brand new passphrase"}),
        )
        .await
        .expect_err(403, "code_invalid");
    }
    s.post(
        "/api/auth/password-reset/confirm",
        None,
        json!({"email": "nobody@example.org", "code": "123456", "new_password": "brand new passphrase"}),
    )
    .await
    .expect_err(429, "rate_limited");
}

#[tokio::test]
async fn a_reset_code_lives_fifteen_minutes_and_the_owner_hears_of_the_reset() {
    let s = TestServer::start().await;
    let u = s.register("quin").await;
    let code = reset_code(&s, &u.email, 2).await;
    let mail = s.mail.all().last().unwrap().data.clone();
    assert!(mail.contains("expires in 15 minutes"), "{mail}");
    s.advance(Duration::from_secs(15 * 60 + 1));
    s.post(
        "/api/auth/password-reset/confirm",
        None,
        json!({"email": u.email, "code": code, "new_password": "brand new passphrase"}),
    )
    .await
    .expect_err(403, "code_invalid");
    s.advance(Duration::from_secs(61));
    let code = reset_code(&s, &u.email, 3).await;
    s.post(
        "/api/auth/password-reset/confirm",
        None,
        json!({"email": u.email, "code": code, "new_password": "brand new passphrase"}),
    )
    .await
    .expect(204);
    let mut notice = None;
    for _ in 0..100 {
        notice = s
            .mail
            .all()
            .into_iter()
            .find(|m| m.data.contains("password was reset"));
        if notice.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let notice = notice.expect("the owner is told of the reset");
    assert_eq!(notice.to, vec![u.email.clone()]);
}

#[tokio::test]
async fn registration_answers_alike_for_known_and_unknown_addresses() {
    let s = TestServer::with_config(|c| c.require_verified_email = true).await;
    let register = |name: &str, email: &str| {
        s.post(
            "/api/auth/register",
            None,
            json!({"username": name, "email": email, "password": "a long passphrase here"}),
        )
    };
    let first = register("rosa", "rosa@example.org").await.expect(201);
    let again = register("rosa2", "ROSA@example.org").await.expect(201);
    let fresh = register("tess", "tess@example.org").await.expect(201);
    for r in [&again, &fresh] {
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&r.body), keys(&first.body));
        assert_eq!(r.body["verification_required"], true);
        assert!(r.body["tokens"].is_null());
    }
    // Only one account holds the address; its owner is told of the attempt.
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM users WHERE email_key = 'rosa@example.org'")
            .fetch_one(&s.pool())
            .await
            .unwrap();
    assert_eq!(n, 1);
    let mut told = false;
    for _ in 0..100 {
        told = s.mail.all().iter().any(|m| {
            m.to == vec!["rosa@example.org".to_string()] && m.data.contains("tried to create")
        });
        if told {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(told, "the owner hears of the attempt");
}
