//! `usersync mapping preview` and the Linchpin part of `usersync check-config`.
//!
//! Both print to stdout for the operator at the terminal; the preview shows a user's values
//! (that is its purpose) and never goes through the logger.

use std::fmt::Write as _;

use anyhow::Context;

use crate::config::Settings;
use crate::mapping::{FieldValue, MappingError};
use crate::profiles::resolve::{ManagerStats, Resolved, Resolver};
use crate::profiles::ProfileTargets;
use crate::runtime::{ConnectorTable, Runtime};
use crate::store::Store;
use crate::targets::linchpin::fields::{self, Credentials};
use crate::targets::linchpin::xml;
use crate::targets::webhook;

/// The warnings of comparing every declared connector's mapped fields with the field list
/// of the Linchpin at `base_url`. Errors when the list cannot be read.
pub async fn linchpin_field_warnings(
    table: &ConnectorTable,
    base_url: &str,
    credentials: &Credentials,
) -> anyhow::Result<Vec<String>> {
    let timeout = table.settings().linchpin.timeout.0;
    let remote = fields::fetch(base_url, credentials, timeout).await?;
    let mut warnings = Vec::new();
    for rt in table.declared() {
        let p = &rt.profile_targets;
        if p.has_feed() {
            warnings.extend(fields::compare(&rt.name, &p.mapping, &remote));
        }
    }
    Ok(warnings)
}

/// `check-config`'s mapping part: compiles every connector's rules; with a `store`, counts
/// per connector how its users' manager references resolve (and warns about stored
/// connector names with `_`); when a Linchpin is named (`[linchpin] base_url` or
/// `--linchpin-url`), compares the mapped fields with its field list. Returns the lines to
/// print; compile errors are errors.
pub async fn check(
    table: &ConnectorTable,
    store: Option<&Store>,
    linchpin_url: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let settings = table.settings();
    let mut lines = Vec::new();
    for rt in table.declared() {
        let (name, p) = (&rt.name, &rt.profile_targets);
        lines.push(format!(
            "# [connectors.{name}] mapping compiles: {} profile fields, manager refers to {}, feed {}, webhook {}",
            p.mapping.fields().len(),
            p.mapping.manager().describe(),
            if p.has_feed() { "on" } else { "off" },
            if p.webhook.is_some() { "on" } else { "off" },
        ));
    }
    let mut names: Vec<String> = settings.connectors.keys().cloned().collect();
    if let Some(store) = store {
        match store.connectors().await {
            Ok(stored) => names.extend(stored.into_iter().map(|c| c.name)),
            Err(e) => lines.push(format!("# stored connectors not read: {e}")),
        }
        names.sort();
        names.dedup();
        for name in &names {
            let targets = table.connector(name).profile_targets.clone();
            match manager_stats(store, name, targets).await {
                Ok(stats) if stats.users == 0 => {}
                Ok(stats) => lines.push(format!(
                    "# connector {name}: managers: {}{}",
                    stats.summary(),
                    if stats.unresolved() > 0 {
                        format!(
                            "; the log warns about each unresolved one (manager.reason) and \
                             `usersync mapping preview --connector {name} USER` says why"
                        )
                    } else {
                        String::new()
                    }
                )),
                Err(e) => lines.push(format!("# connector {name}: managers not counted: {e}")),
            }
        }
    }
    names.sort();
    names.dedup();
    lines.extend(
        names
            .iter()
            .filter_map(|n| crate::config::connector_name_warning(n))
            .map(|w| format!("# warning: {w}")),
    );
    let Some(url) = linchpin_url.or(settings.linchpin.base_url.as_deref()) else {
        return Ok(lines);
    };
    let credentials = settings.linchpin_credentials()?;
    let warnings = linchpin_field_warnings(table, url, &credentials)
        .await
        .with_context(|| {
            format!(
                "cannot compare the mappings with the Linchpin at {}",
                crate::store::redact_url(url)
            )
        })?;
    if warnings.is_empty() {
        lines.push(format!(
            "# every mapped field has an XML-sourced Linchpin field at {}",
            crate::store::redact_url(url)
        ));
    }
    lines.extend(warnings.into_iter().map(|w| format!("# warning: {w}")));
    Ok(lines)
}

/// How the manager references of every user of `connector` resolve, read page by page like
/// the feed (the same queries, so the same answer the feed gives).
pub async fn manager_stats(
    store: &Store,
    connector: &str,
    targets: std::sync::Arc<ProfileTargets>,
) -> anyhow::Result<ManagerStats> {
    let mut resolver = Resolver::new(store.clone(), connector, targets);
    let mut after = 0;
    loop {
        let rows = store
            .profile_page(connector, after, crate::profiles::feed::PAGE)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        resolver.tally(&rows).await?;
    }
    Ok(resolver.stats().clone())
}

/// The store `check-config` counts managers in: the configured database as it is, never
/// created or migrated by a check. `Err` says why there is none to read.
pub async fn existing_store(settings: &Settings) -> anyhow::Result<Store> {
    let url = &settings.database;
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or_default();
        if !path.contains(":memory:") && !std::path::Path::new(path).exists() {
            anyhow::bail!("no database at {path} yet");
        }
    }
    let opts = crate::store::StoreOptions {
        max_connections: 2,
        acquire_timeout: settings.store.acquire_timeout.0,
        sqlite_sync: settings.store.sqlite_synchronous,
    };
    Store::connect(url, &opts)
        .await
        .context("cannot open the database")
}

fn show(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_default()
}

fn show_value(v: &FieldValue) -> String {
    match v {
        FieldValue::Set(values) if values.len() == 1 => {
            serde_json::to_string(&values[0]).unwrap_or_default()
        }
        FieldValue::Set(values) => show(values),
        FieldValue::Clear => "(no value: cleared)".to_owned(),
        FieldValue::Keep => "(no value: left as it is)".to_owned(),
        FieldValue::Pending => "(manager not resolved: left as it is)".to_owned(),
        FieldValue::Failed(why) => format!("(rule failed: {why})"),
    }
}

/// `usersync mapping preview --connector NAME USERNAME`: each rule's source value and mapped
/// value, how the manager reference resolved (or why not), and what the feed and the webhook
/// would carry. `USERNAME` may also be the user's SCIM id.
pub async fn preview(
    runtime: &Runtime,
    connector: &str,
    user_name: &str,
) -> anyhow::Result<String> {
    let store = runtime.store();
    let p = runtime.connector(connector).profile_targets.clone();
    // A userName, or the SCIM id the log's manager warnings name.
    let row = match store.profile_row_by_user_name(connector, user_name).await? {
        Some(row) => row,
        None => store
            .profile_row(connector, user_name)
            .await?
            .with_context(|| {
                format!("connector {connector} has no user with userName or id {user_name:?}")
            })?,
    };
    let mut resolver = Resolver::new(store.clone(), connector, p.clone()).tracing();
    let manager = resolver.manager(&row).await?;
    let resolved = resolver
        .resolve(std::slice::from_ref(&row))
        .await?
        .pop()
        .context("no result")?;
    let mut out = String::new();
    let _ = writeln!(out, "connector {connector}, SCIM id {}", row.id);
    let _ = writeln!(out, "\nConfluence identity");
    let traces = p.mapping.trace_identity(&row.doc);
    let results: [(&str, Result<String, MappingError>); 3] = [
        ("username", resolver.username(&row)),
        ("full_name", p.mapping.full_name(&row.doc)),
        ("email", p.mapping.email(&row.doc)),
    ];
    for ((name, trace), (_, result)) in traces.iter().zip(results) {
        let rule = match trace {
            Some(t) => format!("source {}", show(&t.source)),
            None => "built-in rule".to_owned(),
        };
        let value = match result {
            Ok(v) => serde_json::to_string(&v).unwrap_or_default(),
            Err(e) => format!("(no value: {e})"),
        };
        let linked = if *name == "username" && row.linked_username.is_some() {
            " (kept on the identity link)"
        } else {
            ""
        };
        let _ = writeln!(out, "  {name:<10} {rule:<40} -> {value}{linked}");
    }
    let reference = crate::scim::enterprise::manager_ref(&row.doc);
    let _ = writeln!(
        out,
        "\nmanager: manager.value {} refers to {}: {}",
        reference
            .as_deref()
            .map(|r| serde_json::to_string(r).unwrap_or_default())
            .unwrap_or_else(|| "(none)".to_owned()),
        p.mapping.manager().describe(),
        manager.describe(connector, p.mapping.manager())
    );
    let _ = writeln!(out, "\nprofile fields");
    let _ = writeln!(
        out,
        "  {:<16} {:<16} {:<32} MAPPED",
        "FIELD", "XML ELEMENT", "SOURCE"
    );
    let profile = match resolved {
        Resolved::Profile(profile) => profile,
        Resolved::Skipped { field } => {
            let _ = writeln!(
                out,
                "  (left out of the feed and the webhook: field {field:?} has no value and on_missing = \"skip\")"
            );
            return Ok(out);
        }
        Resolved::Unmapped(e) => {
            let _ = writeln!(out, "  (left out: {e})");
            return Ok(out);
        }
    };
    for f in &profile.fields {
        let source = f.source.as_deref().map(show).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<16} {:<16} {:<32} {}",
            f.name,
            f.xml,
            source,
            show_value(&f.value)
        );
    }
    let _ = writeln!(
        out,
        "\nfeed element (GET /linchpin/{connector}/profiles.xml)"
    );
    if p.has_feed() {
        if !profile.active && p.feed.deprovisioned == crate::targets::linchpin::Deprovisioned::Omit
        {
            let _ = writeln!(
                out,
                "  (left out: the user is inactive and deprovisioned = \"omit\")"
            );
        } else {
            let mut element = String::new();
            xml::user(&mut element, &p.feed, &profile);
            out.push_str(&element);
        }
    } else {
        let _ = writeln!(out, "  (no feed: set linchpin.feed_key_env)");
    }
    let _ = writeln!(out, "\nwebhook body");
    if p.webhook.is_some() {
        let body = webhook::payload(connector, &row.id, &profile);
        let pretty = serde_json::from_str::<serde_json::Value>(&body)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or(body);
        let _ = writeln!(out, "{pretty}");
    } else {
        let _ = writeln!(out, "  (no webhook configured)");
    }
    Ok(out)
}
