//! What an IdP client hands back to a run and how it fails: the words every client
//! (`graph.rs`, `google.rs`, `okta.rs`, `onelogin.rs`) and `api.rs` share, kept apart from
//! `source.rs` so that the clients depend on these and `source.rs` on the clients, not in a
//! circle.

use std::sync::Arc;
use std::time::Duration;

use crate::store::StoreError;

/// One user as an IdP describes it, before it becomes a SCIM resource (`document.rs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullUser {
    /// The IdP's immutable id: the SCIM `id` and `externalId` of the stored user.
    pub id: String,
    /// Sign-in name: Graph's userPrincipalName, Google's primaryEmail, Okta's login,
    /// OneLogin's username (else e-mail).
    pub user_name: String,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// E-mail address (work, primary).
    pub email: Option<String>,
    /// Enabled in the IdP.
    pub active: bool,
    /// Job title.
    pub title: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Employee number / id.
    pub employee_number: Option<String>,
    /// The manager, as `manager.value`: the manager's IdP id (Graph, OneLogin), e-mail
    /// (Google) or whatever the org keeps in Okta's `managerId`;
    /// docs/mapping.md resolves either (id, externalId, e-mail).
    pub manager: Option<String>,
    /// Phone numbers: (type, value).
    pub phones: Vec<(String, String)>,
}

/// What one fetch found.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Users created or changed (a full fetch: every user).
    pub users: Vec<PullUser>,
    /// Ids the IdP reported deleted.
    pub removed: Vec<String>,
    /// Whether `users` is the whole directory: stored users missing from it are deleted.
    pub complete: bool,
    /// Where the next incremental run starts.
    pub checkpoint: String,
}

/// Progress of a fetch, for the command line.
pub type Progress = Arc<dyn Fn(&str, usize) + Send + Sync>;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The connector is not a pull connector, or is not declared.
    #[error("{0}")]
    NotPull(String),
    /// The token endpoint refused.
    #[error("{what}'s token endpoint answered {status} ({detail}): check the credentials")]
    Token {
        /// The IdP.
        what: &'static str,
        /// HTTP status.
        status: u16,
        /// OAuth error code and description.
        detail: String,
    },
    /// The API answered an error.
    #[error("{what} answered {status} {code}")]
    Http {
        /// The IdP.
        what: &'static str,
        /// HTTP status.
        status: u16,
        /// The API's error code.
        code: String,
    },
    /// The IdP could not be reached.
    #[error("cannot reach {what}: {detail}")]
    Transport {
        /// The IdP.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// A `Retry-After` longer than `pull.max_retry_wait`.
    #[error("{what} asked to wait {wait:?}, longer than pull.max_retry_wait")]
    WaitTooLong {
        /// The IdP.
        what: &'static str,
        /// The wait asked for.
        wait: Duration,
    },
    /// An answer that does not follow the API.
    #[error("unexpected answer from {what}: {detail}")]
    Protocol {
        /// The IdP.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The credentials in the configuration cannot be used.
    #[error("{0}")]
    Credentials(String),
    /// Another run of the connector holds its lease.
    #[error("another run of this connector is in progress (here or on another instance)")]
    Busy,
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}
