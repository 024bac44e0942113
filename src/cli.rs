//! The command line: `usersync serve | migrate | check-config | connector … | queue … |
//! sync-user | reconcile | pull | mapping … | emulator | healthcheck`. One file per group of subcommands in `cli/`.

mod admin;
mod audit;
mod connector;
mod delivery;
pub mod health;
pub mod mapping;
mod pull;
mod queue;
mod reconcile;

pub use reconcile::Args as ReconcileArgs;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::app::{self, Application};
use crate::config::Settings;
use crate::runtime::ConnectorTable;
use crate::telemetry;

/// usersync: SCIM 2.0 provisioning from Entra ID, Okta and others into Confluence Data Center
/// and Linchpin User Profiles.
#[derive(Debug, Parser)]
#[command(name = "usersync", version)]
pub struct Cli {
    /// Configuration file (default: ./usersync.toml if it exists).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the SCIM server (creates the `default` connector on first start if none exists).
    Serve {
        /// Also start a Confluence emulator and deliver to it: a trial with nothing else to
        /// install. Overrides any `[confluence]` section.
        #[arg(long)]
        with_emulator: bool,
        /// Where the emulator listens.
        #[arg(long, default_value = "127.0.0.1:8090", requires = "with_emulator")]
        emulator_listen: std::net::SocketAddr,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Load and validate the configuration and the mapping rules, then print it with secrets
    /// redacted; when the database exists, count per connector how the users' managers
    /// resolve; with a Linchpin named, compare the mapped fields with its field list.
    CheckConfig {
        /// Linchpin (Confluence) base URL whose field list the mappings are compared with;
        /// default: `[linchpin] base_url`.
        #[arg(long, value_name = "URL")]
        linchpin_url: Option<String>,
    },
    /// Run the Confluence Data Center + Linchpin emulator (for tests and trials).
    Emulator(Box<crate::emulator::EmulatorArgs>),
    /// Ask the running server whether it is up (exit 0) or not (exit 1): a container
    /// health check for images without curl. Asks `/healthz` on the address `listen` names.
    Healthcheck {
        /// The URL to ask instead (e.g. `http://127.0.0.1:8080/readyz`).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Inspect the sync queue and retry dead keys.
    Queue {
        /// What to do.
        #[command(subcommand)]
        action: QueueAction,
    },
    /// Deliver one user to Confluence now and print what was done (to test a mapping).
    SyncUser {
        /// The connector the user belongs to.
        #[arg(long)]
        connector: String,
        /// The user's SCIM userName.
        user_name: String,
        /// Print the calls that would be made without making them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Full sync against Confluence: read every account and the managed groups, compare them
    /// with the IdP's users, report each difference, and (unless --dry-run) let delivery fix
    /// them; orphans follow each connector's `orphans` policy. Exit code 0: done or nothing
    /// found; 1: a dry run found drift; 2: an error, or the safety guard stopped the run.
    Reconcile(ReconcileArgs),
    /// One run of a pull connector (kind = "graph" or "google"): read the IdP's users and
    /// write the changes. Exit code 0: done; 1: the deletion guard stopped it; 2: an error
    /// (nothing deleted, checkpoint unchanged).
    Pull(pull::Args),
    /// Manage connectors stored in the database.
    Connector {
        /// What to do.
        #[command(subcommand)]
        action: ConnectorAction,
    },
    /// The audit trail: verify its hash chains, export its rows (docs/audit.md).
    Audit {
        /// What to do.
        #[command(subcommand)]
        action: AuditAction,
    },
    /// The operations API: its admin tokens and its OpenAPI document (docs/admin-api.md).
    Admin {
        /// What to do.
        #[command(subcommand)]
        action: AdminCommand,
    },
    /// Inspect attribute mappings.
    Mapping {
        /// What to do.
        #[command(subcommand)]
        action: MappingAction,
    },
}

/// `usersync audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check every row's hash and every chain from its anchor to its head. Exit 0 when the
    /// trail is intact; 1, naming the first bad row, when a row was edited or deleted.
    Verify,
    /// Write the rows at or after `--since` to standard output, oldest first.
    Export {
        /// An RFC 3339 time (`2026-01-31T00:00:00Z`) or a duration back from now (`24h`).
        #[arg(long)]
        since: String,
        /// Only this connector's rows.
        #[arg(long)]
        connector: Option<String>,
        /// Output format: one JSON object per line.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
    },
}

/// `usersync audit export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// JSON lines.
    Jsonl,
}

/// `usersync admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage the tokens that open the operations API.
    Token {
        /// What to do.
        #[command(subcommand)]
        action: AdminTokenCommand,
    },
    /// Print the operations API's OpenAPI 3.1 document (JSON).
    Openapi,
}

/// `usersync admin token …`.
#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create a token and print it once (only a hash is stored).
    Create {
        /// Who holds it: the name the audit trail records for its actions.
        name: String,
        /// `admin` (reads and acts) or `viewer` (reads only).
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
    },
    /// List tokens (names, roles, last use; never the tokens).
    List,
    /// Revoke a token: it stops working at once, on every instance.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// `--role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Reads and acts.
    Admin,
    /// Reads only.
    Viewer,
}

/// `usersync mapping …`.
#[derive(Debug, Subcommand)]
pub enum MappingAction {
    /// Show, for one stored user, each rule's source and mapped value and what the Linchpin
    /// feed and the webhook would carry. Prints personal data to the terminal.
    Preview {
        /// Connector name.
        #[arg(long)]
        connector: String,
        /// The user's SCIM userName (case-insensitive).
        user_name: String,
    },
}

/// `usersync connector …`.
#[derive(Debug, Subcommand)]
pub enum ConnectorAction {
    /// Create a connector and print its bearer token once (only a hash is stored).
    Create {
        /// Name: the SCIM base URL segment, `/scim/v2/NAME`.
        name: String,
    },
    /// List connectors from the configuration and the database.
    List,
    /// Issue a new token; the old ones keep working for `auth.token_rotation_grace`.
    Rotate {
        /// Connector name.
        name: String,
    },
}

/// `usersync queue …`.
#[derive(Debug, Subcommand)]
pub enum QueueAction {
    /// List pending and dead keys with their last error.
    List {
        /// Only this connector.
        #[arg(long)]
        connector: Option<String>,
        /// Only dead keys.
        #[arg(long)]
        dead: bool,
    },
    /// Make dead keys pending again (after fixing the cause).
    Retry {
        /// Only this connector.
        #[arg(long)]
        connector: Option<String>,
    },
    /// Show the recent delivery attempts of one resource.
    Attempts {
        /// Connector.
        #[arg(long)]
        connector: String,
        /// `User` or `Group`.
        #[arg(long, default_value = "User")]
        kind: String,
        /// SCIM id.
        id: String,
    },
}

/// Ends the process with this exit code; whatever had to be said is already printed
/// (`usersync reconcile`: 1 when a dry run found drift, 2 for an error or a stopped run).
#[derive(Debug, thiserror::Error)]
#[error("exit code {0}")]
pub struct Exit(pub u8);

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Emulator(args) = cli.command {
        // The emulator needs no usersync configuration.
        telemetry::init(&crate::config::LogSettings::default());
        return crate::emulator::run(*args).await;
    }
    if let Command::Healthcheck { url, timeout } = &cli.command {
        // Needs only the listen address: a configuration that does not load (a secret not
        // set in the health checker's environment) falls back to the default address.
        let settings = Settings::load(cli.config.as_deref()).ok();
        let url = health::target(settings.as_ref(), url.as_deref(), health::DEFAULT_PATH);
        return match health::check(&url, std::time::Duration::from_secs(*timeout)).await {
            Ok(()) => Ok(()),
            Err(why) => {
                eprintln!("usersync healthcheck: {why:#}");
                Err(Exit(1).into())
            }
        };
    }
    if let Command::Admin {
        action: AdminCommand::Openapi,
    } = &cli.command
    {
        // The document describes the code, not a deployment: no configuration needed.
        println!("{}", crate::http::admin::openapi::json());
        return Ok(());
    }
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(&settings.log);
    match cli.command {
        Command::Serve {
            with_emulator,
            emulator_listen,
        } => serve(settings, with_emulator.then_some(emulator_listen)).await,
        Command::Migrate => {
            app::open_store(&settings).await?;
            println!(
                "migrations applied to {}",
                crate::store::redact_url(&settings.database)
            );
            Ok(())
        }
        Command::CheckConfig { linchpin_url } => {
            print!("{}", settings.redacted_toml());
            // Manager counts and stored connector names need the database; a check never
            // creates or migrates one.
            let store = mapping::existing_store(&settings).await;
            if let Err(why) = &store {
                println!("# managers not counted: {why:#}");
            }
            let lines = match ConnectorTable::from_settings(std::sync::Arc::new(settings)) {
                Ok(table) => {
                    mapping::check(&table, store.as_ref().ok(), linchpin_url.as_deref()).await
                }
                Err(e) => Err(e),
            };
            if let Ok(store) = store {
                store.close().await;
            }
            for line in lines? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Mapping {
            action:
                MappingAction::Preview {
                    connector,
                    user_name,
                },
        } => {
            let runtime = app::runtime(settings).await?;
            let text = mapping::preview(&runtime, &connector, &user_name).await;
            runtime.store().close().await;
            print!("{}", text?);
            Ok(())
        }
        Command::Connector { action } => connector::run(settings, action).await,
        Command::Queue { action } => queue::run(settings, action).await,
        Command::Audit { action } => audit::run(settings, action).await,
        Command::Admin { action } => admin::run(settings, action).await,
        Command::SyncUser {
            connector,
            user_name,
            dry_run,
        } => delivery::sync_user(settings, &connector, &user_name, dry_run).await,
        Command::Reconcile(args) => reconcile::run(settings, args).await,
        Command::Pull(args) => pull::run(settings, args).await,
        Command::Emulator(_) | Command::Healthcheck { .. } => unreachable!("handled above"),
    }
}

async fn serve(settings: Settings, emulator: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let public = settings.public_url.clone();
    let app = match emulator {
        None => Application::build(settings).await?,
        Some(addr) => {
            let confluence = delivery::start_emulator(addr).await?;
            Application::build_with_confluence(settings, Some(confluence)).await?
        }
    };
    let addr = app.local_addr();
    let base = public.unwrap_or_else(|| format!("http://{addr}"));
    if let Some(token) = app::ensure_default_connector(&app.state().runtime).await? {
        // Printed, not logged: the token must never reach log files.
        println!("Created the connector \"default\". Its token is shown this once:");
        println!();
        println!("  SCIM base URL: {base}/scim/v2/default");
        println!("  Bearer token:  {token}");
        println!();
        println!("More connectors: `usersync connector create NAME`.");
    }
    tracing::info!(listen = %addr, "usersync is serving SCIM at {base}/scim/v2/{{connector}}");
    if let Some(admin) = app.admin_addr() {
        println!("Web console: http://{admin}/ and operations API: http://{admin}/admin/api/v1");
        println!("  (sign in with a token from `usersync admin token create NAME --role admin`)");
    }
    app.run_until_stopped(app::shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
