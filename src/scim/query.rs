//! List and search parameters (RFC 7644 §3.4.2 and §3.4.3): filter, sorting, paging and
//! attribute selection, from a query string or a `SearchRequest` body.

use serde_json::Value;

use super::error::{ScimError, ScimResult};
use super::filter::{self, Filter, Limits};
use super::path::{AttrPath, PatchPath};
use super::schema::{ResourceType, SchemaRegistry};

/// The `SearchRequest` message URN (RFC 7644 §3.4.3).
pub const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// The `ListResponse` message URN.
pub const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// `ascending` (the default, RFC 7644 §3.4.2.3).
    #[default]
    Ascending,
    /// `descending`.
    Descending,
}

/// Which attributes to return (RFC 7644 §3.4.2.5).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    /// `attributes`: return only these (plus those returned `always`).
    pub attributes: Vec<AttrPath>,
    /// `excludedAttributes`: return all default attributes but these.
    pub excluded: Vec<AttrPath>,
    /// Entries of `attributes` with a value filter (`emails[type eq "work"]`, optionally followed
    /// by a sub-attribute): the attribute is returned with the matching values only. RFC 7644
    /// §3.4.2.5 names attributes by `attrPath`, which has no filter; Microsoft's SCIM reference
    /// test collection sends one and expects the matching values (docs/API.md "Deliberate
    /// deviations and choices"), so it is answered rather than refused.
    pub value_filters: Vec<(AttrPath, Filter)>,
}

impl Projection {
    /// From the `attributes` and `excludedAttributes` texts. A value filter is accepted in
    /// `attributes` only.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> ScimResult<Projection> {
        let mut plain = Vec::new();
        let mut value_filters = Vec::new();
        for item in split_list(attributes.unwrap_or_default()) {
            if item.contains('[') {
                let p = PatchPath::parse(item)
                    .map_err(|e| ScimError::bad_request(format!("attributes: {}", e.detail)))?;
                let mut path = p.attr;
                path.sub = p.sub;
                match p.filter {
                    Some(f) => value_filters.push((path, f)),
                    None => plain.push(path),
                }
            } else {
                plain
                    .push(AttrPath::parse(item).map_err(|e| {
                        ScimError::bad_request(format!("attributes: {}", e.detail))
                    })?);
            }
        }
        Ok(Projection {
            attributes: plain,
            excluded: attr_list(excluded, "excludedAttributes")?,
            value_filters,
        })
    }

    /// Whether `attributes` was given (then only what it names is returned).
    pub fn selects(&self) -> bool {
        !self.attributes.is_empty() || !self.value_filters.is_empty()
    }

    /// Whether `attributes` names the attribute `name` (with or without a value filter).
    pub fn selects_name(&self, name: &str) -> bool {
        self.attributes
            .iter()
            .chain(self.value_filters.iter().map(|(p, _)| p))
            .any(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// The items of a comma-separated list, trimmed and non-empty. Commas inside brackets or
/// quoted strings (`emails[value eq "a,b"]`) do not separate.
fn split_list(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut escaped, mut start) = (0usize, false, false, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// A parsed list or search request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// The filter, checked against the resource type.
    pub filter: Option<Filter>,
    /// 1-based index of the first result.
    pub start_index: usize,
    /// Maximum number of results; `None` means the server's default page size.
    pub count: Option<usize>,
    /// Attribute to sort by.
    pub sort_by: Option<AttrPath>,
    /// Sort direction.
    pub sort_order: SortOrder,
    /// Attribute selection.
    pub projection: Projection,
}

/// Raw parameters, from either source.
#[derive(Debug, Default)]
pub struct RawQuery {
    /// `filter`
    pub filter: Option<String>,
    /// `startIndex`
    pub start_index: Option<String>,
    /// `count`
    pub count: Option<String>,
    /// `sortBy`
    pub sort_by: Option<String>,
    /// `sortOrder`
    pub sort_order: Option<String>,
    /// `attributes`
    pub attributes: Option<String>,
    /// `excludedAttributes`
    pub excluded: Option<String>,
}

impl RawQuery {
    /// Collects the parameters of a decoded query string. Names are matched
    /// case-insensitively, unknown parameters (such as Entra's `aadOptscim062020` flag,
    /// docs/reference/idp-behaviour.md §2.1) are ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut q = RawQuery::default();
        for (k, v) in pairs {
            if let Some(slot) = q.slot(k) {
                *slot = Some(v.to_owned());
            }
        }
        q
    }

    /// The field of a parameter name (case-insensitive); `None` for unknown parameters.
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name.to_ascii_lowercase().as_str() {
            "filter" => &mut self.filter,
            "startindex" => &mut self.start_index,
            "count" => &mut self.count,
            "sortby" => &mut self.sort_by,
            "sortorder" => &mut self.sort_order,
            "attributes" => &mut self.attributes,
            "excludedattributes" => &mut self.excluded,
            _ => return None,
        })
    }

    /// Collects the parameters of a `POST /.search` body (RFC 7644 §3.4.3).
    pub fn from_search_body(body: &Value) -> ScimResult<Self> {
        let Value::Object(obj) = body else {
            return Err(ScimError::invalid_syntax(
                "a search body must be a SearchRequest JSON object",
            ));
        };
        let mut q = RawQuery::default();
        for (k, v) in obj {
            let as_text = |v: &Value| -> ScimResult<String> {
                match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    Value::Array(items) => Ok(items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")),
                    _ => Err(ScimError::invalid_value(format!(
                        "\"{k}\" has the wrong type"
                    ))),
                }
            };
            if v.is_null() {
                continue;
            }
            let text = as_text(v)?;
            if let Some(slot) = q.slot(k) {
                *slot = Some(text);
            }
        }
        Ok(q)
    }

    /// Parses and checks the parameters.
    ///
    /// `startIndex` below 1 is treated as 1 and a negative `count` as 0 (RFC 7644 §3.4.2.4).
    pub fn parse(
        &self,
        reg: &SchemaRegistry,
        rt: &ResourceType,
        limits: &Limits,
    ) -> ScimResult<ListQuery> {
        let filter = match self.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(f) => {
                let f = filter::canonical_urns(filter::parse_with_limits(f, limits)?, reg);
                filter::check(&f, rt)?;
                Some(f)
            }
        };
        let start_index = match &self.start_index {
            None => 1,
            Some(s) => parse_int(s, "startIndex")?.max(1) as usize,
        };
        let count = match &self.count {
            None => None,
            Some(s) => Some(parse_int(s, "count")?.max(0) as usize),
        };
        let sort_by = match self.sort_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => {
                let p = AttrPath::parse(s)
                    .map_err(|e| ScimError::bad_request(format!("sortBy: {}", e.detail)))?;
                if rt.resolve(p.urn.as_deref(), &p.name).is_none() {
                    return Err(ScimError::bad_request(format!(
                        "sortBy: \"{s}\" is not an attribute of {}",
                        rt.kind.as_str()
                    )));
                }
                Some(p)
            }
        };
        let sort_order = match self
            .sort_order
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("ascending") => SortOrder::Ascending,
            Some("descending") => SortOrder::Descending,
            Some(_) => {
                return Err(ScimError::bad_request(
                    "sortOrder must be \"ascending\" or \"descending\"",
                ))
            }
        };
        Ok(ListQuery {
            filter,
            start_index,
            count,
            sort_by,
            sort_order,
            projection: Projection::parse(self.attributes.as_deref(), self.excluded.as_deref())?,
        })
    }
}

/// Parses a comma-separated attribute list (`attributes=userName,emails`).
pub fn attr_list(s: Option<&str>, what: &str) -> ScimResult<Vec<AttrPath>> {
    let Some(s) = s else { return Ok(Vec::new()) };
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            AttrPath::parse(p).map_err(|e| ScimError::bad_request(format!("{what}: {}", e.detail)))
        })
        .collect()
}

fn parse_int(s: &str, what: &str) -> ScimResult<i64> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| ScimError::bad_request(format!("{what} must be an integer")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ResourceKind, SchemaRegistry};

    #[test]
    fn paging_is_clamped_as_rfc_7644_says() {
        let reg = SchemaRegistry::builtin();
        let rt = reg.resource_type(ResourceKind::User);
        let q = RawQuery::from_pairs([
            ("startIndex", "0"),
            ("count", "-1"),
            ("aadOptscim062020", ""),
        ])
        .parse(&reg, rt, &Limits::default())
        .unwrap();
        assert_eq!((q.start_index, q.count), (1, Some(0)));
    }

    #[test]
    fn parameter_names_are_case_insensitive_and_bad_numbers_are_errors() {
        let reg = SchemaRegistry::builtin();
        let rt = reg.resource_type(ResourceKind::User);
        let q = RawQuery::from_pairs([("STARTINDEX", "3"), ("Count", "2")])
            .parse(&reg, rt, &Limits::default())
            .unwrap();
        assert_eq!((q.start_index, q.count), (3, Some(2)));
        let err = RawQuery::from_pairs([("count", "ten")])
            .parse(&reg, rt, &Limits::default())
            .unwrap_err();
        assert_eq!(err.status, 400);
    }
}
