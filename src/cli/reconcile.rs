//! `usersync reconcile`: a full sync of one connector (or each in turn) against Confluence,
//! with a progress bar on a terminal (plain lines otherwise, both on stderr), a summary
//! table or `--json` on stdout, and an exit code scripts can use: 0 nothing to report or
//! done, 1 a dry run found drift, 2 an error or the safety guard stopped a run.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;
use time::OffsetDateTime;

use super::Exit;
use crate::app;
use crate::config::Settings;
use crate::reconcile::progress::{Phase, Progress};
use crate::reconcile::report::{render, RunReport, RunStatus};
use crate::reconcile::{RunRequest, StartedBy};

/// The flags of `usersync reconcile`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Only this connector (default: each connector in turn).
    #[arg(long)]
    pub connector: Option<String>,
    /// Compare and report only: no Confluence write, no store change (the run itself is
    /// recorded).
    #[arg(long)]
    pub dry_run: bool,
    /// Print the reports as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// Let a run through the safety guard (`reconcile.max_changes`).
    #[arg(long)]
    pub force: bool,
    /// Only mark every user and group for delivery again, without reading Confluence (what
    /// `reconcile` did before the full sync).
    #[arg(long, conflicts_with_all = ["dry_run", "json", "force", "history", "show"])]
    pub mark_only: bool,
    /// List the recorded runs (newest first) instead of running.
    #[arg(long, conflicts_with_all = ["dry_run", "force", "show"])]
    pub history: bool,
    /// Print a recorded run with every item instead of running (with --json: as JSON).
    #[arg(long, value_name = "RUN_ID", conflicts_with_all = ["dry_run", "force"])]
    pub show: Option<String>,
}

/// Runs listed by `--history`.
const HISTORY: i64 = 50;

/// Runs the command; `Err(Exit(n))` carries the exit code once everything is printed.
pub async fn run(settings: Settings, args: Args) -> anyhow::Result<()> {
    if args.mark_only {
        let store = app::open_store(&settings).await?;
        let n = store
            .mark_all(args.connector.as_deref(), OffsetDateTime::now_utc())
            .await?;
        println!("marked {n} resources for delivery");
        store.close().await;
        return Ok(());
    }
    if args.history || args.show.is_some() {
        let store = app::open_store(&settings).await?;
        let result = records(&store, &args).await;
        store.close().await;
        return result;
    }
    match reconcile(settings, &args).await {
        Ok(0) => Ok(()),
        Ok(code) => Err(Exit(code).into()),
        Err(e) => {
            eprintln!("usersync: {e:#}");
            Err(Exit(2).into())
        }
    }
}

/// `--history` and `--show`: what the run records say.
async fn records(store: &crate::store::Store, args: &Args) -> anyhow::Result<()> {
    if let Some(id) = &args.show {
        let run = store
            .reconcile_run(id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no reconcile run {id} is recorded"))?;
        let items = store.reconcile_items(id).await?;
        let report = RunReport::from_record(&run, &items);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", render(&report));
        }
        return Ok(());
    }
    let runs = store
        .reconcile_runs(args.connector.as_deref(), HISTORY)
        .await?;
    if args.json {
        let list: Vec<RunReport> = runs
            .iter()
            .map(|r| RunReport::from_record(r, &[]))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", crate::reconcile::report::render_history(&runs));
    }
    Ok(())
}

async fn reconcile(settings: Settings, args: &Args) -> anyhow::Result<u8> {
    if settings.confluence.is_none() {
        anyhow::bail!("no [confluence] section: set base_url and token_env first");
    }
    let runtime = app::runtime(settings).await?;
    let client = runtime.table().confluence_client()?;
    let store = runtime.store().clone();
    let reconciler = app::reconciler(store.clone(), client, &runtime);
    let connectors = match &args.connector {
        Some(c) => vec![c.clone()],
        None => reconciler.connectors().await?,
    };
    let progress = Bar::new(std::io::stderr().is_terminal());
    let mut reports: Vec<RunReport> = Vec::new();
    let mut errors = Vec::new();
    for connector in connectors {
        let req = RunRequest {
            connector: connector.clone(),
            dry_run: args.dry_run,
            force: args.force,
            started_by: StartedBy::Cli,
        };
        match reconciler.run(&req, &progress).await {
            Ok(report) => {
                if !args.json {
                    print!("{}", render(&report));
                    println!();
                }
                reports.push(report);
            }
            Err(e) => {
                if !args.json {
                    eprintln!("usersync: reconcile of connector {connector} failed: {e}");
                }
                errors.push(json!({"connector": connector, "error": e.to_string()}));
            }
        }
    }
    store.close().await;
    if args.json {
        let doc = json!({"runs": reports, "errors": errors});
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_else(|e| e.to_string())
        );
    }
    Ok(exit_code(&reports, !errors.is_empty()))
}

/// 2 for an error or a run the guard stopped (or would stop, in a dry run); 1 when a dry run
/// found drift; else 0.
pub fn exit_code(reports: &[RunReport], errors: bool) -> u8 {
    let stopped = reports
        .iter()
        .any(|r| r.status == RunStatus::StoppedByGuard || (r.guard.tripped && !r.guard.forced));
    if errors || stopped {
        2
    } else if reports.iter().any(|r| r.dry_run && r.drift()) {
        1
    } else {
        0
    }
}

/// Progress on stderr: a redrawn bar on a terminal; otherwise plain lines, one when a stage
/// ends and one every few seconds in between, so a log file stays readable.
struct Bar {
    tty: bool,
    state: Mutex<BarState>,
}

struct BarState {
    phase: Option<Phase>,
    total: Option<u64>,
    done: u64,
    last: Instant,
    drawn: bool,
}

const TTY_EVERY: Duration = Duration::from_millis(100);
const LINE_EVERY: Duration = Duration::from_secs(5);
const WIDTH: usize = 30;

impl Bar {
    fn new(tty: bool) -> Self {
        Self {
            tty,
            state: Mutex::new(BarState {
                phase: None,
                total: None,
                done: 0,
                last: Instant::now(),
                drawn: false,
            }),
        }
    }

    fn line(phase: Phase, total: Option<u64>, done: u64, tty: bool) -> String {
        match total.filter(|t| *t > 0) {
            Some(t) if tty => {
                let filled = ((done.min(t) as f64 / t as f64) * WIDTH as f64) as usize;
                format!(
                    "{:<28} [{}{}] {done}/{t}",
                    phase.label(),
                    "#".repeat(filled),
                    " ".repeat(WIDTH - filled)
                )
            }
            Some(t) => format!("{}: {done}/{t}", phase.label()),
            None => format!("{}: {done}", phase.label()),
        }
    }

    fn draw(&self, st: &mut BarState) {
        let Some(phase) = st.phase else { return };
        st.last = Instant::now();
        let text = Self::line(phase, st.total, st.done, self.tty);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{text}");
            st.drawn = true;
        } else {
            let _ = writeln!(err, "{text}");
        }
        let _ = err.flush();
    }

    /// Ends the current stage: its last count as a line of its own (plain output), or the
    /// bar cleared (terminal).
    fn end_stage(&self, st: &mut BarState) {
        if self.tty {
            if st.drawn {
                let _ = write!(std::io::stderr(), "\r\x1b[2K");
                st.drawn = false;
            }
        } else if st.phase.is_some() {
            self.draw(st);
        }
        st.phase = None;
    }
}

impl Progress for Bar {
    fn phase(&self, phase: Phase, total: Option<u64>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.end_stage(&mut st);
        st.phase = Some(phase);
        st.total = total;
        st.done = 0;
        if self.tty {
            self.draw(&mut st);
        } else {
            st.last = Instant::now();
        }
    }

    fn advance(&self, done: u64) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.done = done;
        let every = if self.tty { TTY_EVERY } else { LINE_EVERY };
        if st.last.elapsed() >= every {
            self.draw(&mut st);
        }
    }

    fn finish(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.end_stage(&mut st);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::report::{Action, DriftClass, GuardReport, Item, Outcome};

    fn report(dry_run: bool, drift: bool, status: RunStatus, tripped: bool) -> RunReport {
        RunReport {
            id: "r".into(),
            connector: "c".into(),
            started_at: String::new(),
            ended_at: String::new(),
            started_by: "cli".into(),
            dry_run,
            status,
            accounts: 10,
            pages: 1,
            groups: 1,
            users: 9,
            unmappable: 0,
            protected: 1,
            counts: Default::default(),
            guard: GuardReport {
                disables: if tripped { 60 } else { 0 },
                limit: 50,
                rule: String::new(),
                tripped,
                forced: false,
            },
            items: if drift {
                vec![Item {
                    class: DriftClass::Active,
                    username: "ada".into(),
                    scim_id: None,
                    action: Action::Converge,
                    outcome: Outcome::Planned,
                    detail: String::new(),
                    disables: false,
                }]
            } else {
                Vec::new()
            },
            error: None,
        }
    }

    #[test]
    fn exit_codes_say_nothing_drift_or_error() {
        use RunStatus::*;
        assert_eq!(exit_code(&[report(true, false, DryRun, false)], false), 0);
        assert_eq!(exit_code(&[report(true, true, DryRun, false)], false), 1);
        assert_eq!(
            exit_code(&[report(false, true, Completed, false)], false),
            0,
            "fixed"
        );
        assert_eq!(
            exit_code(&[report(false, true, StoppedByGuard, true)], false),
            2
        );
        assert_eq!(
            exit_code(&[report(true, true, DryRun, true)], false),
            2,
            "a dry run says a real run would stop"
        );
        assert_eq!(exit_code(&[report(true, false, DryRun, false)], true), 2);
        assert_eq!(exit_code(&[], true), 2);
    }

    #[test]
    fn a_bar_on_a_terminal_and_a_plain_line_otherwise() {
        assert_eq!(
            Bar::line(Phase::Compare, Some(200), 50, true),
            format!(
                "{:<28} [{}{}] 50/200",
                "comparing users",
                "#".repeat(7),
                " ".repeat(23)
            )
        );
        assert_eq!(
            Bar::line(Phase::Compare, Some(200), 50, false),
            "comparing users: 50/200"
        );
        assert_eq!(
            Bar::line(Phase::ReadAccounts, None, 1200, true),
            "reading Confluence accounts: 1200"
        );
    }
}
