//! `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas` (RFC 7644 §4), derived from the
//! schema registry and the limits in force. GET only; other methods get 405.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::super::auth::ScimCtx;
use super::super::error::AppError;
use super::super::response::ScimJson;
use super::super::state::AppState;
use super::resources::ResourceId;
use crate::scim::discovery::{self, basic_scheme, bearer_scheme, oauth2_scheme, Capabilities};
use crate::scim::schema::ResourceKind;
use crate::scim::ScimError;

fn capabilities(state: &AppState, ctx: &ScimCtx) -> Capabilities {
    let l = &state.settings.limits;
    let schemes = state.auth().schemes(&ctx.connector);
    let mut auth_schemes = Vec::new();
    if schemes.bearer {
        auth_schemes.push(bearer_scheme(auth_schemes.is_empty()));
    }
    if schemes.oauth2 {
        let token_url = format!("{}/oauth/token", ctx.base);
        auth_schemes.push(oauth2_scheme(auth_schemes.is_empty(), &token_url));
    }
    if schemes.basic {
        auth_schemes.push(basic_scheme(auth_schemes.is_empty()));
    }
    Capabilities {
        bulk_max_operations: l.bulk_max_operations,
        bulk_max_payload: l.max_body_bytes,
        filter_max_results: l.max_page_size,
        auth_schemes,
        documentation_uri: None,
    }
}

/// `GET /ServiceProviderConfig`: the authentication schemes are those of the connector.
pub async fn service_provider_config(State(state): State<AppState>, ctx: ScimCtx) -> Response {
    ScimJson::new(
        StatusCode::OK,
        discovery::service_provider_config(&capabilities(&state, &ctx), &ctx.base),
    )
    .into_response()
}

/// `GET /ResourceTypes`.
pub async fn resource_types(State(state): State<AppState>, ctx: ScimCtx) -> Response {
    ScimJson::new(
        StatusCode::OK,
        discovery::resource_types(&state.schemas, &ctx.base),
    )
    .into_response()
}

/// `GET /ResourceTypes/{name}`.
pub async fn resource_type(
    State(state): State<AppState>,
    ctx: ScimCtx,
    ResourceId(name): ResourceId,
) -> Result<Response, AppError> {
    let kind = [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(&name))
        .ok_or_else(|| ScimError::not_found("no such resource type"))?;
    let doc = discovery::resource_type(state.schemas.resource_type(kind), &ctx.base);
    Ok(ScimJson::new(StatusCode::OK, doc).into_response())
}

/// `GET /Schemas`.
pub async fn schemas(State(state): State<AppState>, ctx: ScimCtx) -> Response {
    ScimJson::new(
        StatusCode::OK,
        discovery::schemas(&state.schemas, &ctx.base),
    )
    .into_response()
}

/// `GET /Schemas/{urn}`.
pub async fn schema(
    State(state): State<AppState>,
    ctx: ScimCtx,
    ResourceId(urn): ResourceId,
) -> Result<Response, AppError> {
    let s = state
        .schemas
        .schema(&urn)
        .ok_or_else(|| ScimError::not_found("no such schema"))?;
    Ok(ScimJson::new(StatusCode::OK, discovery::schema(s, &ctx.base)).into_response())
}
