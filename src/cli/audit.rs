//! `usersync audit verify | export`: check the audit trail's hash chains, and write its rows
//! out as JSON lines (docs/audit.md).

use std::io::Write;

use time::OffsetDateTime;

use super::{AuditAction, Exit};
use crate::app;
use crate::config::Settings;
use crate::values::Dur;

/// Runs an audit subcommand.
pub async fn run(settings: Settings, action: AuditAction) -> anyhow::Result<()> {
    let store = app::open_store(&settings).await?;
    let result = match action {
        AuditAction::Verify => verify(&store).await,
        AuditAction::Export {
            since,
            connector,
            format: _,
        } => export(&store, &since, connector.as_deref()).await,
    };
    store.close().await;
    result
}

async fn verify(store: &crate::store::Store) -> anyhow::Result<()> {
    let v = store.audit_verify().await?;
    if v.bad.is_empty() {
        println!(
            "audit trail verified: {} rows in {} chains",
            v.rows, v.chains
        );
        return Ok(());
    }
    for bad in &v.bad {
        println!("BAD {bad}");
    }
    println!(
        "audit trail NOT verified: {} of {} chains are broken ({} rows read); the first bad row is {}",
        v.bad.len(),
        v.chains,
        v.rows,
        v.bad[0]
    );
    Err(Exit(1).into())
}

/// `--since`: an RFC 3339 time, or a duration back from now (`24h`, `90d`).
pub fn parse_since(text: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    let back = Dur::parse(text).map_err(|e| {
        anyhow::anyhow!("--since {text:?} is neither an RFC 3339 time nor a duration: {e}")
    })?;
    let back = time::Duration::try_from(back.0)
        .map_err(|_| anyhow::anyhow!("--since {text:?} is too long ago"))?;
    Ok(now - back)
}

async fn export(
    store: &crate::store::Store,
    since: &str,
    connector: Option<&str>,
) -> anyhow::Result<()> {
    let since = parse_since(since, OffsetDateTime::now_utc())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut after = 0i64;
    loop {
        let page = store.audit_export_page(since, connector, after).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in &page {
            serde_json::to_writer(&mut out, &record.to_json())?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_time_or_a_duration_back_from_now() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        assert_eq!(
            parse_since("1970-01-01T00:00:10Z", now).unwrap(),
            OffsetDateTime::from_unix_timestamp(10).unwrap()
        );
        assert_eq!(
            parse_since("1h", now).unwrap(),
            OffsetDateTime::from_unix_timestamp(1_000_000 - 3600).unwrap()
        );
        assert!(parse_since("yesterday", now).is_err());
    }
}
