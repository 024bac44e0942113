//! The command line: `usersync serve | migrate | check-config | connector … | mapping …`.

pub mod mapping;

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
    /// Load and validate the configuration and the mapping rules, then print it with secrets
    /// redacted; with a Linchpin named, compare the mapped fields with its field list.
    CheckConfig {
        /// Linchpin (Confluence) base URL whose field list the mappings are compared with;
        /// default: `[linchpin] base_url`.
        #[arg(long, value_name = "URL")]
        linchpin_url: Option<String>,
    },
    /// Run the Confluence Data Center + Linchpin emulator (for tests and trials).
    Emulator(crate::emulator::EmulatorArgs),
    /// Manage connectors stored in the database.
    Connector {
        /// What to do.
        #[command(subcommand)]
        action: ConnectorAction,
    },
    /// Inspect attribute mappings.
    Mapping {
        /// What to do.
        #[command(subcommand)]
        action: MappingAction,
    },
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
        Command::CheckConfig { linchpin_url } => {
            print!("{}", settings.redacted_toml());
            for line in mapping::check(&settings, linchpin_url.as_deref()).await? {
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
            let store = app::open_store(&settings).await?;
            let text = mapping::preview(&settings, &store, &connector, &user_name).await;
            store.close().await;
            print!("{}", text?);
            Ok(())
        }
        Command::Connector { action } => connector(settings, action).await,
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
            if settings.connectors.contains_key(&name) {
                anyhow::bail!(
                    "connector {name} is declared in the configuration file; pick another name"
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
            if settings.connectors.contains_key(&name) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
