//! What a run asks an IdP, and what it gets back. A fetch reads every page before the run
//! writes anything, so an error on any page ends the run with the store and the checkpoint
//! as they were (docs/pull.md, "Failures").

use std::sync::Arc;
use std::time::Duration;

use crate::config::pull::ConnectorKind;
use crate::config::{ConnectorSettings, Secrets};
use crate::store::StoreError;

use super::google::Google;
use super::graph::Graph;
use super::okta::Okta;
use super::onelogin::Onelogin;

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

/// An IdP client.
pub enum Source {
    /// Microsoft Graph.
    Graph(Graph),
    /// Google Workspace.
    Google(Google),
    /// Okta.
    Okta(Okta),
    /// OneLogin.
    Onelogin(Onelogin),
}

impl Source {
    /// The client of a declared pull connector, with the secrets read at load.
    pub fn new(name: &str, c: &ConnectorSettings, secrets: &Secrets) -> Result<Source, PullError> {
        let pull = c.pull.clone().unwrap_or_default();
        let missing = |t: &str| {
            PullError::NotPull(format!(
                "[connectors.{name}] has kind = \"{}\" but no [{t}] table",
                c.kind.as_str()
            ))
        };
        match c.kind {
            ConnectorKind::Graph => {
                let g = c.graph.as_ref().ok_or_else(|| missing("graph"))?;
                Ok(Source::Graph(Graph::new(g, &pull, secrets)?))
            }
            ConnectorKind::Google => {
                let g = c.google.as_ref().ok_or_else(|| missing("google"))?;
                Ok(Source::Google(Google::new(g, &pull, secrets)?))
            }
            ConnectorKind::Okta => {
                let o = c.okta.as_ref().ok_or_else(|| missing("okta"))?;
                Ok(Source::Okta(Okta::new(o, &pull, secrets)?))
            }
            ConnectorKind::Onelogin => {
                let o = c.onelogin.as_ref().ok_or_else(|| missing("onelogin"))?;
                Ok(Source::Onelogin(Onelogin::new(o, &pull, secrets)?))
            }
            k => Err(PullError::NotPull(format!(
                "[connectors.{name}] has kind = \"{}\": not a pull connector",
                k.as_str()
            ))),
        }
    }

    /// `graph`, `google`, `okta`, `onelogin`: recorded with runs and checkpoints, and the audit actor `pull:<kind>`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Graph(_) => "graph",
            Source::Google(_) => "google",
            Source::Okta(_) => "okta",
            Source::Onelogin(_) => "onelogin",
        }
    }

    /// Every user (`checkpoint` None) or the changes since `checkpoint`. A source that
    /// cannot continue from the checkpoint (Graph's expired delta link) reads everything and
    /// says so with [`Fetched::complete`].
    pub async fn fetch(
        &self,
        checkpoint: Option<&str>,
        progress: &Progress,
    ) -> Result<Fetched, PullError> {
        match self {
            Source::Graph(g) => g.fetch(checkpoint, progress).await,
            Source::Google(g) => g.fetch(progress).await,
            Source::Okta(o) => o.fetch(checkpoint, progress).await,
            Source::Onelogin(o) => o.fetch(checkpoint, progress).await,
        }
    }
}
