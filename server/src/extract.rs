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

/// A JSON body; malformed, oversized and non-JSON bodies get a coded error.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

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

/// The signed-in caller, from `Authorization: Bearer <access token>`. The token's session
/// must still be live, so logout and password changes take effect at once.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: UserId,
    pub session_id: SessionId,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
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
        let live: Option<(String,)> = sqlx::query_as(
            "SELECT s.id FROM sessions s WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL",
        )
        .bind(&claims.sid)
        .bind(&claims.sub)
        .fetch_optional(&state.db.pool)
        .await?;
        if live.is_none() {
            return Err(AppError::unauthorized(
                ErrorCode::InvalidToken,
                "session has been signed out",
            ));
        }
        Ok(AuthUser {
            user_id: UserId(claims.sub),
            session_id: SessionId(claims.sid),
        })
    }
}

/// The peer's IP address (the socket's; no proxy headers are trusted).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(ClientIp(ip))
    }
}
