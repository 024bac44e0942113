//! Read endpoints for users (docs/emulator.md endpoints #1–5 and #20): current user, lookup by
//! username or key, the two lists, group membership of a user, and the mobile profile (the only
//! place DC exposes e-mail).

use axum::extract::Path;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Caller, Need};
use super::config::ConfluenceVersion;
use super::errors::ApiError;
use super::extract::{ApiQuery, Ctx};
use super::model::UserRecord;
use super::render::{self, Window};
use super::state::State;

/// Default page size (see [`render::DEFAULT_PAGE_LIMIT`]).
const DEFAULT_LIMIT: usize = render::DEFAULT_PAGE_LIMIT;

/// Query parameters shared by the user read endpoints.
#[derive(Debug, Deserialize)]
pub(crate) struct UserQuery {
    username: Option<String>,
    key: Option<String>,
    expand: Option<String>,
    start: Option<usize>,
    limit: Option<usize>,
}

/// Finds the user named by exactly one of `username=` / `key=`; neither or both → 400
/// **(assumed)**.
fn resolve<'a>(state: &'a State, q: &UserQuery) -> Result<&'a UserRecord, ApiError> {
    match (&q.username, &q.key) {
        (Some(name), None) => state
            .user(name)
            .ok_or_else(|| ApiError::not_found(format!("No user found with username: {name}"))),
        (None, Some(key)) => state
            .user_by_key(key)
            .ok_or_else(|| ApiError::not_found(format!("No user found with key: {key}"))),
        _ => Err(ApiError::bad_request(
            "Exactly one of the query parameters username or key is required",
        )),
    }
}

/// #1 `GET /rest/api/user/current`: the caller, or the anonymous user object.
#[tracing::instrument(skip_all)]
pub(crate) async fn current_user(
    ctx: Ctx,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> Result<Json<Value>, ApiError> {
    let world = ctx.world();
    let user = match &ctx.caller {
        Caller::User(name) => world.state.user(name),
        Caller::Anonymous => None,
    };
    let status = render::expands_status(q.expand.as_deref()).then_some(world.knobs.status_style);
    Ok(Json(match user {
        Some(u) => render::user_json(u, &ctx.links, status),
        None => render::anonymous_json(&ctx.links),
    }))
}

/// #2 `GET /rest/api/user?username=…|key=…[&expand=status]`.
#[tracing::instrument(skip_all)]
pub(crate) async fn get_user(
    ctx: Ctx,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> Result<Json<Value>, ApiError> {
    let world = ctx.world();
    ctx.require(&world, Need::Read)?;
    let user = resolve(&world.state, &q)?;
    let status = render::expands_status(q.expand.as_deref()).then_some(world.knobs.status_style);
    Ok(Json(render::user_json(user, &ctx.links, status)))
}

/// #3 `GET /rest/api/user/list` (8.4+): every user, disabled and unlicensed included.
#[tracing::instrument(skip_all)]
pub(crate) async fn list_users(
    ctx: Ctx,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> Result<Json<Value>, ApiError> {
    let world = ctx.world();
    ctx.since(&world, ConfluenceVersion::V8_4)?;
    ctx.require(&world, Need::ListUsers)?;
    let window = Window::new(q.start, q.limit, DEFAULT_LIMIT, world.knobs.max_page_limit);
    // Only the page is collected: 100,000 accounts are listed in 500 pages.
    let users: Vec<&UserRecord> = world
        .state
        .users
        .values()
        .skip(window.start)
        .take(window.limit)
        .collect();
    let status = render::expands_status(q.expand.as_deref()).then_some(world.knobs.status_style);
    let expand = q.expand.clone().unwrap_or_default();
    let query: Vec<(&str, &str)> = if expand.is_empty() {
        vec![]
    } else {
        vec![("expand", expand.as_str())]
    };
    Ok(Json(render::page_of(
        &users,
        world.state.users.len(),
        window,
        &ctx.links,
        "/rest/api/user/list",
        &query,
        |u| render::user_json(u, &ctx.links, status),
    )))
}

/// #4 `GET /rest/api/admin/users/list/active` (9.3+): active, licensed users only, plus
/// `totalCount`.
#[tracing::instrument(skip_all)]
pub(crate) async fn list_active_users(
    ctx: Ctx,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> Result<Json<Value>, ApiError> {
    let world = ctx.world();
    ctx.since(&world, ConfluenceVersion::V9_4)?;
    ctx.require(&world, Need::Admin)?;
    let users: Vec<&UserRecord> = world
        .state
        .users
        .values()
        .filter(|u| u.active && world.state.is_licensed(&u.username, &world.knobs))
        .collect();
    let window = Window::new(q.start, q.limit, DEFAULT_LIMIT, world.knobs.max_page_limit);
    let mut page = render::page(
        &users,
        window,
        &ctx.links,
        "/rest/api/admin/users/list/active",
        &[],
        |u| render::user_json(u, &ctx.links, None),
    );
    if let Some(obj) = page.as_object_mut() {
        obj.insert("totalCount".to_owned(), json!(users.len()));
    }
    Ok(Json(page))
}

/// #5 `GET /rest/api/user/memberof?username=…|key=…`: the user's groups; unknown user →
/// 404 **(assumed)**.
#[tracing::instrument(skip_all)]
pub(crate) async fn member_of(
    ctx: Ctx,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> Result<Json<Value>, ApiError> {
    let world = ctx.world();
    ctx.require(&world, Need::Read)?;
    let user = resolve(&world.state, &q)?;
    let groups = world.state.groups_of(&user.username);
    let window = Window::new(q.start, q.limit, DEFAULT_LIMIT, world.knobs.max_page_limit);
    let (param, value) = match (&q.username, &q.key) {
        (Some(name), _) => ("username", name.as_str()),
        (_, key) => ("key", key.as_deref().unwrap_or_default()),
    };
    Ok(Json(render::page(
        &groups,
        window,
        &ctx.links,
        "/rest/api/user/memberof",
        &[(param, value)],
        |g| render::group_json(g, &ctx.links),
    )))
}

/// #20 `GET /rest/mobile/1.0/profile/{username}`: undocumented but the only read of e-mail.
#[tracing::instrument(skip_all)]
pub(crate) async fn mobile_profile(
    ctx: Ctx,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let world = ctx.world();
    ctx.require(&world, Need::Read)?;
    let user = world
        .state
        .user(&username)
        .ok_or_else(|| ApiError::not_found(format!("No user found with username: {username}")))?;
    Ok(Json(json!({
        "userName": user.username,
        "fullName": user.full_name,
        "email": user.email,
        "department": user.details.department.clone().unwrap_or_default(),
        "about": user.details.about.clone().unwrap_or_default(),
        "avatarUrl": format!("{}/images/icons/profilepics/default.svg", ctx.links.base),
        "url": format!("{}/display/~{}", ctx.links.base, render::encode(&user.username)),
        "anonymous": false,
        "unknownUser": false,
        "userPreferences": {},
    })))
}
