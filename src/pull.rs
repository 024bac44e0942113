//! Pull connectors (docs/pull.md): usersync reads the users of an IdP's API (Microsoft
//! Graph, Google Workspace, Okta, OneLogin) on a schedule and writes them into the store as the SCIM
//! resources a push connector would have sent, through the same audited writes, so mapping,
//! delivery, the Linchpin feed and the operations API work unchanged.
//!
//! Read in this order: `types.rs` (what a client hands back: the users, the checkpoint, the
//! errors), `source.rs` (what a run asks an IdP: every user, or the changes since
//! a checkpoint, fetched completely before anything is written), `api.rs` (tokens, 401
//! renewal, `Retry-After`), one file per IdP (`graph.rs`, `google.rs`, `okta.rs`,
//! `onelogin.rs`), `document.rs` (an
//! IdP user as a SCIM resource), `run.rs` (one run: lease, plan, deletion guard, writes,
//! record, checkpoint) and `schedule.rs` (`serve`'s timer).

pub mod api;
pub mod document;
pub mod google;
pub mod graph;
pub mod okta;
pub mod onelogin;
pub mod run;
pub mod schedule;
pub mod source;
pub mod types;

pub use run::{run, Mode, RunReport, RunRequest, RunStatus};
pub use source::Source;
pub use types::{Fetched, PullError, PullUser};
