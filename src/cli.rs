//! The command line: `usersync serve | migrate | check-config | connector …`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use time::OffsetDateTime;

use crate::app::{self, Application};
use crate::config::{validate_connector_name, Settings};
use crate::connectors::{self, Connectors, Source};
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
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Load and validate the configuration, then print it with secrets redacted.
    CheckConfig,
    /// Run the Confluence Data Center + Linchpin emulator (for tests and trials).
    Emulator(crate::emulator::EmulatorArgs),
    /// Inspect the sync queue and retry dead keys.
    Queue {
        /// What to do.
        #[command(subcommand)]
        action: QueueAction,
    },
    /// Mark every user and group dirty so delivery converges them all (unchanged ones make
    /// no Confluence call).
    Reconcile {
        /// Only this connector.
        #[arg(long)]
        connector: Option<String>,
    },
    /// Manage connectors stored in the database.
    Connector {
        /// What to do.
        #[command(subcommand)]
        action: ConnectorAction,
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

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Emulator(args) = cli.command {
        // The emulator needs no usersync configuration.
        telemetry::init(&crate::config::LogSettings::default());
        return crate::emulator::run(args).await;
    }
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(&settings.log);
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            app::open_store(&settings).await?;
            println!(
                "migrations applied to {}",
                crate::store::redact_url(&settings.database)
            );
            Ok(())
        }
        Command::CheckConfig => {
            print!("{}", settings.redacted_toml());
            Ok(())
        }
        Command::Connector { action } => connector(settings, action).await,
        Command::Queue { action } => queue(settings, action).await,
        Command::Reconcile { connector } => {
            let store = app::open_store(&settings).await?;
            let n = store
                .mark_all(connector.as_deref(), OffsetDateTime::now_utc())
                .await?;
            println!("marked {n} resources for delivery");
            store.close().await;
            Ok(())
        }
        Command::Emulator(_) => unreachable!("handled above"),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let public = settings.public_url.clone();
    let app = Application::build(settings).await?;
    let addr = app.local_addr();
    let base = public.unwrap_or_else(|| format!("http://{addr}"));
    if let Some(token) =
        app::ensure_default_connector(&app.state().store, &app.state().connectors).await?
    {
        // Printed, not logged: the token must never reach log files.
        println!("Created the connector \"default\". Its token is shown this once:");
        println!();
        println!("  SCIM base URL: {base}/scim/v2/default");
        println!("  Bearer token:  {token}");
        println!();
        println!("More connectors: `usersync connector create NAME`.");
    }
    tracing::info!(listen = %addr, "usersync is serving SCIM at {base}/scim/v2/{{connector}}");
    app.run_until_stopped(app::shutdown_signal()).await
}

async fn connector(settings: Settings, action: ConnectorAction) -> anyhow::Result<()> {
    let store = app::open_store(&settings).await?;
    let now = OffsetDateTime::now_utc();
    match action {
        ConnectorAction::Create { name } => {
            validate_connector_name(&name).map_err(anyhow::Error::msg)?;
            // A configuration table without credentials only adds settings to a stored
            // connector of the same name, so that name is free.
            if settings
                .connectors
                .get(&name)
                .is_some_and(|c| !c.env_names().is_empty())
            {
                anyhow::bail!(
                    "connector {name} has credentials in the configuration file; pick another name"
                );
            }
            let token = connectors::generate_token();
            let hash = connectors::hash_hex(&connectors::hash_token(&token));
            store
                .create_connector(&name, &hash, now)
                .await
                .with_context(|| format!("cannot create connector {name}"))?;
            println!("Created connector {name}. Its token is shown this once:");
            println!("  SCIM base URL: <public URL>/scim/v2/{name}");
            println!("  Bearer token:  {token}");
        }
        ConnectorAction::List => {
            let registry = Connectors::load(&settings, store.clone()).await?;
            println!("{:<24} {:<8} ACTIVE TOKENS", "NAME", "SOURCE");
            for c in registry.list() {
                let source = match c.source {
                    Source::Config => "config",
                    Source::Stored => "stored",
                };
                println!("{:<24} {:<8} {}", c.name, source, c.active_tokens);
            }
        }
        ConnectorAction::Rotate { name } => {
            if settings
                .connectors
                .get(&name)
                .is_some_and(|c| !c.env_names().is_empty())
            {
                anyhow::bail!(
                    "connector {name} is declared in the configuration file: rotate by listing \
                     both the new and the old variable in token_env, then removing the old one"
                );
            }
            let token = connectors::generate_token();
            let hash = connectors::hash_hex(&connectors::hash_token(&token));
            let grace = settings.auth.token_rotation_grace;
            let expire = now + time::Duration::try_from(grace.0).unwrap_or(time::Duration::ZERO);
            if !store
                .rotate_connector_token(&name, &hash, now, expire)
                .await?
            {
                anyhow::bail!("no stored connector named {name}; see `usersync connector list`");
            }
            println!("New token for connector {name} (the previous ones stop working in {grace}):");
            println!("  Bearer token:  {token}");
        }
    }
    store.close().await;
    Ok(())
}

async fn queue(settings: Settings, action: QueueAction) -> anyhow::Result<()> {
    let store = app::open_store(&settings).await?;
    match action {
        QueueAction::List { connector, dead } => {
            let rows = store.queue_rows(connector.as_deref()).await?;
            println!(
                "{:<12} {:<6} {:<38} {:<8} {:>8}  LAST ERROR",
                "CONNECTOR", "KIND", "ID", "STATE", "ATTEMPTS"
            );
            for r in rows.iter().filter(|r| !dead || r.state == "dead") {
                println!(
                    "{:<12} {:<6} {:<38} {:<8} {:>8}  {}",
                    r.key.connector,
                    r.key.kind.as_str(),
                    r.key.id,
                    r.state,
                    r.attempts,
                    r.last_error.as_deref().unwrap_or("")
                );
            }
        }
        QueueAction::Retry { connector } => {
            let n = store
                .revive_dead(connector.as_deref(), OffsetDateTime::now_utc())
                .await?;
            println!("{n} dead keys are pending again");
        }
        QueueAction::Attempts {
            connector,
            kind,
            id,
        } => {
            let kind = crate::scim::schema::ResourceKind::parse(&kind)
                .ok_or_else(|| anyhow::anyhow!("--kind must be User or Group"))?;
            let key = crate::store::queue::QueueKey {
                connector,
                kind,
                id,
            };
            for a in store.attempts(&key, 50).await? {
                println!(
                    "{}  {:>6} ms  {:<48} {:>4}  {}",
                    crate::scim::resource::format_time(a.started),
                    a.duration_ms,
                    a.call,
                    a.status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    a.error_class.as_deref().unwrap_or("ok")
                );
            }
        }
    }
    store.close().await;
    Ok(())
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
