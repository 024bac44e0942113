//! Executing list and search queries (RFC 7644 §3.4.2) against the store.
//!
//! The filter's meaning is the Rust evaluator: the store is asked for candidates (through
//! indexes when [`narrow`](crate::store::narrow::narrow) finds an indexed term, else a full scan in chunks), every
//! candidate is rendered and evaluated, then sorted and paged in memory. Without a filter or
//! sort, paging goes straight to SQL.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::scim::filter::{self, Filter};
use crate::scim::members::render_member;
use crate::scim::path::AttrPath;
use crate::scim::query::{ListQuery, SortOrder};
use crate::scim::resource::{self, Document, Meta};
use crate::scim::schema::{AttrType, ResourceKind, ResourceType};
use crate::store::narrow::narrow;
use crate::store::{MemberRow, Store, StoreResult, StoredResource};

/// Rows fetched per round trip of a full scan.
const SCAN_CHUNK: i64 = 1000;

/// Where resources of a connector live and how their URLs look.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// The store.
    pub store: &'a Store,
    /// The resource type.
    pub rt: &'a ResourceType,
    /// Connector name.
    pub connector: &'a str,
    /// SCIM base URL of the connector (`https://host/scim/v2/entra`).
    pub base: &'a str,
}

/// One page of results, rendered but not yet projected.
#[derive(Debug)]
pub struct Page {
    /// Matches in total.
    pub total: usize,
    /// 1-based index of the first item.
    pub start_index: usize,
    /// The items.
    pub items: Vec<Document>,
}

/// Renders a stored resource with its `meta` (and members, for Groups, when given).
pub fn render(scope: Scope<'_>, r: &StoredResource, members: Option<&[MemberRow]>) -> Document {
    let meta = Meta {
        created: r.created,
        last_modified: r.updated,
        version: r.version,
        location: format!("{}/{}/{}", scope.base, scope.rt.kind.endpoint(), r.id),
    };
    let members = members.map(|ms| {
        ms.iter()
            .map(|m| render_member(&m.id, &m.kind, m.display.as_deref(), scope.base))
            .collect()
    });
    resource::render(scope.rt, &r.id, &r.doc, &meta, members)
}

fn mentions_members(f: &Filter) -> bool {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => mentions_members(a) || mentions_members(b),
        Filter::Not(a) => mentions_members(a),
        Filter::Present(p) | Filter::Compare(p, _, _) | Filter::ValuePath(p, _) => {
            p.name.eq_ignore_ascii_case("members")
        }
    }
}

/// Page sizes: the default when the client gives no `count`, and the most we return.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    /// Default page size.
    pub default: usize,
    /// Largest page (`filter.maxResults`).
    pub max: usize,
}

/// Runs a list query. `with_members` says whether Group members are wanted in the items.
pub async fn search(
    scope: Scope<'_>,
    q: &ListQuery,
    paging: Paging,
    with_members: bool,
) -> StoreResult<Page> {
    search_with(scope, q, paging, with_members, true).await
}

/// [`search`], optionally without index narrowing (always a full scan): the reference the
/// narrowing is tested against.
pub(crate) async fn search_with(
    scope: Scope<'_>,
    q: &ListQuery,
    paging: Paging,
    with_members: bool,
    allow_narrowing: bool,
) -> StoreResult<Page> {
    let count = q.count.unwrap_or(paging.default).min(paging.max);
    let start = q.start_index.max(1);
    let groups = scope.rt.kind == ResourceKind::Group;
    if q.filter.is_none() && q.sort_by.is_none() {
        let total = scope
            .store
            .count_resources(scope.connector, scope.rt.kind)
            .await? as usize;
        let rows = if count == 0 {
            Vec::new()
        } else {
            scope
                .store
                .page_resources(
                    scope.connector,
                    scope.rt.kind,
                    (start - 1) as i64,
                    count as i64,
                )
                .await?
        };
        let items = render_all(scope, &rows, groups && with_members).await?;
        return Ok(Page {
            total,
            start_index: start,
            items,
        });
    }
    // Collect every match (sorting needs all of them); without sorting only the page is kept.
    let mut matches: Vec<(StoredResource, Document)> = Vec::new();
    let mut total = 0usize;
    let keep_all = q.sort_by.is_some();
    let mut consider = |batch: Vec<(StoredResource, Document)>| {
        for (r, d) in batch {
            // Evaluated in place: a full scan renders every resource, so no copy per row.
            let doc = Value::Object(d);
            if q.filter
                .as_ref()
                .is_none_or(|f| filter::matches(f, scope.rt, &doc))
            {
                total += 1;
                if keep_all || (total >= start && total < start + count) {
                    let Value::Object(d) = doc else { continue };
                    matches.push((r, d));
                }
            }
        }
    };
    let need_members = groups && q.filter.as_ref().is_some_and(mentions_members);
    let narrowing = q
        .filter
        .as_ref()
        .filter(|_| allow_narrowing)
        .and_then(|f| narrow(f, scope.rt));
    match narrowing {
        Some(n) => {
            let rows = scope
                .store
                .narrowed_resources(scope.connector, scope.rt.kind, &n)
                .await?;
            consider(render_pairs(scope, rows, need_members).await?);
        }
        None => {
            let mut after = 0i64;
            loop {
                let rows = scope
                    .store
                    .scan_resources(scope.connector, scope.rt.kind, after, SCAN_CHUNK)
                    .await?;
                let Some(last) = rows.last() else { break };
                after = last.seq;
                let done = (rows.len() as i64) < SCAN_CHUNK;
                consider(render_pairs(scope, rows, need_members).await?);
                if done {
                    break;
                }
            }
        }
    }
    if let Some(by) = &q.sort_by {
        sort(scope.rt, by, q.sort_order, &mut matches);
        matches = matches.into_iter().skip(start - 1).take(count).collect();
    }
    let rows: Vec<StoredResource> = matches.iter().map(|(r, _)| r.clone()).collect();
    let items = if groups && with_members && !need_members {
        render_all(scope, &rows, true).await?
    } else if groups && !with_members {
        render_all(scope, &rows, false).await?
    } else {
        matches.into_iter().map(|(_, d)| d).collect()
    };
    Ok(Page {
        total,
        start_index: start,
        items,
    })
}

async fn render_pairs(
    scope: Scope<'_>,
    rows: Vec<StoredResource>,
    with_members: bool,
) -> StoreResult<Vec<(StoredResource, Document)>> {
    let docs = render_all(scope, &rows, with_members).await?;
    Ok(rows.into_iter().zip(docs).collect())
}

/// Renders resources, loading the members of all of them in one query when asked.
pub async fn render_all(
    scope: Scope<'_>,
    rows: &[StoredResource],
    with_members: bool,
) -> StoreResult<Vec<Document>> {
    let members: HashMap<String, Vec<MemberRow>> = if with_members && !rows.is_empty() {
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        members_of(scope.store, scope.connector, &ids).await?
    } else {
        HashMap::new()
    };
    Ok(rows
        .iter()
        .map(|r| {
            let m = with_members.then(|| members.get(&r.id).map(Vec::as_slice).unwrap_or(&[]));
            render(scope, r, m)
        })
        .collect())
}

/// The members of several groups, as group answers show them: each with a `display`, the one the
/// client sent (echoed verbatim), else the member's own display name ([`Store::display_names`]).
/// Microsoft's SCIM reference test collection reads the members' names from group answers
/// (docs/API.md "Deliberate deviations and choices").
pub async fn members_of(
    store: &Store,
    connector: &str,
    group_ids: &[String],
) -> StoreResult<HashMap<String, Vec<MemberRow>>> {
    let mut members = store.members_of(connector, group_ids).await?;
    let mut unnamed: Vec<String> = members
        .values()
        .flatten()
        .filter(|m| m.display.is_none())
        .map(|m| m.id.clone())
        .collect();
    if unnamed.is_empty() {
        return Ok(members);
    }
    unnamed.sort();
    unnamed.dedup();
    let names = store.display_names(connector, &unnamed).await?;
    for m in members.values_mut().flatten() {
        if m.display.is_none() {
            m.display = names.get(&m.id).cloned();
        }
    }
    Ok(members)
}

/// A sortable form of an attribute value (RFC 7644 §3.4.2.3).
#[derive(Debug, PartialEq, PartialOrd)]
enum SortKey {
    Bool(bool),
    Num(f64),
    Time(i128),
    Text(String),
}

fn sort_key(rt: &ResourceType, by: &AttrPath, doc: &Document) -> Option<SortKey> {
    let resolved = rt.resolve(by.urn.as_deref(), &by.name)?;
    let scope = match resolved.extension {
        Some(urn) => doc.get(urn)?.as_object()?,
        None => doc,
    };
    let mut v = scope.get(&resolved.attr.name)?;
    let mut attr = resolved.attr;
    // Multi-valued: the primary value, else the first.
    if let Value::Array(items) = v {
        v = items
            .iter()
            .find(|e| e.get("primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first())?;
    }
    let sub = by.sub.as_deref().or(attr.is_complex().then_some("value"));
    if let Some(sub) = sub {
        let sub_attr = attr.sub(sub)?;
        v = v.get(&sub_attr.name)?;
        attr = sub_attr;
    }
    match (attr.attr_type, v) {
        (_, Value::Bool(b)) => Some(SortKey::Bool(*b)),
        (_, Value::Number(n)) => n.as_f64().map(SortKey::Num),
        (AttrType::DateTime, Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .map(|t| SortKey::Time(t.unix_timestamp_nanos())),
        (_, Value::String(s)) if attr.case_exact => Some(SortKey::Text(s.clone())),
        (_, Value::String(s)) => Some(SortKey::Text(s.to_lowercase())),
        _ => None,
    }
}

/// Sorts matches; resources without a value sort last in ascending order and first in
/// descending order, ties keep insertion order.
fn sort(
    rt: &ResourceType,
    by: &AttrPath,
    order: SortOrder,
    items: &mut [(StoredResource, Document)],
) {
    let mut keyed: Vec<(Option<SortKey>, usize)> = items
        .iter()
        .enumerate()
        .map(|(i, (_, d))| (sort_key(rt, by, d), i))
        .collect();
    keyed.sort_by(|(a, ia), (b, ib)| {
        let o = match (a, b) {
            (Some(a), Some(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        let o = if order == SortOrder::Descending {
            o.reverse()
        } else {
            o
        };
        o.then(ia.cmp(ib))
    });
    let order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
    let mut slots: Vec<Option<(StoredResource, Document)>> =
        items.iter().cloned().map(Some).collect();
    for (dst, src) in order.into_iter().enumerate() {
        if let Some(v) = slots[src].take() {
            items[dst] = v;
        }
    }
}

#[cfg(test)]
mod tests;
