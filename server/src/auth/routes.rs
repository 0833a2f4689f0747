//! `/api/auth/*`: register, login, refresh, logout, me, password change, e-mail codes.

use axum::extract::State;
use axum::http::StatusCode;
use parley_shared::api::{
    Accepted, ChangePasswordRequest, EmailRequest, LoginRequest, LoginResponse, LogoutRequest,
    RefreshRequest, RegisterRequest, RegisterResponse, ResetPasswordRequest, TokenPair, User,
    VerifyEmailRequest,
};
use parley_shared::{validate, ErrorBody, ErrorCode};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{crypto, store};
use crate::db::is_unique_violation;
use crate::error::{ApiResult, AppError};
use crate::extract::{ApiJson, AuthUser, ClientIp};
use crate::mail::{CodePurpose, Notice};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(request_password_reset))
        .routes(routes!(confirm_password_reset))
}

fn limited(result: Result<(), u64>) -> ApiResult<()> {
    result.map_err(AppError::rate_limited)
}

/// Creates a verification code and mails it in the background, so the response neither
/// waits for the relay nor reveals by its timing whether a mail was sent.
async fn send_code(state: &AppState, user: &store::UserRow, purpose: CodePurpose) -> ApiResult<()> {
    let code = store::new_email_code(state, &user.id, purpose).await?;
    let (mailer, to, id) = (state.mailer.clone(), user.email.clone(), user.id.clone());
    let ttl_secs = store::code_ttl_secs(state, purpose);
    tokio::spawn(async move { mailer.send_code(&to, &id, purpose, &code, ttl_secs).await });
    Ok(())
}

fn email_send_key(purpose: CodePurpose, email_key: &str) -> String {
    format!("{}:{email_key}", purpose.as_str())
}

/// Create an account. Signs in at once unless the server requires a verified e-mail.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = RegisterResponse), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, ApiJson<RegisterResponse>)> {
    let ip_bucket = ip.bucket();
    limited(
        state
            .limits
            .register_per_ip
            .take(&ip_bucket, state.now_ms()),
    )?;
    let username = validate::username(&req.username)?;
    let email = validate::email(&req.email)?;
    let email_key = validate::email_key(&email);
    validate::password(&req.password)?;

    let taken = |code, what| AppError::conflict(code, format!("that {what} is already registered"));
    if store::user_by_username(&state.db.pool, &username)
        .await?
        .is_some()
    {
        return Err(taken(ErrorCode::UsernameTaken, "username"));
    }
    if let Some(owner) = store::user_by_email_key(&state.db.pool, &email_key).await? {
        if !state.config.require_verified_email {
            // Signing in at once cannot be faked for an address someone else holds; this
            // mode is for single-machine use (docs/security.md).
            return Err(taken(ErrorCode::EmailTaken, "e-mail address"));
        }
        // Answer exactly as for a new address (the same hashing work, the same body), and
        // tell the address's owner instead of the caller.
        let _ = state.hasher.hash(req.password).await?;
        let (mailer, to, id) = (state.mailer.clone(), owner.email.clone(), owner.id.clone());
        tokio::spawn(async move { mailer.send_notice(&to, &id, Notice::SignUpAttempt).await });
        let look_alike = store::UserRow {
            id: ulid::Ulid::new().to_string(),
            username,
            email,
            password_hash: String::new(),
            email_verified_at: None,
            created_at: state.now_ms(),
        };
        return Ok((
            StatusCode::CREATED,
            ApiJson(RegisterResponse {
                user: look_alike.to_api(),
                verification_required: true,
                tokens: None,
            }),
        ));
    }
    let hash = state.hasher.hash(req.password).await?;
    let user = store::UserRow {
        id: ulid::Ulid::new().to_string(),
        username,
        email,
        password_hash: hash,
        email_verified_at: None,
        created_at: state.now_ms(),
    };
    let inserted = sqlx::query(
        "INSERT INTO users (id, username, email, email_key, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&user.id)
    .bind(&user.username)
    .bind(&user.email)
    .bind(&email_key)
    .bind(&user.password_hash)
    .bind(user.created_at)
    .execute(&state.db.pool)
    .await;
    match inserted {
        Ok(_) => {}
        // Lost a race with an identical registration.
        Err(e) if is_unique_violation(&e) => {
            return Err(
                if store::user_by_username(&state.db.pool, &user.username)
                    .await?
                    .is_some()
                {
                    taken(ErrorCode::UsernameTaken, "username")
                } else {
                    taken(ErrorCode::EmailTaken, "e-mail address")
                },
            )
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user_id = %user.id, "account registered");
    store::audit(&state, Some(&user.id), "register", None).await;
    // Charge the resend cool-down for the first code too.
    let _ = state.limits.email_send.take(
        &email_send_key(CodePurpose::Verify, &email_key),
        state.now_ms(),
    );
    send_code(&state, &user, CodePurpose::Verify).await?;

    let verification_required = state.config.require_verified_email;
    let tokens = if verification_required {
        None
    } else {
        Some(store::create_session(&state, &user.id).await?)
    };
    Ok((
        StatusCode::CREATED,
        ApiJson(RegisterResponse {
            user: user.to_api(),
            verification_required,
            tokens,
        }),
    ))
}

/// Sign in with a username or e-mail address and a password.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    let now = state.now_ms();
    let ip_bucket = ip.bucket();
    limited(state.limits.login_per_ip.take(&ip_bucket, now))?;
    let login = req.login.trim();
    let user = if login.contains('@') {
        store::user_by_email_key(&state.db.pool, &validate::email_key(login)).await?
    } else {
        store::user_by_username(&state.db.pool, &login.to_ascii_lowercase()).await?
    };
    // Failures are counted per account, or per login text when no account matches, so an
    // unknown login is answered exactly like a known one. Each attempt is charged before the
    // slow check and given back on success: parallel guesses cannot outrun the limits.
    let account_key = user.as_ref().map_or_else(
        || format!("login:{}", login.to_lowercase()),
        |u| u.id.clone(),
    );
    let source_key = format!("{account_key}|{ip_bucket}");
    let limits = &state.limits;
    limited(limits.login_failures_per_account.take(&account_key, now))?;
    if let Err(wait) = limits.login_failures_per_source.begin(&source_key, now) {
        limits.login_failures_per_account.refund(&account_key, now);
        return Err(AppError::rate_limited(wait));
    }

    let hash = user.as_ref().map_or_else(
        || crypto::dummy_hash().to_string(),
        |u| u.password_hash.clone(),
    );
    let ok = state.hasher.verify(req.password, hash).await?;
    let user = match user {
        Some(u) if ok => u,
        _ => {
            return Err(AppError::unauthorized(
                ErrorCode::InvalidCredentials,
                "wrong username, e-mail or password",
            ));
        }
    };
    limits.login_failures_per_source.succeed(&source_key);
    limits.login_failures_per_account.refund(&account_key, now);
    if state.config.require_verified_email && user.email_verified_at.is_none() {
        return Err(AppError::forbidden(
            ErrorCode::EmailNotVerified,
            "verify your e-mail address first",
        ));
    }
    let tokens = store::create_session(&state, &user.id).await?;
    tracing::info!(user_id = %user.id, "signed in");
    store::audit(&state, Some(&user.id), "login", None).await;
    Ok(ApiJson(LoginResponse {
        user: user.to_api(),
        tokens,
    }))
}

/// Trade a refresh token for a new pair. Each refresh token works once; presenting a spent
/// one signs the whole session out.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody)))]
async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<ApiJson<TokenPair>> {
    Ok(ApiJson(
        store::rotate_refresh_token(&state, req.refresh_token.trim()).await?,
    ))
}

/// Sign out: revokes the session the refresh token belongs to, and its access tokens.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body = LogoutRequest,
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LogoutRequest>,
) -> ApiResult<StatusCode> {
    match store::revoke_by_refresh_token(&state, req.refresh_token.trim()).await? {
        Some(user_id) => {
            store::audit(&state, Some(&user_id), "logout", None).await;
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(AppError::unauthorized(
            ErrorCode::InvalidRefreshToken,
            "unknown refresh token",
        )),
    }
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
async fn me(State(state): State<AppState>, auth: AuthUser) -> ApiResult<ApiJson<User>> {
    let user = store::user_by_id(&state.db.pool, auth.user_id.as_str())
        .await?
        .ok_or_else(|| {
            AppError::unauthorized(ErrorCode::InvalidToken, "account no longer exists")
        })?;
    Ok(ApiJson(user.to_api()))
}

/// Change the password; every other session is signed out.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn change_password(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    let user = store::user_by_id(&state.db.pool, auth.user_id.as_str())
        .await?
        .ok_or_else(|| {
            AppError::unauthorized(ErrorCode::InvalidToken, "account no longer exists")
        })?;
    // Throttled like sign-in: a stolen access token must not become a password oracle.
    let gate = &state.limits.password_change_failures;
    limited(gate.begin(&user.id, state.now_ms()))?;
    if !state
        .hasher
        .verify(req.current_password, user.password_hash.clone())
        .await?
    {
        return Err(AppError::forbidden(
            ErrorCode::InvalidCredentials,
            "current password is wrong",
        ));
    }
    gate.succeed(&user.id);
    validate::password(&req.new_password)?;
    set_password(&state, &user.id, req.new_password).await?;
    let revoked = store::revoke_user_sessions(
        &state,
        &user.id,
        Some(auth.session_id.as_str()),
        "password_changed",
    )
    .await?;
    tracing::info!(user_id = %user.id, revoked, "password changed");
    store::audit(&state, Some(&user.id), "password_change", None).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_password(state: &AppState, user_id: &str, password: String) -> ApiResult<()> {
    let hash = state.hasher.hash(password).await?;
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user_id)
        .execute(&state.db.pool)
        .await?;
    Ok(())
}

use store::code_invalid;

/// Reserves a code try for the address `email_key` (known or not, so the limit itself says
/// nothing), across every code the account is sent.
fn refund_code_try(state: &AppState, email_key: &str) {
    state
        .limits
        .email_code_failures_per_account
        .refund(email_key, state.now_ms());
}

fn reserve_code_try(state: &AppState, email_key: &str) -> ApiResult<()> {
    limited(
        state
            .limits
            .email_code_failures_per_account
            .take(email_key, state.now_ms()),
    )
}

/// Confirm an e-mail address with the six-digit code that was mailed to it.
#[utoipa::path(post, path = "/api/auth/verify-email", tag = "auth", request_body = VerifyEmailRequest,
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn verify_email(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<VerifyEmailRequest>,
) -> ApiResult<ApiJson<User>> {
    validate::email_code(&req.code)?;
    let key = validate::email_key(&req.email);
    reserve_code_try(&state, &key)?;
    // Unknown, already verified or wrong: one answer, so it tells nothing about the address.
    let mut user = store::user_by_email_key(&state.db.pool, &key)
        .await?
        .filter(|u| u.email_verified_at.is_none())
        .ok_or_else(code_invalid)?;
    store::consume_email_code(&state, &user.id, CodePurpose::Verify, &req.code).await?;
    refund_code_try(&state, &key);
    let now = state.now_ms();
    sqlx::query("UPDATE users SET email_verified_at = $1 WHERE id = $2")
        .bind(now)
        .bind(&user.id)
        .execute(&state.db.pool)
        .await?;
    user.email_verified_at = Some(now);
    store::audit(&state, Some(&user.id), "email_verified", None).await;
    Ok(ApiJson(user.to_api()))
}

/// Mails a `purpose` code to `email` if an account uses it (and, for verification, is not
/// verified yet). The answer and the cool-down are the same for every address, so neither
/// reveals whether it is registered.
async fn mail_code_to_address(
    state: &AppState,
    email: &str,
    purpose: CodePurpose,
) -> ApiResult<(StatusCode, ApiJson<Accepted>)> {
    let key = validate::email_key(&validate::email(email)?);
    limited(
        state
            .limits
            .email_send
            .take(&email_send_key(purpose, &key), state.now_ms()),
    )?;
    if let Some(user) = store::user_by_email_key(&state.db.pool, &key).await? {
        if purpose == CodePurpose::Reset || user.email_verified_at.is_none() {
            send_code(state, &user, purpose).await?;
        }
    }
    let message = "if an account uses that address, a code is on its way".into();
    Ok((StatusCode::ACCEPTED, ApiJson(Accepted { message })))
}

/// Send a new verification code. Answers the same whether or not the address is registered.
#[utoipa::path(post, path = "/api/auth/verify-email/resend", tag = "auth", request_body = EmailRequest,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn resend_verification(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EmailRequest>,
) -> ApiResult<(StatusCode, ApiJson<Accepted>)> {
    mail_code_to_address(&state, &req.email, CodePurpose::Verify).await
}

/// Mail a password-reset code. Answers the same whether or not the address is registered.
#[utoipa::path(post, path = "/api/auth/password-reset/request", tag = "auth", request_body = EmailRequest,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn request_password_reset(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EmailRequest>,
) -> ApiResult<(StatusCode, ApiJson<Accepted>)> {
    mail_code_to_address(&state, &req.email, CodePurpose::Reset).await
}

/// Set a new password with a reset code; every session is signed out.
#[utoipa::path(post, path = "/api/auth/password-reset/confirm", tag = "auth", request_body = ResetPasswordRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
async fn confirm_password_reset(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    validate::email_code(&req.code)?;
    validate::password(&req.new_password)?;
    let key = validate::email_key(&req.email);
    reserve_code_try(&state, &key)?;
    let user = store::user_by_email_key(&state.db.pool, &key)
        .await?
        .ok_or_else(code_invalid)?;
    store::consume_email_code(&state, &user.id, CodePurpose::Reset, &req.code).await?;
    refund_code_try(&state, &key);
    set_password(&state, &user.id, req.new_password).await?;
    // The code reached the mailbox, which also proves the address.
    sqlx::query(
        "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $1) WHERE id = $2",
    )
    .bind(state.now_ms())
    .bind(&user.id)
    .execute(&state.db.pool)
    .await?;
    store::revoke_user_sessions(&state, &user.id, None, "password_reset").await?;
    store::audit(&state, Some(&user.id), "password_reset", None).await;
    // The owner hears of it, whoever did it.
    let (mailer, to, id) = (state.mailer.clone(), user.email.clone(), user.id.clone());
    tokio::spawn(async move { mailer.send_notice(&to, &id, Notice::PasswordReset).await });
    Ok(StatusCode::NO_CONTENT)
}
