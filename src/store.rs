//! Persistence: one store API over SQLite (the embedded default) and PostgreSQL.
//!
//! Every SCIM write is one transaction that also marks the resource's key dirty in the sync
//! queue, so nothing acknowledged to an IdP can be lost between the store and delivery.
//!
//! Queries are runtime-checked `sqlx` queries on the `Any` driver, written once with `$n`
//! placeholders (SQLite and PostgreSQL both accept them) and only standard SQL that both
//! dialects share (`ON CONFLICT … DO UPDATE`, `RETURNING`). Where the dialects really differ
//! (claiming queue rows with `FOR UPDATE SKIP LOCKED` versus a lease) the code branches on
//! [`Backend`](crate::store::Backend), inside this module. `http/` never writes SQL.
//!
//! SQLite uses two pools: one connection for writes (SQLite has a single writer; funnelling
//! writes through one connection avoids `SQLITE_BUSY` storms under concurrent POSTs) and
//! several read-only connections, which WAL mode lets run alongside the writer. SCIM writes
//! on SQLite are group-committed by `store/batch.rs`: writes that arrive together share one
//! transaction.

pub mod admin;
pub mod attempts;
pub mod audit;
mod batch;
pub mod connectors;
pub mod console;
pub mod gate;
mod heads;
mod key;
pub mod leases;
pub mod links;
pub mod mappings;
mod members;
pub mod narrow;
pub mod peers;
pub mod profiles;
pub mod pull;
pub mod queue;
mod readers;
pub mod reconcile;
mod resources;
mod rows;
pub mod target_state;
#[doc(hidden)]
pub mod testdb;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Executor;
use time::OffsetDateTime;
use tokio::sync::Notify;

pub use key::ResourceKey;
pub use members::MemberRow;
pub use resources::{DeleteOutcome, Inserted, StoredResource, UpdateOutcome};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The backend a connection talks to.
    pub(crate) fn of(conn: &sqlx::AnyConnection) -> Backend {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }
}

/// Store errors. Callers map them to protocol errors once (`http::error`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken (userName, group displayName, connector name).
    #[error("{0} is already in use")]
    Conflict(String),
    /// No connection became free in time while every connection was in use: the database
    /// is saturated. Answered with 429 and `Retry-After` so IdPs back off (docs/reference/design.md
    /// "Back-pressure is 429, never 5xx"). A pool timeout while the pool had room means the
    /// database did not answer: see [`Store::explain`].
    #[error("the database is saturated")]
    Busy(#[source] sqlx::Error),
    /// The database cannot be reached: connections are refused, reset or time out, or the
    /// server ended the session. Not back-pressure: answered 503 with `Retry-After`, logged
    /// as an error.
    #[error("the database cannot be reached")]
    Unavailable(#[source] sqlx::Error),
    /// A stored document could not be read back.
    #[error("stored document of {0} is not valid JSON")]
    Corrupt(String, #[source] serde_json::Error),
    /// The request's time limit passed before this write started, so it was not run and
    /// nothing of it is committed (`store/gate.rs`).
    #[error("the request ran out of time before its write started; nothing was written")]
    Cancelled,
    /// Any other database failure.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut => StoreError::Busy(e),
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed => {
                StoreError::Unavailable(e)
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("a unique value".to_owned())
            }
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6): another process holds the write lock
            // longer than busy_timeout; PostgreSQL's lock_not_available (55P03): a lock was
            // held longer than lock_timeout. Like a pool timeout, this is saturation.
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("5" | "6" | "55P03")) =>
            {
                StoreError::Busy(e)
            }
            // PostgreSQL ended or lost the session: a connection exception (class 08),
            // an administrator or a restart ending it (57P01 admin_shutdown, 57P02
            // crash_shutdown), the server still starting (57P03), an idle session timeout
            // (57P05). The pools lend connections without a ping, so the first request on a
            // connection the server ended since hears this; it is an outage, not a bug.
            sqlx::Error::Database(db) if db.code().as_deref().is_some_and(session_lost) => {
                StoreError::Unavailable(e)
            }
            _ => StoreError::Database(e),
        }
    }
}

/// Whether a PostgreSQL SQLSTATE says the session is gone (see [`StoreError::from`]).
fn session_lost(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "57P05")
}

/// Result alias.
pub type StoreResult<T> = Result<T, StoreError>;

/// How much of a SQLite database file each reader maps (`PRAGMA mmap_size`): address space,
/// not memory (the pages mapped are the kernel's page cache). 2 GiB is also the most the
/// bundled SQLite maps by default (`SQLITE_MAX_MMAP_SIZE`); pages past it are read as before.
const READER_MMAP: u64 = 0x7fff_0000;

/// How SQLite syncs commits to disk (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// fsync at every commit: an acknowledged write survives a power loss.
    #[default]
    Full,
    /// fsync at WAL checkpoints only: survives a crash of usersync (`kill -9`) but the last
    /// commits may be lost on a power loss or kernel crash. Several times faster.
    Normal,
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Maximum connections (PostgreSQL) or readers (SQLite).
    pub max_connections: u32,
    /// How long a request waits for a connection before it is answered 429.
    pub acquire_timeout: Duration,
    /// SQLite durability.
    pub sqlite_sync: SqliteSync,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            sqlite_sync: SqliteSync::Full,
        }
    }
}

struct Inner {
    backend: Backend,
    /// Takes writes (for SQLite: the single writer connection).
    write: AnyPool,
    /// The most connections `write` may hold.
    write_max: u32,
    /// Serves reads (for PostgreSQL: the same pool).
    read: AnyPool,
    /// SQLite (a file): the connections lent to the lookups on the hot path
    /// ([`readers`]).
    readers: Option<readers::Readers>,
    /// Woken after every commit that marked the sync queue, so the delivery worker starts at
    /// once instead of at its next poll. `notify_one` keeps a permit when the worker is busy,
    /// so a mark made while it works is not missed.
    queue_changed: Arc<Notify>,
    /// SQLite: the group-commit batcher that runs SCIM writes on the writer connection.
    batcher: Option<batch::Batcher>,
    /// PostgreSQL: wakes the task that tells the other instances the queue changed
    /// (`NOTIFY`, see [`peers`]). A full channel already holds a wake-up: marks coalesce.
    announce: Option<tokio::sync::mpsc::Sender<()>>,
    /// PostgreSQL: the URL, for the `LISTEN` connection.
    url: String,
    /// This process, in the `NOTIFY` payload (its own notifications are ignored).
    instance: String,
    /// Per connector, how many lines of managers its mapping reads (docs/mapping.md "Lines
    /// of managers"): a user's write marks their reports that many lines down. Set by the
    /// runtime from the mappings in force ([`Store::set_report_depth`]); 1 when unset.
    report_depths: std::sync::RwLock<std::collections::HashMap<String, u8>>,
}

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// The migration trees, embedded. Listed by hand (rather than with `sqlx::migrate!`) to keep
/// sqlx's macro crate out of the build; add each new file to both lists, same number.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "delivery",
        include_str!("../migrations/sqlite/0002_delivery.sql"),
    ),
    (
        3,
        "profiles",
        include_str!("../migrations/sqlite/0003_profiles.sql"),
    ),
    (
        4,
        "delivery_health",
        include_str!("../migrations/sqlite/0004_delivery_health.sql"),
    ),
    (
        5,
        "planner_stats",
        include_str!("../migrations/sqlite/0005_planner_stats.sql"),
    ),
    (
        6,
        "reconcile",
        include_str!("../migrations/sqlite/0006_reconcile.sql"),
    ),
    (
        7,
        "scale_out",
        include_str!("../migrations/sqlite/0007_scale_out.sql"),
    ),
    (
        8,
        "audit",
        include_str!("../migrations/sqlite/0008_audit.sql"),
    ),
    (
        9,
        "admin",
        include_str!("../migrations/sqlite/0009_admin.sql"),
    ),
    (
        10,
        "pull",
        include_str!("../migrations/sqlite/0010_pull.sql"),
    ),
    (
        11,
        "console",
        include_str!("../migrations/sqlite/0011_console.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "delivery",
        include_str!("../migrations/postgres/0002_delivery.sql"),
    ),
    (
        3,
        "profiles",
        include_str!("../migrations/postgres/0003_profiles.sql"),
    ),
    (
        4,
        "delivery_health",
        include_str!("../migrations/postgres/0004_delivery_health.sql"),
    ),
    (
        5,
        "planner_stats",
        include_str!("../migrations/postgres/0005_planner_stats.sql"),
    ),
    (
        6,
        "reconcile",
        include_str!("../migrations/postgres/0006_reconcile.sql"),
    ),
    (
        7,
        "scale_out",
        include_str!("../migrations/postgres/0007_scale_out.sql"),
    ),
    (
        8,
        "audit",
        include_str!("../migrations/postgres/0008_audit.sql"),
    ),
    (
        9,
        "admin",
        include_str!("../migrations/postgres/0009_admin.sql"),
    ),
    (
        10,
        "pull",
        include_str!("../migrations/postgres/0010_pull.sql"),
    ),
    (
        11,
        "console",
        include_str!("../migrations/postgres/0011_console.sql"),
    ),
];

/// The PostgreSQL advisory lock key held while migrating ("usersync" in ASCII).
const MIGRATION_LOCK: i64 = 0x7573_6572_7379_6e63;

fn migrator(tree: &'static [(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use std::borrow::Cow;
    let migrations: Vec<Migration> = tree
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

impl Store {
    /// Connects to `url` (`sqlite://path`, `sqlite::memory:`, `postgres://…`). SQLite files
    /// are created if missing and put in WAL mode.
    pub async fn connect(url: &str, opts: &StoreOptions) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let (backend, write, read, write_max, readers) = if url.starts_with("sqlite:") {
            private_sqlite_file(url)?;
            let sync = match opts.sqlite_sync {
                SqliteSync::Full => "FULL",
                SqliteSync::Normal => "NORMAL",
            };
            let busy_ms = opts.acquire_timeout.as_millis();
            // `temp_store = MEMORY`: a batch that falls back to savepoints
            // (`store/batch.rs`) journals every page a write touches; past 64 KiB SQLite
            // spills that journal to a temporary file, which doubled the writes to disk of
            // a create. The journal only ever undoes a savepoint; it is not what makes a
            // commit durable (the WAL and its fsync are).
            let writer_setup = format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; \
                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {busy_ms}; \
                 PRAGMA temp_store = MEMORY;"
            );
            let write = AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(opts.acquire_timeout)
                .test_before_acquire(false)
                .after_connect(move |conn, _| {
                    let setup = writer_setup.clone();
                    Box::pin(async move {
                        conn.execute(setup.as_str()).await?;
                        Ok(())
                    })
                })
                .connect(&sqlite_url(url, "rwc"))
                .await?;
            // An in-memory database exists once per connection, so it cannot have readers.
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            // Readers map the database file (`mmap_size`): a lookup in a store larger than
            // SQLite's page cache (2 MiB per connection) reads its index and table pages
            // straight from the kernel's page cache, which every reader shares, instead of
            // copying each one with a `pread` (README.md "Benchmark": lookups at 1,000,000
            // users). Pages a commit just wrote are read from the WAL either way until a
            // checkpoint moves them. The cost: a disk read error under a mapping is a SIGBUS
            // that ends the process (the service manager restarts it) instead of one failed
            // lookup (a write in flight then is rolled back by SQLite and was never
            // acknowledged). The writer keeps `pread`: its own disk errors stay errors,
            // answered as a failed write.
            let reader_setup =
                format!("PRAGMA busy_timeout = {busy_ms}; PRAGMA mmap_size = {READER_MMAP};");
            let readers = (!memory).then(|| {
                readers::Readers::new(
                    sqlite_url(url, "ro"),
                    reader_setup.clone(),
                    opts.max_connections,
                    opts.acquire_timeout,
                )
            });
            let read = if memory {
                write.clone()
            } else {
                AnyPoolOptions::new()
                    .max_connections(opts.max_connections.max(1))
                    .acquire_timeout(opts.acquire_timeout)
                    .test_before_acquire(false)
                    .after_connect(move |conn, _| {
                        let setup = reader_setup.clone();
                        Box::pin(async move {
                            conn.execute(setup.as_str()).await?;
                            Ok(())
                        })
                    })
                    .connect(&sqlite_url(url, "ro"))
                    .await?
            };
            (Backend::Sqlite, write, read, 1, readers)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let max = opts.max_connections.max(2);
            // Lock waits are bounded like SQLite's busy wait: a write blocked longer than
            // the acquire timeout fails as saturation (429) instead of holding its request,
            // which its time limit can no longer abandon once the write has started
            // (`store/gate.rs`), for as long as another session holds the lock.
            let lock_ms = opts.acquire_timeout.as_millis().max(1);
            // No ping before acquire: it is a network round trip on every query. The cost:
            // after a server restart each idle connection fails the one request that next
            // uses it (503, the IdP retries); sqlx's ping on release then drops it
            // (README.md "Benchmark", "Measured with wrk").
            let pool = AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(opts.acquire_timeout)
                .test_before_acquire(false)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        conn.execute(format!("SET lock_timeout = {lock_ms}").as_str())
                            .await?;
                        Ok(())
                    })
                })
                .connect(url)
                .await?;
            (Backend::Postgres, pool.clone(), pool, max, None)
        } else {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                format!(
                    "unsupported database URL {:?}: use sqlite://PATH or postgres://USER@HOST/DB",
                    redact_url(url)
                )
                .into(),
            )));
        };
        let queue_changed = Arc::new(Notify::new());
        let batcher = (backend == Backend::Sqlite)
            .then(|| batch::Batcher::start(write.clone(), queue_changed.clone()));
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let announce = (backend == Backend::Postgres)
            .then(|| peers::start_announcer(write.clone(), instance.clone()));
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                write,
                write_max,
                read,
                readers,
                queue_changed,
                batcher,
                announce,
                url: url.to_owned(),
                instance,
                report_depths: std::sync::RwLock::default(),
            }),
        })
    }

    /// Records how many lines of managers `connector`'s mapping reads, so a write to a user
    /// re-delivers the reports whose chain passes through them (docs/mapping.md "Lines of
    /// managers"). The runtime calls it whenever a mapping is put in force.
    pub fn set_report_depth(&self, connector: &str, depth: u8) {
        let mut depths = self
            .inner
            .report_depths
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if depth <= 1 {
            depths.remove(connector);
        } else {
            depths.insert(connector.to_owned(), depth);
        }
    }

    /// How many lines of reports a write to one of `connector`'s users marks (at least 1).
    pub(crate) fn report_depth(&self, connector: &str) -> u8 {
        self.inner
            .report_depths
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(connector)
            .copied()
            .unwrap_or(1)
    }

    /// Applies pending migrations of this backend's tree, then brings comparison columns
    /// written by older versions to the current form (`Store::refold_names`).
    ///
    /// On PostgreSQL the whole of it runs under an advisory lock, on a connection of its own
    /// that waits for the lock without `lock_timeout`: instances starting together migrate
    /// one after the other, and the later ones find nothing left to do (docs/delivery.md,
    /// "Several instances"; deploy/README.md, upgrades).
    pub async fn migrate(&self) -> StoreResult<()> {
        match self.inner.backend {
            Backend::Sqlite => {
                migrator(SQLITE_MIGRATIONS).run(&self.inner.write).await?;
                self.refold_names().await
            }
            Backend::Postgres => {
                // Detached: the session's setting and lock end with the connection.
                let mut conn = self.inner.write.acquire().await?.detach();
                conn.execute("SET lock_timeout = 0").await?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut conn)
                    .await?;
                let result = async {
                    migrator(POSTGRES_MIGRATIONS).run(&mut conn).await?;
                    self.refold_names().await
                }
                .await;
                let _ = sqlx::Connection::close(conn).await;
                result
            }
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Notified after each commit that marked the sync queue (here, or, on PostgreSQL, by
    /// another instance: [`Store::listen_to_peers`]).
    pub fn queue_changed(&self) -> &Notify {
        &self.inner.queue_changed
    }

    /// The sync queue has new due keys: wakes this process's worker and, on PostgreSQL, the
    /// other instances'.
    pub(crate) fn queue_marked(&self) {
        self.inner.queue_changed.notify_one();
        if let Some(tx) = &self.inner.announce {
            // Full: a wake-up is already on its way, and it will cover this mark too.
            let _ = tx.try_send(());
        }
    }

    /// PostgreSQL: listens for the other instances' marks and wakes this process's worker on
    /// each (polling stays the fallback for a lost notification). `None` on SQLite, where one
    /// process owns the database. The task stops when the handle is dropped.
    pub fn listen_to_peers(&self) -> Option<peers::Listening> {
        (self.inner.backend == Backend::Postgres).then(|| {
            peers::listen(
                self.inner.url.clone(),
                self.inner.instance.clone(),
                self.inner.queue_changed.clone(),
            )
        })
    }

    /// A name for this process, unique among the instances sharing a database.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Connections of the write pool: (open, idle). Used for saturation checks and metrics.
    pub fn pool_usage(&self) -> (u32, usize) {
        (self.inner.write.size(), self.inner.write.num_idle())
    }

    /// Says what a store error means now: a pool timeout ([`StoreError::Busy`]) while the
    /// pool had room for another connection was no wait for a free connection but a failure
    /// to open one (sqlx retries refused connections until the acquire timeout and then
    /// reports a timeout either way), so the database is unreachable, not saturated.
    pub fn explain(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Busy(source)
                if matches!(source, sqlx::Error::PoolTimedOut)
                    && self.inner.write.size() < self.inner.write_max =>
            {
                StoreError::Unavailable(source)
            }
            other => other,
        }
    }

    /// Closes the pools.
    pub async fn close(&self) {
        if let Some(readers) = &self.inner.readers {
            readers.close().await;
        }
        self.inner.read.close().await;
        self.inner.write.close().await;
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.inner.read).await?;
        Ok(())
    }

    /// Begins a write transaction. On SQLite it is `BEGIN IMMEDIATE`, taking the write lock
    /// at once, so a transaction that reads first never fails to upgrade its lock when another
    /// process (the CLI) writes meanwhile.
    pub(crate) async fn write_tx(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend() {
            Backend::Sqlite => self.inner.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.inner.write.begin().await?,
        })
    }

    /// Runs one write: on SQLite in the next group-commit batch (`store/batch.rs`), where `f`
    /// may run a second time when another write of its batch fails (so it must start each
    /// run from its own copy of its inputs), on PostgreSQL in a transaction of its own. Either way the result is returned only after its commit, and
    /// an `Err` from `f` rolls back everything `f` wrote. Inside a request, the write runs
    /// only if the request's deadline has not passed ([`gate`]); otherwise it is not started
    /// and the result is [`StoreError::Cancelled`]. Writes on a connector's behalf use
    /// [`Store::write_in`] with its lane.
    #[allow(dead_code)] // Every current write names its connector; kept for those that do not.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnMut(
                &'c mut sqlx::AnyConnection,
            ) -> futures_util::future::BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        self.write_in(batch::Lane::default(), f).await
    }

    /// [`Store::write`] on behalf of `lane` (a connector, with the weight of the write), so
    /// the SQLite batcher shares the single writer fairly between connectors.
    pub(crate) async fn write_in<T, F>(&self, lane: batch::Lane, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnMut(
                &'c mut sqlx::AnyConnection,
            ) -> futures_util::future::BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        let result = match &self.inner.batcher {
            Some(b) => b.write(lane, f).await,
            None => {
                let mut f = f;
                let gate = gate::current();
                let mut tx = self.write_tx().await?;
                // Waiting for a connection may have outlasted the request's deadline.
                if !gate::try_start(gate.as_deref()) {
                    let _ = tx.rollback().await;
                    return Err(StoreError::Cancelled);
                }
                match f(&mut tx).await {
                    Ok(v) => {
                        tx.commit().await?;
                        Ok(v)
                    }
                    Err(e) => {
                        let _ = tx.rollback().await; // The error that matters is `e`.
                        Err(e)
                    }
                }
            }
        };
        if result.is_ok() {
            self.queue_marked();
        }
        result
    }

    pub(crate) fn writer(&self) -> &AnyPool {
        &self.inner.write
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.inner.read
    }

    /// The store's own SQLite read connections, for the lookups on the hot path; `None` on
    /// PostgreSQL and for an in-memory SQLite database, which read from their pool.
    pub(crate) fn readers(&self) -> Option<&readers::Readers> {
        self.inner.readers.as_ref()
    }
}

/// A bind parameter of a query built at run time (filter narrowing, `IN` lists).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// A statement with an `IN (…)` list of `len` values, whose text changes with the length.
///
/// Lists longer than one are not kept as prepared statements. On PostgreSQL a prepared
/// statement runs on a generic plan (made without the values) after five executions, kept
/// until the table is next analyzed; one made while a connector was nearly empty is a scan,
/// which stays one as the connector grows (measured in `store/tests/plans.rs`: a fixed
/// statement then touched every block of a 30,000-user connector). Unprepared, the
/// statement is planned at each execution with its values and the table's current size. A
/// text per length would also fill sqlx's per-connection cache (100 statements) and push
/// the store's fixed statements out. A list of one has one text and is the common case
/// (one resource rendered), so it stays prepared like the store's fixed statements, which
/// rely on PostgreSQL re-planning after each ANALYZE (autovacuum; docs/ARCHITECTURE.md,
/// "Query plans"). SQLite plans from fixed statistics
/// (`migrations/sqlite/0005_planner_stats.sql`), never from a table's size at the time.
pub(crate) fn dynamic(
    sql: &str,
    len: usize,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(sql).persistent(len <= 1)
}

/// Binds [`Arg`]s to a query in order.
pub(crate) fn bind_args<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: &[Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.clone()),
            Arg::Int(i) => q.bind(*i),
            Arg::Bool(b) => q.bind(*b),
        };
    }
    q
}

/// The file of a SQLite URL (`sqlite://PATH`, `sqlite:PATH`, with or without `?…`), or
/// `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or(url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

/// Creates a missing SQLite database file readable and writable by its owner only (0600),
/// before SQLite opens it: the file holds every employee's identity, and SQLite creates its
/// `-wal` and `-shm` files with the database file's permissions. (Under systemd the unit's
/// `UMask=0077` does the same for every file; this covers the CLI and other launchers.) An
/// existing file that others can read is left as the operator made it, with a warning.
fn private_sqlite_file(url: &str) -> StoreResult<()> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if let Ok(meta) = std::fs::metadata(&path) {
                    if meta.permissions().mode() & 0o077 != 0 {
                        tracing::warn!(
                            file.mode = format!("{:o}", meta.permissions().mode() & 0o777),
                            "the SQLite database file is readable or writable by other users; \
                             `chmod 600` it (and its -wal and -shm files)"
                        );
                    }
                }
            }
            // A missing folder and the like: SQLite reports it, with the path, when it opens.
            Err(_) => {}
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Adds `mode=` to a SQLite URL unless it has one.
fn sqlite_url(url: &str, mode: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode={mode}")
    } else {
        format!("{url}?mode={mode}")
    }
}

/// Hides the secrets of a URL (a database URL, or any URL a setting holds) for logs, error
/// messages and `check-config`: the password of the userinfo, and the value of every query
/// parameter whose name says it is one (`password`, `sslpassword`, `pwd`, `secret`,
/// `token`...; libpq and sqlx read `?password=` as the password).
///
/// The userinfo ends at the **last** `@` before the path: a password may hold a raw `@`
/// (`postgres://app:p@ss@db/usersync`), and cutting at the first one would print the rest
/// of the password as if it were the host.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_query(url);
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let mut out = format!("{scheme}://");
    // The authority runs to the first `/` after its last `@` (a SQLite path has no `@`
    // before its first `/`, so nothing of it is touched).
    let authority_end = match before_query.rfind('@') {
        Some(at) => before_query[at..]
            .find('/')
            .map_or(before_query.len(), |p| at + p),
        None => 0,
    };
    let (authority, path) = before_query.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:[redacted]@{host}")),
                // A user name alone may itself be a token (`https://TOKEN@host`).
                None if scheme.starts_with("http") => out.push_str(&format!("[redacted]@{host}")),
                None => out.push_str(&format!("{userinfo}@{host}")),
            }
        }
        None => out.push_str(authority),
    }
    out.push_str(path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_query(q));
    }
    out
}

/// `k=v&k=v` with the values of secret-named keys replaced.
fn redact_query(query: &str) -> String {
    let secret = |k: &str| {
        let k = k.to_ascii_lowercase();
        ["pass", "pwd", "secret", "token", "apikey", "api_key"]
            .iter()
            .any(|s| k.contains(s))
    };
    query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if secret(k) => format!("{k}=[redacted]"),
            _ => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Milliseconds since the Unix epoch.
pub(crate) fn to_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The inverse of [`to_ms`].
pub(crate) fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests;
