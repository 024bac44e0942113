//! What a run asks an IdP: the client of a pull connector, which hands back the words of
//! `types.rs`. A fetch reads every page before the run writes anything, so an error on any
//! page ends the run with the store and the checkpoint as they were (docs/pull.md,
//! "Failures").

use crate::config::pull::ConnectorKind;
use crate::config::{ConnectorSettings, Secrets};

use super::google::Google;
use super::graph::Graph;
use super::okta::Okta;
use super::onelogin::Onelogin;
use super::types::{Fetched, Progress, PullError};

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
