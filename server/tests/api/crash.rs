//! The real `parley-server` process is killed with SIGKILL in the middle of a chat burst and
//! started again on the same data: every acknowledged message is in the history exactly once,
//! and a client retrying everything after the restart creates no duplicates.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use crate::fixture::{fresh_postgres_db, POSTGRES_ENV};

const BURST: usize = 1000;

/// A `parley-server` child process and the address it listens on.
pub(crate) struct Proc {
    pub child: Child,
    pub base: String,
    /// Every line the server logged so far (its standard output).
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

async fn spawn(dir: &Path, database_url: Option<&str>) -> Proc {
    spawn_logging(dir, database_url, "info").await
}

/// Starts the real server on `dir` with `RUST_LOG=rust_log`, keeping its log lines.
pub(crate) async fn spawn_logging(dir: &Path, database_url: Option<&str>, rust_log: &str) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parley-server"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PARLEY_LISTEN", "127.0.0.1:0")
        .env("PARLEY_DATA_DIR", dir)
        .env("PARLEY_LIMITS__CHAT_PER_SEC", "100000")
        .env("PARLEY_LIMITS__WS_MESSAGES_PER_SEC", "100000")
        .env("PARLEY_LIMITS__WS_MESSAGE_BURST", "100000")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", rust_log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    let mut child = cmd.spawn().expect("spawn parley-server");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read server log") {
            log.lock().unwrap().push(line.clone());
            if let Some(at) = line.find("addr=") {
                if line.contains("listening") {
                    let rest = &line[at + 5..];
                    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                    return rest[..end].to_string();
                }
            }
        }
        panic!("server exited before listening");
    })
    .await
    .expect("server listens within 30 s");
    // Keep draining the log so the server never blocks on a full pipe.
    let kept = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            kept.lock().unwrap().push(line);
        }
    });
    Proc {
        child,
        base: format!("http://{addr}"),
        log,
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn join(base: &str, token: &str, code: &str) -> Socket {
    let mut req = format!("{}/api/ws", base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req.headers_mut()
        .insert("sec-websocket-protocol", "parley.v1".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let join = json!({"type": "join", "code": code, "display_name": "Burst"});
    ws.send(Message::Text(join.to_string().into()))
        .await
        .unwrap();
    loop {
        let m = next_json(&mut ws).await.expect("welcome");
        if m["type"] == "welcome" {
            return ws;
        }
    }
}

async fn next_json(ws: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

fn chat(i: usize) -> Message {
    Message::Text(
        json!({"type": "chat", "client_msg_id": format!("burst-{i}"), "text": format!("message {i}")})
            .to_string()
            .into(),
    )
}

/// All of a meeting's chat, in order.
async fn history(http: &reqwest::Client, base: &str, token: &str, code: &str) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |m: &Value| m["seq"].as_i64().unwrap());
        let r = http
            .get(format!(
                "{base}/api/meetings/{code}/messages?after_seq={after}&limit=500"
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let page: Value = r.json().await.unwrap();
        let msgs = page["messages"].as_array().unwrap().clone();
        if msgs.is_empty() {
            return all;
        }
        all.extend(msgs);
    }
}

#[tokio::test]
async fn sigkill_during_chat_burst_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match std::env::var(POSTGRES_ENV) {
        Ok(admin) if !admin.is_empty() => Some(fresh_postgres_db(&admin).await),
        _ => None,
    };
    let http = reqwest::Client::new();
    let mut server = spawn(dir.path(), database_url.as_deref()).await;
    let r = http
        .post(format!("{}/api/auth/register", server.base))
        .json(&json!({"username": "burster", "email": "burster@example.org", "password": "burster-Str0ng-Passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().await.unwrap()["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .post(format!("{}/api/meetings", server.base))
        .bearer_auth(&token)
        .json(&json!({"title": "Crash course"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let code = r.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_string();

    // The burst: every message is in flight at once; SIGKILL lands after the 40th ack.
    let mut ws = join(&server.base, &token, &code).await;
    for i in 0..BURST {
        ws.send(chat(i)).await.unwrap();
    }
    let mut acked: HashMap<String, (String, i64)> = HashMap::new();
    let mut killed = false;
    while let Some(m) = next_json(&mut ws).await {
        if m["type"] == "chat_ack" {
            acked.insert(
                m["client_msg_id"].as_str().unwrap().into(),
                (m["id"].as_str().unwrap().into(), m["seq"].as_i64().unwrap()),
            );
            if acked.len() == 40 && !killed {
                server.child.start_kill().expect("SIGKILL");
                killed = true;
            }
        }
    }
    assert!(killed, "the server died before the 40th ack");
    let status = server.child.wait().await.unwrap();
    assert!(!status.success(), "killed, not stopped: {status:?}");
    assert!(
        acked.len() < BURST,
        "the kill landed after the whole burst ({} acks); nothing was tested",
        acked.len()
    );

    // Same data, new process: everything acknowledged is there, once, with its seq.
    let server = spawn(dir.path(), database_url.as_deref()).await;
    let stored = history(&http, &server.base, &token, &code).await;
    let seqs: Vec<i64> = stored.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=stored.len() as i64).collect::<Vec<_>>(),
        "gap-free"
    );
    let by_text: HashMap<&str, &Value> = stored
        .iter()
        .map(|m| (m["text"].as_str().unwrap(), m))
        .collect();
    assert_eq!(by_text.len(), stored.len(), "no message stored twice");
    for (cid, (id, seq)) in &acked {
        let i = cid.trim_start_matches("burst-");
        let m = by_text
            .get(format!("message {i}").as_str())
            .unwrap_or_else(|| panic!("acknowledged {cid} is missing"));
        assert_eq!(
            (m["id"].as_str().unwrap(), m["seq"].as_i64().unwrap()),
            (id.as_str(), *seq)
        );
    }

    // The client retries everything it sent: acks come back, nothing doubles.
    let mut ws = join(&server.base, &token, &code).await;
    for i in 0..BURST {
        ws.send(chat(i)).await.unwrap();
    }
    let mut retried = 0;
    while retried < BURST {
        let m = next_json(&mut ws).await.expect("ack for every retry");
        if m["type"] == "chat_ack" {
            let cid = m["client_msg_id"].as_str().unwrap();
            if let Some((id, seq)) = acked.get(cid) {
                assert_eq!(
                    (m["id"].as_str().unwrap(), m["seq"].as_i64().unwrap()),
                    (id.as_str(), *seq)
                );
            }
            retried += 1;
        }
    }
    let stored = history(&http, &server.base, &token, &code).await;
    let mut texts: Vec<&str> = stored.iter().map(|m| m["text"].as_str().unwrap()).collect();
    texts.sort_unstable();
    let mut want: Vec<String> = (0..BURST).map(|i| format!("message {i}")).collect();
    want.sort_unstable();
    assert_eq!(texts, want, "each message exactly once after the retry");
    eprintln!(
        "crash test: {} of {BURST} acked before SIGKILL, {} stored at restart",
        acked.len(),
        seqs.len()
    );
}
