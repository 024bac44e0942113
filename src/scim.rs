//! The SCIM 2.0 protocol, pure: schema, filters, paths, PATCH, resource shapes and errors.
//!
//! Nothing here performs I/O or imports axum, sqlx or reqwest; every function is a plain
//! function over `serde_json` values and our own types, so it is unit-tested in place.

pub mod error;
pub mod filter;
pub mod path;
pub mod schema;

pub use error::{ScimError, ScimResult, ScimType};
