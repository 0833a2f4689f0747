//! Access tokens (JWT, HS256) and refresh tokens, as the server checks them
//! (server/src/auth/crypto.rs). What must hold: no panic; an access token the fuzzer made is
//! only ever accepted with the promised claims (kind `access`, this issuer and audience, a
//! session, not expired, not issued in the future); a token the server issues verifies with
//! the same user and session until it expires, and is `Expired` from then on; a refresh
//! token's stored form is always 64 hex digits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_server::auth::crypto::{hash_refresh_token, JwtKeys, TokenError};

const SECRET: &str = "fuzz-secret-fuzz-secret-fuzz-secret!";
const ISSUER: &str = "parley";
const AUDIENCE: &str = "parley-api";

enum Input<'a> {
    Check {
        token: &'a str,
        now_s: u32,
    },
    Issue {
        user: &'a str,
        session: &'a str,
        now_s: u32,
        ttl: u16,
    },
    Refresh {
        token: &'a str,
    },
}

/// The first byte picks what the text after it is: `c` an access token to check (`now
/// token`), `i` one to issue (`now ttl session user`), `r` a refresh token.
fn input(data: &[u8]) -> Option<Input<'_>> {
    let (&which, rest) = data.split_first()?;
    let text = std::str::from_utf8(rest).ok()?;
    Some(match which {
        b'c' => {
            let (now, token) = text.split_once(' ')?;
            Input::Check {
                token,
                now_s: now.parse().ok()?,
            }
        }
        b'i' => {
            let mut it = text.splitn(4, ' ');
            let now_s = it.next()?.parse().ok()?;
            let ttl = it.next()?.parse().ok()?;
            Input::Issue {
                session: it.next()?,
                user: it.next().unwrap_or(""),
                now_s,
                ttl,
            }
        }
        b'r' => Input::Refresh { token: text },
        _ => return None,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = input(data) else {
        return;
    };
    let keys = JwtKeys::new(SECRET, ISSUER, AUDIENCE);
    match input {
        Input::Check { token, now_s } => {
            let now = i64::from(now_s);
            if let Ok(c) = keys.verify(token, now * 1000) {
                assert_eq!(c.typ, "access");
                assert_eq!((c.iss.as_str(), c.aud.as_str()), (ISSUER, AUDIENCE));
                assert!(
                    !c.sid.is_empty() && c.exp > now && c.iat <= now + 60,
                    "{c:?}"
                );
            }
        }
        Input::Issue {
            user,
            session,
            now_s,
            ttl,
        } => {
            let now_ms = i64::from(now_s) * 1000;
            let token = keys.issue(user, session, now_ms, u64::from(ttl));
            let at_expiry = (i64::from(now_s) + i64::from(ttl)) * 1000;
            if session.is_empty() {
                assert_eq!(keys.verify(&token, now_ms).err(), Some(TokenError::Invalid));
            } else if ttl > 0 {
                let c = keys.verify(&token, now_ms).expect("a fresh token verifies");
                assert_eq!((c.sub.as_str(), c.sid.as_str()), (user, session));
                assert_eq!(keys.verify(&token, at_expiry - 1000).err(), None);
            }
            if !session.is_empty() {
                assert_eq!(
                    keys.verify(&token, at_expiry).err(),
                    Some(TokenError::Expired)
                );
            }
            // Another server's secret never accepts it.
            let other = JwtKeys::new("another-secret-another-secret-another", ISSUER, AUDIENCE);
            assert!(other.verify(&token, now_ms).is_err());
        }
        Input::Refresh { token } => {
            let stored = hash_refresh_token(token);
            assert!(stored.len() == 64 && stored.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
});
