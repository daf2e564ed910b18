//! Each service's SQLite file: a pool of connections for reads and one connection
//! for writes, all with the same PRAGMAs; the service's embedded migrations applied
//! at start; and [`run_blocking`] (reads) and [`run_write`] (writes), the only ways
//! handlers reach the database, both off the async workers.
//!
//! WAL lets readers run beside the one writer; `synchronous=NORMAL` in WAL mode keeps
//! every committed transaction across a crash of the process (only a power loss may
//! drop the last ones).
//!
//! Writes go to one writer thread per database, which owns the write connection. It
//! takes the writes waiting for it, up to [`MAX_BATCH`], runs each in its own
//! savepoint inside one `BEGIN IMMEDIATE` transaction, commits, and only then answers
//! them (group commit): a write is answered once it is durable, a write that fails
//! rolls back only its own savepoint, and concurrent writers neither sleep in
//! SQLite's busy handler nor hand a lock to each other.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use actix_web::web;
use anyhow::Context as _;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use rusqlite_migration::Migrations;

use crate::error::{ApiError, ErrorCode};

/// The most writes committed together.
const MAX_BATCH: usize = 256;

/// What a write hands back to the writer thread: how to answer once the commit is known.
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A write, run by the writer thread on the write connection.
type Write = Box<dyn FnOnce(&mut Connection) -> Answer + Send>;

/// A service's database: pooled connections for reads, one writer thread for writes.
#[derive(Clone)]
pub struct Pool {
    readers: r2d2::Pool<SqliteConnectionManager>,
    writer: Sender<Write>,
}

impl Pool {
    /// A pooled connection, for reads at start-up (outside any request).
    pub fn get(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, r2d2::Error> {
        self.readers.get()
    }
}

/// How long a writer waits for the write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per service; SQLite serialises writers, so more would only wait.
const POOL_SIZE: u32 = 16;

fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Opens (creating if needed) the database at `path`, migrates it and pools it.
pub fn open(path: &Path, migrations: &Migrations<'static>) -> anyhow::Result<Pool> {
    let context = || format!("cannot open database {}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(context)?;
    }
    // One plain connection first, so a bad path fails at once with its own reason.
    let mut conn = Connection::open(path).with_context(context)?;
    configure(&mut conn).with_context(context)?;
    let before = usize::from(migrations.current_version(&conn).with_context(context)?);
    migrations.to_latest(&mut conn).with_context(context)?;
    let after = usize::from(migrations.current_version(&conn).with_context(context)?);
    match before {
        0 => log::info!("{}: created, schema version {after}", path.display()),
        b if b == after => log::info!("{}: schema version {after}", path.display()),
        b => log::info!("{}: schema migrated from version {b} to {after}", path.display()),
    }

    let manager = SqliteConnectionManager::file(path).with_init(configure);
    let readers = r2d2::Pool::builder()
        .max_size(POOL_SIZE)
        .min_idle(Some(2))
        .connection_timeout(BUSY_TIMEOUT)
        .build(manager)
        .with_context(context)?;
    let (writer, writes) = mpsc::channel();
    std::thread::Builder::new()
        .name("db-writer".into())
        .spawn(move || write_loop(conn, writes))
        .with_context(context)?;
    Ok(Pool { readers, writer })
}

/// Runs a statement without parameters through the statement cache.
fn execute_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// One write's savepoint: committed (released) on [`Savepoint::commit`], rolled back
/// when dropped without it. Its statements are prepared once and cached, not parsed
/// for every write as `rusqlite`'s own savepoints are.
pub struct Savepoint<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Savepoint<'c> {
    pub fn begin(conn: &'c Connection) -> rusqlite::Result<Self> {
        execute_cached(conn, "SAVEPOINT penguin_write")?;
        Ok(Self { conn, open: true })
    }

    pub fn commit(mut self) -> rusqlite::Result<()> {
        self.open = false;
        execute_cached(self.conn, "RELEASE penguin_write")
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = execute_cached(self.conn, "ROLLBACK TO penguin_write");
            let _ = execute_cached(self.conn, "RELEASE penguin_write");
        }
    }
}

impl std::ops::Deref for Savepoint<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// The writer thread: batches of waiting writes, one transaction each.
fn write_loop(mut conn: Connection, writes: Receiver<Write>) {
    while let Ok(first) = writes.recv() {
        if let Err(e) = execute_cached(&conn, "BEGIN IMMEDIATE") {
            // Without a batch transaction each write's savepoint is its own transaction.
            log::warn!("database: cannot begin a batch ({e}); writing alone");
            let answer = run_one(&mut conn, first);
            answer(Ok(()));
            continue;
        }
        let mut answers = vec![run_one(&mut conn, first)];
        while answers.len() < MAX_BATCH {
            match writes.try_recv() {
                Ok(write) => answers.push(run_one(&mut conn, write)),
                Err(_) => break,
            }
        }
        let committed = execute_cached(&conn, "COMMIT").map_err(|e| e.to_string());
        if committed.is_err() {
            let _ = execute_cached(&conn, "ROLLBACK");
        }
        for answer in answers {
            answer(committed.clone());
        }
    }
}

/// Runs one write; a write that panics is answered by dropping its channel.
fn run_one(conn: &mut Connection, write: Write) -> Answer {
    catch_unwind(AssertUnwindSafe(|| write(conn))).unwrap_or_else(|_| Box::new(|_| {}))
}

/// What a route that reads its database ([`run_blocking`]) can answer when no connection
/// is free, for the OpenAPI documents.
pub const REFUSALS: &[ErrorCode] = &[ErrorCode::DatabaseUnavailable];

/// Runs `f`, which only reads, with a pooled connection on the blocking thread pool.
pub async fn run_blocking<T, F>(pool: &Pool, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let readers = pool.readers.clone();
    web::block(move || {
        let mut conn = readers.get()?;
        f(&mut conn)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Runs `f`, which writes, on the writer thread, and answers once it is committed.
/// `f` must do its work in a [`Savepoint`], which it commits or, on failure, drops
/// to roll back.
pub async fn run_write<T, F>(pool: &Pool, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    run_write_then(pool, f, |_| {}).await
}

/// [`run_write`], and `on_commit` with the result once the write is committed and
/// before it is answered. The writer thread runs these in commit order, so an
/// in-memory copy of the data that they update never sees an older write last.
pub async fn run_write_then<T, F, C>(pool: &Pool, f: F, on_commit: C) -> Result<T, ApiError>
where
    F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    C: FnOnce(&T) + Send + 'static,
    T: Send + 'static,
{
    let (answer, answered) = tokio::sync::oneshot::channel();
    let write: Write = Box::new(move |conn| {
        let result = f(conn);
        Box::new(move |committed: Result<(), String>| {
            let result = committed
                .map_err(|e| ApiError::internal(anyhow::anyhow!("commit: {e}")))
                .and(result);
            if let Ok(value) = &result {
                on_commit(value);
            }
            let _ = answer.send(result);
        })
    });
    pool.writer
        .send(write)
        .map_err(|_| ApiError::internal(anyhow::anyhow!("the database writer has stopped")))?;
    answered
        .await
        .map_err(|_| ApiError::internal(anyhow::anyhow!("a database write failed without an answer")))?
}

/// Stores enums with strum's `IntoStaticStr` and `EnumString` (a closed set of names)
/// as their name: one `ToSql` and one `FromSql` for each, in one place.
macro_rules! stored_as_text {
    ($($name:ty),+) => {$(
        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(<&'static str>::from(*self).into())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: strum::ParseError| rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    )+};
}
pub(crate) use stored_as_text;
