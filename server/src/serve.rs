//! The accept loop: HTTP/1.1 (with WebSocket upgrades) through hyper with a timer, so a
//! client that opens a connection and trickles its headers is cut off after
//! `header_read_timeout` (axum's `serve` runs hyper without a timer: no such limit), and a
//! cap on open TCP connections per client address. Graceful shutdown: stop accepting, ask
//! every connection to finish its request, wait for them (bounded).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

/// What the accept loop enforces.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Time a connection has to send a request's headers (each request, keep-alive too).
    pub header_read_timeout: Duration,
    /// TCP connections open at once from one client address (IPv4, or IPv6 /64).
    pub per_ip: usize,
}

/// How long shutdown waits for open connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Open connections per address bucket. Never locked across an await.
#[derive(Default)]
struct Counts(Mutex<HashMap<String, usize>>);

struct Slot {
    counts: Arc<Counts>,
    key: String,
}

impl Counts {
    fn take(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<Slot> {
        let key = crate::extract::bucket(ip);
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key.clone()).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: self.clone(),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let counts = Arc::new(Counts::default());
    // Every connection holds a receiver; when all are gone, shutdown is complete.
    let (drained_tx, drained_rx) = watch::channel(());
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        let Some(slot) = counts.take(peer.ip(), limits.per_ip) else {
            tracing::debug!("too many connections from one address: refused");
            drop(tcp);
            continue;
        };
        // Small messages go out at once: with Nagle's algorithm a reply could wait for the
        // peer's delayed ACK (40 ms on Linux) — the chat p99 of the signaling benchmark.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let app = app.clone();
        let mut stop = shutdown.clone();
        let drained = drained_rx.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                let app = app.clone();
                async move {
                    let res = app.oneshot(req.map(axum::body::Body::new)).await;
                    Ok::<_, Infallible>(res.unwrap_or_else(|e| match e {}))
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                }
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(slot);
            drop(drained);
        });
    }
    drop(drained_rx);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drained_tx.closed()).await;
}

/// Resolves once `shutdown` says stop (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
