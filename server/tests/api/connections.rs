//! Connection-level limits attacked with raw TCP: headers trickled byte by byte, bodies that
//! never finish, more connections than one address may hold, and bursts of password hashing.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::fixture::TestServer;

fn addr(s: &TestServer) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection (or `within` passes); returns what arrived
/// and when the close came.
async fn read_to_close(tcp: &mut TcpStream, within: Duration) -> (String, Option<Duration>) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&got).into(), Some(start.elapsed()))
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), None),
        }
    }
}

#[tokio::test]
async fn headers_trickled_byte_by_byte_are_cut_off() {
    let s = TestServer::with_config(|c| c.limits.http_header_timeout_secs = 1).await;
    let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
    let start = Instant::now();
    // Slowloris: a byte every 200 ms, never the blank line that ends the headers.
    let trickle = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for b in trickle {
        if tcp.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if start.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    let (_, closed) = read_to_close(&mut tcp, Duration::from_secs(3)).await;
    let took = start.elapsed();
    assert!(
        closed.is_some(),
        "the connection is still open after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "closed only after {took:?}");
    // Honest requests are served meanwhile.
    s.get("/api/health", None).await.expect(200);
}

#[tokio::test]
async fn a_body_that_never_finishes_is_answered_408() {
    let s = TestServer::with_config(|c| c.limits.http_request_timeout_secs = 1).await;
    let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
    tcp.write_all(
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"login\":",
    )
    .await
    .unwrap();
    let (answer, _) = read_to_close(&mut tcp, Duration::from_secs(4)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
}

#[tokio::test]
async fn one_address_holds_a_bounded_number_of_connections() {
    let s = TestServer::with_config(|c| c.limits.tcp_per_ip = 20).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(addr(&s)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The 21st is closed at once, without an answer.
    let mut extra = TcpStream::connect(addr(&s)).await.unwrap();
    let _ = extra
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (answer, closed) = read_to_close(&mut extra, Duration::from_secs(3)).await;
    assert!(
        closed.is_some() && answer.is_empty(),
        "{answer:?} {closed:?}"
    );
    // Closing idle ones frees places.
    idle.truncate(10);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = TcpStream::connect(addr(&s)).await.unwrap();
    again
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_to_close(&mut again, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_burst_of_hashing_is_queued_then_refused_with_retry_after() {
    let s = TestServer::with_config(|c| {
        c.limits.hash_concurrency = 1;
        c.limits.hash_queue_timeout_ms = 100;
    })
    .await;
    let burst = (0..40).map(|i| {
        s.post(
            "/api/auth/register",
            None,
            json!({"username": format!("user{i}"), "email": format!("user{i}@example.org"), "password": "a long passphrase here"}),
        )
    });
    let answers = join_all(burst).await;
    let created = answers.iter().filter(|r| r.status.as_u16() == 201).count();
    let busy: Vec<_> = answers
        .iter()
        .filter(|r| r.status.as_u16() == 503)
        .collect();
    assert_eq!(created + busy.len(), 40, "no other answers (no 500s)");
    assert!(
        created >= 1 && !busy.is_empty(),
        "{created} created, {} busy",
        busy.len()
    );
    for r in busy {
        assert_eq!(r.code(), "service_unavailable");
        assert!(r.headers.contains_key("retry-after"));
    }
    // Nothing half-done: exactly the accounts that were answered 201 exist.
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(&s.pool())
        .await
        .unwrap();
    assert_eq!(n as usize, created);
}

#[tokio::test]
async fn token_responses_are_never_cached() {
    let s = TestServer::start().await;
    let u = s.register("cache").await;
    let r = s
        .post(
            "/api/auth/login",
            None,
            json!({"login": "cache", "password": u.password}),
        )
        .await
        .expect(200);
    assert_eq!(r.headers["cache-control"], "no-store");
    let r = s
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": r.body["tokens"]["refresh_token"]}),
        )
        .await
        .expect(200);
    assert_eq!(r.headers["cache-control"], "no-store");
    let r = s.get("/api/auth/me", Some(&u.access)).await.expect(200);
    assert_eq!(r.headers["cache-control"], "no-store");
}
