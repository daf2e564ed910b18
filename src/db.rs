//! Each service's SQLite file: a pool of connections for reads and one connection
//! for writes, all with the same PRAGMAs; the service's embedded migrations applied
//! at start; and [`run_blocking`] (reads) and [`run_write`] (writes), the only ways
//! handlers reach the database, both off the async workers.
//!
//! WAL lets readers run beside the one writer; `synchronous=NORMAL` in WAL mode keeps
//! every committed transaction across a crash of the process (only a power loss may
//! drop the last ones). Who checkpoints the write-ahead log is a setting
//! (`WAL_AUTOCHECKPOINT`): penguin itself (SQLite's automatic checkpoint, and a
//! `TRUNCATE` at a clean stop), or, at 0, a Litestream process that replicates the
//! database and must see every page before it reaches the database file, so penguin
//! never checkpoints at all, not even as its last connection closes. Every connection waits up to [`BUSY_TIMEOUT`] for a lock,
//! as Litestream's own short write locks ask.
//!
//! Writes go to one writer thread per database, which owns the write connection. It
//! takes the writes waiting for it, up to [`MAX_BATCH`], runs each in its own
//! savepoint inside one `BEGIN IMMEDIATE` transaction, commits, and only then answers
//! them (group commit): a write is answered once it is durable, a write that fails
//! rolls back only its own savepoint, and concurrent writers neither sleep in
//! SQLite's busy handler nor hand a lock to each other.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use crate::trace::{KeyValue, SpanKind};
use actix_web::web;
use anyhow::Context as _;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use crate::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;
use crate::service::Service;

/// The most writes committed together.
const MAX_BATCH: usize = 256;

/// What a write hands back to the writer thread, to be answered with once the commit
/// is known: whether its batch was committed, and how many writes that batch held.
type Answer = Box<dyn FnOnce(Result<(), CommitError>, usize) + Send>;

/// Why a batch was not committed.
#[derive(Debug, Clone)]
enum CommitError {
    DiskFull,
    Failed(String),
}

impl From<rusqlite::Error> for CommitError {
    fn from(e: rusqlite::Error) -> Self {
        if crate::error::disk_full(&e) {
            Self::DiskFull
        } else {
            Self::Failed(e.to_string())
        }
    }
}

impl From<CommitError> for ApiError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::DiskFull => ApiError::storage_full(),
            CommitError::Failed(e) => ApiError::internal(anyhow::anyhow!("commit: {e}")),
        }
    }
}

/// The writes waiting for a database's writer thread, and what became of them.
struct Queue {
    /// Writes sent and not yet taken by the writer: counted here, so that admitting a
    /// write is one atomic step, and shown by `depth`.
    waiting: AtomicI64,
    depth: IntGauge,
    /// The most writes that may wait before new work is refused.
    limit: i64,
    refused: IntCounter,
    batches: Histogram,
}

impl Queue {
    fn new(metrics: &Metrics, limit: usize) -> prometheus::Result<Self> {
        Ok(Self {
            waiting: AtomicI64::new(0),
            depth: metrics.register(IntGauge::new(
                "db_write_queue",
                "Writes waiting for the database writer",
            )?)?,
            limit: i64::try_from(limit).unwrap_or(i64::MAX),
            refused: metrics.register(IntCounter::new(
                "db_writes_refused_total",
                "Writes refused with 503 because the write queue was full",
            )?)?,
            batches: metrics.register(Histogram::with_opts(
                HistogramOpts::new(
                    "db_commit_batch_size",
                    "Writes committed together in one transaction",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            )?)?,
        })
    }

    /// Counts one more waiting write; new work (`owed` false) only while fewer than
    /// `limit` wait. Whether it was admitted.
    fn admit(&self, owed: bool) -> bool {
        let waiting = self.waiting.fetch_add(1, Ordering::AcqRel);
        if !owed && waiting >= self.limit {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            self.refused.inc();
            return false;
        }
        self.depth.inc();
        true
    }

    /// Counts one waiting write taken by the writer (or never sent).
    fn taken(&self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        self.depth.dec();
    }
}

/// A write, run by the writer thread on the write connection.
type Write = Box<dyn FnOnce(&mut Connection) -> Answer + Send>;

/// A service's database: pooled connections for reads, one writer thread for writes.
#[derive(Clone)]
pub struct Pool {
    readers: r2d2::Pool<SqliteConnectionManager>,
    writer: Sender<Write>,
    queue: Arc<Queue>,
    file: Arc<File>,
}

/// The file a pool was opened on, and what it must still be.
struct File {
    /// Held while the pool lives: see [`lock`].
    _lock: std::fs::File,
    path: PathBuf,
    identity: Option<(u64, u64)>,
    application_id: i32,
    version: usize,
    /// `wal_autocheckpoint`: 0 when another process (Litestream) checkpoints.
    autocheckpoint: u32,
    /// The file's name, as a span names the database (`db.namespace`).
    name: Arc<str>,
}

impl Pool {
    /// A pooled connection, for reads at start-up (outside any request).
    pub fn get(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, r2d2::Error> {
        self.readers.get()
    }

    /// Whether the database can do its work now: its file is still the one opened,
    /// it answers a read with the owner and schema expected, and its writer commits.
    /// `Err` says what is wrong, naming the file. Returns the schema version.
    pub async fn ready(&self) -> Result<usize, String> {
        let file = self.file.clone();
        let name = file.path.display().to_string();
        if identity(&file.path) != file.identity {
            return Err(format!("the database file {name} is gone or was replaced"));
        }
        let expected = (file.application_id, file.version);
        let found = run_blocking(self, |conn| {
            let owner: i32 = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
            let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
            Ok((owner, usize::try_from(version).unwrap_or(0)))
        })
        .await
        .map_err(|e| format!("the database {name} does not answer: {}", e.cause()))?;
        if found != expected {
            return Err(format!(
                "the database {name} is not the one opened: application_id {:#x}, schema version {} \
                 (expected {:#x}, {})",
                found.0, found.1, expected.0, expected.1
            ));
        }
        let committed = run_write(self, |_| Ok(()));
        match actix_web::rt::time::timeout(BUSY_TIMEOUT, committed).await {
            Ok(Ok(())) => Ok(file.version),
            Ok(Err(e)) => Err(format!("the database {name} cannot commit: {}", e.cause())),
            Err(_) => Err(format!(
                "the database {name} has not committed a write within {} s",
                BUSY_TIMEOUT.as_secs()
            )),
        }
    }
}

impl Pool {
    /// Copies every committed write from the write-ahead log into the database file
    /// and empties the log, once nothing writes any more (at a clean stop). A failure
    /// is logged: the log keeps the writes, and the next start replays them. Nothing is
    /// done when Litestream checkpoints this database (`wal_autocheckpoint` 0): a
    /// `TRUNCATE` would wait on its read lock and could hide pages from its replica.
    pub async fn checkpoint(&self) {
        let name = self.file.path.display().to_string();
        if self.file.autocheckpoint == 0 {
            log::debug!("{name}: not checkpointed, WAL_AUTOCHECKPOINT=0 leaves it to Litestream");
            return;
        }
        let done = run_blocking(self, |conn| {
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
            Ok(busy == 0)
        })
        .await;
        match done {
            Ok(true) => log::debug!("{name}: checkpointed"),
            Ok(false) => {
                log::warn!("{name}: not checkpointed, the database was busy; its -wal file keeps the writes")
            }
            Err(e) => log::warn!(
                "{name}: not checkpointed ({}); its -wal file keeps the writes",
                e.cause()
            ),
        }
    }
}

/// How long a writer waits for the write lock before giving up: Litestream's advice.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per service; SQLite serialises writers, so more would only wait.
const POOL_SIZE: u32 = 16;

/// SQLite's own default for `wal_autocheckpoint`, in pages.
pub const DEFAULT_AUTOCHECKPOINT: u32 = 1000;

fn configure(conn: &mut Connection, autocheckpoint: u32) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update_and_check(None, "wal_autocheckpoint", autocheckpoint, |row| {
        row.get::<_, i64>(0)
    })?;
    if autocheckpoint == 0 {
        // Nor the checkpoint SQLite makes when the last connection closes.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    }
    Ok(())
}

/// A service's database as its migrations define it, and whose it is.
pub struct Schema {
    pub service: Service,
    /// A table that only this service's database has: how a file written before
    /// databases carried their owner is recognised.
    pub table: &'static str,
    pub migrations: Migrations<'static>,
    /// The schema version the migrations lead to.
    pub version: usize,
}

impl Schema {
    /// An in-memory database migrated to `version` (`None`: the latest), for tests.
    #[cfg(test)]
    pub fn in_memory(&self, version: Option<usize>) -> Connection {
        let mut conn = Connection::open_in_memory().expect("an in-memory database");
        match version {
            Some(version) => self.migrations.to_version(&mut conn, version),
            None => self.migrations.to_latest(&mut conn),
        }
        .expect("migrated");
        conn
    }

    pub fn new(service: Service, table: &'static str, migrations: Vec<M<'static>>) -> Self {
        Self {
            service,
            table,
            version: migrations.len(),
            migrations: Migrations::new(migrations),
        }
    }
}

/// Opens (creating if needed) the database at `path`, makes sure it is this service's
/// and not of a newer schema, migrates it and pools it. At most `queue_limit` writes
/// wait for its writer; beyond that, new work is refused (see [`run_write`]). Its
/// write-ahead log is checkpointed every `autocheckpoint` pages, or, at 0, never by
/// penguin (Litestream does).
pub fn open(
    path: &Path,
    schema: &Schema,
    metrics: &Metrics,
    queue_limit: usize,
    autocheckpoint: u32,
) -> anyhow::Result<Pool> {
    let context = || format!("cannot open database {}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(context)?;
    }
    let lock = lock(path).with_context(context)?;
    // One plain connection first, so a bad path fails at once with its own reason.
    let mut conn = Connection::open(path).with_context(context)?;
    configure(&mut conn, autocheckpoint).with_context(context)?;
    let before = usize::from(schema.migrations.current_version(&conn).with_context(context)?);
    ensure_owner(&conn, schema, before)
        .with_context(context)?
        .map_err(anyhow::Error::msg)
        .with_context(context)?;
    schema.migrations.to_latest(&mut conn).with_context(context)?;
    let id = schema.service.application_id();
    conn.pragma_update(None, "application_id", id)
        .with_context(context)?;
    let after = usize::from(schema.migrations.current_version(&conn).with_context(context)?);
    match before {
        0 => log::info!("{}: created, schema version {after}", path.display()),
        b if b == after => log::info!("{}: schema version {after}", path.display()),
        b => log::info!("{}: schema migrated from version {b} to {after}", path.display()),
    }

    let manager = SqliteConnectionManager::file(path).with_init(move |c| configure(c, autocheckpoint));
    let readers = r2d2::Pool::builder()
        .max_size(POOL_SIZE)
        .min_idle(Some(2))
        .connection_timeout(BUSY_TIMEOUT)
        .build(manager)
        .with_context(context)?;
    let queue = Arc::new(Queue::new(metrics, queue_limit)?);
    let (writer, writes) = mpsc::channel();
    let queued = queue.clone();
    std::thread::Builder::new()
        .name("db-writer".into())
        .spawn(move || write_loop(conn, writes, &queued))
        .with_context(context)?;
    Ok(Pool {
        readers,
        writer,
        queue,
        file: Arc::new(File {
            _lock: lock,
            path: path.to_path_buf(),
            identity: identity(path),
            application_id: id,
            version: schema.version,
            autocheckpoint,
            name: path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                .into(),
        }),
    })
}

/// Takes the lock that makes this process the only one serving the database at `path`
/// (a file beside it, `<name>.lock`, locked until the process ends, however it ends).
/// A second process on the same database would drive the same orders with turns it
/// cannot see, and its writes would race this one's: it is refused at start.
fn lock(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another process is serving this database (it holds {}); one database, one process",
            std::path::Path::new(&name).display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Whether the database may be opened as `schema`'s: `Ok(Err(why not))` if it belongs
/// to another service or application, or has a schema newer than this penguin knows.
fn ensure_owner(conn: &Connection, schema: &Schema, version: usize) -> rusqlite::Result<Result<(), String>> {
    let owner: i32 = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
    let mine = schema.service;
    if owner != 0 && owner != mine.application_id() {
        let why = match Service::ALL.into_iter().find(|s| s.application_id() == owner) {
            Some(other) => format!("it is the database of {other}, not of {mine}"),
            None => format!("it belongs to another application (application_id {owner:#x})"),
        };
        return Ok(Err(why));
    }
    if version > schema.version {
        return Ok(Err(format!(
            "its schema version is {version}, newer than the {} this penguin knows; \
             it was written by a newer penguin",
            schema.version
        )));
    }
    if owner == 0 {
        // Written before databases named their owner, or not by penguin at all.
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let fresh = version == 0 && tables.is_empty();
        if !fresh && !tables.iter().any(|t| t == schema.table) {
            return Ok(Err(format!(
                "it is not the database of {mine}: it has no table {} (its tables: {})",
                schema.table,
                tables.join(", ")
            )));
        }
    }
    Ok(Ok(()))
}

/// The device and inode of a file, which tell whether it is still the one opened.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
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
fn write_loop(mut conn: Connection, writes: Receiver<Write>, queue: &Queue) {
    while let Ok(first) = writes.recv() {
        queue.taken();
        if let Err(e) = execute_cached(&conn, "BEGIN IMMEDIATE") {
            // Without a batch transaction each write's savepoint is its own transaction.
            log::warn!("database: cannot begin a batch ({e}); writing alone");
            let answer = run_one(&mut conn, first);
            answer(Ok(()), 1);
            continue;
        }
        let mut answers = vec![run_one(&mut conn, first)];
        while answers.len() < MAX_BATCH {
            match writes.try_recv() {
                Ok(write) => {
                    queue.taken();
                    answers.push(run_one(&mut conn, write));
                }
                Err(_) => break,
            }
        }
        queue.batches.observe(answers.len() as f64);
        let committed = execute_cached(&conn, "COMMIT").map_err(CommitError::from);
        if committed.is_err() {
            let _ = execute_cached(&conn, "ROLLBACK");
        }
        let size = answers.len();
        for answer in answers {
            answer(committed.clone(), size);
        }
    }
}

/// Runs one write; a write that panics is answered by dropping its channel.
fn run_one(conn: &mut Connection, write: Write) -> Answer {
    catch_unwind(AssertUnwindSafe(|| write(conn))).unwrap_or_else(|_| Box::new(|_, _| {}))
}

/// What a route that reads its database ([`run_blocking`]) can answer when no connection
/// is free, for the OpenAPI documents.
pub const REFUSALS: &[ErrorCode] = &[ErrorCode::DatabaseUnavailable];

/// What a route that writes ([`run_write`]) can answer when its database cannot take
/// the write now (`WRITE_QUEUE` writes already wait) or its disk is full.
pub const WRITE_REFUSALS: &[ErrorCode] = &[ErrorCode::DatabaseUnavailable, ErrorCode::StorageFull];

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
/// to roll back. New work: refused with `503` (nothing done) while the write queue
/// is full.
pub async fn run_write<T, F>(pool: &Pool, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    run_write_then(pool, f, |_| {}).await
}

/// [`run_write`] for a write that records work already done at a peer (an order's
/// next stage): never refused for a full queue, since refusing it would leave the
/// record behind what happened. The work that led to it was admitted as new work.
pub async fn run_write_always<T, F>(pool: &Pool, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    queue_write(pool, true, f, |_| {}).await
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
    queue_write(pool, false, f, on_commit).await
}

/// Sends `f` to the writer thread; new work (`owed` false) is refused with `503` while
/// the queue is full.
async fn queue_write<T, F, C>(pool: &Pool, owed: bool, f: F, on_commit: C) -> Result<T, ApiError>
where
    F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    C: FnOnce(&T) + Send + 'static,
    T: Send + 'static,
{
    let (answer, answered) = tokio::sync::oneshot::channel();
    let write: Write = Box::new(move |conn| {
        let result = f(conn);
        Box::new(move |committed: Result<(), CommitError>, size| {
            let result = committed.map_err(ApiError::from).and(result);
            if let Ok(value) = &result {
                on_commit(value);
            }
            let _ = answer.send((result, size));
        })
    });
    if !pool.queue.admit(owed) {
        return Err(ApiError::write_queue_full());
    }
    // The write's span covers its wait in the queue and the batch that commits it.
    let mut span = crate::trace::recorded().map(|t| t.span("sqlite write", SpanKind::Client));
    pool.writer.send(write).map_err(|_| {
        pool.queue.taken();
        ApiError::internal(anyhow::anyhow!("the database writer has stopped"))
    })?;
    let answer = answered.await;
    if let Some(span) = &mut span {
        span.set_with(|| {
            let mut attributes = vec![
                KeyValue::new("db.system.name", "sqlite"),
                KeyValue::new("db.namespace", pool.file.name.clone()),
                KeyValue::new("db.operation.name", "write"),
            ];
            if let Ok((_, size)) = &answer {
                attributes.push(KeyValue::new("db.operation.batch.size", *size as i64));
            }
            attributes
        });
        if let Ok((Err(e), _)) = &answer {
            span.fail(|| e.to_string());
        }
    }
    answer
        .map_err(|_| ApiError::internal(anyhow::anyhow!("a database write failed without an answer")))?
        .0
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

/// Copies the database of `service` at `source` into `copy` (a new file) while it may
/// be serving: `VACUUM INTO` reads one snapshot in one read transaction, which in WAL
/// mode never blocks the writer, so the copy holds exactly the transactions committed
/// when it began. Refuses a file that is not `service`'s database. Returns the copy's
/// schema version once it passes `PRAGMA integrity_check`.
pub fn copy(source: &Path, service: Service, copy: &Path) -> anyhow::Result<usize> {
    use rusqlite::OpenFlags;
    if !source.is_file() {
        anyhow::bail!("no database at {}", source.display());
    }
    // Never create a database where one was expected; never write to it.
    let conn = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", source.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Closing it must not checkpoint the source either: that is its server's, or Litestream's.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    let owner: i32 = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
    if owner != service.application_id() {
        let whose = Service::ALL
            .into_iter()
            .find(|s| s.application_id() == owner)
            .map_or_else(
                || format!("application_id {owner:#x}"),
                |s| format!("the database of {s}"),
            );
        anyhow::bail!(
            "{} is not the database of {service}: it is {whose}",
            source.display()
        );
    }
    let target = copy
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", copy.display()))?;
    conn.execute("VACUUM INTO ?1", [target])
        .with_context(|| format!("cannot copy {} into {target}", source.display()))?;
    let copied = Connection::open_with_flags(copy, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let verdict: String = copied.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    if verdict != "ok" {
        anyhow::bail!("the copy {target} fails its integrity check: {verdict}");
    }
    let version: i64 = copied.pragma_query_value(None, "user_version", |row| row.get(0))?;
    Ok(usize::try_from(version).unwrap_or(0))
}
