//! Group commit for SQLite: SCIM writes that arrive together share one transaction.
//!
//! SQLite has one writer. Without batching, every write waits its turn for the single writer
//! connection, and each hand-over costs a task wake-up plus, with `synchronous = FULL`, an
//! fsync. The batcher owns the turn instead: it takes every write that is queued, runs them
//! one after another in one transaction, commits once, and only then answers each caller.
//! When a write fails, the batch is rolled back and run again with each write inside its
//! own `SAVEPOINT`, so the failing write rolls back alone, as if it had its own transaction
//! (`run_batch`). Nothing is acknowledged
//! before its commit, so "nothing an IdP was told is stored is ever lost" holds unchanged.
//!
//! The single writer is shared fairly: writes queue per connector and each batch takes from
//! the connectors in turn, up to a bound on its weight, so one connector's flood of large
//! writes delays another's small write by about one large write (`Lane`).
//!
//! A write that has not started when its request passes its deadline, or whose caller has gone,
//! is skipped rather than run: see `store/gate.rs`.
//!
//! PostgreSQL has many writers and does not batch: `Store::write` runs the write in a
//! transaction of its own there.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::{AnyConnection, AnyPool, Executor};
use tokio::sync::{mpsc, oneshot, Notify};

use super::gate::{self, WriteGate};
use super::heads;
use super::{StoreError, StoreResult};

/// Most writes committed together; a bound on the latency one batch adds to its last write.
const MAX_BATCH: usize = 64;
/// Most work committed together, in [`Lane`] weight units (about a KiB of document or a few
/// index rows each): a batch of small writes is full at [`MAX_BATCH`], one of large ones
/// (a user rewriting a thousand e-mails) holds one or two, so a small write from another
/// connector never waits behind many large ones.
const MAX_BATCH_WEIGHT: u32 = 128;
/// Writes waiting for the batcher before callers wait for room (then the pool's acquire
/// timeout and a 429 take over, as without batching).
const QUEUE: usize = 1024;

/// The type-erased result of one write: whether it succeeded (to release or roll back its
/// savepoint) and its `StoreResult<T>`, boxed.
type Outcome = (bool, Box<dyn Any + Send>);

/// One write: a closure that runs on the writer connection, inside the batch transaction.
/// It may run twice: a batch in which a write fails runs again with savepoints
/// ([`run_batch`]), so each run starts from the closure's own copy of its inputs.
pub(crate) type Job =
    Box<dyn for<'c> FnMut(&'c mut AnyConnection) -> BoxFuture<'c, Outcome> + Send>;

/// What a caller hears: its write's boxed result, or why the whole batch failed.
type Answer = Result<Box<dyn Any + Send>, Failure>;

struct Request {
    job: Job,
    reply: oneshot::Sender<Answer>,
    /// The write gate of the request that made this write (`store/gate.rs`).
    gate: Option<Arc<WriteGate>>,
    lane: Lane,
}

/// Who a write is for and how much work it is, so the batcher can share the single writer
/// fairly: writes queue per lane (a connector), and batches take from the lanes in turn,
/// so a connector flooding the writer delays another's writes by about one of its own
/// writes, not by its whole queue.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lane {
    /// The connector (empty for writes that are nobody's: the CLI, the worker).
    pub(crate) name: String,
    /// Relative work, at least 1.
    pub(crate) weight: u32,
}

/// Why a write was not committed: its whole batch failed, or it never started.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    kind: FailureKind,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    Busy,
    Database,
    /// The request's deadline passed before the write started; it was skipped.
    Cancelled,
}

impl From<Failure> for StoreError {
    fn from(f: Failure) -> Self {
        let e = sqlx::Error::Protocol(f.message);
        match f.kind {
            FailureKind::Busy => StoreError::Busy(e),
            FailureKind::Database => StoreError::Database(e),
            FailureKind::Cancelled => StoreError::Cancelled,
        }
    }
}

fn failure(e: &sqlx::Error) -> Failure {
    let busy = matches!(e, sqlx::Error::PoolTimedOut)
        || matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6")));
    Failure {
        kind: if busy {
            FailureKind::Busy
        } else {
            FailureKind::Database
        },
        message: format!("the write batch failed: {e}"),
    }
}

/// The handle through which writes reach the batcher task.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Request>,
}

impl Batcher {
    /// Starts the batcher task on `pool` (the single SQLite writer); `committed` is notified
    /// after every commit (the sync queue may have new keys).
    pub(crate) fn start(pool: AnyPool, committed: Arc<Notify>) -> Batcher {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx, committed));
        Batcher { tx }
    }

    /// Runs `f` in a coming batch (its lane's turn) and returns its result once the batch is
    /// committed.
    pub(crate) async fn write<T, F>(&self, lane: Lane, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let mut f = f;
        let job: Job = Box::new(move |conn| {
            let run = f(conn);
            Box::pin(async move {
                let result = run.await;
                (result.is_ok(), Box::new(result) as Box<dyn Any + Send>)
            })
        });
        let closed = || StoreError::Database(sqlx::Error::PoolClosed);
        let gate = gate::current();
        self.tx
            .send(Request {
                job,
                reply,
                gate,
                lane,
            })
            .await
            .map_err(|_| closed())?;
        match answer.await {
            Ok(Ok(boxed)) => match boxed.downcast::<StoreResult<T>>() {
                Ok(result) => *result,
                Err(_) => Err(StoreError::Database(sqlx::Error::Protocol(
                    "write batch returned a value of another type".to_owned(),
                ))),
            },
            Ok(Err(f)) => Err(f.into()),
            Err(_) => Err(closed()),
        }
    }
}

/// Writes waiting, per lane, and the lanes' turn order.
#[derive(Default)]
struct Lanes {
    queues: HashMap<String, VecDeque<Request>>,
    turn: VecDeque<String>,
    waiting: usize,
}

impl Lanes {
    fn push(&mut self, r: Request) {
        let queue = self.queues.entry(r.lane.name.clone()).or_default();
        if queue.is_empty() {
            self.turn.push_back(r.lane.name.clone());
        }
        queue.push_back(r);
        self.waiting += 1;
    }

    /// The next batch: one write from each lane in turn, until the batch is full by count
    /// or weight (it always takes at least one).
    fn batch(&mut self) -> Vec<Request> {
        let mut batch = Vec::new();
        let mut weight = 0u32;
        while batch.len() < MAX_BATCH {
            let Some(name) = self.turn.pop_front() else {
                break;
            };
            let Some(queue) = self.queues.get_mut(&name) else {
                continue;
            };
            let next_weight = queue.front().map_or(0, |r| r.lane.weight.max(1));
            if !batch.is_empty() && weight + next_weight > MAX_BATCH_WEIGHT {
                self.turn.push_front(name);
                break;
            }
            if let Some(r) = queue.pop_front() {
                weight += next_weight;
                self.waiting -= 1;
                batch.push(r);
            }
            if queue.is_empty() {
                self.queues.remove(&name);
            } else {
                self.turn.push_back(name);
            }
        }
        batch
    }
}

/// Batches that run with savepoints from the start after one had to fall back to them: a
/// connector whose writes keep failing (an IdP re-sending creates that conflict) would
/// otherwise pay for every batch twice.
const SAVEPOINT_BATCHES_AFTER_FAILURE: u32 = 8;

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Request>, committed: Arc<Notify>) {
    let mut lanes = Lanes::default();
    let mut with_savepoints = 0u32;
    loop {
        if lanes.waiting == 0 {
            match rx.recv().await {
                Some(r) => lanes.push(r),
                None => return,
            }
        }
        // Take what else has arrived (bounded: the channel's room is the back-pressure).
        while lanes.waiting < QUEUE {
            match rx.try_recv() {
                Ok(r) => lanes.push(r),
                Err(_) => break,
            }
        }
        let batch = lanes.batch().into_iter().map(Entry::from).collect();
        let mode = if with_savepoints > 0 {
            with_savepoints -= 1;
            Mode::Savepoints
        } else {
            Mode::Plain
        };
        if run_batch(&pool, batch, mode).await == Ran::FellBack {
            with_savepoints = SAVEPOINT_BATCHES_AFTER_FAILURE;
        }
        committed.notify_one();
    }
}

/// One write of a batch, and whether it has started (then it runs to its outcome, whatever
/// its request's deadline says by now).
struct Entry {
    job: Job,
    reply: oneshot::Sender<Answer>,
    gate: Option<Arc<WriteGate>>,
    started: bool,
}

impl From<Request> for Entry {
    fn from(r: Request) -> Self {
        Entry {
            job: r.job,
            reply: r.reply,
            gate: r.gate,
            started: false,
        }
    }
}

impl Entry {
    /// Starts the write unless its caller is gone (the client hung up) or its request passed
    /// its deadline: then it is answered as cancelled and `false` returned, so nothing is
    /// committed that nobody was told. A write that started once (a batch running again)
    /// runs again.
    fn start(&mut self) -> bool {
        if self.started {
            return true;
        }
        self.started = !self.reply.is_closed() && gate::try_start(self.gate.as_deref());
        self.started
    }

    fn cancelled(self) {
        let _ = self.reply.send(Err(Failure {
            kind: FailureKind::Cancelled,
            message: "the request ran out of time before its write started".to_owned(),
        }));
    }
}

/// How a batch runs its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One after another in the transaction, no savepoints: the common case, where every
    /// write succeeds. A failing write leaves its partial work in the transaction, so the
    /// batch is rolled back and run again in [`Mode::Savepoints`].
    Plain,
    /// Each write in its own savepoint: a failing write rolls back alone.
    Savepoints,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Done,
    /// A write failed in [`Mode::Plain`]; the batch ran again with savepoints.
    FellBack,
}

/// Runs one write on the connection: whether it succeeded and its answer. A panicking
/// write (a bug) fails alone; the batcher and the other writes go on.
async fn run_job(job: &mut Job, conn: &mut AnyConnection) -> (bool, Answer) {
    match AssertUnwindSafe(job(conn)).catch_unwind().await {
        Ok((ok, value)) => (ok, Ok(value)),
        Err(_) => (
            false,
            Err(Failure {
                kind: FailureKind::Database,
                message: "the write panicked; it was rolled back".to_owned(),
            }),
        ),
    }
}

fn fail_all(batch: Vec<Entry>, f: &Failure) {
    for e in batch {
        let _ = e.reply.send(Err(f.clone()));
    }
}

/// Runs a batch in one transaction and answers every write once it is committed (or
/// every write with the failure, when the transaction is not).
///
/// Savepoints cost every write a round trip to the connection's worker thread and a copy
/// of each page it touches (README.md "Benchmark"), to undo a write that fails, which
/// almost none do. So a batch first runs plain; only when a write fails is the
/// transaction rolled back, the writes run again in the same order, each in its own
/// savepoint, and the failing one answered from that run. A write's answer therefore always
/// comes from the run that was committed: nothing is answered from the discarded one.
async fn run_batch(pool: &AnyPool, mut batch: Vec<Entry>, mode: Mode) -> Ran {
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => {
            fail_all(batch, &failure(&e));
            return Ran::Done;
        }
    };
    if mode == Mode::Plain {
        // Nothing but this batch can move an audit chain's head until it commits or rolls
        // back, so its writes may keep the heads in memory (`store/heads.rs`).
        match heads::keep(plain(&mut conn, &mut batch)).await {
            Plain::Committed(answers) => {
                for (e, answer) in batch.into_iter().zip(answers) {
                    let _ = e.reply.send(answer);
                }
                return Ran::Done;
            }
            Plain::Failed(f) => {
                fail_all(batch, &f);
                return Ran::Done;
            }
            Plain::WriteFailed => {}
        }
        savepoints(&mut conn, batch).await;
        return Ran::FellBack;
    }
    savepoints(&mut conn, batch).await;
    Ran::Done
}

enum Plain {
    /// Committed: the answers, one per entry left in the batch.
    Committed(Vec<Answer>),
    /// The transaction failed as a whole (begin or commit); nothing is committed.
    Failed(Failure),
    /// A write failed; the transaction is rolled back and the batch should run again
    /// with savepoints.
    WriteFailed,
}

/// [`Mode::Plain`]: every write in one transaction without savepoints. Cancelled writes are
/// answered and taken out of `batch` (they never run again).
async fn plain(conn: &mut AnyConnection, batch: &mut Vec<Entry>) -> Plain {
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        return Plain::Failed(failure(&e));
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut kept = Vec::with_capacity(batch.len());
    let mut rest = std::mem::take(batch).into_iter();
    let mut write_failed = false;
    for mut entry in rest.by_ref() {
        if !entry.start() {
            entry.cancelled();
            continue;
        }
        let (ok, answer) = run_job(&mut entry.job, conn).await;
        kept.push(entry);
        if !ok {
            write_failed = true;
            break;
        }
        answers.push(answer);
    }
    // The writes not reached stay in the batch for the run with savepoints.
    kept.extend(rest);
    *batch = kept;
    if write_failed {
        if let Err(e) = conn.execute("ROLLBACK").await {
            return Plain::Failed(failure(&e));
        }
        return Plain::WriteFailed;
    }
    match conn.execute("COMMIT").await {
        Ok(_) => Plain::Committed(answers),
        Err(e) => {
            // Nothing of this batch is committed: every caller hears so, none was answered.
            let _ = conn.execute("ROLLBACK").await;
            Plain::Failed(failure(&e))
        }
    }
}

/// [`Mode::Savepoints`]: every write in its own savepoint inside one transaction, so a
/// failing write rolls back alone.
async fn savepoints(conn: &mut AnyConnection, batch: Vec<Entry>) {
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        return fail_all(batch, &failure(&e));
    }
    let mut answers: Vec<(oneshot::Sender<Answer>, Answer)> = Vec::with_capacity(batch.len());
    let mut broken: Option<Failure> = None;
    // The savepoint of the last write that succeeded is released together with the next
    // statement the batch sends (the next write's SAVEPOINT, or COMMIT): one round trip to
    // the connection's worker thread per write instead of two. A failing RELEASE breaks the
    // batch, and then no write of it is answered as committed.
    let mut release_pending = false;
    for mut entry in batch {
        if let Some(f) = &broken {
            answers.push((entry.reply, Err(f.clone())));
            continue;
        }
        if !entry.start() {
            entry.cancelled();
            continue;
        }
        let open = if std::mem::take(&mut release_pending) {
            "RELEASE usersync_write; SAVEPOINT usersync_write"
        } else {
            "SAVEPOINT usersync_write"
        };
        if let Err(e) = conn.execute(sqlx::query(open)).await {
            let f = failure(&e);
            answers.push((entry.reply, Err(f.clone())));
            broken = Some(f);
            continue;
        }
        let (ok, answer) = run_job(&mut entry.job, conn).await;
        if ok {
            release_pending = true;
        } else if let Err(e) = conn
            .execute("ROLLBACK TO usersync_write; RELEASE usersync_write")
            .await
        {
            let f = failure(&e);
            answers.push((entry.reply, Err(f.clone())));
            broken = Some(f);
            continue;
        }
        answers.push((entry.reply, answer));
    }
    let end = if release_pending {
        "RELEASE usersync_write; COMMIT"
    } else {
        "COMMIT"
    };
    let commit = match &broken {
        Some(f) => Err(f.clone()),
        None => conn
            .execute(sqlx::query(end))
            .await
            .map(|_| ())
            .map_err(|e| failure(&e)),
    };
    match commit {
        Ok(()) => {
            for (reply, answer) in answers {
                let _ = reply.send(answer);
            }
        }
        Err(f) => {
            // Nothing of this batch is committed: every caller hears so, none was answered.
            let _ = conn.execute("ROLLBACK").await;
            for (reply, _) in answers {
                let _ = reply.send(Err(f.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lane: &str, weight: u32) -> Request {
        let (reply, _) = oneshot::channel();
        Request {
            job: Box::new(|_| Box::pin(async { (true, Box::new(()) as Box<dyn Any + Send>) })),
            reply,
            gate: None,
            lane: Lane {
                name: lane.to_owned(),
                weight,
            },
        }
    }

    fn lanes_of(batch: &[Request]) -> Vec<&str> {
        batch.iter().map(|r| r.lane.name.as_str()).collect()
    }

    /// A batcher on a private in-memory SQLite database with one table of numbers.
    async fn batcher() -> (Batcher, AnyPool) {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        (Batcher::start(pool.clone(), Arc::new(Notify::new())), pool)
    }

    /// A write that inserts `n`, then fails when `fail` says so (after its insert: the
    /// partial work a savepoint-free batch has to undo).
    fn insert(
        b: &Batcher,
        n: i64,
        fail: bool,
    ) -> impl std::future::Future<Output = StoreResult<i64>> + '_ {
        b.write(Lane::default(), move |conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (n) VALUES ($1)")
                    .bind(n)
                    .execute(&mut *conn)
                    .await?;
                if fail {
                    return Err(StoreError::Conflict(format!("write {n}")));
                }
                Ok(n)
            })
        })
    }

    async fn stored(pool: &AnyPool) -> Vec<i64> {
        sqlx::query_scalar("SELECT n FROM t ORDER BY n")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_write_failing_after_partial_work_fails_alone_in_its_batch() {
        let (b, pool) = batcher().await;
        // Queued before the batcher runs (one thread): one batch of five.
        let (r1, r2, r3, r4, r5) = tokio::join!(
            insert(&b, 1, false),
            insert(&b, 2, false),
            insert(&b, 3, true),
            insert(&b, 4, false),
            insert(&b, 5, true),
        );
        assert_eq!((r1.unwrap(), r2.unwrap(), r4.unwrap()), (1, 2, 4));
        assert!(matches!(r3, Err(StoreError::Conflict(m)) if m == "write 3"));
        assert!(matches!(r5, Err(StoreError::Conflict(m)) if m == "write 5"));
        assert_eq!(stored(&pool).await, [1, 2, 4]);
        // The batches after a fallback (with savepoints for a while) commit as usual.
        let (r6, r7) = tokio::join!(insert(&b, 6, false), insert(&b, 7, true));
        assert_eq!(r6.unwrap(), 6);
        assert!(r7.is_err());
        assert_eq!(stored(&pool).await, [1, 2, 4, 6]);
    }

    #[tokio::test]
    async fn a_batch_of_writes_that_all_succeed_commits_them_all() {
        let (b, pool) = batcher().await;
        let writes: Vec<_> = (1..=20).map(|n| insert(&b, n, false)).collect();
        let results = futures_util::future::join_all(writes).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(stored(&pool).await, (1..=20).collect::<Vec<_>>());
    }

    #[test]
    fn a_small_write_is_not_queued_behind_another_connectors_flood() {
        let mut lanes = Lanes::default();
        for _ in 0..10 {
            lanes.push(request("flood", 100));
        }
        lanes.push(request("small", 1));
        assert_eq!(lanes_of(&lanes.batch()), ["flood", "small"]);
        // Then the flood goes on, one heavy write per batch.
        assert_eq!(lanes_of(&lanes.batch()), ["flood"]);
        assert_eq!(lanes.waiting, 8);
    }

    #[test]
    fn small_writes_of_one_connector_are_still_committed_together() {
        let mut lanes = Lanes::default();
        for _ in 0..100 {
            lanes.push(request("idp", 1));
        }
        lanes.push(request("other", 1));
        let first = lanes.batch();
        assert_eq!(first.len(), MAX_BATCH);
        assert!(lanes_of(&first).contains(&"other"));
        assert_eq!(lanes.batch().len(), 100 + 1 - MAX_BATCH);
        assert_eq!(lanes.waiting, 0);
    }
}
