//! Chat storage: a message is committed, with the next `seq` of its meeting, before anyone
//! sees it; a retried `client_msg_id` returns the stored message instead of a second copy.

use parley_shared::signal::ChatMessage;
use parley_shared::UserId;
use sqlx::AnyPool;

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    seq: i64,
    sender_id: String,
    sender_name: String,
    body: String,
    created_at: i64,
}

impl From<Row> for ChatMessage {
    fn from(r: Row) -> Self {
        ChatMessage {
            id: r.id,
            seq: r.seq,
            sender: UserId(r.sender_id),
            sender_name: r.sender_name,
            text: r.body,
            at_ms: r.created_at,
        }
    }
}

const COLUMNS: &str = "id, seq, sender_id, sender_name, body, created_at";

/// Stores a message; returns it and whether it was already stored (a retry).
pub async fn store(
    pool: &AnyPool,
    meeting_id: &str,
    sender: &UserId,
    sender_name: &str,
    client_msg_id: &str,
    text: &str,
    now_ms: i64,
) -> sqlx::Result<(ChatMessage, bool)> {
    let mut tx = crate::db::begin_write(pool).await?;
    let existing: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM messages WHERE meeting_id = $1 AND sender_id = $2 AND client_msg_id = $3"
    ))
    .bind(meeting_id)
    .bind(sender.as_str())
    .bind(client_msg_id)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = existing {
        return Ok((row.into(), true));
    }
    let (seq,): (i64,) =
        sqlx::query_as("SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE meeting_id = $1")
            .bind(meeting_id)
            .fetch_one(&mut **tx)
            .await?;
    let id = ulid::Ulid::new().to_string();
    sqlx::query(
        "INSERT INTO messages (id, meeting_id, seq, sender_id, sender_name, body, client_msg_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(meeting_id)
    .bind(seq)
    .bind(sender.as_str())
    .bind(sender_name)
    .bind(text)
    .bind(client_msg_id)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    tx.commit().await?;
    let message = ChatMessage {
        id,
        seq,
        sender: sender.clone(),
        sender_name: sender_name.into(),
        text: text.into(),
        at_ms: now_ms,
    };
    Ok((message, false))
}

/// Messages with `seq > after_seq`, oldest first, at most `limit`.
pub async fn after(
    pool: &AnyPool,
    meeting_id: &str,
    after_seq: i64,
    limit: i64,
) -> sqlx::Result<Vec<ChatMessage>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM messages WHERE meeting_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    ))
    .bind(meeting_id)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(ChatMessage::from).collect())
}

/// The highest `seq` in a meeting (0 when there is no chat).
pub async fn last_seq(pool: &AnyPool, meeting_id: &str) -> sqlx::Result<i64> {
    let (seq,): (i64,) =
        sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE meeting_id = $1")
            .bind(meeting_id)
            .fetch_one(pool)
            .await?;
    Ok(seq)
}
