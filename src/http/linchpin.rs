//! `GET /linchpin/{connector}/profiles.xml?key=…`: the feed Linchpin's XML data source pulls
//! (docs/reference/confluence-api.md §2.2), streamed from the store page by page.
//!
//! Outside `/scim/v2` on purpose: the caller is Linchpin, not an IdP, so there is no SCIM
//! authentication and errors are plain text. An unknown connector, a connector without a
//! feed and a missing or wrong key all get the same `404`. Linchpin can only be given a URL, so the
//! connector's feed key travels in the query string and is compared in constant time. A URL
//! ends up in access logs and proxies: serve this route on an internal listener or behind a
//! reverse proxy that only Confluence reaches (docs/mapping.md). usersync itself never logs
//! query strings.
//!
//! `ETag` (over the user and link counts, the latest change of a user or creation of a link,
//! and the mapping's fingerprint) and `Last-Modified` let the scheduled pull end in `304` when
//! nothing changed.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, Stream, StreamExt};
use sha2::{Digest, Sha256};

use super::state::AppState;
use crate::metrics::FeedTimer;
use crate::profiles::feed;

/// The feed route.
pub fn router() -> Router<AppState> {
    Router::new().route("/linchpin/{connector}/profiles.xml", get(get_feed))
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// The `key` parameter of a query string.
fn key_param(query: Option<&str>) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs.into_iter().find(|(k, _)| k == "key").map(|(_, v)| v)
}

/// Whether an `If-None-Match` header names `etag` (weak comparison, RFC 9110 §13.1.2).
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

fn http_date(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// `feed`, recorded in the metrics when its body ends: `complete` after its last chunk,
/// `error` after a failed one, `aborted` when Linchpin hung up first (docs/metrics.md).
fn timed(
    feed: impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static,
    timer: FeedTimer,
) -> impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    stream::unfold(
        (Box::pin(feed), timer),
        |(mut feed, mut timer)| async move {
            let item = match feed.next().await {
                Some(item) => item,
                None => {
                    timer.complete();
                    return None;
                }
            };
            if item.is_err() {
                timer.failed();
            }
            Some((item, (feed, timer)))
        },
    )
}

/// Serves the feed. (Not `#[instrument]`ed: the connector is recorded on the request span.)
async fn get_feed(
    State(state): State<AppState>,
    Path(connector): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    tracing::Span::current().record("connector", connector.as_str());
    let targets = state.runtime.connector(&connector).profile_targets.clone();
    // No such connector, a connector without a feed, and a missing or wrong key all get one
    // answer, byte for byte: the URL reveals neither which connectors exist nor which have
    // a feed. The log says which it was.
    let refused = if !targets.has_feed() {
        Some("no feed")
    } else if !key_param(query.as_deref()).is_some_and(|k| targets.feed_key_matches(&k)) {
        Some("feed key")
    } else {
        None
    };
    if let Some(why) = refused {
        tracing::info!(auth.failure = why, "Linchpin feed refused");
        return plain(
            StatusCode::NOT_FOUND,
            "no Linchpin feed at this URL for this key\n",
        );
    }
    let stamp = match state.store.feed_stamp(&connector).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error.message = %crate::errors::error_chain(&e), "cannot read the feed stamp");
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unavailable\n",
            );
        }
    };
    let etag = {
        let text = format!(
            "{}:{}:{}:{}",
            stamp.users,
            stamp.links,
            stamp.changed_ms,
            targets.feed_fingerprint()
        );
        let digest = Sha256::digest(text.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    };
    let last_modified = http_date(stamp.changed());
    let mut response = if none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = Body::from_stream(timed(
            feed::stream(state.store.clone(), connector.clone(), targets.clone()),
            state.metrics.feed_started(&connector),
        ));
        let mut r = Response::new(body);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        );
        r
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&last_modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_read_from_the_query_and_etags_compare_weakly() {
        assert_eq!(key_param(Some("a=1&key=s%2Bt")).as_deref(), Some("s+t"));
        assert_eq!(key_param(Some("a=1")), None);
        assert_eq!(key_param(None), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(none_match(&h, "\"abc\""));
        assert!(!none_match(&h, "\"abd\""));
        assert_eq!(
            http_date(time::macros::datetime!(1994-11-06 08:49:37 UTC)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
