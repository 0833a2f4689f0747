//! Password hashing (argon2id), access tokens (HS256 JWT), refresh tokens and e-mail codes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm as ArgonAlgorithm, Argon2, Params, Version};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::{Rng as _, RngCore as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Argon2id memory cost in KiB (19 MiB), per DESIGN.md §3 (OWASP's minimum).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const ARGON2_ITERATIONS: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_PARALLELISM: u32 = 1;
/// Refresh tokens carry this many random bytes (256 bits).
pub const REFRESH_TOKEN_BYTES: usize = 32;
/// Tolerated clock skew for `iat` in the future, in seconds.
const IAT_SKEW_SECS: i64 = 60;

fn argon2() -> Argon2<'static> {
    // The parameters are constants inside argon2's accepted ranges.
    #[allow(clippy::expect_used)]
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .expect("valid argon2 parameters");
    Argon2::new(ArgonAlgorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password (or meeting passcode) into a PHC string. CPU-heavy: call off the runtime.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Checks a password against a PHC string. CPU-heavy: call off the runtime.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash with the server's parameters of a password nobody has, so unknown logins take as
/// long as wrong passwords.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("parley-dummy-password-for-timing").unwrap_or_default())
}

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    /// Session (refresh-token family) the token was issued to; revoking it revokes the token.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// Always `"access"`, so no other kind of token is accepted in its place.
    pub typ: String,
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

/// Signs and checks access tokens. The algorithm is pinned to HS256.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    audience: String,
}

impl JwtKeys {
    pub fn new(secret: &str, issuer: &str, audience: &str) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    /// Issues a token for `user` in `session`, valid `ttl_secs` from `now_ms`.
    pub fn issue(&self, user: &str, session: &str, now_ms: i64, ttl_secs: u64) -> String {
        let iat = now_ms / 1000;
        let claims = AccessClaims {
            sub: user.into(),
            sid: session.into(),
            iat,
            exp: iat + i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            typ: "access".into(),
        };
        // HS256 signing of serializable claims cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// Checks signature, algorithm, issuer, audience, kind, issue time and expiry against
    /// `now_ms` (the server clock, not the system time, so tests can move it).
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<AccessClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation)
            .map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
        let now = now_ms / 1000;
        if claims.typ != "access" || claims.iat > now + IAT_SKEW_SECS || claims.sid.is_empty() {
            return Err(TokenError::Invalid);
        }
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// A new opaque refresh token (256 random bits, URL-safe base64).
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// How a refresh token is stored: SHA-256, hex. The token has 256 bits of entropy, so a fast
/// hash suffices; a stolen table cannot be turned back into tokens.
pub fn hash_refresh_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A uniformly random six-digit code.
pub fn new_email_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// How an e-mail code is stored: HMAC-SHA-256 keyed with the server's code secret over the
/// purpose, user and code. A six-digit code hashed without a key is reversible in a second.
pub fn hash_email_code(secret: &str, purpose: &str, user_id: &str, code: &str) -> String {
    // HMAC accepts keys of any length.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(purpose.as_bytes());
    mac.update(b":");
    mac.update(user_id.as_bytes());
    mac.update(b":");
    mac.update(code.trim().as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// How a guest's source address bucket is kept: keyed like e-mail codes, per meeting, so
/// the stored value says nothing about the address to someone reading the database.
pub fn hash_guest_source(secret: &str, meeting_id: &str, source: &str) -> String {
    hash_email_code(secret, "guest-source", meeting_id, source)
}

/// Constant-time string equality for hashes.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn password_hash_is_argon2id_with_design_parameters() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("wrong horse battery", &phc));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn access_token_round_trip_and_expiry() {
        let keys = JwtKeys::new(SECRET, "parley", "parley-api");
        let t = keys.issue("u1", "s1", 1_000_000, 900);
        let c = keys.verify(&t, 1_000_000).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.sid.as_str(), c.exp - c.iat),
            ("u1", "s1", 900)
        );
        assert_eq!(
            keys.verify(&t, 1_000_000 + 900_000).unwrap_err(),
            TokenError::Expired
        );
        let other_aud = JwtKeys::new(SECRET, "parley", "elsewhere");
        assert_eq!(
            other_aud.verify(&t, 1_000_000).unwrap_err(),
            TokenError::Invalid
        );
        let other_key = JwtKeys::new(&SECRET.repeat(2), "parley", "parley-api");
        assert_eq!(
            other_key.verify(&t, 1_000_000).unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn email_codes_are_six_digits_and_hash_by_purpose() {
        for _ in 0..100 {
            let c = new_email_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        let a = hash_email_code(SECRET, "verify", "u", "123456");
        assert_eq!(a, hash_email_code(SECRET, "verify", "u", " 123456 "));
        assert_ne!(a, hash_email_code(SECRET, "reset", "u", "123456"));
        assert_ne!(
            a,
            hash_email_code("another-secret-another-secret-xx", "verify", "u", "123456")
        );
        assert!(constant_time_eq(&a, &a.clone()));
        assert!(!constant_time_eq(&a, &a[1..]));
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_refresh_token(&a).len(), 64);
    }
}
