//! The SCIM endpoints under `/scim/v2/{connector}`.

pub mod bulk;
pub mod discovery;
pub mod ops;
pub mod resources;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;

use super::auth::SCIM_PREFIX;
use super::error::AppError;
use super::state::AppState;
use crate::scim::schema::ResourceKind;
use crate::scim::ScimError;

/// The resource type named by the endpoint segment after the connector (`Users`, `Groups`).
impl<S: Send + Sync> FromRequestParts<S> for ResourceKind {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let segment = parts
            .uri
            .path()
            .strip_prefix(SCIM_PREFIX)
            .and_then(|rest| rest.split('/').nth(1))
            .unwrap_or_default();
        match segment {
            "Users" => Ok(ResourceKind::User),
            "Groups" => Ok(ResourceKind::Group),
            _ => Err(ScimError::not_found("no such endpoint").into()),
        }
    }
}

/// The SCIM routes.
pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for endpoint in ["Users", "Groups"] {
        r = r
            .route(
                &format!("/scim/v2/{{connector}}/{endpoint}"),
                get(resources::list).post(resources::create),
            )
            .route(
                &format!("/scim/v2/{{connector}}/{endpoint}/.search"),
                post(resources::search_post),
            )
            .route(
                &format!("/scim/v2/{{connector}}/{endpoint}/{{id}}"),
                get(resources::get)
                    .put(resources::replace)
                    .patch(resources::patch)
                    .delete(resources::delete),
            );
    }
    r.route("/scim/v2/{connector}/Bulk", post(bulk::bulk))
        .route("/scim/v2/{connector}/.search", post(resources::search_root))
        .route(
            "/scim/v2/{connector}/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route(
            "/scim/v2/{connector}/ResourceTypes",
            get(discovery::resource_types),
        )
        .route(
            "/scim/v2/{connector}/ResourceTypes/{name}",
            get(discovery::resource_type),
        )
        .route("/scim/v2/{connector}/Schemas", get(discovery::schemas))
        .route("/scim/v2/{connector}/Schemas/{urn}", get(discovery::schema))
}
