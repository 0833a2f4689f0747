//! The OpenAPI description and the router agree: every documented operation is routed, and
//! every routed API path is documented.

use serde_json::json;

use crate::fixture::TestServer;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let s = TestServer::start().await;
    let doc = s.get("/api/openapi.json", None).await.expect(200).body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{code}", "bcdf-ghjk-mnpq");
        for method in METHODS {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let req = s
                .http
                .request(method.to_uppercase().parse().unwrap(), s.url(&concrete))
                .json(&json!({}));
            let r = s.send(req).await;
            assert!(
                !matches!(r.code(), "not_found" | "method_not_allowed"),
                "{method} {path} is documented but not routed: {}",
                r.body
            );
        }
    }
    assert!(operations >= 19, "only {operations} operations documented");
}

#[tokio::test]
async fn every_route_is_documented() {
    // Routes and the description are produced together by `api()`; check the known set so
    // removing an annotation (or a route) shows up here.
    let (_, doc) = parley_server::api();
    let documented: std::collections::BTreeSet<String> = doc
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            let mut ops = Vec::new();
            if item.get.is_some() {
                ops.push(format!("GET {path}"));
            }
            if item.post.is_some() {
                ops.push(format!("POST {path}"));
            }
            if item.put.is_some() {
                ops.push(format!("PUT {path}"));
            }
            if item.delete.is_some() {
                ops.push(format!("DELETE {path}"));
            }
            ops
        })
        .collect();
    let expected = [
        "GET /api/health",
        "POST /api/auth/register",
        "POST /api/auth/login",
        "POST /api/auth/refresh",
        "POST /api/auth/logout",
        "GET /api/auth/me",
        "POST /api/auth/password",
        "POST /api/auth/verify-email",
        "POST /api/auth/verify-email/resend",
        "POST /api/auth/password-reset/request",
        "POST /api/auth/password-reset/confirm",
        "POST /api/meetings",
        "GET /api/meetings",
        "GET /api/meetings/{code}",
        "DELETE /api/meetings/{code}",
        "POST /api/meetings/{code}/join",
        "POST /api/meetings/{code}/leave",
        "POST /api/meetings/{code}/end",
        "POST /api/meetings/{code}/lock",
        "POST /api/meetings/{code}/unlock",
        "GET /api/meetings/{code}/messages",
        "POST /api/meetings/{code}/participants/{user_id}/readmit",
        "POST /api/guests",
        "PUT /api/meetings/{code}/guest-access",
        "POST /api/meetings/{code}/guest-links",
        "GET /api/meetings/{code}/guest-links",
        "DELETE /api/meetings/{code}/guest-links/{id}",
    ];
    let expected: std::collections::BTreeSet<String> =
        expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(documented, expected);
}

#[tokio::test]
async fn the_descriptions_are_served_once_made_with_an_etag_and_nothing_is_sniffed() {
    let s = TestServer::start().await;
    for path in ["/api/openapi.json", "/api/asyncapi.json"] {
        let first = s.get(path, None).await.expect(200);
        let etag = first.headers["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
        // The same bytes each time, and a client that has them is told so.
        let again = s.get(path, None).await.expect(200);
        assert_eq!(again.headers["etag"].to_str().unwrap(), etag);
        assert_eq!(again.body, first.body);
        let cached = s
            .http
            .get(s.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status().as_u16(), 304, "{path}");
        assert!(cached.bytes().await.unwrap().is_empty());
    }
    // nosniff on every kind of answer: JSON, an error, the invite page, the web client.
    for path in [
        "/api/health",
        "/api/meetings",
        "/api/no-such-route",
        "/j/bcdf-ghjk-mnpq",
        "/web/",
    ] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(
            r.headers()
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap().to_owned()),
            Some("nosniff".to_owned()),
            "{path}"
        );
    }
}
