//! `usersync pull --connector C [--full] [--dry-run] [--force]`: one run of a pull connector
//! (docs/pull.md), progress on stderr, the summary on stdout. Exit code 0: done; 1: the
//! deletion guard stopped the run; 2: an error (the store and the checkpoint are as they
//! were before the run).

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use super::Exit;
use crate::app;
use crate::config::Settings;
use crate::pull::types::Progress;
use crate::pull::{RunRequest, RunStatus};

/// The flags of `usersync pull`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The pull connector (`kind = "graph"`, `"google"`, `"okta"` or `"onelogin"`).
    #[arg(long)]
    pub connector: String,
    /// Read the whole directory even if a checkpoint exists (deletions by comparison).
    #[arg(long)]
    pub full: bool,
    /// Compare and print what would change; write nothing, not even the checkpoint.
    #[arg(long)]
    pub dry_run: bool,
    /// Let a run through the deletion guard (`pull.max_deletes`).
    #[arg(long)]
    pub force: bool,
    /// Print every changed user's SCIM id.
    #[arg(long)]
    pub verbose: bool,
}

/// Runs the command.
pub async fn run(settings: Settings, args: Args) -> anyhow::Result<()> {
    let runtime = app::runtime(settings).await?;
    let tty = std::io::stderr().is_terminal();
    let progress: Progress = Arc::new(move |phase, n| {
        let mut err = std::io::stderr();
        if tty {
            let _ = write!(err, "\r{phase}: {n} users   ");
        } else if phase != "details" {
            let _ = writeln!(err, "{phase}: {n} users");
        }
    });
    let req = RunRequest {
        connector: args.connector.clone(),
        full: args.full,
        dry_run: args.dry_run,
        force: args.force,
        started_by: "cli".to_owned(),
    };
    let result = crate::pull::run(&runtime, &req, progress).await;
    if tty {
        eprintln!();
    }
    runtime.store().close().await;
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("usersync pull: {e}; nothing was deleted and the checkpoint is unchanged");
            return Err(Exit(2).into());
        }
    };
    let what = if report.dry_run { "would be" } else { "were" };
    println!(
        "{} run of {}{}: {} users read; {} {what} created, {} updated, {} deleted; {} unchanged, {} skipped",
        report.mode.as_str(),
        args.connector,
        if report.dry_run { " (dry run: nothing written)" } else { "" },
        report.read,
        report.created,
        report.updated,
        report.deleted,
        report.unchanged,
        report.skipped,
    );
    if let Some(id) = &report.run_id {
        println!("run id: {id}");
    }
    if args.verbose {
        for c in &report.changes {
            println!("  {:<8} {}", c.change, c.scim_id);
        }
    }
    if report.status == RunStatus::Stopped {
        eprintln!("{}", report.reason.unwrap_or_default());
        return Err(Exit(1).into());
    }
    Ok(())
}
