//! The signed-in account: tokens from the credentials store, refreshed when refused.

use std::io::{BufRead as _, IsTerminal as _};
use std::sync::Arc;

use parley_engine::credentials::{Credentials, Location, Store};
use parley_engine::rest::{Api, ApiError};
use parley_engine::signaling::{TokenError, TokenSource};
use parley_shared::MeetingCode;
use tokio::sync::Mutex;

use crate::exit::{Exit, Failure, Res};

/// The signed-in account, refreshing its tokens when the server says they expired.
pub struct Auth {
    api: Api,
    store: Store,
    pub creds: Mutex<Credentials>,
}

impl Auth {
    pub fn load(api: &Api, store: &Store) -> Res<Arc<Self>> {
        let creds = store
            .load(api.base())?
            .ok_or_else(|| Failure::not_signed_in(api.base()))?;
        Ok(Arc::new(Self {
            api: api.clone(),
            store: store.clone(),
            creds: Mutex::new(creds),
        }))
    }

    /// Trades the refresh token for a new pair and stores it; returns the new access token.
    pub async fn refresh(&self) -> Res<String> {
        let mut creds = self.creds.lock().await;
        let pair = match self.api.refresh(&creds.refresh_token).await {
            Ok(p) => p,
            Err(e) if e.is_auth() => return Err(Failure::not_signed_in(self.api.base())),
            Err(e) => return Err(e.into()),
        };
        creds.access_token = pair.access_token;
        creds.refresh_token = pair.refresh_token;
        self.store.save(&creds)?;
        Ok(creds.access_token.clone())
    }

    /// Runs `call` with the access token, refreshing once if it was refused.
    pub async fn call<T>(&self, call: impl AsyncFn(String) -> Result<T, ApiError>) -> Res<T> {
        let token = self.creds.lock().await.access_token.clone();
        match call(token).await {
            Err(e) if e.is_auth() => {
                let token = self.refresh().await?;
                Ok(call(token).await?)
            }
            other => Ok(other?),
        }
    }
}

/// The session's view of [`Auth`].
pub struct Tokens(pub Arc<Auth>);

impl TokenSource for Tokens {
    async fn token(&self, refresh: bool) -> Result<String, TokenError> {
        if refresh {
            self.0.refresh().await.map_err(|f| match f.exit {
                Exit::NotSignedIn => TokenError::SignedOut(f.message),
                _ => TokenError::Unavailable(f.message),
            })
        } else {
            Ok(self.0.creds.lock().await.access_token.clone())
        }
    }
}

pub fn parse_code(code: &str) -> Res<MeetingCode> {
    MeetingCode::parse(code).map_err(|_| {
        Failure::new(
            Exit::Usage,
            "invalid_meeting_code",
            format!("{code:?} is not a meeting code (like bcdf-ghjk-mnpq)"),
        )
    })
}

/// The password: prompted without echo on a terminal, else the first line of stdin.
pub fn read_password(confirm: bool) -> Res<String> {
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password("Password: ")
            .map_err(|e| Failure::new(Exit::Local, "input", e.to_string()))?;
        if confirm {
            let again = rpassword::prompt_password("Again: ")
                .map_err(|e| Failure::new(Exit::Local, "input", e.to_string()))?;
            if again != p {
                return Err(Failure::new(
                    Exit::Usage,
                    "password_mismatch",
                    "the passwords differ",
                ));
            }
        }
        Ok(p)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::new(Exit::Local, "input", e.to_string()))?;
        let p = line.trim_end_matches(['\r', '\n']).to_string();
        if p.is_empty() {
            return Err(Failure::new(
                Exit::Usage,
                "no_password",
                "no password on stdin",
            ));
        }
        Ok(p)
    }
}

pub fn note_location(loc: &Location) {
    match loc {
        Location::Keychain => eprintln!("signed in; tokens kept in the OS keychain"),
        Location::File { why, .. } => {
            eprintln!("signed in; {why}: tokens kept in {loc}, readable only by you")
        }
    }
}
