//! The dashboard (health panel and connector list) and a connector's Overview and Sync tabs,
//! each built on the operations API's handlers with the session's caller.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use maud::html;

use super::layout::{self, action, error_page, notice, or_dash, page, tabs, when};
use super::session::{Console, CsrfOnly};
use crate::http::admin::auth::Acting;
use crate::http::admin::{actions, connectors, health, reconcile};
use crate::http::state::AppState;

/// `GET /`: the health panel and every connector with its status.
pub async fn dashboard(State(state): State<AppState>, console: Console) -> Response {
    let caller = console.caller.clone();
    let health = match health::health(State(state.clone()), caller.clone()).await {
        Ok(Json(h)) => h,
        Err(e) => return error_page(&console, e),
    };
    let list = match connectors::list_connectors(State(state.clone()), caller).await {
        Ok(Json(l)) => l,
        Err(e) => return error_page(&console, e),
    };
    let c = &health.confluence;
    let body = html! {
        section.panel aria-labelledby="health" {
            h2 #health { "Health" }
            dl.health {
                dt { "Database" }
                dd class=(if health.database == "ok" { "ok" } else { "bad" }) { (health.database) }
                dt { "Confluence" }
                @if !c.configured {
                    dd.warn { "not configured: changes are queued, not delivered" }
                } @else if c.reachable {
                    dd.ok { "reachable · " (c.base_url.as_deref().unwrap_or_default()) " · version " (c.version.as_deref().unwrap_or("unknown")) }
                } @else {
                    dd.bad { "not reachable: " (c.error.as_deref().unwrap_or_default()) }
                }
                dt { "Queue" }
                dd class=(if health.queue.dead > 0 { "warn" } else { "ok" }) {
                    (health.queue.pending) " pending · " (health.queue.dead) " dead · "
                    (health.queue.waiting) " waiting for Confluence"
                    @if let Some(age) = health.queue.oldest_pending_seconds { " · oldest " (age) " s" }
                }
            }
        }
        section aria-labelledby="connectors" {
            h2 #connectors { "Connectors" }
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "Connector" } th scope="col" { "Source" }
                        th scope="col" class="num" { "Users" } th scope="col" class="num" { "Groups" }
                        th scope="col" class="num" { "Queue" } th scope="col" class="num" { "Dead" }
                        th scope="col" { "Last SCIM request" } th scope="col" { "Last delivery" }
                        th scope="col" { "Last error" } th scope="col" { "Delivery" }
                    } }
                    tbody {
                        @for s in &list.connectors {
                            tr {
                                th scope="row" { a href=(format!("/connectors/{}", s.name)) { (s.name) } }
                                td { (s.source) }
                                td.num { (s.users) } td.num { (s.groups) }
                                td.num { (s.queue_depth) }
                                td.num class=(if s.dead_keys > 0 { "num bad" } else { "num" }) { (s.dead_keys) }
                                td { (when(s.last_scim_request.as_deref())) }
                                td { (when(s.last_delivery.as_deref())) }
                                td {
                                    @if let Some(e) = &s.last_error {
                                        span.bad { (e.error_class) } " " (when(Some(&e.at)))
                                    } @else { (or_dash(None)) }
                                }
                                td { @if s.delivery_paused { span.warn { "paused" } } @else { "on" } }
                            }
                        }
                    }
                }
            }
            p.hint { "New connectors: " code { "usersync connector create NAME" } " (or declare one in usersync.toml)." }
        }
    };
    page(&console, "Dashboard", body).into_response()
}

/// `GET /connectors/{connector}`: the Overview tab.
pub async fn overview(
    State(state): State<AppState>,
    console: Console,
    Path(connector): Path<String>,
) -> Response {
    overview_with(&state, &console, &connector, None).await
}

async fn overview_with(
    state: &AppState,
    console: &Console,
    connector: &str,
    new_token: Option<(String, String)>,
) -> Response {
    let d = match connectors::get_connector(
        State(state.clone()),
        console.caller.clone(),
        Path(connector.to_owned()),
    )
    .await
    {
        Ok(Json(d)) => d,
        Err(e) => return error_page(console, e),
    };
    let s = &d.status;
    let body = html! {
        (tabs(connector, ""))
        @if let Some((token, expire)) = &new_token {
            div.notice.ok role="status" {
                p { strong { "New bearer token, shown this once:" } }
                p { code.secret #new-token { (token) } }
                p { "Give it to the IdP now. The previous tokens keep working until " (when(Some(expire))) "." }
            }
        }
        dl.facts {
            dt { "SCIM base URL" } dd { code #scim-base { (s.scim_base_url) } }
            dt { "Source" } dd { (s.source) @if s.source == "config" { " (usersync.toml)" } }
            dt { "Authentication" } dd { (s.auth_modes.join(", ")) }
            dt { "Active tokens" } dd { (s.active_tokens) }
            dt { "Users · groups" } dd { (s.users) " · " (s.groups) }
            dt { "Linchpin feed" } dd { @if d.linchpin_feed { "on" } @else { "off" } }
            dt { "Webhook" } dd { @if d.webhook { "on" } @else { "off" } }
        }
        @if !d.tokens.is_empty() {
            h2 { "Bearer tokens" }
            div.scroll { table {
                thead { tr { th scope="col" { "Fingerprint" } th scope="col" { "Issued" } th scope="col" { "Expires" } } }
                tbody { @for t in &d.tokens { tr {
                    td { code { (t.fingerprint) } } td { (when(Some(&t.created))) } td { (when(t.expires.as_deref())) }
                } } }
            } }
        }
        @if s.source == "stored" {
            (action(console, &format!("/connectors/{connector}/rotate-token"), "Rotate token", "primary"))
        } @else {
            p.hint { "This connector's credentials are environment variables named in usersync.toml: rotate them there." }
        }
    };
    page(console, &format!("Connector {connector}"), body).into_response()
}

/// `POST /connectors/{connector}/rotate-token`.
pub async fn rotate(
    State(state): State<AppState>,
    console: Console,
    Path(connector): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = console.csrf_refusal(&form.csrf) {
        return r;
    }
    let acting = match Acting::check(
        &state,
        console.caller.clone(),
        "console: rotate token",
        &connector,
    )
    .await
    {
        Ok(a) => a,
        Err(e) => return error_page(&console, e),
    };
    match connectors::rotate_token(State(state.clone()), acting, Path(connector.clone())).await {
        Ok(Json(t)) => {
            overview_with(
                &state,
                &console,
                &connector,
                Some((t.token, t.previous_tokens_expire)),
            )
            .await
        }
        Err(e) => error_page(&console, e),
    }
}

/// `GET /connectors/{connector}/sync`: queue, dead keys, pause, pull runs (pull connectors),
/// reconcile runs.
pub async fn sync_tab(
    State(state): State<AppState>,
    console: Console,
    Path(connector): Path<String>,
) -> Response {
    let caller = console.caller.clone();
    let d = match connectors::get_connector(
        State(state.clone()),
        caller.clone(),
        Path(connector.clone()),
    )
    .await
    {
        Ok(Json(d)) => d,
        Err(e) => return error_page(&console, e),
    };
    let queue = |which: &str| {
        actions::queue(
            State(state.clone()),
            caller.clone(),
            Path(connector.clone()),
            axum::extract::Query(actions::QueueParams {
                state: Some(which.to_owned()),
                limit: Some("100".to_owned()),
            }),
        )
    };
    let dead = match queue("dead").await {
        Ok(Json(q)) => q.items,
        Err(e) => return error_page(&console, e),
    };
    let pending = match queue("pending").await {
        Ok(Json(q)) => q.items,
        Err(e) => return error_page(&console, e),
    };
    let runs = match reconcile::runs(State(state.clone()), caller, Path(connector.clone())).await {
        Ok(Json(r)) => r.runs,
        Err(e) => return error_page(&console, e),
    };
    let pulled = super::pull::section(&state, &console, &connector).await;
    let s = &d.status;
    let base = format!("/connectors/{connector}");
    let body = html! {
        (tabs(&connector, "sync"))
        dl.facts {
            dt { "Delivery" }
            dd {
                @if s.delivery_paused {
                    span.warn { "paused" } " "
                    (action(&console, &format!("{base}/resume"), "Resume delivery", "primary"))
                } @else {
                    "on " (action(&console, &format!("{base}/pause"), "Pause delivery", ""))
                }
            }
            dt { "Queue" } dd { (s.queue_depth) " pending · " (s.dead_keys) " dead" }
            dt { "Last delivery" } dd { (when(s.last_delivery.as_deref())) }
            dt { "Last error" } dd {
                @if let Some(e) = &s.last_error {
                    span.bad { (e.error_class) } " " (e.call) " " (when(Some(&e.at)))
                } @else { (or_dash(None)) }
            }
        }
        h2 { "Dead keys" }
        @if dead.is_empty() { p.muted { "None." } } @else {
            (action(&console, &format!("{base}/retry-dead"), "Retry all dead keys", "primary"))
            div.scroll { table {
                thead { tr { th scope="col" { "Resource" } th scope="col" class="num" { "Attempts" } th scope="col" { "Reason" } th scope="col" { "Since" } th {} } }
                tbody { @for k in &dead {
                    @let kind = k["kind"].as_str().unwrap_or_default();
                    @let id = k["id"].as_str().unwrap_or_default();
                    @let path = if kind == "User" { "users" } else { "groups" };
                    tr {
                        td { @if kind == "User" { a href=(format!("{base}/users/{id}")) { (kind) " " (id) } } @else { (kind) " " (id) } }
                        td.num { (k["attempts"]) }
                        td { (layout::value(&k["last_error"])) }
                        td { (when(k["enqueued_at"].as_str())) }
                        td { (action(&console, &format!("{base}/{path}/{id}/retry"), "Retry", "")) }
                    }
                } }
            } }
        }
        h2 { "Pending, in delivery order" }
        @if pending.is_empty() { p.muted { "Nothing waiting." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Resource" } th scope="col" class="num" { "Attempts" } th scope="col" { "Due" } th scope="col" { "Waiting on" } th scope="col" { "Last error" } } }
                tbody { @for k in &pending { tr {
                    td {
                        @let (kind, id) = (k["kind"].as_str().unwrap_or_default(), k["id"].as_str().unwrap_or_default());
                        @if kind == "User" { a href=(format!("{base}/users/{id}")) { (kind) " " (id) } } @else { (kind) " " (id) }
                        @if k["deprovisioning"] == true { " " span.warn { "deprovisioning" } }
                    }
                    td.num { (k["attempts"]) }
                    td { (when(k["next_attempt_at"].as_str())) }
                    td { (layout::value(&k["waiting_on"])) }
                    td { (layout::value(&k["last_error"])) }
                } } }
            } }
            @if pending.len() == 100 { p.hint { "The next 100 to be delivered are shown." } }
        }
        (pulled)
        h2 { "Reconcile runs" }
        @if runs.is_empty() { p.muted { "No full sync has run (" code { "usersync reconcile --connector " (connector) } ")." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Started" } th scope="col" { "By" } th scope="col" { "Mode" } th scope="col" { "Status" } th scope="col" { "Error" } } }
                tbody { @for r in &runs { tr {
                    td { a href=(format!("/reconcile-runs/{}", r["id"].as_str().unwrap_or_default())) { (when(r["started_at"].as_str())) } }
                    td { (layout::value(&r["started_by"])) }
                    td { @if r["dry_run"] == true { "dry run" } @else { "real" } }
                    td { (layout::value(&r["status"])) }
                    td { (layout::value(&r["error"])) }
                } } }
            } }
        }
    };
    page(&console, &format!("Connector {connector}: sync"), body).into_response()
}

/// `POST /connectors/{connector}/pause`, `/resume`, `/retry-dead`, `…/{users|groups}/{id}/retry`:
/// the Sync tab's buttons, then back to the tab.
pub async fn sync_action(
    State(state): State<AppState>,
    console: Console,
    Path((connector, what)): Path<(String, String)>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = console.csrf_refusal(&form.csrf) {
        return r;
    }
    let acting = match Acting::check(
        &state,
        console.caller.clone(),
        &format!("console: {what}"),
        &connector,
    )
    .await
    {
        Ok(a) => a,
        Err(e) => return error_page(&console, e),
    };
    let st = State(state.clone());
    let path = Path(connector.clone());
    let done = match what.as_str() {
        "pause" => connectors::pause(st, acting, path).await.map(|_| ()),
        "resume" => connectors::resume(st, acting, path).await.map(|_| ()),
        "retry-dead" => actions::retry_dead_all(st, acting, path).await.map(|_| ()),
        _ => {
            return error_page(
                &console,
                crate::http::admin::problem::AdminError::NotFound(format!("no action {what:?}")),
            )
        }
    };
    match done {
        Ok(()) => Redirect::to(&format!("/connectors/{connector}/sync")).into_response(),
        Err(e) => error_page(&console, e),
    }
}

/// `POST /connectors/{connector}/{users|groups}/{id}/retry`.
pub async fn retry_key(
    State(state): State<AppState>,
    console: Console,
    Path((connector, kind, id)): Path<(String, String, String)>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = console.csrf_refusal(&form.csrf) {
        return r;
    }
    let acting =
        match Acting::check(&state, console.caller.clone(), "console: retry", &connector).await {
            Ok(a) => a,
            Err(e) => return error_page(&console, e),
        };
    let st = State(state.clone());
    let path = Path((connector.clone(), id));
    let done = match kind.as_str() {
        "users" => actions::retry_dead_user(st, acting, path).await,
        "groups" => actions::retry_dead_group(st, acting, path).await,
        _ => {
            return error_page(
                &console,
                crate::http::admin::problem::AdminError::NotFound(format!("no kind {kind:?}")),
            )
        }
    };
    match done {
        Ok(_) => Redirect::to(&format!("/connectors/{connector}/sync")).into_response(),
        Err(e) => error_page(&console, e),
    }
}

/// `GET /reconcile-runs/{id}`: one run and its items.
pub async fn reconcile_run(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Response {
    let d = match reconcile::run(State(state), console.caller.clone(), Path(id.clone())).await {
        Ok(Json(d)) => d,
        Err(e) => return error_page(&console, e),
    };
    let r = &d.run;
    let body = html! {
        dl.facts {
            dt { "Connector" } dd { a href=(format!("/connectors/{}/sync", r["connector"].as_str().unwrap_or_default())) { (layout::value(&r["connector"])) } }
            dt { "Started" } dd { (when(r["started_at"].as_str())) " by " (layout::value(&r["started_by"])) }
            dt { "Ended" } dd { (when(r["ended_at"].as_str())) }
            dt { "Mode" } dd { @if r["dry_run"] == true { "dry run" } @else { "real" } @if r["forced"] == true { " (guard overridden)" } }
            dt { "Status" } dd { (layout::value(&r["status"])) }
            dt { "Error" } dd { (layout::value(&r["error"])) }
            dt { "Summary" } dd { (layout::value(&r["summary"])) }
        }
        h2 { "Differences" }
        @if d.items.is_empty() { p.muted { "None found." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Class" } th scope="col" { "Confluence name" } th scope="col" { "Action" } th scope="col" { "Outcome" } th scope="col" { "Detail" } } }
                tbody { @for i in &d.items { tr {
                    td { (layout::value(&i["class"])) } td { (layout::value(&i["confluence_name"])) }
                    td { (layout::value(&i["action"])) } td { (layout::value(&i["outcome"])) } td { (layout::value(&i["detail"])) }
                } } }
            } }
        }
    };
    page(&console, "Reconcile run", body).into_response()
}

/// Shown after an action when there is nothing else to show.
pub fn done(console: &Console, what: &str) -> Response {
    page(console, "Done", notice("ok", what)).into_response()
}
