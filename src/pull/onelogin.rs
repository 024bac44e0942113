//! OneLogin: API v2's `GET /api/2/users`, paged by `limit` and the `After-Cursor` response
//! header (sent back as `cursor`), with a token from `POST /auth/oauth2/v2/token`
//! (client credentials, the id and secret in the form body, one of the two ways OneLogin
//! documents). An incremental read asks `updated_since=<checkpoint − overlap>`; the
//! checkpoint is the newest `updated_at` seen (OneLogin's clock). There is no listing of
//! deleted users, so deletions are found by a full read's comparison. The quota headers
//! `X-RateLimit-Remaining` / `X-RateLimit-Reset` (seconds until the reset) are assumed from
//! OneLogin's rate-limit API (docs/emulator.md, "OneLogin").

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::pull::{OneloginSettings, PullSettings};
use crate::config::Secrets;

use super::api::{Api, Got, QuotaHeaders};
use super::types::{Fetched, Progress, PullError, PullUser};

const WHAT: &str = "OneLogin";

/// The page ceiling asked for (assumed; a smaller page from OneLogin only means more pages).
const MAX_PAGE: u32 = 1000;

/// OneLogin's quota headers (assumed): the reset is in seconds from now.
pub const QUOTA: QuotaHeaders = QuotaHeaders {
    remaining: "x-ratelimit-remaining",
    reset: "x-ratelimit-reset",
    reset_is_epoch: false,
};

/// An API v2 client.
pub struct Onelogin {
    api: Api,
    base: String,
    page_size: u32,
    overlap: Duration,
}

impl Onelogin {
    /// A client with the secret read at load.
    pub fn new(
        o: &OneloginSettings,
        pull: &PullSettings,
        secrets: &Secrets,
    ) -> Result<Onelogin, PullError> {
        let secret = secrets
            .get(&o.client_secret_env)
            .ok_or_else(|| {
                PullError::Credentials(format!(
                    "onelogin.client_secret_env: {} is not set",
                    o.client_secret_env
                ))
            })?
            .to_owned();
        let client_id = o.client_id.clone();
        let form = Arc::new(move || {
            Ok(vec![
                ("grant_type".to_owned(), "client_credentials".to_owned()),
                ("client_id".to_owned(), client_id.clone()),
                ("client_secret".to_owned(), secret.clone()),
            ])
        });
        let base = o.base_url.trim_end_matches('/').to_owned();
        let token_url = format!("{base}/auth/oauth2/v2/token");
        Ok(Onelogin {
            api: Api::new(WHAT, token_url, form, pull.max_retry_wait.0)?.with_quota(QUOTA),
            base,
            page_size: pull.page_size.min(MAX_PAGE),
            overlap: o.overlap.0,
        })
    }

    /// Every user (`checkpoint` None), or the users updated since `checkpoint`.
    pub async fn fetch(
        &self,
        checkpoint: Option<&str>,
        progress: &Progress,
    ) -> Result<Fetched, PullError> {
        let since = checkpoint.and_then(|c| OffsetDateTime::parse(c, &Rfc3339).ok());
        let mut newest = since;
        let mut users = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = vec![("limit", self.page_size.to_string())];
            if let Some(s) = since {
                let from = (s - self.overlap).format(&Rfc3339).unwrap_or_default();
                q.push(("updated_since", from));
            }
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let query = serde_urlencoded::to_string(&q).unwrap_or_default();
            let url = format!("{}/api/2/users?{query}", self.base);
            let (page, headers) = self.api.get_page(&url, &[]).await?;
            let Got::Json(page) = page else {
                return Err(PullError::Http {
                    what: WHAT,
                    status: 404,
                    code: "the users API is not at base_url".to_owned(),
                });
            };
            let items = page.as_array().ok_or_else(|| PullError::Protocol {
                what: WHAT,
                detail: "a user listing is not a JSON array".to_owned(),
            })?;
            for u in items {
                let at = u["updated_at"]
                    .as_str()
                    .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
                if at > newest {
                    newest = at;
                }
                users.push(user_of(u));
            }
            progress("read", users.len());
            let next = headers
                .get("after-cursor")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|c| !c.is_empty() && !items.is_empty());
            match next {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let checkpoint = newest
            .unwrap_or_else(OffsetDateTime::now_utc)
            .format(&Rfc3339)
            .unwrap_or_default();
        Ok(Fetched {
            users,
            removed: Vec::new(),
            complete: since.is_none(),
            checkpoint,
        })
    }
}

/// Whether a OneLogin user may sign in to Confluence, by `status`: 0 (unactivated) and 2
/// (suspended) are disabled; 1 (active), 3 (locked), 4 (password expired), 5 (awaiting
/// password reset), 7 (password pending) and 8 (security questions required) are credential
/// states of an employed user and stay active, as does an unknown code. A `state` of 2
/// (rejected) disables too (assumed meaning).
pub fn active(status: i64, state: Option<i64>) -> bool {
    !matches!(status, 0 | 2) && state != Some(2)
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A OneLogin user as a [`PullUser`]: the numeric id as text; `username`, else the e-mail,
/// as the sign-in name; the first and last name as the display name; `manager_user_id` (the manager's OneLogin id) as the manager, which
/// resolves by SCIM id; `phone` as the work number. `custom_attributes` are not read yet.
pub fn user_of(u: &Value) -> PullUser {
    let email = text(&u["email"]);
    let (given_name, family_name) = (text(&u["firstname"]), text(&u["lastname"]));
    // API v2 has no display name: the full name stands in, as OneLogin's own UI shows it.
    let display_name = match (&given_name, &family_name) {
        (Some(g), Some(f)) => Some(format!("{g} {f}")),
        (g, f) => g.clone().or_else(|| f.clone()),
    };
    let manager = text(&u["manager_user_id"]).filter(|m| m != "0");
    PullUser {
        id: text(&u["id"]).unwrap_or_default(),
        user_name: text(&u["username"])
            .or_else(|| email.clone())
            .unwrap_or_default(),
        given_name,
        family_name,
        display_name,
        email,
        active: active(u["status"].as_i64().unwrap_or(1), u["state"].as_i64()),
        title: text(&u["title"]),
        department: text(&u["department"]),
        employee_number: None,
        manager,
        phones: text(&u["phone"])
            .map(|p| vec![("work".to_owned(), p)])
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn statuses_and_fields_map() {
        let u = json!({"id": 42, "username": null, "email": "ada@example.com", "firstname": "Ada",
            "status": 3, "state": 1, "manager_user_id": 7, "phone": "+1 555"});
        let p = user_of(&u);
        assert_eq!(
            (p.id.as_str(), p.user_name.as_str()),
            ("42", "ada@example.com")
        );
        assert!(p.active, "locked is still employed");
        assert_eq!(p.manager.as_deref(), Some("7"));
        assert!(!active(2, Some(1)) && !active(0, None) && !active(1, Some(2)));
        assert!(active(1, Some(1)) && active(4, None));
    }
}
