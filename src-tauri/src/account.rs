//! Who is signed in, to which server. The refresh token lives only in the OS keychain
//! (`keyring`: Keychain, Credential Manager, Secret Service), under service `parley-desktop`
//! and account = server URL; the access token only in memory. On start the app trades the
//! stored refresh token for a new pair (rotation) and is signed in without asking; signing
//! out revokes the session on the server and deletes the keychain entry.

use parley_engine::rest::Api;
use parley_engine::signaling::TokenError;
use parley_shared::api::{LoginRequest, RegisterRequest, TokenPair, User};
use tokio::sync::Mutex;

use crate::types::AppError;

const SERVICE: &str = "parley-desktop";

/// The refresh-token store: one keychain entry per server.
#[derive(Clone)]
pub struct Keychain {
    service: String,
}

impl Default for Keychain {
    fn default() -> Self {
        Self {
            service: std::env::var("PARLEY_KEYCHAIN_SERVICE").unwrap_or_else(|_| SERVICE.into()),
        }
    }
}

impl Keychain {
    /// A keychain under another service name (tests keep theirs apart).
    pub fn with_service(service: &str) -> Self {
        Self {
            service: service.into(),
        }
    }

    fn entry(&self, server: &str) -> Result<keyring::Entry, keyring::Error> {
        keyring::Entry::new(&self.service, server)
    }

    pub fn load(&self, server: &str) -> Result<Option<String>, keyring::Error> {
        match self.entry(server)?.get_password() {
            Ok(t) => Ok(Some(t)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, server: &str, refresh: &str) -> Result<(), keyring::Error> {
        self.entry(server)?.set_password(refresh)
    }

    pub fn delete(&self, server: &str) -> Result<(), keyring::Error> {
        match self.entry(server)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A signed-in session.
pub struct Signed {
    pub user: User,
    access: String,
    refresh: String,
}

/// The account state of the app.
pub struct Account {
    api: Mutex<Api>,
    signed: Mutex<Option<Signed>>,
    keychain: Keychain,
    /// Whether the last keychain write worked (false: the session lasts until the app quits).
    pub keychain_ok: std::sync::atomic::AtomicBool,
}

impl Account {
    pub fn new(server: &str, keychain: Keychain) -> Self {
        Self {
            api: Mutex::new(Api::new(server)),
            signed: Mutex::new(None),
            keychain,
            keychain_ok: std::sync::atomic::AtomicBool::new(true),
        }
    }

    pub async fn api(&self) -> Api {
        self.api.lock().await.clone()
    }

    pub async fn user(&self) -> Option<User> {
        self.signed.lock().await.as_ref().map(|s| s.user.clone())
    }

    /// Points the app at another server (signed out of the old one locally).
    pub async fn set_server(&self, server: &str) {
        *self.api.lock().await = Api::new(server);
        *self.signed.lock().await = None;
    }

    fn remember(&self, server: &str, refresh: &str) {
        let ok = match self.keychain.save(server, refresh) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "no keychain: this sign-in lasts until the app quits");
                false
            }
        };
        self.keychain_ok
            .store(ok, std::sync::atomic::Ordering::Relaxed);
    }

    async fn keep(&self, user: User, tokens: TokenPair) {
        let api = self.api().await;
        self.remember(api.base(), &tokens.refresh_token);
        *self.signed.lock().await = Some(Signed {
            user,
            access: tokens.access_token,
            refresh: tokens.refresh_token,
        });
    }

    /// Signs in silently with the keychain's refresh token, if there is one.
    pub async fn resume(&self) -> Option<User> {
        if let Some(u) = self.user().await {
            return Some(u);
        }
        let api = self.api().await;
        let refresh = match self.keychain.load(api.base()) {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "keychain unavailable");
                self.keychain_ok
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                return None;
            }
        };
        let tokens = match api.refresh(&refresh).await {
            Ok(t) => t,
            Err(e) => {
                if e.is_auth() {
                    // Revoked or expired: forget it.
                    let _ = self.keychain.delete(api.base());
                }
                tracing::info!(error = %e, "stored sign-in not accepted");
                return None;
            }
        };
        match api.me(&tokens.access_token).await {
            Ok(user) => {
                self.keep(user.clone(), tokens).await;
                Some(user)
            }
            Err(e) => {
                tracing::info!(error = %e, "signed-in user not found");
                None
            }
        }
    }

    pub async fn sign_up(
        &self,
        username: String,
        email: String,
        password: String,
    ) -> Result<(User, bool), AppError> {
        let api = self.api().await;
        let r = api
            .register(&RegisterRequest {
                username,
                email,
                password,
            })
            .await?;
        if let Some(tokens) = r.tokens {
            self.keep(r.user.clone(), tokens).await;
        }
        Ok((r.user, r.verification_required))
    }

    pub async fn sign_in(&self, login: String, password: String) -> Result<User, AppError> {
        let api = self.api().await;
        let r = api.login(&LoginRequest { login, password }).await?;
        self.keep(r.user.clone(), r.tokens).await;
        Ok(r.user)
    }

    pub async fn sign_out(&self) {
        let api = self.api().await;
        if let Some(s) = self.signed.lock().await.take() {
            if let Err(e) = api.logout(&s.refresh).await {
                tracing::info!(error = %e, "logout not confirmed by the server");
            }
        }
        if let Err(e) = self.keychain.delete(api.base()) {
            tracing::warn!(error = %e, "keychain entry not deleted");
        }
    }

    /// A valid access token, refreshed (and the new refresh token stored) when asked to.
    pub async fn token(&self, refresh: bool) -> Result<String, TokenError> {
        let api = self.api().await;
        let mut guard = self.signed.lock().await;
        let Some(s) = guard.as_mut() else {
            return Err(TokenError::SignedOut(AppError::signed_out().message));
        };
        if refresh {
            let tokens = api.refresh(&s.refresh).await.map_err(|e| {
                let auth = e.is_auth();
                let message = AppError::from(e).message;
                match auth {
                    true => TokenError::SignedOut(message),
                    false => TokenError::Unavailable(message),
                }
            })?;
            s.access = tokens.access_token;
            s.refresh = tokens.refresh_token;
            self.remember(api.base(), &s.refresh);
        }
        Ok(s.access.clone())
    }
}

/// Runs `$body` (an API call using `$api` and the access token `$t`) for the signed-in user;
/// once more with a refreshed token if the first was refused. A macro rather than a function
/// taking an async closure: those futures are not `Send`, which Tauri commands must be.
#[macro_export]
macro_rules! with_token {
    ($account:expr, |$api:ident, $t:ident| $body:expr) => {{
        let account = &$account;
        let $api = account.api().await;
        let $t = account.token(false).await?;
        match $body {
            Err(e) if e.is_auth() => {
                let $t = account.token(true).await?;
                let r: Result<_, $crate::types::AppError> = $body.map_err(Into::into);
                r
            }
            other => other.map_err($crate::types::AppError::from),
        }
    }};
}
