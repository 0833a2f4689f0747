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

/// What the log may show of libraries that would print secrets at their most verbose, whatever
/// `RUST_LOG` asks: at `trace` the WebSocket library logs each frame (a `reauth` carries an
/// access token, the browser's handshake one in its subprotocol), the HTTP server each header
/// it reads, the mail client the SMTP conversation (one-time codes). Parley's own spans name
/// the path of a request, never its query or headers.
pub fn log_safety() -> tracing_subscriber::filter::Targets {
    use tracing::level_filters::LevelFilter;
    tracing_subscriber::filter::Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("tungstenite", LevelFilter::INFO)
        .with_target("tokio_tungstenite", LevelFilter::INFO)
        .with_target("hyper", LevelFilter::INFO)
        .with_target("hyper_util", LevelFilter::INFO)
        .with_target("h2", LevelFilter::INFO)
        .with_target("lettre", LevelFilter::INFO)
}

/// The whole HTTP application for `state`.
pub fn app(state: AppState) -> Router {
    let (router, openapi) = api();
    // Both descriptions are serialised once, at start: they never change while the server
    // runs, and rebuilding 190 KB for every anonymous request was a cheap way to load it.
    let openapi = Described::new(&openapi::complete(openapi));
    let protocol = Described::new(&protocol::description());
    let max_body = state.config.limits.max_body_bytes;
    router
        .route(
            "/api/openapi.json",
            get(move |headers: axum::http::HeaderMap| async move { openapi.serve(&headers) }),
        )
        .route(
            "/api/asyncapi.json",
            get(move |headers: axum::http::HeaderMap| async move { protocol.serve(&headers) }),
        )
        .route("/api/ws", get(room::conn::upgrade))
        .route("/j/{code}", get(invite::landing))
        .route("/favicon.png", get(web::favicon))
        .route("/favicon.ico", get(web::favicon))
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
        // A span per request with its method and path only: a query string may hold a secret
        // (old personal links), headers hold tokens.
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::extract::Request| {
                tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
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
    // No response is ever to be read as another type than it says (JSON as HTML).
    res.headers_mut().insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    res
}

/// A JSON description served as it was serialised at start, with an `ETag` so a client that
/// has it gets `304 Not Modified`.
#[derive(Clone)]
struct Described {
    json: axum::body::Bytes,
    etag: axum::http::HeaderValue,
}

impl Described {
    fn new(doc: &impl serde::Serialize) -> Self {
        use sha2::Digest as _;
        let json = serde_json::to_vec(doc).unwrap_or_default();
        let digest = sha2::Sha256::digest(&json);
        let tag: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            etag: axum::http::HeaderValue::from_str(&format!("\"{tag}\""))
                .unwrap_or(axum::http::HeaderValue::from_static("\"0\"")),
            json: json.into(),
        }
    }

    fn serve(&self, headers: &axum::http::HeaderMap) -> axum::response::Response {
        use axum::http::header;
        let fresh = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim() == self.etag.to_str().unwrap_or_default() || t.trim() == "*");
        // Described once per server version: a client may keep it, but asks again each time.
        let cache = header::HeaderValue::from_static("no-cache");
        if fresh {
            return (
                StatusCode::NOT_MODIFIED,
                [
                    (header::ETAG, self.etag.clone()),
                    (header::CACHE_CONTROL, cache),
                ],
            )
                .into_response();
        }
        (
            [
                (
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                ),
                (header::ETAG, self.etag.clone()),
                (header::CACHE_CONTROL, cache),
            ],
            self.json.clone(),
        )
            .into_response()
    }
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
        meetings::guests::start_purging(state.clone(), rx.clone());
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
