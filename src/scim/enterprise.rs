//! Reading the enterprise User extension (RFC 7643 §4.3,
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`).
//!
//! Kept in the protocol layer because two layers read it: the store indexes the manager
//! reference (so a manager's reports can be found), and the mapping resolves it.

use serde_json::Value;

use super::resource::Document;
use super::schema::ENTERPRISE_URN;

/// The raw `manager.value` of the enterprise extension, trimmed; `None` when absent or blank.
///
/// Attribute names are matched case-insensitively (RFC 7643 §2.1), and a bare string is
/// accepted in place of the `{"value": …}` object, as some IdPs send it.
pub fn manager_ref(doc: &Document) -> Option<String> {
    let ext = doc.get(ENTERPRISE_URN)?.as_object()?;
    let manager = ext
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("manager"))
        .map(|(_, v)| v)?;
    let value = match manager {
        Value::Object(m) => m
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("value"))
            .map(|(_, v)| v)?,
        other => other,
    };
    value
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_reference_is_read_trimmed_and_blank_means_none() {
        let doc = |v: Value| -> Document {
            json!({ ENTERPRISE_URN: { "manager": v } })
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            manager_ref(&doc(json!({"value": " 9a8b "}))).as_deref(),
            Some("9a8b")
        );
        assert_eq!(manager_ref(&doc(json!("E7"))).as_deref(), Some("E7"));
        assert_eq!(manager_ref(&doc(json!({"value": ""}))), None);
        assert_eq!(manager_ref(&Document::new()), None);
    }
}
