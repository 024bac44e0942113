//! Confluence's JSON, as far as the client reads or writes it, and the result types of the
//! client's operations. Wire structs are lenient (unknown fields ignored, most fields
//! optional): only what a decision needs is required.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Confluence's immutable user key (32 hex characters in practice, docs/reference/confluence-api.md
/// §1.2). The stable anchor of a delivered user; the username may change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserKey(String);

impl UserKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Confluence user as `GET /rest/api/user?expand=status` shows it. E-mail is not part of
/// it: Confluence DC does not return e-mail there (docs/reference/confluence-api.md §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUser {
    /// Current (lower-case) username.
    pub username: String,
    /// Immutable key.
    pub user_key: UserKey,
    /// Full name.
    pub display_name: String,
    /// Whether the account is active, from `status`: `active` or `current` (any case) mean
    /// active, any other value inactive. The exact literal is a **\[gap\]** (`current`/
    /// `deactivated` in one operator script, `Active`/`Deactivated` in a library docstring).
    /// `None` when Confluence sent no `status` (the expansion was ignored).
    pub active: Option<bool>,
}

/// The account the client is authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    /// Username.
    pub username: String,
    /// Key.
    pub user_key: UserKey,
    /// Full name.
    pub display_name: String,
}

/// Result of [`create_group`](super::ConfluenceClient::create_group): 409 is not an error
/// for a convergent caller, but it is worth recording which one happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupCreated {
    /// 201: the group is new.
    Created,
    /// 409: a group of that name (compared case-insensitively by Confluence) existed.
    AlreadyExists,
}

/// How [`update_user`](super::ConfluenceClient::update_user) got the change through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserUpdated {
    /// `PUT /rest/api/admin/user/{username}` (9.4+).
    ViaRest,
    /// Legacy JSON-RPC `editUser` (older releases, Basic auth only).
    ViaJsonRpc,
}

/// The long task a user delete started (`202 Accepted`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteSubmitted {
    /// Long-task id, for [`long_task`](super::ConfluenceClient::long_task). `None` when
    /// the 202 body did not carry one: its shape is a **\[gap\]** (assumed
    /// `{"id": "…", "links": {"status": "/rest/api/longtask/…"}}`).
    pub task_id: Option<String>,
}

/// State of a long task (`GET /rest/api/longtask/{id}`). The DC object is assumed to match
/// Cloud's (`finished`, `successful`, `percentageComplete`, `elapsedTime`) **\[gap\]**.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongTaskStatus {
    /// Task id.
    pub id: String,
    /// Whether it has ended.
    pub finished: bool,
    /// Whether it ended well (meaningful once finished).
    pub successful: bool,
    /// 0–100.
    pub percentage_complete: u32,
    /// Run time so far, when reported.
    pub elapsed: Option<Duration>,
}

// ---- wire shapes -------------------------------------------------------------------------

/// A user object (`type: known`), or the anonymous user (`type: anonymous`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserJson {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub user_key: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

impl UserJson {
    /// Whether this is the anonymous user object.
    pub fn is_anonymous(&self) -> bool {
        self.kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("anonymous"))
    }

    /// The user, when username and key are present.
    pub fn into_remote(self) -> Option<RemoteUser> {
        let active = self.status.as_deref().map(status_is_active);
        Some(RemoteUser {
            username: self.username?,
            user_key: UserKey::new(self.user_key?),
            display_name: self.display_name.unwrap_or_default(),
            active,
        })
    }
}

/// `active` and `current`, in any case, mean active.
pub(crate) fn status_is_active(status: &str) -> bool {
    let status = status.trim();
    status.eq_ignore_ascii_case("active") || status.eq_ignore_ascii_case("current")
}

/// A group object.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct GroupJson {
    pub name: String,
}

/// One page of a paginated list.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
    #[serde(rename = "_links", default)]
    pub links: Option<PageLinks>,
}

/// `_links` of a page; `next` is present while more pages follow \[doc\].
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PageLinks {
    #[serde(default)]
    pub next: Option<String>,
}

/// `201` of `POST /rest/api/admin/user`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreatedUserJson {
    pub user_key: String,
}

/// Body of `POST /rest/api/admin/user`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateUserBody<'a> {
    pub user_name: &'a str,
    pub full_name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub notify_via_email: bool,
}

/// Body of `PUT /rest/api/admin/user/{username}`: only these two of the schema's three
/// properties are documented (the third is a **\[gap\]**).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateUserBody<'a> {
    pub full_name: &'a str,
    pub email: &'a str,
}

/// Body of `POST /rest/api/admin/group` (`type` is sent by public clients too).
#[derive(Debug, Serialize)]
pub(crate) struct CreateGroupBody<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
}

/// `202` of the user delete **(assumed shape)**; the id may be a string or a number.
#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct LongTaskSubmissionJson {
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    #[serde(default)]
    pub links: Option<SubmissionLinks>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct SubmissionLinks {
    #[serde(default)]
    pub status: Option<String>,
}

impl LongTaskSubmissionJson {
    /// The id, from `id` or else the last segment of `links.status`.
    pub fn task_id(&self) -> Option<String> {
        let from_id = match &self.id {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        from_id.or_else(|| {
            let status = self.links.as_ref()?.status.as_deref()?;
            let last = status.trim_end_matches('/').rsplit('/').next()?;
            (!last.is_empty()).then(|| last.to_owned())
        })
    }
}

/// `GET /rest/api/longtask/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LongTaskJson {
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    #[serde(default)]
    pub finished: bool,
    #[serde(default)]
    pub successful: bool,
    #[serde(default)]
    pub percentage_complete: Option<u32>,
    #[serde(default)]
    pub elapsed_time: Option<u64>,
}

impl LongTaskJson {
    /// The public status; `id` falls back to the one asked for.
    pub fn into_status(self, asked: &str) -> LongTaskStatus {
        let id = match self.id {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => asked.to_owned(),
        };
        LongTaskStatus {
            id,
            finished: self.finished,
            successful: self.successful,
            percentage_complete: self
                .percentage_complete
                .unwrap_or(if self.finished { 100 } else { 0 })
                .min(100),
            elapsed: self.elapsed_time.map(Duration::from_millis),
        }
    }
}

/// A JSON-RPC "light" answer: the literal `true`, or `{"error": {code, message}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RpcAnswer {
    Result(bool),
    Error { error: RpcErrorJson },
}

/// The error object; its `message` is left in the response body.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RpcErrorJson {
    #[serde(default)]
    pub code: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_literals_compare_case_insensitively() {
        for active in ["current", "Active", "ACTIVE", " current "] {
            assert!(status_is_active(active), "{active}");
        }
        for inactive in ["deactivated", "Deactivated", "disabled", ""] {
            assert!(!status_is_active(inactive), "{inactive}");
        }
    }

    #[test]
    fn a_user_without_status_has_unknown_activity() {
        let json: UserJson = serde_json::from_str(
            r#"{"type":"known","username":"jdoe","userKey":"k1","displayName":"Jane"}"#,
        )
        .expect("parses");
        let user = json.into_remote().expect("a user");
        assert_eq!(user.active, None);
        assert_eq!(user.user_key.as_str(), "k1");
    }

    #[test]
    fn a_delete_submission_yields_its_id_from_id_or_link() {
        let from_id: LongTaskSubmissionJson =
            serde_json::from_str(r#"{"id":"7340033"}"#).expect("parses");
        assert_eq!(from_id.task_id().as_deref(), Some("7340033"));
        let numeric: LongTaskSubmissionJson = serde_json::from_str(r#"{"id":42}"#).expect("parses");
        assert_eq!(numeric.task_id().as_deref(), Some("42"));
        let from_link: LongTaskSubmissionJson =
            serde_json::from_str(r#"{"links":{"status":"/rest/api/longtask/99"}}"#)
                .expect("parses");
        assert_eq!(from_link.task_id().as_deref(), Some("99"));
        assert_eq!(LongTaskSubmissionJson::default().task_id(), None);
    }

    #[test]
    fn json_rpc_answers_are_true_or_an_error_object() {
        assert!(matches!(
            serde_json::from_str::<RpcAnswer>("true"),
            Ok(RpcAnswer::Result(true))
        ));
        let error: RpcAnswer =
            serde_json::from_str(r#"{"error":{"code":404,"message":"No user"}}"#).expect("parses");
        assert!(matches!(
            error,
            RpcAnswer::Error {
                error: RpcErrorJson {
                    code: Some(404),
                    ..
                }
            }
        ));
    }
}
