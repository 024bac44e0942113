//! Google Workspace: the Admin SDK Directory API's `users.list` with a service account
//! acting for an administrator (domain-wide delegation, docs/idp/google-workspace.md). The
//! token comes from the JWT-bearer grant (RFC 7523): a JWT signed RS256 with the key's
//! private key. The API has no change feed for users, so every run reads the whole
//! directory and deletions are found by comparison; the checkpoint is the run's time.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::config::pull::{GoogleSettings, PullSettings};
use crate::config::Secrets;

use super::api::{Api, Got};
use super::types::{Fetched, Progress, PullError, PullUser};

/// Read-only access to users: all usersync asks for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly";

const WHAT: &str = "Google Workspace";

/// The fields of a service account key file usersync reads.
#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// A Directory API client.
pub struct Google {
    api: Api,
    base: String,
    customer: String,
    page_size: u32,
    custom_schemas: Vec<String>,
}

impl Google {
    /// A client with the key read at load.
    pub fn new(
        g: &GoogleSettings,
        pull: &PullSettings,
        secrets: &Secrets,
    ) -> Result<Google, PullError> {
        let raw = secrets.get(&g.key_env).ok_or_else(|| {
            PullError::Credentials(format!("google.key_env: {} is not set", g.key_env))
        })?;
        let key: KeyFile = serde_json::from_str(raw).map_err(|e| {
            PullError::Credentials(format!(
                "google.key_env: {} does not hold a service account JSON key ({})",
                g.key_env,
                format!("{:?}", e.classify()).to_lowercase()
            ))
        })?;
        let signing = EncodingKey::from_rsa_pem(key.private_key.as_bytes()).map_err(|_| {
            PullError::Credentials(format!(
                "google.key_env: the private_key in {} is not an RSA key in PEM",
                g.key_env
            ))
        })?;
        let token_url = g
            .token_url
            .clone()
            .or(key.token_uri.clone())
            .unwrap_or_else(|| "https://oauth2.googleapis.com/token".to_owned());
        let aud = token_url.clone();
        let subject = g.admin_email.clone();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = key.private_key_id.clone();
        let issuer = key.client_email.clone();
        let form = Arc::new(move || {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let claims = json!({
                "iss": issuer, "sub": subject, "scope": SCOPE, "aud": aud,
                "iat": now, "exp": now + 3600,
            });
            let assertion = jsonwebtoken::encode(&header, &claims, &signing).map_err(|e| {
                PullError::Credentials(format!("cannot sign the token request: {e}"))
            })?;
            Ok(vec![
                (
                    "grant_type".to_owned(),
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
                ),
                ("assertion".to_owned(), assertion),
            ])
        });
        Ok(Google {
            api: Api::new(WHAT, token_url, form, pull.max_retry_wait.0)?,
            base: g.base_url.trim_end_matches('/').to_owned(),
            customer: g.customer.clone(),
            page_size: pull.page_size.min(500),
            custom_schemas: g.custom_schemas.clone(),
        })
    }

    /// Every user, page by page.
    pub async fn fetch(&self, progress: &Progress) -> Result<Fetched, PullError> {
        let started = OffsetDateTime::now_utc();
        let mut users = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![
                ("customer", self.customer.clone()),
                ("maxResults", self.page_size.to_string()),
            ];
            if self.custom_schemas.is_empty() {
                q.push(("projection", "basic".to_owned()));
            } else {
                q.push(("projection", "custom".to_owned()));
                q.push(("customFieldMask", self.custom_schemas.join(",")));
            }
            if let Some(t) = &token {
                q.push(("pageToken", t.clone()));
            }
            let query = serde_urlencoded::to_string(&q).unwrap_or_default();
            let url = format!("{}/admin/directory/v1/users?{query}", self.base);
            let page = match self.api.get(&url, &[]).await? {
                Got::Json(v) => v,
                Got::NotFound => {
                    return Err(PullError::Http {
                        what: WHAT,
                        status: 404,
                        code: "customer not found".to_owned(),
                    })
                }
            };
            for u in page["users"].as_array().into_iter().flatten() {
                users.push(user_of(u));
            }
            progress("read", users.len());
            match page["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        let checkpoint = started
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Ok(Fetched {
            users,
            removed: Vec::new(),
            complete: true,
            checkpoint,
        })
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The primary entry of a list (else the first).
fn primary(list: &Value) -> Option<&Value> {
    let items = list.as_array()?;
    items
        .iter()
        .find(|o| o["primary"].as_bool() == Some(true))
        .or_else(|| items.first())
}

/// A Directory API user as a [`PullUser`]: suspended or archived users are inactive; the
/// manager is the e-mail of `relations[type=manager]`; department and title come from the
/// primary organization; the employee number from `externalIds[type=organization]`.
pub fn user_of(u: &Value) -> PullUser {
    let org = primary(&u["organizations"]);
    let manager = u["relations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["type"].as_str() == Some("manager"))
        .and_then(|r| text(&r["value"]));
    let employee_number = u["externalIds"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["type"].as_str() == Some("organization"))
        .and_then(|r| text(&r["value"]));
    let phones = u["phones"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let kind = match p["type"].as_str().unwrap_or("work") {
                "mobile" | "work_mobile" => "mobile",
                "home" => "home",
                _ => "work",
            };
            text(&p["value"]).map(|v| (kind.to_owned(), v))
        })
        .collect();
    let suspended =
        u["suspended"].as_bool().unwrap_or(false) || u["archived"].as_bool().unwrap_or(false);
    PullUser {
        id: text(&u["id"]).unwrap_or_default(),
        user_name: text(&u["primaryEmail"]).unwrap_or_default(),
        given_name: text(&u["name"]["givenName"]),
        family_name: text(&u["name"]["familyName"]),
        display_name: text(&u["name"]["fullName"]),
        email: text(&u["primaryEmail"]),
        active: !suspended,
        title: org.and_then(|o| text(&o["title"])),
        department: org.and_then(|o| text(&o["department"])),
        employee_number,
        manager,
        phones,
    }
}
