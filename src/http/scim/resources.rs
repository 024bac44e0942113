//! Handlers of `/Users` and `/Groups` (RFC 7644 §3.3–§3.6): thin wrappers that extract,
//! call [`Ops`], project the attributes and set the headers.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::super::auth::ScimCtx;
use super::super::error::AppError;
use super::super::extract::{Conditions, QueryPairs, ScimBody};
use super::super::response::ScimJson;
use super::super::state::AppState;
use super::ops::{Ops, Rendered};
use crate::scim::project::project;
use crate::scim::query::{Projection, RawQuery, LIST_URN};
use crate::scim::schema::{ResourceKind, ResourceType};
use crate::scim::ScimError;
use crate::search::{self, Scope};

/// The resource id: the last path segment, percent-decoded.
#[derive(Debug)]
pub struct ResourceId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ResourceId {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let last = parts.uri.path().rsplit('/').next().unwrap_or_default();
        let id = percent_decode(last)
            .ok_or_else(|| ScimError::bad_request("the resource id is not valid URL encoding"))?;
        Ok(ResourceId(id))
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `attributes` / `excludedAttributes` of a request.
fn projection(q: &QueryPairs) -> Result<Projection, AppError> {
    let raw = RawQuery::from_pairs(q.iter());
    Ok(Projection::parse(
        raw.attributes.as_deref(),
        raw.excluded.as_deref(),
    )?)
}

/// Whether a Group's members are wanted under this projection (they are not loaded at all
/// when excluded: Entra reads groups with `excludedAttributes=members`,
/// docs/reference/idp-behaviour.md E19).
fn wants_members(p: &Projection) -> bool {
    if p.selects() {
        return p.selects_name("members");
    }
    !p.excluded
        .iter()
        .any(|a| a.name.eq_ignore_ascii_case("members"))
}

fn respond(rt: &ResourceType, r: Rendered, p: &Projection, status: StatusCode) -> Response {
    let body = Value::Object(project(rt, r.doc, p));
    let mut res = ScimJson::new(status, body).etag(r.version);
    if status == StatusCode::CREATED {
        res = res.location(r.location);
    }
    res.into_response()
}

/// `POST /{type}`.
pub async fn create(
    State(state): State<AppState>,
    ctx: ScimCtx,
    q: QueryPairs,
    kind: ResourceKind,
    ScimBody(body): ScimBody,
) -> Result<Response, AppError> {
    let p = projection(&q)?;
    let ops = Ops::new(&state, &ctx);
    let r = ops.create(kind, &body).await?;
    Ok(respond(
        state.schemas.resource_type(kind),
        r,
        &p,
        StatusCode::CREATED,
    ))
}

/// `GET /{type}/{id}`, with `If-None-Match` → 304.
pub async fn get(
    State(state): State<AppState>,
    ctx: ScimCtx,
    q: QueryPairs,
    cond: Conditions,
    ResourceId(id): ResourceId,
    kind: ResourceKind,
) -> Result<Response, AppError> {
    let p = projection(&q)?;
    let ops = Ops::new(&state, &ctx);
    let r = ops.get(kind, &id, wants_members(&p)).await?;
    if cond.if_none_match == Some(r.version) {
        return Ok(ScimJson::not_modified(r.version).into_response());
    }
    Ok(respond(
        state.schemas.resource_type(kind),
        r,
        &p,
        StatusCode::OK,
    ))
}

/// `PUT /{type}/{id}`.
pub async fn replace(
    State(state): State<AppState>,
    ctx: ScimCtx,
    q: QueryPairs,
    cond: Conditions,
    ResourceId(id): ResourceId,
    kind: ResourceKind,
    ScimBody(body): ScimBody,
) -> Result<Response, AppError> {
    let p = projection(&q)?;
    let ops = Ops::new(&state, &ctx);
    let r = ops.replace(kind, &id, &body, cond.if_match).await?;
    Ok(respond(
        state.schemas.resource_type(kind),
        r,
        &p,
        StatusCode::OK,
    ))
}

/// `PATCH /{type}/{id}`: 200 with the resource (honouring `attributes`).
pub async fn patch(
    State(state): State<AppState>,
    ctx: ScimCtx,
    q: QueryPairs,
    cond: Conditions,
    ResourceId(id): ResourceId,
    kind: ResourceKind,
    ScimBody(body): ScimBody,
) -> Result<Response, AppError> {
    let p = projection(&q)?;
    let ops = Ops::new(&state, &ctx);
    let r = ops.patch(kind, &id, &body, cond.if_match).await?;
    Ok(respond(
        state.schemas.resource_type(kind),
        r,
        &p,
        StatusCode::OK,
    ))
}

/// `DELETE /{type}/{id}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    ctx: ScimCtx,
    cond: Conditions,
    ResourceId(id): ResourceId,
    kind: ResourceKind,
) -> Result<Response, AppError> {
    let ops = Ops::new(&state, &ctx);
    ops.delete(kind, &id, cond.if_match).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /{type}` (RFC 7644 §3.4.2).
pub async fn list(
    State(state): State<AppState>,
    ctx: ScimCtx,
    q: QueryPairs,
    kind: ResourceKind,
) -> Result<Response, AppError> {
    run_list(&state, &ctx, kind, RawQuery::from_pairs(q.iter())).await
}

/// `POST /{type}/.search` (RFC 7644 §3.4.3).
pub async fn search_post(
    State(state): State<AppState>,
    ctx: ScimCtx,
    kind: ResourceKind,
    ScimBody(body): ScimBody,
) -> Result<Response, AppError> {
    run_list(&state, &ctx, kind, RawQuery::from_search_body(&body)?).await
}

async fn run_list(
    state: &AppState,
    ctx: &ScimCtx,
    kind: ResourceKind,
    raw: RawQuery,
) -> Result<Response, AppError> {
    let rt = state.schemas.resource_type(kind);
    let q = raw.parse(&state.schemas, rt, &state.filter_limits())?;
    let scope = Scope {
        store: &state.store,
        rt,
        connector: &ctx.connector,
        base: &ctx.base,
    };
    let with_members = wants_members(&q.projection);
    let mut list = ListWriter::new(state.settings.limits.max_response_bytes);
    let page = search::search_into(scope, &q, state.paging(), with_members, true, &mut |d| {
        list.push(&Value::Object(project(rt, d, &q.projection)))
    })
    .await?;
    Ok(list.finish(page.total, page.start_index))
}

/// A ListResponse written item by item into a byte budget (`limits.max_response_bytes`):
/// each item is serialized as soon as the search renders it and its document is dropped, so
/// a page costs its serialized size once, not several copies of every document. An item
/// that would take the body past the budget ends the page early: `itemsPerPage` says how
/// many items came (RFC 7644 §3.4.2.4 lets a server return fewer than `count`), and the
/// client's next `startIndex` picks up there. The first item is always taken, so a client
/// paging through always advances.
struct ListWriter {
    resources: Vec<u8>,
    items: usize,
    max: usize,
}

impl ListWriter {
    fn new(max: usize) -> Self {
        ListWriter {
            resources: Vec::new(),
            items: 0,
            max,
        }
    }

    /// Takes `item` if it fits (or is the first); `false` when the page is full.
    fn push(&mut self, item: &Value) -> bool {
        let mark = self.resources.len();
        if self.items > 0 {
            self.resources.push(b',');
        }
        if serde_json::to_writer(&mut self.resources, item).is_err() {
            self.resources.truncate(mark);
            return true; // Unreachable for a Value; skip the item rather than the page.
        }
        if self.items > 0 && self.resources.len() > self.max {
            self.resources.truncate(mark);
            return false;
        }
        self.items += 1;
        true
    }

    /// Whether no further item will be taken.
    fn is_full(&self) -> bool {
        self.items > 0 && self.resources.len() >= self.max
    }

    /// The response: the ListResponse envelope around the items.
    fn finish(self, total: usize, start_index: usize) -> Response {
        let head = json!({
            "schemas": [LIST_URN],
            "totalResults": total,
            "itemsPerPage": self.items,
            "startIndex": start_index,
        })
        .to_string();
        // `{"schemas":…,"startIndex":1}` → `{"schemas":…,"startIndex":1,"Resources":[…]}`.
        let mut body = Vec::with_capacity(head.len() + self.resources.len() + 16);
        body.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
        body.extend_from_slice(b",\"Resources\":[");
        body.extend_from_slice(&self.resources);
        body.extend_from_slice(b"]}");
        drop(self.resources);
        ScimJson::raw(StatusCode::OK, body).into_response()
    }
}

/// `POST /.search` at the connector root (RFC 7644 §3.4.3): searches Users, then Groups, and
/// pages over the concatenation. A filter that names attributes only one type has (such as
/// `userName`) simply matches nothing of the other type.
pub async fn search_root(
    State(state): State<AppState>,
    ctx: ScimCtx,
    ScimBody(body): ScimBody,
) -> Result<Response, AppError> {
    let raw = RawQuery::from_search_body(&body)?;
    let mut per_type = Vec::new();
    let mut first_error = None;
    for kind in [ResourceKind::User, ResourceKind::Group] {
        let rt = state.schemas.resource_type(kind);
        match raw.parse(&state.schemas, rt, &state.filter_limits()) {
            Ok(q) => per_type.push((kind, q)),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    if per_type.is_empty() {
        return Err(first_error
            .unwrap_or_else(|| ScimError::invalid_filter("invalid search"))
            .into());
    }
    let paging = state.paging();
    let (start, count) = match per_type.first() {
        Some((_, q)) => (
            q.start_index,
            q.count.unwrap_or(paging.default).min(paging.max),
        ),
        None => (1, paging.default),
    };
    let mut total = 0usize;
    let mut list = ListWriter::new(state.settings.limits.max_response_bytes);
    for (kind, mut q) in per_type {
        let rt = state.schemas.resource_type(kind);
        let scope = Scope {
            store: &state.store,
            rt,
            connector: &ctx.connector,
            base: &ctx.base,
        };
        // Page over the concatenation: this type's window starts after the matches of the
        // types before it.
        let offset = start.saturating_sub(1).saturating_sub(total);
        let wanted = if list.is_full() {
            0
        } else {
            count.saturating_sub(list.items)
        };
        q.start_index = offset + 1;
        q.count = Some(wanted);
        let with_members = wants_members(&q.projection);
        let projection = q.projection.clone();
        let page = search::search_into(scope, &q, paging, with_members, true, &mut |d| {
            list.push(&Value::Object(project(rt, d, &projection)))
        })
        .await?;
        total += page.total;
    }
    Ok(list.finish(total, start))
}
