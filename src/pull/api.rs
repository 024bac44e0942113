//! The HTTP side every IdP client shares: an OAuth access token obtained on first use,
//! renewed shortly before it expires and once more when the API answers 401 (a token revoked
//! or expired early); `429` and `503` waited out for their `Retry-After` (bounded by
//! `pull.max_retry_wait`); every other failure ends the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{header, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;

use super::source::PullError;

/// How many throttled answers in a row one request waits out before the run fails.
const MAX_WAITS: u32 = 8;

/// A token is renewed this long before the IdP says it expires.
const RENEW_EARLY: Duration = Duration::from_secs(60);

/// Builds the form of a token request (a JWT assertion must be made afresh each time).
pub type TokenForm = Arc<dyn Fn() -> Result<Vec<(String, String)>, PullError> + Send + Sync>;

/// An authenticated JSON API.
pub struct Api {
    http: reqwest::Client,
    /// Names the IdP in errors and logs.
    what: &'static str,
    token_url: String,
    form: TokenForm,
    token: Mutex<Option<(String, Instant)>>,
    max_wait: Duration,
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
            token_url,
            form,
            token: Mutex::new(None),
            max_wait,
        })
    }

    /// A valid access token: the cached one, or a new one.
    async fn token(&self) -> Result<String, PullError> {
        let mut slot = self.token.lock().await;
        if let Some((t, until)) = slot.as_ref() {
            if Instant::now() < *until {
                return Ok(t.clone());
            }
        }
        let form = (self.form)()?;
        let body = serde_urlencoded::to_string(&form).map_err(|e| PullError::Protocol {
            what: self.what,
            detail: e.to_string(),
        })?;
        let resp = self
            .http
            .post(&self.token_url)
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
        let mut renewed = false;
        let mut waits = 0;
        loop {
            let token = self.token().await?;
            let mut req = self.http.get(url).bearer_auth(&token);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            let resp = req.send().await.map_err(|e| self.transport(e))?;
            let status = resp.status();
            match status {
                s if s.is_success() => {
                    return resp
                        .json()
                        .await
                        .map(Got::Json)
                        .map_err(|e| PullError::Protocol {
                            what: self.what,
                            detail: format!("the answer is not JSON: {}", e.without_url()),
                        });
                }
                StatusCode::NOT_FOUND => return Ok(Got::NotFound),
                StatusCode::UNAUTHORIZED if !renewed => {
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
                    let wait = retry_after(resp.headers())
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

/// The error code of an API error body: Graph's `error.code`, Google's `error.status`.
fn error_code(body: &Value) -> String {
    let e = &body["error"];
    e["code"]
        .as_str()
        .or_else(|| e["status"].as_str())
        .or_else(|| e.as_str())
        .unwrap_or_default()
        .to_owned()
}
