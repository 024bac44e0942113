//! #21 (optional in docs/emulator.md "Endpoints"): the legacy JSON-RPC user API that clients fall
//! back to below 8.2/8.4 (docs/reference/confluence-api.md §1.4), in both styles:
//!
//! * envelope — `POST /rpc/json-rpc/confluenceservice-v2` with
//!   `{"jsonrpc":"2.0","method":"deactivateUser","params":["jdoe"],"id":7}` →
//!   `{"jsonrpc":"2.0","result":true,"id":7}`;
//! * light — `POST /rpc/json-rpc/confluenceservice-v2/{method}` with the params array as
//!   body → the literal `true`.
//!
//! Gates: knob `remote_api_enabled = false` → 403 **(assumed)**; Bearer (PAT) callers →
//! 401 **(assumed status; PATs do not work here per zabel-elements)**; anonymous → 401.
//! Failures are JSON-RPC error objects with HTTP 200, `code` being the status the REST
//! equivalent would answer (400/402/403/404/409) **(assumed)**.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::auth::{self, AuthScheme, Need};
use super::errors::ApiError;
use super::extract::Ctx;
use super::shared::World;
use super::state::{DomainError, NewUser};

/// JSON-RPC "method not found".
const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC "invalid params".
const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC "parse error".
const PARSE_ERROR: i64 = -32700;

/// A failed call.
#[derive(Debug)]
struct RpcError {
    code: i64,
    message: String,
}

impl RpcError {
    fn params(message: impl Into<String>) -> Self {
        Self {
            code: INVALID_PARAMS,
            message: message.into(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"code": self.code, "message": self.message})
    }
}

impl From<DomainError> for RpcError {
    fn from(e: DomainError) -> Self {
        let code = match &e {
            DomainError::UserNotFound(_) | DomainError::GroupNotFound(_) => 404,
            DomainError::UserExists(_) | DomainError::GroupExists(_) => 409,
            DomainError::NoSeat { .. } => 402,
            DomainError::Refused(_)
            | DomainError::Invalid(_)
            | DomainError::ReadOnly(_)
            | DomainError::LastAdminGroup(_) => 400,
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

/// Envelope style.
#[tracing::instrument(skip_all)]
pub(crate) async fn envelope(ctx: Ctx, body: Bytes) -> Result<Response, ApiError> {
    gate(&ctx)?;
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let error = RpcError {
                code: PARSE_ERROR,
                message: format!("Parse error: {e}"),
            };
            return Ok(
                Json(json!({"jsonrpc": "2.0", "error": error.to_json(), "id": null}))
                    .into_response(),
            );
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str).unwrap_or("");
    let params = match request.get("params") {
        Some(Value::Array(items)) => items.clone(),
        None | Some(Value::Null) => vec![],
        Some(other) => vec![other.clone()],
    };
    let answer = match call(&ctx, method, &params) {
        Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": id}),
        Err(error) => json!({"jsonrpc": "2.0", "error": error.to_json(), "id": id}),
    };
    Ok(Json(answer).into_response())
}

/// Light style: method in the URL, params array as body.
#[tracing::instrument(skip_all)]
pub(crate) async fn light(
    ctx: Ctx,
    Path(method): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    gate(&ctx)?;
    let params = if body.iter().all(u8::is_ascii_whitespace) {
        vec![]
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(items)) => items,
            Ok(other) => vec![other],
            Err(e) => {
                let error = RpcError {
                    code: PARSE_ERROR,
                    message: format!("Parse error: {e}"),
                };
                return Ok(Json(json!({"error": error.to_json()})).into_response());
            }
        }
    };
    let answer = match call(&ctx, &method, &params) {
        Ok(result) => result,
        Err(error) => json!({"error": error.to_json()}),
    };
    Ok(Json(answer).into_response())
}

/// Remote API switched on, Basic-authenticated caller.
fn gate(ctx: &Ctx) -> Result<(), ApiError> {
    let world = ctx.world();
    if !world.knobs.remote_api_enabled {
        return Err(ApiError::forbidden(
            "The Remote API (XML-RPC & SOAP) is disabled",
        ));
    }
    if ctx.scheme == AuthScheme::Bearer {
        return Err(ApiError::unauthorized(
            "Personal access tokens are not accepted by the JSON-RPC API",
        ));
    }
    ctx.require(&world, Need::Authenticated)
}

/// The string parameter at `index`.
fn text(params: &[Value], index: usize, name: &str) -> Result<String, RpcError> {
    params
        .get(index)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| RpcError::params(format!("parameter {index} ({name}) must be a string")))
}

/// A string field of the RemoteUser object at `params[0]`.
fn user_field(params: &[Value], field: &str) -> Option<String> {
    params
        .first()
        .and_then(|u| u.get(field))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn require(ctx: &Ctx, world: &World, need: Need) -> Result<(), RpcError> {
    auth::check(&world.state, &world.knobs, &ctx.caller, ctx.scheme, need).map_err(|_| RpcError {
        code: 403,
        message: "NotPermittedException: the caller lacks the required permission".to_owned(),
    })
}

/// Runs one method; the result of every supported method is `true`.
fn call(ctx: &Ctx, method: &str, params: &[Value]) -> Result<Value, RpcError> {
    let mut guard = ctx.world();
    let world = &mut *guard;
    let need = match method {
        "removeUser" | "addGroup" | "removeGroup" | "changeUserPassword" => Need::Sysadmin,
        "addUser"
        | "editUser"
        | "deactivateUser"
        | "reactivateUser"
        | "addUserToGroup"
        | "removeUserFromGroup" => Need::Admin,
        other => {
            return Err(RpcError {
                code: METHOD_NOT_FOUND,
                message: format!("No such method: {other}"),
            })
        }
    };
    require(ctx, world, need)?;
    let state = &mut world.state;
    match method {
        "addUser" => {
            let password = params.get(1).and_then(Value::as_str).map(str::to_owned);
            let notify = params.get(2).and_then(Value::as_bool).unwrap_or(false);
            if password.is_none() && !notify {
                return Err(RpcError::params("addUser needs a password"));
            }
            let new = NewUser {
                username: user_field(params, "name")
                    .ok_or_else(|| RpcError::params("user.name is required"))?,
                full_name: user_field(params, "fullname").unwrap_or_default(),
                email: user_field(params, "email").unwrap_or_default(),
                password,
            };
            state.create_user(new, &mut world.rng, &world.knobs)?;
        }
        "editUser" => {
            let name = user_field(params, "name")
                .ok_or_else(|| RpcError::params("user.name is required"))?;
            state.update_user(
                &name,
                user_field(params, "fullname"),
                user_field(params, "email"),
            )?;
        }
        "deactivateUser" => state.set_active(&text(params, 0, "username")?, false)?,
        "reactivateUser" => state.set_active(&text(params, 0, "username")?, true)?,
        "removeUser" => {
            // Synchronous here, unlike the REST delete.
            state.start_delete(
                &text(params, 0, "username")?,
                Instant::now(),
                Duration::ZERO,
            )?;
        }
        "addGroup" => {
            state.create_group(&text(params, 0, "groupname")?)?;
        }
        "removeGroup" => {
            let group = text(params, 0, "groupname")?;
            let fallback = params
                .get(1)
                .and_then(Value::as_str)
                .filter(|g| !g.is_empty());
            if let Some(fallback) = fallback {
                let members: Vec<String> = state
                    .group_name(&group)
                    .and_then(|g| state.groups.get(&g).cloned())
                    .map(|m| m.into_iter().collect())
                    .unwrap_or_default();
                if state.group_name(fallback).is_none() {
                    return Err(DomainError::GroupNotFound(fallback.to_owned()).into());
                }
                for member in members {
                    state.add_member(&member, fallback)?;
                }
            }
            state.delete_group(&group, &world.knobs)?;
        }
        "addUserToGroup" => state.add_member(
            &text(params, 0, "username")?,
            &text(params, 1, "groupname")?,
        )?,
        "removeUserFromGroup" => state.remove_member(
            &text(params, 0, "username")?,
            &text(params, 1, "groupname")?,
        )?,
        // changeUserPassword, the only method left after the permission match above.
        _ => {
            let password = text(params, 1, "newPass")?;
            state.set_password(&text(params, 0, "username")?, &password)?;
        }
    }
    Ok(Value::Bool(true))
}
