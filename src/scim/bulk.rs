//! Bulk requests (RFC 7644 §3.7): parsing, `bulkId` references and ordering.

use std::collections::HashMap;

use serde_json::Value;

use super::error::{ScimError, ScimResult};
use super::schema::ResourceKind;

/// `BulkRequest` message URN.
pub const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// `BulkResponse` message URN.
pub const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// HTTP method of one bulk operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkMethod {
    /// Create.
    Post,
    /// Replace.
    Put,
    /// Modify.
    Patch,
    /// Delete.
    Delete,
}

impl BulkMethod {
    /// Wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkMethod::Post => "POST",
            BulkMethod::Put => "PUT",
            BulkMethod::Patch => "PATCH",
            BulkMethod::Delete => "DELETE",
        }
    }
}

/// One operation of a bulk request.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperation {
    /// Method.
    pub method: BulkMethod,
    /// Client-chosen id for POSTs, referenced elsewhere as `bulkId:<id>`.
    pub bulk_id: Option<String>,
    /// `version` (an ETag, as `If-Match`).
    pub version: Option<String>,
    /// Resource type.
    pub kind: ResourceKind,
    /// The resource id, or a `bulkId:` reference, for PUT/PATCH/DELETE.
    pub id: Option<String>,
    /// The body.
    pub data: Option<Value>,
}

/// A parsed bulk request.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    /// Stop after this many errors (RFC 7644 §3.7.3); `None` means never stop.
    pub fail_on_errors: Option<usize>,
    /// Operations in the client's order.
    pub operations: Vec<BulkOperation>,
}

/// Parses a `BulkRequest`, enforcing the advertised `maxOperations` (413 when exceeded, as
/// RFC 7644 §3.7.4 requires).
pub fn parse(body: &Value, max_operations: usize) -> ScimResult<BulkRequest> {
    let Value::Object(obj) = body else {
        return Err(ScimError::invalid_syntax(
            "a bulk body must be a BulkRequest JSON object",
        ));
    };
    let get = |name: &str| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let fail_on_errors = match get("failOnErrors") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) | None => None,
            Some(n) => Some(n as usize),
        },
        Some(_) => {
            return Err(ScimError::invalid_value(
                "\"failOnErrors\" must be an integer",
            ))
        }
    };
    let Some(Value::Array(ops)) = get("Operations") else {
        return Err(ScimError::invalid_syntax(
            "a BulkRequest needs an \"Operations\" array",
        ));
    };
    if ops.len() > max_operations {
        return Err(ScimError::payload_too_large(format!(
            "the bulk request has {} operations; the maximum is {max_operations}",
            ops.len()
        )));
    }
    let mut operations = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        operations.push(parse_operation(op).map_err(|mut e| {
            e.detail = format!("bulk operation {i}: {}", e.detail);
            e
        })?);
    }
    let mut seen = std::collections::HashSet::new();
    for op in &operations {
        if let Some(b) = &op.bulk_id {
            if !seen.insert(b.as_str()) {
                return Err(ScimError::invalid_value(format!(
                    "bulkId \"{b}\" is used twice"
                )));
            }
        }
    }
    Ok(BulkRequest {
        fail_on_errors,
        operations,
    })
}

fn parse_operation(op: &Value) -> ScimResult<BulkOperation> {
    let Value::Object(op) = op else {
        return Err(ScimError::invalid_syntax("not a JSON object"));
    };
    let get = |name: &str| {
        op.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let text = |name: &str| get(name).and_then(Value::as_str).map(str::to_owned);
    let method = match text("method").map(|m| m.to_ascii_uppercase()).as_deref() {
        Some("POST") => BulkMethod::Post,
        Some("PUT") => BulkMethod::Put,
        Some("PATCH") => BulkMethod::Patch,
        Some("DELETE") => BulkMethod::Delete,
        _ => {
            return Err(ScimError::invalid_syntax(
                "\"method\" must be POST, PUT, PATCH or DELETE",
            ))
        }
    };
    let path = text("path").ok_or_else(|| ScimError::invalid_syntax("\"path\" is missing"))?;
    let mut segments = path.trim_matches('/').splitn(2, '/');
    let kind = match segments.next().map(str::to_ascii_lowercase).as_deref() {
        Some("users") => ResourceKind::User,
        Some("groups") => ResourceKind::Group,
        _ => {
            return Err(ScimError::invalid_path(format!(
                "\"{path}\" names no resource endpoint"
            )))
        }
    };
    let id = segments.next().filter(|s| !s.is_empty()).map(str::to_owned);
    match (method, &id) {
        (BulkMethod::Post, Some(_)) => {
            return Err(ScimError::invalid_path(
                "POST takes a resource endpoint, not a resource",
            ))
        }
        (BulkMethod::Put | BulkMethod::Patch | BulkMethod::Delete, None) => {
            return Err(ScimError::invalid_path(format!(
                "{} needs a resource id in \"path\"",
                method.as_str()
            )))
        }
        _ => {}
    }
    let bulk_id = text("bulkId");
    if method == BulkMethod::Post && bulk_id.is_none() {
        return Err(ScimError::invalid_value(
            "POST operations need a \"bulkId\" (RFC 7644 §3.7)",
        ));
    }
    let data = get("data").cloned();
    if method != BulkMethod::Delete && data.is_none() {
        return Err(ScimError::invalid_syntax(format!(
            "{} needs \"data\"",
            method.as_str()
        )));
    }
    Ok(BulkOperation {
        method,
        bulk_id,
        version: text("version"),
        kind,
        id,
        data,
    })
}

const PREFIX: &str = "bulkId:";

/// The `bulkId:` references inside an operation (in its path id and its data).
pub fn references(op: &BulkOperation) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(r) = op.id.as_deref().and_then(|id| id.strip_prefix(PREFIX)) {
        out.push(r.to_owned());
    }
    if let Some(d) = &op.data {
        collect(d, &mut out);
    }
    out
}

fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Some(r) = s.strip_prefix(PREFIX) {
                out.push(r.to_owned());
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
        Value::Object(o) => o.values().for_each(|v| collect(v, out)),
        _ => {}
    }
}

/// Replaces every `bulkId:x` with the id created for `x`.
pub fn substitute(op: &mut BulkOperation, ids: &HashMap<String, String>) {
    if let Some(id) = &mut op.id {
        if let Some(new) = id.strip_prefix(PREFIX).and_then(|r| ids.get(r)) {
            *id = new.clone();
        }
    }
    if let Some(d) = &mut op.data {
        replace(d, ids);
    }
}

fn replace(v: &mut Value, ids: &HashMap<String, String>) {
    match v {
        Value::String(s) => {
            if let Some(new) = s.strip_prefix(PREFIX).and_then(|r| ids.get(r)) {
                *s = new.clone();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| replace(v, ids)),
        Value::Object(o) => o.values_mut().for_each(|v| replace(v, ids)),
        _ => {}
    }
}

/// The order in which to run the operations: the client's order, except that an operation is
/// moved after the POSTs whose `bulkId` it references (RFC 7644 §3.7.1 lets the client list
/// them in any order). Operations in a reference cycle are returned in `unresolvable`.
pub fn execution_order(req: &BulkRequest) -> (Vec<usize>, Vec<usize>) {
    let defined: HashMap<&str, usize> = req
        .operations
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.bulk_id.as_deref().map(|b| (b, i)))
        .collect();
    let deps: Vec<Vec<usize>> = req
        .operations
        .iter()
        .enumerate()
        .map(|(i, o)| {
            references(o)
                .iter()
                .filter_map(|r| defined.get(r.as_str()).copied())
                .filter(|d| *d != i)
                .collect()
        })
        .collect();
    let mut done = vec![false; req.operations.len()];
    let mut order = Vec::new();
    loop {
        let mut progressed = false;
        for i in 0..req.operations.len() {
            if !done[i] && deps[i].iter().all(|d| done[*d]) {
                done[i] = true;
                order.push(i);
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
    }
    let unresolvable = (0..req.operations.len()).filter(|i| !done[*i]).collect();
    (order, unresolvable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(ops: Value) -> BulkRequest {
        parse(
            &json!({"schemas": [BULK_REQUEST_URN], "Operations": ops}),
            10,
        )
        .unwrap()
    }

    #[test]
    fn forward_references_run_after_their_target() {
        let r = req(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "G",
                "members": [{"value": "bulkId:u"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "u"}}
        ]));
        assert_eq!(execution_order(&r), (vec![1, 0], vec![]));
    }

    #[test]
    fn reference_cycles_are_reported_not_looped() {
        let r = req(json!([
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "a",
                "x": "bulkId:b"}},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "b",
                "x": "bulkId:a"}}
        ]));
        assert_eq!(execution_order(&r), (vec![], vec![0, 1]));
    }

    #[test]
    fn too_many_operations_is_413() {
        let ops: Vec<Value> = (0..11)
            .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
            .collect();
        let err = parse(&json!({"Operations": ops}), 10).unwrap_err();
        assert_eq!(err.status, 413);
    }
}
