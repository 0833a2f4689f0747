//! Guests: people who join one meeting from its invite link without an account.
//!
//! A host lets guests in per meeting (`PUT …/guest-access`, off by default) or hands one
//! person a personal link (`POST …/guest-links`: a revocable token, stored hashed, that works
//! even when open guest entry is off and stands in for the passcode). `POST /api/guests`
//! turns a display name (and the passcode, or a personal link) into a guest: a user row of its
//! own marked with its one meeting, and a session whose tokens the REST API refuses
//! (`guest_not_allowed`) and the meeting room takes for that meeting only. Guests meet the
//! waiting room and the lock like everyone; a bar (denied, removed) holds for them as for
//! users. Entries are limited per client address and per meeting.

use axum::extract::State;
use axum::http::StatusCode;
use parley_shared::api::{
    CreateGuestLinkRequest, CreatedGuestLink, GuestAccessRequest, GuestEntry, GuestEntryRequest,
    GuestLink, GuestLinkList, Meeting, Role,
};
use parley_shared::{validate, ErrorBody, ErrorCode, UserId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::routes::{check_passcode_with, load, not_found, parse_code, require_admitted};
use super::store::{self, MeetingRow};
use crate::auth::crypto;
use crate::auth::store as auth_store;
use crate::error::{ApiResult, AppError};
use crate::extract::{ApiJson, ApiPath, AuthUser, ClientIp};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enter_as_guest))
        .routes(routes!(set_guest_access))
        .routes(routes!(create_guest_link, list_guest_links))
        .routes(routes!(revoke_guest_link))
}

/// Longest label of a personal link.
pub const MAX_LABEL_CHARS: usize = 64;
/// Longest a personal link may be made to last (a week).
pub const MAX_LINK_HOURS: u32 = 7 * 24;

fn ended() -> AppError {
    AppError::new(
        StatusCode::GONE,
        ErrorCode::MeetingEnded,
        "this meeting has ended",
    )
}

/// Host and co-hosts manage guests.
fn require_moderator(m: &MeetingRow, user_id: &str) -> ApiResult<()> {
    require_admitted(m, user_id)?;
    if m.host_id == user_id || m.role().is_some_and(Role::can_moderate) {
        Ok(())
    } else {
        Err(AppError::forbidden(
            ErrorCode::NotHost,
            "only the host or a co-host can do this",
        ))
    }
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    id: String,
    label: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    single_use: i64,
    uses: i64,
}

impl LinkRow {
    fn to_api(&self) -> GuestLink {
        GuestLink {
            id: self.id.clone(),
            label: self.label.clone(),
            created_at_ms: self.created_at,
            expires_at_ms: self.expires_at,
            revoked_at_ms: self.revoked_at,
            single_use: self.single_use != 0,
            uses: u32::try_from(self.uses).unwrap_or(u32::MAX),
        }
    }

    /// Whether the link lets someone in at `now`.
    fn check(&self, now: i64) -> ApiResult<()> {
        if self.revoked_at.is_some() {
            return Err(AppError::forbidden(
                ErrorCode::GuestLinkRevoked,
                "the host has withdrawn this guest link",
            ));
        }
        if self.single_use != 0 && self.uses > 0 {
            return Err(AppError::forbidden(
                ErrorCode::GuestLinkUsed,
                "this guest link was for one entry and has been used; ask the host for another",
            ));
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(AppError::forbidden(
                ErrorCode::GuestLinkExpired,
                "this guest link has expired; ask the host for a new one",
            ));
        }
        Ok(())
    }
}

const SELECT_LINK: &str = "SELECT id, label, created_at, expires_at, revoked_at, single_use, uses \
     FROM guest_links WHERE meeting_id = $1";

/// Enter a meeting as a guest: a display name (and the passcode, or a personal link's
/// token) for tokens that open this one meeting's room. No account, no other meeting, no
/// REST beyond this.
#[utoipa::path(post, path = "/api/guests", tag = "guests",
    request_body = GuestEntryRequest,
    responses((status = 201, body = GuestEntry), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 410, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn enter_as_guest(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<GuestEntryRequest>,
) -> ApiResult<(StatusCode, ApiJson<GuestEntry>)> {
    let now = state.now_ms();
    let code = parse_code(&req.code)?;
    let name = validate::display_name(&req.display_name)?;
    let source = ip.guest_bucket();
    state
        .limits
        .guest_entries_per_ip
        .take(&source, now)
        .map_err(AppError::rate_limited)?;
    // Seen by nobody in particular: no participant row joins in.
    let m = store::by_code(&state.db.pool, &code, "")
        .await?
        .ok_or_else(not_found)?;
    if m.ended_at.is_some() {
        return Err(ended());
    }
    let link = match req.link_token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => {
            let row: Option<LinkRow> =
                sqlx::query_as(&format!("{SELECT_LINK} AND token_hash = $2"))
                    .bind(&m.id)
                    .bind(crypto::hash_refresh_token(token))
                    .fetch_optional(&state.db.pool)
                    .await?;
            let row = row.ok_or_else(|| {
                AppError::forbidden(
                    ErrorCode::GuestLinkInvalid,
                    "this guest link is not one of this meeting's",
                )
            })?;
            row.check(now)?;
            Some(row)
        }
        None => None,
    };
    if link.is_none() && m.allow_guests == 0 {
        return Err(AppError::forbidden(
            ErrorCode::GuestsNotAllowed,
            "the host has not let guests into this meeting; sign in to join",
        ));
    }
    if m.locked != 0 {
        return Err(AppError::forbidden(
            ErrorCode::MeetingLocked,
            "the host has locked this meeting",
        ));
    }
    // Each way in has a budget of its own: strangers spending the open link's never keep
    // out the people a host invited by name, and one leaked personal link spends only its own.
    match &link {
        Some(l) => state.limits.guest_entries_per_link.take(&l.id, now),
        None => state.limits.guest_entries_per_meeting.take(&m.id, now),
    }
    .map_err(AppError::rate_limited)?;
    // A personal link stands for the passcode; the open link needs it.
    if link.is_none() {
        if let Some(hash) = &m.passcode_hash {
            check_guest_passcode(&state, &m.id, &source, hash, req.passcode).await?;
        }
    }
    // A guest a host removed or turned away does not come back through the open link as a
    // new guest from the same address (a personal link of theirs was revoked with the bar).
    let source_key = crypto::hash_guest_source(&state.code_secret, &m.id, &source);
    if link.is_none() && source_barred(&state, &m.id, &source_key).await? {
        return Err(source_removed());
    }
    make_room_for_guest(&state, &m.id, &source_key, now).await?;
    if let Some(l) = &link {
        // Counted, and a single-use link spent, in one statement: two people racing with
        // the same single-use link cannot both get in.
        let counted = sqlx::query(
            "UPDATE guest_links SET uses = uses + 1 WHERE id = $1 AND (single_use = 0 OR uses = 0)",
        )
        .bind(&l.id)
        .execute(&state.db.pool)
        .await?
        .rows_affected();
        if counted == 0 {
            return Err(AppError::forbidden(
                ErrorCode::GuestLinkUsed,
                "this guest link was for one entry and has been used; ask the host for another",
            ));
        }
    }
    let id = ulid::Ulid::new().to_string();
    // No password can match "!" (not a PHC string), no address is "guest:…": a guest can
    // neither sign in nor be reached by e-mail.
    sqlx::query(
        "INSERT INTO users (id, username, email, email_key, password_hash, created_at, guest_of, guest_link_id, guest_source) \
         VALUES ($1, $2, '', $3, '!', $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(format!("guest-{}", id.to_lowercase()))
    .bind(format!("guest:{id}"))
    .bind(now)
    .bind(&m.id)
    .bind(link.as_ref().map(|l| l.id.clone()))
    .bind(&source_key)
    .execute(&state.db.pool)
    .await?;
    let tokens = auth_store::create_guest_session(&state, &id).await?;
    auth_store::audit(
        &state,
        Some(&id),
        if link.is_some() {
            "guest_enter_link"
        } else {
            "guest_enter"
        },
        Some(&m.id),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        ApiJson(GuestEntry {
            tokens,
            user_id: UserId(id),
            display_name: name,
            code,
            title: m.title,
        }),
    ))
}

fn source_removed() -> AppError {
    AppError::forbidden(
        ErrorCode::GuestRemoved,
        "a host removed a guest from this meeting who came from here; ask the host, or sign in",
    )
}

/// Whether a guest from `source_key` (a keyed hash of the address bucket) was removed from or
/// turned away at this meeting.
async fn source_barred(state: &AppState, meeting_id: &str, source_key: &str) -> ApiResult<bool> {
    let barred: Option<(i64,)> = sqlx::query_as(
        "SELECT COUNT(*) FROM users u JOIN participants p \
           ON p.user_id = u.id AND p.meeting_id = u.guest_of \
         WHERE u.guest_of = $1 AND u.guest_source = $2 AND p.barred_at IS NOT NULL",
    )
    .bind(meeting_id)
    .bind(source_key)
    .fetch_optional(&state.db.pool)
    .await?;
    Ok(barred.is_some_and(|(n,)| n > 0))
}

/// Keeps a source's unexpired guest sign-ins for this meeting under
/// `guest_sessions_per_source` with the one about to be made: the oldest ones without a socket
/// open are signed out (a reloaded browser tab leaves one behind); when every one of them is
/// in the meeting, the entry is refused. So nobody stocks up tokens to come back with.
async fn make_room_for_guest(
    state: &AppState,
    meeting_id: &str,
    source_key: &str,
    now: i64,
) -> ApiResult<()> {
    let cap = state.config.limits.guest_sessions_per_source.max(1) as usize;
    let ttl_ms =
        i64::try_from(state.config.guest_session_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let live: Vec<(String,)> = sqlx::query_as(
        "SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE u.guest_of = $1 AND u.guest_source = $2 AND s.revoked_at IS NULL AND s.created_at > $3 \
         ORDER BY s.created_at, s.id",
    )
    .bind(meeting_id)
    .bind(source_key)
    .bind(now.saturating_sub(ttl_ms))
    .fetch_all(&state.db.pool)
    .await?;
    if live.len() < cap {
        return Ok(());
    }
    let excess = live.len() + 1 - cap;
    let idle: Vec<&str> = live
        .iter()
        .map(|(id,)| id.as_str())
        .filter(|id| !state.sockets.has_session(id))
        .take(excess)
        .collect();
    if idle.len() < excess {
        return Err(AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyGuests,
            "as many guests from this address as allowed are in this meeting already; sign in to join",
        ));
    }
    for id in idle {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoke_reason = 'guest_replaced' \
             WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&state.db.pool)
        .await?;
    }
    Ok(())
}

/// Checks the open link's passcode for a guest. Its tries are counted per source address (a
/// guest has no account to count them on) and against a budget of the guests' own per
/// meeting, so a crowd of wrong guesses never blocks a signed-in user with the right passcode.
async fn check_guest_passcode(
    state: &AppState,
    meeting_id: &str,
    source: &str,
    hash: &str,
    given: Option<String>,
) -> ApiResult<()> {
    let limits = &state.limits;
    let source_key = format!("{meeting_id}:guest:{source}");
    check_passcode_with(
        state,
        (&limits.passcode_failures_per_user, &source_key),
        (&limits.guest_passcode_failures_per_meeting, meeting_id),
        hash,
        given,
    )
    .await
}

/// Signs out every guest of the meeting who came from the same source as `guest` (a removed
/// or denied guest): tokens minted before the removal, from the same address, stop working
/// at once, and their sockets close.
pub(crate) async fn sign_out_source(
    pool: &sqlx::AnyPool,
    sockets: &crate::sockets::Sockets,
    meeting_id: &str,
    guest: &str,
    now: i64,
) -> sqlx::Result<()> {
    let sessions: Vec<(String, String)> = sqlx::query_as(
        "SELECT s.id, s.user_id FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE u.guest_of = $1 AND s.revoked_at IS NULL \
           AND u.guest_source = (SELECT guest_source FROM users WHERE id = $2 AND guest_of = $1)",
    )
    .bind(meeting_id)
    .bind(guest)
    .fetch_all(pool)
    .await?;
    for (session, user) in &sessions {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoke_reason = 'guest_removed' \
             WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(session)
        .execute(pool)
        .await?;
        // The removed guest's own sockets are closed by the room, with `removed`.
        if user != guest {
            sockets.revoke_session(session);
        }
    }
    Ok(())
}

/// Called when a guest joins the room (again): the open link must still be open, a
/// personal link still valid.
pub(crate) async fn may_enter_again(
    state: &AppState,
    m: &MeetingRow,
    guest_id: &str,
) -> ApiResult<()> {
    let link: Option<(Option<String>,)> =
        sqlx::query_as("SELECT guest_link_id FROM users WHERE id = $1")
            .bind(guest_id)
            .fetch_optional(&state.db.pool)
            .await?;
    match link.and_then(|(l,)| l) {
        Some(link_id) => {
            let row: Option<LinkRow> = sqlx::query_as(&format!("{SELECT_LINK} AND id = $2"))
                .bind(&m.id)
                .bind(&link_id)
                .fetch_optional(&state.db.pool)
                .await?;
            match row {
                Some(row) => row.check(state.now_ms()),
                None => Err(AppError::forbidden(
                    ErrorCode::GuestLinkRevoked,
                    "the host has withdrawn this guest link",
                )),
            }
        }
        None if m.allow_guests == 0 => Err(AppError::forbidden(
            ErrorCode::GuestsNotAllowed,
            "the host no longer lets guests into this meeting",
        )),
        // Held at every join, not only at entry: a token minted before a guest from the same
        // source was removed does not walk back in.
        None => {
            let source: Option<(Option<String>,)> =
                sqlx::query_as("SELECT guest_source FROM users WHERE id = $1")
                    .bind(guest_id)
                    .fetch_optional(&state.db.pool)
                    .await?;
            match source.and_then(|(s,)| s) {
                Some(key) if source_barred(state, &m.id, &key).await? => Err(source_removed()),
                _ => Ok(()),
            }
        }
    }
}

/// Let guests in through the invite link, or stop letting them (host and co-hosts). Guests
/// already in the call stay; nobody new enters as a guest while it is off, except with a
/// personal link.
#[utoipa::path(put, path = "/api/meetings/{code}/guest-access", tag = "guests", security(("bearer" = [])),
    params(("code" = String, Path, description = "meeting code")),
    request_body = GuestAccessRequest,
    responses((status = 200, body = Meeting), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 410, body = ErrorBody)))]
async fn set_guest_access(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(code): ApiPath<String>,
    ApiJson(req): ApiJson<GuestAccessRequest>,
) -> ApiResult<ApiJson<Meeting>> {
    let user_id = auth.user_id.as_str();
    let m = load(&state, &code, user_id).await?;
    require_moderator(&m, user_id)?;
    if m.ended_at.is_some() {
        return Err(ended());
    }
    sqlx::query("UPDATE meetings SET allow_guests = $1 WHERE id = $2")
        .bind(i64::from(req.allowed))
        .bind(&m.id)
        .execute(&state.db.pool)
        .await?;
    let action = if req.allowed {
        "guests_allow"
    } else {
        "guests_disallow"
    };
    auth_store::audit(&state, Some(user_id), action, Some(&m.id)).await;
    // Turning guests off also sends away the guests still in the waiting room: one action
    // clears a crowd from the open link (those in the call stay).
    if !req.allowed {
        if let Some(room) = state.rooms.get(&m.id) {
            let _ = room.send(crate::room::task::RoomCmd::CloseGuestEntry).await;
        }
    }
    Ok(ApiJson(load(&state, &code, user_id).await?.to_api()))
}

/// Make a personal guest link for one person (host and co-hosts). The token is shown once;
/// the link is `/j/{code}#g={token}` (in the fragment: never sent to a server, never in
/// an access log or a `Referer`).
#[utoipa::path(post, path = "/api/meetings/{code}/guest-links", tag = "guests", security(("bearer" = [])),
    params(("code" = String, Path, description = "meeting code")),
    request_body = CreateGuestLinkRequest,
    responses((status = 201, body = CreatedGuestLink), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn create_guest_link(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(code): ApiPath<String>,
    ApiJson(req): ApiJson<CreateGuestLinkRequest>,
) -> ApiResult<(StatusCode, ApiJson<CreatedGuestLink>)> {
    // The body first: a malformed request is 400 whatever the meeting's state.
    let label = req.label.trim();
    if label.is_empty()
        || req.label.chars().count() > MAX_LABEL_CHARS
        || label.chars().any(char::is_control)
    {
        return Err(AppError::bad_request(
            ErrorCode::MalformedRequest,
            format!("label: 1 to {MAX_LABEL_CHARS} characters, no control characters"),
        ));
    }
    let hours = match req.expires_in_hours {
        Some(h) if h == 0 || h > MAX_LINK_HOURS => {
            return Err(AppError::bad_request(
                ErrorCode::MalformedRequest,
                format!("expires_in_hours: 1 to {MAX_LINK_HOURS}"),
            ))
        }
        h => h,
    };
    let user_id = auth.user_id.as_str();
    let m = load(&state, &code, user_id).await?;
    require_moderator(&m, user_id)?;
    if m.ended_at.is_some() {
        return Err(ended());
    }
    let now = state.now_ms();
    let row = LinkRow {
        id: ulid::Ulid::new().to_string(),
        label: label.to_owned(),
        created_at: now,
        expires_at: hours.map(|h| now + i64::from(h) * 3_600_000),
        revoked_at: None,
        single_use: i64::from(req.single_use),
        uses: 0,
    };
    let token = crypto::new_refresh_token();
    sqlx::query(
        "INSERT INTO guest_links (id, meeting_id, token_hash, label, created_by, created_at, expires_at, single_use) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&m.id)
    .bind(crypto::hash_refresh_token(&token))
    .bind(&row.label)
    .bind(user_id)
    .bind(now)
    .bind(row.expires_at)
    .bind(row.single_use)
    .execute(&state.db.pool)
    .await?;
    auth_store::audit(&state, Some(user_id), "guest_link_create", Some(&row.id)).await;
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedGuestLink {
            link: row.to_api(),
            token,
        }),
    ))
}

/// The meeting's personal guest links, newest first (host and co-hosts; tokens are not
/// shown again).
#[utoipa::path(get, path = "/api/meetings/{code}/guest-links", tag = "guests", security(("bearer" = [])),
    params(("code" = String, Path, description = "meeting code")),
    responses((status = 200, body = GuestLinkList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_guest_links(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<ApiJson<GuestLinkList>> {
    let user_id = auth.user_id.as_str();
    let m = load(&state, &code, user_id).await?;
    require_moderator(&m, user_id)?;
    let rows: Vec<LinkRow> =
        sqlx::query_as(&format!("{SELECT_LINK} ORDER BY created_at DESC, id DESC"))
            .bind(&m.id)
            .fetch_all(&state.db.pool)
            .await?;
    Ok(ApiJson(GuestLinkList {
        links: rows.iter().map(LinkRow::to_api).collect(),
    }))
}

/// Withdraw a personal guest link (host and co-hosts): nobody enters with it any more, and
/// the guests who came in by it are signed out and leave the call.
#[utoipa::path(delete, path = "/api/meetings/{code}/guest-links/{id}", tag = "guests", security(("bearer" = [])),
    params(("code" = String, Path, description = "meeting code"), ("id" = String, Path, description = "link id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_guest_link(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath((code, id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let user_id = auth.user_id.as_str();
    let m = load(&state, &code, user_id).await?;
    require_moderator(&m, user_id)?;
    let now = state.now_ms();
    let found = sqlx::query(
        "UPDATE guest_links SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND meeting_id = $3",
    )
    .bind(now)
    .bind(&id)
    .bind(&m.id)
    .execute(&state.db.pool)
    .await?
    .rows_affected();
    if found == 0 {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "this meeting has no guest link with that id",
        ));
    }
    let sessions: Vec<(String,)> = sqlx::query_as(
        "SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE u.guest_link_id = $1 AND s.revoked_at IS NULL",
    )
    .bind(&id)
    .fetch_all(&state.db.pool)
    .await?;
    sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoke_reason = 'guest_link_revoked' \
         WHERE revoked_at IS NULL AND user_id IN (SELECT id FROM users WHERE guest_link_id = $2)",
    )
    .bind(now)
    .bind(&id)
    .execute(&state.db.pool)
    .await?;
    for (session,) in &sessions {
        state.sockets.revoke_session(session);
    }
    auth_store::audit(&state, Some(user_id), "guest_link_revoke", Some(&id)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// How long after a guest's sign-in ends (or its meeting ends) its rows are kept: the audit
/// trail of a fresh removal stays readable for a while, and nothing of a guest still in the
/// call (its access token outlives a revoked session by minutes) is pulled from under it.
pub const GUEST_ROWS_KEPT_MS: i64 = 60 * 60 * 1000;
/// How often the server purges ended guests.
pub const GUEST_SWEEP: std::time::Duration = std::time::Duration::from_secs(60);

/// Deletes what each guest entry stored — the user row, its sessions and refresh tokens, its
/// audit rows — once its sign-in or its meeting has ended (more than [`GUEST_ROWS_KEPT_MS`]
/// ago). Kept: a guest who chatted (history names the sender; only its sessions go), and a
/// barred guest of a meeting still running (the bar keeps its source out). Without it every
/// entry stayed until the meeting was deleted: unbounded growth from many addresses. Returns
/// how many guests were deleted.
pub async fn purge(pool: &sqlx::AnyPool, now_ms: i64, session_ttl_ms: i64) -> sqlx::Result<u64> {
    let cut = now_ms.saturating_sub(GUEST_ROWS_KEPT_MS);
    let live_after = cut.saturating_sub(session_ttl_ms);
    // A guest whose sign-ins are all over: revoked before `cut`, or made before `live_after`.
    const SIGNED_OUT: &str = "NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id \
           AND ((s.revoked_at IS NULL AND s.created_at > $2) OR s.revoked_at > $1))";
    let purgeable = format!(
        "SELECT u.id FROM users u WHERE u.guest_of IS NOT NULL AND u.created_at < $1 \
           AND NOT EXISTS (SELECT 1 FROM messages g WHERE g.meeting_id = u.guest_of AND g.sender_id = u.id) \
           AND (EXISTS (SELECT 1 FROM meetings m WHERE m.id = u.guest_of AND m.ended_at < $1) \
                OR ({SIGNED_OUT} AND NOT EXISTS (SELECT 1 FROM participants p \
                      WHERE p.user_id = u.id AND p.meeting_id = u.guest_of AND p.barred_at IS NOT NULL)))"
    );
    sqlx::query(&format!(
        "DELETE FROM audit_log WHERE actor_id IN ({purgeable})"
    ))
    .bind(cut)
    .bind(live_after)
    .execute(pool)
    .await?;
    let deleted = sqlx::query(&format!("DELETE FROM users WHERE id IN ({purgeable})"))
        .bind(cut)
        .bind(live_after)
        .execute(pool)
        .await?
        .rows_affected();
    // Guests kept for their chat keep no sign-in that is over.
    sqlx::query(
        "DELETE FROM sessions WHERE (revoked_at < $1 OR (revoked_at IS NULL AND created_at < $2)) \
           AND user_id IN (SELECT id FROM users WHERE guest_of IS NOT NULL)",
    )
    .bind(cut)
    .bind(live_after)
    .execute(pool)
    .await?;
    Ok(deleted)
}

/// Purges ended guests every [`GUEST_SWEEP`] until the server stops.
pub fn start_purging(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let ttl_ms = i64::try_from(state.config.guest_session_ttl_secs.saturating_mul(1000))
        .unwrap_or(i64::MAX / 4);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(GUEST_SWEEP);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.changed() => return,
            }
            match purge(&state.db.pool, state.now_ms(), ttl_ms).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(guests = n, "ended guests purged"),
                Err(e) => tracing::warn!(error = %e, "guest purge failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_refused_once_revoked_or_expired_and_says_which() {
        let mut row = LinkRow {
            id: "l".into(),
            label: "Ann".into(),
            created_at: 0,
            expires_at: Some(1_000),
            revoked_at: None,
            single_use: 0,
            uses: 3,
        };
        assert!(row.check(999).is_ok());
        assert_eq!(
            row.check(1_000).unwrap_err().code,
            ErrorCode::GuestLinkExpired
        );
        row.single_use = 1;
        assert_eq!(row.check(10).unwrap_err().code, ErrorCode::GuestLinkUsed);
        row.uses = 0;
        assert!(row.check(10).is_ok());
        row.revoked_at = Some(500);
        assert_eq!(row.check(10).unwrap_err().code, ErrorCode::GuestLinkRevoked);
    }
}
