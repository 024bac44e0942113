//! The control API under `/__emulator/` — a test tool, not Confluence.
//!
//! It is deliberately **unprotected**: no credentials, no XSRF check, no rate limit, no
//! faults, not in the call log, and not under the context path. Never expose an emulator
//! beyond a test machine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::calls::CallRecord;
use super::config::Knobs;
use super::faults::Fault;
use super::lup::StoredValue;
use super::seed::{self, Seed, SeedUser};
use super::shared::Shared;
use super::state::UserEdit;
use super::xml_import::{self, ImportReport};

/// Routes relative to `/__emulator`.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/reset", post(reset))
        .route("/knobs", get(get_knobs).put(put_knobs))
        .route("/state", get(get_state))
        .route("/calls", get(get_calls).delete(clear_calls))
        .route(
            "/faults",
            get(get_faults).post(arm_faults).delete(clear_faults),
        )
        .route("/users", post(add_user))
        .route("/users/{username}", patch(edit_user).delete(delete_user))
        .route(
            "/groups/{group}/members/{username}",
            put(add_member).delete(remove_member),
        )
        .route("/lup/xml-import", post(xml_import))
}

/// A control-API error, answered as `{"error": "..."}`.
#[derive(Debug)]
struct ControlError {
    status: StatusCode,
    message: String,
}

impl ControlError {
    fn new(status: StatusCode, message: impl std::fmt::Display) -> Self {
        Self {
            status,
            message: message.to_string(),
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

fn control_error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    ControlError::new(status, message).into_response()
}

/// Parses an optional JSON body; empty means `None`.
fn optional_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<Option<T>, ControlError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| ControlError::new(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")))
}

/// `POST /__emulator/reset [seed]` → 204: back to the start (the body's seed, or the
/// configured one); knobs, faults, buckets and the call log are reset too.
async fn reset(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let seed: Option<Seed> = match optional_json(&body) {
        Ok(seed) => seed,
        Err(error) => return error.into_response(),
    };
    match sh.reset(seed.as_ref()) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => control_error(StatusCode::BAD_REQUEST, e),
    }
}

/// `GET /__emulator/knobs`.
async fn get_knobs(State(sh): State<Arc<Shared>>) -> Json<Knobs> {
    Json(sh.world().knobs.clone())
}

/// `PUT /__emulator/knobs` → the new knobs. The body is merged into the current knobs
/// (JSON merge patch: objects merge, `null` resets a key to its default, others replace).
async fn put_knobs(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let patch: Value = match optional_json(&body) {
        Ok(Some(patch)) => patch,
        Ok(None) => return control_error(StatusCode::BAD_REQUEST, "empty body"),
        Err(error) => return error.into_response(),
    };
    let mut world = sh.world();
    let mut current = match serde_json::to_value(&world.knobs) {
        Ok(v) => v,
        Err(e) => return control_error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    merge(&mut current, patch);
    match serde_json::from_value::<Knobs>(current) {
        Ok(knobs) => {
            if knobs.rate_limit != world.knobs.rate_limit {
                world.limiter.clear();
            }
            world.knobs = knobs.clone();
            Json(knobs).into_response()
        }
        Err(e) => control_error(StatusCode::BAD_REQUEST, format!("invalid knobs: {e}")),
    }
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(entries) => {
            if !target.is_object() {
                *target = json!({});
            }
            if let Some(object) = target.as_object_mut() {
                for (key, value) in entries {
                    if value.is_null() {
                        object.remove(&key);
                    } else {
                        merge(object.entry(key).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other,
    }
}

/// `GET /__emulator/state`: users (with `active`, groups, details), groups with members,
/// licence use, long tasks, Linchpin fields/values/last import, armed faults.
async fn get_state(State(sh): State<Arc<Shared>>) -> Json<Value> {
    Json(state_json(&sh))
}

/// The state document (shared with [`super::Emulator`]).
pub(crate) fn state_json(sh: &Shared) -> Value {
    let world = sh.world();
    let now = Instant::now();
    let state = &world.state;
    let users: Vec<Value> = state
        .users
        .keys()
        .filter_map(|u| state.view(u, &world.knobs))
        .map(|u| json!(u))
        .collect();
    let groups: Vec<Value> = state
        .groups
        .iter()
        .map(|(name, members)| json!({"name": name, "members": members}))
        .collect();
    let tasks: Vec<Value> = state.tasks.values().map(|t| json!(t.view(now))).collect();
    let labels: BTreeMap<u64, &str> = state
        .lup
        .fields
        .iter()
        .map(|f| (f.user_field_pk, f.label.as_str()))
        .collect();
    let mut values = serde_json::Map::new();
    for user in state.users.values() {
        if let Some(stored) = state.lup.values.get(&user.user_key) {
            let by_label: BTreeMap<&str, &StoredValue> = stored
                .iter()
                .filter_map(|(pk, v)| labels.get(pk).map(|l| (*l, v)))
                .collect();
            values.insert(user.username.clone(), json!(by_label));
        }
    }
    json!({
        "version": world.knobs.version,
        "contextPath": sh.context_path,
        "licence": {
            "seats": world.knobs.licence_seats,
            "used": state.used_seats(&world.knobs),
        },
        "users": users,
        "groups": groups,
        "longTasks": tasks,
        "lup": {
            "fields": state.lup.fields,
            "values": values,
            "lastImport": state.lup.last_import,
        },
        "faults": world.faults.view(now),
    })
}

/// `GET /__emulator/calls`.
async fn get_calls(State(sh): State<Arc<Shared>>) -> Json<Vec<CallRecord>> {
    Json(sh.calls().all())
}

/// `DELETE /__emulator/calls` → 204.
async fn clear_calls(State(sh): State<Arc<Shared>>) -> StatusCode {
    sh.calls().clear();
    StatusCode::NO_CONTENT
}

/// One fault or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<Fault>),
    One(Fault),
}

/// `GET /__emulator/faults`: armed faults and the running outage.
async fn get_faults(State(sh): State<Arc<Shared>>) -> Json<Value> {
    Json(json!(sh.world().faults.view(Instant::now())))
}

/// `POST /__emulator/faults` (one fault or an array) → 204.
async fn arm_faults(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let faults = match optional_json::<OneOrMany>(&body) {
        Ok(Some(OneOrMany::Many(faults))) => faults,
        Ok(Some(OneOrMany::One(fault))) => vec![fault],
        Ok(None) => return control_error(StatusCode::BAD_REQUEST, "empty body"),
        Err(error) => return error.into_response(),
    };
    {
        let mut world = sh.world();
        for fault in faults {
            world.faults.arm(fault, Instant::now());
        }
    }
    sh.outage_changed.notify_one();
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE /__emulator/faults` → 204: disarms everything, ends an outage.
async fn clear_faults(State(sh): State<Arc<Shared>>) -> StatusCode {
    sh.world().faults.clear();
    sh.outage_changed.notify_one();
    StatusCode::NO_CONTENT
}

/// `POST /__emulator/users` (a seed user) → 201 with the user; 409 when it exists.
async fn add_user(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let user: SeedUser = match optional_json(&body) {
        Ok(Some(user)) => user,
        Ok(None) => return control_error(StatusCode::BAD_REQUEST, "empty body"),
        Err(error) => return error.into_response(),
    };
    let mut guard = sh.world();
    let world = &mut *guard;
    if world.state.user(&user.username).is_some() {
        return control_error(StatusCode::CONFLICT, "user already exists");
    }
    match seed::add_user(&mut world.state, &user, &mut world.rng) {
        Ok(()) => (
            StatusCode::CREATED,
            Json(json!(world.state.view(&user.username, &world.knobs))),
        )
            .into_response(),
        Err(e) => control_error(StatusCode::BAD_REQUEST, e),
    }
}

/// `PATCH /__emulator/users/{username}` (`{"fullName"?, "email"?, "active"?}`) → 200 with
/// the user; 404 when unknown. Drift behind usersync's back: no rules, no call log entry.
async fn edit_user(
    State(sh): State<Arc<Shared>>,
    Path(username): Path<String>,
    body: Bytes,
) -> Response {
    let edit: UserEdit = match optional_json(&body) {
        Ok(Some(edit)) => edit,
        Ok(None) => return control_error(StatusCode::BAD_REQUEST, "empty body"),
        Err(error) => return error.into_response(),
    };
    let mut world = sh.world();
    match world.state.edit_behind(&username, &edit) {
        Ok(()) => Json(json!(world.state.view(&username, &world.knobs))).into_response(),
        Err(e) => control_error(StatusCode::NOT_FOUND, e),
    }
}

/// `DELETE /__emulator/users/{username}` → 204 (404 when unknown): the account, its
/// memberships and Linchpin values are gone at once, as if an administrator deleted it.
async fn delete_user(State(sh): State<Arc<Shared>>, Path(username): Path<String>) -> Response {
    let mut world = sh.world();
    let Some(name) = world.state.user(&username).map(|u| u.username.clone()) else {
        return control_error(StatusCode::NOT_FOUND, "no such user");
    };
    world.state.remove_user(&name);
    StatusCode::NO_CONTENT.into_response()
}

/// `PUT /__emulator/groups/{group}/members/{username}` → 204: adds a membership, creating
/// the group when it does not exist; 404 for an unknown user.
async fn add_member(
    State(sh): State<Arc<Shared>>,
    Path((group, username)): Path<(String, String)>,
) -> Response {
    let mut world = sh.world();
    if world.state.user(&username).is_none() {
        return control_error(StatusCode::NOT_FOUND, "no such user");
    }
    if world.state.group_name(&group).is_none() {
        if let Err(e) = world.state.create_group(&group) {
            return control_error(StatusCode::BAD_REQUEST, e);
        }
    }
    match world.state.add_member(&username, &group) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => control_error(StatusCode::NOT_FOUND, e),
    }
}

/// `DELETE /__emulator/groups/{group}/members/{username}` → 204; 404 for an unknown user or
/// group.
async fn remove_member(
    State(sh): State<Arc<Shared>>,
    Path((group, username)): Path<(String, String)>,
) -> Response {
    let mut world = sh.world();
    match world.state.remove_member(&username, &group) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => control_error(StatusCode::NOT_FOUND, e),
    }
}

/// `POST /__emulator/lup/xml-import` → 200 with the [`ImportReport`] (also when it failed:
/// read `successful`).
async fn xml_import(State(sh): State<Arc<Shared>>) -> Json<ImportReport> {
    Json(xml_import::run(&sh).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_patch_changes_only_the_given_keys() {
        let mut target = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge(&mut target, json!({"b": {"c": 5, "d": null}, "e": true}));
        assert_eq!(target, json!({"a": 1, "b": {"c": 5}, "e": true}));
    }
}
