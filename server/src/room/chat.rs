//! Chat storage: a message is committed, with the next `seq` of its meeting, before anyone
//! sees it; a retried `client_msg_id` returns the stored message instead of a second copy.

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

/// Stores the messages in one transaction, in order; a retried `client_msg_id` returns the
/// message stored the first time.
async fn store_batch(
    pool: &AnyPool,
    messages: &[&NewMessage],
) -> sqlx::Result<Vec<(ChatMessage, bool)>> {
    let mut tx = crate::db::begin_write(pool).await?;
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
        .fetch_optional(&mut **tx)
        .await?;
        let outcome = match inserted {
            Some((seq,)) => (
                ChatMessage {
                    id,
                    seq,
                    sender: m.sender.clone(),
                    sender_name: m.sender_name.clone(),
                    text: m.text.clone(),
                    at_ms: m.now_ms,
                },
                false,
            ),
            None => {
                let row: Row = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE meeting_id = $1 AND sender_id = $2 AND client_msg_id = $3"
                ))
                .bind(&m.meeting_id)
                .bind(m.sender.as_str())
                .bind(&m.client_msg_id)
                .fetch_one(&mut **tx)
                .await?;
                (row.into(), true)
            }
        };
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
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
