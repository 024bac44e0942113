//! A pull connector's runs on its Sync tab (docs/pull.md "Runs"): the checkpoint, the recent
//! runs with their counts, "Pull now" (incremental, full, dry run), and a run's page with
//! the users it changed. Everything goes through the operations API's handlers
//! (`http/admin/pull.rs`) with the session's caller.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{self, error_page, notice, page, when};
use super::session::Console;
use crate::http::admin::auth::Acting;
use crate::http::admin::pull::{self, PullNow};
use crate::http::state::AppState;

/// The Sync tab's section for a pull connector; empty for a push connector.
pub async fn section(state: &AppState, console: &Console, connector: &str) -> Markup {
    let runs = match pull::pull_runs(
        State(state.clone()),
        console.caller.clone(),
        Path(connector.to_owned()),
    )
    .await
    {
        Ok(Json(r)) if r.pull => r,
        Ok(_) => return html! {},
        Err(e) => return notice("error", &e.to_string()),
    };
    let form = |mode: &str, label: &str, class: &str| {
        if !console.can_act() {
            return html! {};
        }
        html! {
            form.inline method="post" action=(format!("/connectors/{connector}/pull")) {
                input type="hidden" name="csrf" value=(console.csrf);
                input type="hidden" name="mode" value=(mode);
                button class=(class) type="submit" { (label) }
            }
        }
    };
    html! {
        h2 { "Pull runs (" (runs.kind) ")" }
        dl.facts {
            dt { "Checkpoint" }
            dd {
                @if let Some(c) = &runs.checkpoint {
                    "written " (when(c["updated_at"].as_str()))
                    "; last full read " (when(c["full_at"].as_str()))
                } @else { "none yet: the next run reads the whole directory" }
            }
        }
        p {
            (form("incremental", "Pull now", "primary")) " "
            (form("full", "Full read", "")) " "
            (form("dry_run", "Dry run", ""))
        }
        @if runs.runs.is_empty() { p.muted { "No run yet (" code { "usersync pull --connector " (connector) } ")." } } @else {
            div.scroll { table {
                thead { tr {
                    th scope="col" { "Started" } th scope="col" { "By" } th scope="col" { "Mode" }
                    th scope="col" { "Status" } th scope="col" class="num" { "Read" }
                    th scope="col" class="num" { "Created" } th scope="col" class="num" { "Updated" }
                    th scope="col" class="num" { "Deleted" } th scope="col" { "Error" }
                } }
                tbody { @for r in &runs.runs { tr {
                    td { a href=(format!("/pull-runs/{}", r["id"].as_str().unwrap_or_default())) { (when(r["started_at"].as_str())) } }
                    td { (layout::value(&r["started_by"])) }
                    td { (layout::value(&r["mode"])) @if r["forced"] == true { " (forced)" } }
                    td { (layout::value(&r["status"])) }
                    td.num { (r["read"]) } td.num { (r["created"]) } td.num { (r["updated"]) } td.num { (r["deleted"]) }
                    td { (layout::value(&r["error"])) }
                } } }
            } }
        }
    }
}

/// The "Pull now" form.
#[derive(Debug, Deserialize)]
pub struct PullForm {
    /// The session's CSRF token.
    #[serde(default)]
    csrf: String,
    /// `incremental`, `full` or `dry_run`.
    #[serde(default)]
    mode: String,
}

/// `POST /connectors/{connector}/pull`: a run now. A real run goes back to the Sync tab
/// (with the new run on top, or running); a dry run shows what it would change.
pub async fn pull_now(
    State(state): State<AppState>,
    console: Console,
    Path(connector): Path<String>,
    Form(form): Form<PullForm>,
) -> Response {
    if let Some(r) = console.csrf_refusal(&form.csrf) {
        return r;
    }
    let acting =
        match Acting::check(&state, console.caller.clone(), "console: pull", &connector).await {
            Ok(a) => a,
            Err(e) => return error_page(&console, e),
        };
    let ask = PullNow {
        full: form.mode == "full",
        dry_run: form.mode == "dry_run",
        force: false,
    };
    let dry_run = ask.dry_run;
    let out = match pull::pull_now(
        State(state.clone()),
        acting,
        Path(connector.clone()),
        Some(Json(ask)),
    )
    .await
    {
        Ok((_, Json(out))) => out,
        Err(e) => return error_page(&console, e),
    };
    if !dry_run {
        return Redirect::to(&format!("/connectors/{connector}/sync")).into_response();
    }
    let report = out.report.unwrap_or_default();
    let body = html! {
        (notice("ok", "Dry run: nothing was written, not even the checkpoint."))
        dl.facts { (counts(&report)) }
        @if let Some(reason) = report["reason"].as_str() { (notice("error", reason)) }
        h2 { "Changes a run would make" }
        (changes(&connector, report["changes"].as_array().map(Vec::as_slice).unwrap_or_default()))
    };
    (
        StatusCode::OK,
        page(
            &console,
            &format!("Connector {connector}: pull dry run"),
            body,
        ),
    )
        .into_response()
}

/// `GET /pull-runs/{id}`: one run and the users it changed.
pub async fn run_page(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Response {
    let d = match pull::pull_run(State(state), console.caller.clone(), Path(id)).await {
        Ok(Json(d)) => d,
        Err(e) => return error_page(&console, e),
    };
    let r = &d.run;
    let connector = r["connector"].as_str().unwrap_or_default();
    let body = html! {
        dl.facts {
            dt { "Connector" } dd { a href=(format!("/connectors/{connector}/sync")) { (connector) } }
            dt { "Started" } dd { (when(r["started_at"].as_str())) " by " (layout::value(&r["started_by"])) }
            dt { "Ended" } dd { (when(r["ended_at"].as_str())) }
            dt { "Mode" } dd { (layout::value(&r["mode"])) @if r["forced"] == true { " (deletion guard overridden)" } }
            dt { "Status" } dd { (layout::value(&r["status"])) }
            dt { "Error" } dd { (layout::value(&r["error"])) }
            (counts(r))
        }
        h2 { "Users changed" }
        (changes(connector, &d.changes))
    };
    page(&console, "Pull run", body).into_response()
}

/// A run's counts, as items of a `dl.facts`.
fn counts(r: &Value) -> Markup {
    html! {
        dt { "Read" } dd { (r["read"]) }
        dt { "Created · updated · deleted" } dd { (r["created"]) " · " (r["updated"]) " · " (r["deleted"]) }
        dt { "Unchanged" } dd { (r["unchanged"]) }
    }
}

fn changes(connector: &str, changes: &[Value]) -> Markup {
    html! {
        @if changes.is_empty() { p.muted { "None." } } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Change" } th scope="col" { "User" } } }
                tbody { @for c in changes {
                    @let id = c["scim_id"].as_str().unwrap_or_default();
                    tr {
                        td { (layout::value(&c["change"])) }
                        td {
                            // A stored user links to their page; a deleted one, or one a dry
                            // run would create, shows the IdP's id.
                            @if let Some(n) = c["userName"].as_str() {
                                a href=(format!("/connectors/{connector}/users/{id}")) { (n) }
                            } @else { (id) }
                        }
                    }
                } }
            } }
        }
    }
}
