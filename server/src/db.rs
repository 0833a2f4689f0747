//! Database connection and migrations for both backends through sqlx's `Any` driver.
//!
//! Queries are written once, with `$n` placeholders that SQLite and PostgreSQL both accept.
//! Columns stay within the types `Any` carries: TEXT, BIGINT (times as UTC epoch
//! milliseconds, flags as 0/1). Each backend has its own migration folder.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, ConnectOptions as _};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Connections kept by the pool on PostgreSQL.
const MAX_CONNECTIONS: u32 = 16;
/// Connections kept by the pool on SQLite, all open from the start. SQLite writes one at a
/// time and answers Parley's reads in microseconds, so more would only add memory (a page
/// cache and a worker thread each): the soak saw the server's memory creep up for minutes
/// as sixteen caches filled one by one.
const SQLITE_CONNECTIONS: u32 = 8;
/// How long a request waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite's page cache per pooled connection, KiB (SQLite's default is 2,000). Every
/// connection fills its own as the database grows, so the pool's share of the server's
/// memory is this times [`SQLITE_CONNECTIONS`]; what misses is read from the OS's page cache.
const SQLITE_CACHE_KIB: u32 = 1024;
/// Which database engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database pool with its backend.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

/// The database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
}

impl Db {
    /// Opens the database, creating a SQLite file if needed, and runs pending migrations.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl);
        };
        if backend == Backend::Sqlite {
            if let Some(parent) = sqlite_path(url).and_then(|p| p.parent().map(|d| d.to_owned())) {
                crate::config::create_private_dir(&parent)?;
            }
        }
        // Statement logging would put SQL with its parameters at INFO; keep it at TRACE.
        let options = AnyConnectOptions::from_str(url)?
            .log_statements(log::LevelFilter::Trace)
            .log_slow_statements(log::LevelFilter::Warn, Duration::from_millis(500));
        // SQLite's connections are opened at start (each is a file handle and a worker thread
        // in sqlx): the server's threads and memory do not creep up as load first reaches them.
        // A PostgreSQL server is shared with other Parley servers: connect when needed.
        let (min_connections, max_connections) = match backend {
            Backend::Sqlite => (SQLITE_CONNECTIONS, SQLITE_CONNECTIONS),
            Backend::Postgres => (0, MAX_CONNECTIONS),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(min_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::query(&format!("PRAGMA cache_size = -{SQLITE_CACHE_KIB}"))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        if backend == Backend::Sqlite {
            // WAL is persistent in the file: readers never block the writer.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        Ok(Self { pool, backend })
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes every connection, waiting for ongoing queries.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The SQLite URL for a file, created if missing. The path is percent-encoded where the URL
/// would misread it (`%`, `?`, `#`, spaces): a Windows path such as
/// `C:\Users\Ann Smith\AppData\…` or a macOS one under `Application Support` comes back
/// out of sqlx exactly. `sqlite:PATH`, not `sqlite://PATH`: sqlx's `Any` driver parses the URL
/// as a URL first, and after `//` a drive letter is a host (`C:\Users` came back as
/// `C/\Users`, a file SQLite cannot open: found when the server first ran under Wine).
pub fn sqlite_url(path: &std::path::Path) -> String {
    const PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b'%')
        .add(b'?')
        .add(b'#')
        .add(b' ');
    let encoded = percent_encoding::percent_encode(path.as_os_str().as_encoded_bytes(), PATH);
    format!("sqlite:{encoded}?mode=rwc")
}

/// The file a SQLite URL names, as sqlx reads it (None: in memory, or not a SQLite URL).
pub(crate) fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    let memory =
        path.as_os_str().is_empty() || path.to_string_lossy().starts_with("file:sqlx-in-memory");
    (!memory).then(|| path.to_owned())
}

/// A transaction that writes: on SQLite, it holds the process's one write turn until it ends.
pub struct WriteTx<'c> {
    tx: sqlx::Transaction<'c, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<'c> std::ops::Deref for WriteTx<'c> {
    type Target = sqlx::Transaction<'c, sqlx::Any>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl WriteTx<'_> {
    pub async fn commit(self) -> sqlx::Result<()> {
        self.tx.commit().await
    }

    /// Undoes the transaction and gives the write turn back.
    pub async fn rollback(self) -> sqlx::Result<()> {
        self.tx.rollback().await
    }
}

/// The process's one write turn on SQLite, taken in order by every writer: the pool's
/// transactions ([`begin_write`]) and the chat writer's thread ([`write_turn_blocking`]).
fn turn() -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static TURN: std::sync::OnceLock<std::sync::Arc<tokio::sync::Mutex<()>>> =
        std::sync::OnceLock::new();
    TURN.get_or_init(Default::default).clone()
}

async fn write_turn() -> tokio::sync::OwnedMutexGuard<()> {
    turn().lock_owned().await
}

/// The write turn for a thread outside the runtime (the chat writer's): blocks until it is
/// this thread's. Never call it from a task.
pub fn write_turn_blocking() -> tokio::sync::OwnedMutexGuard<()> {
    turn().blocking_lock_owned()
}

/// Begins a transaction that writes. SQLite allows one writer at a time: writers take turns
/// here, in order, and then begin with the write lock held (`BEGIN IMMEDIATE`). Before, a
/// deferred transaction that read first failed with SQLITE_BUSY when another connection
/// committed in between (under the signaling benchmark's chat load, one message in ten was
/// refused), and writers queued in SQLite's busy handler, which sleeps up to 100 ms a try.
pub async fn begin_write(pool: &AnyPool) -> sqlx::Result<WriteTx<'static>> {
    if pool.connect_options().database_url.scheme() != "sqlite" {
        return Ok(WriteTx {
            tx: pool.begin().await?,
            _turn: None,
        });
    }
    let turn = write_turn().await;
    Ok(WriteTx {
        tx: pool.begin_with("BEGIN IMMEDIATE").await?,
        _turn: Some(turn),
    })
}

/// A connection outside the pool for one task that writes all the time (the chat writer's on
/// PostgreSQL; on SQLite it has a thread and a connection of its own, `room::chat::sqlite`).
/// Not the pool's: it would wait for this one when closing.
pub async fn writer_connection(pool: &AnyPool) -> sqlx::Result<AnyConnection> {
    pool.connect_options().connect().await
}

/// True if the error is a unique-constraint violation (both backends).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn sqlite_files_in_windows_and_macos_locations_survive_the_url() {
        for path in [
            r"C:\Users\Ann Smith\AppData\Local\Parley\parley.db",
            r"C:\Users\100%\AppData\Local\Parley\parley.db",
            // Unencoded, sqlx would read "%41" as "A" and "why?" as the start of parameters.
            r"C:\Users\ann\%41pps\Parley\parley.db",
            r"\\server\share\Parley#1\parley.db",
            "/Users/ann/Library/Application Support/Parley/parley.db",
            "/home/ann/.local/share/parley/why?/parley.db",
        ] {
            let url = sqlite_url(Path::new(path));
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap();
            assert_eq!(options.get_filename(), Path::new(path), "{url}");
            // The way Db::connect opens it: through the Any driver, which parses a URL first.
            let any = sqlx::any::AnyConnectOptions::from_str(&url).unwrap();
            let options = sqlx::sqlite::SqliteConnectOptions::from_url(&any.database_url).unwrap();
            assert_eq!(
                options.get_filename(),
                Path::new(path),
                "through Any: {url}"
            );
            assert_eq!(sqlite_path(&url).as_deref(), Some(Path::new(path)), "{url}");
        }
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    #[tokio::test]
    async fn a_data_dir_with_spaces_and_percent_signs_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join("Application Support 100%")
            .join("parley.db");
        let db = Db::connect(&sqlite_url(&path)).await.unwrap();
        assert!(db.ping().await);
        db.close().await;
        assert!(path.exists(), "the file is where the path says");
    }

    /// Every pooled SQLite connection is opened at start and has the bounded page cache, not
    /// SQLite's default: the server's memory and threads must not creep up with the load and
    /// the database (the soak, issue 18).
    #[tokio::test]
    async fn sqlite_connections_open_at_start_with_the_bounded_page_cache() {
        use sqlx::Row as _;
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&sqlite_url(&dir.path().join("parley.db")))
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while db.pool.size() < SQLITE_CONNECTIONS {
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {SQLITE_CONNECTIONS} connections open after 10 s",
                db.pool.size()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut held = Vec::new();
        for _ in 0..SQLITE_CONNECTIONS {
            let mut conn = db.pool.acquire().await.unwrap();
            let row = sqlx::query("PRAGMA cache_size")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(row.get::<i64, _>(0), -i64::from(SQLITE_CACHE_KIB));
            held.push(conn);
        }
        assert_eq!(
            db.pool.size(),
            SQLITE_CONNECTIONS,
            "no connection beyond the pool's"
        );
        drop(held);
        db.close().await;
    }

    /// Chat stored before messages were keyed by rowid (migration 6) is all there after the
    /// upgrade, in order, and the chat writer goes on numbering after it and still knows a
    /// retried message stored before.
    #[tokio::test]
    async fn chat_history_survives_the_rowid_migration_and_numbering_goes_on() {
        use crate::room::chat;
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_url(&dir.path().join("parley.db"));
        let before = sqlx::migrate::Migrator {
            migrations: SQLITE_MIGRATIONS
                .iter()
                .filter(|m| m.version < 6)
                .cloned()
                .collect::<Vec<_>>()
                .into(),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        let old = AnyPool::connect(&url).await.unwrap();
        before.run(&old).await.unwrap();
        for sql in [
            "INSERT INTO users (id, username, email, email_key, password_hash, created_at) VALUES ('u1', 'ann', 'ann@example.com', 'ann@example.com', 'x', 0)",
            "INSERT INTO meetings (id, code, title, host_id, created_at) VALUES ('m1', 'abc-defg-hij', 'Standup', 'u1', 0)",
            "INSERT INTO messages (id, meeting_id, seq, sender_id, sender_name, body, client_msg_id, created_at) VALUES ('01A', 'm1', 1, 'u1', 'Ann', 'first', 'c1', 10)",
            "INSERT INTO messages (id, meeting_id, seq, sender_id, sender_name, body, client_msg_id, created_at) VALUES ('01B', 'm1', 2, 'u1', 'Ann', 'second', 'c2', 20)",
        ] {
            sqlx::query(sql).execute(&old).await.unwrap();
        }
        old.close().await;

        let db = Db::connect(&url).await.unwrap();
        let history = chat::after(&db.pool, "m1", 0, 10).await.unwrap();
        let seen: Vec<(i64, &str, &str)> = history
            .iter()
            .map(|m| (m.seq, m.id.as_str(), m.text.as_str()))
            .collect();
        assert_eq!(seen, [(1, "01A", "first"), (2, "01B", "second")]);

        let writer = chat::Writer::start(db.pool.clone());
        let store = |client_msg_id: &str, text: &str| {
            let message = chat::NewMessage {
                meeting_id: "m1".into(),
                sender: parley_shared::UserId("u1".into()),
                sender_name: "Ann".into(),
                guest: false,
                client_msg_id: client_msg_id.into(),
                text: text.into(),
                now_ms: 30,
            };
            let writer = writer.clone();
            async move {
                let (tx, rx) = tokio::sync::oneshot::channel();
                writer
                    .store(message, move |outcome| {
                        let _ = tx.send(outcome);
                    })
                    .await;
                rx.await.unwrap().unwrap()
            }
        };
        let (third, retried) = store("c3", "third").await;
        assert_eq!(
            (third.seq, third.text.as_str(), retried),
            (3, "third", false)
        );
        let (again, retried) = store("c2", "second").await;
        assert_eq!((again.seq, again.id.as_str(), retried), (2, "01B", true));
        assert_eq!(chat::last_seq(&db.pool, "m1").await.unwrap(), 3);
        drop(writer);
        db.close().await;
    }
}
