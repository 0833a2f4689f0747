//! Chat storage: a message is committed, with the next `seq` of its meeting, before anyone
//! sees it; a retried `client_msg_id` returns the stored message instead of a second copy.
//! On SQLite the writer is a thread of its own ([`sqlite`]); on PostgreSQL a task on sqlx.

mod sqlite;

use std::collections::HashMap;

use parley_shared::signal::ChatMessage;
use parley_shared::UserId;
use sqlx::{AnyConnection, AnyPool, Connection as _};
use tokio::sync::mpsc;

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    seq: i64,
    sender_id: String,
    sender_name: String,
    body: String,
    created_at: i64,
    guest: i64,
}

impl From<Row> for ChatMessage {
    fn from(r: Row) -> Self {
        ChatMessage {
            id: r.id,
            seq: r.seq,
            sender: UserId(r.sender_id),
            sender_name: r.sender_name,
            guest: r.guest != 0,
            text: r.body,
            at_ms: r.created_at,
        }
    }
}

/// A message's columns, and whether its sender is a guest (read from the sender's row, so
/// history marks guests as the live relay does).
const COLUMNS: &str = "id, seq, sender_id, sender_name, body, created_at, \
    CAST(CASE WHEN EXISTS (SELECT 1 FROM users u WHERE u.id = messages.sender_id AND u.guest_of IS NOT NULL) \
    THEN 1 ELSE 0 END AS BIGINT) AS guest";

/// A message to store, as the room hands it over.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub meeting_id: String,
    pub sender: UserId,
    pub sender_name: String,
    /// The sender is a guest (shown as one to everybody).
    pub guest: bool,
    pub client_msg_id: String,
    pub text: String,
    pub now_ms: i64,
}

impl NewMessage {
    /// This message as stored: under `id`, number `seq` in its meeting.
    fn stored_as(&self, id: String, seq: i64) -> ChatMessage {
        ChatMessage {
            id,
            seq,
            sender: self.sender.clone(),
            sender_name: self.sender_name.clone(),
            guest: self.guest,
            text: self.text.clone(),
            at_ms: self.now_ms,
        }
    }
}

/// What became of a [`NewMessage`]: the stored message and whether it was already stored
/// (a retry), or the error that kept it out.
pub type Outcome = Result<(ChatMessage, bool), String>;

/// How many waiting messages one transaction takes at most.
const MAX_BATCH: usize = 512;
/// How long a batch may gather while the writer is busy (see `write_loop`). Each commit costs
/// an fsync and its wake-ups whatever its size, so fewer, larger commits cost less, for a few
/// milliseconds more of a message's wait (docs/decisions.md, issue 18).
const LINGER: std::time::Duration = std::time::Duration::from_millis(6);
/// The writer counts as busy when it committed this recently.
const BUSY_WITHIN: std::time::Duration = std::time::Duration::from_millis(20);
/// Messages waiting for the writer before rooms wait to hand over more.
const WRITER_QUEUE: usize = 8192;

struct Job {
    message: NewMessage,
    done: Box<dyn FnOnce(Outcome) + Send>,
}

/// Group commit: one writer (a thread on SQLite, a task on PostgreSQL) stores chat for every
/// room. Whatever is waiting when it begins goes into one transaction, so a burst costs one
/// commit (one fsync) instead of one each; every message is still committed before its sender is acknowledged
/// and before anyone else sees it. Before, each message was its own transaction and the
/// signaling benchmark saturated at a few thousand messages per second on this disk.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer: on SQLite a thread with its own connection to the pool's file, on
    /// PostgreSQL a task on the current Tokio runtime.
    pub fn start(pool: AnyPool) -> Self {
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let url = &pool.connect_options().database_url;
        if url.scheme() == "sqlite" {
            match crate::db::sqlite_path(url.as_str()) {
                Some(path) => sqlite::start(path, rx),
                // A database in memory is the pool's connection's alone: another connection
                // would open a database of its own. The server always opens a file.
                None => tracing::error!("chat needs a database file; messages will fail"),
            }
        } else {
            tokio::spawn(write_loop(pool, rx));
        }
        Self { tx }
    }

    /// Queues a message; `done` is called with the outcome after the commit (or failure).
    pub async fn store(&self, message: NewMessage, done: impl FnOnce(Outcome) + Send + 'static) {
        let job = Job {
            message,
            done: Box::new(done),
        };
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job).await {
            (job.done)(Err("the chat writer has stopped".into()));
        }
    }
}

/// The writer on PostgreSQL.
async fn write_loop(pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut last_commit = tokio::time::Instant::now() - BUSY_WITHIN;
    // The writer's own connection, opened when first needed and again after an error.
    let mut conn: Option<AnyConnection> = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Under load, let a batch gather for a moment: each commit costs a round of
        // statements, a WAL write and an fsync whatever its size, and each message in it
        // still waits for the commit. A quiet writer commits at once.
        if batch.len() < MAX_BATCH && last_commit.elapsed() < BUSY_WITHIN {
            tokio::time::sleep(LINGER).await;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        let messages: Vec<&NewMessage> = batch.iter().map(|j| &j.message).collect();
        let stored = store_on(&pool, &mut conn, &messages).await;
        drop(messages);
        last_commit = tokio::time::Instant::now();
        match stored {
            Ok(outcomes) => {
                for (job, outcome) in batch.drain(..).zip(outcomes) {
                    (job.done)(Ok(outcome));
                }
            }
            Err(e) => {
                // One bad message must not sink the others: store each on its own.
                tracing::warn!(error = %e, messages = batch.len(), "chat batch failed; storing one by one");
                for job in batch.drain(..) {
                    let outcome = store_on(&pool, &mut conn, &[&job.message])
                        .await
                        .map(|mut v| v.remove(0))
                        .map_err(|e| e.to_string());
                    (job.done)(outcome);
                }
            }
        }
    }
}

/// [`store_batch`] on the writer's connection, opening it first if needed. After an error
/// the connection is let go (it may be what failed) and the next batch opens another.
async fn store_on(
    pool: &AnyPool,
    conn: &mut Option<AnyConnection>,
    messages: &[&NewMessage],
) -> sqlx::Result<Vec<(ChatMessage, bool)>> {
    let open = match conn {
        Some(open) => open,
        None => conn.insert(crate::db::writer_connection(pool).await?),
    };
    let stored = store_batch(open, messages).await;
    if stored.is_err() {
        *conn = None;
    }
    stored
}

/// Stores the messages in one transaction, in order; a retried `client_msg_id` returns the
/// message stored the first time.
///
/// Two statements per batch, whatever its size: the last `seq` of each meeting, then one
/// multi-row insert with the next `seq`s, which skips a message stored before (a retry after a
/// reconnect) and says which it stored. When it skipped one, the numbering it gave the others
/// has a gap: the transaction is rolled back and the batch stored one statement per message
/// ([`store_each`]). Retries within the batch are folded before anything is sent. A
/// concurrent writer (another Parley server on the same database) breaks a unique constraint:
/// the batch fails and is stored again message by message, so the numbering stays gap-free.
async fn store_batch(
    conn: &mut AnyConnection,
    messages: &[&NewMessage],
) -> sqlx::Result<Vec<(ChatMessage, bool)>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = conn.begin().await?;
    let meetings = distinct(messages.iter().map(|m| m.meeting_id.as_str()));
    let sql = format!(
        "SELECT meeting_id, COALESCE(MAX(seq), 0) FROM messages WHERE meeting_id IN ({}) GROUP BY meeting_id",
        placeholders(1, meetings.len())
    );
    // Not kept prepared (nor the insert below): their text changes with the batch, and each
    // connection would keep up to a hundred of them, the largest with thousands of
    // parameters (the soak saw the server's memory climb with them).
    let mut query = sqlx::query_as::<_, (String, i64)>(&sql).persistent(false);
    for m in &meetings {
        query = query.bind(*m);
    }
    let mut last_seq: HashMap<String, i64> = query.fetch_all(&mut *tx).await?.into_iter().collect();

    let mut outcomes = Vec::with_capacity(messages.len());
    let mut fresh = Vec::new();
    let mut in_batch: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for m in messages {
        let key = (
            m.meeting_id.as_str(),
            m.sender.as_str(),
            m.client_msg_id.as_str(),
        );
        if let Some(&first) = in_batch.get(&key) {
            // A second copy within this batch is a retry of the first.
            let (message, _): &(ChatMessage, bool) = &outcomes[first];
            outcomes.push((message.clone(), true));
            continue;
        }
        let seq = last_seq.entry(m.meeting_id.clone()).or_insert(0);
        *seq += 1;
        let message = m.stored_as(ulid::Ulid::new().to_string(), *seq);
        in_batch.insert(key, outcomes.len());
        fresh.push((message.clone(), *m));
        outcomes.push((message, false));
    }

    const COLUMNS_IN: usize = 8;
    let rows: Vec<String> = (0..fresh.len())
        .map(|i| format!("({})", placeholders(1 + i * COLUMNS_IN, COLUMNS_IN)))
        .collect();
    let sql = format!(
        "INSERT INTO messages (id, meeting_id, seq, sender_id, sender_name, body, client_msg_id, created_at) \
         VALUES {} ON CONFLICT (meeting_id, sender_id, client_msg_id) DO NOTHING RETURNING id",
        rows.join(", ")
    );
    let mut insert = sqlx::query_as::<_, (String,)>(&sql).persistent(false);
    for (message, m) in &fresh {
        insert = insert
            .bind(message.id.as_str())
            .bind(m.meeting_id.as_str())
            .bind(message.seq)
            .bind(m.sender.as_str())
            .bind(m.sender_name.as_str())
            .bind(m.text.as_str())
            .bind(m.client_msg_id.as_str())
            .bind(m.now_ms);
    }
    let stored = insert.fetch_all(&mut *tx).await?;
    if stored.len() < fresh.len() {
        // A retry of a message stored in an earlier batch: number them one by one.
        tx.rollback().await?;
        return store_each(conn, messages).await;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Stores the messages one statement each, in one transaction, in order; a retried
/// `client_msg_id` returns the message stored the first time. The slow path of
/// [`store_batch`], for a batch holding a retry of a message stored before.
async fn store_each(
    conn: &mut AnyConnection,
    messages: &[&NewMessage],
) -> sqlx::Result<Vec<(ChatMessage, bool)>> {
    let mut tx = conn.begin().await?;
    let mut outcomes = Vec::with_capacity(messages.len());
    for m in messages {
        let id = ulid::Ulid::new().to_string();
        // The next seq of the meeting, taken inside the insert; the WHERE clause also keeps
        // SQLite from reading ON CONFLICT as a join constraint.
        let inserted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO messages (id, meeting_id, seq, sender_id, sender_name, body, client_msg_id, created_at) \
             SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6, $7 FROM messages WHERE meeting_id = $2 \
             ON CONFLICT (meeting_id, sender_id, client_msg_id) DO NOTHING \
             RETURNING seq",
        )
        .bind(&id)
        .bind(&m.meeting_id)
        .bind(m.sender.as_str())
        .bind(&m.sender_name)
        .bind(&m.text)
        .bind(&m.client_msg_id)
        .bind(m.now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match inserted {
            Some((seq,)) => (m.stored_as(id, seq), false),
            None => {
                let row: Row = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE meeting_id = $1 AND sender_id = $2 AND client_msg_id = $3"
                ))
                .bind(&m.meeting_id)
                .bind(m.sender.as_str())
                .bind(&m.client_msg_id)
                .fetch_one(&mut *tx)
                .await?;
                (row.into(), true)
            }
        };
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// The values once each, in first-seen order.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = std::collections::HashSet::new();
    values.filter(|v| seen.insert(*v)).collect()
}

/// `$from, $from+1, …` for `count` parameters.
fn placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
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
