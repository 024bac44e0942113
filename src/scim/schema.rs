//! Schema documents (RFC 7643 §7) and the registry that resolves attribute names against them.
//!
//! The schema is data: the documents in `schemas/` (built into the binary) plus any extension an
//! operator drops into the configured schema directory drive validation, case rules,
//! `mutability`, `returned` and the discovery endpoints. Nothing in the protocol layer hard-codes
//! an attribute of User or Group except the common attributes `id`, `externalId` and `meta`
//! (RFC 7643 §3.1), which belong to every resource and are not part of any schema document.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::{ScimError, ScimResult};

/// Core User schema URN (RFC 7643 §8.7.1).
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group schema URN.
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Enterprise User extension URN (RFC 7643 §4.3).
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Schema URN of Schema resources themselves.
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The built-in schema documents, from the repository's `schemas/` folder.
pub const BUILTIN_SCHEMAS: [(&str, &str); 3] = [
    ("user.json", include_str!("../../schemas/user.json")),
    (
        "enterprise_user.json",
        include_str!("../../schemas/enterprise_user.json"),
    ),
    ("group.json", include_str!("../../schemas/group.json")),
];

/// Attribute data types (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    /// A JSON string.
    String,
    /// `true` or `false`.
    Boolean,
    /// A real number.
    Decimal,
    /// A whole number.
    Integer,
    /// An `xsd:dateTime` string.
    DateTime,
    /// A base64 string.
    Binary,
    /// A URI string.
    Reference,
    /// An object of sub-attributes.
    Complex,
}

/// When an attribute may be written (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    /// Set by the service provider; ignored on input.
    ReadOnly,
    /// Freely written.
    #[default]
    ReadWrite,
    /// Written once; a later different value is a `mutability` error.
    Immutable,
    /// Accepted but never returned.
    WriteOnly,
}

/// When an attribute is returned (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    /// Always, even when excluded.
    Always,
    /// Never.
    Never,
    /// Unless excluded, or unless another attribute list is requested.
    #[default]
    Default,
    /// Only when asked for in `attributes`.
    Request,
}

/// Uniqueness scope (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    /// No uniqueness.
    #[default]
    None,
    /// Unique within the service provider (for usersync: within one connector).
    Server,
    /// Globally unique.
    Global,
}

/// One attribute definition (RFC 7643 §7, `attributes` and `subAttributes`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    /// Attribute name; matched case-insensitively (RFC 7643 §2.1).
    pub name: String,
    /// Data type.
    #[serde(rename = "type")]
    pub attr_type: AttrType,
    /// Whether values are arrays.
    #[serde(default)]
    pub multi_valued: bool,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether a value is required on create and replace.
    #[serde(default)]
    pub required: bool,
    /// Suggested values; not enforced (RFC 7643 §7 lets the provider decide, and IdPs send
    /// their own `type` labels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    /// Whether string comparison is case-sensitive.
    #[serde(default)]
    pub case_exact: bool,
    /// Mutability.
    #[serde(default)]
    pub mutability: Mutability,
    /// Returned.
    #[serde(default)]
    pub returned: Returned,
    /// Uniqueness.
    #[serde(default)]
    pub uniqueness: Uniqueness,
    /// Resource types a reference may point to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
    /// Sub-attributes of a complex attribute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<Attribute>,
}

impl Attribute {
    /// A sub-attribute by case-insensitive name.
    pub fn sub(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Whether this is a complex attribute.
    pub fn is_complex(&self) -> bool {
        self.attr_type == AttrType::Complex
    }

    fn simple(name: &str, attr_type: AttrType) -> Attribute {
        Attribute {
            name: name.to_owned(),
            attr_type,
            multi_valued: false,
            description: None,
            required: false,
            canonical_values: Vec::new(),
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
        }
    }
}

/// A schema document (RFC 7643 §7).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// The schema URN.
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Top-level attributes.
    pub attributes: Vec<Attribute>,
}

impl Schema {
    /// An attribute by case-insensitive name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// The two resource types usersync serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// `/Users`.
    User,
    /// `/Groups`.
    Group,
}

impl ResourceKind {
    /// The `meta.resourceType` / ResourceType name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The endpoint segment (`Users`, `Groups`).
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }

    /// The core schema URN.
    pub fn core_urn(self) -> &'static str {
        match self {
            ResourceKind::User => USER_URN,
            ResourceKind::Group => GROUP_URN,
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "User" => Some(ResourceKind::User),
            "Group" => Some(ResourceKind::Group),
            _ => None,
        }
    }
}

/// An extension schema attached to a resource type.
#[derive(Debug, Clone)]
pub struct Extension {
    /// The extension schema.
    pub schema: Arc<Schema>,
    /// Whether resources must carry it (RFC 7643 §6 `schemaExtensions.required`).
    pub required: bool,
}

/// A resource type with its core schema and extensions (RFC 7643 §6).
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// Which resource.
    pub kind: ResourceKind,
    /// Core schema.
    pub core: Arc<Schema>,
    /// Extension schemas, in the order they were loaded.
    pub extensions: Vec<Extension>,
    /// The common attributes `id`, `externalId`, `meta` (RFC 7643 §3.1).
    common: Vec<Attribute>,
}

/// Where an attribute lives in a resource document.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedAttr<'a> {
    /// `None` for core and common attributes, which sit at the top level of the document;
    /// `Some(urn)` for extension attributes, which sit inside the object keyed by the URN.
    pub extension: Option<&'a str>,
    /// The attribute definition (its `name` is the canonical spelling).
    pub attr: &'a Attribute,
}

impl ResourceType {
    fn new(kind: ResourceKind, core: Arc<Schema>) -> Self {
        let mut id = Attribute::simple("id", AttrType::String);
        id.case_exact = true;
        id.mutability = Mutability::ReadOnly;
        id.returned = Returned::Always;
        id.uniqueness = Uniqueness::Server;
        let mut external_id = Attribute::simple("externalId", AttrType::String);
        external_id.case_exact = true;
        let mut meta = Attribute::simple("meta", AttrType::Complex);
        meta.mutability = Mutability::ReadOnly;
        let mut version = Attribute::simple("version", AttrType::String);
        version.case_exact = true;
        let mut resource_type = Attribute::simple("resourceType", AttrType::String);
        resource_type.case_exact = true;
        meta.sub_attributes = vec![
            resource_type,
            Attribute::simple("created", AttrType::DateTime),
            Attribute::simple("lastModified", AttrType::DateTime),
            Attribute::simple("location", AttrType::Reference),
            version,
        ];
        for sub in &mut meta.sub_attributes {
            sub.mutability = Mutability::ReadOnly;
        }
        Self {
            kind,
            core,
            extensions: Vec::new(),
            common: vec![id, external_id, meta],
        }
    }

    /// The extension with this URN (canonical spelling, compared case-insensitively).
    pub fn extension(&self, urn: &str) -> Option<&Extension> {
        self.extensions
            .iter()
            .find(|e| e.schema.id.eq_ignore_ascii_case(urn))
    }

    /// Resolves a top-level attribute name, optionally qualified by a schema URN.
    ///
    /// Unqualified names are looked up among the common attributes, then the core schema, then
    /// (as RFC 7644 §3.10 allows when the name is unambiguous) the extensions.
    pub fn resolve(&self, urn: Option<&str>, name: &str) -> Option<ResolvedAttr<'_>> {
        match urn {
            Some(urn) if urn.eq_ignore_ascii_case(&self.core.id) => self.resolve_core(name),
            Some(urn) => {
                let ext = self.extension(urn)?;
                Some(ResolvedAttr {
                    extension: Some(ext.schema.id.as_str()),
                    attr: ext.schema.attribute(name)?,
                })
            }
            None => self.resolve_core(name).or_else(|| {
                self.extensions.iter().find_map(|ext| {
                    ext.schema.attribute(name).map(|attr| ResolvedAttr {
                        extension: Some(ext.schema.id.as_str()),
                        attr,
                    })
                })
            }),
        }
    }

    fn resolve_core(&self, name: &str) -> Option<ResolvedAttr<'_>> {
        self.common
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .or_else(|| self.core.attribute(name))
            .map(|attr| ResolvedAttr {
                extension: None,
                attr,
            })
    }

    /// The common attributes (`id`, `externalId`, `meta`).
    pub fn common(&self) -> &[Attribute] {
        &self.common
    }

    /// All schema URNs of this type: core first.
    pub fn schema_urns(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.core.id.as_str())
            .chain(self.extensions.iter().map(|e| e.schema.id.as_str()))
    }
}

/// All schemas and the two resource types, loaded once at start.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    schemas: Vec<Arc<Schema>>,
    user: ResourceType,
    group: ResourceType,
    aliases: HashMap<String, String>,
}

/// Legacy and non-standard URNs some IdPs put in `schemas` and as extension keys, mapped to
/// the RFC URN.
///
/// * OneLogin templates use SCIM 1.x URNs and non-standard "2.0" URNs without `:User`
///   (docs/reference/idp-behaviour.md §4.2, sources OL-SCHEMA, AUTHENTIK-11249, STAFFBASE).
/// * Microsoft's reference server strips the same prefixes (MSREF-PATH).
const URN_ALIASES: [(&str, &str); 4] = [
    ("urn:scim:schemas:extension:enterprise:1.0", ENTERPRISE_URN),
    ("urn:scim:schemas:extension:enterprise:2.0", ENTERPRISE_URN),
    ("urn:scim:schemas:core:1.0", USER_URN),
    ("urn:scim:schemas:core:2.0", USER_URN),
];

impl SchemaRegistry {
    /// The registry of the built-in schemas only.
    pub fn builtin() -> Self {
        Self::from_documents(
            BUILTIN_SCHEMAS
                .iter()
                .map(|(name, text)| (name.to_string(), text.to_string())),
        )
        .expect("built-in schemas are valid")
    }

    /// Builds the registry from schema documents `(file name, JSON text)`.
    ///
    /// The core User and Group schemas must be present (a later document with the same `id`
    /// replaces an earlier one, so an operator may override a built-in). Every other schema
    /// is an extension: of Group when its URN ends in `:Group`, of User otherwise. Extensions
    /// are never required on input.
    pub fn from_documents(
        docs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SchemaError> {
        let mut schemas: Vec<Arc<Schema>> = Vec::new();
        for (file, text) in docs {
            let schema: Schema =
                serde_json::from_str(&text).map_err(|e| SchemaError::NotASchema {
                    file: file.clone(),
                    detail: e.to_string(),
                })?;
            if !schema.id.starts_with("urn:") {
                return Err(SchemaError::IdNotUrn {
                    file,
                    id: schema.id,
                });
            }
            validate_attributes(&file, &schema.attributes, 0)?;
            if let Some(existing) = schemas
                .iter_mut()
                .find(|s| s.id.eq_ignore_ascii_case(&schema.id))
            {
                *existing = Arc::new(schema);
            } else {
                schemas.push(Arc::new(schema));
            }
        }
        let find = |urn: &str| {
            schemas
                .iter()
                .find(|s| s.id == urn)
                .cloned()
                .ok_or_else(|| SchemaError::MissingCore(urn.to_owned()))
        };
        let mut user = ResourceType::new(ResourceKind::User, find(USER_URN)?);
        let mut group = ResourceType::new(ResourceKind::Group, find(GROUP_URN)?);
        for schema in &schemas {
            if schema.id == USER_URN || schema.id == GROUP_URN {
                continue;
            }
            let ext = Extension {
                schema: schema.clone(),
                required: false,
            };
            if schema.id.ends_with(":Group") {
                group.extensions.push(ext);
            } else {
                user.extensions.push(ext);
            }
        }
        let aliases = URN_ALIASES
            .iter()
            .map(|(a, b)| (a.to_ascii_lowercase(), b.to_string()))
            .collect();
        Ok(Self {
            schemas,
            user,
            group,
            aliases,
        })
    }

    /// The built-in schemas followed by `extra` documents `(file name, JSON text)`: the
    /// custom extensions an operator drops into `schemas_dir` (read by the caller, so this
    /// module stays free of I/O).
    pub fn with_extensions(
        extra: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SchemaError> {
        let builtin = BUILTIN_SCHEMAS
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()));
        Self::from_documents(builtin.chain(extra))
    }

    /// The resource type of a kind.
    pub fn resource_type(&self, kind: ResourceKind) -> &ResourceType {
        match kind {
            ResourceKind::User => &self.user,
            ResourceKind::Group => &self.group,
        }
    }

    /// All schema documents, in load order.
    pub fn schemas(&self) -> &[Arc<Schema>] {
        &self.schemas
    }

    /// One schema by URN (case-insensitive).
    pub fn schema(&self, urn: &str) -> Option<&Arc<Schema>> {
        self.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Maps a URN as an IdP spells it to the URN we use, if we know it (case-insensitive; see
    /// `URN_ALIASES`).
    pub fn canonical_urn(&self, urn: &str) -> Option<&str> {
        if let Some(s) = self.schema(urn) {
            return Some(s.id.as_str());
        }
        self.aliases
            .get(&urn.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Why schema documents cannot make a registry; each names the file and is worded for the
/// operator, who reads it at start and in `check-config`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The text is not a schema document (not JSON, or a field is missing or mistyped).
    #[error("schema file {file}: not a valid schema document: {detail}")]
    NotASchema {
        /// The file name.
        file: String,
        /// What the JSON reader said.
        detail: String,
    },
    /// The `id` is not a URN.
    #[error(
        "schema file {file}: `id` must be a URN such as \
         urn:ietf:params:scim:schemas:extension:example:2.0:User, found {id:?}"
    )]
    IdNotUrn {
        /// The file name.
        file: String,
        /// The `id` found.
        id: String,
    },
    /// An attribute name is not an ATTRNAME (RFC 7643 §2.1).
    #[error("schema file {file}: attribute name {name:?} is not a valid ATTRNAME (RFC 7643 §2.1)")]
    AttributeName {
        /// The file name.
        file: String,
        /// The attribute name.
        name: String,
    },
    /// A complex attribute inside a complex attribute (RFC 7643 §2.3.8 forbids nesting).
    #[error(
        "schema file {file}: complex attribute {name:?} inside a complex attribute \
         (RFC 7643 §2.3.8 forbids nesting)"
    )]
    NestedComplex {
        /// The file name.
        file: String,
        /// The inner attribute's name.
        name: String,
    },
    /// `subAttributes` on an attribute that is not complex.
    #[error("schema file {file}: attribute {name:?} has subAttributes but is not complex")]
    SubAttributesOfSimple {
        /// The file name.
        file: String,
        /// The attribute name.
        name: String,
    },
    /// The core User or Group schema is missing.
    #[error("the core schema {0} is missing")]
    MissingCore(String),
}

fn validate_attributes(file: &str, attrs: &[Attribute], depth: usize) -> Result<(), SchemaError> {
    for a in attrs {
        if a.name.is_empty() || a.name.contains(['.', ':', '[', ']', ' ']) {
            let (file, name) = (file.to_owned(), a.name.clone());
            return Err(SchemaError::AttributeName { file, name });
        }
        if a.is_complex() {
            if depth > 0 {
                let (file, name) = (file.to_owned(), a.name.clone());
                return Err(SchemaError::NestedComplex { file, name });
            }
            validate_attributes(file, &a.sub_attributes, depth + 1)?;
        } else if !a.sub_attributes.is_empty() {
            let (file, name) = (file.to_owned(), a.name.clone());
            return Err(SchemaError::SubAttributesOfSimple { file, name });
        }
    }
    Ok(())
}

/// Looks up an attribute for error messages and reports a helpful `invalidPath`.
pub fn unknown_attribute(path: &str) -> ScimError {
    ScimError::invalid_path(format!(
        "attribute path {path:?} does not name an attribute of this resource type"
    ))
}

/// Shorthand used by the validators.
pub type SchemaResult<T> = ScimResult<T>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_registry_resolves_core_common_and_extension_attributes() {
        let reg = SchemaRegistry::builtin();
        let user = reg.resource_type(ResourceKind::User);
        assert_eq!(
            user.resolve(None, "USERNAME").unwrap().attr.name,
            "userName"
        );
        assert_eq!(
            user.resolve(None, "externalid").unwrap().attr.name,
            "externalId"
        );
        let dept = user.resolve(Some(ENTERPRISE_URN), "Department").unwrap();
        assert_eq!(dept.extension, Some(ENTERPRISE_URN));
        // Unqualified extension attributes resolve when unambiguous (RFC 7644 §3.10).
        assert_eq!(
            user.resolve(None, "manager").unwrap().extension,
            Some(ENTERPRISE_URN)
        );
        assert!(user.resolve(None, "favouriteColour").is_none());
        assert!(reg.resource_type(ResourceKind::Group).extensions.is_empty());
    }

    #[test]
    fn legacy_enterprise_urns_are_aliases() {
        let reg = SchemaRegistry::builtin();
        for alias in [
            "urn:scim:schemas:extension:enterprise:1.0",
            "urn:scim:schemas:extension:enterprise:2.0",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER",
        ] {
            assert_eq!(reg.canonical_urn(alias), Some(ENTERPRISE_URN), "{alias}");
        }
        assert_eq!(reg.canonical_urn("urn:example:unknown"), None);
    }

    #[test]
    fn operator_extension_is_attached_by_urn_suffix() {
        let ext = r#"{"id":"urn:example:linchpin:2.0:User","name":"Linchpin","attributes":[
            {"name":"skills","type":"string","multiValued":true}]}"#;
        let docs = BUILTIN_SCHEMAS
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .chain([("linchpin.json".to_string(), ext.to_string())]);
        let reg = SchemaRegistry::from_documents(docs).unwrap();
        let user = reg.resource_type(ResourceKind::User);
        let skills = user
            .resolve(Some("urn:example:linchpin:2.0:User"), "skills")
            .unwrap();
        assert!(skills.attr.multi_valued);
    }

    #[test]
    fn nested_complex_attributes_are_rejected_with_the_file_name() {
        let bad = r#"{"id":"urn:example:bad:User","attributes":[{"name":"a","type":"complex",
            "subAttributes":[{"name":"b","type":"complex"}]}]}"#;
        let docs = BUILTIN_SCHEMAS
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .chain([("bad.json".to_string(), bad.to_string())]);
        let err = SchemaRegistry::from_documents(docs).unwrap_err();
        assert_eq!(
            err,
            SchemaError::NestedComplex {
                file: "bad.json".into(),
                name: "b".into()
            }
        );
        assert!(err.to_string().contains("bad.json"), "{err}");
    }
}
