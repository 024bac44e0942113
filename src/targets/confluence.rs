//! The Confluence Data Center target.

pub mod username;
