//! Group commit for SQLite: SCIM writes that arrive together share one transaction.
//!
//! SQLite has one writer. Without batching, every write waits its turn for the single writer
//! connection, and each hand-over costs a task wake-up plus, with `synchronous = FULL`, an
//! fsync. The batcher owns the turn instead: it takes every write that is queued, runs each
//! inside its own `SAVEPOINT` (a failing write rolls back alone, as if it had its own
//! transaction), commits once, and only then answers each caller. Nothing is acknowledged
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
pub(crate) type Job =
    Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Outcome> + Send>;

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

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Request>, committed: Arc<Notify>) {
    let mut lanes = Lanes::default();
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
        let batch = lanes.batch();
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
    // The savepoint of the last write that succeeded is released together with the next
    // statement the batch sends (the next write's SAVEPOINT, or COMMIT): one round trip to
    // the connection's worker thread per write instead of two. A failing RELEASE breaks the
    // batch, and then no write of it is answered as committed.
    let mut release_pending = false;
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
        let open = if std::mem::take(&mut release_pending) {
            "RELEASE usersync_write; SAVEPOINT usersync_write"
        } else {
            "SAVEPOINT usersync_write"
        };
        if let Err(e) = conn.execute(sqlx::query(open)).await {
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
        if ok {
            release_pending = true;
        } else if let Err(e) = conn
            .execute("ROLLBACK TO usersync_write; RELEASE usersync_write")
            .await
        {
            let f = failure(&e);
            answers.push((req.reply, Err(f.clone())));
            broken = Some(f);
            continue;
        }
        answers.push((req.reply, answer));
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
