//! L3: Linchpin's XML data source, pulled on demand (`POST /__emulator/lup/xml-import`).
//!
//! Mirrors the documented behaviour (docs/reference/confluence-api.md §2.2): fetch the feed URL,
//! read it as UTF-8 (a BOM is accepted and reported), take one `<user_tag>` element per user whose
//! `<username_tag>` child names the Confluence user, and set every field whose XML node name equals
//! another child's name. Duplicate usernames abort the whole import with nothing changed; unknown
//! usernames are reported and skipped; values set from XML become read-only for that user.
//!
//! **(assumed)**: only fields whose source is `XML` are filled; multi-select values are
//! split on `lup.multi_value_delimiter`; user-select values are Confluence usernames; a
//! field that a later feed omits becomes editable again but keeps its value.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use quick_xml::events::{BytesRef, Event};
use quick_xml::Reader;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::config::LupKnobs;
use super::lup::{DataSource, LupValue, ValueSource};
use super::shared::Shared;
use super::state::State;

/// UTF-8 byte order mark, which Linchpin's documentation asks for ("UTF-8 with preamble").
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Outcome of one import run (also kept as `lup.last_import` in the state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// No errors: values were applied.
    pub successful: bool,
    /// Feed URL used.
    pub url: Option<String>,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// Run time.
    pub duration_ms: u64,
    /// Whether the feed began with a UTF-8 BOM (`None` when it was not fetched).
    pub bom_present: Option<bool>,
    /// User elements in the feed.
    pub users_in_feed: usize,
    /// Users with at least one changed value.
    pub users_updated: usize,
    /// Values written (changed or not).
    pub values_set: usize,
    /// Values that changed.
    pub values_changed: usize,
    /// Usernames in the feed that Confluence does not know (skipped).
    pub unknown_users: Vec<String>,
    /// Fatal problems; any error means nothing was changed.
    pub errors: Vec<String>,
    /// Non-fatal oddities (user elements without username, unknown user-select targets…).
    pub warnings: Vec<String>,
}

/// Why an import failed; nothing was changed. The report keeps its text (`errors`).
#[derive(Debug, thiserror::Error)]
enum ImportError {
    /// The knob `lup.xml_url` is not set.
    #[error("no feed URL configured (knob lup.xml_url)")]
    NoUrl,
    /// A `file:` feed could not be read.
    #[error("reading the feed file failed: {0}")]
    ReadFile(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The request failed.
    #[error("fetching the feed failed: {0}")]
    Fetch(String),
    /// The feed answered with an error status.
    #[error("the feed answered HTTP {0}")]
    Status(reqwest::StatusCode),
    /// The body could not be read.
    #[error("reading the feed body failed: {0}")]
    Body(String),
    /// The body is not UTF-8.
    #[error("the feed is not valid UTF-8: {0}")]
    NotUtf8(std::str::Utf8Error),
    /// The XML is not well-formed.
    #[error("malformed XML at byte {position}: {detail}")]
    Malformed {
        /// Byte offset where the reader stopped.
        position: u64,
        /// What the reader said.
        detail: String,
    },
    /// A character or entity reference that cannot be resolved.
    #[error("{0}")]
    Reference(String),
    /// Usernames named twice (lower-cased): Linchpin aborts the whole import.
    #[error("duplicate usernames in the feed: {}; import aborted, nothing changed", .0.join(", "))]
    Duplicates(Vec<String>),
}

/// One `<user>` element: its username and its other children in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FeedUser {
    username: Option<String>,
    elements: Vec<(String, String)>,
}

/// Runs the import and stores its report.
pub(crate) async fn run(sh: &Shared) -> ImportReport {
    let started = Instant::now();
    let knobs = sh.world().knobs.lup.clone();
    let mut report = ImportReport {
        url: knobs.xml_url.clone(),
        started_at: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
        ..ImportReport::default()
    };
    if let Err(error) = import(sh, &knobs, &mut report).await {
        report.errors.push(error.to_string());
    }
    report.successful = report.errors.is_empty();
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        lup.import.successful = report.successful,
        lup.import.users_in_feed = report.users_in_feed,
        lup.import.users_updated = report.users_updated,
        lup.import.unknown_users = report.unknown_users.len(),
        lup.import.errors = report.errors.len(),
        duration_ms = report.duration_ms,
        "emulator: Linchpin XML import finished"
    );
    sh.world().state.lup.last_import = Some(report.clone());
    report
}

async fn import(
    sh: &Shared,
    knobs: &LupKnobs,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let url = knobs.xml_url.as_deref().ok_or(ImportError::NoUrl)?;
    let bytes = fetch(url, Duration::from_millis(knobs.fetch_timeout_ms)).await?;
    let (text, bom) = decode(&bytes)?;
    report.bom_present = Some(bom);
    let users = parse_feed(text, &knobs.user_tag, &knobs.username_tag)?;
    report.users_in_feed = users.len();
    check_duplicates(&users)?;
    let mut world = sh.world();
    apply(&mut world.state, &users, knobs, report);
    Ok(())
}

/// Downloads the feed (`http(s)://`, or `file:` for a path on this machine).
async fn fetch(url: &str, timeout: Duration) -> Result<Vec<u8>, ImportError> {
    if let Some(path) = url.strip_prefix("file://").or(url.strip_prefix("file:")) {
        let path = path.to_owned();
        return tokio::task::spawn_blocking(move || std::fs::read(path))
            .await
            .map_err(|e| ImportError::ReadFile(e.to_string()))?
            .map_err(|e| ImportError::ReadFile(e.to_string()));
    }
    // Linchpin fetches the feed directly; proxies from the environment would only get in
    // the way of a test feed on localhost.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .map_err(|e| ImportError::Client(e.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| ImportError::Fetch(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(ImportError::Status(status));
    }
    response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| ImportError::Body(e.to_string()))
}

/// UTF-8 text without its BOM, and whether there was one.
fn decode(bytes: &[u8]) -> Result<(&str, bool), ImportError> {
    let (body, bom) = match bytes.strip_prefix(BOM) {
        Some(rest) => (rest, true),
        None => (bytes, false),
    };
    std::str::from_utf8(body)
        .map(|text| (text, bom))
        .map_err(ImportError::NotUtf8)
}

/// Text of an entity or character reference.
fn resolve_ref(r: &BytesRef<'_>) -> Result<String, ImportError> {
    let invalid = |e: &dyn std::fmt::Display| ImportError::Reference(e.to_string());
    if let Some(c) = r.resolve_char_ref().map_err(|e| invalid(&e))? {
        return Ok(c.to_string());
    }
    let name = r.decode().map_err(|e| invalid(&e))?;
    quick_xml::escape::resolve_xml_entity(&name)
        .map(str::to_owned)
        .ok_or_else(|| ImportError::Reference(format!("unknown entity &{name};")))
}

/// Collects the user elements of a feed.
fn parse_feed(
    text: &str,
    user_tag: &str,
    username_tag: &str,
) -> Result<Vec<FeedUser>, ImportError> {
    let mut reader = Reader::from_str(text);
    let mut depth = 0usize;
    // Depth of the open user element and the user being read.
    let mut user: Option<(usize, FeedUser)> = None;
    // Name of the open direct child of the user element and its text so far.
    let mut child: Option<(String, String)> = None;
    let mut users = Vec::new();
    let malformed = |e: &dyn std::fmt::Display, position: u64| ImportError::Malformed {
        position,
        detail: e.to_string(),
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(&e, reader.buffer_position()))?;
        match event {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                match &user {
                    None if name == user_tag => {
                        user = Some((
                            depth,
                            FeedUser {
                                username: None,
                                elements: vec![],
                            },
                        ));
                    }
                    Some((d, _)) if depth == d + 1 => child = Some((name, String::new())),
                    _ => {}
                }
                depth += 1;
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                match &mut user {
                    None if name == user_tag => users.push(FeedUser {
                        username: None,
                        elements: vec![],
                    }),
                    Some((d, u)) if depth == *d + 1 => u.elements.push((name, String::new())),
                    _ => {}
                }
            }
            Event::Text(t) => {
                if let Some((_, buf)) = &mut child {
                    let text = t
                        .xml10_content()
                        .map_err(|e| malformed(&e, reader.buffer_position()))?;
                    buf.push_str(&text);
                }
            }
            Event::CData(t) => {
                if let Some((_, buf)) = &mut child {
                    let text = t
                        .decode()
                        .map_err(|e| malformed(&e, reader.buffer_position()))?;
                    buf.push_str(&text);
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, buf)) = &mut child {
                    buf.push_str(&resolve_ref(&r)?);
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                match &mut user {
                    Some((d, u)) if depth == *d + 1 => {
                        if let Some((name, value)) = child.take() {
                            u.elements.push((name, value));
                        }
                    }
                    Some((d, _)) if depth == *d => {
                        if let Some((_, u)) = user.take() {
                            users.push(u);
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    for u in &mut users {
        u.username = u
            .elements
            .iter()
            .find(|(name, _)| name == username_tag)
            .map(|(_, v)| v.trim().to_lowercase())
            .filter(|v| !v.is_empty());
    }
    Ok(users)
}

/// Linchpin refuses a feed that names a user twice: the whole import fails.
fn check_duplicates(users: &[FeedUser]) -> Result<(), ImportError> {
    let mut seen = BTreeSet::new();
    let mut dups = BTreeSet::new();
    for name in users.iter().filter_map(|u| u.username.as_deref()) {
        if !seen.insert(name) {
            dups.insert(name);
        }
    }
    if dups.is_empty() {
        Ok(())
    } else {
        Err(ImportError::Duplicates(
            dups.into_iter().map(str::to_owned).collect(),
        ))
    }
}

/// Writes the feed's values (caller holds the world lock).
fn apply(state: &mut State, users: &[FeedUser], knobs: &LupKnobs, report: &mut ImportReport) {
    // XML node name → (PK, multi-valued, user select, label).
    let fields: BTreeMap<String, (u64, bool, bool, String)> = state
        .lup
        .fields
        .iter()
        .filter(|f| f.data_source_type == DataSource::Xml)
        .map(|f| {
            let user_select = f.field_type.to_ascii_uppercase().contains("USER");
            (
                f.xml_node.clone(),
                (f.user_field_pk, f.is_multi(), user_select, f.label.clone()),
            )
        })
        .collect();
    for (index, feed_user) in users.iter().enumerate() {
        let Some(username) = &feed_user.username else {
            report.warnings.push(format!(
                "user element #{} has no <{}>; skipped",
                index + 1,
                knobs.username_tag
            ));
            continue;
        };
        let Some(user) = state.user(username) else {
            report.unknown_users.push(username.clone());
            continue;
        };
        let (canonical, user_key) = (user.username.clone(), user.user_key.clone());
        let mut present = BTreeSet::new();
        let mut changed_any = false;
        for (name, text) in &feed_user.elements {
            let Some((pk, multi, user_select, label)) = fields.get(name) else {
                continue;
            };
            let value = if *multi {
                LupValue::Multi(
                    text.split(knobs.multi_value_delimiter.as_str())
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )
            } else {
                LupValue::Single(text.trim().to_owned())
            };
            if *user_select {
                if let LupValue::Single(target) = &value {
                    if !target.is_empty() && state.user(target).is_none() {
                        report
                            .warnings
                            .push(format!("{canonical}: {label} names unknown user {target}"));
                    }
                }
            }
            match state.set_lup_value(&canonical, *pk, value, true, ValueSource::Xml) {
                Ok(changed) => {
                    report.values_set += 1;
                    if changed {
                        report.values_changed += 1;
                        changed_any = true;
                    }
                }
                Err(e) => report.warnings.push(format!("{canonical}: {e}")),
            }
            present.insert(*pk);
        }
        if let Some(values) = state.lup.values.get_mut(&user_key) {
            for (pk, stored) in values.iter_mut() {
                if stored.source == ValueSource::Xml && !present.contains(pk) {
                    stored.read_only = false;
                }
            }
        }
        if changed_any {
            report.users_updated += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<people>
  <person>
    <login>JDoe</login>
    <department>R &amp; D</department>
    <skills>Rust; SCIM</skills>
    <empty/>
  </person>
  <person><login>mroe</login><manager><![CDATA[jdoe]]></manager></person>
</people>"#;

    #[test]
    fn a_feed_yields_one_record_per_user_element() {
        let users = parse_feed(FEED, "person", "login").expect("parses");
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].username.as_deref(), Some("jdoe"));
        assert!(users[0]
            .elements
            .contains(&("department".to_owned(), "R & D".to_owned())));
        assert!(users[0]
            .elements
            .contains(&("empty".to_owned(), String::new())));
        assert!(users[1]
            .elements
            .contains(&("manager".to_owned(), "jdoe".to_owned())));
    }

    #[test]
    fn a_bom_is_accepted_and_reported() {
        let with_bom = [BOM, FEED.as_bytes()].concat();
        let (text, bom) = decode(&with_bom).expect("decodes");
        assert!(bom);
        assert!(text.starts_with("<?xml"));
        assert!(!decode(FEED.as_bytes()).expect("decodes").1);
        assert!(decode(b"\xff\xfe<x/>").is_err());
    }

    #[test]
    fn duplicate_usernames_are_reported_case_insensitively() {
        let feed =
            "<users><user><username>a</username></user><user><username>A</username></user></users>";
        let users = parse_feed(feed, "user", "username").expect("parses");
        let err = check_duplicates(&users).expect_err("duplicates");
        assert!(matches!(&err, ImportError::Duplicates(names) if names == &["a"]));
        let err = err.to_string();
        assert!(err.contains("a;") || err.contains(": a"), "{err}");
    }

    #[test]
    fn malformed_xml_is_an_error() {
        assert!(parse_feed("<users><user></users>", "user", "username").is_err());
    }
}
