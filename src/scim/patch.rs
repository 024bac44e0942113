//! PATCH (RFC 7644 §3.5.2): parsing a `PatchOp` message and applying it to a document.
//!
//! Application is all-or-nothing: operations run in order on a copy, and any error discards the
//! copy. Group membership is not part of the stored document (it is a table, so groups with
//! 100k members are patched without rewriting a blob); operations on `members` are returned as
//! [`MemberOp`]s for the store to apply in the same transaction.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::coerce::{self, Origin};
use super::dialect::{self, PathlessTarget};
use super::error::{ScimError, ScimResult};
use super::filter::{self, CompValue, CompareOp, Filter};
use super::members::{member_refs, MemberOp};
use super::path::PatchPath;
use super::resource::Document;
use super::schema::{Attribute, Mutability, ResourceKind, ResourceType, SchemaRegistry};

/// The `PatchOp` message URN.
pub const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The three operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `add`
    Add,
    /// `remove`
    Remove,
    /// `replace`
    Replace,
}

/// One operation, with its path still as sent (it is resolved against the schema on apply).
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// The operation.
    pub kind: OpKind,
    /// The `path`, if any.
    pub path: Option<String>,
    /// The `value`, if any.
    pub value: Option<Value>,
}

/// A parsed `PatchOp` request.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    /// Operations in order.
    pub operations: Vec<Operation>,
}

/// The result of applying a PATCH.
#[derive(Debug, Clone, PartialEq)]
pub struct Patched {
    /// The new document.
    pub doc: Document,
    /// Membership changes, in order (Groups only).
    pub members: Vec<MemberOp>,
    /// The cost the PATCH spent (see [`apply`]).
    pub cost: u64,
}

/// Parses a `PatchOp` body.
///
/// `op` is matched case-insensitively: Entra's default dialect sends `Add`/`Replace`/`Remove`
/// (docs/reference/idp-behaviour.md E1, MS-COMPAT). An empty `Operations` array is a no-op rather
/// than an error (docs/reference/idp-behaviour.md c38: the Microsoft validator has sent one).
pub fn parse(body: &Value) -> ScimResult<PatchRequest> {
    let Value::Object(obj) = body else {
        return Err(ScimError::invalid_syntax(
            "a PATCH body must be a PatchOp JSON object",
        ));
    };
    let ops = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .map(|(_, v)| v)
        .ok_or_else(|| {
            ScimError::invalid_syntax("a PatchOp message needs an \"Operations\" array")
        })?;
    let Value::Array(ops) = ops else {
        return Err(ScimError::invalid_syntax("\"Operations\" must be an array"));
    };
    let mut operations = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let Value::Object(op) = op else {
            return Err(ScimError::invalid_syntax(format!(
                "operation {i} is not a JSON object"
            )));
        };
        let field = |name: &str| {
            op.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let kind = match field("op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("add") => OpKind::Add,
            Some("remove") => OpKind::Remove,
            Some("replace") => OpKind::Replace,
            _ => {
                return Err(ScimError::invalid_syntax(format!(
                    "operation {i}: \"op\" must be one of add, remove, replace"
                )))
            }
        };
        let path = match field("path") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if p.trim().is_empty() => None,
            Some(Value::String(p)) => Some(p.trim().to_owned()),
            Some(_) => {
                return Err(ScimError::invalid_path(format!(
                    "operation {i}: \"path\" must be a string"
                )))
            }
        };
        let value = field("value").cloned();
        if kind != OpKind::Remove && value.is_none() {
            return Err(ScimError::invalid_value(format!(
                "operation {i}: \"{}\" needs a \"value\"",
                if kind == OpKind::Add {
                    "add"
                } else {
                    "replace"
                }
            )));
        }
        if kind == OpKind::Remove && path.is_none() {
            return Err(ScimError::no_target(format!(
                "operation {i}: \"remove\" needs a \"path\""
            )));
        }
        operations.push(Operation { kind, path, value });
    }
    Ok(PatchRequest { operations })
}

/// Applies a PATCH to a copy of `doc`. The caller then checks required and immutable
/// attributes on the result, so a PATCH cannot remove `userName`.
///
/// `max_cost` bounds the work (`limits.max_patch_cost`): every operation costs 1 plus the
/// values it touches, those it carries and those of the attribute it reads or rewrites (a
/// filtered path evaluates its filter on every value). The budget is spent as the
/// operations run, so a PATCH of ten thousand filtered operations on an attribute of
/// thousands of values stops after the first few with `400 invalidValue`, instead of
/// running for seconds (RFC 7644 §3.12: of the error types applicable to PATCH,
/// `invalidValue`, "not compatible with the operation", fits a request over a server limit;
/// `tooMany` is defined for filters of queries only).
pub fn apply(
    reg: &SchemaRegistry,
    rt: &ResourceType,
    doc: &Document,
    req: &PatchRequest,
    max_cost: u64,
) -> ScimResult<Patched> {
    let mut work = Patcher {
        reg,
        rt,
        doc: doc.clone(),
        members: Vec::new(),
        budget: Budget {
            max: max_cost,
            spent: 0,
        },
    };
    for (i, op) in req.operations.iter().enumerate() {
        work.budget.spend(1)?;
        work.operation(op).map_err(|mut e| {
            if !e.detail.starts_with(TOO_COSTLY) {
                e.detail = format!("operation {i}: {}", e.detail);
            }
            e
        })?;
    }
    Ok(Patched {
        doc: super::resource::recheck(rt, &work.doc)?,
        members: work.members,
        cost: work.budget.spent,
    })
}

/// The resolved target of a path.
struct Target<'a> {
    ext: Option<String>,
    attr: &'a Attribute,
    sub: Option<&'a Attribute>,
    filter: Option<Filter>,
}

struct Patcher<'a> {
    reg: &'a SchemaRegistry,
    rt: &'a ResourceType,
    doc: Document,
    members: Vec<MemberOp>,
    budget: Budget,
}

/// The start of the detail of a PATCH over its cost budget.
const TOO_COSTLY: &str = "the PATCH touches too many values";

/// What is left of a PATCH's cost budget.
struct Budget {
    max: u64,
    spent: u64,
}

impl Budget {
    fn spend(&mut self, values: usize) -> ScimResult<()> {
        self.spent = self.spent.saturating_add(values as u64);
        if self.spent > self.max {
            return Err(ScimError::invalid_value(format!(
                "{TOO_COSTLY}: its operations times the values they touch exceed {} \
                 (limits.max_patch_cost); send fewer operations per request",
                self.max
            )));
        }
        Ok(())
    }
}

/// Values of a multi-valued value (1 for a single value, 0 for none).
fn count(v: Option<&Value>) -> usize {
    match v {
        Some(Value::Array(items)) => items.len(),
        Some(Value::Null) | None => 0,
        Some(_) => 1,
    }
}

impl<'a> Patcher<'a> {
    fn operation(&mut self, op: &Operation) -> ScimResult<()> {
        let Some(path) = &op.path else {
            return self.pathless(op.kind, op.value.as_ref().unwrap_or(&Value::Null));
        };
        // The whole extension as a path: `urn:…:enterprise:2.0:User` with an object value.
        if let Some(urn) = self.reg.canonical_urn(path) {
            if let Some(ext) = self.rt.extension(urn) {
                let urn = ext.schema.id.clone();
                if op.kind == OpKind::Remove {
                    self.doc.remove(&urn);
                    return Ok(());
                }
                return self.extension_object(
                    op.kind,
                    &urn,
                    op.value.as_ref().unwrap_or(&Value::Null),
                );
            }
        }
        let parsed = PatchPath::parse(path)?;
        let Some(target) = self.resolve(&parsed)? else {
            // Unknown attribute: ignored, as in POST and PUT (docs/reference/idp-behaviour.md §1
            // rule 8).
            return Ok(());
        };
        if target.attr.mutability == Mutability::ReadOnly {
            return Err(ScimError::mutability(format!(
                "attribute \"{}\" is read-only",
                target.attr.name
            )));
        }
        self.apply_target(op.kind, target, op.value.as_ref())
    }

    fn resolve(&self, p: &PatchPath) -> ScimResult<Option<Target<'a>>> {
        let urn = match &p.attr.urn {
            Some(u) => match self.reg.canonical_urn(u) {
                Some(c) => Some(c.to_owned()),
                None => return Ok(None),
            },
            None => None,
        };
        let Some(resolved) = self.rt.resolve(urn.as_deref(), &p.attr.name) else {
            return Ok(None);
        };
        let attr = resolved.attr;
        let sub_name = p.sub.as_deref().or(p.attr.sub.as_deref());
        let sub = match sub_name {
            Some(s) => match attr.sub(s) {
                Some(sub) => Some(sub),
                None => return Ok(None),
            },
            None => None,
        };
        if let Some(f) = &p.filter {
            if !attr.is_complex() && !attr.multi_valued {
                return Err(ScimError::invalid_path(format!(
                    "a value filter needs a multi-valued or complex attribute, and \"{}\" is neither",
                    attr.name
                )));
            }
            let _ = f;
        }
        Ok(Some(Target {
            ext: resolved.extension.map(str::to_owned),
            attr,
            sub,
            filter: p.filter.clone(),
        }))
    }

    /// A path-less `add` or `replace`: every key of the object value is a target
    /// (RFC 7644 §3.5.2.1), read by [`dialect::pathless_target`], which also takes the dotted
    /// and URN-qualified keys of Entra's `aadOptscim062020` dialect
    /// (docs/reference/idp-behaviour.md E3). A read-only target such as the `id` in Okta's
    /// `{"id":…, "displayName":…}` group rename is ignored (O6).
    fn pathless(&mut self, kind: OpKind, value: &Value) -> ScimResult<()> {
        let Value::Object(obj) = value else {
            return Err(ScimError::invalid_value(
                "an operation without \"path\" needs an object \"value\"",
            ));
        };
        for (key, v) in obj {
            match dialect::pathless_target(self.reg, self.rt, key) {
                PathlessTarget::Ignore => {}
                PathlessTarget::Extension(urn) => self.extension_object(kind, &urn, v)?,
                PathlessTarget::Path(parsed) => {
                    let Some(target) = self.resolve(&parsed)? else {
                        continue;
                    };
                    if target.attr.mutability == Mutability::ReadOnly {
                        continue;
                    }
                    self.apply_target(kind, target, Some(v))?;
                }
            }
        }
        Ok(())
    }

    fn extension_object(&mut self, kind: OpKind, urn: &str, value: &Value) -> ScimResult<()> {
        let Value::Object(obj) = value else {
            if value.is_null() {
                return Ok(());
            }
            return Err(ScimError::invalid_value(format!(
                "extension \"{urn}\" needs an object value"
            )));
        };
        let Some(ext) = self.rt.extension(urn) else {
            return Ok(());
        };
        for (name, v) in obj {
            let Some(attr) = ext.schema.attribute(name) else {
                continue;
            };
            if attr.mutability == Mutability::ReadOnly {
                continue;
            }
            let target = Target {
                ext: Some(urn.to_owned()),
                attr,
                sub: None,
                filter: None,
            };
            self.apply_target(kind, target, Some(v))?;
        }
        Ok(())
    }

    fn apply_target(
        &mut self,
        kind: OpKind,
        t: Target<'a>,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        // The values carried, plus those of the attribute the operation reads or rewrites.
        let held = match t.ext.as_deref() {
            None => self.doc.get(&t.attr.name),
            Some(urn) => self.doc.get(urn).and_then(|e| e.get(&t.attr.name)),
        };
        self.budget.spend(count(value) + count(held))?;
        if self.rt.kind == ResourceKind::Group && t.ext.is_none() && t.attr.name == "members" {
            return self.members_op(kind, &t, value);
        }
        // OneLogin's `managerId`, wherever the manager is written (docs/reference/idp-behaviour.md
        // §4.2).
        let manager = value
            .filter(|_| {
                t.sub.is_none()
                    && dialect::is_enterprise_manager(self.rt, t.ext.as_deref(), &t.attr.name)
            })
            .map(|v| {
                let mut v = v.clone();
                dialect::manager_value(&mut v);
                v
            });
        let value = manager.as_ref().or(value);
        let container = container(&mut self.doc, t.ext.as_deref());
        match (&t.filter, t.sub) {
            (None, None) => whole(container, kind, t.attr, value),
            (None, Some(sub)) => sub_everywhere(container, kind, t.attr, sub, value),
            (Some(f), sub) => filtered(container, kind, t.attr, f, sub, value),
        }
    }

    fn members_op(
        &mut self,
        kind: OpKind,
        t: &Target<'_>,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        let op = match (kind, &t.filter, value) {
            (OpKind::Remove, Some(f), _) => match member_filter_ids(f) {
                Some(ids) => MemberOp::Remove(ids),
                None => MemberOp::RemoveWhere(f.clone()),
            },
            // Entra's legacy form: `remove members` with a value list removes only those
            // members, never all (docs/reference/idp-behaviour.md E8, MS-COMPAT, AZD-30826).
            (OpKind::Remove, None, Some(v)) if !v.is_null() => MemberOp::Remove(
                member_refs(t.attr, v)?
                    .into_iter()
                    .map(|m| m.value)
                    .collect(),
            ),
            (OpKind::Remove, None, _) => MemberOp::RemoveAll,
            (OpKind::Add, None, Some(v)) => MemberOp::Add(member_refs(t.attr, v)?),
            (OpKind::Replace, None, Some(v)) => MemberOp::Replace(member_refs(t.attr, v)?),
            (_, Some(_), _) => {
                return Err(ScimError::invalid_path(
                    "members are immutable once added; only \"remove\" takes a members filter",
                ))
            }
            (_, None, None) => {
                return Err(ScimError::invalid_value("missing \"value\" for members"))
            }
        };
        if t.sub.is_some() {
            return Err(ScimError::invalid_path(
                "sub-attributes of members cannot be patched",
            ));
        }
        self.members.push(op);
        Ok(())
    }
}

/// The object that holds an attribute: the document, or the extension object under its URN.
fn container<'d>(doc: &'d mut Document, ext: Option<&str>) -> &'d mut Map<String, Value> {
    match ext {
        None => doc,
        Some(urn) => {
            let slot = doc
                .entry(urn.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            slot.as_object_mut().expect("just made an object")
        }
    }
}

/// `add`/`replace`/`remove` on a whole attribute.
fn whole(
    c: &mut Map<String, Value>,
    kind: OpKind,
    attr: &Attribute,
    value: Option<&Value>,
) -> ScimResult<()> {
    let name = attr.name.clone();
    if kind == OpKind::Remove {
        match (attr.multi_valued, value) {
            // `remove` with a value list on a multi-valued attribute removes the listed values
            // (generalises Entra's legacy member removal, docs/reference/idp-behaviour.md E8).
            (true, Some(v)) if !v.is_null() => {
                let gone = coerce::attribute_value(attr, v, Origin::Client)?;
                if let (Some(Value::Array(gone)), Some(Value::Array(have))) =
                    (gone, c.get_mut(&name))
                {
                    // By sets, not pairwise: both lists may be long. An element with a
                    // `value` goes when a listed one has that `value`; one without, when
                    // it equals a listed one without (`same_value`).
                    let key = |v: &Value| match v.get("value") {
                        Some(inner) => (true, coerce::canonical(inner)),
                        None => (false, coerce::canonical(v)),
                    };
                    let gone: HashSet<(bool, String)> = gone.iter().map(key).collect();
                    have.retain(|e| !gone.contains(&key(e)));
                }
            }
            _ => {
                c.remove(&name);
            }
        }
        return Ok(());
    }
    let new = coerce::attribute_value(attr, value.unwrap_or(&Value::Null), Origin::Client)?;
    let Some(new) = new else {
        // Setting "no value" clears the attribute (docs/reference/idp-behaviour.md §1 rule 19, E6).
        c.remove(&name);
        return Ok(());
    };
    match (kind, attr.multi_valued, c.get_mut(&name)) {
        (OpKind::Add, true, Some(Value::Array(have))) => {
            if let Value::Array(items) = new {
                let mut seen: HashSet<String> = have.iter().map(coerce::canonical).collect();
                for item in items {
                    if seen.insert(coerce::canonical(&item)) {
                        have.push(item);
                    }
                }
            }
        }
        // RFC 7644 §3.5.2.1/§3.5.2.3: add or replace on a complex attribute merges the given
        // sub-attributes. Exception: when the value carries `value` (a reference such as the
        // manager), the object is replaced, so a stale `$ref` of the old manager cannot survive.
        (_, false, Some(Value::Object(have))) if attr.is_complex() => match new {
            Value::Object(n) if n.contains_key("value") => *have = n,
            Value::Object(n) => have.extend(n),
            _ => {}
        },
        _ => {
            c.insert(name, new);
        }
    }
    Ok(())
}

/// A sub-attribute without a filter: `name.givenName`; on a multi-valued attribute it applies
/// to every element.
fn sub_everywhere(
    c: &mut Map<String, Value>,
    kind: OpKind,
    attr: &Attribute,
    sub: &Attribute,
    value: Option<&Value>,
) -> ScimResult<()> {
    let new = match kind {
        OpKind::Remove => None,
        _ => coerce::simple_value(sub, value.unwrap_or(&Value::Null))?,
    };
    if attr.multi_valued {
        if let Some(Value::Array(items)) = c.get_mut(&attr.name) {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                set_or_remove(item, &sub.name, new.clone());
            }
        } else if new.is_some() {
            return Err(ScimError::no_target(format!(
                "\"{}\" has no values whose \"{}\" could be set; use a value filter",
                attr.name, sub.name
            )));
        }
        return Ok(());
    }
    let slot = c
        .entry(attr.name.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    if let Some(obj) = slot.as_object_mut() {
        set_or_remove(obj, &sub.name, new);
    }
    Ok(())
}

/// A value-filtered path: `emails[type eq "work"]`, `emails[type eq "work"].value`,
/// `manager[value eq "id"]`.
///
/// An `add` or `replace` that matches no element creates one from the filter's equality terms
/// (Entra relies on it: docs/reference/idp-behaviour.md E7, c50–c52).
fn filtered(
    c: &mut Map<String, Value>,
    kind: OpKind,
    attr: &Attribute,
    f: &Filter,
    sub: Option<&Attribute>,
    value: Option<&Value>,
) -> ScimResult<()> {
    let new_sub = match (kind, sub) {
        (OpKind::Remove, _) | (_, None) => None,
        (_, Some(s)) => coerce::simple_value(s, value.unwrap_or(&Value::Null))?,
    };
    let new_obj = match (kind, sub) {
        (OpKind::Remove, _) | (_, Some(_)) => None,
        (_, None) => coerce::single_value(attr, value.unwrap_or(&Value::Null), Origin::Client)?,
    };
    if !attr.multi_valued {
        // A single complex attribute seen as a list of at most one element.
        let matches = c
            .get(&attr.name)
            .is_some_and(|v| filter::matches_element(f, attr, v));
        if matches {
            match (kind, sub) {
                (OpKind::Remove, None) => {
                    c.remove(&attr.name);
                }
                (_, Some(s)) => {
                    if let Some(obj) = c.get_mut(&attr.name).and_then(Value::as_object_mut) {
                        set_or_remove(obj, &s.name, new_sub);
                    }
                }
                (_, None) => match new_obj {
                    Some(v) => {
                        c.insert(attr.name.clone(), v);
                    }
                    None => {
                        c.remove(&attr.name);
                    }
                },
            }
        }
        return Ok(());
    }
    let mut matched = 0usize;
    if let Some(Value::Array(items)) = c.get_mut(&attr.name) {
        if kind == OpKind::Remove && sub.is_none() {
            let before = items.len();
            items.retain(|e| !filter::matches_element(f, attr, e));
            matched = before - items.len();
        } else {
            for item in items.iter_mut() {
                if !filter::matches_element(f, attr, item) {
                    continue;
                }
                matched += 1;
                match (sub, item.as_object_mut()) {
                    (Some(s), Some(obj)) => set_or_remove(obj, &s.name, new_sub.clone()),
                    (None, Some(obj)) => {
                        if let Some(Value::Object(n)) = &new_obj {
                            obj.extend(n.clone());
                        }
                    }
                    (_, None) => {}
                }
            }
        }
    }
    if matched > 0 || kind == OpKind::Remove {
        return Ok(());
    }
    let mut element = equality_terms(f).ok_or_else(|| {
        ScimError::no_target(format!(
            "no value of \"{}\" matches the filter, and the filter is not a set of \"eq\" \
             terms from which a new value could be made",
            attr.name
        ))
    })?;
    match (sub, new_sub, new_obj) {
        (Some(s), Some(v), _) => {
            element.insert(s.name.clone(), v);
        }
        (None, _, Some(Value::Object(n))) => element.extend(n),
        _ => return Ok(()), // Setting "no value" on a missing element changes nothing.
    }
    let element = coerce::single_value(attr, &Value::Object(element), Origin::Client)?;
    if let Some(element) = element {
        let slot = c
            .entry(attr.name.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = slot {
            items.push(element);
        } else {
            *slot = Value::Array(vec![element]);
        }
    }
    Ok(())
}

/// The `attr eq literal` terms of a filter made only of such terms joined by `and`.
fn equality_terms(f: &Filter) -> Option<Map<String, Value>> {
    match f {
        Filter::Compare(p, CompareOp::Eq, v) if p.urn.is_none() && p.sub.is_none() => {
            let v = match v {
                CompValue::String(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return None,
            };
            let mut m = Map::new();
            m.insert(p.name.clone(), v);
            Some(m)
        }
        Filter::And(a, b) => {
            let mut m = equality_terms(a)?;
            m.extend(equality_terms(b)?);
            Some(m)
        }
        _ => None,
    }
}

/// The ids named by a member filter of the form `value eq "a" [or value eq "b" …]`, which the
/// store can apply without loading the member list.
fn member_filter_ids(f: &Filter) -> Option<Vec<String>> {
    match f {
        Filter::Compare(p, CompareOp::Eq, CompValue::String(id))
            if p.urn.is_none() && p.sub.is_none() && p.name.eq_ignore_ascii_case("value") =>
        {
            Some(vec![id.clone()])
        }
        Filter::Or(a, b) => {
            let mut ids = member_filter_ids(a)?;
            ids.extend(member_filter_ids(b)?);
            Some(ids)
        }
        _ => None,
    }
}

fn set_or_remove(obj: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            obj.insert(key.to_owned(), v);
        }
        None => {
            obj.remove(key);
        }
    }
}
