//! The invite link's page, `GET /j/{code}`, as a browser receives it.

use serde_json::json;

use crate::fixture::TestServer;

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    html: String,
}

async fn open(s: &TestServer, path: &str) -> Page {
    let res = s.http.get(s.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    Page {
        status,
        headers,
        html: res.text().await.unwrap(),
    }
}

fn header<'a>(p: &'a Page, name: &str) -> &'a str {
    p.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Every page: HTML, a policy that allows only its own inline style and script (the hashes
/// match what is in the page, so a browser runs them and nothing else), no cookie, no
/// referrer, no cache.
fn check_headers(p: &Page) {
    use base64::Engine as _;
    use sha2::Digest as _;
    assert!(header(p, "content-type").starts_with("text/html"));
    let csp = header(p, "content-security-policy");
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"));
    for (open, close) in [("<script>", "</script>"), ("<style>", "</style>")] {
        let start = p.html.find(open).expect(open) + open.len();
        let end = start + p.html[start..].find(close).unwrap();
        let hash = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(&p.html.as_bytes()[start..end]));
        assert!(
            csp.contains(&format!("'sha256-{hash}'")),
            "{open} not allowed by {csp}"
        );
        assert_eq!(p.html.matches(open).count(), 1, "one {open} only");
    }
    assert!(p.headers.get("set-cookie").is_none());
    assert_eq!(header(p, "referrer-policy"), "no-referrer");
    assert_eq!(header(p, "cache-control"), "no-store");
    assert_eq!(header(p, "x-content-type-options"), "nosniff");
    // Its tab icon is Parley's, from this origin, which the policy lets it load.
    assert!(p
        .html
        .contains("<link rel=\"icon\" type=\"image/png\" href=\"/favicon.png\">"));
    assert!(csp.contains("img-src 'self'"), "{csp}");
}

/// The icon a browser asks for, under both names: a PNG, not a 404.
#[tokio::test]
async fn the_tab_icon_is_served() {
    let s = TestServer::start().await;
    for path in ["/favicon.png", "/favicon.ico"] {
        let res = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "image/png");
        let body = res.bytes().await.unwrap();
        assert!(body.starts_with(b"\x89PNG\r\n\x1a\n"), "{path}: a PNG");
    }
}

#[tokio::test]
async fn the_invite_page_names_the_meeting_and_opens_the_app() {
    let s = TestServer::with_config(|c| {
        c.invite_downloads = vec![parley_server::invite::Download {
            label: "Windows <64-bit>".into(),
            url: "https://example.org/parley.msi?a=1&b=2".into(),
        }];
    })
    .await;
    let host = s.register("hostess").await;
    let code = s
        .create_meeting(&host, json!({"title": "Q3 <planning> & \"review\""}))
        .await;
    let p = open(&s, &format!("/j/{code}")).await;
    assert_eq!(p.status, 200);
    check_headers(&p);
    assert!(
        p.html
            .contains("<h1>Q3 &lt;planning&gt; &amp; &quot;review&quot;</h1>"),
        "{}",
        p.html
    );
    assert!(p.html.contains(&format!("href=\"parley://join/{code}\"")));
    assert!(p.html.contains(&format!("href=\"/web/#code={code}\"")));
    assert!(p.html.contains("Open in Parley"));
    assert!(p.html.contains("<a href=\"https://example.org/parley.msi?a=1&amp;b=2\" rel=\"noreferrer\">Windows &lt;64-bit&gt;</a>"));
    // Nothing about the host, nobody's id.
    assert!(!p.html.contains("hostess") && !p.html.contains(&host.id));
    // The code in other spellings finds the same page.
    let typed = code.replace('-', "").to_uppercase();
    assert_eq!(open(&s, &format!("/j/{typed}")).await.status, 200);
}

#[tokio::test]
async fn a_passcode_meeting_keeps_its_title_and_a_guest_token_stays_out_of_the_page() {
    let s = TestServer::start().await;
    let host = s.register("hostess").await;
    let code = s
        .create_meeting(
            &host,
            json!({"title": "Board: acquisition", "passcode": "s3cret-pass"}),
        )
        .await;
    let p = open(&s, &format!("/j/{code}?g=personal-secret-token")).await;
    assert_eq!(p.status, 200);
    check_headers(&p);
    assert!(
        !p.html.contains("acquisition"),
        "the title stays behind the passcode"
    );
    assert!(p.html.contains("passcode"));
    // The web client is told to ask for it (its form has no passcode field otherwise).
    assert!(p.html.contains(&format!("href=\"/web/#code={code}&p=1\"")));
    assert!(!p.html.contains("personal-secret-token"));
    assert!(
        p.html.contains("history.replaceState"),
        "the script clears the address bar"
    );
}

#[tokio::test]
async fn unknown_ended_and_malformed_links_each_get_their_page() {
    let s = TestServer::start().await;
    let host = s.register("hostess").await;
    let code = s.create_meeting(&host, json!({"title": "Over"})).await;
    s.post(
        &format!("/api/meetings/{code}/end"),
        Some(&host.access),
        json!({}),
    )
    .await
    .expect(200);
    for (path, status, says) in [
        (format!("/j/{code}"), 410, "This meeting has ended"),
        (
            "/j/bcdf-ghjk-mnpq".to_string(),
            404,
            "No meeting has this link",
        ),
        (
            "/j/not-a-code".to_string(),
            400,
            "That is not a meeting link",
        ),
        (
            "/j/%3Cscript%3E".to_string(),
            400,
            "That is not a meeting link",
        ),
    ] {
        let p = open(&s, &path).await;
        assert_eq!(p.status, status, "{path}");
        check_headers(&p);
        assert!(p.html.contains(says), "{path}: {}", p.html);
        assert!(!p.html.contains("<script>alert") && !p.html.contains("Open in Parley"));
    }
}

/// The browser client, `/web/`: the page under a policy that runs only this origin's files
/// (no inline script anywhere in it), its hashed files cached for a year, nothing else served.
/// Needs the built client (`scripts/ui.sh`, which `scripts/test.sh` runs first).
#[tokio::test]
async fn the_web_client_is_served_with_a_strict_policy_and_long_lived_files() {
    let s = TestServer::start().await;
    let p = open(&s, "/web/").await;
    assert_eq!(p.status, 200, "{}", p.html);
    assert!(header(&p, "content-type").starts_with("text/html"));
    let csp = header(&p, "content-security-policy");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert!(!csp.contains("script-src 'self' 'unsafe"), "{csp}");
    assert!(!p.html.contains("<script>"), "no inline script: {}", p.html);
    assert!(p.headers.get("set-cookie").is_none());
    assert_eq!(header(&p, "cache-control"), "no-store");
    assert_eq!(header(&p, "x-frame-options"), "DENY");
    // The scripts and styles it loads: hashed names under /web/assets/, cached for a year.
    let assets: Vec<&str> = p
        .html
        .split(['"', '\''])
        .filter(|t| t.starts_with("/web/assets/"))
        .collect();
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{}", p.html);
    for a in assets {
        let f = open(&s, a).await;
        assert_eq!(f.status, 200, "{a}");
        assert_eq!(
            header(&f, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        let ty = header(&f, "content-type");
        assert!(
            ty.starts_with("text/javascript") || ty.starts_with("text/css"),
            "{a}: {ty}"
        );
        assert!(f.headers.get("set-cookie").is_none());
    }
    assert_eq!(open(&s, "/web/assets/nothing-here.js").await.status, 404);
    assert_eq!(open(&s, "/web/../Cargo.toml").await.status, 404);
    // The API still answers no other origin: no CORS headers on a cross-origin request.
    let res = s
        .http
        .get(s.url("/api/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}
