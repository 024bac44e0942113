//! Attribute selection on output (RFC 7644 §3.4.2.5 and RFC 7643 §7 `returned`).
//!
//! Works on a rendered resource: `returned: never` attributes are always removed, `always`
//! ones (`id`, `schemas`) always kept, `request` ones only kept when asked for.

use serde_json::{Map, Value};

use super::filter::{matches_element, Filter};
use super::path::AttrPath;
use super::query::Projection;
use super::schema::{Attribute, ResourceType, Returned};

/// Applies `attributes`/`excludedAttributes` and the `returned` characteristic.
pub fn project(rt: &ResourceType, doc: Map<String, Value>, p: &Projection) -> Map<String, Value> {
    let mut out = Map::with_capacity(doc.len());
    for (key, value) in doc {
        if key == "schemas" {
            out.insert(key, value);
            continue;
        }
        if let Some(ext) = rt.extension(&key) {
            let Value::Object(ext_doc) = value else {
                continue;
            };
            let urn = ext.schema.id.clone();
            let mut kept = Map::new();
            for (name, v) in ext_doc {
                let Some(attr) = ext.schema.attribute(&name) else {
                    continue;
                };
                if let Some(v) = select(attr, Some(&urn), v, p) {
                    kept.insert(name, v);
                }
            }
            if !kept.is_empty() {
                out.insert(key, Value::Object(kept));
            }
            continue;
        }
        let Some(resolved) = rt.resolve(None, &key) else {
            continue;
        };
        if let Some(v) = select(resolved.attr, None, value, p) {
            out.insert(key, v);
        }
    }
    // Keep `schemas` truthful: drop extension URNs whose attributes were all filtered out.
    let present: Vec<String> = out.keys().cloned().collect();
    if let Some(Value::Array(schemas)) = out.get_mut("schemas") {
        schemas.retain(|s| {
            s.as_str().is_some_and(|s| {
                s.eq_ignore_ascii_case(&rt.core.id) || present.iter().any(|k| k == s)
            })
        });
    }
    out
}

fn names(path: &AttrPath, attr: &Attribute, urn: Option<&str>) -> bool {
    let urn_ok = match (&path.urn, urn) {
        (None, _) => true,
        (Some(p), Some(u)) => p.eq_ignore_ascii_case(u),
        (Some(_), None) => true, // core URN qualification; resolved names below decide
    };
    urn_ok && path.name.eq_ignore_ascii_case(&attr.name)
}

/// Whether the path is an extension URN on its own (`attributes=urn:…:enterprise:2.0:User`).
fn names_extension(path: &AttrPath, urn: Option<&str>) -> bool {
    let Some(urn) = urn else { return false };
    let full = match &path.urn {
        Some(u) => format!("{u}:{}", path.name),
        None => path.name.clone(),
    };
    full.eq_ignore_ascii_case(urn)
}

fn select(attr: &Attribute, urn: Option<&str>, value: Value, p: &Projection) -> Option<Value> {
    match attr.returned {
        Returned::Never => return None,
        Returned::Always => return Some(value),
        _ => {}
    }
    if p.selects() {
        if p.attributes.iter().any(|a| names_extension(a, urn))
            && attr.returned != Returned::Request
        {
            return Some(value);
        }
        let asked: Vec<&AttrPath> = p
            .attributes
            .iter()
            .filter(|a| names(a, attr, urn))
            .collect();
        let filtered: Vec<&(AttrPath, Filter)> = p
            .value_filters
            .iter()
            .filter(|(a, _)| names(a, attr, urn))
            .collect();
        if asked.is_empty() && filtered.is_empty() {
            return None;
        }
        // Named without a filter: every value; else the values a filter matches.
        let value = if asked.is_empty() {
            matching_values(attr, value, &filtered)?
        } else {
            value
        };
        let paths = || asked.iter().copied().chain(filtered.iter().map(|(a, _)| a));
        if paths().any(|a| a.sub.is_none()) {
            return Some(strip_subs(attr, value, &[]));
        }
        let subs: Vec<&str> = paths().filter_map(|a| a.sub.as_deref()).collect();
        return keep_subs(value, &subs);
    }
    if attr.returned == Returned::Request {
        return None;
    }
    let excluded: Vec<&AttrPath> = p.excluded.iter().filter(|a| names(a, attr, urn)).collect();
    if excluded.iter().any(|a| a.sub.is_none()) {
        return None;
    }
    let subs: Vec<&str> = excluded.iter().filter_map(|a| a.sub.as_deref()).collect();
    Some(strip_subs(attr, value, &subs))
}

/// The values of a multi-valued attribute that one of the filters matches (RFC 7644
/// §3.4.2.2 value filters, as in PATCH paths); `None` when none does, so the attribute is
/// left out. A single-valued attribute is kept when the filter matches it.
fn matching_values(
    attr: &Attribute,
    value: Value,
    filters: &[&(AttrPath, Filter)],
) -> Option<Value> {
    let hit = |v: &Value| filters.iter().any(|(_, f)| matches_element(f, attr, v));
    match value {
        Value::Array(items) => {
            let kept: Vec<Value> = items.into_iter().filter(|v| hit(v)).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => hit(&other).then_some(other),
    }
}

/// Removes the named sub-attributes and those returned `never` or only on request.
fn strip_subs(attr: &Attribute, value: Value, subs: &[&str]) -> Value {
    if !attr.is_complex() {
        return value;
    }
    let hidden = |k: &str| {
        subs.iter().any(|s| s.eq_ignore_ascii_case(k))
            || attr
                .sub(k)
                .is_some_and(|s| matches!(s.returned, Returned::Never | Returned::Request))
    };
    map_objects(value, &|mut o| {
        o.retain(|k, _| !hidden(k));
        o
    })
}

fn keep_subs(value: Value, subs: &[&str]) -> Option<Value> {
    let v = map_objects(value, &|mut o| {
        o.retain(|k, _| subs.iter().any(|s| s.eq_ignore_ascii_case(k)));
        o
    });
    match &v {
        Value::Object(o) if o.is_empty() => None,
        Value::Array(a) if a.iter().all(|e| e.as_object().is_some_and(Map::is_empty)) => None,
        _ => Some(v),
    }
}

fn map_objects(value: Value, f: &dyn Fn(Map<String, Value>) -> Map<String, Value>) -> Value {
    match value {
        Value::Object(o) => Value::Object(f(o)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| match i {
                    Value::Object(o) => Value::Object(f(o)),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}
