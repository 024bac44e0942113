//! A faithful HTTP emulator of Confluence Data Center's user/group REST API plus the
//! documented slice of Linchpin User Profiles, with fault injection, for testing usersync's
//! delivery without a real Confluence. The behaviour is specified in
//! `docs/emulator.md` (facts: `docs/reference/confluence-api.md`); everything marked **(assumed)**
//! or **\[gap\]** is flagged where it is implemented and listed in `docs/emulator.md`.
//!
//! Read in this order: `config` (knobs), `state` (the rules), `pipeline` (auth, rate limit,
//! XSRF, faults around every call), the handlers (`users`, `admin_users`, `groups`, `lup`,
//! `xml_import`), then `control` (the test-only API) and `server` (TCP-level faults).
//!
//! Depends on axum, tokio, serde, quick-xml and reqwest (for the XML pull); nothing else in
//! the crate depends on it except the CLI.

mod admin_users;
mod applinks;
mod auth;
mod calls;
mod cli;
mod config;
mod control;
mod errors;
mod extract;
mod faults;
pub mod google;
pub mod graph;
mod groups;
mod idp_faults;
mod jsonrpc;
mod lup;
mod model;
pub mod okta;
pub mod onelogin;
mod pipeline;
mod ratelimit;
mod render;
mod routes;
mod seed;
mod server;
mod shared;
mod state;
mod users;
mod validate;
mod xml_import;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

pub use auth::AuthScheme;
pub use calls::CallRecord;
pub use cli::{run, EmulatorArgs};
pub use config::{
    ConfluenceVersion, EmulatorConfig, ErrorRatioKnobs, InvalidCredentials, Knobs, LatencyKnobs,
    LupKnobs, RateLimitKnobs, RateLimitMode, RouteLatency, StatusStyle,
};
pub use faults::{Fault, OutageMode, RouteScope};
pub use lup::{DataSource, LupField, LupValue, MirrorField};
pub use model::{Directory, EmulatedUser, UserDetails};
pub use seed::{Seed, SeedError, SeedLupField, SeedUser};
pub use state::UserEdit;
pub use xml_import::ImportReport;

use shared::Shared;

/// One emulated Confluence DC node with Linchpin. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
}

impl Emulator {
    /// Builds an emulator. A seed that cannot be applied is logged and ignored (the
    /// emulator then holds only the admin); use [`Emulator::try_new`] to fail instead.
    pub fn new(config: EmulatorConfig) -> Emulator {
        Emulator {
            shared: Arc::new(Shared::new_lenient(config)),
        }
    }

    /// Builds an emulator, failing when the configured seed cannot be applied.
    pub fn try_new(config: EmulatorConfig) -> Result<Emulator, SeedError> {
        Ok(Emulator {
            shared: Arc::new(Shared::new(config)?),
        })
    }

    /// The full application: Confluence/Linchpin under the context path and the control
    /// API at `/__emulator`. Connection resets and refused connections need
    /// [`Emulator::serve`]; through this router alone a reset becomes a 500 marked
    /// `X-Emulator-Fault: connection-reset`.
    pub fn router(&self) -> axum::Router {
        routes::app(Arc::clone(&self.shared))
    }

    /// Serves on `listener` until `shutdown` resolves, then drains open connections.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        server::serve(self.shared, router, listener, shutdown).await
    }

    /// A user by username (disabled ones included), as the control API shows it.
    pub fn user(&self, username: &str) -> Option<EmulatedUser> {
        let world = self.shared.world();
        world.state.view(username, &world.knobs)
    }

    /// Sorted member usernames of a group (case-insensitive name); `None` if no such group.
    pub fn group_members(&self, group: &str) -> Option<Vec<String>> {
        let world = self.shared.world();
        let name = world.state.group_name(group)?;
        world
            .state
            .groups
            .get(&name)
            .map(|m| m.iter().cloned().collect())
    }

    /// The call log, oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.calls().all()
    }

    /// Empties the call log.
    pub fn clear_calls(&self) {
        self.shared.calls().clear();
    }

    /// Current knobs.
    pub fn knobs(&self) -> Knobs {
        self.shared.world().knobs.clone()
    }

    /// Replaces all knobs (rate-limit buckets restart when the limits change).
    pub fn set_knobs(&self, knobs: Knobs) {
        let mut world = self.shared.world();
        if knobs.rate_limit != world.knobs.rate_limit {
            world.limiter.clear();
        }
        world.knobs = knobs;
    }

    /// Arms a fault.
    pub fn arm_fault(&self, fault: Fault) {
        self.shared.world().faults.arm(fault, Instant::now());
        self.shared.outage_changed.notify_one();
    }

    /// Disarms all faults and ends a running outage.
    pub fn clear_faults(&self) {
        self.shared.world().faults.clear();
        self.shared.outage_changed.notify_one();
    }

    /// Linchpin values of a user keyed by field label; `None` for an unknown user.
    pub fn lup_values(&self, username: &str) -> Option<BTreeMap<String, LupValue>> {
        let world = self.shared.world();
        let user = world.state.user(username)?;
        let values = world.state.lup.values.get(&user.user_key);
        Some(
            world
                .state
                .lup
                .fields
                .iter()
                .filter_map(|f| {
                    values
                        .and_then(|v| v.get(&f.user_field_pk))
                        .map(|v| (f.label.clone(), v.value.clone()))
                })
                .collect(),
        )
    }

    /// Whether a user's value of a field (by label) was set from XML and is read-only.
    pub fn lup_read_only(&self, username: &str, label: &str) -> Option<bool> {
        let world = self.shared.world();
        let user = world.state.user(username)?;
        let field = world.state.lup.fields.iter().find(|f| f.label == label)?;
        world
            .state
            .lup
            .values
            .get(&user.user_key)?
            .get(&field.user_field_pk)
            .map(|v| v.read_only)
    }

    /// Runs the Linchpin XML import now (L3) and returns its report.
    pub async fn run_xml_import(&self) -> ImportReport {
        xml_import::run(&self.shared).await
    }

    /// Back to the start, with `seed` or the configured seed (see `POST /__emulator/reset`).
    pub fn reset(&self, seed: Option<&Seed>) -> Result<(), SeedError> {
        self.shared.reset(seed)
    }

    /// Adds a user directly, bypassing Confluence's rules (like `POST /__emulator/users`).
    pub fn add_user(&self, user: &SeedUser) -> Result<(), SeedError> {
        let mut guard = self.shared.world();
        let world = &mut *guard;
        seed::add_user(&mut world.state, user, &mut world.rng)
    }

    /// Changes an account behind usersync's back (like `PATCH /__emulator/users/{username}`):
    /// `false` when there is no such user.
    pub fn edit_user(&self, username: &str, edit: &UserEdit) -> bool {
        self.shared
            .world()
            .state
            .edit_behind(username, edit)
            .is_ok()
    }

    /// Adds a membership behind usersync's back, creating the group if needed (like
    /// `PUT /__emulator/groups/{group}/members/{username}`): `false` for an unknown user.
    pub fn add_member(&self, username: &str, group: &str) -> bool {
        let mut world = self.shared.world();
        if world.state.user(username).is_none() {
            return false;
        }
        if world.state.group_name(group).is_none() && world.state.create_group(group).is_err() {
            return false;
        }
        world.state.add_member(username, group).is_ok()
    }

    /// Removes a membership behind usersync's back (like
    /// `DELETE /__emulator/groups/{group}/members/{username}`): `false` for an unknown user or
    /// group.
    pub fn remove_member(&self, username: &str, group: &str) -> bool {
        self.shared
            .world()
            .state
            .remove_member(username, group)
            .is_ok()
    }

    /// The `GET /__emulator/state` document.
    pub fn state_json(&self) -> serde_json::Value {
        control::state_json(&self.shared)
    }
}
