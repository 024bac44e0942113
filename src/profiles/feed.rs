//! The Linchpin feed as a stream of chunks: the XML head, then one chunk per page of users
//! read from the store, then the tail. Memory stays at one page (plus the set of usernames
//! already written, which keeps them unique), whatever the number of users.
//!
//! The feed never emits two elements for one username, nor a username it cannot carry:
//! Linchpin aborts the whole import on a duplicate, so one odd name must not cost every
//! profile its update. Such users are left out and counted (`feed.duplicates`,
//! `feed.uncarriable` in the log line at the end; their SCIM ids at debug level).

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::stream::{self, Stream};
use tokio::task::JoinHandle;

use super::resolve::{Resolved, Resolver};
use super::ProfileTargets;
use crate::scim::identifier;
use crate::store::profiles::ProfileRow;
use crate::store::{Store, StoreResult};
use crate::targets::linchpin::{xml, Deprovisioned};

/// Users per store page (one chunk of the body).
pub const PAGE: i64 = 500;

/// How the users of one feed fared, for the log line at its end (counts only: the values
/// are personal data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// User elements written.
    pub written: usize,
    /// Users left out as deprovisioned (`deprovisioned = "omit"`).
    pub inactive: usize,
    /// Users left out by a rule with `on_missing = "skip"`.
    pub skipped: usize,
    /// Users without a valid Confluence username.
    pub unmapped: usize,
    /// Users whose username was already written, compared as Linchpin could (NFC, any
    /// case): Linchpin aborts the whole import on a duplicate (§2.2).
    pub duplicates: usize,
    /// Users whose username holds a character XML 1.0 cannot carry (a control character of
    /// a row stored before such names were refused): written without it, the element
    /// would name somebody else, so the user is left out.
    pub uncarriable: usize,
    /// Fields left out because their rule failed.
    pub failed_fields: usize,
}

struct Cursor {
    resolver: Resolver,
    after: i64,
    state: State,
    seen: HashSet<String>,
    stats: FeedStats,
    /// The next page, already being read (and its documents parsed) on another task while
    /// this one maps and renders the current page.
    next: Option<JoinHandle<StoreResult<Vec<ProfileRow>>>>,
}

impl Drop for Cursor {
    fn drop(&mut self) {
        // Linchpin hung up: do not leave a read running for nobody.
        if let Some(next) = self.next.take() {
            next.abort();
        }
    }
}

fn fetch(store: Store, connector: String, after: i64) -> JoinHandle<StoreResult<Vec<ProfileRow>>> {
    tokio::spawn(async move { store.profile_page(&connector, after, PAGE).await })
}

#[derive(PartialEq)]
enum State {
    Head,
    Body,
    Done,
}

impl Cursor {
    /// The next non-empty chunk of users, or `None` at the end.
    async fn next_users(&mut self) -> Result<Option<String>, std::io::Error> {
        loop {
            let store = self.resolver.store().clone();
            let connector = self.resolver.connector().to_owned();
            let pending = self
                .next
                .take()
                .unwrap_or_else(|| fetch(store.clone(), connector.clone(), self.after));
            let rows = pending
                .await
                .map_err(std::io::Error::other)?
                .map_err(std::io::Error::other)?;
            let Some(last) = rows.last() else {
                return Ok(None);
            };
            self.after = last.seq;
            if rows.len() as i64 == PAGE {
                self.next = Some(fetch(store, connector, self.after));
            }
            let resolved = self
                .resolver
                .resolve(&rows)
                .await
                .map_err(std::io::Error::other)?;
            let targets = self.resolver.targets().clone();
            let mut out = String::with_capacity(rows.len() * 512);
            for (row, r) in rows.iter().zip(resolved) {
                let p = match r {
                    Resolved::Profile(p) => p,
                    Resolved::Skipped { .. } => {
                        self.stats.skipped += 1;
                        continue;
                    }
                    Resolved::Unmapped(_) => {
                        self.stats.unmapped += 1;
                        continue;
                    }
                };
                if !p.active && targets.feed.deprovisioned == Deprovisioned::Omit {
                    self.stats.inactive += 1;
                    continue;
                }
                if !xml::can_carry(&p.username) {
                    self.stats.uncarriable += 1;
                    tracing::debug!(scim.id = %row.id, "feed: username cannot be carried in XML; user left out");
                    continue;
                }
                if !self.seen.insert(identifier::fold(&p.username)) {
                    self.stats.duplicates += 1;
                    tracing::debug!(scim.id = %row.id, "feed: username already written; user left out");
                    continue;
                }
                self.stats.failed_fields += p
                    .fields
                    .iter()
                    .filter(|f| matches!(f.value, crate::mapping::FieldValue::Failed(_)))
                    .count();
                xml::user(&mut out, &targets.feed, &p);
                self.stats.written += 1;
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}

/// The feed of `connector` as a stream of byte chunks (call within a Tokio runtime: the next
/// page is read on a spawned task). A store error ends the stream with an error, which
/// aborts the response: Linchpin then sees a truncated document and imports
/// nothing, rather than a partial feed that would leave users out.
pub fn stream(
    store: Store,
    connector: String,
    targets: Arc<ProfileTargets>,
) -> impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let cursor = Cursor {
        resolver: Resolver::new(store, &connector, targets),
        after: 0,
        state: State::Head,
        seen: HashSet::new(),
        stats: FeedStats::default(),
        next: None,
    };
    stream::unfold(cursor, |mut c| async move {
        match c.state {
            State::Done => None,
            State::Head => {
                c.state = State::Body;
                let head = xml::head(&c.resolver.targets().feed);
                Some((Ok(head.into_bytes()), c))
            }
            State::Body => match c.next_users().await {
                Ok(Some(chunk)) => Some((Ok(chunk.into_bytes()), c)),
                Ok(None) => {
                    c.state = State::Done;
                    let s = c.stats;
                    tracing::info!(
                        connector = c.resolver.connector(),
                        feed.written = s.written,
                        feed.inactive = s.inactive,
                        feed.skipped = s.skipped,
                        feed.unmapped = s.unmapped,
                        feed.duplicates = s.duplicates,
                        feed.uncarriable = s.uncarriable,
                        feed.failed_fields = s.failed_fields,
                        feed.manager_unresolved = c.resolver.stats().unresolved(),
                        "Linchpin feed served"
                    );
                    let tail = xml::tail(&c.resolver.targets().feed);
                    Some((Ok(tail.into_bytes()), c))
                }
                Err(e) => {
                    c.state = State::Done;
                    tracing::error!(
                        connector = c.resolver.connector(),
                        error.message = %crate::errors::error_chain(&e),
                        "the Linchpin feed stopped: store error"
                    );
                    Some((Err(e), c))
                }
            },
        }
    })
}
