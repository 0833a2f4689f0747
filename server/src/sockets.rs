//! Every live WebSocket: whose it is (user, sign-in session, address), the caps per user and
//! per address, and a way to end a socket from outside its task — at once, not through its
//! outbox (which may be the very thing that is full). Revoking a session ends its sockets
//! here; a room ends a peer that does not read the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use parley_shared::ErrorCode;
use tokio::sync::Notify;

/// Ends one socket from outside: the socket's task waits on it and closes with the reason.
#[derive(Debug, Default)]
pub struct Kill {
    notify: Notify,
    // Never held across an await.
    reason: Mutex<Option<(ErrorCode, &'static str)>>,
}

impl Kill {
    /// Asks the socket to close, telling the client `code` and `message`. The first reason
    /// wins; later ones are ignored.
    pub fn fire(&self, code: ErrorCode, message: &'static str) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some((code, message));
            // A stored permit: a socket not waiting yet still sees it.
            self.notify.notify_one();
        }
    }

    /// Resolves once [`fire`](Self::fire) was called, with its reason.
    pub async fn fired(&self) -> (ErrorCode, &'static str) {
        loop {
            if let Some(r) = *self.reason.lock().unwrap_or_else(|p| p.into_inner()) {
                return r;
            }
            self.notify.notified().await;
        }
    }
}

/// Caps on live sockets.
#[derive(Debug, Clone, Copy)]
pub struct SocketCaps {
    pub per_user: usize,
    pub per_ip: usize,
}

struct Entry {
    user: String,
    session: String,
    ip: String,
    kill: Arc<Kill>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<u64, Entry>,
    per_user: HashMap<String, usize>,
    per_ip: HashMap<String, usize>,
}

/// The registry of live sockets.
#[derive(Default)]
pub struct Sockets {
    // Never held across an await.
    inner: Mutex<Inner>,
}

/// Holds a socket's place in the registry; dropping it frees the place.
pub struct SocketGuard {
    id: u64,
    sockets: Arc<Sockets>,
    pub kill: Arc<Kill>,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.sockets.remove(self.id);
    }
}

impl Sockets {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers socket `id`, or refuses it when its user or address already holds its cap.
    pub fn open(
        self: &Arc<Self>,
        id: u64,
        user: &str,
        session: &str,
        ip: &str,
        caps: SocketCaps,
    ) -> Result<SocketGuard, &'static str> {
        let mut inner = self.lock();
        if inner.per_user.get(user).copied().unwrap_or(0) >= caps.per_user {
            return Err("you have too many meeting connections open");
        }
        if inner.per_ip.get(ip).copied().unwrap_or(0) >= caps.per_ip {
            return Err("too many meeting connections from your address");
        }
        *inner.per_user.entry(user.to_string()).or_default() += 1;
        *inner.per_ip.entry(ip.to_string()).or_default() += 1;
        let kill = Arc::new(Kill::default());
        inner.by_id.insert(
            id,
            Entry {
                user: user.to_string(),
                session: session.to_string(),
                ip: ip.to_string(),
                kill: kill.clone(),
            },
        );
        Ok(SocketGuard {
            id,
            sockets: self.clone(),
            kill,
        })
    }

    fn remove(&self, id: u64) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let Some(e) = inner.by_id.remove(&id) {
            for (map, key) in [(&mut inner.per_user, e.user), (&mut inner.per_ip, e.ip)] {
                if let Some(n) = map.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        map.remove(&key);
                    }
                }
            }
        }
    }

    /// The socket now runs on `session` (a `reauth` may carry another sign-in of the user).
    pub fn set_session(&self, id: u64, session: &str) {
        if let Some(e) = self.lock().by_id.get_mut(&id) {
            e.session = session.to_string();
        }
    }

    /// Ends every socket of `session`; returns how many.
    pub fn revoke_session(&self, session: &str) -> usize {
        self.kill_where(|e| e.session == session)
    }

    /// Whether any socket of `session` is open.
    pub fn has_session(&self, session: &str) -> bool {
        self.lock().by_id.values().any(|e| e.session == session)
    }

    /// Ends every socket of `user` except those of session `keep`; returns how many.
    pub fn revoke_user(&self, user: &str, keep: Option<&str>) -> usize {
        self.kill_where(|e| e.user == user && Some(e.session.as_str()) != keep)
    }

    fn kill_where(&self, hit: impl Fn(&Entry) -> bool) -> usize {
        let inner = self.lock();
        let mut n = 0;
        for e in inner.by_id.values().filter(|e| hit(e)) {
            e.kill.fire(
                ErrorCode::SessionRevoked,
                "you were signed out; sign in again",
            );
            n += 1;
        }
        n
    }

    /// Live sockets (for tests and the load benchmark).
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: SocketCaps = SocketCaps {
        per_user: 2,
        per_ip: 3,
    };

    #[test]
    fn caps_per_user_and_address_are_freed_when_a_socket_ends() {
        let s = Arc::new(Sockets::default());
        let a = s.open(1, "ann", "s1", "ip1", CAPS).unwrap();
        let _b = s.open(2, "ann", "s1", "ip1", CAPS).unwrap();
        assert!(s.open(3, "ann", "s2", "ip2", CAPS).is_err(), "user cap");
        let _c = s.open(4, "bob", "s3", "ip1", CAPS).unwrap();
        assert!(s.open(5, "cat", "s4", "ip1", CAPS).is_err(), "address cap");
        drop(a);
        assert!(s.open(6, "ann", "s2", "ip2", CAPS).is_ok());
    }

    #[tokio::test]
    async fn revoking_a_session_fires_only_its_sockets() {
        let s = Arc::new(Sockets::default());
        let a = s.open(1, "ann", "s1", "ip", CAPS).unwrap();
        let b = s.open(2, "ann", "s2", "ip", CAPS).unwrap();
        assert_eq!(s.revoke_session("s1"), 1);
        assert_eq!(a.kill.fired().await.0, ErrorCode::SessionRevoked);
        assert!(b.kill.reason.lock().unwrap().is_none());
        assert_eq!(
            s.revoke_user("ann", Some("s2")),
            1,
            "s1 only (already fired)"
        );
        assert_eq!(s.revoke_user("ann", None), 2);
        assert_eq!(b.kill.fired().await.0, ErrorCode::SessionRevoked);
    }
}
