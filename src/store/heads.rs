//! The audit chains' heads, kept in memory for the length of one SQLite write batch, so that a
//! write appends its audit row in the same round trip as its other statements.
//!
//! Appending a row needs its chain's head: the row's number and the previous row's hash,
//! which the row's own hash covers (`store/audit.rs`). Read from the table, that is a round
//! trip to the writer's worker thread before the row can be sent: the second of a create's
//! two round trips, about a fifth of the single writer's time per create (README.md
//! "Benchmark"). Inside a batch (`store/batch.rs`) the batcher holds SQLite's write lock from
//! `BEGIN IMMEDIATE` to `COMMIT`, so only the batch itself can move a head: the batch reads
//! every head once, on its first append, and then knows each one.
//!
//! Only a batch without savepoints keeps heads. In it, a failing write rolls the whole batch
//! back, and the heads are dropped with the transaction; a batch with savepoints undoes single
//! writes and reads each head from the table. Should a kept head ever disagree with the
//! table, the row's number either repeats one already in the chain, which the unique index on
//! `(chain, chain_seq)` refuses (the write fails, its batch runs again with savepoints, from
//! the table), or skips one, which `audit verify` reports as a gap. Every append goes through
//! `store/audit.rs`, which tells this module each head it moves.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;

use sqlx::AnyConnection;

use super::rows::from_row;
use super::StoreResult;

/// A chain's head: the number of its last row and that row's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) seq: i64,
    pub(crate) hash: String,
}

tokio::task_local! {
    /// The heads of the batch running on this task; `None` until its first append reads them.
    static HEADS: RefCell<Option<HashMap<i64, Head>>>;
}

/// Runs `batch`, a batch of writes without savepoints on the SQLite writer, keeping the heads
/// its writes move in memory until it ends.
pub(crate) async fn keep<F: Future>(batch: F) -> F::Output {
    HEADS.scope(RefCell::new(None), batch).await
}

struct HeadRow {
    chain: i64,
    head_seq: i64,
    head_hash: String,
}

from_row!(HeadRow {
    chain,
    head_seq,
    head_hash
});

/// `chain`'s head when the running write is in a batch that keeps heads (reading every head
/// on the batch's first call); `None` otherwise, and then the caller reads the table.
pub(crate) async fn get(conn: &mut AnyConnection, chain: i64) -> StoreResult<Option<Head>> {
    let known = HEADS.try_with(|h| h.borrow().as_ref().map(|m| m.get(&chain).cloned()));
    match known {
        // Not in a batch that keeps heads.
        Err(_) => Ok(None),
        Ok(Some(head)) => Ok(head),
        Ok(None) => {
            let rows: Vec<HeadRow> =
                sqlx::query_as("SELECT chain, head_seq, head_hash FROM audit_chains")
                    .fetch_all(&mut *conn)
                    .await?;
            let heads: HashMap<i64, Head> = rows
                .into_iter()
                .map(|r| {
                    let head = Head {
                        seq: r.head_seq,
                        hash: r.head_hash,
                    };
                    (r.chain, head)
                })
                .collect();
            let head = heads.get(&chain).cloned();
            // The task-local exists: the first `try_with` above succeeded.
            let _ = HEADS.try_with(|h| *h.borrow_mut() = Some(heads));
            Ok(head)
        }
    }
}

/// Records that the running write appended row `seq` with `hash` to `chain` (nothing
/// outside a batch that keeps heads, or before it read them: then the table is read later
/// and already holds the row).
pub(crate) fn moved(chain: i64, seq: i64, hash: &str) {
    let _ = HEADS.try_with(|h| {
        if let Some(heads) = h.borrow_mut().as_mut() {
            heads.insert(
                chain,
                Head {
                    seq,
                    hash: hash.to_owned(),
                },
            );
        }
    });
}
