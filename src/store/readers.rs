//! SQLite read connections that the store keeps for itself, for the lookups an IdP sends
//! before nearly every write (`filter=userName eq …`, `GET /Users/{id}`).
//!
//! Why not the read pool: sqlx pings a connection each time it goes back to its pool (and,
//! unless told otherwise, before handing it out). On SQLite a ping is a round trip to the
//! connection's worker thread, two thread wake-ups, as costly as the query itself: profiled,
//! a lookup spent more time switching threads than in SQL (README.md "Benchmark"). A
//! connection held here is lent under a mutex and never goes back to a pool, so a lookup
//! costs one round trip.
//!
//! What the ping was for is kept: a lookup abandoned half way (the client went away, the
//! request's time limit) leaves its slot marked unclean, and the next borrower pings first,
//! which waits for whatever the worker still had queued. A connection whose ping fails is
//! dropped and opened again. Waiting for a slot is bounded by `store.acquire_timeout`, as the
//! pool's acquire is, and a timeout is the same `PoolTimedOut` (answered 429).
//!
//! PostgreSQL does not use this: its connections break when the server restarts, which the
//! pool's bookkeeping handles, and its pings are on the pool's side of a network round trip
//! that reads cannot avoid anyway.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::{Connection, Executor};
use tokio::sync::{Mutex, MutexGuard, Semaphore, SemaphorePermit};

/// The store's own SQLite read connections.
pub(crate) struct Readers {
    slots: Vec<Mutex<Slot>>,
    /// One permit per slot: a borrower holding one always finds a slot unlocked, and waiting
    /// borrowers are served in order.
    free: Semaphore,
    /// Where the next borrower starts looking, so borrowers spread over the slots.
    next: AtomicUsize,
    url: String,
    setup: String,
    wait: Duration,
}

#[derive(Default)]
struct Slot {
    conn: Option<AnyConnection>,
    /// False while lent out, and after a borrower that did not finish: the next borrower
    /// pings before it queries.
    clean: bool,
}

/// A lent read connection. Call [`Reader::done`] after a query that finished; dropping it
/// without (an error, a cancelled request) leaves the connection to be checked by the next
/// borrower.
pub(crate) struct Reader<'a> {
    slot: MutexGuard<'a, Slot>,
    _permit: SemaphorePermit<'a>,
}

impl Readers {
    /// `n` slots on `url` (opened read-only), each connection set up with `setup` when it is
    /// opened. Connections open on first use.
    pub(crate) fn new(url: String, setup: String, n: u32, wait: Duration) -> Readers {
        let n = n.max(1) as usize;
        Readers {
            slots: (0..n).map(|_| Mutex::new(Slot::default())).collect(),
            free: Semaphore::new(n),
            next: AtomicUsize::new(0),
            url,
            setup,
            wait,
        }
    }

    /// A free connection, else the first to come free within the wait.
    pub(crate) async fn get(&self) -> Result<Reader<'_>, sqlx::Error> {
        let permit = tokio::time::timeout(self.wait, self.free.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut slot = (0..n)
            .find_map(|i| self.slots[(start + i) % n].try_lock().ok())
            .expect("a permit is held only while a slot is free");
        if !slot.clean {
            if let Some(conn) = slot.conn.as_mut() {
                if conn.ping().await.is_err() {
                    slot.conn = None;
                }
            }
        }
        if slot.conn.is_none() {
            let mut conn = AnyConnection::connect(&self.url).await?;
            conn.execute(self.setup.as_str()).await?;
            slot.conn = Some(conn);
        }
        slot.clean = false;
        Ok(Reader {
            slot,
            _permit: permit,
        })
    }

    /// Closes every connection (waiting for those lent out); later borrowers get
    /// `PoolClosed`.
    pub(crate) async fn close(&self) {
        // Every permit: the slots are then all back and none can be lent again.
        let all = self.free.acquire_many(self.slots.len() as u32).await;
        self.free.close();
        for slot in &self.slots {
            if let Some(conn) = slot.lock().await.conn.take() {
                let _ = conn.close().await;
            }
        }
        drop(all);
    }
}

impl Reader<'_> {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        self.slot
            .conn
            .as_mut()
            .expect("Readers::get lends a slot with a connection")
    }

    /// The query finished: the connection needs no check before its next use.
    pub(crate) fn done(mut self) {
        self.slot.clean = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdb::TestDb;
    use crate::store::{Backend, Store, StoreOptions};

    async fn readers(n: u32, wait_ms: u64) -> (TestDb, Store, Readers) {
        let db = TestDb::create(Backend::Sqlite).await;
        let store = Store::connect(&db.url, &StoreOptions::default())
            .await
            .expect("store");
        store.migrate().await.expect("migrate");
        let readers = Readers::new(
            super::super::sqlite_url(&db.url, "ro"),
            "PRAGMA busy_timeout = 1000;".into(),
            n,
            Duration::from_millis(wait_ms),
        );
        (db, store, readers)
    }

    async fn count_connectors(r: &mut Reader<'_>) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM connectors")
            .fetch_one(r.conn())
            .await
            .expect("query")
    }

    #[tokio::test]
    async fn a_borrower_waits_for_a_free_connection_and_gives_up_as_the_pool_would() {
        let (_db, _store, readers) = readers(2, 100).await;
        let a = readers.get().await.expect("first");
        let _b = readers.get().await.expect("second");
        let err = readers.get().await.err().expect("no third connection");
        assert!(matches!(err, sqlx::Error::PoolTimedOut), "{err:?}");
        // One comes back while another borrower waits: it gets that one.
        let waiter = readers.get();
        a.done();
        let mut c = waiter.await.expect("the returned connection");
        assert_eq!(count_connectors(&mut c).await, 0);
    }

    #[tokio::test]
    async fn a_connection_abandoned_mid_query_is_checked_and_serves_the_next_borrower() {
        let (_db, store, readers) = readers(1, 1000).await;
        store
            .create_connector("a", "hash", time::OffsetDateTime::now_utc())
            .await
            .expect("connector");
        {
            let mut r = readers.get().await.expect("borrow");
            // Dropped before it is polled to the end: what a cancelled request leaves.
            let q = sqlx::query("SELECT * FROM connectors").fetch_all(r.conn());
            let _ = tokio::time::timeout(Duration::ZERO, q).await;
        }
        assert!(!readers.slots[0].lock().await.clean, "left unclean");
        let mut r = readers.get().await.expect("borrow again");
        assert_eq!(count_connectors(&mut r).await, 1);
        r.done();
        assert!(readers.slots[0].lock().await.clean);
    }

    #[tokio::test]
    async fn closed_readers_lend_nothing() {
        let (_db, _store, readers) = readers(2, 100).await;
        let mut r = readers.get().await.expect("borrow");
        assert_eq!(count_connectors(&mut r).await, 0);
        r.done();
        readers.close().await;
        let err = readers.get().await.err().expect("closed");
        assert!(matches!(err, sqlx::Error::PoolClosed), "{err:?}");
    }
}
