//! `usersync queue list | retry | attempts`: the sync queue, dead keys and attempt records.

use time::OffsetDateTime;

use super::QueueAction;
use crate::app;
use crate::config::Settings;

/// Runs a queue subcommand.
pub async fn run(settings: Settings, action: QueueAction) -> anyhow::Result<()> {
    let store = app::open_store(&settings).await?;
    match action {
        QueueAction::List { connector, dead } => {
            let rows = store.queue_rows(connector.as_deref()).await?;
            println!(
                "{:<12} {:<6} {:<38} {:<8} {:>8}  LAST ERROR",
                "CONNECTOR", "KIND", "ID", "STATE", "ATTEMPTS"
            );
            for r in rows.iter().filter(|r| !dead || r.state == "dead") {
                // A pending key set aside for a paused target says so (its reason names it).
                let state = match (&r.waiting_on, r.state.as_str()) {
                    (Some(_), "pending") => "waiting",
                    (_, state) => state,
                };
                println!(
                    "{:<12} {:<6} {:<38} {:<8} {:>8}  {}",
                    r.key.connector,
                    r.key.kind.as_str(),
                    r.key.id,
                    state,
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
            let key = crate::store::ResourceKey {
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
