//! JSON shapes of Confluence answers: user and group objects and paginated lists
//! (docs/reference/confluence-api.md §1.3).

use serde_json::{json, Value};

use super::config::StatusStyle;
use super::extract::Links;
use super::model::UserRecord;

/// Profile picture of users without an uploaded one.
fn default_picture(path: &str) -> Value {
    json!({"path": path, "width": 48, "height": 48, "isDefault": true})
}

/// `status` literal under `expand=status` **(assumed; \[gap\] in docs/reference/confluence-api.md
/// §1.3)**.
pub(crate) fn status_literal(active: bool, style: StatusStyle) -> &'static str {
    match (style, active) {
        (StatusStyle::Current, true) => "current",
        (StatusStyle::Current, false) => "deactivated",
        (StatusStyle::Active, true) => "Active",
        (StatusStyle::Active, false) => "Deactivated",
    }
}

/// Whether `expand` asks for `status`.
pub(crate) fn expands_status(expand: Option<&str>) -> bool {
    expand.is_some_and(|e| e.split(',').any(|part| part.trim() == "status"))
}

/// A known user (`type: known`), optionally with `status`.
pub(crate) fn user_json(user: &UserRecord, links: &Links, status: Option<StatusStyle>) -> Value {
    let mut value = json!({
        "type": "known",
        "username": user.username,
        "userKey": user.user_key,
        "profilePicture": default_picture("/images/icons/profilepics/default.svg"),
        "displayName": user.full_name,
        "_links": {
            "base": links.base,
            "context": links.context,
            "self": format!("{}/rest/api/user?key={}", links.base, user.user_key),
        },
        "_expandable": {"status": ""},
    });
    if let (Some(style), Some(obj)) = (status, value.as_object_mut()) {
        obj.insert(
            "status".to_owned(),
            json!(status_literal(user.active, style)),
        );
        obj.insert("_expandable".to_owned(), json!({}));
    }
    value
}

/// `GET /rest/api/user/current` for an anonymous caller.
pub(crate) fn anonymous_json(links: &Links) -> Value {
    json!({
        "type": "anonymous",
        "profilePicture": default_picture("/images/icons/profilepics/anonymous.svg"),
        "displayName": "Anonymous",
        "_links": {
            "base": links.base,
            "context": links.context,
            "self": format!("{}/rest/api/user/anonymous", links.base),
        },
    })
}

/// A group object.
pub(crate) fn group_json(name: &str, links: &Links) -> Value {
    json!({
        "type": "group",
        "name": name,
        "_links": {"self": format!("{}/rest/api/group/{}", links.base, encode(name))},
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Default page size of user, group and membership lists (the 8.x reference says 100 in one
/// place and 200 in another; the emulator uses 200).
pub(crate) const DEFAULT_PAGE_LIMIT: usize = 200;

/// Where a page starts and how long it is, after defaults and the `max_page_limit` cap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub start: usize,
    pub limit: usize,
}

impl Window {
    /// `limit` defaults to `default`; 0 or more than `max` is capped to `max` **(assumed)**.
    pub fn new(start: Option<usize>, limit: Option<usize>, default: usize, max: u32) -> Self {
        let max = usize::try_from(max.max(1)).unwrap_or(usize::MAX);
        let limit = match limit {
            Some(0) | None => default.min(max),
            Some(n) => n.min(max),
        };
        Self {
            start: start.unwrap_or(0),
            limit,
        }
    }
}

/// A page `{results, start, limit, size, _links}` of `items`, with `_links.next` when more
/// follow. `path` is relative to the base (no context path), `query` the parameters to
/// repeat in `next`.
pub(crate) fn page<T>(
    items: &[T],
    window: Window,
    links: &Links,
    path: &str,
    query: &[(&str, &str)],
    render: impl Fn(&T) -> Value,
) -> Value {
    let shown: Vec<&T> = items.iter().skip(window.start).take(window.limit).collect();
    page_of(&shown, items.len(), window, links, path, query, |t| {
        render(t)
    })
}

/// [`page`] when the caller has already cut the window out of `total` items (large lists:
/// only the page's entries are looked up and rendered).
pub(crate) fn page_of<T>(
    shown: &[T],
    total: usize,
    window: Window,
    links: &Links,
    path: &str,
    query: &[(&str, &str)],
    render: impl Fn(&T) -> Value,
) -> Value {
    let results: Vec<Value> = shown.iter().map(render).collect();
    let mut repeated: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    let self_query = if repeated.is_empty() {
        String::new()
    } else {
        format!("?{}", repeated.join("&"))
    };
    let mut page_links = json!({
        "base": links.base,
        "context": links.context,
        "self": format!("{}{path}{self_query}", links.base),
    });
    let next_start = window.start.saturating_add(window.limit);
    if next_start < total {
        repeated.push(format!("limit={}", window.limit));
        repeated.push(format!("start={next_start}"));
        if let Some(obj) = page_links.as_object_mut() {
            obj.insert(
                "next".to_owned(),
                json!(format!("{path}?{}", repeated.join("&"))),
            );
        }
    }
    json!({
        "results": results,
        "start": window.start,
        "limit": window.limit,
        "size": results.len(),
        "_links": page_links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links {
        Links {
            base: "http://wiki/confluence".to_owned(),
            context: "/confluence".to_owned(),
        }
    }

    #[test]
    fn a_page_links_to_the_next_one_while_items_remain() {
        let items: Vec<u32> = (0..5).collect();
        let page = page(
            &items,
            Window::new(Some(2), Some(2), 200, 200),
            &links(),
            "/rest/api/group",
            &[],
            |i| json!(i),
        );
        assert_eq!(page["results"], json!([2, 3]));
        assert_eq!(page["size"], 2);
        assert_eq!(page["_links"]["next"], "/rest/api/group?limit=2&start=4");
    }

    #[test]
    fn the_last_page_has_no_next_link() {
        let items: Vec<u32> = (0..3).collect();
        let page = page(
            &items,
            Window::new(None, Some(10), 200, 200),
            &links(),
            "/rest/api/group",
            &[],
            |i| json!(i),
        );
        assert!(page["_links"].get("next").is_none());
        assert_eq!(page["size"], 3);
    }

    #[test]
    fn limits_above_the_cap_are_capped() {
        let w = Window::new(None, Some(5000), 200, 200);
        assert_eq!(w.limit, 200);
    }
}
