//! `/api/meetings/*`: create, list, show, join, leave, end, delete.

use axum::extract::State;
use axum::http::StatusCode;
use parley_shared::api::{
    CreateMeetingRequest, JoinMeetingRequest, JoinMeetingResponse, Meeting, MeetingList,
    ParticipantStatus, Role,
};
use parley_shared::{validate, ErrorBody, ErrorCode, MeetingCode};
use rand::Rng as _;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::store as auth_store;
use crate::db::is_unique_violation;
use crate::error::{ApiResult, AppError};
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use crate::meetings::store::{self, MeetingRow};
use crate::state::AppState;

/// Page size when none is asked for.
pub const DEFAULT_PAGE: i64 = 20;
/// Largest page a client may ask for.
pub const MAX_PAGE: i64 = 100;
/// Most chat messages in one page of history.
pub const MAX_HISTORY_PAGE: i64 = 500;
/// What a `cursor` looks like: `<created_at>.<id>`, at most 18 digits (so always an i64), or
/// empty for the first page.
pub const CURSOR_PATTERN: &str = r"^(?:[+-]?[0-9]{1,18}\.[\s\S]*)?$";
/// Fresh codes tried before giving up (a collision at 54 bits is already rare).
const CODE_ATTEMPTS: usize = 5;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_meeting, list_meetings))
        .routes(routes!(get_meeting, delete_meeting))
        .routes(routes!(join_meeting))
        .routes(routes!(leave_meeting))
        .routes(routes!(end_meeting))
        .routes(routes!(lock_meeting))
        .routes(routes!(unlock_meeting))
        .routes(routes!(chat_history))
        .routes(routes!(readmit_participant))
}

pub(super) fn parse_code(raw: &str) -> ApiResult<MeetingCode> {
    MeetingCode::parse(raw)
        .map_err(|e| AppError::bad_request(ErrorCode::InvalidMeetingCode, e.to_string()))
}

pub(super) fn not_found() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::MeetingNotFound,
        "no meeting has that code",
    )
}

pub(super) async fn load(state: &AppState, raw_code: &str, user_id: &str) -> ApiResult<MeetingRow> {
    let code = parse_code(raw_code)?;
    store::by_code(&state.db.pool, &code, user_id)
        .await?
        .ok_or_else(not_found)
}

/// The caller may use a meeting's resources (details, chat, leave) once admitted, and its
/// host always; a barred user never, until a host re-admits them.
pub(super) fn require_admitted(m: &MeetingRow, user_id: &str) -> ApiResult<()> {
    if let Some(bar) = m.bar() {
        return Err(AppError::forbidden(
            ErrorCode::NotParticipant,
            bar.message(),
        ));
    }
    if m.host_id == user_id || m.admitted() || m.role().is_some_and(Role::can_moderate) {
        Ok(())
    } else {
        Err(AppError::forbidden(
            ErrorCode::NotParticipant,
            "only admitted participants can see this meeting",
        ))
    }
}

fn require_host(m: &MeetingRow, user_id: &str) -> ApiResult<()> {
    if m.host_id == user_id {
        Ok(())
    } else {
        Err(AppError::forbidden(
            ErrorCode::NotHost,
            "only the host can do this",
        ))
    }
}

/// Create a meeting; the caller becomes its host.
#[utoipa::path(post, path = "/api/meetings", tag = "meetings", security(("bearer" = [])),
    request_body = CreateMeetingRequest,
    responses((status = 201, body = Meeting), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn create_meeting(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<CreateMeetingRequest>,
) -> ApiResult<(StatusCode, ApiJson<Meeting>)> {
    let title = validate::title(&req.title)?;
    let passcode_hash = match req.passcode.filter(|p| !p.is_empty()) {
        Some(p) => {
            validate::passcode(&p)?;
            Some(state.hasher.hash(p).await?)
        }
        None => None,
    };
    let now = state.now_ms();
    let id = ulid::Ulid::new().to_string();
    let user_id = auth.user_id.as_str();
    let mut code = None;
    for _ in 0..CODE_ATTEMPTS {
        let candidate = MeetingCode::from_indices(rand::rngs::OsRng.gen());
        let inserted = sqlx::query(
            "INSERT INTO meetings (id, code, title, host_id, passcode_hash, waiting_room, locked, allow_guests, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
        )
        .bind(&id)
        .bind(candidate.as_str())
        .bind(&title)
        .bind(user_id)
        .bind(&passcode_hash)
        .bind(i64::from(req.waiting_room))
        .bind(i64::from(req.allow_guests))
        .bind(now)
        .execute(&state.db.pool)
        .await;
        match inserted {
            Ok(_) => {
                code = Some(candidate);
                break;
            }
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let code = code.ok_or_else(|| AppError::internal("could not find a free meeting code"))?;
    store::upsert_participant(
        &state.db.pool,
        &id,
        user_id,
        Role::Host,
        ParticipantStatus::Invited,
        now,
    )
    .await?;
    auth_store::audit(&state, Some(user_id), "meeting_create", Some(&id)).await;
    let row = store::by_code(&state.db.pool, &code, user_id)
        .await?
        .ok_or_else(not_found)?;
    Ok((StatusCode::CREATED, ApiJson(row.to_api())))
}

/// `limit` and `cursor` arrive as text so a bad value gets the API's own error.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Page size, 1-100 (default 20).
    pub limit: Option<String>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

impl ListParams {
    /// The page size and the cursor's (created_at, id), or the API's error.
    pub fn read(&self) -> Result<(i64, Option<(i64, String)>), AppError> {
        let bad = |m: &str| AppError::bad_request(ErrorCode::InvalidPagination, m);
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_PAGE,
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| bad("limit must be 1-100"))?,
        };
        let before = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => {
                let (at, id) = c.split_once('.').ok_or_else(|| bad("invalid cursor"))?;
                let digits = at.strip_prefix(['+', '-']).unwrap_or(at);
                if !(1..=18).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(bad("invalid cursor"));
                }
                Some((
                    at.parse::<i64>().map_err(|_| bad("invalid cursor"))?,
                    id.to_string(),
                ))
            }
        };
        Ok((limit, before))
    }
}

/// The caller's meetings, hosted or joined, newest first.
#[utoipa::path(get, path = "/api/meetings", tag = "meetings", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = MeetingList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_meetings(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<ApiJson<MeetingList>> {
    let (limit, before) = params.read()?;
    let mut rows =
        store::list_for_user(&state.db.pool, auth.user_id.as_str(), before, limit + 1).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|m| format!("{}.{}", m.created_at, m.id))
    } else {
        None
    };
    Ok(ApiJson(MeetingList {
        meetings: rows.iter().map(MeetingRow::to_api).collect(),
        next_cursor,
    }))
}

/// A meeting's details, for its host and participants only.
#[utoipa::path(get, path = "/api/meetings/{code}", tag = "meetings", security(("bearer" = [])),
    params(("code" = String, Path, description = "meeting code, e.g. bcdf-ghjk-mnpq")),
    responses((status = 200, body = Meeting), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_meeting(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<ApiJson<Meeting>> {
    let m = load(&state, &code, auth.user_id.as_str()).await?;
    require_admitted(&m, auth.user_id.as_str())?;
    Ok(ApiJson(m.to_api()))
}

/// Delete a meeting and its records (host only).
#[utoipa::path(delete, path = "/api/meetings/{code}", tag = "meetings", security(("bearer" = [])),
    params(("code" = String, Path, description = "meeting code")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_meeting(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let m = load(&state, &code, auth.user_id.as_str()).await?;
    require_host(&m, auth.user_id.as_str())?;
    // Whoever is in the live room is told the meeting is over and disconnected.
    if let Some(room) = state.rooms.get(&m.id) {
        let _ = room.send(crate::room::task::RoomCmd::End).await;
    }
    sqlx::query("DELETE FROM meetings WHERE id = $1")
        .bind(&m.id)
        .execute(&state.db.pool)
        .await?;
    auth_store::audit(
        &state,
        Some(auth.user_id.as_str()),
        "meeting_delete",
        Some(&m.id),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Join a meeting: checks that it has not ended, its lock and its passcode, and records the
/// caller as a participant. With a waiting room, newcomers wait to be admitted.
#[utoipa::path(post, path = "/api/meetings/{code}/join", tag = "meetings", security(("bearer" = [])),
    params(("code" = String, Path, description = "meeting code")), request_body = JoinMeetingRequest,
    responses((status = 200, body = JoinMeetingResponse), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 410, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn join_meeting(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(code): ApiPath<String>,
    body: axum::body::Bytes,
) -> ApiResult<ApiJson<JoinMeetingResponse>> {
    // The body is optional: joining a meeting without a passcode needs none.
    let req: JoinMeetingRequest = if body.iter().all(u8::is_ascii_whitespace) {
        JoinMeetingRequest::default()
    } else {
        let value = serde_json::from_slice(&body).map_err(|e| {
            AppError::bad_request(ErrorCode::MalformedRequest, format!("invalid body: {e}"))
        })?;
        crate::extract::object_body(value)?
    };
    let user_id = auth.user_id.as_str();
    let m = load(&state, &code, user_id).await?;
    let Admission { role, admitted } = admission(&state, &m, user_id, req.passcode).await?;
    let waiting = m.waiting_room != 0 && !role.can_moderate() && !admitted;
    let status = if waiting {
        ParticipantStatus::Waiting
    } else {
        ParticipantStatus::Joined
    };
    let now = state.now_ms();
    store::upsert_participant(&state.db.pool, &m.id, user_id, role, status, now).await?;
    if !waiting {
        sqlx::query("UPDATE meetings SET started_at = $1 WHERE id = $2 AND started_at IS NULL")
            .bind(now)
            .bind(&m.id)
            .execute(&state.db.pool)
            .await?;
    }
    let row = load(&state, &code, user_id).await?;
    Ok(ApiJson(JoinMeetingResponse {
        meeting: row.to_api(),
        waiting,
    }))
}

/// Who may enter, as both REST join and the WebSocket join decide it.
pub(crate) struct Admission {
    pub role: Role,
    /// Admitted before (by a host, or entering without a waiting room): no passcode, lock
    /// or waiting room again.
    pub admitted: bool,
}

/// The checks every way into a meeting shares: not ended, not barred (denied or removed),
/// not locked (for users neither admitted nor moderators) and the passcode (the same).
pub(crate) async fn admission(
    state: &AppState,
    m: &MeetingRow,
    user_id: &str,
    passcode: Option<String>,
) -> ApiResult<Admission> {
    if m.ended_at.is_some() {
        return Err(AppError::new(
            StatusCode::GONE,
            ErrorCode::MeetingEnded,
            "this meeting has ended",
        ));
    }
    if let Some(bar) = m.bar() {
        return Err(AppError::forbidden(
            ErrorCode::NotParticipant,
            bar.message(),
        ));
    }
    let role = if m.host_id == user_id {
        Role::Host
    } else {
        m.role().unwrap_or(Role::Participant)
    };
    let admitted = m.admitted();
    if !role.can_moderate() && !admitted {
        if m.locked != 0 {
            return Err(AppError::forbidden(
                ErrorCode::MeetingLocked,
                "the host has locked this meeting",
            ));
        }
        if let Some(hash) = &m.passcode_hash {
            check_passcode(state, &m.id, user_id, hash, passcode).await?;
        }
    }
    Ok(Admission { role, admitted })
}

pub(super) async fn check_passcode(
    state: &AppState,
    meeting_id: &str,
    user_id: &str,
    hash: &str,
    given: Option<String>,
) -> ApiResult<()> {
    let limits = &state.limits;
    let user_key = format!("{meeting_id}:{user_id}");
    check_passcode_with(
        state,
        (&limits.passcode_failures_per_user, &user_key),
        (&limits.passcode_failures_per_meeting, meeting_id),
        hash,
        given,
    )
    .await
}

/// Checks `given` against a meeting's passcode `hash`, counting a wrong one against two
/// budgets (a limiter and its key each): the guesser's own and the meeting's. Signed-in users
/// and guests pass different ones ([`check_passcode`], `guests::check_guest_passcode`).
pub(super) async fn check_passcode_with(
    state: &AppState,
    (own, own_key): (&crate::ratelimit::SharedLimiter, &str),
    (meeting, meeting_key): (&crate::ratelimit::SharedLimiter, &str),
    hash: &str,
    given: Option<String>,
) -> ApiResult<()> {
    let Some(given) = given.filter(|p| !p.is_empty()) else {
        return Err(AppError::forbidden(
            ErrorCode::PasscodeRequired,
            "this meeting needs a passcode",
        ));
    };
    let now = state.now_ms();
    // Reserve the try before the slow check and give it back on success, so a burst of
    // parallel guesses gets no more checks than the limit.
    own.take(own_key, now).map_err(AppError::rate_limited)?;
    if let Err(wait) = meeting.take(meeting_key, now) {
        own.refund(own_key, now);
        return Err(AppError::rate_limited(wait));
    }
    if state.hasher.verify(given, hash.to_string()).await? {
        own.refund(own_key, now);
        meeting.refund(meeting_key, now);
        return Ok(());
    }
    Err(AppError::forbidden(
        ErrorCode::WrongPasscode,
        "wrong passcode",
    ))
}

/// Leave a meeting (or the waiting room).
#[utoipa::path(post, path = "/api/meetings/{code}/leave", tag = "meetings", security(("bearer" = [])),
    params(("code" = String, Path, description = "meeting code")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn leave_meeting(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let m = load(&state, &code, auth.user_id.as_str()).await?;
    if m.status().is_none() {
        return Err(AppError::forbidden(
            ErrorCode::NotParticipant,
            "you are not in this meeting",
        ));
    }
    sqlx::query(
        "UPDATE participants SET status = 'left', left_at = $1 \
         WHERE meeting_id = $2 AND user_id = $3 AND status IN ('joined', 'waiting')",
    )
    .bind(state.now_ms())
    .bind(&m.id)
    .bind(auth.user_id.as_str())
    .execute(&state.db.pool)
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End a meeting for everyone (host only). Ending an ended meeting changes nothing.
#[utoipa::path(post, path = "/api/meetings/{code}/end", tag = "meetings", security(("bearer" = [])),
    params(("code" = String, Path, description = "meeting code")),
    responses((status = 200, body = Meeting), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn end_meeting(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<ApiJson<Meeting>> {
    let user_id = auth.user_id.as_str();
    let m = load(&state, &code, user_id).await?;
    require_host(&m, user_id)?;
    if m.ended_at.is_none() {
        let now = state.now_ms();
        let mut tx = crate::db::begin_write(&state.db.pool).await?;
        sqlx::query("UPDATE meetings SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(&m.id)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "UPDATE participants SET status = 'left', left_at = $1 \
             WHERE meeting_id = $2 AND status IN ('joined', 'waiting')",
        )
        .bind(now)
        .bind(&m.id)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        auth_store::audit(&state, Some(user_id), "meeting_end", Some(&m.id)).await;
        // Everyone in the live room is told and disconnected.
        if let Some(room) = state.rooms.get(&m.id) {
            let _ = room.send(crate::room::task::RoomCmd::End).await;
        }
    }
    Ok(ApiJson(load(&state, &code, user_id).await?.to_api()))
}

/// Let a denied or removed user in again (host and co-hosts only): the bar is lifted and
/// the user counts as admitted, so they enter without waiting room, lock or passcode.
#[utoipa::path(post, path = "/api/meetings/{code}/participants/{user_id}/readmit", tag = "meetings",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "meeting code"),
           ("user_id" = String, Path, description = "the user to let in again")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn readmit_participant(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath((code, target)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let user_id = auth.user_id.as_str();
    let m = load(&state, &code, user_id).await?;
    require_admitted(&m, user_id)?;
    if m.host_id != user_id && !m.role().is_some_and(Role::can_moderate) {
        return Err(AppError::forbidden(
            ErrorCode::NotHost,
            "only the host or a co-host can do this",
        ));
    }
    if !store::readmit_participant(&state.db.pool, &m.id, &target, state.now_ms()).await? {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::PeerNotFound,
            "that user never asked to join this meeting",
        ));
    }
    if let Some(room) = state.rooms.get(&m.id) {
        let _ = room
            .send(crate::room::task::RoomCmd::Readmit(parley_shared::UserId(
                target.clone(),
            )))
            .await;
    }
    auth_store::audit(
        &state,
        Some(user_id),
        "participant_readmit",
        Some(&format!("{}:{target}", m.id)),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Lock a meeting: nobody new may join (host and co-hosts only).
#[utoipa::path(post, path = "/api/meetings/{code}/lock", tag = "meetings", security(("bearer" = [])),
    params(("code" = String, Path, description = "meeting code")),
    responses((status = 200, body = Meeting), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 410, body = ErrorBody)))]
async fn lock_meeting(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<ApiJson<Meeting>> {
    set_locked(&state, &auth, &code, true).await
}

/// Unlock a meeting (host and co-hosts only).
#[utoipa::path(post, path = "/api/meetings/{code}/unlock", tag = "meetings", security(("bearer" = [])),
    params(("code" = String, Path, description = "meeting code")),
    responses((status = 200, body = Meeting), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 410, body = ErrorBody)))]
async fn unlock_meeting(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<ApiJson<Meeting>> {
    set_locked(&state, &auth, &code, false).await
}

async fn set_locked(
    state: &AppState,
    auth: &AuthUser,
    code: &str,
    locked: bool,
) -> ApiResult<ApiJson<Meeting>> {
    let user_id = auth.user_id.as_str();
    let m = load(state, code, user_id).await?;
    require_admitted(&m, user_id)?;
    if !m.role().is_some_and(Role::can_moderate) && m.host_id != user_id {
        return Err(AppError::forbidden(
            ErrorCode::NotHost,
            "only the host or a co-host can do this",
        ));
    }
    if m.ended_at.is_some() {
        return Err(AppError::new(
            StatusCode::GONE,
            ErrorCode::MeetingEnded,
            "this meeting has ended",
        ));
    }
    sqlx::query("UPDATE meetings SET locked = $1 WHERE id = $2")
        .bind(i64::from(locked))
        .bind(&m.id)
        .execute(&state.db.pool)
        .await?;
    auth_store::audit(
        state,
        Some(user_id),
        if locked {
            "meeting_lock"
        } else {
            "meeting_unlock"
        },
        Some(&m.id),
    )
    .await;
    Ok(ApiJson(load(state, code, user_id).await?.to_api()))
}

/// `after_seq` and `limit` arrive as text so a bad value gets the API's own error.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct HistoryParams {
    /// Only messages with a higher `seq` (default 0: from the start).
    pub after_seq: Option<String>,
    /// At most this many, 1-500 (default 100).
    pub limit: Option<String>,
}

impl HistoryParams {
    /// `after_seq` and the page size, or the API's error.
    pub fn read(&self) -> Result<(i64, i64), AppError> {
        let bad = |m: &str| AppError::bad_request(ErrorCode::InvalidPagination, m);
        let after_seq = match self.after_seq.as_deref() {
            None | Some("") => 0,
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| bad("after_seq must be a number >= 0"))?,
        };
        let limit = match self.limit.as_deref() {
            None | Some("") => 100,
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_HISTORY_PAGE).contains(n))
                .ok_or_else(|| bad("limit must be 1-500"))?,
        };
        Ok((after_seq, limit))
    }
}

/// A meeting's chat, oldest first, for its participants only.
#[utoipa::path(get, path = "/api/meetings/{code}/messages", tag = "meetings", security(("bearer" = [])),
    params(("code" = String, Path, description = "meeting code"), HistoryParams),
    responses((status = 200, body = parley_shared::api::ChatHistory), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn chat_history(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(code): ApiPath<String>,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> ApiResult<ApiJson<parley_shared::api::ChatHistory>> {
    let (after_seq, limit) = params.read()?;
    let m = load(&state, &code, auth.user_id.as_str()).await?;
    require_admitted(&m, auth.user_id.as_str())?;
    let messages = crate::room::chat::after(&state.db.pool, &m.id, after_seq, limit).await?;
    let messages = messages
        .into_iter()
        .map(|c| parley_shared::api::ChatEntry {
            id: c.id,
            seq: c.seq,
            sender: c.sender,
            sender_name: c.sender_name,
            guest: c.guest,
            text: c.text,
            at_ms: c.at_ms,
        })
        .collect();
    Ok(ApiJson(parley_shared::api::ChatHistory { messages }))
}
