//! Each service's SQLite file: a pool of connections for reads and one connection
//! for writes, all with the same PRAGMAs; the service's embedded migrations applied
//! at start; and [`run_blocking`] (reads) and [`run_write`] (writes), the only ways
//! handlers reach the database, both off the async workers.
//!
//! WAL lets readers run beside the one writer; `synchronous=NORMAL` in WAL mode keeps
//! every committed transaction across a crash of the process (only a power loss may
//! drop the last ones); writes that read first start with `BEGIN IMMEDIATE`. Writers
//! queue on a mutex around the write connection instead of on SQLite's busy handler,
//! which sleeps and retries and would make concurrent writers wait milliseconds each.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::web;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use rusqlite_migration::Migrations;

use crate::error::ApiError;

/// A service's database: pooled connections for reads, one connection for writes.
#[derive(Clone)]
pub struct Pool {
    readers: r2d2::Pool<SqliteConnectionManager>,
    writer: Arc<Mutex<Connection>>,
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
pub fn open(path: &Path, migrations: &Migrations<'static>) -> Result<Pool, String> {
    let fail = |e: &dyn std::fmt::Display| format!("cannot open database {}: {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    }
    // One plain connection first, so a bad path fails at once with its own reason.
    let mut conn = Connection::open(path).map_err(|e| fail(&e))?;
    configure(&mut conn).map_err(|e| fail(&e))?;
    migrations.to_latest(&mut conn).map_err(|e| fail(&e))?;

    let manager = SqliteConnectionManager::file(path).with_init(configure);
    let readers = r2d2::Pool::builder()
        .max_size(POOL_SIZE)
        .min_idle(Some(2))
        .connection_timeout(BUSY_TIMEOUT)
        .build(manager)
        .map_err(|e| fail(&e))?;
    Ok(Pool {
        readers,
        writer: Arc::new(Mutex::new(conn)),
    })
}

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

/// Runs `f`, which writes, with the write connection on the blocking thread pool,
/// one writer at a time.
pub async fn run_write<T, F>(pool: &Pool, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let writer = pool.writer.clone();
    web::block(move || {
        // A panic inside `f` rolled its transaction back as it unwound.
        let mut conn = writer.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    })
    .await
    .map_err(ApiError::internal)?
}

/// The wall clock as Unix milliseconds, for deadlines stored in the database.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `LIMIT`/`OFFSET` of a list route: `?limit=` (default 100, at most 1000) and `?offset=`.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    limit: Option<u32>,
    offset: Option<u32>,
}

impl Page {
    pub const DEFAULT_LIMIT: u32 = 100;
    pub const MAX_LIMIT: u32 = 1000;

    /// The `(limit, offset)` to bind, or a `422` for a limit of 0 or above the maximum.
    pub fn bounds(self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(Self::DEFAULT_LIMIT);
        if limit == 0 || limit > Self::MAX_LIMIT {
            return Err(ApiError::unprocessable(
                "invalid_limit",
                format!("limit must be between 1 and {}", Self::MAX_LIMIT),
            ));
        }
        Ok((i64::from(limit), i64::from(self.offset.unwrap_or(0))))
    }
}
