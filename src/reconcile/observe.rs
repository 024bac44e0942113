//! Reading Confluence: every account (the user list, page by page, disabled ones included)
//! and the members of the groups the run looks at. Nothing is written, and a page that
//! cannot be read after its retries ends the run before any write.
//!
//! Pacing is the client's (Confluence's `X-RateLimit-*` headers, `crate::targets::pacing`),
//! shared with the delivery worker when both run in `serve`. A rate-limited or transient
//! failure is tried again, `reconcile.read_attempts` times in all, after the `Retry-After`
//! Confluence asked for (at most `delivery.max_retry_after`) or `reconcile.read_retry_delay`
//! doubling; any other failure ends the run at once.
//!
//! Offset paging over a list that changes while it is read can skip or repeat an entry
//! (an account created or deleted meanwhile shifts the pages). Repeats are merged by
//! username; a skipped account looks missing, and delivery then finds it, takes it as its own
//! (the create is "in doubt") or reports the conflict: no duplicate is ever created.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use super::classify::{Account, Members, Observed};
use super::progress::{Phase, Progress};
use crate::targets::confluence::{ConfluenceClient, RemoteUser, UserPages};
use crate::targets::{ErrorClass, TargetError};

/// How hard to try a call.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Tries in all.
    pub attempts: u32,
    /// First wait after a failure without `Retry-After`; doubled each time.
    pub delay: Duration,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl Retry {
    /// After failure number `tries` (1 for the first) with `e`: how long to wait before the
    /// next try, or `None` to give up.
    fn wait(&self, e: &TargetError, tries: u32) -> Option<Duration> {
        if !e.is_retryable() || tries >= self.attempts {
            return None;
        }
        let backoff = self
            .delay
            .saturating_mul(2u32.saturating_pow(tries.saturating_sub(1)));
        let wait = e
            .retry_after()
            .map_or(backoff, |ra| ra.min(self.max_retry_after));
        tracing::debug!(
            confluence.call = %e.call(),
            error.class = %e.class(),
            retry_in_ms = wait.as_millis() as u64,
            "reconcile tries a call again"
        );
        Some(wait)
    }

    /// Runs `call` until it succeeds, fails in a way retrying cannot fix, or the tries are
    /// spent.
    pub async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, TargetError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TargetError>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) => match self.wait(&e, tries) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(e),
                },
            }
        }
    }
}

/// Counts of what was read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadStats {
    /// Pages read.
    pub pages: u64,
    /// Groups read.
    pub groups: u64,
}

/// The cursor's next page, tried again as [`Retry`] says (the cursor stays on a failed page).
async fn next_page(
    pages: &mut UserPages<'_>,
    retry: &Retry,
) -> Result<Option<Vec<RemoteUser>>, TargetError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match pages.next_page().await {
            Ok(page) => return Ok(page),
            Err(e) => match retry.wait(&e, tries) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(e),
            },
        }
    }
}

/// Reads every account, the members of `groups`, and who usersync signs in as.
pub async fn observe(
    client: &ConfluenceClient,
    groups: &[String],
    retry: &Retry,
    progress: &dyn Progress,
) -> Result<(Observed, ReadStats), TargetError> {
    let mut stats = ReadStats::default();
    // The release decides whether the user list exists (8.4+); detection is cached.
    retry.run(|| client.detect_version()).await?;
    let me = retry.run(|| client.current_user()).await?;
    let mut observed = Observed {
        service_account: me.username.to_lowercase(),
        ..Observed::default()
    };

    progress.phase(Phase::ReadAccounts, None);
    let mut pages = client.user_pages();
    while let Some(page) = next_page(&mut pages, retry).await? {
        stats.pages += 1;
        for u in page {
            observed.accounts.insert(
                u.username.to_lowercase(),
                Account {
                    display_name: u.display_name,
                    email: None, // Not in the DC user list (docs/reference/confluence-api.md §1.3).
                    active: u.active,
                },
            );
        }
        progress.advance(observed.accounts.len() as u64);
    }

    progress.phase(Phase::ReadGroups, Some(groups.len() as u64));
    let mut seen: HashSet<String> = HashSet::new();
    for (i, group) in groups.iter().enumerate() {
        let name = group.to_lowercase();
        if !seen.insert(name.clone()) {
            continue;
        }
        let mut members = HashSet::new();
        let mut pages = client.member_pages(&name);
        let found = loop {
            match next_page(&mut pages, retry).await {
                Ok(Some(page)) => {
                    stats.pages += 1;
                    members.extend(page.into_iter().map(|u| u.username.to_lowercase()));
                }
                Ok(None) => break Members::Of(members),
                Err(e) if e.class() == ErrorClass::NotFound && pages.pages_read() == 0 => {
                    break Members::Missing
                }
                Err(e) => return Err(e),
            }
        };
        stats.groups += 1;
        observed.groups.insert(name, found);
        progress.advance(i as u64 + 1);
    }
    Ok((observed, stats))
}
