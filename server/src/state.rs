//! Shared application state: database, configuration, clock, keys, mailer, rate limiters.

use std::sync::Arc;

use crate::auth::crypto::JwtKeys;
use crate::clock::Clock;
use crate::config::{Config, Secrets};
use crate::db::Db;
use crate::mail::Mailer;
use crate::ratelimit::SharedLimiter;

/// Cheap to clone; handed to every request handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    pub db: Db,
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub jwt: JwtKeys,
    pub code_secret: String,
    pub mailer: Mailer,
    pub limits: Limiters,
}

/// One limiter per abuse vector; sizes come from [`crate::config::Limits`].
pub struct Limiters {
    pub login_per_ip: SharedLimiter,
    pub login_failures_per_account: SharedLimiter,
    pub register_per_ip: SharedLimiter,
    pub passcode_failures_per_user: SharedLimiter,
    pub passcode_failures_per_meeting: SharedLimiter,
    /// One code per address and purpose per cool-down.
    pub email_send: SharedLimiter,
}

impl AppState {
    pub fn new(
        db: Db,
        config: Config,
        secrets: &Secrets,
        clock: Arc<dyn Clock>,
        mailer: Mailer,
    ) -> Self {
        let l = &config.limits;
        let limits = Limiters {
            login_per_ip: SharedLimiter::new(l.login_per_ip, l.login_per_ip_window_secs),
            login_failures_per_account: SharedLimiter::new(
                l.login_failures_per_account,
                l.login_failures_window_secs,
            ),
            register_per_ip: SharedLimiter::new(l.register_per_ip, l.register_per_ip_window_secs),
            passcode_failures_per_user: SharedLimiter::new(
                l.passcode_failures_per_user,
                l.passcode_window_secs,
            ),
            passcode_failures_per_meeting: SharedLimiter::new(
                l.passcode_failures_per_meeting,
                l.passcode_window_secs,
            ),
            email_send: SharedLimiter::new(1, config.email_resend_cooldown_secs),
        };
        let jwt = JwtKeys::new(
            &secrets.jwt_secret,
            &config.jwt_issuer,
            &config.jwt_audience,
        );
        Self(Arc::new(Inner {
            db,
            config,
            clock,
            jwt,
            code_secret: secrets.code_secret.clone(),
            mailer,
            limits,
        }))
    }

    /// The server clock's now, UTC epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.0.clock.now_ms()
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
