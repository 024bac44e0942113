//! Admin user writes (docs/emulator.md endpoints #6–12): create, update, disable, enable, delete (+
//! long task), password. Each handler checks, in Confluence's order: the version gate (HTML 404),
//! the caller's permission (401/403), then the body and the rules (400/402/404/409).

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::auth::Need;
use super::config::ConfluenceVersion;
use super::errors::ApiError;
use super::extract::{parse_json, Ctx};
use super::model::TaskKind;
use super::state::NewUser;

/// Body of `POST /rest/api/admin/user`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateUserBody {
    user_name: Option<String>,
    full_name: Option<String>,
    email: Option<String>,
    password: Option<String>,
    notify_via_email: Option<bool>,
}

/// #6 `POST /rest/api/admin/user` (8.4+) → 201 `{"userKey":…}`. The user is active, in the
/// internal directory, and in **no** group: the licence comes with a "can use" group.
#[tracing::instrument(skip_all)]
pub(crate) async fn create_user(
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut world = ctx.world();
    ctx.since(&world, ConfluenceVersion::V8_4)?;
    ctx.require(&world, Need::Admin)?;
    let body: CreateUserBody = parse_json(&headers, &body)?;
    let required = |field: Option<String>, name: &str| {
        field.ok_or_else(|| ApiError::validation(format!("{name} is required")))
    };
    let username = required(body.user_name, "userName")?;
    let full_name = required(body.full_name, "fullName")?;
    let email = required(body.email, "email")?;
    let notify = body.notify_via_email.unwrap_or(false);
    match (&body.password, notify) {
        (Some(_), true) => {
            return Err(ApiError::validation(
                "Either a password or notifyViaEmail=true, not both",
            ))
        }
        (None, false) => {
            return Err(ApiError::validation(
                "A password is required unless notifyViaEmail is true",
            ))
        }
        _ => {}
    }
    let world = &mut *world;
    let user_key = world.state.create_user(
        NewUser {
            username,
            full_name,
            email,
            password: body.password,
        },
        &mut world.rng,
        &world.knobs,
    )?;
    tracing::info!("emulator: user created");
    Ok((StatusCode::CREATED, Json(json!({ "userKey": user_key }))).into_response())
}

/// Body of `PUT /rest/api/admin/user/{username}`. The third schema property is a \[gap\].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateUserBody {
    full_name: Option<String>,
    email: Option<String>,
}

/// #7 `PUT /rest/api/admin/user/{username}` (9.4+) → 204. Unknown user → 404 and read-only
/// directory → 400 are **(assumed)**.
#[tracing::instrument(skip_all)]
pub(crate) async fn update_user(
    ctx: Ctx,
    Path(username): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let mut world = ctx.world();
    ctx.since(&world, ConfluenceVersion::V9_4)?;
    ctx.require(&world, Need::Admin)?;
    let body: UpdateUserBody = parse_json(&headers, &body)?;
    world
        .state
        .update_user(&username, body.full_name, body.email)?;
    Ok(StatusCode::NO_CONTENT)
}

/// #8 `PUT /rest/api/admin/user/{username}/disable` (8.2+) → 204, idempotent.
#[tracing::instrument(skip_all)]
pub(crate) async fn disable_user(
    ctx: Ctx,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_active(&ctx, &username, false)
}

/// #9 `PUT /rest/api/admin/user/{username}/enable` (8.2+) → 204, idempotent.
#[tracing::instrument(skip_all)]
pub(crate) async fn enable_user(
    ctx: Ctx,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_active(&ctx, &username, true)
}

fn set_active(ctx: &Ctx, username: &str, active: bool) -> Result<StatusCode, ApiError> {
    let mut world = ctx.world();
    ctx.since(&world, ConfluenceVersion::V8_2)?;
    ctx.require(&world, Need::Admin)?;
    world.state.set_active(username, active)?;
    Ok(StatusCode::NO_CONTENT)
}

/// #10 `DELETE /rest/api/admin/user/{username}` (8.2+, system administrators) → 202 with a
/// long-task submission **(assumed body)**; the user disappears after `delete_delay_ms`.
#[tracing::instrument(skip_all)]
pub(crate) async fn delete_user(
    ctx: Ctx,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    let mut world = ctx.world();
    ctx.since(&world, ConfluenceVersion::V8_2)?;
    ctx.require(&world, Need::Sysadmin)?;
    let delay = Duration::from_millis(world.knobs.delete_delay_ms);
    let id = world.state.start_delete(&username, Instant::now(), delay)?;
    let body = json!({
        "id": id.to_string(),
        "links": {"status": format!("/rest/api/longtask/{id}")},
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// #11 `GET /rest/api/longtask/{id}`: the Cloud-documented status object, assumed to match
/// DC **\[gap\]**.
#[tracing::instrument(skip_all)]
pub(crate) async fn long_task(
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let world = ctx.world();
    ctx.require(&world, Need::Authenticated)?;
    let task = id
        .parse::<u64>()
        .ok()
        .and_then(|id| world.state.tasks.get(&id))
        .ok_or_else(|| ApiError::not_found(format!("No long running task found with id: {id}")))?;
    let now = Instant::now();
    let TaskKind::DeleteUser { username } = &task.kind;
    let elapsed = u64::try_from(task.elapsed(now).as_millis()).unwrap_or(u64::MAX);
    let messages: Vec<serde_json::Value> = if task.finished {
        vec![json!({"translation": format!("User {username} deleted"), "args": []})]
    } else {
        vec![]
    };
    Ok(Json(json!({
        "id": task.id.to_string(),
        "name": {"key": "com.atlassian.confluence.user.delete.task", "args": [username]},
        "elapsedTime": elapsed,
        "percentageComplete": task.percentage(now),
        "successful": task.successful,
        "finished": task.finished,
        "messages": messages,
    })))
}

/// Body of the password change.
#[derive(Debug, Deserialize)]
struct PasswordBody {
    password: Option<String>,
}

/// #12 `POST /rest/api/admin/user/{username}/password` (8.4+, system administrators) → 204.
#[tracing::instrument(skip_all)]
pub(crate) async fn change_password(
    ctx: Ctx,
    Path(username): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let mut world = ctx.world();
    ctx.since(&world, ConfluenceVersion::V8_4)?;
    ctx.require(&world, Need::Sysadmin)?;
    let body: PasswordBody = parse_json(&headers, &body)?;
    let password = body.password.unwrap_or_default();
    world.state.set_password(&username, &password)?;
    Ok(StatusCode::NO_CONTENT)
}
