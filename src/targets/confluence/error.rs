//! Classifying Confluence answers and transport errors into [`TargetError`], in one place.
//!
//! Branch on status codes, never on message texts (they are not a contract,
//! docs/reference/confluence-api.md §1.2). The rules:
//!
//! | answer | class |
//! |---|---|
//! | any answer with `X-AUSERNAME: anonymous` although we sent credentials | `Unauthorized` (credentials ignored) |
//! | 401, 403 | `Unauthorized`; on admin calls the message names administrator rights and websudo |
//! | 404 with `Content-Type: text/html` | `Unsupported` (the path does not exist on this release, or `base_url` is wrong) |
//! | other 404 (JSON envelope, text, empty) | `NotFound` |
//! | 405 | `Unsupported` (the path exists for other methods only, e.g. `PUT /rest/api/admin/user/{username}` before 9.4, where `DELETE` exists) |
//! | 409 | `Conflict` |
//! | 429 | `RateLimited`, `Retry-After` parsed and clamped |
//! | 503 with `Retry-After` | `RateLimited` |
//! | 408, other 5xx | `Transient` |
//! | 402 | `Permanent` (no licence seat) |
//! | 3xx, 400, other 4xx | `Permanent` |
//!
//! Confluence's own error `message` is not copied into our explanation: it echoes usernames,
//! and explanations end up in logs (`docs/LOGGING.md`: no user names). It stays in the
//! truncated body, which is meant for attempt records.
//!
//! How an old release answers an unknown REST path (HTML 404? 405 on a known path?) is
//! **(assumed)**: the emulator answers an HTML 404, and JAX-RS answers 405 when a path
//! exists for another method. A plain-text 404 from a proxy reads as `NotFound`.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

pub use crate::targets::retry_after::{parse_retry_after, RetryAfter, RETRY_AFTER_CAP};
use crate::targets::{truncate_body, Call, Failure, TargetError, BODY_LIMIT};

/// Explanation of Confluence's anonymous fallback (docs/reference/confluence-api.md §1.2 \[obs\]).
pub(crate) const ANONYMOUS_FALLBACK: &str =
    "Confluence served the request as anonymous: the credentials were ignored (an invalid, \
     expired or revoked personal access token, or a wrong password); check the secret in \
     token_env / password_env";

/// Whether Confluence served the request as `anonymous` (the `X-AUSERNAME` header).
pub(crate) fn served_as_anonymous(headers: &HeaderMap) -> bool {
    headers
        .get("x-ausername")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("anonymous"))
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("text/html"))
}

/// Whether `call` needs administrator rights (admin resources, membership, JSON-RPC).
fn is_admin_call(call: Call) -> bool {
    call.template.starts_with("/rest/api/admin/")
        || call.template.contains("/group/{group}")
        || call.template.starts_with("/rpc/")
}

/// The error for an answer that arrived but was credentials-ignored or not 2xx.
pub(crate) fn classify(
    call: Call,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> TargetError {
    let code = status.as_u16();
    let failure = |message: String| Failure {
        call,
        status: Some(code),
        message,
        body: truncate_body(body, BODY_LIMIT),
    };
    if served_as_anonymous(headers) && (status.is_success() || code == 401 || code == 403) {
        return TargetError::Unauthorized(failure(ANONYMOUS_FALLBACK.to_owned()));
    }
    match code {
        401 | 403 => {
            let message = if is_admin_call(call) {
                format!(
                    "Confluence refused the call (HTTP {code}): the service account must be a \
                     Confluence administrator (a system administrator to delete users or to \
                     create and delete groups); if secure administrator sessions (websudo) \
                     are on, admin REST calls may be refused, especially with Basic auth \
                     (whether websudo applies to REST is unverified); a PAT of an \
                     administrator is the recommended credential"
                )
            } else {
                format!(
                    "Confluence refused the call (HTTP {code}): the service account may not \
                     read users and groups, or its credentials are not accepted"
                )
            };
            TargetError::Unauthorized(failure(message))
        }
        404 if is_html(headers) => TargetError::Unsupported(failure(format!(
            "Confluence has no such endpoint (HTML 404): this Confluence release does not \
             offer {call}, or base_url (including the context path) is wrong"
        ))),
        404 => TargetError::NotFound(failure("not found".to_owned())),
        405 => TargetError::Unsupported(failure(format!(
            "Confluence does not allow {call} (HTTP 405): this release does not offer it"
        ))),
        409 => TargetError::Conflict(failure("already exists".to_owned())),
        429 => {
            let retry = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now));
            rate_limited(
                failure,
                retry,
                headers,
                "Confluence rate limiting (HTTP 429)",
            )
        }
        503 => {
            let retry = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now));
            match retry {
                Some(_) => rate_limited(failure, retry, headers, "Confluence is unavailable"),
                None => TargetError::Transient(failure(
                    "Confluence is unavailable (HTTP 503); retry with backoff".to_owned(),
                )),
            }
        }
        402 => TargetError::Permanent(failure(
            "Confluence has no licence seat left (HTTP 402): free seats (disable unused \
             accounts) or extend the licence"
                .to_owned(),
        )),
        400 => TargetError::Permanent(failure(
            "Confluence rejected the request (HTTP 400); its reason is in the response body"
                .to_owned(),
        )),
        408 => TargetError::Transient(failure(
            "Confluence timed out reading the request (HTTP 408)".to_owned(),
        )),
        500..=599 => TargetError::Transient(failure(format!(
            "Confluence failed (HTTP {code}); retry with backoff"
        ))),
        300..=399 => TargetError::Permanent(failure(format!(
            "Confluence redirected the call (HTTP {code}); check base_url (scheme, host, \
             context path) and whether an SSO proxy intercepts REST calls"
        ))),
        _ => TargetError::Permanent(failure(format!("unexpected answer (HTTP {code})"))),
    }
}

fn rate_limited(
    failure: impl Fn(String) -> Failure,
    retry: Option<RetryAfter>,
    headers: &HeaderMap,
    what: &str,
) -> TargetError {
    let blocked = headers
        .get("x-ratelimit-limit")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0");
    let mut message = match retry {
        Some(r) if r.clamped => format!(
            "{what}; Retry-After was absurdly long and is clamped to {} s",
            RETRY_AFTER_CAP.as_secs()
        ),
        Some(r) => format!("{what}; retry after {} s", r.delay.as_secs()),
        None => format!("{what}; no Retry-After, retry with backoff"),
    };
    if blocked {
        message.push_str(
            " (X-RateLimit-Limit is 0: Confluence's rate limiting is set to \"block all \
             requests\"; exempt the service account or change the mode)",
        );
    }
    TargetError::RateLimited {
        retry_after: retry.map(|r| r.delay),
        failure: failure(message),
    }
}

/// The error for a call that got no (complete) answer. The URL is left out of the text: it
/// holds usernames.
pub(crate) fn transport(call: Call, error: &reqwest::Error, timeout: Duration) -> TargetError {
    let chain = cause_chain(error);
    let failure = |message: String| Failure {
        call,
        status: None,
        message,
        body: None,
    };
    if error.is_timeout() {
        return TargetError::Transient(failure(format!(
            "no answer within the timeout ({} ms): {chain}",
            timeout.as_millis()
        )));
    }
    if error.is_builder() {
        return TargetError::Permanent(failure(format!(
            "the request could not be built (check base_url): {chain}"
        )));
    }
    if error.is_connect() {
        return TargetError::Transient(failure(format!("could not connect: {chain}")));
    }
    TargetError::Transient(failure(format!("connection failed: {chain}")))
}

/// The error and its causes, `: `-separated, without URLs.
fn cause_chain(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    let head = error.to_string();
    // reqwest's own text is "error sending request for url (…)": drop the URL part.
    parts.push(match head.split_once(" for url (") {
        Some((before, _)) => before.to_owned(),
        None => head,
    });
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    const CALL: Call = Call::new("POST", "/rest/api/admin/user");
    const READ: Call = Call::new("GET", "/rest/api/user");

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    fn classify_now(call: Call, code: u16, h: &HeaderMap, body: &[u8]) -> TargetError {
        classify(
            call,
            StatusCode::from_u16(code).expect("a status"),
            h,
            body,
            SystemTime::now(),
        )
    }

    #[test]
    fn statuses_map_to_their_classes() {
        let json = headers(&[("content-type", "application/json")]);
        let html = headers(&[("content-type", "text/html;charset=UTF-8")]);
        let class = |code: u16, h: &HeaderMap| classify_now(CALL, code, h, b"").class();
        use crate::targets::ErrorClass as C;
        assert_eq!(class(401, &json), C::Unauthorized);
        assert_eq!(class(403, &json), C::Unauthorized);
        assert_eq!(class(404, &json), C::NotFound);
        assert_eq!(class(404, &HeaderMap::new()), C::NotFound);
        assert_eq!(class(404, &html), C::Unsupported);
        assert_eq!(class(405, &html), C::Unsupported);
        assert_eq!(class(409, &json), C::Conflict);
        assert_eq!(class(429, &json), C::RateLimited);
        assert_eq!(class(503, &json), C::Transient);
        assert_eq!(
            class(503, &headers(&[("retry-after", "3")])),
            C::RateLimited
        );
        assert_eq!(class(500, &json), C::Transient);
        assert_eq!(class(502, &html), C::Transient);
        assert_eq!(class(408, &json), C::Transient);
        assert_eq!(class(400, &json), C::Permanent);
        assert_eq!(class(402, &json), C::Permanent);
        assert_eq!(class(415, &json), C::Permanent);
        assert_eq!(class(302, &html), C::Permanent);
    }

    #[test]
    fn an_anonymous_answer_to_a_credentialed_call_is_unauthorized_even_when_successful() {
        let h = headers(&[("x-ausername", "anonymous")]);
        let e = classify_now(READ, 200, &h, b"{}");
        assert!(matches!(e, TargetError::Unauthorized(_)), "{e}");
        assert!(e.to_string().contains("credentials were ignored"), "{e}");
    }

    #[test]
    fn admin_refusals_mention_administrator_rights_and_websudo() {
        let e = classify_now(CALL, 403, &HeaderMap::new(), b"");
        let text = e.to_string();
        assert!(
            text.contains("administrator") && text.contains("websudo"),
            "{text}"
        );
        let read = classify_now(READ, 401, &HeaderMap::new(), b"").to_string();
        assert!(!read.contains("websudo"), "{read}");
    }

    #[test]
    fn confluence_messages_stay_in_the_body_and_out_of_the_text() {
        let body = br#"{"statusCode":404,"message":"No user found with username: ghost.user"}"#;
        let e = classify_now(CALL, 404, &HeaderMap::new(), body);
        assert!(!e.to_string().contains("ghost.user"), "{e}");
        assert_eq!(e.failure().body.as_deref(), std::str::from_utf8(body).ok());
        let plain = classify_now(CALL, 400, &HeaderMap::new(), b"Bad things\n");
        assert_eq!(plain.failure().body.as_deref(), Some("Bad things\n"));
        let big = vec![b'x'; 10 * 1024];
        let cut = classify_now(CALL, 400, &HeaderMap::new(), &big);
        let kept = cut.failure().body.clone().expect("a body");
        assert!(kept.len() < BODY_LIMIT + 64, "{}", kept.len());
        assert!(kept.ends_with("[truncated, 10240 bytes in total]"));
    }

    #[test]
    fn block_all_is_recognised_and_explained() {
        let h = headers(&[
            ("retry-after", "9223372036854775807"),
            ("x-ratelimit-limit", "0"),
        ]);
        let e = classify_now(READ, 429, &h, b"");
        assert_eq!(e.retry_after(), Some(RETRY_AFTER_CAP));
        let text = e.to_string();
        assert!(
            text.contains("clamped") && text.contains("block all"),
            "{text}"
        );
    }
}
