//! The Linchpin User Profiles target.
//!
//! Linchpin has no documented write API (docs/reference/confluence-api.md §2.1); the documented way
//! in is its XML data source, which pulls a feed on a schedule (docs/reference/confluence-api.md
//! §2.2). usersync serves that feed per connector (`http/linchpin.rs`, built from the mapped
//! profiles by `profiles/feed.rs`); this module holds its settings, the XML rendering, and the read
//! of Linchpin's field list that `check-config` compares the mapping with.

pub mod fields;
pub mod settings;
pub mod xml;

pub use settings::{Deprovisioned, FeedSettings, LinchpinSettings};
