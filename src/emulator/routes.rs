//! The route table: the Confluence (incl. JSON-RPC) and Linchpin endpoints of docs/emulator.md
//! "Endpoints" under the context path, the control API at `/__emulator` (outside it), and an HTML
//! 404 for everything else. The pipeline wraps every route.

use std::sync::Arc;

use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, put};
use axum::Router;

use super::errors::ApiError;
use super::shared::Shared;
use super::{admin_users, applinks, control, groups, jsonrpc, lup, pipeline, users};

/// Confluence + Linchpin routes, relative to the context path.
fn confluence() -> Router<Arc<Shared>> {
    Router::new()
        .route("/rest/api/user/current", get(users::current_user))
        .route("/rest/api/user", get(users::get_user))
        .route("/rest/api/user/list", get(users::list_users))
        .route(
            "/rest/api/admin/users/list/active",
            get(users::list_active_users),
        )
        .route("/rest/api/user/memberof", get(users::member_of))
        .route("/rest/api/admin/user", post(admin_users::create_user))
        .route(
            "/rest/api/admin/user/{username}",
            put(admin_users::update_user).delete(admin_users::delete_user),
        )
        .route(
            "/rest/api/admin/user/{username}/disable",
            put(admin_users::disable_user),
        )
        .route(
            "/rest/api/admin/user/{username}/enable",
            put(admin_users::enable_user),
        )
        .route(
            "/rest/api/admin/user/{username}/password",
            post(admin_users::change_password),
        )
        .route("/rest/api/longtask/{id}", get(admin_users::long_task))
        .route("/rest/api/group", get(groups::list_groups))
        .route("/rest/api/group/{group}", get(groups::get_group))
        .route("/rest/api/group/{group}/member", get(groups::group_members))
        .route("/rest/api/admin/group", post(groups::create_group))
        .route(
            "/rest/api/admin/group/{group}",
            axum::routing::delete(groups::delete_group),
        )
        .route(
            "/rest/api/user/{username}/group/{group}",
            put(groups::add_member).delete(groups::remove_member),
        )
        .route(
            "/rest/mobile/1.0/profile/{username}",
            get(users::mobile_profile),
        )
        .route(
            "/rpc/json-rpc/confluenceservice-v2",
            post(jsonrpc::envelope),
        )
        .route(
            "/rpc/json-rpc/confluenceservice-v2/{method}",
            post(jsonrpc::light),
        )
        .route("/rest/applinks/1.0/manifest", get(applinks::manifest))
        .route("/rest/cup/1.0/fields", get(lup::list_fields))
        .route("/rest/cup/1.0/profile/{username}", get(lup::get_profile))
}

/// The whole application.
pub(crate) fn app(sh: Arc<Shared>) -> Router {
    let context = sh.context_path.clone();
    let confluence = if context.is_empty() {
        confluence()
    } else {
        Router::new().nest(&context, confluence())
    };
    Router::new()
        .merge(confluence)
        .nest(pipeline::CONTROL_PREFIX, control::routes())
        .fallback(|| async { ApiError::unknown_resource() })
        .layer(from_fn_with_state(Arc::clone(&sh), pipeline::pipeline))
        .with_state(sh)
}
