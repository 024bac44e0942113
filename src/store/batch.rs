//! Group commit for SQLite: SCIM writes that arrive together share one transaction.
//!
//! SQLite has one writer. Without batching, every write waits its turn for the single writer
//! connection, and each hand-over costs a task wake-up plus, with `synchronous = FULL`, an
//! fsync. The batcher owns the turn instead: it takes every write that is queued, runs each
//! inside its own `SAVEPOINT` (a failing write rolls back alone, as if it had its own
//! transaction), commits once, and only then answers each caller. Nothing is acknowledged
//! before its commit, so "nothing an IdP was told is stored is ever lost" holds unchanged.
//!
//! A write that has not started when its request passes its deadline, or whose caller has gone,
//! is skipped rather than run: see `store/gate.rs`.
//!
//! PostgreSQL has many writers and does not batch: `Store::write` runs the write in a
//! transaction of its own there.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::{AnyConnection, AnyPool, Executor};
use tokio::sync::{mpsc, oneshot, Notify};

use super::gate::{self, WriteGate};
use super::{StoreError, StoreResult};

/// Most writes committed together; a bound on the latency one batch adds to its last write.
const MAX_BATCH: usize = 64;
/// Writes waiting for the batcher before callers wait for room (then the pool's acquire
/// timeout and a 429 take over, as without batching).
const QUEUE: usize = 1024;

/// The type-erased result of one write: whether it succeeded (to release or roll back its
/// savepoint) and its `StoreResult<T>`, boxed.
type Outcome = (bool, Box<dyn Any + Send>);

/// One write: a closure that runs on the writer connection, inside the batch transaction.
pub(crate) type Job =
    Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Outcome> + Send>;

/// What a caller hears: its write's boxed result, or why the whole batch failed.
type Answer = Result<Box<dyn Any + Send>, Failure>;

struct Request {
    job: Job,
    reply: oneshot::Sender<Answer>,
    /// The write gate of the request that made this write (`store/gate.rs`).
    gate: Option<Arc<WriteGate>>,
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

    /// Runs `f` in the next batch and returns its result once the batch is committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = f(conn).await;
                (result.is_ok(), Box::new(result) as Box<dyn Any + Send>)
            })
        });
        let closed = || StoreError::Database(sqlx::Error::PoolClosed);
        let gate = gate::current();
        self.tx
            .send(Request { job, reply, gate })
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

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Request>, committed: Arc<Notify>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        run_batch(&pool, batch).await;
        committed.notify_one();
    }
}

async fn run_batch(pool: &AnyPool, batch: Vec<Request>) {
    let fail_all = |batch: Vec<Request>, f: Failure| {
        for r in batch {
            let _ = r.reply.send(Err(f.clone()));
        }
    };
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => return fail_all(batch, failure(&e)),
    };
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        return fail_all(batch, failure(&e));
    }
    let mut answers: Vec<(oneshot::Sender<Answer>, Answer)> = Vec::with_capacity(batch.len());
    let mut broken: Option<Failure> = None;
    for req in batch {
        if let Some(f) = &broken {
            answers.push((req.reply, Err(f.clone())));
            continue;
        }
        // A write whose caller is gone (the client hung up) or whose request passed its
        // deadline has not started: skip it, so nothing is committed that nobody was told.
        // Past this point the write runs, and its request waits for the outcome.
        if req.reply.is_closed() || !gate::try_start(req.gate.as_deref()) {
            let _ = req.reply.send(Err(Failure {
                kind: FailureKind::Cancelled,
                message: "the request ran out of time before its write started".to_owned(),
            }));
            continue;
        }
        if let Err(e) = conn.execute("SAVEPOINT usersync_write").await {
            let f = failure(&e);
            answers.push((req.reply, Err(f.clone())));
            broken = Some(f);
            continue;
        }
        // A panicking write (a bug) fails alone; the batcher and the other writes go on.
        let outcome = AssertUnwindSafe((req.job)(&mut conn)).catch_unwind().await;
        let (ok, answer) = match outcome {
            Ok((ok, value)) => (ok, Ok(value)),
            Err(_) => (
                false,
                Err(Failure {
                    kind: FailureKind::Database,
                    message: "the write panicked; it was rolled back".to_owned(),
                }),
            ),
        };
        let end = if ok {
            "RELEASE usersync_write"
        } else {
            "ROLLBACK TO usersync_write; RELEASE usersync_write"
        };
        if let Err(e) = conn.execute(end).await {
            let f = failure(&e);
            answers.push((req.reply, Err(f.clone())));
            broken = Some(f);
            continue;
        }
        answers.push((req.reply, answer));
    }
    let commit = match &broken {
        Some(f) => Err(f.clone()),
        None => conn
            .execute("COMMIT")
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
