//! SQL for users, sessions (refresh-token families) and one-time e-mail codes.

use parley_shared::api::{TokenPair, User};
use parley_shared::{ErrorCode, UserId};
use sqlx::AnyPool;

use crate::auth::crypto;
use crate::error::{ApiResult, AppError};
use crate::mail::CodePurpose;
use crate::state::AppState;

/// A user row with its password hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub email_verified_at: Option<i64>,
    pub created_at: i64,
}

impl UserRow {
    pub fn to_api(&self) -> User {
        User {
            id: UserId(self.id.clone()),
            username: self.username.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified_at.is_some(),
            created_at_ms: self.created_at,
        }
    }
}

const USER_COLUMNS: &str = "id, username, email, password_hash, email_verified_at, created_at";

pub async fn user_by_id(pool: &AnyPool, id: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn user_by_username(pool: &AnyPool, username: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await
}

pub async fn user_by_email_key(pool: &AnyPool, key: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email_key = $1"
    ))
    .bind(key)
    .fetch_optional(pool)
    .await
}

/// Records an action in the audit log; failures are logged, never fatal.
pub async fn audit(state: &AppState, actor: Option<&str>, action: &str, target: Option<&str>) {
    audit_at(&state.db.pool, state.now_ms(), actor, action, target).await;
}

/// [`audit`] with the pool and time given (for the room tasks, which hold no `AppState`).
pub async fn audit_at(
    pool: &sqlx::AnyPool,
    now_ms: i64,
    actor: Option<&str>,
    action: &str,
    target: Option<&str>,
) {
    let result = sqlx::query(
        "INSERT INTO audit_log (id, at, actor_id, action, target) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(ulid::Ulid::new().to_string())
    .bind(now_ms)
    .bind(actor)
    .bind(action)
    .bind(target)
    .execute(pool)
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, action, "audit log write failed");
    }
}

/// Starts a session for `user_id` and returns its first token pair.
pub async fn create_session(state: &AppState, user_id: &str) -> ApiResult<TokenPair> {
    create_session_for(state, user_id, state.config.refresh_token_ttl_secs).await
}

/// A guest's session: it ends `guest_session_ttl_secs` after entry, refreshes or not (a
/// guest's refresh token is renewed without moving its expiry).
pub async fn create_guest_session(state: &AppState, user_id: &str) -> ApiResult<TokenPair> {
    create_session_for(state, user_id, state.config.guest_session_ttl_secs).await
}

async fn create_session_for(
    state: &AppState,
    user_id: &str,
    ttl_secs: u64,
) -> ApiResult<TokenPair> {
    let now = state.now_ms();
    let expires_at = now.saturating_add(secs_to_ms(ttl_secs));
    let session_id = ulid::Ulid::new().to_string();
    let mut tx = crate::db::begin_write(&state.db.pool).await?;
    sqlx::query("INSERT INTO sessions (id, user_id, created_at) VALUES ($1, $2, $3)")
        .bind(&session_id)
        .bind(user_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    let refresh = insert_refresh_token(&mut tx, &session_id, user_id, now, expires_at).await?;
    tx.commit().await?;
    Ok(token_pair(
        state,
        user_id,
        &session_id,
        refresh,
        now,
        expires_at,
    ))
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2)
}

async fn insert_refresh_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    session_id: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<String> {
    let token = crypto::new_refresh_token();
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, user_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(crypto::hash_refresh_token(&token))
    .bind(session_id)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(token)
}

fn token_pair(
    state: &AppState,
    user_id: &str,
    session_id: &str,
    refresh: String,
    now: i64,
    refresh_expires_at: i64,
) -> TokenPair {
    let refresh_expires_in = u64::try_from((refresh_expires_at - now) / 1000).unwrap_or(0);
    // An access token never outlives its session's refresh token (a guest's last one).
    let ttl = state
        .config
        .access_token_ttl_secs
        .min(refresh_expires_in.max(1));
    TokenPair {
        access_token: state.jwt.issue(user_id, session_id, now, ttl),
        access_expires_in: ttl,
        refresh_token: refresh,
        refresh_expires_in,
        token_type: "Bearer".into(),
    }
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    session_id: String,
    user_id: String,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
    guest_of: Option<String>,
}

/// Spends `token` and returns a new pair in the same session. A token presented a second
/// time means it was copied: the whole session is revoked.
pub async fn rotate_refresh_token(state: &AppState, token: &str) -> ApiResult<TokenPair> {
    let invalid = || {
        AppError::unauthorized(
            ErrorCode::InvalidRefreshToken,
            "refresh token is not valid; sign in again",
        )
    };
    let now = state.now_ms();
    let hash = crypto::hash_refresh_token(token);
    let mut tx = crate::db::begin_write(&state.db.pool).await?;
    let row: Option<RefreshRow> = sqlx::query_as(
        "SELECT r.session_id, r.user_id, r.expires_at, r.used_at, s.revoked_at, u.guest_of \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
         JOIN users u ON u.id = r.user_id WHERE r.token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Err(invalid());
    };
    if row.revoked_at.is_some() {
        return Err(invalid());
    }
    let spent = row.used_at.is_some()
        || sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(&hash)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 0;
    if spent {
        revoke_session_in(&mut tx, &row.session_id, now, "refresh_token_reused").await?;
        tx.commit().await?;
        state.sockets.revoke_session(&row.session_id);
        tracing::warn!(user_id = %row.user_id, session_id = %row.session_id, "refresh token reused: session revoked");
        return Err(AppError::unauthorized(
            ErrorCode::RefreshTokenReused,
            "this refresh token was already used; the session has been signed out",
        ));
    }
    if row.expires_at <= now {
        return Err(invalid());
    }
    // A guest's session ends when its first refresh token would have: renewing does not
    // extend it.
    let expires_at = if row.guest_of.is_some() {
        row.expires_at
    } else {
        now.saturating_add(secs_to_ms(state.config.refresh_token_ttl_secs))
    };
    let refresh =
        insert_refresh_token(&mut tx, &row.session_id, &row.user_id, now, expires_at).await?;
    tx.commit().await?;
    Ok(token_pair(
        state,
        &row.user_id,
        &row.session_id,
        refresh,
        now,
        expires_at,
    ))
}

async fn revoke_session_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    session_id: &str,
    now: i64,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $1, revoke_reason = $2 WHERE id = $3 AND revoked_at IS NULL")
        .bind(now)
        .bind(reason)
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Revokes the session `token` belongs to (logout). Returns whether the token was known.
pub async fn revoke_by_refresh_token(state: &AppState, token: &str) -> ApiResult<Option<String>> {
    let mut tx = crate::db::begin_write(&state.db.pool).await?;
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT session_id, user_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(crypto::hash_refresh_token(token))
            .fetch_optional(&mut **tx)
            .await?;
    let Some((session_id, user_id)) = row else {
        return Ok(None);
    };
    revoke_session_in(&mut tx, &session_id, state.now_ms(), "logout").await?;
    tx.commit().await?;
    state.sockets.revoke_session(&session_id);
    Ok(Some(user_id))
}

/// Revokes every live session of `user_id` except `keep`.
pub async fn revoke_user_sessions(
    state: &AppState,
    user_id: &str,
    keep: Option<&str>,
    reason: &str,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoke_reason = $2 \
         WHERE user_id = $3 AND revoked_at IS NULL AND id <> $4",
    )
    .bind(state.now_ms())
    .bind(reason)
    .bind(user_id)
    .bind(keep.unwrap_or(""))
    .execute(&state.db.pool)
    .await?;
    state.sockets.revoke_user(user_id, keep);
    Ok(done.rows_affected())
}

/// An id that sorts after every earlier one from this process, even within one millisecond
/// (`Ulid::new` is random within a millisecond, so two codes made in the same one could sort
/// either way, and the older would count as the newest).
fn monotonic_id() -> String {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut g = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    g.get_or_insert_with(ulid::Generator::new)
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::new())
        .to_string()
}

/// How long a code for `purpose` lives: a reset code is as good as the password, so short.
pub fn code_ttl_secs(state: &AppState, purpose: CodePurpose) -> u64 {
    match purpose {
        CodePurpose::Verify => state.config.email_code_ttl_secs,
        CodePurpose::Reset => state.config.reset_code_ttl_secs,
    }
}

/// Stores a new code for `user_id` (superseding earlier ones) and returns it in clear.
pub async fn new_email_code(
    state: &AppState,
    user_id: &str,
    purpose: CodePurpose,
) -> sqlx::Result<String> {
    let code = crypto::new_email_code();
    let now = state.now_ms();
    let ttl_ms =
        i64::try_from(code_ttl_secs(state, purpose).saturating_mul(1000)).unwrap_or(i64::MAX / 2);
    sqlx::query(
        "INSERT INTO email_codes (id, user_id, purpose, code_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(monotonic_id())
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(crypto::hash_email_code(
        &state.code_secret,
        purpose.as_str(),
        user_id,
        &code,
    ))
    .bind(now)
    .bind(now.saturating_add(ttl_ms))
    .execute(&state.db.pool)
    .await?;
    Ok(code)
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    id: String,
    code_hash: String,
    expires_at: i64,
    attempts: i64,
    used_at: Option<i64>,
}

/// Checks `code` against the newest code for `user_id` and `purpose` and spends it.
/// Only the newest code counts; each wrong try is recorded and the code burns at the limit.
/// Every failure — wrong, expired, used, burned, no code at all — gets the same answer, so
/// the answer says nothing about the account's state.
pub async fn consume_email_code(
    state: &AppState,
    user_id: &str,
    purpose: CodePurpose,
    code: &str,
) -> ApiResult<()> {
    let row: Option<CodeRow> = sqlx::query_as(
        "SELECT id, code_hash, expires_at, attempts, used_at FROM email_codes \
         WHERE user_id = $1 AND purpose = $2 ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else {
        return Err(code_invalid());
    };
    let max = i64::from(state.config.email_code_max_attempts);
    let now = state.now_ms();
    if row.used_at.is_some() || row.attempts >= max || row.expires_at <= now {
        return Err(code_invalid());
    }
    // Reserve a try atomically before comparing, so parallel guesses cannot exceed the limit.
    let reserved = sqlx::query(
        "UPDATE email_codes SET attempts = attempts + 1 WHERE id = $1 AND attempts < $2 AND used_at IS NULL",
    )
    .bind(&row.id)
    .bind(max)
    .execute(&state.db.pool)
    .await?;
    if reserved.rows_affected() == 0 {
        return Err(code_invalid());
    }
    let given = crypto::hash_email_code(&state.code_secret, purpose.as_str(), user_id, code);
    if !crypto::constant_time_eq(&given, &row.code_hash) {
        return Err(code_invalid());
    }
    let spent =
        sqlx::query("UPDATE email_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(&row.id)
            .execute(&state.db.pool)
            .await?;
    if spent.rows_affected() == 0 {
        return Err(code_invalid());
    }
    Ok(())
}

/// The one answer to every well-formed code that does not work: 403, since the request is
/// valid and refused (a malformed code is 400 with the same error code).
pub fn code_invalid() -> AppError {
    AppError::forbidden(
        ErrorCode::CodeInvalid,
        "that code is not valid (wrong, expired or already used); check it or request a new one",
    )
}
