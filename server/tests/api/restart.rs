//! Restarting the server keeps accounts, meetings, sessions and its generated secrets.

use serde_json::json;

use crate::fixture::TestServer;

#[tokio::test]
async fn restart_keeps_accounts_meetings_and_sessions() {
    let mut s = TestServer::start().await;
    assert!(
        s.config.jwt_secret.is_none(),
        "the secret is generated and persisted, not configured"
    );
    let host = s.register("host").await;
    let guest = s.register("guest").await;
    let code = s
        .create_meeting(&host, json!({"title": "Survives", "passcode": "letmein"}))
        .await;
    s.post(
        &format!("/api/meetings/{code}/join"),
        Some(&guest.access),
        json!({"passcode": "letmein"}),
    )
    .await
    .expect(200);
    let old_base = s.base.clone();

    s.restart().await;
    assert_ne!(s.base, old_base, "a new server on a new port");

    // Sessions: the access token issued before the restart still verifies, the refresh
    // token still rotates.
    s.get("/api/auth/me", Some(&host.access)).await.expect(200);
    let r = s
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": guest.refresh}),
        )
        .await
        .expect(200);
    let guest_access = r.body["access_token"].as_str().unwrap().to_string();
    // Accounts: the password still signs in.
    s.post(
        "/api/auth/login",
        None,
        json!({"login": "guest", "password": guest.password}),
    )
    .await
    .expect(200);
    // Meetings and participation.
    let m = s
        .get(&format!("/api/meetings/{code}"), Some(&guest_access))
        .await
        .expect(200);
    assert_eq!(m.body["title"], "Survives");
    assert_eq!(m.body["my_status"], "joined");
    let list = s.get("/api/meetings", Some(&host.access)).await.expect(200);
    assert_eq!(list.body["meetings"][0]["code"], code.as_str());
    // Revocation state survives too.
    s.post(
        "/api/auth/logout",
        None,
        json!({"refresh_token": r.body["refresh_token"]}),
    )
    .await
    .expect(204);
    s.restart().await;
    s.get("/api/auth/me", Some(&guest_access))
        .await
        .expect_err(401, "invalid_token");
}
