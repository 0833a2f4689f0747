//! Shared application state: database, configuration, clock, keys, mailer, rate limiters.

use std::sync::Arc;

use crate::auth::crypto::JwtKeys;
use crate::auth::hasher::PasswordHasher;
use crate::clock::Clock;
use crate::config::{Config, Secrets};
use crate::db::Db;
use crate::mail::Mailer;
use crate::ratelimit::{SharedGate, SharedLimiter};
use crate::room::state::RoomConfig;
use crate::room::task::{RoomContext, Rooms};
use crate::turn::IceConfig;

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
    /// argon2id, a bounded number at a time.
    pub hasher: PasswordHasher,
    /// Live meetings.
    pub rooms: Rooms,
    /// Live sockets: caps per user and address, revocation.
    pub sockets: Arc<crate::sockets::Sockets>,
    /// Stores chat for every room (started on first use, inside the runtime).
    chat_writer: std::sync::OnceLock<crate::room::chat::Writer>,
}

/// One limiter per abuse vector; sizes come from [`crate::config::Limits`].
pub struct Limiters {
    pub login_per_ip: SharedLimiter,
    /// All sources together: the ceiling per account.
    pub login_failures_per_account: SharedLimiter,
    /// Per account and source: growing delays.
    pub login_failures_per_source: SharedGate,
    /// Per user: wrong current passwords on password change.
    pub password_change_failures: SharedGate,
    /// Wrong e-mail codes per account across all its codes.
    pub email_code_failures_per_account: SharedLimiter,
    pub register_per_ip: SharedLimiter,
    pub passcode_failures_per_user: SharedLimiter,
    pub passcode_failures_per_meeting: SharedLimiter,
    pub guest_entries_per_ip: SharedLimiter,
    /// Open-link entries only.
    pub guest_entries_per_meeting: SharedLimiter,
    pub guest_entries_per_link: SharedLimiter,
    /// Guests' wrong passcodes, apart from signed-in users'.
    pub guest_passcode_failures_per_meeting: SharedLimiter,
    pub invite_page_per_ip: SharedLimiter,
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
            login_failures_per_source: SharedGate::new(
                l.free_failures_per_source,
                l.failure_delay_base_ms,
                l.failure_delay_max_secs.saturating_mul(1000),
            ),
            password_change_failures: SharedGate::new(
                l.free_failures_per_source,
                l.failure_delay_base_ms,
                l.failure_delay_max_secs.saturating_mul(1000),
            ),
            email_code_failures_per_account: SharedLimiter::new(
                l.email_code_failures_per_account,
                l.email_code_failures_window_secs,
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
            guest_entries_per_ip: SharedLimiter::new(
                l.guest_entries_per_ip,
                l.guest_entries_window_secs,
            ),
            guest_entries_per_meeting: SharedLimiter::new(
                l.guest_entries_per_meeting,
                l.guest_entries_window_secs,
            ),
            guest_entries_per_link: SharedLimiter::new(
                l.guest_entries_per_link,
                l.guest_entries_window_secs,
            ),
            guest_passcode_failures_per_meeting: SharedLimiter::new(
                l.guest_passcode_failures_per_meeting,
                l.passcode_window_secs,
            ),
            invite_page_per_ip: SharedLimiter::new(l.invite_page_per_ip, 60),
            email_send: SharedLimiter::new(1, config.email_resend_cooldown_secs),
        };
        let hasher = PasswordHasher::new(
            l.hash_concurrency,
            std::time::Duration::from_millis(l.hash_queue_timeout_ms),
        );
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
            hasher,
            rooms: Rooms::default(),
            sockets: Arc::default(),
            chat_writer: std::sync::OnceLock::new(),
        }))
    }

    /// The chat writer; the first call must be made inside the Tokio runtime.
    pub fn chat_writer(&self) -> &crate::room::chat::Writer {
        self.0
            .chat_writer
            .get_or_init(|| crate::room::chat::Writer::start(self.0.db.pool.clone()))
    }

    /// The server clock's now, UTC epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.0.clock.now_ms()
    }

    /// What a live room needs of the server (and nothing more).
    pub fn room_context(&self) -> RoomContext {
        let c = &self.config;
        RoomContext {
            pool: self.db.pool.clone(),
            clock: self.clock.clone(),
            config: RoomConfig {
                grace_ms: i64::try_from(c.reconnect_grace_secs.saturating_mul(1000))
                    .unwrap_or(i64::MAX / 2),
                max_peers: c.limits.max_participants,
                max_waiting: c.limits.max_waiting,
                max_waiting_guests: c.limits.max_waiting_guests,
            },
            ice: IceConfig {
                stun_urls: c.stun_urls.clone(),
                turn_urls: c.turn_urls.clone(),
                turn_secret: c.turn_secret.clone(),
                turn_ttl_secs: c.turn_credential_ttl_secs,
                guest_turn_ttl_secs: c.guest_turn_credential_ttl_secs,
            },
            chat: self.chat_writer().clone(),
            rooms: self.rooms.clone(),
            sockets: self.sockets.clone(),
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
