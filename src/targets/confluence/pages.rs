//! Reading long lists one page at a time: every account (`GET /rest/api/user/list`) and a
//! group's members (`GET /rest/api/group/{group}/member`), for a full sync that must not
//! hold a whole answer it has not checked yet and must be able to retry one page.
//!
//! The page size is uncertain (docs/reference/confluence-api.md §1.2: the 8.x reference
//! gives the list's default limit as both 100 and 200, and a server may cap it), so `limit`
//! is always sent and the cursor moves on by the number of entries it *received*, following
//! `_links.next` while it is present.

use super::client::{calls, decode, segment, ConfluenceClient, Outgoing};
use super::model::{Page, RemoteUser, UserJson};
use super::version::Feature;
use crate::targets::{Call, Failure, TargetError};

/// Entries asked for per page (servers may send fewer).
pub const PAGE_LIMIT: usize = 200;
/// Guard against a server whose `next` link never ends (200 × 50,000 = 10 M entries).
const MAX_PAGES: usize = 50_000;

/// A cursor over a paged list of users. A failed page leaves the cursor where it was, so
/// calling [`UserPages::next_page`] again retries that page.
#[derive(Debug)]
pub struct UserPages<'c> {
    client: &'c ConfluenceClient,
    call: Call,
    path: String,
    start: usize,
    pages: usize,
    done: bool,
}

impl ConfluenceClient {
    /// Every account, disabled and unlicensed ones included, with its status
    /// (`GET /rest/api/user/list?expand=status`, 8.4+; docs/reference/confluence-api.md §1.3
    /// "List users"), one page per call. On releases known to be older the first page fails
    /// as [`TargetError::Unsupported`] without a call.
    pub fn user_pages(&self) -> UserPages<'_> {
        UserPages {
            client: self,
            call: calls::USER_LIST,
            path: calls::USER_LIST.template.to_owned(),
            start: 0,
            pages: 0,
            done: false,
        }
    }

    /// A group's members, disabled ones included, with their status
    /// (`GET /rest/api/group/{group}/member?expand=status`), one page per call. An unknown
    /// group is [`TargetError::NotFound`].
    pub fn member_pages(&self, group: &str) -> UserPages<'_> {
        UserPages {
            client: self,
            call: calls::GROUP_MEMBERS,
            path: format!("/rest/api/group/{}/member", segment(group)),
            start: 0,
            pages: 0,
            done: false,
        }
    }
}

impl UserPages<'_> {
    /// The next page, or `None` after the last. Entries without a username or user key are
    /// left out (Confluence always sends both for known users).
    pub async fn next_page(&mut self) -> Result<Option<Vec<RemoteUser>>, TargetError> {
        if self.done {
            return Ok(None);
        }
        if self.pages >= MAX_PAGES {
            return Err(TargetError::Permanent(Failure {
                call: self.call,
                status: None,
                message: format!(
                    "Confluence kept announcing more pages after {MAX_PAGES}; giving up"
                ),
                body: None,
            }));
        }
        if self.call == calls::USER_LIST {
            self.client
                .require(Feature::UserList, self.call, "Confluence 8.4 or later")?;
        }
        let out = Outgoing::new(self.call, self.path.clone())
            .query("expand", "status")
            .query("start", self.start.to_string())
            .query("limit", PAGE_LIMIT.to_string());
        let reply = self.client.send(out).await?;
        let page: Page<UserJson> = decode(self.call, &reply)?;
        let received = page.results.len();
        self.pages += 1;
        self.start += received;
        self.done = page.links.and_then(|l| l.next).is_none() || received == 0;
        Ok(Some(
            page.results
                .into_iter()
                .filter_map(UserJson::into_remote)
                .collect(),
        ))
    }

    /// Pages read so far.
    pub fn pages_read(&self) -> usize {
        self.pages
    }
}
