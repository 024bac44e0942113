//! Executing list and search queries (RFC 7644 §3.4.2) against the store.
//!
//! The filter's meaning is the Rust evaluator: the store is asked for candidates (through
//! indexes when [`narrow`](crate::store::narrow::narrow) finds an indexed term, else a full scan), in chunks sized to
//! a memory budget; every candidate is rendered and evaluated; a sorted query keeps only the
//! sort key of each match and reads the page's rows again. Without a filter or sort, paging
//! goes straight to SQL. Items are handed out as they are rendered
//! ([`search_into`](crate::search::search_into)), so the response can be written (and capped
//! in bytes) as the page is read.

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

/// Stored document bytes read per round trip: chunks of rows are sized to this, from the
/// sizes seen in the previous chunk, so a scan of users of a megabyte each holds a few of
/// them at a time, and one of ordinary users a thousand.
const CHUNK_BYTES: usize = 2 << 20;
/// Rows of the first chunk, before any size is known.
const FIRST_CHUNK: i64 = 8;
/// Most rows per chunk.
const MAX_CHUNK: i64 = 1000;

/// The size of the next chunk of rows.
#[derive(Debug, Clone, Copy)]
struct Chunker {
    next: i64,
}

impl Chunker {
    fn new() -> Self {
        Chunker { next: FIRST_CHUNK }
    }

    /// Sizes the next chunk from the documents of the last one.
    fn saw(&mut self, rows: &[StoredResource]) {
        if rows.is_empty() {
            return;
        }
        let bytes: usize = rows.iter().map(|r| r.doc_bytes).sum();
        let average = (bytes / rows.len()).max(1);
        self.next = ((CHUNK_BYTES / average) as i64).clamp(1, MAX_CHUNK);
    }
}

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

/// What a list query found, its items handed to a sink as they were rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    /// Matches in total.
    pub total: usize,
    /// 1-based index of the first item.
    pub start_index: usize,
    /// Items handed to the sink (fewer than asked when the sink was full).
    pub emitted: usize,
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
    let mut items = Vec::new();
    let info = search_into(scope, q, paging, with_members, allow_narrowing, &mut |d| {
        items.push(d);
        true
    })
    .await?;
    Ok(Page {
        total: info.total,
        start_index: info.start_index,
        items,
    })
}

/// Runs a list query, handing each item of the page to `sink` as soon as it is rendered, in
/// page order; the sink answers whether it takes more (a response has a byte budget). Rows
/// are read in chunks sized to a memory budget (`CHUNK_BYTES`), and only the items of the
/// page are kept, never every match: a sorted query keeps each match's sort key, then reads
/// the page's rows again. So a query's memory is a chunk of rows plus what the sink keeps,
/// whatever the number and size of the resources.
pub async fn search_into(
    scope: Scope<'_>,
    q: &ListQuery,
    paging: Paging,
    with_members: bool,
    allow_narrowing: bool,
    sink: &mut (dyn FnMut(Document) -> bool + Send),
) -> StoreResult<PageInfo> {
    let count = q.count.unwrap_or(paging.default).min(paging.max);
    let start = q.start_index.max(1);
    let groups = scope.rt.kind == ResourceKind::Group;
    let mut emitted = 0usize;
    let mut full = count == 0;
    if q.filter.is_none() && q.sort_by.is_none() {
        let total = scope
            .store
            .count_resources(scope.connector, scope.rt.kind)
            .await? as usize;
        let mut chunker = Chunker::new();
        let mut offset = (start - 1) as i64;
        while !full && emitted < count {
            let want = chunker.next.min((count - emitted) as i64);
            let rows = scope
                .store
                .page_resources(scope.connector, scope.rt.kind, offset, want)
                .await?;
            if rows.is_empty() {
                break;
            }
            offset += rows.len() as i64;
            chunker.saw(&rows);
            for doc in render_all(scope, &rows, groups && with_members).await? {
                if !sink(doc) {
                    full = true;
                    break;
                }
                emitted += 1;
            }
        }
        return Ok(PageInfo {
            total,
            start_index: start,
            emitted,
        });
    }
    let need_members = groups && q.filter.as_ref().is_some_and(mentions_members);
    let narrowing = q
        .filter
        .as_ref()
        .filter(|_| allow_narrowing)
        .and_then(|f| narrow(f, scope.rt));
    let mut total = 0usize;
    // Sorted: every match's sort key and position (the page is read again afterwards).
    let mut keys: Vec<(Option<SortKey>, usize, String)> = Vec::new();
    let mut chunker = Chunker::new();
    let mut after = 0i64;
    loop {
        let rows = match &narrowing {
            Some(n) => {
                scope
                    .store
                    .narrowed_chunk(scope.connector, scope.rt.kind, n, after, chunker.next)
                    .await?
            }
            None => {
                scope
                    .store
                    .scan_resources(scope.connector, scope.rt.kind, after, chunker.next)
                    .await?
            }
        };
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let done = (rows.len() as i64) < chunker.next;
        chunker.saw(&rows);
        // The matches of this chunk that fall on the page, rendered for the filter.
        let mut on_page: Vec<(StoredResource, Document)> = Vec::new();
        for (r, d) in render_pairs(scope, rows, need_members).await? {
            // Evaluated in place: a full scan renders every resource, so no copy per row.
            let doc = Value::Object(d);
            if !q
                .filter
                .as_ref()
                .is_none_or(|f| filter::matches(f, scope.rt, &doc))
            {
                continue;
            }
            total += 1;
            let Value::Object(d) = doc else { continue };
            match &q.sort_by {
                Some(by) => keys.push((sort_key(scope.rt, by, &d), keys.len(), r.id)),
                None if !full && total >= start && total < start + count => on_page.push((r, d)),
                None => {}
            }
        }
        if !on_page.is_empty() {
            // Groups rendered for the filter are rendered again when the page wants their
            // members the other way.
            let rerender = (groups && with_members != need_members).then_some(with_members);
            emit(scope, on_page, rerender, sink, &mut emitted, &mut full).await?;
        }
        if done {
            break;
        }
    }
    if q.sort_by.is_some() {
        sort_keys(q.sort_order, &mut keys);
        let page: Vec<String> = keys
            .into_iter()
            .skip(start - 1)
            .take(count)
            .map(|(_, _, id)| id)
            .collect();
        // Read the page's rows again, in chunks, in the sorted order.
        let mut chunker = Chunker::new();
        let mut at = 0usize;
        while at < page.len() && !full {
            let ids = &page[at..(at + chunker.next as usize).min(page.len())];
            at += ids.len();
            let mut rows = scope
                .store
                .resources_by_ids(scope.connector, scope.rt.kind, ids)
                .await?;
            chunker.saw(&rows);
            let position: HashMap<&str, usize> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), i))
                .collect();
            rows.sort_by_key(|r| position.get(r.id.as_str()).copied().unwrap_or(usize::MAX));
            let docs = render_all(scope, &rows, groups && with_members).await?;
            for doc in docs {
                if !sink(doc) {
                    full = true;
                    break;
                }
                emitted += 1;
            }
        }
    }
    Ok(PageInfo {
        total,
        start_index: start,
        emitted,
    })
}

/// Hands matches on the page to the sink, rendered as the page wants them: with
/// `rerender = Some(with_members)`, rendered again with or without members (the scan
/// rendered them as the filter needed).
async fn emit(
    scope: Scope<'_>,
    on_page: Vec<(StoredResource, Document)>,
    rerender: Option<bool>,
    sink: &mut (dyn FnMut(Document) -> bool + Send),
    emitted: &mut usize,
    full: &mut bool,
) -> StoreResult<()> {
    let docs: Vec<Document> = if let Some(with_members) = rerender {
        let rows: Vec<StoredResource> = on_page.into_iter().map(|(r, _)| r).collect();
        render_all(scope, &rows, with_members).await?
    } else {
        on_page.into_iter().map(|(_, d)| d).collect()
    };
    for doc in docs {
        if !sink(doc) {
            *full = true;
            break;
        }
        *emitted += 1;
    }
    Ok(())
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

/// Sorts matches by key; resources without a value sort last in ascending order and first
/// in descending order, ties keep insertion order (the position in the tuple).
fn sort_keys(order: SortOrder, keys: &mut [(Option<SortKey>, usize, String)]) {
    keys.sort_by(|(a, ia, _), (b, ib, _)| {
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
}

#[cfg(test)]
mod tests;
