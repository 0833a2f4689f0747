//! Request extractors that answer with the API's JSON errors: bodies, bearer auth, client IP.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use parley_shared::{ErrorCode, SessionId, UserId};

use crate::auth::crypto::TokenError;
use crate::error::AppError;
use crate::state::AppState;

/// A JSON body; malformed, oversized and non-JSON bodies get a coded error, and so does any
/// body that is not a JSON object (serde would read a struct from an array too, which the
/// description does not allow).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, AppError> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state).await?;
        object_body(value).map(ApiJson)
    }
}

/// Reads `T` from a body that must be a JSON object.
pub fn object_body<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, AppError> {
    if !value.is_object() {
        return Err(AppError::bad_request(
            ErrorCode::MalformedRequest,
            "the body must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        AppError::bad_request(ErrorCode::MalformedRequest, format!("invalid body: {e}"))
    })
}

impl<T: serde::Serialize> axum::response::IntoResponse for ApiJson<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "send the body as application/json",
            ),
            r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "request body is too large",
            ),
            JsonRejection::JsonDataError(e) => {
                AppError::bad_request(ErrorCode::MalformedRequest, e.body_text())
            }
            _ => AppError::bad_request(
                ErrorCode::MalformedRequest,
                "request body is not valid JSON",
            ),
        }
    }
}

/// A query string; one that does not deserialise (a repeated or unknown-typed parameter) gets
/// the API's JSON error, not axum's plain text.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

impl From<axum::extract::rejection::QueryRejection> for AppError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        AppError::bad_request(ErrorCode::MalformedRequest, rejection.body_text())
    }
}

/// Path parameters; one that does not decode (bad percent-encoding, not UTF-8) gets the
/// API's JSON error.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for AppError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        AppError::bad_request(ErrorCode::MalformedRequest, rejection.body_text())
    }
}

/// The signed-in caller, from `Authorization: Bearer <access token>`. The token's session
/// must still be live, so logout and password changes take effect at once. A guest's token
/// is refused here (`guest_not_allowed`): guests have no REST beyond their entry; only the
/// meeting room takes them ([`RoomAuth`]).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: UserId,
    pub session_id: SessionId,
    /// When the access token expires (UTC epoch milliseconds, server clock).
    pub expires_at_ms: i64,
    /// For a guest: the one meeting (id) the token is good for.
    pub guest_of: Option<String>,
}

impl AuthUser {
    /// Checks an access token: signature, claims, expiry and a live session.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Self, AppError> {
        let claims = state
            .jwt
            .verify(token, state.now_ms())
            .map_err(|e| match e {
                TokenError::Expired => AppError::unauthorized(
                    ErrorCode::TokenExpired,
                    "access token expired; refresh it",
                ),
                TokenError::Invalid => {
                    AppError::unauthorized(ErrorCode::InvalidToken, "invalid access token")
                }
            })?;
        let live: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT s.id, u.guest_of FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL",
        )
        .bind(&claims.sid)
        .bind(&claims.sub)
        .fetch_optional(&state.db.pool)
        .await?;
        let Some((_, guest_of)) = live else {
            return Err(AppError::unauthorized(
                ErrorCode::InvalidToken,
                "session has been signed out",
            ));
        };
        Ok(AuthUser {
            user_id: UserId(claims.sub),
            session_id: SessionId(claims.sid),
            expires_at_ms: claims.exp.saturating_mul(1000),
            guest_of,
        })
    }

    /// The token from `Authorization: Bearer <token>`, checked; guests included.
    async fn from_header(parts: &Parts, state: &AppState) -> Result<Self, AppError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| AppError::unauthorized(ErrorCode::Unauthorized, "sign in first"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AppError::unauthorized(
                    ErrorCode::InvalidToken,
                    "expected 'Authorization: Bearer <token>'",
                )
            })?;
        Self::from_token(state, token).await
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let auth = Self::from_header(parts, state).await?;
        if auth.guest_of.is_some() {
            return Err(AppError::forbidden(
                ErrorCode::GuestNotAllowed,
                "a guest link opens its meeting and nothing else",
            ));
        }
        Ok(auth)
    }
}

/// The caller of the meeting room's WebSocket: a signed-in user or a guest (whose join is
/// then held to its one meeting). A browser cannot set `Authorization` on a WebSocket, so
/// the token may come instead as one of the offered subprotocols,
/// `parley.auth.<access token>` beside `parley.v1` (JWTs are made of characters a
/// subprotocol may hold); the server never echoes it back, it selects `parley.v1`.
#[derive(Debug, Clone)]
pub struct RoomAuth(pub AuthUser);

/// The prefix of the subprotocol that carries an access token.
pub const AUTH_SUBPROTOCOL_PREFIX: &str = "parley.auth.";

impl FromRequestParts<AppState> for RoomAuth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return AuthUser::from_header(parts, state).await.map(RoomAuth);
        }
        let offered = parts
            .headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .find_map(|p| p.strip_prefix(AUTH_SUBPROTOCOL_PREFIX))
            .filter(|t| !t.is_empty());
        match offered {
            Some(token) => AuthUser::from_token(state, token).await.map(RoomAuth),
            None => Err(AppError::unauthorized(
                ErrorCode::Unauthorized,
                "sign in first",
            )),
        }
    }
}

/// The client's IP address: the socket's, or — when the socket is one of the configured
/// `trusted_proxies` — the nearest untrusted address in `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The address as a limiter key: an IPv4 address, or the /64 an IPv6 address is in (one
    /// host usually holds a whole /64, so per-address IPv6 buckets would be free to multiply).
    pub fn bucket(&self) -> String {
        bucket(self.0)
    }

    /// The address as a key for guest limits: an IPv4 address, or the /56 an IPv6 address is
    /// in. Guests need no account, so a source is all there is to count them by, and a home
    /// or small office is commonly delegated a /56 (RIPE-690): keyed per /64, one such
    /// customer would be 256 sources.
    pub fn guest_bucket(&self) -> String {
        guest_bucket(self.0)
    }
}

/// See [`ClientIp::guest_bucket`].
pub fn guest_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/56", s[0], s[1], s[2], s[3] & 0xff00)
        }
        ip => bucket(ip),
    }
}

/// See [`ClientIp::bucket`].
pub fn bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The client address for a request that reached us from `peer` with these headers.
pub fn client_ip(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    // Right to left: each trusted proxy appended the address it received from.
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted.contains(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(ClientIp(client_ip(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(bucket(a), bucket(b));
        assert_ne!(bucket(a), bucket(c));
        assert_eq!(bucket("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
        assert_eq!(bucket("192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    #[test]
    fn guests_are_counted_per_ipv6_56() {
        let a: IpAddr = "2001:db8:1:200::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2ff:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:300::1".parse().unwrap();
        assert_eq!(guest_bucket(a), guest_bucket(b), "one /56, 256 /64s");
        assert_ne!(guest_bucket(a), guest_bucket(c));
        assert_eq!(guest_bucket("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
        assert_eq!(guest_bucket("192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.1".parse().unwrap(),
        );
        // Untrusted peer: its header is ignored.
        assert_eq!(
            client_ip("192.0.2.1".parse().unwrap(), &h, &[proxy]),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        // Trusted peer: the nearest hop it names (a client can forge the ones before).
        assert_eq!(
            client_ip(proxy, &h, &[proxy]),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // Two trusted proxies in a row: the first untrusted address.
        let second: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            client_ip(proxy, &h, &[proxy, second]),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // Garbage in the header: stop at the last good address.
        h.insert("x-forwarded-for", "not-an-ip".parse().unwrap());
        assert_eq!(client_ip(proxy, &h, &[proxy]), proxy);
    }
}
