//! Discovery documents (RFC 7644 §4, RFC 7643 §5–7): `/ServiceProviderConfig`,
//! `/ResourceTypes` and `/Schemas`, all derived from the schema registry and the limits we
//! enforce, so what we advertise is what we do.

use serde_json::{json, Map, Value};

use super::query::LIST_URN;
use super::schema::{ResourceKind, ResourceType, Schema, SchemaRegistry, SCHEMA_URN};

/// What the service provider configuration advertises.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// Bulk `maxOperations`.
    pub bulk_max_operations: usize,
    /// Bulk `maxPayloadSize` in bytes (also the body limit of every request).
    pub bulk_max_payload: usize,
    /// `filter.maxResults`: the largest page we return.
    pub filter_max_results: usize,
    /// Authentication schemes offered by the connector.
    pub auth_schemes: Vec<Value>,
    /// Where the admin documentation lives.
    pub documentation_uri: Option<String>,
}

/// The `ServiceProviderConfig` resource (RFC 7643 §5).
pub fn service_provider_config(caps: &Capabilities, base: &str) -> Value {
    let mut doc = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": caps.bulk_max_operations,
            "maxPayloadSize": caps.bulk_max_payload
        },
        "filter": {"supported": true, "maxResults": caps.filter_max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": caps.auth_schemes,
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig")
        }
    });
    if let (Some(uri), Some(obj)) = (&caps.documentation_uri, doc.as_object_mut()) {
        obj.insert("documentationUri".into(), uri.clone().into());
    }
    doc
}

/// The bearer-token authentication scheme entry (RFC 7643 §5 `authenticationSchemes`).
pub fn bearer_scheme(primary: bool) -> Value {
    json!({
        "type": "oauthbearertoken",
        "name": "OAuth Bearer Token",
        "description": "Authentication with a bearer token issued for this connector",
        "specUri": "https://www.rfc-editor.org/info/rfc6750",
        "primary": primary
    })
}

/// The HTTP Basic authentication scheme entry.
pub fn basic_scheme(primary: bool) -> Value {
    json!({
        "type": "httpbasic",
        "name": "HTTP Basic",
        "description": "Authentication with the user name and password configured for this connector",
        "specUri": "https://www.rfc-editor.org/info/rfc7617",
        "primary": primary
    })
}

/// The OAuth 2.0 client-credentials scheme entry; `token_url` is the connector's token
/// endpoint.
pub fn oauth2_scheme(primary: bool, token_url: &str) -> Value {
    json!({
        "type": "oauth2",
        "name": "OAuth 2.0 Client Credentials",
        "description": format!("Access tokens from the client credentials grant at {token_url}"),
        "specUri": "https://www.rfc-editor.org/info/rfc6749",
        "primary": primary
    })
}

/// One `ResourceType` resource (RFC 7643 §6).
pub fn resource_type(rt: &ResourceType, base: &str) -> Value {
    let name = rt.kind.as_str();
    let extensions: Vec<Value> = rt
        .extensions
        .iter()
        .map(|e| json!({"schema": e.schema.id, "required": e.required}))
        .collect();
    let mut doc = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": name,
        "name": name,
        "endpoint": format!("/{}", rt.kind.endpoint()),
        "description": match rt.kind {
            ResourceKind::User => "User Account",
            ResourceKind::Group => "Group",
        },
        "schema": rt.core.id,
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{name}")}
    });
    if !extensions.is_empty() {
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("schemaExtensions".into(), Value::Array(extensions));
        }
    }
    doc
}

/// One `Schema` resource (RFC 7643 §7).
pub fn schema(s: &Schema, base: &str) -> Value {
    let mut out = Map::new();
    out.insert("schemas".into(), json!([SCHEMA_URN]));
    if let Ok(Value::Object(body)) = serde_json::to_value(s) {
        out.extend(body);
    }
    out.insert(
        "meta".into(),
        json!({"resourceType": "Schema", "location": format!("{base}/Schemas/{}", s.id)}),
    );
    Value::Object(out)
}

/// All resource types as a ListResponse.
pub fn resource_types(reg: &SchemaRegistry, base: &str) -> Value {
    list(
        [ResourceKind::User, ResourceKind::Group]
            .iter()
            .map(|k| resource_type(reg.resource_type(*k), base))
            .collect(),
    )
}

/// All schemas as a ListResponse.
pub fn schemas(reg: &SchemaRegistry, base: &str) -> Value {
    list(reg.schemas().iter().map(|s| schema(s, base)).collect())
}

fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_URN],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources
    })
}
