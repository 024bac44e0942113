//! Users: search, and one user's page: the SCIM resource, the mapped profile, the Confluence
//! state wanted and applied, the timeline, and "Sync now" and "Dry run" with their outcome on
//! the page.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{self, action, error_page, notice, or_dash, page, tabs, value, when};
use super::session::{Console, CsrfOnly};
use crate::http::admin::actions::{self, SyncOutcome};
use crate::http::admin::auth::Acting;
use crate::http::admin::resources::{self, SearchParams};
use crate::http::admin::timeline::{self, TimelineParams};
use crate::http::state::AppState;

/// The search form.
#[derive(Debug, Deserialize)]
pub struct Search {
    q: Option<String>,
    page: Option<String>,
}

/// `GET /connectors/{connector}/users`: search.
pub async fn search(
    State(state): State<AppState>,
    console: Console,
    Path(connector): Path<String>,
    Query(form): Query<Search>,
) -> Response {
    let q = form.q.clone().unwrap_or_default();
    let params = SearchParams {
        q: form.q.clone(),
        page: form.page.clone(),
        per_page: Some("50".to_owned()),
    };
    let found = match resources::search_users(
        State(state),
        console.caller.clone(),
        Path(connector.clone()),
        Query(params),
    )
    .await
    {
        Ok(Json(p)) => p,
        Err(e) => return error_page(&console, e),
    };
    let pages = found.total.div_ceil(found.per_page).max(1);
    let link = |p: usize| {
        let q = serde_urlencoded::to_string([("q", q.as_str()), ("page", &p.to_string())])
            .unwrap_or_default();
        format!("/connectors/{connector}/users?{q}")
    };
    let body = html! {
        (tabs(&connector, "users"))
        form.search method="get" action=(format!("/connectors/{connector}/users")) role="search" {
            label for="q" { "Find users by userName, name, e-mail or externalId" }
            div.row {
                input #q type="search" name="q" value=(q) placeholder="e.g. jane or jane@example.com";
                button type="submit" { "Search" }
            }
        }
        p.muted {
            (found.total) " found"
            @if found.matched == "contains" { " containing “" (q) "” (nothing matched it exactly)" }
            @if pages > 1 { " · page " (found.page) " of " (pages) }
        }
        div.scroll { table #results {
            thead { tr { th scope="col" { "userName" } th scope="col" { "Display name" } th scope="col" { "E-mail" } th scope="col" { "externalId" } th scope="col" { "Active" } th scope="col" { "Changed" } } }
            tbody { @for u in &found.items { tr {
                th scope="row" { a href=(format!("/connectors/{connector}/users/{}", u.id)) { (u.name) } }
                td { (or_dash(u.display_name.as_deref())) }
                td { (or_dash(u.email.as_deref())) }
                td { (or_dash(u.external_id.as_deref())) }
                td { @match u.active { Some(true) => "yes", Some(false) => span.warn { "no" }, None => "—" } }
                td { (when(u.last_modified.as_deref())) }
            } } }
        } }
        nav.pager aria-label="Pages" {
            @if found.page > 1 { a href=(link(found.page - 1)) rel="prev" { "← Previous" } }
            @if found.page < pages { a href=(link(found.page + 1)) rel="next" { "Next →" } }
        }
    };
    page(&console, &format!("Connector {connector}: users"), body).into_response()
}

/// `GET /connectors/{connector}/users/{id}`.
pub async fn user(
    State(state): State<AppState>,
    console: Console,
    Path((connector, id)): Path<(String, String)>,
) -> Response {
    user_page(&state, &console, &connector, &id, None).await
}

/// `POST /connectors/{connector}/users/{id}/sync` and `/dry-run`: the user's page with the
/// outcome on top.
pub async fn act(
    State(state): State<AppState>,
    console: Console,
    Path((connector, id, what)): Path<(String, String, String)>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = console.csrf_refusal(&form.csrf) {
        return r;
    }
    let acting = match Acting::check(
        &state,
        console.caller.clone(),
        &format!("console: user {what}"),
        &connector,
    )
    .await
    {
        Ok(a) => a,
        Err(e) => return error_page(&console, e),
    };
    let path = Path((connector.clone(), id.clone()));
    let outcome = match what.as_str() {
        "sync" => actions::sync_user(State(state.clone()), acting, path).await,
        "dry-run" => actions::dry_run_user(State(state.clone()), acting, path).await,
        _ => {
            return error_page(
                &console,
                crate::http::admin::problem::AdminError::NotFound(format!("no action {what:?}")),
            )
        }
    };
    match outcome {
        Ok(Json(o)) => user_page(&state, &console, &connector, &id, Some((what.as_str(), o))).await,
        Err(e) => error_page(&console, e),
    }
}

async fn user_page(
    state: &AppState,
    console: &Console,
    connector: &str,
    id: &str,
    outcome: Option<(&str, SyncOutcome)>,
) -> Response {
    let path = || Path((connector.to_owned(), id.to_owned()));
    let d = match resources::user_detail(State(state.clone()), console.caller.clone(), path()).await
    {
        Ok(Json(d)) => d,
        Err(e) => return error_page(console, e),
    };
    let t = match timeline::user_timeline(
        State(state.clone()),
        console.caller.clone(),
        path(),
        Query(TimelineParams { limit: None }),
    )
    .await
    {
        Ok(Json(t)) => t,
        Err(e) => return error_page(console, e),
    };
    let name = d.resource["userName"].as_str().unwrap_or(id).to_owned();
    let base = format!("/connectors/{connector}/users/{id}");
    let body = html! {
        (tabs(connector, "users"))
        div.actions {
            (action(console, &format!("{base}/sync"), "Sync now", "primary"))
            (action(console, &format!("{base}/dry-run"), "Dry run", ""))
        }
        @if let Some((what, o)) = &outcome { (outcome_panel(what, o)) }
        section aria-labelledby="state" {
            h2 #state { "Confluence" }
            (confluence_state(&d.desired, &d.applied, &d.link))
            @if !d.queue.is_null() {
                p class=(if d.queue["state"] == "dead" { "notice error" } else { "notice" }) {
                    "In the sync queue: " (value(&d.queue["state"])) ", " (value(&d.queue["attempts"])) " attempts"
                    @if let Some(e) = d.queue["last_error"].as_str() { ", last error: " (e) }
                    @if d.queue["state"] == "dead" { " " (action(console, &format!("/connectors/{connector}/users/{id}/retry"), "Retry", "")) }
                }
            }
        }
        section aria-labelledby="timeline" {
            h2 #timeline { "Timeline" }
            (timeline_list(&t.items))
        }
        section aria-labelledby="profile" {
            h2 #profile { "Mapped profile" }
            (profile_table(&d.profile))
        }
        section aria-labelledby="scim" {
            h2 #scim { "SCIM resource" }
            (layout::json_block(&d.resource))
        }
    };
    page(console, &name, body).into_response()
}

fn outcome_panel(what: &str, o: &SyncOutcome) -> Markup {
    let ok = o.outcome == "done";
    let title = if what == "dry-run" { "Dry run" } else { "Sync" };
    html! {
        section #outcome class=(if ok { "notice ok" } else { "notice error" }) role="status" {
            h2 { (title) ": " (o.outcome) }
            @if let Some(r) = &o.reason { p { (r) } }
            @if let Some(planned) = &o.planned {
                @if planned.is_empty() { p { "Confluence already matches: nothing would change." } } @else {
                    p { "These changes would be made:" }
                    ul #planned { @for p in planned { li { (p) } } }
                }
            }
            @if !o.calls.is_empty() { (calls_table(&o.calls)) }
        }
    }
}

fn calls_table(calls: &[Value]) -> Markup {
    html! {
        div.scroll { table.calls {
            thead { tr { th scope="col" { "Call" } th scope="col" class="num" { "Status" } th scope="col" class="num" { "ms" } th scope="col" { "Error" } } }
            tbody { @for c in calls { tr {
                td { code { (c["call"].as_str().unwrap_or_default()) } }
                td.num { @if c["status"].is_null() && c["error_class"].is_null() { "ok" } @else { (value(&c["status"])) } }
                td.num { (value(&c["duration_ms"])) }
                td { (value(&c["error_class"])) @if let Some(r) = c["response"].as_str() { br; small { (r) } } }
            } } }
        } }
    }
}

fn confluence_state(desired: &Value, applied: &Value, link: &Value) -> Markup {
    if let Some(why) = desired["not_deliverable"].as_str() {
        return notice("error", &format!("Not deliverable: {why}"));
    }
    let rows = ["username", "full_name", "email", "active", "groups"];
    let label = |k: &str| match k {
        "username" => "Username",
        "full_name" => "Full name",
        "email" => "E-mail",
        "active" => "Active",
        _ => "Groups",
    };
    html! {
        div.scroll { table.compare {
            thead { tr { th scope="col" {} th scope="col" { "Wanted" } th scope="col" { "Applied" } } }
            tbody { @for k in rows {
                @let (w, a) = (&desired[k], &applied[k]);
                tr class=[(!applied.is_null() && w != a).then_some("differs")] {
                    th scope="row" { (label(k)) } td { (value(w)) } td { (value(a)) }
                }
            } }
        } }
        p.muted {
            @if link.is_null() { "No Confluence account is linked yet." } @else {
                "Linked to " code { (link["confluence_name"].as_str().unwrap_or_default()) } " (" (value(&link["status"])) ")"
                @if let Some(n) = link["note"].as_str() { ": " (n) }
            }
        }
    }
}

fn profile_table(profile: &Value) -> Markup {
    if let Some(why) = profile["left_out"].as_str() {
        return notice("error", &format!("Left out of the Linchpin feed: {why}"));
    }
    let Some(fields) = profile["fields"].as_array() else {
        return html! { p.muted { "No profile." } };
    };
    html! {
        div.scroll { table {
            thead { tr { th scope="col" { "Field" } th scope="col" { "XML element" } th scope="col" { "Value" } th scope="col" { "State" } } }
            tbody { @for f in fields { tr {
                th scope="row" { (f["name"].as_str().unwrap_or_default()) }
                td { code { (f["xml"].as_str().unwrap_or_default()) } }
                td { (value(&f["value"])) }
                td { (f["state"].as_str().unwrap_or_default()) }
            } } }
        } }
    }
}

fn timeline_list(items: &[crate::http::admin::timeline::TimelineItem]) -> Markup {
    if items.is_empty() {
        return html! { p.muted { "Nothing yet." } };
    }
    html! {
        ol.timeline {
            @for i in items {
                @let d = &i.detail;
                li class=(format!("ev {}", i.kind)) {
                    div.head {
                        (when(Some(&i.at))) " "
                        span.badge { (i.kind.replace('_', " ")) } " "
                        @match i.kind.as_str() {
                            "delivery" => { strong { (d["outcome"].as_str().unwrap_or_default()) } }
                            "reconcile" => { strong { (value(&d["class"])) } " → " (value(&d["action"])) ": " (value(&d["outcome"])) }
                            _ => { strong { (value(&d["operation"])) } " by " code { (value(&d["actor"])) } " · " (value(&d["outcome"])) }
                        }
                    }
                    @if let Some(changes) = d["changes"].as_array().filter(|c| !c.is_empty()) {
                        div.scroll { table.changes {
                            thead { tr { th scope="col" { "Attribute" } th scope="col" { "Before" } th scope="col" { "After" } } }
                            tbody { @for c in changes { tr {
                                td { code { (c["path"].as_str().unwrap_or_default()) } } td { (value(&c["old"])) } td { (value(&c["new"])) }
                            } } }
                        } }
                    }
                    @if let Some(calls) = d["calls"].as_array() { (calls_table(calls)) }
                    @if i.kind == "reconcile" { p.muted { (value(&d["detail"])) } }
                }
            }
        }
    }
}
