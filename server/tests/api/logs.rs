//! No secret in the log, at the most verbose level: the real `parley-server` runs with
//! `RUST_LOG=trace` while a user signs up and in, makes a meeting with a passcode and a
//! personal guest link, a browser opens the link (in the old query form too), guests enter by
//! link and by passcode, everyone joins over the WebSocket (a bearer header, a browser's
//! subprotocol), chats, refreshes, re-authenticates the socket and signs out. Not one line may
//! hold a password, passcode, access or refresh token, or a link token.

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use crate::crash::spawn_logging;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Value {
    let mut req = http.post(format!("{base}{path}")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Joins `code`, authenticating with a header or (as browsers do) the subprotocol list.
async fn join(base: &str, token: &str, code: &str, name: &str, browser: bool) -> Socket {
    let mut req = format!("{}/api/ws", base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    if browser {
        req.headers_mut().insert(
            "sec-websocket-protocol",
            format!("parley.v1, parley.auth.{token}").parse().unwrap(),
        );
    } else {
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        req.headers_mut()
            .insert("sec-websocket-protocol", "parley.v1".parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    send(
        &mut ws,
        json!({"type": "join", "code": code, "display_name": name}),
    )
    .await;
    recv(&mut ws, "welcome").await;
    ws
}

async fn send(ws: &mut Socket, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

async fn recv(ws: &mut Socket, ty: &str) -> Value {
    let wait = std::time::Duration::from_secs(10);
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == ty {
                    return v;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no {ty}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn no_secret_reaches_the_log_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_logging(dir.path(), None, "trace").await;
    let base = server.base.as_str();
    let http = reqwest::Client::new();
    let mut secrets: Vec<String> = Vec::new();

    let password = "correct-Horse-battery-9";
    let reg = post(
        &http,
        base,
        "/api/auth/register",
        None,
        json!({"username": "ann", "email": "ann@example.org", "password": password}),
    )
    .await;
    secrets.push(password.into());
    let tokens = &reg["tokens"];
    secrets.push(tokens["access_token"].as_str().unwrap().into());
    secrets.push(tokens["refresh_token"].as_str().unwrap().into());
    let login = post(
        &http,
        base,
        "/api/auth/login",
        None,
        json!({"login": "ann", "password": password}),
    )
    .await;
    let access = login["tokens"]["access_token"].as_str().unwrap().to_owned();
    let refresh = login["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.extend([access.clone(), refresh.clone()]);

    let passcode = "sesame-Passcode-77";
    secrets.push(passcode.into());
    let meeting = post(
        &http,
        base,
        "/api/meetings",
        Some(&access),
        json!({"title": "Logged", "passcode": passcode, "allow_guests": true}),
    )
    .await;
    let code = meeting["code"].as_str().unwrap().to_owned();
    let link = post(
        &http,
        base,
        &format!("/api/meetings/{code}/guest-links"),
        Some(&access),
        json!({"label": "Dana"}),
    )
    .await;
    let link_token = link["token"].as_str().unwrap().to_owned();
    secrets.push(link_token.clone());
    // The invite page, opened with the token in the fragment and in the old query form.
    for path in [
        format!("/j/{code}#g={link_token}"),
        format!("/j/{code}?g={link_token}"),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }

    let by_link = post(
        &http,
        base,
        "/api/guests",
        None,
        json!({"code": code, "display_name": "Dana", "link_token": link_token}),
    )
    .await;
    let by_passcode = post(
        &http,
        base,
        "/api/guests",
        None,
        json!({"code": code, "display_name": "Gus", "passcode": passcode}),
    )
    .await;
    for g in [&by_link, &by_passcode] {
        secrets.push(g["tokens"]["access_token"].as_str().unwrap().into());
        secrets.push(g["tokens"]["refresh_token"].as_str().unwrap().into());
    }

    let mut host = join(base, &access, &code, "Ann", false).await;
    let mut dana = join(
        base,
        by_link["tokens"]["access_token"].as_str().unwrap(),
        &code,
        "Dana",
        true,
    )
    .await;
    let _gus = join(
        base,
        by_passcode["tokens"]["access_token"].as_str().unwrap(),
        &code,
        "Gus",
        false,
    )
    .await;
    send(
        &mut dana,
        json!({"type": "chat", "client_msg_id": "d1", "text": "hello"}),
    )
    .await;
    recv(&mut host, "chat").await;

    let fresh = post(
        &http,
        base,
        "/api/auth/refresh",
        None,
        json!({"refresh_token": refresh}),
    )
    .await;
    let fresh_access = fresh["access_token"].as_str().unwrap().to_owned();
    let fresh_refresh = fresh["refresh_token"].as_str().unwrap().to_owned();
    secrets.extend([fresh_access.clone(), fresh_refresh.clone()]);
    send(
        &mut host,
        json!({"type": "reauth", "access_token": fresh_access}),
    )
    .await;
    recv(&mut host, "reauthed").await;
    post(
        &http,
        base,
        "/api/auth/logout",
        None,
        json!({"refresh_token": fresh_refresh}),
    )
    .await;
    // Let the server log the last of it.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let log = server.log.lock().unwrap().clone();
    assert!(
        log.iter().any(|l| l.contains("TRACE")),
        "the server did not log at trace level: {} lines",
        log.len()
    );
    assert!(
        log.iter().any(|l| l.contains("/api/guests")),
        "request spans are missing"
    );
    for secret in &secrets {
        // Tokens are long; a part of one is as much a leak as the whole (the end of a JWT is
        // its signature, its start a header every JWT shares).
        let n = secret.len().min(20);
        for probe in [&secret[..n], &secret[secret.len() - n..]] {
            if let Some(line) = log.iter().find(|l| l.contains(probe)) {
                panic!("a secret in the log: {line}");
            }
        }
    }
}
