//! `POST /Bulk` (RFC 7644 §3.7): operations run in order (moved after the POSTs whose
//! `bulkId` they reference), each through the same [`Ops`] as single requests, each in its
//! own transaction. `failOnErrors` stops the run after that many errors.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::super::auth::ScimCtx;
use super::super::error::AppError;
use super::super::extract::ScimBody;
use super::super::response::ScimJson;
use super::super::state::AppState;
use super::ops::{Ops, Rendered};
use crate::scim::bulk::{self, BulkMethod, BulkOperation, BULK_RESPONSE_URN};
use crate::scim::resource::{etag, IfMatch};
use crate::scim::ScimError;

/// `POST /Bulk`.
pub async fn bulk(
    State(state): State<AppState>,
    ctx: ScimCtx,
    ScimBody(body): ScimBody,
) -> Result<Response, AppError> {
    let req = bulk::parse(&body, state.settings.limits.bulk_max_operations)?;
    let (order, cyclic) = bulk::execution_order(&req);
    let ops = Ops::for_bulk(&state, &ctx);
    let mut created: HashMap<String, String> = HashMap::new();
    let mut results: Vec<Option<Value>> = vec![None; req.operations.len()];
    let mut errors = 0usize;
    for i in order.into_iter().chain(cyclic.iter().copied()) {
        if req.fail_on_errors.is_some_and(|max| errors >= max) {
            break;
        }
        let mut op = req.operations[i].clone();
        bulk::substitute(&mut op, &created);
        let outcome = if cyclic.contains(&i) {
            Err(ScimError::new(
                409,
                None,
                "this operation is part of a circular bulkId reference",
            )
            .into())
        } else if let Some(missing) = bulk::references(&op).first() {
            Err(ScimError::new(
                409,
                None,
                format!("bulkId \"{missing}\" does not name a successful POST of this request"),
            )
            .into())
        } else {
            run(&ops, &op).await
        };
        let entry = match outcome {
            Ok((status, rendered)) => {
                if let (Some(b), Some(r), BulkMethod::Post) = (&op.bulk_id, &rendered, op.method) {
                    if let Some(id) = r.doc.get("id").and_then(Value::as_str) {
                        created.insert(b.clone(), id.to_owned());
                    }
                }
                result(&op, status, rendered.as_ref(), None)
            }
            Err(e) => {
                errors += 1;
                let (status, body) = e.to_scim_body();
                result(&op, status, None, Some(body))
            }
        };
        results[i] = Some(entry);
    }
    let body = json!({
        "schemas": [BULK_RESPONSE_URN],
        "Operations": results.into_iter().flatten().collect::<Vec<_>>(),
    });
    Ok(ScimJson::new(StatusCode::OK, body).into_response())
}

async fn run(
    ops: &Ops<'_>,
    op: &BulkOperation,
) -> Result<(StatusCode, Option<Rendered>), AppError> {
    let if_match = op.version.as_deref().map(IfMatch::parse);
    let id = op.id.as_deref().unwrap_or_default();
    let data = op.data.clone().unwrap_or(Value::Null);
    Ok(match op.method {
        BulkMethod::Post => (StatusCode::CREATED, Some(ops.create(op.kind, &data).await?)),
        BulkMethod::Put => (
            StatusCode::OK,
            Some(ops.replace(op.kind, id, &data, if_match).await?),
        ),
        BulkMethod::Patch => (
            StatusCode::OK,
            Some(ops.patch(op.kind, id, &data, if_match).await?),
        ),
        BulkMethod::Delete => {
            ops.delete(op.kind, id, if_match).await?;
            (StatusCode::NO_CONTENT, None)
        }
    })
}

fn result(
    op: &BulkOperation,
    status: StatusCode,
    r: Option<&Rendered>,
    error: Option<Value>,
) -> Value {
    let mut o = Map::new();
    o.insert("method".into(), op.method.as_str().into());
    if let Some(b) = &op.bulk_id {
        o.insert("bulkId".into(), b.clone().into());
    }
    if let Some(r) = r {
        o.insert("version".into(), etag(r.version).into());
        o.insert("location".into(), r.location.clone().into());
    } else if op.method != BulkMethod::Post {
        if let Some(id) = &op.id {
            o.insert(
                "location".into(),
                format!("/{}/{id}", op.kind.endpoint()).into(),
            );
        }
    }
    o.insert("status".into(), status.as_u16().to_string().into());
    if let Some(e) = error {
        o.insert("response".into(), e);
    }
    Value::Object(o)
}
