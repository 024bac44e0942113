//! The HTTP side every IdP client shares: an OAuth access token obtained on first use,
//! renewed shortly before it expires and once more when the API answers 401 (a token revoked
//! or expired early), or a static API token (Okta's `SSWS`); `429` and `503` waited out for
//! their `Retry-After` (bounded by `pull.max_retry_wait`); for IdPs that announce their quota
//! in headers (Okta's `X-Rate-Limit-*`, OneLogin's `X-RateLimit-*`), a wait until the window
//! resets once the remaining count reaches 0; every other failure ends the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{header, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;

use super::types::PullError;

/// How many throttled answers in a row one request waits out before the run fails.
const MAX_WAITS: u32 = 8;

/// A token is renewed this long before the IdP says it expires.
const RENEW_EARLY: Duration = Duration::from_secs(60);

/// Builds the form of a token request (a JWT assertion must be made afresh each time).
pub type TokenForm = Arc<dyn Fn() -> Result<Vec<(String, String)>, PullError> + Send + Sync>;

/// How requests are authorised.
enum Auth {
    /// OAuth 2.0: a token from `token_url`, sent as `Bearer`.
    OAuth { token_url: String, form: TokenForm },
    /// A fixed `Authorization` header value (Okta's `SSWS <token>`): nothing to renew, so a
    /// 401 ends the run.
    Static(String),
}

/// Names of the headers in which an IdP announces its request quota.
#[derive(Debug, Clone, Copy)]
pub struct QuotaHeaders {
    /// Requests left in the current window.
    pub remaining: &'static str,
    /// When the window resets.
    pub reset: &'static str,
    /// `reset` is a UTC epoch time in seconds (Okta); else seconds from now (OneLogin,
    /// assumed).
    pub reset_is_epoch: bool,
}

/// An authenticated JSON API.
pub struct Api {
    http: reqwest::Client,
    /// Names the IdP in errors and logs.
    what: &'static str,
    auth: Auth,
    token: Mutex<Option<(String, Instant)>>,
    max_wait: Duration,
    quota: Option<QuotaHeaders>,
    /// The quota ran out: no request before this instant.
    not_before: Mutex<Option<Instant>>,
}

/// What a GET found.
#[derive(Debug)]
pub enum Got {
    /// 200 with this body.
    Json(Value),
    /// 404.
    NotFound,
}

impl Api {
    /// An API reached with tokens from `token_url`.
    pub fn new(
        what: &'static str,
        token_url: String,
        form: TokenForm,
        max_wait: Duration,
    ) -> Result<Api, PullError> {
        Api::build(what, Auth::OAuth { token_url, form }, max_wait)
    }

    /// An API reached with a fixed `Authorization` header value.
    pub fn with_static(
        what: &'static str,
        authorization: String,
        max_wait: Duration,
    ) -> Result<Api, PullError> {
        Api::build(what, Auth::Static(authorization), max_wait)
    }

    fn build(what: &'static str, auth: Auth, max_wait: Duration) -> Result<Api, PullError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| PullError::Transport {
                what,
                detail: e.to_string(),
            })?;
        Ok(Api {
            http,
            what,
            auth,
            token: Mutex::new(None),
            max_wait,
            quota: None,
            not_before: Mutex::new(None),
        })
    }

    /// Waits for the quota window to reset whenever these headers say nothing is left.
    pub fn with_quota(mut self, quota: QuotaHeaders) -> Api {
        self.quota = Some(quota);
        self
    }

    /// The `Authorization` header value.
    async fn authorization(&self) -> Result<String, PullError> {
        match &self.auth {
            Auth::Static(v) => Ok(v.clone()),
            Auth::OAuth { token_url, form } => {
                Ok(format!("Bearer {}", self.token(token_url, form).await?))
            }
        }
    }

    /// A valid access token: the cached one, or a new one.
    async fn token(&self, token_url: &str, form: &TokenForm) -> Result<String, PullError> {
        let mut slot = self.token.lock().await;
        if let Some((t, until)) = slot.as_ref() {
            if Instant::now() < *until {
                return Ok(t.clone());
            }
        }
        let form = form()?;
        let body = serde_urlencoded::to_string(&form).map_err(|e| PullError::Protocol {
            what: self.what,
            detail: e.to_string(),
        })?;
        let resp = self
            .http
            .post(token_url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        let json: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            // The error code and description name no secret (RFC 6749 §5.2).
            let detail = format!(
                "{} {}",
                json["error"].as_str().unwrap_or(""),
                json["error_description"].as_str().unwrap_or("")
            );
            return Err(PullError::Token {
                what: self.what,
                status: status.as_u16(),
                detail: detail.trim().to_owned(),
            });
        }
        let token = json["access_token"]
            .as_str()
            .ok_or_else(|| PullError::Protocol {
                what: self.what,
                detail: "the token answer has no access_token".to_owned(),
            })?
            .to_owned();
        let ttl = Duration::from_secs(json["expires_in"].as_u64().unwrap_or(3600));
        *slot = Some((
            token.clone(),
            Instant::now() + ttl.saturating_sub(RENEW_EARLY),
        ));
        tracing::debug!(idp = self.what, "access token obtained");
        Ok(token)
    }

    fn transport(&self, e: reqwest::Error) -> PullError {
        PullError::Transport {
            what: self.what,
            detail: e.without_url().to_string(),
        }
    }

    /// GETs `url` with `headers`: the JSON body, or [`Got::NotFound`].
    pub async fn get(&self, url: &str, headers: &[(&str, String)]) -> Result<Got, PullError> {
        Ok(self.get_page(url, headers).await?.0)
    }

    /// GETs `url` with `headers`: the JSON body (or [`Got::NotFound`]) and the response
    /// headers, for APIs that page through headers (Okta's `Link`, OneLogin's `After-Cursor`).
    pub async fn get_page(
        &self,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<(Got, header::HeaderMap), PullError> {
        let mut renewed = false;
        let mut waits = 0;
        loop {
            self.wait_for_quota().await;
            let authorization = self.authorization().await?;
            let mut req = self
                .http
                .get(url)
                .header(header::AUTHORIZATION, authorization);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            let resp = req.send().await.map_err(|e| self.transport(e))?;
            let status = resp.status();
            let quota_wait = self.quota_wait(resp.headers());
            match status {
                s if s.is_success() => {
                    if let Some(wait) = quota_wait {
                        self.pause(wait).await?;
                    }
                    let h = resp.headers().clone();
                    let body = resp.json().await.map_err(|e| PullError::Protocol {
                        what: self.what,
                        detail: format!("the answer is not JSON: {}", e.without_url()),
                    })?;
                    return Ok((Got::Json(body), h));
                }
                StatusCode::NOT_FOUND => return Ok((Got::NotFound, resp.headers().clone())),
                StatusCode::UNAUTHORIZED if !renewed && matches!(self.auth, Auth::OAuth { .. }) => {
                    tracing::info!(
                        idp = self.what,
                        "the API refused the access token; renewing it"
                    );
                    *self.token.lock().await = None;
                    renewed = true;
                }
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    if waits < MAX_WAITS =>
                {
                    // Okta answers 429 with its reset time rather than `Retry-After`
                    // (docs/pull.md, "Throttling and tokens").
                    let wait = retry_after(resp.headers())
                        .or(quota_wait)
                        .unwrap_or(Duration::from_secs(1 << waits.min(5)));
                    if wait > self.max_wait {
                        return Err(PullError::WaitTooLong {
                            what: self.what,
                            wait,
                        });
                    }
                    waits += 1;
                    tracing::info!(
                        idp = self.what,
                        http.status = status.as_u16(),
                        wait_ms = wait.as_millis() as u64,
                        "throttled; waiting as asked"
                    );
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    return Err(PullError::Http {
                        what: self.what,
                        status: status.as_u16(),
                        code: error_code(&body),
                    });
                }
            }
        }
    }

    /// How long to wait when the quota headers say nothing is left (None: something is).
    fn quota_wait(&self, h: &header::HeaderMap) -> Option<Duration> {
        let q = self.quota?;
        let num = |name: &str| -> Option<i64> { h.get(name)?.to_str().ok()?.trim().parse().ok() };
        if num(q.remaining)? > 0 {
            return None;
        }
        let reset = num(q.reset)?;
        let secs = if q.reset_is_epoch {
            reset - time::OffsetDateTime::now_utc().unix_timestamp()
        } else {
            reset
        };
        // At least a second: an epoch reset a little in the past (clock skew) still means
        // the window is spent now.
        Some(Duration::from_secs(secs.max(1) as u64))
    }

    /// Holds every later request until `wait` has passed; longer than `max_retry_wait`
    /// fails the run, as a long `Retry-After` does.
    async fn pause(&self, wait: Duration) -> Result<(), PullError> {
        if wait > self.max_wait {
            return Err(PullError::WaitTooLong {
                what: self.what,
                wait,
            });
        }
        tracing::info!(
            idp = self.what,
            wait_ms = wait.as_millis() as u64,
            "request quota spent; waiting for the window to reset"
        );
        *self.not_before.lock().await = Some(Instant::now() + wait);
        Ok(())
    }

    async fn wait_for_quota(&self) {
        let until = *self.not_before.lock().await;
        if let Some(until) = until {
            tokio::time::sleep_until(until.into()).await;
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the IdPs read here).
fn retry_after(h: &header::HeaderMap) -> Option<Duration> {
    h.get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The error code of an API error body: Graph's `error.code`, Google's `error.status`,
/// Okta's `errorCode`, OneLogin's `name` (assumed).
fn error_code(body: &Value) -> String {
    let e = &body["error"];
    e["code"]
        .as_str()
        .or_else(|| e["status"].as_str())
        .or_else(|| e.as_str())
        .or_else(|| body["errorCode"].as_str())
        .or_else(|| body["name"].as_str())
        .unwrap_or_default()
        .to_owned()
}
