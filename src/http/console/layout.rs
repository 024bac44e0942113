//! The console's page shell and the pieces every page uses: navigation, connector tabs,
//! action buttons (rendered only for the admin role, each a small form with the CSRF token),
//! and how API values are shown.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

use super::session::Console;
use super::shell::head;
use crate::http::admin::problem::AdminError;

/// A page for a signed-in operator.
pub fn page(console: &Console, title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/" { "usersync" }
                        nav aria-label="Main" {
                            a href="/" { "Connectors" }
                            a href="/audit" { "Audit log" }
                        }
                        div.who {
                            span { (console.caller.name) " · " (console.caller.role.as_str()) }
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(console.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                    main #main { h1 { (title) } (body) }
                }
            }
        }
        .into_string(),
    )
}

/// The tabs of a connector's pages.
pub fn tabs(connector: &str, current: &str) -> Markup {
    let tab = |slug: &str, label: &str| {
        let href = if slug.is_empty() {
            format!("/connectors/{connector}")
        } else {
            format!("/connectors/{connector}/{slug}")
        };
        html! {
            a href=(href) aria-current=[(slug == current).then_some("page")] { (label) }
        }
    };
    html! {
        nav.tabs aria-label="Connector" {
            (tab("", "Overview")) (tab("provisioning", "Provisioning"))
            (tab("sync", "Sync")) (tab("users", "Users"))
        }
    }
}

/// An action button: a form posting to `action` with the CSRF token; nothing for a viewer.
pub fn action(console: &Console, action: &str, label: &str, class: &str) -> Markup {
    if !console.can_act() {
        return html! {};
    }
    html! {
        form.inline method="post" action=(action) {
            input type="hidden" name="csrf" value=(console.csrf);
            button class=(class) type="submit" { (label) }
        }
    }
}

/// A notice at the top of a page (`ok` or `error`).
pub fn notice(kind: &str, text: &str) -> Markup {
    html! { p class=(format!("notice {kind}")) role="status" { (text) } }
}

/// An optional text, or a dash.
pub fn or_dash(v: Option<&str>) -> Markup {
    match v {
        Some(s) if !s.is_empty() => html! { (s) },
        _ => html! { span.muted { "—" } },
    }
}

/// A time as the API gives it (`2026-01-31T09:30:00.120Z`), shown without the fraction.
pub fn when(v: Option<&str>) -> Markup {
    match v {
        Some(t) => {
            let short = t.get(..19).unwrap_or(t).replace('T', " ");
            html! { time datetime=(t) { (short) } }
        }
        None => html! { span.muted { "—" } },
    }
}

/// A JSON value, compact; strings without quotes.
pub fn value(v: &Value) -> Markup {
    match v {
        Value::Null => html! { span.muted { "—" } },
        Value::String(s) => html! { (s) },
        Value::Bool(true) => html! { "yes" },
        Value::Bool(false) => html! { "no" },
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let list: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if list.is_empty() {
                html! { span.muted { "none" } }
            } else {
                html! { (list.join(", ")) }
            }
        }
        other => html! { code { (other.to_string()) } },
    }
}

/// A transform as written in the configuration, short: `lower`, `before(sep = "@")`.
pub fn transform(t: &Value) -> String {
    match t {
        Value::Object(o) => {
            let op = o.get("op").and_then(Value::as_str).unwrap_or("?");
            let args: Vec<String> = o
                .iter()
                .filter(|(k, _)| k.as_str() != "op")
                .map(|(k, v)| format!("{k} = {v}"))
                .collect();
            if args.is_empty() {
                op.to_owned()
            } else {
                format!("{op}({})", args.join(", "))
            }
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON document, pretty.
pub fn json_block(v: &Value) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre.json { (text) } }
}

/// An API error as a console page with the API's status: its detail for a refusal, a
/// pointer to the log for a server fault.
pub fn error_page(console: &Console, e: AdminError) -> Response {
    let detail = e.to_string();
    let status = e.into_response().status();
    let text = if status.is_server_error() {
        "Something failed on the server; its log has the cause.".to_owned()
    } else if status == StatusCode::FORBIDDEN {
        "Your token has the viewer role: only an admin token may do this.".to_owned()
    } else {
        detail
    };
    let title = status.canonical_reason().unwrap_or("Error");
    let body = html! { p { (text) } p { a href="/" { "Back to the connectors" } } };
    (status, page(console, title, body)).into_response()
}
