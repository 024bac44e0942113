//! Group endpoints (docs/emulator.md endpoints #13–19): list, get, members, admin create/delete,
//! and membership add/remove. Group names are matched case-insensitively.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::auth::Need;
use super::config::ConfluenceVersion;
use super::errors::ApiError;
use super::extract::{parse_json, ApiQuery, Ctx};
use super::model::UserRecord;
use super::render::{self, Window};

/// Default page size (see [`render::DEFAULT_PAGE_LIMIT`]).
const DEFAULT_LIMIT: usize = render::DEFAULT_PAGE_LIMIT;

/// Paging (and `expand` for members).
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    start: Option<usize>,
    limit: Option<usize>,
    expand: Option<String>,
}

/// #13 `GET /rest/api/group`.
#[tracing::instrument(skip_all)]
pub(crate) async fn list_groups(
    ctx: Ctx,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let world = ctx.world();
    ctx.require(&world, Need::Read)?;
    let names: Vec<&String> = world.state.groups.keys().collect();
    let window = Window::new(q.start, q.limit, DEFAULT_LIMIT, world.knobs.max_page_limit);
    Ok(Json(render::page(
        &names,
        window,
        &ctx.links,
        "/rest/api/group",
        &[],
        |g| render::group_json(g, &ctx.links),
    )))
}

/// #14 `GET /rest/api/group/{groupName}`.
#[tracing::instrument(skip_all)]
pub(crate) async fn get_group(ctx: Ctx, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let world = ctx.world();
    ctx.require(&world, Need::Read)?;
    let name = world
        .state
        .group_name(&name)
        .ok_or_else(|| ApiError::not_found(format!("No group found with name: {name}")))?;
    Ok(Json(render::group_json(&name, &ctx.links)))
}

/// #15 `GET /rest/api/group/{groupName}/member`: members, disabled ones included.
#[tracing::instrument(skip_all)]
pub(crate) async fn group_members(
    ctx: Ctx,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let world = ctx.world();
    ctx.require(&world, Need::Read)?;
    let canonical = world
        .state
        .group_name(&name)
        .ok_or_else(|| ApiError::not_found(format!("No group found with name: {name}")))?;
    let window = Window::new(q.start, q.limit, DEFAULT_LIMIT, world.knobs.max_page_limit);
    // Only the page's members are looked up: a group of 100,000 is listed in 500 pages.
    let all = world.state.groups.get(&canonical);
    let total = all.map_or(0, |m| m.len());
    let members: Vec<&UserRecord> = all
        .into_iter()
        .flatten()
        .skip(window.start)
        .take(window.limit)
        .filter_map(|u| world.state.users.get(u))
        .collect();
    let status = render::expands_status(q.expand.as_deref()).then_some(world.knobs.status_style);
    let path = format!("/rest/api/group/{}/member", render::encode(&canonical));
    let expand = q.expand.clone().unwrap_or_default();
    let query: Vec<(&str, &str)> = if expand.is_empty() {
        vec![]
    } else {
        vec![("expand", expand.as_str())]
    };
    Ok(Json(render::page_of(
        &members,
        total,
        window,
        &ctx.links,
        &path,
        &query,
        |u| render::user_json(u, &ctx.links, status),
    )))
}

/// Body of `POST /rest/api/admin/group`.
#[derive(Debug, Deserialize)]
struct CreateGroupBody {
    name: Option<String>,
    /// Clients send `"group"`; ignored.
    #[serde(rename = "type")]
    _kind: Option<String>,
}

/// #16 `POST /rest/api/admin/group` (8.2+, system administrators) → 201 with the group.
#[tracing::instrument(skip_all)]
pub(crate) async fn create_group(
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut world = ctx.world();
    ctx.since(&world, ConfluenceVersion::V8_2)?;
    ctx.require(&world, Need::Sysadmin)?;
    let body: CreateGroupBody = parse_json(&headers, &body)?;
    let name = body
        .name
        .ok_or_else(|| ApiError::validation("Group name is required"))?;
    let name = world.state.create_group(&name)?;
    Ok((
        StatusCode::CREATED,
        Json(render::group_json(&name, &ctx.links)),
    )
        .into_response())
}

/// #17 `DELETE /rest/api/admin/group/{groupName}` (8.2+, system administrators) → 204;
/// memberships go with the group; the last admin group → 400.
#[tracing::instrument(skip_all)]
pub(crate) async fn delete_group(
    ctx: Ctx,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut world = ctx.world();
    ctx.since(&world, ConfluenceVersion::V8_2)?;
    ctx.require(&world, Need::Sysadmin)?;
    let world = &mut *world;
    world.state.delete_group(&name, &world.knobs)?;
    Ok(StatusCode::NO_CONTENT)
}

/// #18 `PUT /rest/api/user/{username}/group/{groupName}` (8.2+) → 204, idempotent; disabled
/// users may be added. Unknown user or group → 404 **(assumed)**.
#[tracing::instrument(skip_all)]
pub(crate) async fn add_member(
    ctx: Ctx,
    Path((username, group)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut world = ctx.world();
    ctx.since(&world, ConfluenceVersion::V8_2)?;
    ctx.require(&world, Need::Admin)?;
    world.state.add_member(&username, &group)?;
    Ok(StatusCode::NO_CONTENT)
}

/// #19 `DELETE /rest/api/user/{username}/group/{groupName}` (8.2+) → 204, idempotent.
#[tracing::instrument(skip_all)]
pub(crate) async fn remove_member(
    ctx: Ctx,
    Path((username, group)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut world = ctx.world();
    ctx.since(&world, ConfluenceVersion::V8_2)?;
    ctx.require(&world, Need::Admin)?;
    world.state.remove_member(&username, &group)?;
    Ok(StatusCode::NO_CONTENT)
}
