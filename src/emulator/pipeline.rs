//! The request pipeline around every Confluence/Linchpin route, in this order:
//!
//! 1. latency injection, then faults (outage, armed one-shots, failure ratio) — infrastructure
//!    fails before Confluence looks at the caller;
//! 2. authentication (`X-AUSERNAME`, `X-Seraph-LoginReason`; 401 for bad credentials when a
//!    knob says so);
//! 3. rate limiting per user (`X-RateLimit-*`, `Retry-After`, 429);
//! 4. the XSRF check **(assumed precise rule)**;
//! 5. the handler, then the optional swap of a JSON 401/404 body for `text/plain`;
//! 6. a [`CallRecord`] in the call log.
//!
//! Control calls (`/__emulator/...`) skip all of it and are not logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::auth::{self, AuthScheme, Authentication};
use super::calls::{redact_query, CallRecord};
use super::errors::{ApiError, ErrorText};
use super::extract::Identity;
use super::faults::{self, CallSite, Injected, OutageMode};
use super::ratelimit::{RateDecision, RateHeaders};
use super::render;
use super::server::ConnHandle;
use super::shared::Shared;

/// Prefix of the control API.
pub(crate) const CONTROL_PREFIX: &str = "/__emulator";

/// Header marking a placeholder response whose connection was (or should have been) reset.
const FAULT_HEADER: &str = "x-emulator-fault";

/// What the call log needs, gathered as the call goes through the pipeline.
struct Pending {
    seq: u64,
    time: String,
    method: String,
    path: String,
    query: Option<String>,
    route: Option<String>,
    user: Option<String>,
    auth: AuthScheme,
    fault: Option<String>,
    reset: bool,
    xsrf_no_check: bool,
    started: Instant,
}

/// The middleware (installed with `from_fn_with_state`).
pub(crate) async fn pipeline(
    State(sh): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if path == CONTROL_PREFIX || path.starts_with("/__emulator/") {
        return next.run(req).await;
    }
    let relative = strip_context(&sh.context_path, &path).to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| strip_context(&sh.context_path, m.as_str()).to_owned());
    let mut log = Pending {
        seq: sh.calls().next_seq(),
        time: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
        method: req.method().as_str().to_owned(),
        path,
        query: redact_query(req.uri().query()),
        route,
        user: None,
        auth: AuthScheme::None,
        fault: None,
        reset: false,
        xsrf_no_check: has_no_check(&req),
        started: Instant::now(),
    };
    let conn = req
        .extensions()
        .get::<ConnectInfo<ConnHandle>>()
        .map(|c| c.0.clone());
    let paging = page_params(req.uri().query());

    // 1. Latency and faults.
    let (delay, injected) = {
        let mut guard = sh.world();
        let world = &mut *guard;
        let call = CallSite {
            method: &log.method,
            path: &relative,
            template: log.route.as_deref(),
            page: paging.page(world.knobs.max_page_limit),
        };
        let delay = faults::latency(&world.knobs.latency, call);
        let injected = world.faults.take(
            call,
            Instant::now(),
            &world.knobs.error_ratio,
            &mut world.rng,
        );
        (delay, injected)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(injected) = injected {
        log.fault = Some(injected.label());
        let response = fault_response(injected, conn.as_ref(), &mut log);
        return finish(&sh, log, response);
    }

    // 2. Authentication.
    let authn = {
        let world = sh.world();
        auth::authenticate(req.headers(), &world.state, &world.knobs)
    };
    log.user = authn.caller.username().map(str::to_owned);
    log.auth = authn.scheme;
    if authn.reject {
        let response =
            ApiError::unauthorized("Basic or bearer authentication failed").into_response();
        let mut response = maybe_plain_text(&sh, response);
        identity_headers(&mut response, &authn);
        return finish(&sh, log, response);
    }

    // 3. Rate limiting.
    let rate = match authn.caller.username() {
        Some(name) => {
            let mut guard = sh.world();
            let world = &mut *guard;
            world
                .limiter
                .check(name, &world.knobs.rate_limit, Instant::now())
        }
        None => RateDecision::Unlimited,
    };
    if let RateDecision::Limited(headers) = rate {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded. Try again later.",
        )
        .into_response();
        headers.apply(response.headers_mut());
        identity_headers(&mut response, &authn);
        return finish(&sh, log, response);
    }

    // 4. XSRF.
    if xsrf_blocked(&req) {
        let mut response = ApiError::xsrf().into_response();
        identity_headers(&mut response, &authn);
        return finish(&sh, log, response);
    }

    // 5. The handler.
    req.extensions_mut().insert(Identity {
        caller: authn.caller.clone(),
        scheme: authn.scheme,
    });
    let mut response = next.run(req).await;
    response = maybe_plain_text(&sh, response);
    identity_headers(&mut response, &authn);
    if let RateDecision::Allowed(headers) = rate {
        RateHeaders::apply(&headers, response.headers_mut());
    }
    finish(&sh, log, response)
}

/// The path below the context path (`/confluence/rest/api/user` → `/rest/api/user`).
fn strip_context<'a>(context: &str, path: &'a str) -> &'a str {
    if context.is_empty() {
        return path;
    }
    match path.strip_prefix(context) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    }
}

/// `start` and `limit` of a call's query, for faults aimed at one page of a list.
#[derive(Debug, Clone, Copy, Default)]
struct PageParams {
    start: Option<usize>,
    limit: Option<usize>,
}

impl PageParams {
    /// The 1-based page these parameters ask for, with the lists' default limit and cap.
    fn page(self, max_page_limit: u32) -> u32 {
        let window = render::Window::new(
            self.start,
            self.limit,
            render::DEFAULT_PAGE_LIMIT,
            max_page_limit,
        );
        u32::try_from(window.start / window.limit.max(1) + 1).unwrap_or(u32::MAX)
    }
}

fn page_params(query: Option<&str>) -> PageParams {
    let mut params = PageParams::default();
    for pair in query.unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("start", v)) => params.start = v.parse().ok(),
            Some(("limit", v)) => params.limit = v.parse().ok(),
            _ => {}
        }
    }
    params
}

/// The answer for an injected fault.
fn fault_response(injected: Injected, conn: Option<&ConnHandle>, log: &mut Pending) -> Response {
    let (status, retry_after) = match injected {
        Injected::Status {
            status,
            retry_after_s,
        } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            retry_after_s,
        ),
        Injected::Outage {
            mode: OutageMode::ServiceUnavailable,
            retry_after_s,
        } => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/html;charset=UTF-8")],
                "<html><body><h1>503 Service Unavailable</h1></body></html>\n",
            )
                .into_response();
            if let Some(seconds) = retry_after_s {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            return response;
        }
        Injected::Reset
        | Injected::Outage {
            mode: OutageMode::Refuse,
            ..
        } => {
            log.reset = conn.is_some();
            if let Some(conn) = conn {
                conn.reset();
            }
            // Only seen through a bare router (no TCP connection to reset).
            let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            response.headers_mut().insert(
                HeaderName::from_static(FAULT_HEADER),
                HeaderValue::from_static("connection-reset"),
            );
            return response;
        }
    };
    let mut response = ApiError::new(status, "Injected fault").into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// `X-AUSERNAME` and `X-Seraph-LoginReason`.
fn identity_headers(response: &mut Response, authn: &Authentication) {
    let headers = response.headers_mut();
    if let Ok(name) = HeaderValue::from_bytes(authn.caller.header_name().as_bytes()) {
        headers.insert(HeaderName::from_static("x-ausername"), name);
    }
    if let Some(reason) = authn.login_reason {
        headers.insert(
            HeaderName::from_static("x-seraph-loginreason"),
            HeaderValue::from_static(reason.as_str()),
        );
    }
}

/// Mutating requests with a form-like content type need `X-Atlassian-Token: no-check`.
fn xsrf_blocked(req: &Request) -> bool {
    if !matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    ) {
        return false;
    }
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let form_like = media.is_some_and(|m| {
        matches!(
            m.as_str(),
            "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
        )
    });
    form_like && !has_no_check(req)
}

/// Whether the request carries `X-Atlassian-Token: no-check`.
fn has_no_check(req: &Request) -> bool {
    req.headers()
        .get("x-atlassian-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("no-check"))
}

/// With probability `plain_text_errors_ratio`, a JSON 401/404 becomes `text/plain`.
fn maybe_plain_text(sh: &Shared, response: Response) -> Response {
    let status = response.status();
    if status != StatusCode::UNAUTHORIZED && status != StatusCode::NOT_FOUND {
        return response;
    }
    let Some(ErrorText(message)) = response.extensions().get::<ErrorText>().cloned() else {
        return response;
    };
    let swap = {
        let mut world = sh.world();
        let ratio = world.knobs.plain_text_errors_ratio;
        ratio > 0.0 && world.rng.gen_bool(ratio.min(1.0))
    };
    if !swap {
        return response;
    }
    (
        status,
        [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
        message,
    )
        .into_response()
}

/// Records the call and logs one line (route template only: paths hold usernames).
fn finish(sh: &Shared, log: Pending, response: Response) -> Response {
    let duration = log.started.elapsed();
    let status = (!log.reset).then(|| response.status().as_u16());
    tracing::debug!(
        emulator.call.seq = log.seq,
        http.method = %log.method,
        http.route = log.route.as_deref().unwrap_or("unmatched"),
        http.status = status,
        duration_ms = millis(duration),
        fault = log.fault.as_deref(),
        "emulator call"
    );
    sh.calls().push(CallRecord {
        seq: log.seq,
        time: log.time,
        method: log.method,
        path: log.path,
        query: log.query,
        user: log.user,
        auth: log.auth,
        status,
        duration_ms: millis(duration),
        fault: log.fault,
        xsrf_no_check: log.xsrf_no_check,
    });
    response
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_path_is_stripped_only_at_a_segment_boundary() {
        assert_eq!(
            strip_context("/confluence", "/confluence/rest/api/user"),
            "/rest/api/user"
        );
        assert_eq!(
            strip_context("/confluence", "/confluencex/rest"),
            "/confluencex/rest"
        );
        assert_eq!(strip_context("", "/rest/api/user"), "/rest/api/user");
    }
}
