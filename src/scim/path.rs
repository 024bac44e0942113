//! Attribute paths (RFC 7644 §3.10 and the PATCH `path` grammar of §3.5.2).
//!
//! `attrPath = [URI ":"] ATTRNAME *1subAttr`; a PATCH path may also carry a value filter and a
//! sub-attribute after it: `emails[type eq "work"].value`.

use std::fmt;

use super::error::ScimResult;
use super::filter::Filter;

/// `[urn:]name[.sub]`. Names keep the client's spelling; resolution against the schema is
/// case-insensitive and happens later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix, if the path was qualified (`urn:...:User:manager` → the part
    /// before the last `:` that precedes the attribute name).
    pub urn: Option<String>,
    /// The attribute name.
    pub name: String,
    /// The sub-attribute name, if any.
    pub sub: Option<String>,
}

/// A PATCH operation path: an attribute path, an optional value filter and an optional
/// sub-attribute after the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (with `sub` set only when there is no filter, as in `name.givenName`).
    pub attr: AttrPath,
    /// The value filter in brackets, evaluated against each element of a multi-valued attribute.
    pub filter: Option<Filter>,
    /// The sub-attribute after the brackets (`emails[type eq "work"].value` → `value`).
    pub sub: Option<String>,
}

impl AttrPath {
    /// Parses `[urn:]name[.sub]`.
    pub fn parse(s: &str) -> ScimResult<AttrPath> {
        let _ = s;
        todo!("filter helper")
    }
}

impl PatchPath {
    /// Parses a PATCH `path`.
    pub fn parse(s: &str) -> ScimResult<PatchPath> {
        let _ = s;
        todo!("filter helper")
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}
