//! The chat writer on SQLite: a thread of its own with a connection of its own (rusqlite), its
//! three statements prepared once and kept.
//!
//! Through sqlx, each statement of a batch was a round trip to the connection's worker thread
//! (a channel each way, a wake-up each way, every returned row a message of its own), and the
//! batch statements were parsed afresh each time (their text changed with the batch's size).
//! The signaling benchmark found that thread at 46 % of the server's CPU at 2,000 messages a
//! second (`perf`, issue 18). Here a batch is one wake-up of this thread, statements bound and
//! stepped in place, and one wake-up of each room it answers.
//!
//! Messages are committed to an inbox table without indexes and moved into `messages` every
//! few seconds ([`Store`]): the commit that each sender waits for writes a page or two to the
//! WAL instead of two index leaves per message.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parley_shared::signal::ChatMessage;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension as _, TransactionBehavior};
use tokio::sync::mpsc;

use super::{Job, NewMessage, BUSY_WITHIN, LINGER, MAX_BATCH};

/// The writer connection's page cache, KiB: room for the pages a busy server's chat lands on
/// (the last leaf of each meeting in the two indexes, the table's last leaf, the meetings and
/// users looked up for their foreign keys: 500 meetings × 3 × 4 KiB ≈ 6 MiB).
const CACHE_KIB: i64 = 8192;
/// WAL pages after which this connection's commit checkpoints: four times SQLite's default.
/// A checkpoint writes each page once however often it changed since the last, and a busy
/// server's chat changes the same few hundred pages (each meeting's index leaves) again and
/// again.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 4000;
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
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut last_commit = Instant::now() - BUSY_WITHIN;
    let mut store = Store::new(path);
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
        let stored = store.store(&messages);
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
                    let outcome = store
                        .store(&[&job.message])
                        .map(|mut v| v.remove(0))
                        .map_err(|e| e.to_string());
                    (job.done)(outcome);
                }
            }
        }
        // After the senders are answered: a move is no message's wait but the next batch's.
        store.move_if_due();
    }
    store.move_inbox();
}

/// A retried message's key: meeting, sender, the sender's id for the message.
type Key = (String, String, String);

/// The writer's connection and what it knows of the inbox (`chat_inbox`, migration 7): chat is
/// committed there, an append-only table without indexes, so a commit writes a page or two
/// whatever the number of meetings in its batch; every [`MOVE_EVERY`] (or [`MOVE_ROWS`]) the
/// rows move into `messages` in one transaction, each meeting's index leaves written once for
/// all its messages since the move before. Readers look at both tables (`chat::after`).
///
/// The writer is the inbox's only writer, so what it holds is known here: every row's key
/// (for retries, which the inbox has no index to find) and every inbox meeting's last `seq`.
struct Store {
    path: PathBuf,
    /// Opened when first needed and again after an error (it may be what failed).
    conn: Option<Connection>,
    /// The last `seq` of every meeting with rows in the inbox, and of others numbered since.
    last_seq: HashMap<String, i64>,
    /// The messages in the inbox, by key.
    inbox: HashMap<Key, ChatMessage>,
    moved_at: Instant,
}

/// Rows the inbox takes before they are moved, whatever the time.
const MOVE_ROWS: usize = 8192;
/// How long rows stay in the inbox while chat goes on. Longer: fewer index pages written
/// (a meeting's leaf once per move), but more rows for a reader to scan in the inbox.
const MOVE_EVERY: Duration = Duration::from_secs(2);

impl Store {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            conn: None,
            last_seq: HashMap::new(),
            inbox: HashMap::new(),
            moved_at: Instant::now(),
        }
    }

    /// Stores a batch (see [`store_batch`]), opening the connection first if needed. After an
    /// error the connection is let go and the next batch opens another.
    fn store(&mut self, messages: &[&NewMessage]) -> rusqlite::Result<Vec<(ChatMessage, bool)>> {
        if self.conn.is_none() {
            let mut conn = open(&self.path)?;
            // What an earlier run (or connection) left in the inbox moves first: what is
            // known of the inbox here starts empty.
            move_rows(&mut conn)?;
            self.last_seq.clear();
            self.inbox.clear();
            self.moved_at = Instant::now();
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else {
            unreachable!("opened above")
        };
        let stored = store_batch(conn, &mut self.last_seq, &mut self.inbox, messages);
        if stored.is_err() {
            self.conn = None;
        }
        stored
    }

    fn move_if_due(&mut self) {
        if self.inbox.len() >= MOVE_ROWS || self.moved_at.elapsed() >= MOVE_EVERY {
            self.move_inbox();
        }
    }

    /// Moves the inbox into `messages`. On failure the rows stay where they are (readers
    /// find them there) and the next connection moves them.
    fn move_inbox(&mut self) {
        self.moved_at = Instant::now();
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        match move_rows(conn) {
            Ok(_) => {
                // Retries of moved messages are found in `messages` by its index. Numbering
                // is kept for meetings active since the last move (the rest is looked up
                // again when they next chat): the map does not grow with every meeting.
                let active: std::collections::HashSet<&str> =
                    self.inbox.keys().map(|(meeting, _, _)| meeting.as_str()).collect();
                self.last_seq.retain(|meeting, _| active.contains(meeting.as_str()));
                self.inbox.clear();
            }
            Err(e) => {
                tracing::warn!(error = %e, "moving chat out of the inbox failed; retrying on a new connection");
                self.conn = None;
            }
        }
    }
}

/// One transaction: every inbox row into `messages`, in the order committed, and the inbox
/// emptied. A row already in `messages` (it cannot be, but a move must never stick on one)
/// is dropped.
fn move_rows(conn: &mut Connection) -> rusqlite::Result<usize> {
    let _turn = crate::db::write_turn_blocking();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached(
        "INSERT INTO messages (id, meeting_id, seq, sender_id, sender_name, body, client_msg_id, created_at) \
         SELECT id, meeting_id, seq, sender_id, sender_name, body, client_msg_id, created_at \
         FROM chat_inbox WHERE true ORDER BY rowid \
         ON CONFLICT DO NOTHING",
    )?
    .execute([])?;
    let moved = tx.prepare_cached("DELETE FROM chat_inbox")?.execute([])?;
    tx.commit()?;
    Ok(moved)
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
    // A statement's undo journal in memory: the inbox's move spilled it to a temporary file
    // (a page and a page number written for each page the move touched).
    conn.pragma_update(None, "temp_store", "memory")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    Ok(conn)
}

/// Stores the messages in one transaction in the inbox, in order, each with the next `seq` of
/// its meeting; a retried `client_msg_id` (from an earlier batch or this one, in the inbox or
/// in `messages`) returns the message stored the first time and takes no number. The write
/// turn is held from `BEGIN IMMEDIATE` to the commit: nothing else writes in between. What
/// the batch adds to `last_seq` and `inbox` is kept only once it commits.
fn store_batch(
    conn: &mut Connection,
    last_seq: &mut HashMap<String, i64>,
    inbox: &mut HashMap<Key, ChatMessage>,
    messages: &[&NewMessage],
) -> rusqlite::Result<Vec<(ChatMessage, bool)>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let _turn = crate::db::write_turn_blocking();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(messages.len());
    let mut numbered: HashMap<&str, i64> = HashMap::new();
    let mut added: HashMap<Key, ChatMessage> = HashMap::new();
    {
        // Only `messages`: a meeting with rows in the inbox is in `last_seq` (see `Store`).
        let mut last_seq_of =
            tx.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE meeting_id = ?1")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO chat_inbox (id, meeting_id, seq, sender_id, sender_name, body, client_msg_id, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut stored_before = tx.prepare_cached(
            "SELECT id, seq, sender_name, body, created_at FROM messages \
             WHERE meeting_id = ?1 AND sender_id = ?2 AND client_msg_id = ?3",
        )?;
        for m in messages {
            let key = (
                m.meeting_id.clone(),
                m.sender.0.clone(),
                m.client_msg_id.clone(),
            );
            if let Some(before) = added.get(&key).or_else(|| inbox.get(&key)) {
                outcomes.push((before.clone(), true));
                continue;
            }
            let before = stored_before
                .query_row(
                    params![m.meeting_id, m.sender.as_str(), m.client_msg_id],
                    |r| {
                        Ok(ChatMessage {
                            id: r.get(0)?,
                            seq: r.get(1)?,
                            sender: m.sender.clone(),
                            sender_name: r.get(2)?,
                            text: r.get(3)?,
                            at_ms: r.get(4)?,
                        })
                    },
                )
                .optional()?;
            if let Some(before) = before {
                outcomes.push((before, true));
                continue;
            }
            let last = match numbered
                .get(m.meeting_id.as_str())
                .or_else(|| last_seq.get(&m.meeting_id))
            {
                Some(&seq) => seq,
                None => last_seq_of.query_row([&m.meeting_id], |r| r.get(0))?,
            };
            let message = ChatMessage {
                id: ulid::Ulid::new().to_string(),
                seq: last + 1,
                sender: m.sender.clone(),
                sender_name: m.sender_name.clone(),
                text: m.text.clone(),
                at_ms: m.now_ms,
            };
            insert.execute(params![
                message.id,
                m.meeting_id,
                message.seq,
                m.sender.as_str(),
                m.sender_name,
                m.text,
                m.client_msg_id,
                m.now_ms,
            ])?;
            numbered.insert(&m.meeting_id, message.seq);
            added.insert(key, message.clone());
            outcomes.push((message, false));
        }
    }
    tx.commit()?;
    for (meeting, seq) in numbered {
        last_seq.insert(meeting.to_owned(), seq);
    }
    inbox.extend(added);
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_shared::UserId;

    /// A migrated database file with one user and two meetings.
    async fn database() -> (tempfile::TempDir, PathBuf, crate::db::Db) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("parley.db");
        let db = crate::db::Db::connect(&crate::db::sqlite_url(&path))
            .await
            .unwrap();
        for sql in [
            "INSERT INTO users (id, username, email, email_key, password_hash, created_at) VALUES ('u1', 'ann', 'ann@example.com', 'ann@example.com', 'x', 0)",
            "INSERT INTO meetings (id, code, title, host_id, created_at) VALUES ('m1', 'abc-defg-hij', 'Standup', 'u1', 0)",
            "INSERT INTO meetings (id, code, title, host_id, created_at) VALUES ('m2', 'abc-defg-hik', 'Retro', 'u1', 0)",
        ] {
            sqlx::query(sql).execute(&db.pool).await.unwrap();
        }
        (dir, path, db)
    }

    fn message(meeting: &str, client_msg_id: &str, text: &str) -> NewMessage {
        NewMessage {
            meeting_id: meeting.into(),
            sender: UserId("u1".into()),
            sender_name: "Ann".into(),
            client_msg_id: client_msg_id.into(),
            text: text.into(),
            now_ms: 10,
        }
    }

    async fn rows(db: &crate::db::Db, table: &str) -> Vec<(String, i64, String)> {
        sqlx::query_as(&format!(
            "SELECT meeting_id, seq, body FROM {table} ORDER BY rowid"
        ))
        .fetch_all(&db.pool)
        .await
        .unwrap()
    }

    /// Committed chat sits in the inbox, where readers and retries find it; a move takes it
    /// all into `messages` in order, and after the move retries and numbering go on as if it
    /// had always been there.
    #[tokio::test]
    async fn the_inbox_is_read_retried_and_moved_without_losing_or_renumbering() {
        let (_dir, path, db) = database().await;
        let (store, first) = tokio::task::spawn_blocking(move || {
            let mut store = Store::new(&path);
            let batch = [
                message("m1", "a", "one"),
                message("m2", "b", "two"),
                message("m1", "c", "three"),
                message("m1", "a", "one again"),
            ];
            let out = store.store(&batch.iter().collect::<Vec<_>>()).unwrap();
            (store, out)
        })
        .await
        .unwrap();
        let seen: Vec<(i64, bool)> = first.iter().map(|(m, again)| (m.seq, *again)).collect();
        assert_eq!(seen, [(1, false), (1, false), (2, false), (1, true)]);
        assert_eq!(rows(&db, "messages").await, []);
        assert_eq!(rows(&db, "chat_inbox").await.len(), 3);
        // Readers see the inbox.
        let history = super::super::after(&db.pool, "m1", 0, 10).await.unwrap();
        let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["one", "three"]);
        assert_eq!(super::super::last_seq(&db.pool, "m1").await.unwrap(), 2);
        assert_eq!(super::super::count_stored(&db.pool).await.unwrap(), 3);

        let (mut store, second) = tokio::task::spawn_blocking(move || {
            let mut store = store;
            store.move_inbox();
            let batch = [message("m1", "c", "three again"), message("m1", "d", "four")];
            let out = store.store(&batch.iter().collect::<Vec<_>>()).unwrap();
            (store, out)
        })
        .await
        .unwrap();
        let seen: Vec<(i64, &str, bool)> = second
            .iter()
            .map(|(m, again)| (m.seq, m.text.as_str(), *again))
            .collect();
        assert_eq!(seen, [(2, "three", true), (3, "four", false)]);
        assert_eq!(
            rows(&db, "messages").await,
            [
                ("m1".into(), 1, "one".into()),
                ("m2".into(), 1, "two".into()),
                ("m1".into(), 2, "three".into())
            ]
        );
        assert_eq!(rows(&db, "chat_inbox").await, [("m1".into(), 3, "four".into())]);
        let history = super::super::after(&db.pool, "m1", 1, 10).await.unwrap();
        let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["three", "four"]);
        tokio::task::spawn_blocking(move || store.move_inbox())
            .await
            .unwrap();
        assert_eq!(rows(&db, "chat_inbox").await, []);
        assert_eq!(super::super::count_stored(&db.pool).await.unwrap(), 4);
        db.close().await;
    }

    /// What a killed server left in the inbox is moved when the next writer opens, and that
    /// writer still knows those messages' retries and numbers after them.
    #[tokio::test]
    async fn a_killed_servers_inbox_is_moved_at_the_next_start_and_still_known() {
        let (_dir, path, db) = database().await;
        let again = path.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = Store::new(&path);
            let batch = [message("m1", "a", "one"), message("m1", "b", "two")];
            store.store(&batch.iter().collect::<Vec<_>>()).unwrap();
            // Dropped without a move, as a SIGKILL would leave it.
        })
        .await
        .unwrap();
        assert_eq!(rows(&db, "chat_inbox").await.len(), 2);
        let out = tokio::task::spawn_blocking(move || {
            let mut store = Store::new(&again);
            let batch = [message("m1", "b", "two"), message("m1", "c", "three")];
            store.store(&batch.iter().collect::<Vec<_>>()).unwrap()
        })
        .await
        .unwrap();
        let seen: Vec<(i64, bool)> = out.iter().map(|(m, again)| (m.seq, *again)).collect();
        assert_eq!(seen, [(2, true), (3, false)]);
        assert_eq!(rows(&db, "messages").await.len(), 2);
        assert_eq!(rows(&db, "chat_inbox").await, [("m1".into(), 3, "three".into())]);
        db.close().await;
    }
}
