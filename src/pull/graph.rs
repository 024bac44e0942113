//! Microsoft Graph: `/users/delta` with `$select` (docs/emulator.md, "Microsoft Graph", lists
//! what is assumed of the real API). A full read starts a new delta round and keeps its
//! deltaLink as the checkpoint; an incremental read follows the stored deltaLink. An expired
//! link (410, or a `syncStateNotFound`/`resyncRequired` code) starts a full read instead.
//! Entries with `@removed` are deletions. Changed users are read again whole
//! (`/users/{id}`: a delta entry may carry only the changed properties) with their manager
//! (`/users/{id}/manager`: delta is known to miss manager changes), a few at a time.

use std::sync::Arc;

use futures_util::stream::{FuturesOrdered, StreamExt};
use serde_json::Value;

use crate::config::pull::{GraphSettings, PullSettings};
use crate::config::Secrets;

use super::api::{Api, Got};
use super::types::{Fetched, Progress, PullError, PullUser};

/// The properties asked for.
pub const SELECT: &str = "id,userPrincipalName,displayName,givenName,surname,mail,\
                          accountEnabled,jobTitle,department,employeeId,mobilePhone,businessPhones";

/// Per-user reads in flight at once.
const CONCURRENCY: usize = 8;

const WHAT: &str = "Microsoft Graph";

/// A Graph client.
pub struct Graph {
    api: Api,
    base: String,
    page_size: u32,
}

impl Graph {
    /// A client with the secret read at load.
    pub fn new(
        g: &GraphSettings,
        pull: &PullSettings,
        secrets: &Secrets,
    ) -> Result<Graph, PullError> {
        let secret = secrets
            .get(&g.client_secret_env)
            .ok_or_else(|| {
                PullError::Credentials(format!(
                    "graph.client_secret_env: {} is not set",
                    g.client_secret_env
                ))
            })?
            .to_owned();
        let client_id = g.client_id.clone();
        let form = Arc::new(move || {
            Ok(vec![
                ("grant_type".to_owned(), "client_credentials".to_owned()),
                ("client_id".to_owned(), client_id.clone()),
                ("client_secret".to_owned(), secret.clone()),
                (
                    "scope".to_owned(),
                    "https://graph.microsoft.com/.default".to_owned(),
                ),
            ])
        });
        Ok(Graph {
            api: Api::new(WHAT, g.token_url(), form, pull.max_retry_wait.0)?,
            base: g.base_url.trim_end_matches('/').to_owned(),
            page_size: pull.page_size,
        })
    }

    /// Every user (no checkpoint, or an expired one), or the changes since `checkpoint`.
    pub async fn fetch(
        &self,
        checkpoint: Option<&str>,
        progress: &Progress,
    ) -> Result<Fetched, PullError> {
        if let Some(link) = checkpoint {
            match self.delta(link, false, progress).await {
                Err(e) if is_expired(&e) => {
                    tracing::warn!("the Graph delta link expired; reading every user again");
                }
                other => return other,
            }
        }
        let start = format!("{}/users/delta?$select={SELECT}", self.base);
        self.delta(&start, true, progress).await
    }

    /// Follows one delta round from `url` to its deltaLink.
    async fn delta(
        &self,
        url: &str,
        complete: bool,
        progress: &Progress,
    ) -> Result<Fetched, PullError> {
        let prefer = [("Prefer", format!("odata.maxpagesize={}", self.page_size))];
        let mut url = url.to_owned();
        let mut entries: Vec<Value> = Vec::new();
        let mut removed = Vec::new();
        let checkpoint = loop {
            let page = match self.api.get(&url, &prefer).await? {
                Got::Json(v) => v,
                Got::NotFound => {
                    return Err(PullError::Http {
                        what: WHAT,
                        status: 404,
                        code: "delta link not found".to_owned(),
                    })
                }
            };
            for item in page["value"].as_array().into_iter().flatten() {
                let Some(id) = item["id"].as_str() else {
                    continue;
                };
                if item.get("@removed").is_some() {
                    removed.push(id.to_owned());
                } else {
                    entries.push(item.clone());
                }
            }
            progress("read", entries.len() + removed.len());
            if let Some(next) = page["@odata.nextLink"].as_str() {
                url = next.to_owned();
            } else if let Some(delta) = page["@odata.deltaLink"].as_str() {
                break delta.to_owned();
            } else {
                return Err(PullError::Protocol {
                    what: WHAT,
                    detail: "a delta page with neither @odata.nextLink nor @odata.deltaLink"
                        .to_owned(),
                });
            }
        };
        // The same user may appear on several pages of one round: keep the last.
        let mut seen = std::collections::HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            seen.insert(e["id"].as_str().unwrap_or_default().to_owned(), i);
        }
        let mut latest: Vec<(usize, &Value)> = seen.values().map(|i| (*i, &entries[*i])).collect();
        latest.sort_by_key(|(i, _)| *i);
        let mut results: Vec<Option<PullUser>> = Vec::with_capacity(latest.len());
        let mut pending = latest.into_iter().map(|(_, e)| e);
        let mut inflight = FuturesOrdered::new();
        loop {
            while inflight.len() < CONCURRENCY {
                match pending.next() {
                    Some(e) => inflight.push_back(self.details(e, complete)),
                    None => break,
                }
            }
            let Some(r) = inflight.next().await else {
                break;
            };
            results.push(r?);
            if results.len() % 500 == 0 {
                progress("details", results.len());
            }
        }
        let users: Vec<PullUser> = results.into_iter().flatten().collect();
        // A user gone between the delta page and its read is a deletion.
        let ids: std::collections::HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
        for id in seen.keys() {
            if !ids.contains(id.as_str()) && !removed.contains(id) {
                removed.push(id.clone());
            }
        }
        Ok(Fetched {
            users,
            removed,
            complete,
            checkpoint,
        })
    }

    /// One user whole with the manager: from the delta entry itself in a full round (which
    /// carries every selected property), else read again; `None` when gone meanwhile.
    async fn details(&self, entry: &Value, complete: bool) -> Result<Option<PullUser>, PullError> {
        let id = entry["id"].as_str().unwrap_or_default();
        let id_path = urlencode(id);
        let user = if complete {
            entry.clone()
        } else {
            let url = format!("{}/users/{id_path}?$select={SELECT}", self.base);
            match self.api.get(&url, &[]).await? {
                Got::Json(v) => v,
                Got::NotFound => return Ok(None),
            }
        };
        let url = format!("{}/users/{id_path}/manager?$select=id", self.base);
        let manager = match self.api.get(&url, &[]).await? {
            Got::Json(v) => v["id"].as_str().map(str::to_owned),
            Got::NotFound => None,
        };
        Ok(Some(user_of(&user, manager)))
    }
}

/// Whether Graph said the delta link can no longer be followed.
fn is_expired(e: &PullError) -> bool {
    match e {
        PullError::Http { status: 410, .. } => true,
        PullError::Http { code, .. } => {
            matches!(
                code.as_str(),
                "syncStateNotFound" | "resyncRequired" | "syncStateInvalid"
            )
        }
        _ => false,
    }
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|q| q.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

fn text(v: &Value, k: &str) -> Option<String> {
    v[k].as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A Graph user as a [`PullUser`].
pub fn user_of(v: &Value, manager: Option<String>) -> PullUser {
    let mut phones = Vec::new();
    if let Some(m) = text(v, "mobilePhone") {
        phones.push(("mobile".to_owned(), m));
    }
    for p in v["businessPhones"].as_array().into_iter().flatten() {
        if let Some(p) = p.as_str().filter(|p| !p.trim().is_empty()) {
            phones.push(("work".to_owned(), p.trim().to_owned()));
        }
    }
    PullUser {
        id: text(v, "id").unwrap_or_default(),
        user_name: text(v, "userPrincipalName").unwrap_or_default(),
        given_name: text(v, "givenName"),
        family_name: text(v, "surname"),
        display_name: text(v, "displayName"),
        email: text(v, "mail"),
        // An entry without the property keeps users enabled; Graph always sends it when selected.
        active: v["accountEnabled"].as_bool().unwrap_or(true),
        title: text(v, "jobTitle"),
        department: text(v, "department"),
        employee_number: text(v, "employeeId"),
        manager,
        phones,
    }
}
