//! ICE servers handed to clients: the configured STUN servers, and TURN with short-lived
//! credentials in the TURN REST API form, which coturn checks with `use-auth-secret`.

use parley_shared::signal::IceServer;
use parley_shared::UserId;

#[derive(Clone, Debug)]
pub struct IceConfig {
    pub stun_urls: Vec<String>,
    pub turn_urls: Vec<String>,
    pub turn_secret: Option<String>,
    pub turn_ttl_secs: u64,
    /// A guest's credentials live this long (at most), and are renewed over the socket while
    /// the guest is in the call: relay capacity nobody can take away from a removed guest
    /// would otherwise outlive the removal by up to `turn_ttl_secs`.
    pub guest_turn_ttl_secs: u64,
}

impl IceConfig {
    /// ICE servers for `user` (a `guest` or not) at `now_ms`: TURN's
    /// `username = "<expiry>:<user>"`, `credential = base64(HMAC-SHA1(secret, username))`.
    pub fn servers(&self, user: &UserId, now_ms: i64, guest: bool) -> Vec<IceServer> {
        use base64::Engine as _;
        use hmac::Mac as _;
        let mut out = Vec::new();
        if !self.stun_urls.is_empty() {
            out.push(IceServer {
                urls: self.stun_urls.clone(),
                username: None,
                credential: None,
            });
        }
        if let (false, Some(secret)) = (self.turn_urls.is_empty(), &self.turn_secret) {
            let ttl = if guest {
                self.turn_ttl_secs.min(self.guest_turn_ttl_secs)
            } else {
                self.turn_ttl_secs
            };
            let ttl = i64::try_from(ttl).unwrap_or(i64::MAX / 2);
            let username = format!("{}:{}", now_ms / 1000 + ttl, user);
            // HMAC accepts keys of any length.
            #[allow(clippy::expect_used)]
            let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())
                .expect("any key length");
            mac.update(username.as_bytes());
            let credential =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            out.push(IceServer {
                urls: self.turn_urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn turn_credentials_in_the_rest_api_form() {
        let c = IceConfig {
            stun_urls: vec!["stun:stun.example.org".into()],
            turn_urls: vec!["turn:turn.example.org".into()],
            turn_secret: Some("s3cret".into()),
            turn_ttl_secs: 600,
            guest_turn_ttl_secs: 60,
        };
        let guest = c.servers(&UserId("g1".into()), 1_000_000, true);
        assert_eq!(
            guest[1].username.as_deref(),
            Some("1060:g1"),
            "a guest's live shorter"
        );
        let servers = c.servers(&UserId("u1".into()), 1_000_000, false);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].username, None);
        let turn = &servers[1];
        assert_eq!(turn.username.as_deref(), Some("1600:u1"));
        // base64(HMAC-SHA1("s3cret", "1600:u1")), as coturn computes it.
        use base64::Engine as _;
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"1600:u1");
        let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(turn.credential.as_deref(), Some(want.as_str()));
        let no_turn = IceConfig {
            turn_secret: None,
            ..c
        };
        assert_eq!(no_turn.servers(&UserId("u1".into()), 0, false).len(), 1);
    }
}
