//! How a run tells whoever started it how far it got: the CLI draws a bar on a terminal
//! (plain lines otherwise), the schedule says nothing.

/// A stage of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading Confluence's user list (the total is not known in advance).
    ReadAccounts,
    /// Reading the members of the groups the run looks at.
    ReadGroups,
    /// Comparing the connector's users with what was read.
    Compare,
    /// Applying what a real run does.
    Apply,
}

impl Phase {
    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            Phase::ReadAccounts => "reading Confluence accounts",
            Phase::ReadGroups => "reading group members",
            Phase::Compare => "comparing users",
            Phase::Apply => "applying changes",
        }
    }
}

/// Receives a run's progress. Calls come from the run's task, in order.
pub trait Progress: Send + Sync {
    /// A stage begins, with its total when known.
    fn phase(&self, phase: Phase, total: Option<u64>);
    /// Done so far in the current stage.
    fn advance(&self, done: u64);
    /// The run is over (clear a bar).
    fn finish(&self);
}

/// Progress nobody watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _: Phase, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
