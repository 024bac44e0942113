//! Okta: the Users API (`GET /api/v1/users`), paged by `limit` and the `Link: <…>;
//! rel="next"` header, with an API token (`Authorization: SSWS …`) or an OAuth service app
//! (client credentials with a `private_key_jwt` client assertion, RFC 7523 §2.2, scope
//! `okta.users.read`). Okta announces its quota in `X-Rate-Limit-Remaining` /
//! `X-Rate-Limit-Reset` (epoch seconds); `api.rs` waits when nothing is left.
//!
//! A full read lists every user: the plain list leaves out DEPROVISIONED users, so a second
//! listing asks for them (`search=status eq "DEPROVISIONED"`) and they arrive inactive rather
//! than being deleted. Users deleted in Okta are found by the full read's comparison. An
//! incremental read asks `search=lastUpdated gt "<checkpoint − overlap>"`; the checkpoint is
//! the newest `lastUpdated` seen (Okta's clock, so our clock's skew does not matter), and the
//! overlap covers the search index catching up with a change (assumed); changes read twice
//! are not written twice (docs/pull.md, "Okta").

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{HeaderMap, LINK};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::pull::{OktaSettings, PullSettings};
use crate::config::Secrets;

use super::api::{Api, Got, QuotaHeaders};
use super::types::{Fetched, Progress, PullError, PullUser};

/// Read-only access to users: all usersync asks for.
pub const SCOPE: &str = "okta.users.read";

/// The Users API's page ceiling (`limit`).
const MAX_PAGE: u32 = 200;

const WHAT: &str = "Okta";

/// Okta's quota headers: the reset is a UTC epoch time in seconds.
pub const QUOTA: QuotaHeaders = QuotaHeaders {
    remaining: "x-rate-limit-remaining",
    reset: "x-rate-limit-reset",
    reset_is_epoch: true,
};

/// A Users API client.
pub struct Okta {
    api: Api,
    base: String,
    page_size: u32,
    overlap: Duration,
}

impl Okta {
    /// A client with the credentials read at load.
    pub fn new(
        o: &OktaSettings,
        pull: &PullSettings,
        secrets: &Secrets,
    ) -> Result<Okta, PullError> {
        let max_wait = pull.max_retry_wait.0;
        let api = match (&o.token_env, &o.client_id, &o.private_key_env) {
            (Some(env), _, _) => {
                let token = secrets.get(env).ok_or_else(|| {
                    PullError::Credentials(format!("okta.token_env: {env} is not set"))
                })?;
                Api::with_static(WHAT, format!("SSWS {}", token.trim()), max_wait)?
            }
            (None, Some(client_id), Some(env)) => {
                let pem = secrets.get(env).ok_or_else(|| {
                    PullError::Credentials(format!("okta.private_key_env: {env} is not set"))
                })?;
                let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| {
                    PullError::Credentials(format!(
                        "okta.private_key_env: {env} does not hold an RSA private key in PEM"
                    ))
                })?;
                let token_url = o.token_url();
                Api::new(
                    WHAT,
                    token_url.clone(),
                    client_assertion_form(client_id.clone(), o.key_id.clone(), token_url, key),
                    max_wait,
                )?
            }
            _ => {
                return Err(PullError::Credentials(
                    "okta needs token_env, or client_id and private_key_env".to_owned(),
                ))
            }
        };
        Ok(Okta {
            api: api.with_quota(QUOTA),
            base: o.org_url.trim_end_matches('/').to_owned(),
            page_size: pull.page_size.min(MAX_PAGE),
            overlap: o.overlap.0,
        })
    }

    /// Every user (`checkpoint` None), or the users changed since `checkpoint`.
    pub async fn fetch(
        &self,
        checkpoint: Option<&str>,
        progress: &Progress,
    ) -> Result<Fetched, PullError> {
        let since = checkpoint.and_then(|c| OffsetDateTime::parse(c, &Rfc3339).ok());
        let mut users = Vec::new();
        let mut newest = since;
        match since {
            Some(since) => {
                let from = stamp(since - self.overlap);
                let search = format!("lastUpdated gt \"{from}\"");
                self.list(Some(&search), &mut users, &mut newest, progress)
                    .await?;
            }
            None => {
                self.list(None, &mut users, &mut newest, progress).await?;
                let search = "status eq \"DEPROVISIONED\"";
                self.list(Some(search), &mut users, &mut newest, progress)
                    .await?;
            }
        }
        let checkpoint = stamp(newest.unwrap_or_else(OffsetDateTime::now_utc));
        Ok(Fetched {
            users,
            removed: Vec::new(),
            complete: since.is_none(),
            checkpoint,
        })
    }

    /// One listing, every page, following `Link: rel="next"`.
    async fn list(
        &self,
        search: Option<&str>,
        users: &mut Vec<PullUser>,
        newest: &mut Option<OffsetDateTime>,
        progress: &Progress,
    ) -> Result<(), PullError> {
        let mut q = vec![("limit", self.page_size.to_string())];
        if let Some(s) = search {
            q.push(("search", s.to_owned()));
        }
        let query = serde_urlencoded::to_string(&q).unwrap_or_default();
        let mut url = format!("{}/api/v1/users?{query}", self.base);
        loop {
            let (page, headers) = self.api.get_page(&url, &[]).await?;
            let Got::Json(page) = page else {
                return Err(PullError::Http {
                    what: WHAT,
                    status: 404,
                    code: "the Users API is not at org_url".to_owned(),
                });
            };
            let items = page.as_array().ok_or_else(|| PullError::Protocol {
                what: WHAT,
                detail: "a user listing is not a JSON array".to_owned(),
            })?;
            for u in items {
                let at = u["lastUpdated"]
                    .as_str()
                    .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
                if at > *newest {
                    *newest = at;
                }
                users.push(user_of(u));
            }
            progress("read", users.len());
            match next_link(&headers) {
                // The token goes with the request: follow only links into the same org.
                Some(next) if next.starts_with(&format!("{}/", self.base)) => url = next,
                Some(_) => {
                    return Err(PullError::Protocol {
                        what: WHAT,
                        detail: "a next-page link points outside org_url".to_owned(),
                    })
                }
                None => return Ok(()),
            }
        }
    }
}

/// The token request of a service app: client credentials with a fresh signed client
/// assertion (`private_key_jwt`, RFC 7523 §2.2; Okta wants `iss` = `sub` = client id, `aud`
/// the token endpoint, a `jti` and at most an hour of life). DPoP is assumed off for the app.
fn client_assertion_form(
    client_id: String,
    key_id: Option<String>,
    token_url: String,
    key: EncodingKey,
) -> super::api::TokenForm {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = key_id;
    Arc::new(move || {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": token_url,
            "iat": now, "exp": now + 300, "jti": uuid::Uuid::new_v4().to_string(),
        });
        let assertion = jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|e| PullError::Credentials(format!("cannot sign the token request: {e}")))?;
        Ok(vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("scope".to_owned(), SCOPE.to_owned()),
            (
                "client_assertion_type".to_owned(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("client_assertion".to_owned(), assertion),
        ])
    })
}

/// Okta's timestamp form in search expressions: UTC with milliseconds.
fn stamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The `rel="next"` target of the `Link` header(s) (RFC 8288), if any.
pub fn next_link(h: &HeaderMap) -> Option<String> {
    h.get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|l| {
            l.split(';')
                .skip(1)
                .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"))
        })
        .and_then(|l| {
            let l = l.trim();
            Some(l.strip_prefix('<')?.split_once('>')?.0.to_owned())
        })
}

fn text(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Whether an Okta status is a user who may sign in to Confluence: SUSPENDED and
/// DEPROVISIONED are disabled, and so is STAGED (created, never activated). LOCKED_OUT,
/// PASSWORD_EXPIRED and RECOVERY are credential states of an employed user and stay active,
/// as does PROVISIONED (activated, first sign-in pending); an unknown status too.
pub fn active(status: &str) -> bool {
    !matches!(status, "SUSPENDED" | "DEPROVISIONED" | "STAGED")
}

/// An Okta user as a [`PullUser`]. `profile.managerId` is a free-text attribute of Okta's
/// default profile: whatever the org puts there (an Okta user id, a login or e-mail, an
/// employee number); docs/mapping.md's manager resolution tries id, externalId and e-mail,
/// and `refers_to` names another key.
pub fn user_of(u: &Value) -> PullUser {
    let p = &u["profile"];
    let mut phones = Vec::new();
    if let Some(m) = text(&p["mobilePhone"]) {
        phones.push(("mobile".to_owned(), m));
    }
    if let Some(w) = text(&p["primaryPhone"]) {
        phones.push(("work".to_owned(), w));
    }
    PullUser {
        id: text(&u["id"]).unwrap_or_default(),
        user_name: text(&p["login"]).unwrap_or_default(),
        given_name: text(&p["firstName"]),
        family_name: text(&p["lastName"]),
        display_name: text(&p["displayName"]),
        email: text(&p["email"]),
        active: active(u["status"].as_str().unwrap_or_default()),
        title: text(&p["title"]),
        department: text(&p["department"]),
        employee_number: text(&p["employeeNumber"]),
        manager: text(&p["managerId"]),
        phones,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_several() {
        let mut h = HeaderMap::new();
        h.append(
            LINK,
            "<https://x.okta.com/api/v1/users?limit=2>; rel=\"self\""
                .parse()
                .unwrap(),
        );
        h.append(
            LINK,
            "<https://x.okta.com/api/v1/users?after=00u2&limit=2>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://x.okta.com/api/v1/users?after=00u2&limit=2")
        );
        h.remove(LINK);
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn statuses_and_profile_fields_map() {
        let u = json!({"id": "00u1", "status": "LOCKED_OUT", "lastUpdated": "2026-01-02T03:04:05.000Z",
            "profile": {"login": "ada@example.com", "email": "ada@example.com", "firstName": "Ada",
                "lastName": "L", "managerId": "00u9", "mobilePhone": "+1 555", "employeeNumber": "E1"}});
        let p = user_of(&u);
        assert!(p.active, "locked out is still employed");
        assert_eq!(p.manager.as_deref(), Some("00u9"));
        assert_eq!(p.phones, vec![("mobile".to_owned(), "+1 555".to_owned())]);
        assert!(!active("SUSPENDED") && !active("DEPROVISIONED") && !active("STAGED"));
        assert!(active("ACTIVE") && active("PROVISIONED") && active("PASSWORD_EXPIRED"));
        let t = OffsetDateTime::parse("2026-01-02T03:04:05.120+01:00", &Rfc3339).unwrap();
        assert_eq!(stamp(t), "2026-01-02T02:04:05.120Z");
    }
}
