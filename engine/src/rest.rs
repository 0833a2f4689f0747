//! The REST half of the client: typed calls to the server's `/api`, with the server's error
//! code kept as the error's identity.

use parley_shared::api::{
    ChatHistory, CreateGuestLinkRequest, CreateMeetingRequest, CreatedGuestLink, EmailRequest,
    GuestAccessRequest, GuestLinkList, JoinMeetingRequest, JoinMeetingResponse, LoginRequest,
    LoginResponse, LogoutRequest, Meeting, MeetingList, RefreshRequest, RegisterRequest,
    RegisterResponse, ResetPasswordRequest, TokenPair, User, VerifyEmailRequest,
};
use parley_shared::{ErrorCode, MeetingCode};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error body. `code` is the stable snake_case error code
    /// (kept as text so a newer server's codes still reach the caller).
    #[error("{message} ({code})")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    /// The server could not be reached or the connection broke.
    #[error("cannot reach the server at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered something that is not the API's JSON.
    #[error("unexpected answer from the server ({status}): {detail}")]
    Protocol { status: u16, detail: String },
}

impl ApiError {
    /// The server's error code, when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Server { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The server's error code as [`ErrorCode`], when it is one this client knows (a newer
    /// server's new codes are only in [`ApiError::code`]).
    pub fn error_code(&self) -> Option<ErrorCode> {
        let code = self.code()?;
        serde_json::from_value(serde_json::Value::String(code.to_string())).ok()
    }

    /// True when the request failed because the credentials are missing, expired or revoked.
    pub fn is_auth(&self) -> bool {
        matches!(self, ApiError::Server { status: 401, .. })
    }
}

#[derive(Deserialize)]
struct WireError {
    error: WireDetail,
}

#[derive(Deserialize)]
struct WireDetail {
    code: String,
    message: String,
}

/// A client for one server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// `base` is the server's origin, e.g. `http://127.0.0.1:8080` (a trailing `/` is fine).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .user_agent(concat!("parley-engine/", env!("CARGO_PKG_VERSION")))
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The WebSocket URL of the live-meeting endpoint.
    pub fn ws_url(&self) -> String {
        let rest = self
            .base
            .strip_prefix("https://")
            .map(|r| format!("wss://{r}"))
            .or_else(|| {
                self.base
                    .strip_prefix("http://")
                    .map(|r| format!("ws://{r}"))
            })
            .unwrap_or_else(|| self.base.clone());
        format!("{rest}/api/ws")
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|source| ApiError::Unreachable {
            url: self.base.clone(),
            source,
        })?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|source| ApiError::Unreachable {
            url: self.base.clone(),
            source,
        })?;
        if status.is_success() {
            // Empty successes (204) decode as JSON `null`.
            let text: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            return serde_json::from_slice(text).map_err(|e| ApiError::Protocol {
                status: status.as_u16(),
                detail: e.to_string(),
            });
        }
        match serde_json::from_slice::<WireError>(&bytes) {
            Ok(w) => Err(ApiError::Server {
                status: status.as_u16(),
                code: w.error.code,
                message: w.error.message,
            }),
            Err(_) => Err(ApiError::Protocol {
                status: status.as_u16(),
                detail: status
                    .canonical_reason()
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR.as_str())
                    .to_string(),
            }),
        }
    }

    pub async fn register(&self, req: &RegisterRequest) -> Result<RegisterResponse, ApiError> {
        self.call(Method::POST, "/api/auth/register", None, Some(req))
            .await
    }

    pub async fn login(&self, req: &LoginRequest) -> Result<LoginResponse, ApiError> {
        self.call(Method::POST, "/api/auth/login", None, Some(req))
            .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, ApiError> {
        let req = RefreshRequest {
            refresh_token: refresh_token.to_string(),
        };
        self.call(Method::POST, "/api/auth/refresh", None, Some(&req))
            .await
    }

    pub async fn logout(&self, refresh_token: &str) -> Result<(), ApiError> {
        let req = LogoutRequest {
            refresh_token: refresh_token.to_string(),
        };
        self.call::<_, serde_json::Value>(Method::POST, "/api/auth/logout", None, Some(&req))
            .await
            .map(|_| ())
    }

    pub async fn verify_email(&self, email: &str, code: &str) -> Result<(), ApiError> {
        let req = VerifyEmailRequest {
            email: email.to_string(),
            code: code.to_string(),
        };
        self.call::<_, serde_json::Value>(Method::POST, "/api/auth/verify-email", None, Some(&req))
            .await
            .map(|_| ())
    }

    /// Mails a new e-mail verification code (accepted whether or not the address has an
    /// account).
    pub async fn resend_verification(&self, email: &str) -> Result<(), ApiError> {
        let req = EmailRequest {
            email: email.to_string(),
        };
        self.call::<_, serde_json::Value>(
            Method::POST,
            "/api/auth/verify-email/resend",
            None,
            Some(&req),
        )
        .await
        .map(|_| ())
    }

    /// Mails a password-reset code.
    pub async fn request_password_reset(&self, email: &str) -> Result<(), ApiError> {
        let req = EmailRequest {
            email: email.to_string(),
        };
        self.call::<_, serde_json::Value>(
            Method::POST,
            "/api/auth/password-reset/request",
            None,
            Some(&req),
        )
        .await
        .map(|_| ())
    }

    /// Sets a new password with a mailed code (every session is signed out).
    pub async fn reset_password(
        &self,
        email: &str,
        code: &str,
        new_password: &str,
    ) -> Result<(), ApiError> {
        let req = ResetPasswordRequest {
            email: email.to_string(),
            code: code.to_string(),
            new_password: new_password.to_string(),
        };
        self.call::<_, serde_json::Value>(
            Method::POST,
            "/api/auth/password-reset/confirm",
            None,
            Some(&req),
        )
        .await
        .map(|_| ())
    }

    pub async fn me(&self, token: &str) -> Result<User, ApiError> {
        self.call::<(), _>(Method::GET, "/api/auth/me", Some(token), None)
            .await
    }

    pub async fn create_meeting(
        &self,
        token: &str,
        req: &CreateMeetingRequest,
    ) -> Result<Meeting, ApiError> {
        self.call(Method::POST, "/api/meetings", Some(token), Some(req))
            .await
    }

    pub async fn meetings(
        &self,
        token: &str,
        cursor: Option<&str>,
    ) -> Result<MeetingList, ApiError> {
        let path = match cursor {
            Some(c) => format!("/api/meetings?limit=100&cursor={c}"),
            None => "/api/meetings?limit=100".to_string(),
        };
        self.call::<(), _>(Method::GET, &path, Some(token), None)
            .await
    }

    pub async fn meeting(&self, token: &str, code: &MeetingCode) -> Result<Meeting, ApiError> {
        self.call::<(), _>(
            Method::GET,
            &format!("/api/meetings/{code}"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn join_meeting(
        &self,
        token: &str,
        code: &MeetingCode,
        passcode: Option<String>,
    ) -> Result<JoinMeetingResponse, ApiError> {
        let req = JoinMeetingRequest { passcode };
        self.call(
            Method::POST,
            &format!("/api/meetings/{code}/join"),
            Some(token),
            Some(&req),
        )
        .await
    }

    pub async fn end_meeting(&self, token: &str, code: &MeetingCode) -> Result<(), ApiError> {
        self.call::<(), serde_json::Value>(
            Method::POST,
            &format!("/api/meetings/{code}/end"),
            Some(token),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Lets guests in through the invite link, or stops it (host and co-hosts; turning it off
    /// also sends away the guests waiting).
    pub async fn set_guest_access(
        &self,
        token: &str,
        code: &MeetingCode,
        allowed: bool,
    ) -> Result<Meeting, ApiError> {
        self.call(
            Method::PUT,
            &format!("/api/meetings/{code}/guest-access"),
            Some(token),
            Some(&GuestAccessRequest { allowed }),
        )
        .await
    }

    /// Makes a personal guest link; its token is shown this once.
    pub async fn create_guest_link(
        &self,
        token: &str,
        code: &MeetingCode,
        req: &CreateGuestLinkRequest,
    ) -> Result<CreatedGuestLink, ApiError> {
        self.call(
            Method::POST,
            &format!("/api/meetings/{code}/guest-links"),
            Some(token),
            Some(req),
        )
        .await
    }

    /// A meeting's personal guest links, newest first, with how many entered by each.
    pub async fn guest_links(
        &self,
        token: &str,
        code: &MeetingCode,
    ) -> Result<GuestLinkList, ApiError> {
        self.call::<(), _>(
            Method::GET,
            &format!("/api/meetings/{code}/guest-links"),
            Some(token),
            None,
        )
        .await
    }

    /// One page of a meeting's chat, oldest first, after `after_seq`.
    pub async fn history(
        &self,
        token: &str,
        code: &MeetingCode,
        after_seq: i64,
        limit: u32,
    ) -> Result<ChatHistory, ApiError> {
        self.call::<(), _>(
            Method::GET,
            &format!("/api/meetings/{code}/messages?after_seq={after_seq}&limit={limit}"),
            Some(token),
            None,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_come_typed_and_new_ones_as_text() {
        let known = ApiError::Server {
            status: 403,
            code: "not_participant".into(),
            message: "no".into(),
        };
        assert_eq!(known.error_code(), Some(ErrorCode::NotParticipant));
        let newer = ApiError::Server {
            status: 400,
            code: "from_a_newer_server".into(),
            message: "?".into(),
        };
        assert_eq!(
            (newer.error_code(), newer.code()),
            (None, Some("from_a_newer_server"))
        );
    }
}
