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

/// The endpoints under `/scim/v2/{connector}/`, as routed.
const ENDPOINTS: [&str; 7] = [
    "Users",
    "Groups",
    "Bulk",
    "ServiceProviderConfig",
    "ResourceTypes",
    "Schemas",
    ".search",
];

/// The routed spelling of a SCIM request path, when it differs: the endpoint after the
/// connector matched case-insensitively (`/users`, `/GROUPS`, `/schemas`), as is `.search`
/// after `Users`/`Groups`, and one trailing `/` dropped (`/Users/?filter=…`). Microsoft's
/// SCIM reference test collection sends both (docs/API.md "Paths"); RFC 7644 §3.2 names the
/// endpoints but leaves their case to the service provider. The connector segment and ids
/// are left as they are: ids are case-exact (RFC 7643 §3.1).
pub fn canonical_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix(SCIM_PREFIX)?;
    let trimmed = rest.strip_suffix('/').unwrap_or(rest);
    let mut segments: Vec<&str> = trimmed.split('/').collect();
    if segments.len() < 2 || segments.iter().any(|s| s.is_empty()) {
        return (trimmed.len() != rest.len() && !trimmed.is_empty())
            .then(|| format!("{SCIM_PREFIX}{trimmed}"));
    }
    let canonical = |s: &str| {
        ENDPOINTS
            .iter()
            .find(|e| e.eq_ignore_ascii_case(s))
            .copied()
    };
    if let Some(e) = canonical(segments[1]) {
        segments[1] = e;
    }
    if matches!(segments[1], "Users" | "Groups")
        && segments.len() == 3
        && segments[2].eq_ignore_ascii_case(".search")
    {
        segments[2] = ".search";
    }
    let out = format!("{SCIM_PREFIX}{}", segments.join("/"));
    (out != path).then_some(out)
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

#[cfg(test)]
mod tests {
    use super::canonical_path;

    #[test]
    fn endpoints_match_in_any_case_and_with_a_trailing_slash() {
        for (given, want) in [
            ("/scim/v2/entra/users", Some("/scim/v2/entra/Users")),
            ("/scim/v2/entra/Users/", Some("/scim/v2/entra/Users")),
            (
                "/scim/v2/entra/GROUPS/abc-1/",
                Some("/scim/v2/entra/Groups/abc-1"),
            ),
            ("/scim/v2/entra/schemas", Some("/scim/v2/entra/Schemas")),
            (
                "/scim/v2/entra/serviceproviderconfig",
                Some("/scim/v2/entra/ServiceProviderConfig"),
            ),
            (
                "/scim/v2/entra/resourcetypes/User",
                Some("/scim/v2/entra/ResourceTypes/User"),
            ),
            (
                "/scim/v2/entra/users/.SEARCH",
                Some("/scim/v2/entra/Users/.search"),
            ),
            ("/scim/v2/entra/bulk", Some("/scim/v2/entra/Bulk")),
            ("/scim/v2/entra/Users", None),
            ("/scim/v2/entra/Users/AbC", None),
            ("/scim/v2/entra/oauth/token", None),
            ("/scim/v2/entra/", Some("/scim/v2/entra")),
            ("/scim/v2/entra", None),
            ("/linchpin/entra/profiles.xml", None),
            ("/scim/v2/entra//Users", None),
        ] {
            assert_eq!(canonical_path(given).as_deref(), want, "{given}");
        }
    }
}
