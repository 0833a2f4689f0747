//! A TURN relay for calls over a rough line: a TURN server (the `turn` crate, authenticating
//! parley-server's TURN REST credentials the way coturn's `use-auth-secret` does) and a
//! user-space impairment relay in front of it (loss, delay, a rate cap, outages). The kernel
//! here has no `netem`, so the impairment is made in user space.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::Mac as _;
use rand::{Rng as _, SeedableRng as _};
use tokio::net::UdpSocket;
use webrtc::turn;

/// username)), refused once `expiry` has passed.
pub struct RestApiAuth {
    pub secret: String,
}

impl turn::auth::AuthHandler for RestApiAuth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        _src: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        let expiry: u64 = username
            .split(':')
            .next()
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| turn::Error::Other("username is not expiry:user".into()))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if expiry < now {
            return Err(turn::Error::Other("expired credential".into()));
        }
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(self.secret.as_bytes()).unwrap();
        mac.update(username.as_bytes());
        let password =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        Ok(turn::auth::generate_auth_key(username, realm, &password))
    }
}

/// A TURN server on 127.0.0.1 (UDP) taking parley-server's TURN REST credentials made with
/// `secret`.
pub async fn turn_server(secret: &str) -> (turn::server::Server, SocketAddr) {
    let conn = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = conn.local_addr().unwrap();
    let server = turn::server::Server::new(turn::server::config::ServerConfig {
        conn_configs: vec![turn::server::config::ConnConfig {
            conn,
            relay_addr_generator: Box::new(
                turn::relay::relay_static::RelayAddressGeneratorStatic {
                    relay_address: "127.0.0.1".parse().unwrap(),
                    address: "127.0.0.1".to_owned(),
                    net: Arc::new(webrtc::util::vnet::net::Net::new(None)),
                },
            ),
        }],
        realm: "parley.test".to_owned(),
        auth_handler: Arc::new(RestApiAuth {
            secret: secret.to_owned(),
        }),
        channel_bind_timeout: Duration::from_secs(0),
        alloc_close_notify: None,
    })
    .await
    .unwrap();
    (server, addr)
}

/// Counts of what the impairment relay did.
#[derive(Default)]
pub struct RelayStats {
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
}

/// How the relay treats packets towards the participants.
#[derive(Clone, Default)]
pub struct Impairment {
    /// While set, nothing passes in either direction (a network outage).
    pub blackout: Arc<AtomicBool>,
    pub loss: f64,
    pub delay: Duration,
    /// A per-participant rate cap (bits/s) with a 200 ms queue, like
    /// `tc qdisc … tbf rate 300kbit latency 200ms`.
    pub cap_bps: Option<u64>,
}

/// A UDP relay in front of `upstream`: clients send to it as if it were the TURN server.
/// Packets towards the clients are dropped with probability `loss` and delayed by `delay`
/// (order kept); packets towards the server pass untouched, so every media packet crosses
/// the impairment exactly once.
pub async fn impairment_relay(
    upstream: SocketAddr,
    imp: Impairment,
) -> (SocketAddr, Arc<RelayStats>) {
    let Impairment {
        blackout,
        loss,
        delay,
        cap_bps,
    } = imp;
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = front.local_addr().unwrap();
    let stats = Arc::new(RelayStats::default());
    let st = stats.clone();
    tokio::spawn(async move {
        let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
        let mut buf = vec![0u8; 2048];
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        while let Ok((n, client)) = front.recv_from(&mut buf).await {
            let back = match backs.get(&client) {
                Some(b) => b.clone(),
                None => {
                    let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                    b.connect(upstream).await.unwrap();
                    // One ordered, delayed queue towards this client.
                    let (tx, mut down_rx) = tokio::sync::mpsc::unbounded_channel::<(
                        tokio::time::Instant,
                        SocketAddr,
                        Vec<u8>,
                    )>();
                    let f = front.clone();
                    tokio::spawn(async move {
                        while let Some((due, to, pkt)) = down_rx.recv().await {
                            tokio::time::sleep_until(due).await;
                            let _ = f.send_to(&pkt, to).await;
                        }
                    });
                    let b2 = b.clone();
                    let st = st.clone();
                    let blackout = blackout.clone();
                    let mut rng = rand::rngs::StdRng::seed_from_u64(rng.gen());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 2048];
                        // The cap: the link is busy until `free_at`; a packet that would wait
                        // more than 200 ms in the queue is dropped (tail drop).
                        let mut free_at = tokio::time::Instant::now();
                        while let Ok(n) = b2.recv(&mut buf).await {
                            if blackout.load(Ordering::Relaxed) {
                                st.dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            let now = tokio::time::Instant::now();
                            let mut send_at = now;
                            if let Some(bps) = cap_bps {
                                let start = free_at.max(now);
                                if start - now > Duration::from_millis(200) {
                                    st.dropped.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                                free_at =
                                    start + Duration::from_secs_f64(n as f64 * 8.0 / bps as f64);
                                send_at = free_at;
                            }
                            if loss > 0.0 && rng.gen_bool(loss) {
                                st.dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            st.forwarded.fetch_add(1, Ordering::Relaxed);
                            let due = send_at + delay;
                            if tx.send((due, client, buf[..n].to_vec())).is_err() {
                                return;
                            }
                        }
                    });
                    backs.insert(client, b.clone());
                    b
                }
            };
            if !blackout.load(Ordering::Relaxed) {
                let _ = back.send(&buf[..n]).await;
            }
        }
    });
    (addr, stats)
}
