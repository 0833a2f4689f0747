//! Chat storage: a message is committed, with the next `seq` of its meeting, before anyone
//! sees it; a retried `client_msg_id` returns the stored message instead of a second copy.

use std::collections::HashMap;

use parley_shared::signal::ChatMessage;
use parley_shared::UserId;
use sqlx::AnyPool;
use tokio::sync::mpsc;

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

/// A message to store, as the room hands it over.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub meeting_id: String,
    pub sender: UserId,
    pub sender_name: String,
    pub client_msg_id: String,
    pub text: String,
    pub now_ms: i64,
}

/// What became of a [`NewMessage`]: the stored message and whether it was already stored
/// (a retry), or the error that kept it out.
pub type Outcome = Result<(ChatMessage, bool), String>;

/// How many waiting messages one transaction takes at most.
const MAX_BATCH: usize = 512;
/// Messages waiting for the writer before rooms wait to hand over more.
const WRITER_QUEUE: usize = 8192;

struct Job {
    message: NewMessage,
    done: Box<dyn FnOnce(Outcome) + Send>,
}

/// Group commit: one writer task stores chat for every room. Whatever is waiting when it
/// begins goes into one transaction, so a burst costs one commit (one fsync on SQLite)
/// instead of one each; every message is still committed before its sender is acknowledged
/// and before anyone else sees it. Before, each message was its own transaction and the
/// signaling benchmark saturated at a few thousand messages per second on this disk.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on the current Tokio runtime.
    pub fn start(pool: AnyPool) -> Self {
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        tokio::spawn(write_loop(pool, rx));
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

async fn write_loop(pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let messages: Vec<&NewMessage> = batch.iter().map(|j| &j.message).collect();
        let stored = store_batch(&pool, &messages).await;
        drop(messages);
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
                    let outcome = store_batch(&pool, &[&job.message])
                        .await
                        .map(|mut v| v.remove(0))
                        .map_err(|e| e.to_string());
                    (job.done)(outcome);
                }
            }
        }
    }
}

/// Stores the messages in one transaction, in order, with one multi-row insert; a retried
/// `client_msg_id` returns the message stored the first time.
///
/// Three statements per batch, whatever its size: which of the messages were stored before,
/// the last `seq` of each meeting, and the insert of the new ones with the next `seq`s. Inside
/// the write transaction nothing else writes (SQLite takes turns; on PostgreSQL a concurrent
/// writer would break a unique constraint, fail the batch, and the writer stores the messages
/// one by one, reading again), so the numbering stays gap-free.
async fn store_batch(
    pool: &AnyPool,
    messages: &[&NewMessage],
) -> sqlx::Result<Vec<(ChatMessage, bool)>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = crate::db::begin_write(pool).await?;
    let meetings = distinct(messages.iter().map(|m| m.meeting_id.as_str()));
    let senders = distinct(messages.iter().map(|m| m.sender.as_str()));
    let client_ids = distinct(messages.iter().map(|m| m.client_msg_id.as_str()));

    // Retries: the three lists together may name more rows than asked; the key picks them.
    let sql = format!(
        "SELECT {COLUMNS}, meeting_id, client_msg_id FROM messages \
         WHERE meeting_id IN ({}) AND sender_id IN ({}) AND client_msg_id IN ({})",
        placeholders(1, meetings.len()),
        placeholders(1 + meetings.len(), senders.len()),
        placeholders(1 + meetings.len() + senders.len(), client_ids.len()),
    );
    let mut query = sqlx::query_as::<_, StoredRow>(&sql);
    for value in meetings.iter().chain(&senders).chain(&client_ids) {
        query = query.bind(*value);
    }
    let mut known: HashMap<(String, String, String), ChatMessage> = query
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| {
            let key = (r.meeting_id, r.row.sender_id.clone(), r.client_msg_id);
            (key, r.row.into())
        })
        .collect();

    let sql = format!(
        "SELECT meeting_id, COALESCE(MAX(seq), 0) FROM messages WHERE meeting_id IN ({}) GROUP BY meeting_id",
        placeholders(1, meetings.len())
    );
    let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
    for m in &meetings {
        query = query.bind(*m);
    }
    let mut last_seq: HashMap<String, i64> =
        query.fetch_all(&mut **tx).await?.into_iter().collect();

    let mut outcomes = Vec::with_capacity(messages.len());
    let mut fresh = Vec::new();
    for m in messages {
        let key = (
            m.meeting_id.clone(),
            m.sender.as_str().to_string(),
            m.client_msg_id.clone(),
        );
        if let Some(before) = known.get(&key) {
            outcomes.push((before.clone(), true));
            continue;
        }
        let seq = last_seq.entry(m.meeting_id.clone()).or_insert(0);
        *seq += 1;
        let message = ChatMessage {
            id: ulid::Ulid::new().to_string(),
            seq: *seq,
            sender: m.sender.clone(),
            sender_name: m.sender_name.clone(),
            text: m.text.clone(),
            at_ms: m.now_ms,
        };
        // A second copy within this batch is a retry of the first.
        known.insert(key, message.clone());
        fresh.push((message.clone(), *m));
        outcomes.push((message, false));
    }

    if !fresh.is_empty() {
        const COLUMNS_IN: usize = 8;
        let rows: Vec<String> = (0..fresh.len())
            .map(|i| format!("({})", placeholders(1 + i * COLUMNS_IN, COLUMNS_IN)))
            .collect();
        let sql = format!(
            "INSERT INTO messages (id, meeting_id, seq, sender_id, sender_name, body, client_msg_id, created_at) VALUES {}",
            rows.join(", ")
        );
        let mut insert = sqlx::query(&sql);
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
        insert.execute(&mut **tx).await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// A stored row with the rest of its key.
#[derive(sqlx::FromRow)]
struct StoredRow {
    #[sqlx(flatten)]
    row: Row,
    meeting_id: String,
    client_msg_id: String,
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
