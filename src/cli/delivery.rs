//! Delivery from the command line: `usersync sync-user` and the emulator of
//! `usersync serve --with-emulator`.

use anyhow::Context;

use crate::app;
use crate::config::Settings;
use crate::connectors;

/// Starts the Confluence emulator for `serve --with-emulator` and returns the client
/// configuration that points at it.
pub async fn start_emulator(
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

/// Converges one user now (`usersync sync-user`), or with `dry_run` lists what would change.
pub async fn sync_user(
    settings: Settings,
    connector: &str,
    user_name: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    use crate::delivery::converge::Converged;
    use crate::delivery::dry_run::DryRun;
    use crate::delivery::Worker;

    let runtime = app::runtime(settings).await?;
    let store = runtime.store().clone();
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
    let client = runtime.table().confluence_client()?;
    let key = crate::store::ResourceKey::user(connector, user.id.clone());
    let delivery = runtime.settings().delivery.clone();
    let (outcome, attempts, writes) = if dry_run {
        let worker = Worker::with_connectors(
            store.clone(),
            DryRun::new(client),
            delivery,
            runtime.lookup(),
        );
        let (o, a) = worker.sync_now(&key, false).await;
        (o, a, Some(worker.directory().writes()))
    } else {
        let worker = Worker::with_connectors(store.clone(), client, delivery, runtime.lookup());
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
        Converged::Failed { reason, .. } | Converged::Waiting { reason, .. } => {
            anyhow::bail!("not delivered: {reason}")
        }
    }
}
