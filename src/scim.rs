//! The SCIM 2.0 protocol, pure: schema, filters, paths, PATCH, resource shapes and errors.
//!
//! Nothing here performs I/O or imports axum, sqlx or reqwest; every function is a plain
//! function over `serde_json` values and our own types, so it is unit-tested in place.

pub mod bulk;
pub mod coerce;
pub mod dialect;
pub mod diff;
pub mod discovery;
pub mod enterprise;
pub mod error;
pub mod filter;
pub mod identifier;
pub mod members;
pub mod patch;
pub mod path;
pub mod project;
pub mod query;
pub mod resource;
#[cfg(test)]
mod robustness;
pub mod schema;

pub use error::{ScimError, ScimResult, ScimType};
