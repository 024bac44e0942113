//! The Linchpin feed as a stream of chunks: the XML head, then one chunk per page of users
//! read from the store, then the tail. Memory stays at one page (plus the set of usernames
//! already written, which keeps them unique), whatever the number of users.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::stream::{self, Stream};

use super::resolve::{Resolved, Resolver};
use super::ConnectorProfiles;
use crate::store::Store;
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
    /// Users whose username was already written (Linchpin aborts on duplicates, §2.2).
    pub duplicates: usize,
    /// Fields left out because their rule failed.
    pub failed_fields: usize,
}

struct Cursor {
    resolver: Resolver,
    after: i64,
    state: State,
    seen: HashSet<String>,
    stats: FeedStats,
}

#[derive(PartialEq)]
enum State {
    Head,
    Body,
    Done,
}

impl Cursor {
    /// The next non-empty chunk of users, or `None` at the end.
    async fn next_users(&mut self) -> Result<Option<String>, crate::store::StoreError> {
        loop {
            let rows = self
                .resolver
                .store()
                .profile_page(self.resolver.connector(), self.after, PAGE)
                .await?;
            let Some(last) = rows.last() else {
                return Ok(None);
            };
            self.after = last.seq;
            let resolved = self.resolver.resolve(&rows).await?;
            let profiles = self.resolver.profiles().clone();
            let mut out = String::with_capacity(rows.len() * 512);
            for r in resolved {
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
                if !p.active && profiles.feed.deprovisioned == Deprovisioned::Omit {
                    self.stats.inactive += 1;
                    continue;
                }
                if !self.seen.insert(p.username.to_lowercase()) {
                    self.stats.duplicates += 1;
                    continue;
                }
                self.stats.failed_fields += p
                    .fields
                    .iter()
                    .filter(|f| matches!(f.value, crate::mapping::FieldValue::Failed(_)))
                    .count();
                xml::user(&mut out, &profiles.feed, &p);
                self.stats.written += 1;
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}

/// The feed of `connector` as a stream of byte chunks. A store error ends the stream with an
/// error, which aborts the response: Linchpin then sees a truncated document and imports
/// nothing, rather than a partial feed that would leave users out.
pub fn stream(
    store: Store,
    connector: String,
    profiles: Arc<ConnectorProfiles>,
) -> impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let cursor = Cursor {
        resolver: Resolver::new(store, &connector, profiles),
        after: 0,
        state: State::Head,
        seen: HashSet::new(),
        stats: FeedStats::default(),
    };
    stream::unfold(cursor, |mut c| async move {
        match c.state {
            State::Done => None,
            State::Head => {
                c.state = State::Body;
                let head = xml::head(&c.resolver.profiles().feed);
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
                        feed.failed_fields = s.failed_fields,
                        "Linchpin feed served"
                    );
                    let tail = xml::tail(&c.resolver.profiles().feed);
                    Some((Ok(tail.into_bytes()), c))
                }
                Err(e) => {
                    c.state = State::Done;
                    tracing::error!(
                        connector = c.resolver.connector(),
                        error.message = %crate::http::error::error_chain(&e),
                        "the Linchpin feed stopped: store error"
                    );
                    Some((Err(std::io::Error::other(e)), c))
                }
            },
        }
    })
}
