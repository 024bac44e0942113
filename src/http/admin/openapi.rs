//! The OpenAPI 3.1 document of the operations API, generated from the handlers' annotations
//! and the response types (utoipa), served at `/admin/api/v1/openapi.json` and printed by
//! `usersync admin openapi`. The test suite validates it with an external validator
//! (scripts/test).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    actions, audit, connectors, health, mapping, problem, pull, reconcile, resources, timeline,
    API_PREFIX,
};

/// The document's root.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "usersync operations API",
        description = "Operate usersync: connectors and their status, users and groups with \
            their timeline, sync and dry run, the mapping, the audit trail. Every request needs \
            `Authorization: Bearer <admin token>` (`usersync admin token create`); reads need \
            any token, actions the admin role. Errors are RFC 9457 problem details. See \
            docs/admin-api.md."
    ),
    paths(
        connectors::list_connectors,
        connectors::get_connector,
        connectors::rotate_token,
        connectors::pause,
        connectors::resume,
        resources::search_users,
        resources::search_groups,
        resources::user_detail,
        resources::group_detail,
        timeline::user_timeline,
        timeline::group_timeline,
        actions::sync_user,
        actions::dry_run_user,
        actions::retry_dead_user,
        actions::retry_dead_group,
        actions::retry_dead_all,
        mapping::mapping_table,
        mapping::mapping_preview,
        mapping::linchpin_fields,
        mapping::save_mapping,
        mapping::mapping_versions,
        mapping::preview_rules,
        reconcile::runs,
        reconcile::run,
        pull::pull_runs,
        pull::pull_run,
        pull::pull_now,
        health::health,
        actions::queue,
        audit::audit_log,
    ),
    components(schemas(problem::Problem)),
    modifiers(&Security),
    security(("admin_token" = [])),
    tags(
        (name = "connectors", description = "IdP connections and their delivery"),
        (name = "users and groups", description = "What the IdP sent, what was delivered, and when"),
        (name = "actions", description = "Sync, dry run, retry (admin role)"),
        (name = "mapping", description = "Attribute mapping and Linchpin fields"),
        (name = "audit", description = "The audit trail"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An admin token (`usa_…`) from `usersync admin token create`",
                    ))
                    .build(),
            ),
        );
        openapi.servers = Some(vec![utoipa::openapi::Server::new(API_PREFIX)]);
    }
}

/// The document as pretty JSON.
pub fn json() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.to_pretty_json()
        .expect("the generated document serializes")
}

/// `GET /admin/api/v1/openapi.json`: the document. Public like any API description: it
/// holds no data.
pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json()).into_response()
}
