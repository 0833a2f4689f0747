//! The one test-server fixture every integration test uses: a real `parley-server` on port 0
//! with a temporary data dir and database (SQLite, or a fresh PostgreSQL database when
//! `PARLEY_TEST_POSTGRES_URL` points at a server), a clock the test can move, and an SMTP
//! sink that receives the server's real e-mails.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use parley_server::clock::ManualClock;
use parley_server::config::{Config, SmtpConfig, SmtpTls};
use parley_server::Server;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// Admin URL of a PostgreSQL server; when set, every test gets its own database there.
pub const POSTGRES_ENV: &str = "PARLEY_TEST_POSTGRES_URL";

pub struct TestServer {
    server: Option<Server>,
    pub base: String,
    pub clock: ManualClock,
    pub config: Config,
    pub mail: SmtpSink,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A response: status, headers and JSON body (`Value::Null` when empty).
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// The stable error code of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        self
    }

    #[track_caller]
    pub fn expect_err(self, status: u16, code: &str) -> Self {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, code),
            "body: {}",
            self.body
        );
        assert!(self.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        self
    }
}

/// A registered user with their current tokens.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
    pub access: String,
    pub refresh: String,
}

pub async fn fresh_postgres_db(admin_url: &str) -> String {
    let name = format!(
        "parley_test_{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("postgres URL ends in /dbname");
    format!("{base}/{name}")
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with_config(|_| {}).await
    }

    /// Starts with the defaults adjusted by `tweak`. Per-IP sign-up and socket limits are
    /// raised, since every test client comes from 127.0.0.1, and so is the per-user socket
    /// cap (tests open many sockets per user); tests of those limits set their own.
    pub async fn with_config(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mail = SmtpSink::start().await;
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().to_path_buf(),
            smtp: Some(SmtpConfig {
                host: "127.0.0.1".into(),
                port: mail.port,
                username: None,
                password: None,
                from: "Parley <no-reply@parley.test>".into(),
                tls: SmtpTls::None,
            }),
            ..Config::default()
        };
        config.limits.register_per_ip = 1000;
        config.limits.login_per_ip = 1000;
        config.limits.ws_per_ip = 10_000;
        config.limits.ws_per_user = 64;
        if let Ok(admin) = std::env::var(POSTGRES_ENV) {
            if !admin.is_empty() {
                config.database_url = Some(fresh_postgres_db(&admin).await);
            }
        }
        tweak(&mut config);
        let clock = ManualClock::new();
        let server = Server::start(config.clone(), Arc::new(clock.clone()))
            .await
            .expect("server starts");
        Self {
            base: format!("http://{}", server.addr),
            server: Some(server),
            clock,
            config,
            mail,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// Stops the server gracefully and starts a new process-equivalent on the same data dir
    /// and database (new state, new port, secrets read back from disk).
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.expect("clean stop");
        }
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().expect("addr");
        let server = Server::start(config, Arc::new(self.clock.clone()))
            .await
            .expect("server restarts");
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
    }

    /// The running server's database pool, for asserting on stored rows.
    pub fn pool(&self) -> sqlx::AnyPool {
        self.server
            .as_ref()
            .expect("server running")
            .state
            .db
            .pool
            .clone()
    }

    /// Which database engine the server runs on.
    pub fn backend(&self) -> parley_server::db::Backend {
        self.server
            .as_ref()
            .expect("server running")
            .state
            .db
            .backend
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let res = req.send().await.expect("request reaches the server");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "non-JSON body ({status}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    fn auth(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(Self::auth(self.http.post(self.url(path)), token).json(&body))
            .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(Self::auth(self.http.get(self.url(path)), token))
            .await
    }

    /// POSTs from another loopback address (`127.0.0.x`): how a test stands in for many
    /// clients (the whole 127/8 reaches the server on 127.0.0.1).
    pub async fn post_from(&self, ip: &str, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(Self::auth(Self::client_from(ip).post(self.url(path)), token).json(&body))
            .await
    }

    /// An HTTP client whose connections come from `ip`.
    pub fn client_from(ip: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(Some(ip.parse().expect("an IP address")))
            .build()
            .expect("client")
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(Self::auth(self.http.put(self.url(path)), token).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(Self::auth(self.http.delete(self.url(path)), token))
            .await
    }

    /// Registers `name` with a fixed strong password and returns the signed-in user.
    pub async fn register(&self, name: &str) -> TestUser {
        let email = format!("{name}@example.org");
        let password = format!("{name}-Str0ng-Passphrase");
        let r = self
            .post(
                "/api/auth/register",
                None,
                json!({"username": name, "email": email, "password": password}),
            )
            .await
            .expect(201);
        // The verification mail goes out on its own task; waiting for it here keeps the order
        // of the mails that follow (a reset code is the address's second mail, not the first).
        self.mail.code_for(&email, 1).await;
        TestUser {
            id: r.body["user"]["id"].as_str().expect("id").into(),
            email,
            password,
            access: r.body["tokens"]["access_token"]
                .as_str()
                .expect("access")
                .into(),
            refresh: r.body["tokens"]["refresh_token"]
                .as_str()
                .expect("refresh")
                .into(),
        }
    }

    /// Creates a meeting hosted by `host` and returns its code.
    pub async fn create_meeting(&self, host: &TestUser, body: Value) -> String {
        let r = self
            .post("/api/meetings", Some(&host.access), body)
            .await
            .expect(201);
        r.body["code"].as_str().expect("code").into()
    }
}

/// A minimal SMTP server that accepts every message and keeps it for the test to read.
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    messages: Arc<Mutex<Vec<Mail>>>,
}

#[derive(Clone, Debug)]
pub struct Mail {
    pub to: Vec<String>,
    pub data: String,
}

impl SmtpSink {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind smtp sink");
        let port = listener.local_addr().expect("addr").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let store = messages.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(Self::session(stream, store.clone()));
            }
        });
        Self { port, messages }
    }

    async fn session(stream: tokio::net::TcpStream, store: Arc<Mutex<Vec<Mail>>>) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let _ = write.write_all(b"220 sink.parley.test ESMTP\r\n").await;
        let mut to = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                b"250-sink.parley.test\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("RCPT TO:") {
                to.push(
                    line[8..]
                        .trim()
                        .trim_matches(|c| c == '<' || c == '>')
                        .to_string(),
                );
                b"250 OK\r\n"
            } else if upper.starts_with("DATA") {
                let _ = write.write_all(b"354 go ahead\r\n").await;
                let mut data = String::new();
                while let Ok(Some(l)) = lines.next_line().await {
                    if l == "." {
                        break;
                    }
                    data.push_str(&l);
                    data.push('\n');
                }
                store.lock().expect("mail store").push(Mail {
                    to: std::mem::take(&mut to),
                    data,
                });
                b"250 queued\r\n"
            } else if upper.starts_with("QUIT") {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"250 OK\r\n"
            };
            if write.write_all(reply).await.is_err() {
                return;
            }
        }
    }

    /// Every message received so far.
    pub fn all(&self) -> Vec<Mail> {
        self.messages.lock().expect("mail store").clone()
    }

    /// Waits (up to 10 s) for the `n`-th message (1-based) to `to` and returns its code.
    pub async fn code_for(&self, to: &str, n: usize) -> String {
        for _ in 0..200 {
            let codes: Vec<String> = self
                .all()
                .iter()
                .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to)))
                .filter_map(|m| extract_code(&m.data))
                .collect();
            if let Some(code) = codes.get(n - 1) {
                return code.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no e-mail #{n} to {to}; received: {:?}", self.all());
    }
}

fn extract_code(data: &str) -> Option<String> {
    let at = data.find("Your Parley code is ")? + "Your Parley code is ".len();
    let code: String = data[at..].chars().take(6).collect();
    (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// A WebSocket client speaking the live-meeting protocol.
pub struct Ws {
    inner: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl TestServer {
    /// Opens `/api/ws` with `token` and the `parley.v1` subprotocol.
    pub async fn ws(&self, token: &str) -> Ws {
        self.try_ws(Some(token), Some("parley.v1"))
            .await
            .expect("websocket connects")
    }

    pub async fn try_ws(
        &self,
        token: Option<&str>,
        protocol: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let url = format!("{}/api/ws", self.base.replacen("http", "ws", 1));
        let mut req = url.into_client_request()?;
        if let Some(t) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        if let Some(p) = protocol {
            req.headers_mut()
                .insert("sec-websocket-protocol", p.parse().unwrap());
        }
        let (inner, _) = tokio_tungstenite::connect_async(req).await?;
        Ok(Ws { inner })
    }

    /// Opens a socket with `token`, sends `join` and returns the socket with the first answer
    /// (a `welcome`, `waiting` or the refusal).
    pub async fn try_join(&self, token: &str, code: &str, name: &str) -> (Ws, Value) {
        let mut ws = self.ws(token).await;
        ws.send(json!({"type": "join", "code": code, "display_name": name}))
            .await;
        let first = ws.recv().await;
        (ws, first)
    }

    /// Connects `user` and joins `code`; returns the socket and its `welcome`.
    pub async fn join_ws(&self, user: &TestUser, code: &str) -> (Ws, Value) {
        let mut ws = self.ws(&user.access).await;
        ws.send(json!({"type": "join", "code": code, "display_name": user.email.split('@').next().unwrap()})).await;
        let welcome = ws.recv_type("welcome").await;
        (ws, welcome)
    }
}

impl Ws {
    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    /// Sends without failing the test when the server has closed the socket.
    pub async fn try_send(
        &mut self,
        v: Value,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        use futures_util::SinkExt as _;
        self.inner
            .send(tokio_tungstenite::tungstenite::Message::Text(
                v.to_string().into(),
            ))
            .await
    }

    pub async fn send_text(&mut self, text: String) {
        use futures_util::SinkExt as _;
        self.inner
            .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
            .await
            .expect("ws send");
    }

    /// Sends a binary frame (the protocol has none).
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        use futures_util::SinkExt as _;
        self.inner
            .send(tokio_tungstenite::tungstenite::Message::Binary(
                bytes.into(),
            ))
            .await
            .expect("ws send");
    }

    /// Every message until the server closes the socket, and its close code and reason
    /// (`None` for a close without a frame); `None` in all if `within` passes first.
    pub async fn until_closed(
        &mut self,
        within: Duration,
    ) -> Option<(Vec<Value>, Option<(u16, String)>)> {
        use futures_util::StreamExt as _;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + within;
        let mut got = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.inner.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some((got, None)),
                Ok(Some(Ok(Message::Text(t)))) => {
                    got.push(serde_json::from_str(&t).expect("JSON message"))
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let frame = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    return Some((got, frame));
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The next protocol message, or `None` when the server closed the socket.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        use futures_util::StreamExt as _;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // One deadline for the call: pings and pongs do not restart it.
            let frame = tokio::time::timeout_at(deadline, self.inner.next())
                .await
                .ok()??;
            match frame {
                Ok(Message::Text(t)) => {
                    return Some(serde_json::from_str(&t).expect("JSON message"))
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    pub async fn recv(&mut self) -> Value {
        self.next(Duration::from_secs(5))
            .await
            .expect("a message within 5 s")
    }

    /// Skips messages until one of type `ty` arrives (5 s at most).
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        self.recv_type_within(ty, Duration::from_secs(5)).await
    }

    /// Skips messages until one of type `ty` arrives, `wait` at most.
    pub async fn recv_type_within(&mut self, ty: &str, wait: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(m) if m["type"] == ty => return m,
                Some(_) => continue,
                None => panic!("no {ty} message (socket closed or timed out)"),
            }
        }
    }

    /// The next `n` chat acknowledgements, in the order they arrive; other messages are
    /// skipped, and an error fails the test.
    pub async fn chat_acks(&mut self, n: usize) -> Vec<Value> {
        let mut acks = Vec::with_capacity(n);
        while acks.len() < n {
            let m = self.recv().await;
            assert_ne!(m["type"], "error", "{m}");
            if m["type"] == "chat_ack" {
                acks.push(m);
            }
        }
        acks
    }

    /// Asserts that nothing arrives for `ms` milliseconds.
    pub async fn expect_silence(&mut self, ms: u64) {
        if let Some(m) = self.next(Duration::from_millis(ms)).await {
            panic!("expected silence, got {m}");
        }
    }

    /// True when the server closes the socket within 5 s (messages before the close are skipped).
    pub async fn closed(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            if self.next(left).await.is_none() {
                return true;
            }
        }
    }
}
