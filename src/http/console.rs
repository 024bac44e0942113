//! The web console (docs/console.md), served by the admin listener at `/`: server-rendered
//! HTML (maud, compiled into the binary, no script and no CDN: it works air-gapped) built on
//! the operations API: every page calls the API's handlers with the session's caller, so
//! the console can show and do exactly what the API allows that caller, no more.

pub mod audit;
pub mod connectors;
pub mod layout;
pub mod provisioning;
pub mod session;
pub mod users;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::http::state::AppState;

/// The stylesheet, compiled in.
const CSS: &str = include_str!("console/console.css");

/// The console's routes (merged into the admin listener's router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(connectors::dashboard))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/audit", get(audit::log))
        .route("/static/console.css", get(stylesheet))
        .route("/connectors/{connector}", get(connectors::overview))
        .route(
            "/connectors/{connector}/rotate-token",
            post(connectors::rotate),
        )
        .route("/connectors/{connector}/sync", get(connectors::sync_tab))
        .route(
            "/connectors/{connector}/provisioning",
            get(provisioning::tab).post(provisioning::submit),
        )
        .route("/connectors/{connector}/users", get(users::search))
        .route("/connectors/{connector}/users/{id}", get(users::user))
        .route(
            "/connectors/{connector}/users/{id}/{action}",
            post(users::act),
        )
        .route(
            "/connectors/{connector}/{kind}/{id}/retry",
            post(connectors::retry_key),
        )
        .route(
            "/connectors/{connector}/{action}",
            post(connectors::sync_action),
        )
        .route("/reconcile-runs/{id}", get(connectors::reconcile_run))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
}
