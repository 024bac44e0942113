//! The audit log page: the operations API's `/audit`, with filters and paging.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::html;

use super::layout::{error_page, page, value, when};
use super::session::Console;
use crate::http::admin::audit::{self, AuditParams};
use crate::http::state::AppState;

/// `GET /audit`.
pub async fn log(
    State(state): State<AppState>,
    console: Console,
    Query(p): Query<AuditParams>,
) -> Response {
    let blank = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let params = AuditParams {
        connector: blank(&p.connector),
        actor: blank(&p.actor),
        resource_kind: blank(&p.resource_kind),
        resource_id: blank(&p.resource_id),
        since: blank(&p.since),
        until: blank(&p.until),
        before_seq: blank(&p.before_seq),
        limit: Some("100".to_owned()),
    };
    let found =
        match audit::audit_log(State(state), console.caller.clone(), Query(params.clone())).await {
            Ok(Json(a)) => a,
            Err(e) => return error_page(&console, e),
        };
    let next = found.next_before_seq.map(|seq| {
        let mut q: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("connector", &params.connector),
            ("actor", &params.actor),
            ("resource_id", &params.resource_id),
            ("since", &params.since),
            ("until", &params.until),
        ] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        q.push(("before_seq", seq.to_string()));
        format!(
            "/audit?{}",
            serde_urlencoded::to_string(&q).unwrap_or_default()
        )
    });
    let field = |name: &str, label: &str, v: &Option<String>, hint: &str| {
        html! {
            div.field {
                label for=(name) { (label) }
                input id=(name) name=(name) value=(v.clone().unwrap_or_default()) placeholder=(hint);
            }
        }
    };
    let body = html! {
        form.filters method="get" action="/audit" {
            (field("connector", "Connector", &params.connector, "entra"))
            (field("actor", "Actor", &params.actor, "token name or credential"))
            (field("resource_id", "Resource id", &params.resource_id, "SCIM id"))
            (field("since", "Since", &params.since, "2026-12-01T00:00:00Z"))
            (field("until", "Until", &params.until, "RFC 3339"))
            button type="submit" { "Filter" }
        }
        div.scroll { table #audit {
            thead { tr {
                th scope="col" { "When" } th scope="col" { "Connector" } th scope="col" { "Actor" }
                th scope="col" { "Operation" } th scope="col" { "Resource" } th scope="col" { "Outcome" } th scope="col" { "Changed" }
            } }
            tbody { @for r in &found.items { tr {
                td { (when(r["at"].as_str())) }
                td { (value(&r["connector"])) }
                td { code { (value(&r["actor"])) } " " span.muted { (r["actor_kind"].as_str().unwrap_or_default()) } }
                td { (value(&r["operation"])) }
                td {
                    @match (r["resource_kind"].as_str(), r["resource_id"].as_str(), r["connector"].as_str()) {
                        (Some("User"), Some(id), Some(c)) if !c.is_empty() => { a href=(format!("/connectors/{c}/users/{id}")) { "User " (id) } }
                        (k, id, _) => { (k.unwrap_or_default()) " " (id.unwrap_or_default()) }
                    }
                }
                td { (value(&r["outcome"])) }
                td { @for c in r["changes"].as_array().into_iter().flatten() { code { (c["path"].as_str().unwrap_or_default()) } " " } }
            } } }
        } }
        @if let Some(href) = next { nav.pager { a href=(href) rel="next" { "Older →" } } }
    };
    page(&console, "Audit log", body).into_response()
}
