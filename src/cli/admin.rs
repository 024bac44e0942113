//! `usersync admin token create | list | revoke` (docs/admin-api.md). `admin openapi` needs
//! no configuration and is answered in `cli.rs` before the settings load.

use anyhow::Context;
use time::OffsetDateTime;

use super::{AdminCommand, AdminTokenCommand, RoleArg};
use crate::app;
use crate::config::Settings;
use crate::connectors::{generate_admin_token, hash_hex, hash_token};
use crate::store::admin::AdminRole;
use crate::store::audit::AdminAction;

/// The actor the audit trail names for changes made on the host's command line.
pub const COMMAND_LINE: &str = "(command line)";

/// Longest token name.
const MAX_NAME: usize = 64;

/// Runs an `admin` subcommand.
pub async fn run(settings: Settings, action: AdminCommand) -> anyhow::Result<()> {
    let AdminCommand::Token { action } = action else {
        unreachable!("`admin openapi` is answered before the settings load")
    };
    let store = app::open_store(&settings).await?;
    let now = OffsetDateTime::now_utc();
    let audit = |action: &str, name: &str| AdminAction {
        connector: String::new(),
        token: COMMAND_LINE.to_owned(),
        action: action.to_owned(),
        target_kind: Some("admin_token".to_owned()),
        target: Some(name.to_owned()),
        outcome: "ok".to_owned(),
    };
    let result = match action {
        AdminTokenCommand::Create { name, role } => {
            check_name(&name)?;
            let role = match role {
                RoleArg::Admin => AdminRole::Admin,
                RoleArg::Viewer => AdminRole::Viewer,
            };
            let token = generate_admin_token();
            store
                .create_admin_token(
                    &name,
                    role,
                    &hash_hex(&hash_token(&token)),
                    now,
                    &audit("admin_token.create", &name),
                )
                .await
                .with_context(|| format!("cannot create the admin token {name:?}"))?;
            println!(
                "Created the {} token {name:?}. It is shown this once:",
                role.as_str()
            );
            println!();
            println!("  Authorization: Bearer {token}");
            println!();
            println!(
                "Operations API: http://{}/admin/api/v1 (setting `admin.listen`)",
                settings.admin.listen
            );
            Ok(())
        }
        AdminTokenCommand::List => {
            println!(
                "{:<24} {:<7} {:<21} {:<21} REVOKED",
                "NAME", "ROLE", "CREATED", "LAST USED"
            );
            let at = |t: Option<OffsetDateTime>| {
                t.map(|t| {
                    let f = time::macros::format_description!(
                        "[year]-[month]-[day] [hour]:[minute]:[second]"
                    );
                    t.format(&f).unwrap_or_default()
                })
                .unwrap_or_else(|| "-".to_owned())
            };
            for t in store.admin_tokens().await? {
                println!(
                    "{:<24} {:<7} {:<21} {:<21} {}",
                    t.name,
                    t.role.as_str(),
                    at(Some(t.created)),
                    at(t.last_used),
                    at(t.revoked)
                );
            }
            Ok(())
        }
        AdminTokenCommand::Revoke { name } => {
            if store
                .revoke_admin_token(&name, now, &audit("admin_token.revoke", &name))
                .await?
            {
                println!("Revoked the admin token {name:?}: it no longer opens the API.");
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "no live admin token is named {name:?}; see `usersync admin token list`"
                ))
            }
        }
    };
    store.close().await;
    result
}

/// A token name is shown in lists and recorded in the audit trail: printable, short, and
/// unambiguous (no spaces, no quotes).
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        anyhow::bail!(
            "the token name {name:?} is not usable: 1 to {MAX_NAME} characters of letters, \
             digits, '.', '_', '-', '@' (for instance the holder's e-mail or role)"
        )
    }
}
