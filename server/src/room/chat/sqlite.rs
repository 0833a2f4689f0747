//! The chat writer on SQLite: a thread of its own with a connection of its own (rusqlite), its
//! three statements prepared once and kept.
//!
//! Through sqlx, each statement of a batch was a round trip to the connection's worker thread
//! (a channel each way, a wake-up each way, every returned row a message of its own), and the
//! batch statements were parsed afresh each time (their text changed with the batch's size).
//! The signaling benchmark found that thread at 46 % of the server's CPU at 2,000 messages a
//! second (`perf`, issue 18). Here a batch is one wake-up of this thread, statements bound and
//! stepped in place, and one wake-up of each room it answers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parley_shared::signal::ChatMessage;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use tokio::sync::mpsc;

use super::{Job, NewMessage, BUSY_WITHIN, LINGER, MAX_BATCH};

/// The writer connection's page cache, KiB: room for the pages a busy server's chat lands on
/// (the last leaf of each meeting in the two indexes, the table's last leaf, the meetings and
/// users looked up for their foreign keys: 500 meetings × 3 × 4 KiB ≈ 6 MiB).
const CACHE_KIB: i64 = 8192;
/// How long the connection waits for a lock SQLite holds elsewhere (a checkpoint, say)
/// before the batch fails: sqlx's default for the pool, too.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the writer thread for the database file at `path`. It ends when every sender of
/// `rx` is gone, after storing what they sent.
pub(super) fn start(path: PathBuf, rx: mpsc::Receiver<Job>) {
    let spawned = std::thread::Builder::new()
        .name("parley-chat".into())
        .spawn(move || write_loop(&path, rx));
    if let Err(e) = spawned {
        // Without the thread every message fails at once (its sender sees an error), as when
        // the database cannot be opened: the rest of the server goes on.
        tracing::error!(error = %e, "the chat writer could not start");
    }
}

fn write_loop(path: &Path, mut rx: mpsc::Receiver<Job>) {
    #[cfg(feature = "bench-unstored-chat")]
    tracing::warn!(
        "built with the bench-unstored-chat feature: chat messages are numbered but NOT STORED"
    );
    #[cfg(feature = "bench-unstored-chat")]
    let mut unstored_seq = HashMap::new();
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut last_commit = Instant::now() - BUSY_WITHIN;
    // Opened when first needed and again after an error (it may be what failed).
    let mut conn: Option<Connection> = None;
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        // Under load, let a batch gather for a moment: each commit costs a WAL write and an
        // fsync whatever its size, and each message in it still waits for the commit. A quiet
        // writer commits at once.
        if last_commit.elapsed() < BUSY_WITHIN {
            std::thread::sleep(LINGER);
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let messages: Vec<&NewMessage> = batch.iter().map(|j| &j.message).collect();
        #[cfg(not(feature = "bench-unstored-chat"))]
        let stored = store_on(path, &mut conn, &messages);
        #[cfg(feature = "bench-unstored-chat")]
        let stored = number_unstored(&mut unstored_seq, &messages);
        drop(messages);
        last_commit = Instant::now();
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
                    let outcome = store_on(path, &mut conn, &[&job.message])
                        .map(|mut v| v.remove(0))
                        .map_err(|e| e.to_string());
                    (job.done)(outcome);
                }
            }
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    // The file exists: the server created it and ran its migrations before any chat.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // As sqlx sets them on the pool's connections (`synchronous` stays SQLite's FULL: a
    // message is on disk when its sender is told it is stored).
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    Ok(conn)
}

/// [`store_batch`] on the writer's connection, opening it first if needed. After an error
/// the connection is let go and the next batch opens another.
fn store_on(
    path: &Path,
    conn: &mut Option<Connection>,
    messages: &[&NewMessage],
) -> rusqlite::Result<Vec<(ChatMessage, bool)>> {
    let open = match conn {
        Some(open) => open,
        None => conn.insert(open(path)?),
    };
    let stored = store_batch(open, messages);
    if stored.is_err() {
        *conn = None;
    }
    stored
}

/// Stores the messages in one transaction, in order, each with the next `seq` of its meeting;
/// a retried `client_msg_id` (from an earlier batch or this one) returns the message stored the
/// first time and takes no number. The write turn is held from `BEGIN IMMEDIATE` to the
/// commit: nothing else writes in between, so the numbering stays gap-free.
fn store_batch(
    conn: &mut Connection,
    messages: &[&NewMessage],
) -> rusqlite::Result<Vec<(ChatMessage, bool)>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let _turn = crate::db::write_turn_blocking();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(messages.len());
    {
        let mut last_seq_of =
            tx.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE meeting_id = ?1")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (id, meeting_id, seq, sender_id, sender_name, body, client_msg_id, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (meeting_id, sender_id, client_msg_id) DO NOTHING",
        )?;
        let mut stored_before = tx.prepare_cached(
            "SELECT id, seq, sender_name, body, created_at FROM messages \
             WHERE meeting_id = ?1 AND sender_id = ?2 AND client_msg_id = ?3",
        )?;
        let mut last_seq: HashMap<&str, i64> = HashMap::new();
        for m in messages {
            let last = match last_seq.get(m.meeting_id.as_str()) {
                Some(&seq) => seq,
                None => last_seq_of.query_row([&m.meeting_id], |r| r.get(0))?,
            };
            let message = m.stored_as(ulid::Ulid::new().to_string(), last + 1);
            let inserted = insert.execute(params![
                message.id,
                m.meeting_id,
                message.seq,
                m.sender.as_str(),
                m.sender_name,
                m.text,
                m.client_msg_id,
                m.now_ms,
            ])?;
            if inserted == 1 {
                last_seq.insert(&m.meeting_id, message.seq);
                outcomes.push((message, false));
                continue;
            }
            last_seq.insert(&m.meeting_id, last);
            // The insert met this key, so the row is there.
            let before = stored_before.query_row(
                params![m.meeting_id, m.sender.as_str(), m.client_msg_id],
                |r| {
                    Ok(ChatMessage {
                        id: r.get(0)?,
                        seq: r.get(1)?,
                        sender: m.sender.clone(),
                        sender_name: r.get(2)?,
                        guest: m.guest,
                        text: r.get(3)?,
                        at_ms: r.get(4)?,
                    })
                },
            )?;
            outcomes.push((before, true));
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

/// The `bench-unstored-chat` build's writer: every step of [`write_loop`] but the SQL. Each
/// message gets its meeting's next number (counted from 0 in this process in `last_seq`, not
/// read from the database) and a fresh id, so the rooms relay and acknowledge exactly what they
/// would after a commit. For measuring what storage costs (scripts/bench-signaling-unstored.sh)
/// and nothing else.
#[cfg(feature = "bench-unstored-chat")]
fn number_unstored(
    last_seq: &mut HashMap<String, i64>,
    messages: &[&NewMessage],
) -> rusqlite::Result<Vec<(ChatMessage, bool)>> {
    Ok(messages
        .iter()
        .map(|m| {
            let seq = last_seq.entry(m.meeting_id.clone()).or_insert(0);
            *seq += 1;
            (m.stored_as(ulid::Ulid::new().to_string(), *seq), false)
        })
        .collect())
}
