//! Decoding rows into store types.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::resources::StoredResource;
use super::{from_ms, StoreError, StoreResult};
use crate::scim::schema::ResourceKind;

/// The column list every resource query selects, in the order [`resource`] reads.
pub(crate) const RESOURCE_COLUMNS: &str =
    "seq, kind, id, name, doc, version, created_at, updated_at";

/// Decodes a row selected with [`RESOURCE_COLUMNS`].
pub(crate) fn resource(row: &AnyRow) -> StoreResult<StoredResource> {
    let kind: String = row.try_get(1)?;
    let id: String = row.try_get(2)?;
    let doc_text: String = row.try_get(4)?;
    let doc = match serde_json::from_str::<serde_json::Value>(&doc_text) {
        Ok(serde_json::Value::Object(m)) => m,
        Ok(_) => serde_json::Map::new(),
        Err(e) => return Err(StoreError::Corrupt(id, e)),
    };
    Ok(StoredResource {
        seq: row.try_get(0)?,
        kind: ResourceKind::parse(&kind).unwrap_or(ResourceKind::User),
        id,
        name: row.try_get(3)?,
        doc_bytes: doc_text.len(),
        doc,
        version: row.try_get(5)?,
        created: from_ms(row.try_get(6)?),
        updated: from_ms(row.try_get(7)?),
    })
}
