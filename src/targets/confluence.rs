//! The Confluence Data Center target: a REST client for user and group provisioning
//! (`docs/reference/confluence-api.md` §1), with failures classified into
//! [`TargetError`](crate::targets::TargetError) at this boundary.
//!
//! The stable API for the delivery worker is [`ConfluenceClient`]:
//!
//! | method | call | result |
//! |---|---|---|
//! | [`current_user`](ConfluenceClient::current_user) | `GET /rest/api/user/current` | [`CurrentUser`]; anonymous fallback → `Unauthorized` |
//! | [`detect_version`](ConfluenceClient::detect_version) | applinks manifest, else probes; cached | [`DetectedVersion`] |
//! | [`verify`](ConfluenceClient::verify) | the two above | start-up check |
//! | [`get_user`](ConfluenceClient::get_user) | `GET /rest/api/user?username=&expand=status` | `Option<`[`RemoteUser`]`>` |
//! | [`create_user`](ConfluenceClient::create_user) | `POST /rest/api/admin/user` (8.4+) | [`UserKey`] |
//! | [`update_user`](ConfluenceClient::update_user) | `PUT /rest/api/admin/user/{username}` (9.4+), else JSON-RPC `editUser` (Basic only) | [`UserUpdated`] |
//! | [`disable_user`](ConfluenceClient::disable_user), [`enable_user`](ConfluenceClient::enable_user) | `PUT …/disable`, `…/enable` (8.2+) | `()` |
//! | [`delete_user`](ConfluenceClient::delete_user) | `DELETE /rest/api/admin/user/{username}` (8.2+) | [`DeleteSubmitted`] (long task) |
//! | [`long_task`](ConfluenceClient::long_task), [`wait_for_long_task`](ConfluenceClient::wait_for_long_task) | `GET /rest/api/longtask/{id}` | [`LongTaskStatus`] |
//! | [`create_group`](ConfluenceClient::create_group) | `POST /rest/api/admin/group` | [`GroupCreated`] (409 → `AlreadyExists`) |
//! | [`delete_group`](ConfluenceClient::delete_group) | `DELETE /rest/api/admin/group/{group}` | `()` |
//! | [`add_member`](ConfluenceClient::add_member), [`remove_member`](ConfluenceClient::remove_member) | `PUT`/`DELETE /rest/api/user/{username}/group/{group}` | `()` |
//! | [`group_members`](ConfluenceClient::group_members) | `GET /rest/api/group/{group}/member`, all pages | `Vec<`[`RemoteUser`]`>` |
//! | [`user_groups`](ConfluenceClient::user_groups) | `GET /rest/api/user/memberof`, all pages | `Vec<String>` |
//! | [`user_pages`](ConfluenceClient::user_pages) | `GET /rest/api/user/list?expand=status` (8.4+), one page per call | [`UserPages`] |
//! | [`member_pages`](ConfluenceClient::member_pages) | `GET /rest/api/group/{group}/member?expand=status`, one page per call | [`UserPages`] |
//!
//! The username rules ([`check_username`], [`derive_username`]) live in the pure
//! [`mapping::username`](mod@crate::mapping::username) module: the mapping derives
//! usernames with them, and this client checks each one again before it sends it.
//!
//! Read in this order: `config`, `client`, [`error`] (the classification table),
//! [`version`] (how the release is detected), `jsonrpc`, `model`. Facts
//! docs/reference/confluence-api.md marks **\[gap\]** or **(assumed)** are flagged where they are
//! used.

mod client;
mod config;
pub mod error;
mod jsonrpc;
mod model;
mod pages;
mod password;
pub mod version;

#[cfg(test)]
mod tests;

pub use crate::mapping::username::{check_username, derive_username, UsernameProblem};
pub use client::{calls, ConfluenceClient};
pub use config::{
    default_user_agent, ConfluenceAuth, ConfluenceConfig, ConfluenceSettings, InvalidConfig,
    Secret, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
};
pub use error::{parse_retry_after, RetryAfter, RETRY_AFTER_CAP};
pub use model::{
    CurrentUser, DeleteSubmitted, GroupCreated, LongTaskStatus, RemoteUser, UserKey, UserUpdated,
};
pub use pages::{UserPages, PAGE_LIMIT};
pub use version::{Availability, BadVersion, DetectedVersion, DetectionMethod, Feature, Version};
