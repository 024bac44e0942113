//! The legacy JSON-RPC fallback for changing full name and e-mail on releases without
//! `PUT /rest/api/admin/user/{username}` (before 9.4; docs/reference/confluence-api.md §1.4).
//!
//! `POST /rpc/json-rpc/confluenceservice-v2/editUser` in "light" mode: the method in the
//! URL, the parameters as a bare JSON array, `[{"name": …, "fullname": …, "email": …}]`;
//! success is the literal `true` (zabel-elements `update_user` \[code\]). Preconditions, all
//! outside usersync's control:
//!
//! * Basic auth: personal access tokens do not work on JSON-RPC (zabel-elements \[code\]);
//! * the "Remote API (XML-RPC & SOAP)" switch is on \[doc\];
//! * websudo may have to be off \[doc\];
//! * the release still ships JSON-RPC: deprecated since 5.5, whether 9.x/10.x have it is a
//!   **\[gap\]**.
//!
//! How a refusal looks is **(assumed)**, following the emulator: HTTP 403 when the Remote
//! API is off, HTTP 401 for a PAT; method failures come back as HTTP 200 with
//! `{"error": {"code", "message"}}` whose `code` is the REST-equivalent status.

use std::time::SystemTime;

use serde_json::json;

use super::client::{calls::RPC_EDIT_USER, calls::UPDATE_USER, decode, ConfluenceClient, Outgoing};
use super::config::ConfluenceAuth;
use super::error;
use super::model::{RpcAnswer, UserUpdated};
use crate::targets::{truncate_body, Failure, TargetError, BODY_LIMIT};

impl ConfluenceClient {
    /// `editUser` over JSON-RPC; `rest_failure` is the REST attempt's "endpoint absent"
    /// failure, if one was made (kept in the error when the fallback is impossible).
    pub(super) async fn edit_user_json_rpc(
        &self,
        username: &str,
        full_name: &str,
        email: &str,
        rest_failure: Option<Failure>,
    ) -> Result<UserUpdated, TargetError> {
        if matches!(self.inner.auth, ConfluenceAuth::Pat(_)) {
            let rest = rest_failure.unwrap_or(Failure {
                call: UPDATE_USER,
                status: None,
                message: String::new(),
                body: None,
            });
            return Err(TargetError::Unsupported(Failure {
                message: "this Confluence has no REST endpoint to change full name and e-mail \
                          (it needs 9.4 or later), and the legacy JSON-RPC editUser fallback \
                          needs Basic auth (personal access tokens are not accepted there): \
                          configure username + password_env and switch the Remote API on, or \
                          upgrade Confluence"
                    .to_owned(),
                ..rest
            }));
        }
        let params = json!([{"name": username, "fullname": full_name, "email": email}]);
        let out = Outgoing::new(RPC_EDIT_USER, RPC_EDIT_USER.template.to_owned()).json(&params)?;
        let reply = self.send_raw(out).await?;
        let status = reply.status.as_u16();
        let failure = |message: String| Failure {
            call: RPC_EDIT_USER,
            status: Some(status),
            message,
            body: truncate_body(&reply.body, BODY_LIMIT),
        };
        match status {
            403 => {
                return Err(TargetError::Unsupported(failure(
                    "JSON-RPC refused the call (HTTP 403): the Remote API (XML-RPC & SOAP) is \
                     probably switched off (General configuration → Further configuration), \
                     or websudo blocks it"
                        .to_owned(),
                )))
            }
            404 | 405 => {
                return Err(TargetError::Unsupported(failure(
                    "this Confluence does not serve the JSON-RPC API".to_owned(),
                )))
            }
            _ if !reply.status.is_success() || error::served_as_anonymous(&reply.headers) => {
                return Err(error::classify(
                    RPC_EDIT_USER,
                    reply.status,
                    &reply.headers,
                    &reply.body,
                    SystemTime::now(),
                ))
            }
            _ => {}
        }
        match decode::<RpcAnswer>(RPC_EDIT_USER, &reply)? {
            RpcAnswer::Result(true) => Ok(UserUpdated::ViaJsonRpc),
            RpcAnswer::Result(false) => Err(TargetError::Permanent(failure(
                "JSON-RPC editUser answered false".to_owned(),
            ))),
            RpcAnswer::Error { error } => {
                // The error's text echoes usernames: it stays in the body (see `error`).
                let code = error
                    .code
                    .map_or_else(|| "none".to_owned(), |c| c.to_string());
                let message = format!("JSON-RPC editUser failed (error code {code})");
                Err(match error.code {
                    Some(404) => TargetError::NotFound(failure(message)),
                    Some(409) => TargetError::Conflict(failure(message)),
                    Some(401 | 403) => TargetError::Unauthorized(failure(format!(
                        "{message} (the Basic-auth user must be a Confluence administrator)"
                    ))),
                    Some(-32601) => TargetError::Unsupported(failure(message)),
                    _ => TargetError::Permanent(failure(message)),
                })
            }
        }
    }
}
