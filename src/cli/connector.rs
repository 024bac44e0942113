//! `usersync connector create | list | rotate`.

use anyhow::Context;
use time::OffsetDateTime;

use super::ConnectorAction;
use crate::app;
use crate::config::{connector_name_warning, validate_new_connector_name, Settings};
use crate::connectors::{self, Source};
use crate::runtime::Runtime;

/// Runs a connector subcommand.
pub async fn run(settings: Settings, action: ConnectorAction) -> anyhow::Result<()> {
    let store = app::open_store(&settings).await?;
    let now = OffsetDateTime::now_utc();
    match action {
        ConnectorAction::Create { name } => {
            validate_new_connector_name(&name).map_err(anyhow::Error::msg)?;
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
            let runtime = Runtime::build(settings.clone(), store.clone()).await?;
            println!("{:<24} {:<8} ACTIVE TOKENS", "NAME", "SOURCE");
            let list = runtime.list();
            for c in &list {
                let source = match c.source {
                    Source::Config => "config",
                    Source::Stored => "stored",
                };
                println!("{:<24} {:<8} {}", c.name, source, c.active_tokens);
            }
            for warning in list.iter().filter_map(|c| connector_name_warning(&c.name)) {
                println!("# warning: {warning}");
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
            let audit = crate::store::audit::AdminAction {
                connector: name.clone(),
                token: super::admin::COMMAND_LINE.to_owned(),
                action: "connector.rotate_token".to_owned(),
                target_kind: Some("connector".to_owned()),
                target: Some(name.clone()),
                outcome: "ok".to_owned(),
            };
            if !store
                .rotate_connector_token_audited(&name, &hash, now, expire, &audit)
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
