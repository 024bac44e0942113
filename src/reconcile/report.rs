//! What a run found and did: drift classes, items, the run's report (JSON for scripts and
//! the run record), and the table `usersync reconcile` prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A kind of difference between Confluence and the desired state (docs/delivery.md,
/// Reconcile, "What a run finds").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftClass {
    /// A user who should have an account has none.
    Missing,
    /// Enabled where it should be disabled, or the reverse.
    Active,
    /// Full name (or e-mail, where Confluence shows it) differs.
    Profile,
    /// In a managed group it should not be in, or not in one it should be in.
    Membership,
    /// An enabled account usersync created or adopted whose user the IdP deleted.
    OrphanDeleted,
    /// An enabled account no user of any connector accounts for, which usersync never managed.
    OrphanUnmanaged,
    /// The username is held by another connector, or by an account usersync refused to
    /// adopt or has not linked yet.
    Conflict,
}

impl DriftClass {
    /// Every class, in report order.
    pub const ALL: [DriftClass; 7] = [
        DriftClass::Missing,
        DriftClass::Active,
        DriftClass::Profile,
        DriftClass::Membership,
        DriftClass::OrphanDeleted,
        DriftClass::OrphanUnmanaged,
        DriftClass::Conflict,
    ];

    /// The stable label in records, JSON and log fields.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftClass::Missing => "missing",
            DriftClass::Active => "active",
            DriftClass::Profile => "profile",
            DriftClass::Membership => "membership",
            DriftClass::OrphanDeleted => "orphan_deleted",
            DriftClass::OrphanUnmanaged => "orphan_unmanaged",
            DriftClass::Conflict => "conflict",
        }
    }

    /// For people.
    pub fn title(self) -> &'static str {
        match self {
            DriftClass::Missing => "missing account",
            DriftClass::Active => "active state wrong",
            DriftClass::Profile => "full name or e-mail differs",
            DriftClass::Membership => "membership differs",
            DriftClass::OrphanDeleted => "orphan: its user was deleted",
            DriftClass::OrphanUnmanaged => "orphan: never managed",
            DriftClass::Conflict => "username conflict",
        }
    }
}

/// What a run does about an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Correct the stored applied state from what was observed and mark the key: delivery
    /// converges it through the normal path (attempts, retries, dead keys, target health).
    Converge,
    /// Record on the link that the account is gone; nothing to send.
    Forget,
    /// Disable the account (a never-managed orphan under `orphans = "disable"`).
    Disable,
    /// Remove the account from a group usersync owns.
    RemoveMember,
    /// Nothing: listed in the report only.
    Report,
}

impl Action {
    /// The stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Converge => "converge",
            Action::Forget => "forget",
            Action::Disable => "disable",
            Action::RemoveMember => "remove_member",
            Action::Report => "report",
        }
    }
}

/// What came of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A dry run: this is what a real run would do.
    Planned,
    /// The key is marked; delivery converges it.
    Queued,
    /// The store now records what was observed; nothing to send.
    Recorded,
    /// The direct change was made in Confluence.
    Done,
    /// The direct change failed (see the detail).
    Failed,
    /// Listed only (the policy, or a protected account).
    Reported,
    /// The safety guard stopped the run before any write.
    NotApplied,
    /// Left alone: the link changed while the run compared (a delivery got there first).
    Skipped,
}

impl Outcome {
    /// The stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Planned => "planned",
            Outcome::Queued => "queued",
            Outcome::Recorded => "recorded",
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::Reported => "reported",
            Outcome::NotApplied => "not_applied",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One difference, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The class.
    pub class: DriftClass,
    /// Confluence username.
    pub username: String,
    /// The SCIM id of the user that accounts for the account, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scim_id: Option<String>,
    /// What the run does.
    pub action: Action,
    /// What came of it.
    pub outcome: Outcome,
    /// Why, for the admin (group names, which side says what; never an e-mail).
    pub detail: String,
    /// Whether the action disables or deletes the account (counted by the safety guard).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub disables: bool,
}

/// Where a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going (only seen in the store).
    Running,
    /// A real run applied what it found.
    Completed,
    /// A dry run: nothing was changed.
    DryRun,
    /// The safety guard stopped the run before any write.
    StoppedByGuard,
    /// Reading or writing failed; see `error`.
    Failed,
}

impl RunStatus {
    /// The stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::DryRun => "dry_run",
            RunStatus::StoppedByGuard => "stopped_by_guard",
            RunStatus::Failed => "failed",
        }
    }
}

/// The safety guard's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardReport {
    /// Accounts the run would disable or delete.
    pub disables: u64,
    /// The most it may without `--force`.
    pub limit: u64,
    /// The configured rule (`50`, `"5%"`, or the default).
    pub rule: String,
    /// Over the limit.
    pub tripped: bool,
    /// Let through by `--force`.
    pub forced: bool,
}

/// Everything about one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// Run id (a UUID).
    pub id: String,
    /// Connector.
    pub connector: String,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339.
    pub ended_at: String,
    /// `cli`, `schedule`, `admin:NAME`.
    pub started_by: String,
    /// A dry run.
    pub dry_run: bool,
    /// Where it ended.
    pub status: RunStatus,
    /// Accounts in Confluence's user list.
    pub accounts: u64,
    /// Pages read (the user list and the groups' member lists).
    pub pages: u64,
    /// Groups whose members were read (managed and protecting ones).
    pub groups: u64,
    /// The connector's users in the store that were compared.
    pub users: u64,
    /// Users whose desired state could not be computed (their key is dead with the reason).
    pub unmappable: u64,
    /// Accounts left out as protected (the service account, `reconcile.protect`,
    /// `reconcile.protect_groups`).
    pub protected: u64,
    /// Items per class.
    pub counts: BTreeMap<DriftClass, u64>,
    /// The safety guard.
    pub guard: GuardReport,
    /// Every difference, with its outcome.
    pub items: Vec<Item>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunReport {
    /// Whether anything differs.
    pub fn drift(&self) -> bool {
        !self.items.is_empty()
    }

    /// The summary kept on the run record (everything but the items, which have their own
    /// rows).
    pub fn summary_json(&self) -> serde_json::Value {
        serde_json::json!({
            "accounts": self.accounts,
            "pages": self.pages,
            "groups": self.groups,
            "users": self.users,
            "unmappable": self.unmappable,
            "protected": self.protected,
            "counts": self.counts,
            "guard": self.guard,
        })
    }
}

impl RunReport {
    /// A report rebuilt from a run's record and its items (`usersync reconcile --show`):
    /// what the run recorded, including scheduled runs nobody watched.
    pub fn from_record(
        run: &crate::store::reconcile::RunRecord,
        items: &[crate::store::reconcile::ItemRecord],
    ) -> RunReport {
        use time::format_description::well_known::Rfc3339;
        let summary = run.summary.clone().unwrap_or_default();
        let num = |k: &str| {
            summary
                .get(k)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        };
        let label = |s: &str| serde_json::Value::String(s.to_owned());
        let status = serde_json::from_value(label(&run.status)).unwrap_or(RunStatus::Failed);
        RunReport {
            id: run.id.clone(),
            connector: run.connector.clone(),
            started_at: run.started_at.format(&Rfc3339).unwrap_or_default(),
            ended_at: run
                .ended_at
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_default(),
            started_by: run.started_by.clone(),
            dry_run: run.dry_run,
            status,
            accounts: num("accounts"),
            pages: num("pages"),
            groups: num("groups"),
            users: num("users"),
            unmappable: num("unmappable"),
            protected: num("protected"),
            counts: summary
                .get("counts")
                .and_then(|c| serde_json::from_value(c.clone()).ok())
                .unwrap_or_default(),
            guard: summary
                .get("guard")
                .and_then(|g| serde_json::from_value(g.clone()).ok())
                .unwrap_or(GuardReport {
                    disables: 0,
                    limit: 0,
                    rule: String::new(),
                    tripped: false,
                    forced: run.forced,
                }),
            items: items
                .iter()
                .filter_map(|i| {
                    Some(Item {
                        class: serde_json::from_value(label(&i.class)).ok()?,
                        username: i.username.clone(),
                        scim_id: i.scim_id.clone(),
                        action: serde_json::from_value(label(&i.action)).ok()?,
                        outcome: serde_json::from_value(label(&i.outcome)).ok()?,
                        detail: i.detail.clone(),
                        disables: false,
                    })
                })
                .collect(),
            error: run.error.clone(),
        }
    }
}

/// One line per run, newest first (`usersync reconcile --history`).
pub fn render_history(runs: &[crate::store::reconcile::RunRecord]) -> String {
    use time::format_description::well_known::Rfc3339;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36}  {:<16} {:<20}  {:<9} {:<7} {:<16} {:>9}",
        "run", "connector", "started", "by", "mode", "status", "found"
    );
    for r in runs {
        let found: u64 = r
            .summary
            .as_ref()
            .and_then(|s| s.get("counts"))
            .and_then(serde_json::Value::as_object)
            .map(|c| c.values().filter_map(serde_json::Value::as_u64).sum())
            .unwrap_or(0);
        let started = r.started_at.format(&Rfc3339).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<36}  {:<16} {:<20}  {:<9} {:<7} {:<16} {:>9}",
            r.id,
            r.connector,
            started.get(..19).unwrap_or(&started),
            r.started_by,
            if r.dry_run { "dry" } else { "real" },
            r.status,
            found
        );
    }
    if runs.is_empty() {
        let _ = writeln!(out, "(no reconcile run recorded)");
    }
    out
}

/// Items listed in the table before "… and N more".
const TABLE_ITEMS: usize = 50;

/// The human summary `usersync reconcile` prints.
pub fn render(r: &RunReport) -> String {
    let mut out = String::new();
    let mode = if r.dry_run { "dry run" } else { "run" };
    let _ = writeln!(
        out,
        "reconcile {mode} {} of connector {} ({})",
        r.id,
        r.connector,
        r.status.as_str()
    );
    let _ = writeln!(
        out,
        "  read {} Confluence accounts and the members of {} groups ({} pages); compared {} \
         users of the IdP{}",
        r.accounts,
        r.groups,
        r.pages,
        r.users,
        if r.unmappable > 0 {
            format!(
                " ({} could not be mapped: see `usersync queue list --dead`)",
                r.unmappable
            )
        } else {
            String::new()
        }
    );
    if r.protected > 0 {
        let _ = writeln!(
            out,
            "  {} protected account(s) left out (the service account, reconcile.protect, \
             reconcile.protect_groups)",
            r.protected
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "  {:<32} {:>7}", "difference", "found");
    for class in DriftClass::ALL {
        let n = r.counts.get(&class).copied().unwrap_or(0);
        let _ = writeln!(out, "  {:<32} {:>7}", class.title(), n);
    }
    let g = &r.guard;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  safety guard: {} account(s) to disable or delete, limit {} ({}){}",
        g.disables,
        g.limit,
        g.rule,
        match (g.tripped, g.forced) {
            (true, true) => ": over the limit, let through by --force",
            (true, false) if r.dry_run => ": over the limit; a real run would stop (use --force)",
            (true, false) => ": over the limit; STOPPED before any write (use --force)",
            _ => "",
        }
    );
    if !r.items.is_empty() {
        let _ = writeln!(out);
        let width = r
            .items
            .iter()
            .take(TABLE_ITEMS)
            .map(|i| i.username.chars().count())
            .max()
            .unwrap_or(8)
            .clamp(8, 40);
        let _ = writeln!(
            out,
            "  {:<18} {:<width$} {:<13} {:<11} detail",
            "class", "username", "action", "outcome"
        );
        for i in r.items.iter().take(TABLE_ITEMS) {
            let _ = writeln!(
                out,
                "  {:<18} {:<width$} {:<13} {:<11} {}",
                i.class.as_str(),
                i.username,
                i.action.as_str(),
                i.outcome.as_str(),
                i.detail
            );
        }
        if r.items.len() > TABLE_ITEMS {
            let _ = writeln!(
                out,
                "  … and {} more (all of them: --json)",
                r.items.len() - TABLE_ITEMS
            );
        }
    }
    let queued = r
        .items
        .iter()
        .filter(|i| i.outcome == Outcome::Queued)
        .count();
    if queued > 0 {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  {queued} change(s) queued for delivery: the delivery worker of `usersync serve` \
             makes them (`usersync queue list` shows what is left)"
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out);
        let _ = writeln!(out, "  error: {e}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stopped run with one item of each kind of outcome a script will see.
    fn sample() -> RunReport {
        let item = |class, username: &str, action, outcome, detail: &str, disables| Item {
            class,
            username: username.to_owned(),
            scim_id: (class != DriftClass::OrphanUnmanaged).then(|| format!("id-{username}")),
            action,
            outcome,
            detail: detail.to_owned(),
            disables,
        };
        RunReport {
            id: "3f1c9a52-0000-4000-8000-000000000001".into(),
            connector: "entra".into(),
            started_at: "2026-05-01T10:00:00Z".into(),
            ended_at: "2026-05-01T10:00:04Z".into(),
            started_by: "cli".into(),
            dry_run: false,
            status: RunStatus::StoppedByGuard,
            accounts: 100,
            pages: 3,
            groups: 2,
            users: 39,
            unmappable: 0,
            protected: 1,
            counts: [(DriftClass::Active, 1), (DriftClass::OrphanUnmanaged, 60)]
                .into_iter()
                .collect(),
            guard: GuardReport {
                disables: 61,
                limit: 50,
                rule: "the default: the larger of 50 and 5% of the accounts".into(),
                tripped: true,
                forced: false,
            },
            items: vec![
                item(
                    DriftClass::Active,
                    "ada",
                    Action::Converge,
                    Outcome::NotApplied,
                    "enabled in Confluence, inactive in the IdP: delivery disables it",
                    true,
                ),
                item(
                    DriftClass::OrphanUnmanaged,
                    "stray00",
                    Action::Disable,
                    Outcome::NotApplied,
                    "enabled, never managed by usersync, and no user of any connector accounts for it: disabled (never deleted)",
                    true,
                ),
            ],
            error: Some("the run would disable or delete 61 accounts, more than the limit of 50; nothing was changed (run it again with --force if this is right)".into()),
        }
    }

    #[test]
    fn the_json_report_scripts_read() {
        insta::assert_json_snapshot!(sample());
    }

    #[test]
    fn the_summary_table() {
        insta::assert_snapshot!(render(&sample()));
    }
}
