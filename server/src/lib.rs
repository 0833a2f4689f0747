//! Parley's server: accounts and meetings over REST on SQLite or PostgreSQL.
//!
//! - [`alloc`]: allocator tuning (large argon2 blocks go back to the system).
//! - [`config`]: the typed configuration (defaults → TOML file → `PARLEY_*` env) and secrets.
//! - [`db`]: the sqlx `Any` pool and per-backend migrations.
//! - [`auth`]: argon2id passwords, HS256 access tokens, rotating refresh tokens, e-mail codes.
//! - [`meetings`]: create, list, show, join, leave, end, delete, chat history.
//! - [`room`]: live meetings over WebSocket: room state machine, room tasks, chat.
//! - [`serve`]: the accept loop: hyper with header-read timeouts, connections per address.
//! - [`sockets`]: every live socket by user, session and address: caps and revocation.
//! - [`mail`]: SMTP delivery of codes, or the log when no relay is set.
//! - [`ratelimit`]: keyed token buckets with time as an input.
//! - [`clock`]: "now" as an input, so tests can move time.
//! - [`openapi`]: the served description, completed with the shared errors and input rules.
//! - [`protocol`]: the live-meeting protocol's AsyncAPI description.
//! - [`error`], [`extract`], [`state`]: the HTTP plumbing shared by all handlers.
//!
//! [`app`] builds the router from a state; [`Server::start`] binds and serves it, which is
//! what `main` and the integration tests both use.

pub mod alloc;
pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod invite;
pub mod mail;
pub mod meetings;
pub mod openapi;
pub mod protocol;
pub mod ratelimit;
pub mod room;
pub mod serve;
pub mod sockets;
pub mod state;
pub mod turn;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use parley_shared::api::Health;
use parley_shared::{ErrorBody, ErrorCode};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::error::AppError;
use crate::mail::Mailer;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Parley API", description = "Accounts and meetings for the Parley desktop app."),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, ErrorCode)),
    tags((name = "auth", description = "Accounts and sign-in"), (name = "meetings"), (name = "guests", description = "People without an account, in one meeting"), (name = "ops"))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Database reachability and the server version.
#[utoipa::path(get, path = "/api/health", tag = "ops",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let db_ok = state.db.ping().await;
    let body = Health {
        status: if db_ok { "ok" } else { "degraded" }.into(),
        database: if db_ok { "ok" } else { "unreachable" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// The routes and their OpenAPI description, built together so they cannot drift apart.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .merge(auth::routes::router())
        .merge(meetings::routes::router())
        .merge(meetings::guests::router())
        .split_for_parts()
}

/// The whole HTTP application for `state`.
pub fn app(state: AppState) -> Router {
    let (router, openapi) = api();
    let openapi = Arc::new(openapi::complete(openapi));
    let protocol = Arc::new(protocol::description());
    let max_body = state.config.limits.max_body_bytes;
    router
        .route(
            "/api/openapi.json",
            get(move || async move { Json(openapi.as_ref().clone()) }),
        )
        .route(
            "/api/asyncapi.json",
            get(move || async move { Json(protocol.as_ref().clone()) }),
        )
        .route("/api/ws", get(room::conn::upgrade))
        .route("/j/{code}", get(invite::landing))
        .route(
            "/web",
            get(|| async { axum::response::Redirect::permanent("/web/") }),
        )
        .route("/web/", get(web::index))
        .route("/web/{*path}", get(web::asset))
        .fallback(|| async {
            AppError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such route")
        })
        .method_not_allowed_fallback(|| async {
            AppError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            Duration::from_secs(state.config.limits.http_request_timeout_secs.max(1)),
            guard_response,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Every response: within the request timeout (a slow body or a stuck handler is answered
/// 408 rather than holding the connection), and `Cache-Control: no-store` — responses carry
/// tokens and personal data that no cache may keep.
async fn guard_response(
    State(timeout): State<Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut res = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => AppError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::RequestTimeout,
            "the request took too long",
        )
        .into_response(),
    };
    // Only the web client's hashed files say otherwise (web.rs).
    res.headers_mut()
        .entry(axum::http::header::CACHE_CONTROL)
        .or_insert(axum::http::HeaderValue::from_static("no-store"));
    res
}

/// Failure to start the server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error(transparent)]
    Mail(#[from] mail::MailConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running server: its address and a handle to stop it.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Opens the database, binds `config.listen` (port 0 picks a free one) and serves.
    pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        config.validate()?;
        let secrets = config.resolve_secrets()?;
        let db = Db::connect(&config.database_url()).await?;
        let mailer = Mailer::from_config(config.smtp.as_ref(), config.listen)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let limits = serve::ConnLimits {
            header_read_timeout: Duration::from_secs(config.limits.http_header_timeout_secs.max(1)),
            per_ip: config.limits.tcp_per_ip.max(1),
        };
        let state = AppState::new(db, config, &secrets, clock, mailer);
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(serve::serve(listener, app(state.clone()), limits, rx));
        tracing::info!(%addr, backend = ?state.db.backend, "listening");
        Ok(Self {
            addr,
            state,
            shutdown,
            task,
        })
    }

    /// Stops accepting, finishes in-flight requests, closes the database.
    pub async fn stop(self) -> std::io::Result<()> {
        // Live meetings first: clients are told and their sockets closed, so the HTTP
        // server's graceful shutdown does not wait on them.
        self.state.rooms.shutdown_all().await;
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        self.state.db.close().await;
        Ok(())
    }

    /// Serves until `signal` completes, then stops gracefully.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        signal.await;
        tracing::info!("shutting down");
        self.stop().await
    }
}
