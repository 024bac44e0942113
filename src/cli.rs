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
    /// redacted; with a Linchpin named, compare the mapped fields with its field list.
    CheckConfig {
        /// Linchpin (Confluence) base URL whose field list the mappings are compared with;
        /// default: `[linchpin] base_url`.
        #[arg(long, value_name = "URL")]
        linchpin_url: Option<String>,
    },
    /// Run the Confluence Data Center + Linchpin emulator (for tests and trials).
    Emulator(crate::emulator::EmulatorArgs),
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
        Command::Queue { action } => queue(settings, action).await,
        Command::SyncUser {
            connector,
            user_name,
            dry_run,
        } => sync_user(settings, &connector, &user_name, dry_run).await,
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

async fn serve(settings: Settings, emulator: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let public = settings.public_url.clone();
    let app = match emulator {
        None => Application::build(settings).await?,
        Some(addr) => {
            let confluence = start_emulator(addr).await?;
            Application::build_with_confluence(settings, Some(confluence)).await?
        }
    };
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

/// Starts the Confluence emulator for `serve --with-emulator` and returns the client
/// configuration that points at it.
async fn start_emulator(
    addr: std::net::SocketAddr,
) -> anyhow::Result<crate::targets::confluence::ConfluenceConfig> {
    use crate::emulator::{Emulator, EmulatorConfig};
    use crate::targets::confluence::{ConfluenceAuth, ConfluenceConfig, Secret};
    let token = connectors::generate_token();
    let emulator = Emulator::new(EmulatorConfig::new(token.clone()));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the emulator (--emulator-listen)"))?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(e) = emulator.serve(listener, std::future::pending()).await {
            tracing::error!(error.message = %e, "the Confluence emulator stopped");
        }
    });
    println!("Confluence emulator (a test double, not Confluence) at {url}");
    println!("  see what usersync delivered: curl {url}/__emulator/state");
    Ok(ConfluenceConfig::new(
        url,
        ConfluenceAuth::Pat(Secret::new(token)),
    ))
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

async fn sync_user(
    settings: Settings,
    connector: &str,
    user_name: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    use crate::delivery::converge::Converged;
    use crate::delivery::dry_run::DryRun;
    use crate::delivery::Worker;
    use crate::targets::confluence::ConfluenceClient;

    let store = app::open_store(&settings).await?;
    let user = store
        .find_by_name(
            connector,
            crate::scim::schema::ResourceKind::User,
            user_name,
        )
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!("connector {connector} has no user with userName {user_name:?}")
        })?;
    let confluence = settings.confluence.as_ref().ok_or_else(|| {
        anyhow::anyhow!("no [confluence] section: set base_url and token_env first")
    })?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    let client = ConfluenceClient::new(confluence.resolve(&env).map_err(anyhow::Error::msg)?)
        .map_err(|e| anyhow::anyhow!(e.0))?;
    let provisioning: std::collections::HashMap<_, _> = settings
        .connectors
        .iter()
        .map(|(n, c)| (n.clone(), c.provisioning.clone()))
        .collect();
    let key = crate::store::queue::QueueKey {
        connector: connector.to_owned(),
        kind: crate::scim::schema::ResourceKind::User,
        id: user.id.clone(),
    };
    let reg = crate::scim::schema::SchemaRegistry::load(Some(&settings.schemas_dir))
        .map_err(anyhow::Error::msg)?;
    let profiles = std::sync::Arc::new(
        crate::profiles::Profiles::from_settings(&settings, &reg).map_err(anyhow::Error::msg)?,
    );
    let delivery = settings.delivery.clone();
    let (outcome, attempts, writes) = if dry_run {
        let worker = Worker::with_profiles(
            store.clone(),
            DryRun::new(client),
            delivery,
            provisioning,
            profiles,
        );
        let (o, a) = worker.sync_now(&key, false).await;
        (o, a, Some(worker.directory().writes()))
    } else {
        let worker = Worker::with_profiles(store.clone(), client, delivery, provisioning, profiles);
        let (o, a) = worker.sync_now(&key, true).await;
        (o, a, None)
    };
    println!(
        "user {user_name} (SCIM id {}) on connector {connector}:",
        user.id
    );
    for a in &attempts {
        println!(
            "  {:<48} {:>4} {:>6} ms  {}",
            a.call,
            a.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            a.duration_ms,
            a.error_class.as_deref().unwrap_or("ok")
        );
    }
    if let Some(writes) = writes {
        if writes.is_empty() {
            println!("dry run: Confluence already matches; nothing would change");
        } else {
            println!("dry run: these changes would be made:");
            for w in writes {
                println!("  {w}");
            }
        }
    }
    store.close().await;
    match outcome {
        Converged::Done => {
            println!("done");
            Ok(())
        }
        Converged::Failed { reason, .. } => anyhow::bail!("not delivered: {reason}"),
    }
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
