//! The HTML shell of a console page that needs no session: the `<head>` every page shares,
//! and the bare page of sign-in and refusals. Apart from `layout.rs` because the session
//! code (`session.rs`) renders those pages itself, while `layout.rs` needs the session
//! for the signed-in page: each depends on this file, not on the other in a circle.

use axum::response::Html;
use maud::{html, Markup, DOCTYPE};

/// A page without a session (sign-in, refusals).
pub fn bare(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body { main #main.narrow { (body) } }
            }
        }
        .into_string(),
    )
}

/// The `<head>` of every console page: the title and the stylesheet.
pub fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · usersync" }
            link rel="stylesheet" href="/static/console.css";
        }
    }
}
