//! Linchpin's field list (`GET /rest/cup/1.0/fields`, docs/reference/confluence-api.md §2.1,
//! documented for reading) and its comparison with a connector's mapping, for `check-config`.
//!
//! The field list does not show a field's XML node name **\[gap\]**: the documented
//! properties are key, label, type and source. A mapped field is therefore matched by its
//! `linchpin_field` (label or business key) when given, else by its XML element name against
//! the label and the label's slug (`Cost Center` ↔ `costCenter`, `cost-center`). A match is
//! a hint, not proof: the check warns, it never fails the configuration.

use std::time::Duration;

use serde_json::Value;

use crate::mapping::engine::Field;
use crate::mapping::ConnectorMapping;

/// One Linchpin field as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteField {
    /// Business key, e.g. `cup.department-1`.
    pub business_key: String,
    /// Label.
    pub label: String,
    /// `dataSourceType`: `USER`, `LDAP`, `XML` or `IDP`.
    pub source: String,
}

/// Credentials for the read.
#[derive(Clone)]
pub enum Credentials {
    /// None (the read then usually fails with 401).
    Anonymous,
    /// A personal access token.
    Bearer(String),
    /// Basic auth.
    Basic(String, String),
}

/// Why the field list could not be read. Messages name the URL without any password.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client could not be built.
    #[error("cannot build an HTTP client")]
    Client(#[source] reqwest::Error),
    /// No answer.
    #[error("GET {url} failed")]
    Request {
        /// The URL, redacted.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// An answer other than 2xx.
    #[error(
        "GET {url} answered HTTP {status}; check [linchpin] credentials (an administrator's \
         token) and that Linchpin User Profiles is installed"
    )]
    Status {
        /// The URL, redacted.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
    },
    /// The body is not JSON.
    #[error("GET {url} did not return JSON")]
    NotJson {
        /// The URL, redacted.
        url: String,
        /// The decoding error.
        #[source]
        source: reqwest::Error,
    },
    /// JSON, but not an array of fields.
    #[error("GET {url} did not return a JSON array of fields")]
    NotAList {
        /// The URL, redacted.
        url: String,
    },
}

/// Reads the field list of the Linchpin at `base_url` (Confluence base URL with context path).
pub async fn fetch(
    base_url: &str,
    credentials: &Credentials,
    timeout: Duration,
) -> Result<Vec<RemoteField>, FetchError> {
    let url = format!("{}/rest/cup/1.0/fields", base_url.trim_end_matches('/'));
    // For messages: the URL as an operator may see it (no userinfo password).
    let shown = crate::store::redact_url(&url);
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(FetchError::Client)?;
    let mut req = client.get(&url).header("Accept", "application/json");
    req = match credentials {
        Credentials::Anonymous => req,
        Credentials::Bearer(t) => req.bearer_auth(t),
        Credentials::Basic(u, p) => req.basic_auth(u, Some(p)),
    };
    let res = req.send().await.map_err(|source| FetchError::Request {
        url: shown.clone(),
        source,
    })?;
    let status = res.status();
    if !status.is_success() {
        return Err(FetchError::Status { url: shown, status });
    }
    let body: Value = res.json().await.map_err(|source| FetchError::NotJson {
        url: shown.clone(),
        source,
    })?;
    let Value::Array(items) = body else {
        return Err(FetchError::NotAList { url: shown });
    };
    let text = |v: &Value, keys: &[&str]| {
        keys.iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned()
    };
    Ok(items
        .iter()
        .map(|f| RemoteField {
            business_key: text(f, &["userFieldBK"]),
            label: text(f, &["localizedLabel", "labelPropertyKey"]),
            source: text(f, &["dataSourceType"]).to_ascii_uppercase(),
        })
        .collect())
}

/// Lower-case letters and digits only: `Cost Center`, `costCenter` and `cost-center` agree.
fn squash(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(|c| c.to_lowercase())
        .collect()
}

/// The Linchpin field a mapped field fills: the one its `linchpin_field` names (label or
/// business key), else the one whose label or business-key slug matches its XML element.
pub fn matching<'a>(f: &Field, remote: &'a [RemoteField]) -> Option<&'a RemoteField> {
    remote.iter().find(|r| match &f.linchpin_field {
        Some(want) => {
            r.label.eq_ignore_ascii_case(want) || r.business_key.eq_ignore_ascii_case(want)
        }
        None => {
            let bk_slug = r
                .business_key
                .strip_prefix("cup.")
                .and_then(|rest| rest.rsplit_once('-').map(|(slug, _)| slug))
                .unwrap_or_default();
            let xml = squash(&f.xml);
            !xml.is_empty() && (squash(&r.label) == xml || squash(bk_slug) == xml)
        }
    })
}

/// Warnings for the mapped fields of `mapping` that no Linchpin field takes from the feed.
pub fn compare(connector: &str, mapping: &ConnectorMapping, remote: &[RemoteField]) -> Vec<String> {
    let mut warnings = Vec::new();
    for f in mapping.fields() {
        match matching(f, remote) {
            None => warnings.push(format!(
                "[connectors.{connector}] field {:?} (XML element <{}>): no Linchpin field \
                 matches; create one with source XML and XML node name {:?}, or set \
                 linchpin_field to its label",
                f.name, f.xml, f.xml
            )),
            Some(r) if r.source != "XML" && r.source != "IDP" => warnings.push(format!(
                "[connectors.{connector}] field {:?} matches the Linchpin field {:?}, whose \
                 source is {}: Linchpin fills only XML-sourced fields from the feed; set its \
                 source to XML in the Profile Editor",
                f.name, r.label, r.source
            )),
            Some(r) if r.source == "IDP" => warnings.push(format!(
                "[connectors.{connector}] field {:?} matches the Linchpin field {:?}, whose \
                 source is IDP (filled by resolution User Sync, not by an XML feed); set its \
                 source to XML to take it from usersync's feed",
                f.name, r.label
            )),
            Some(_) => {}
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(label: &str, bk: &str, source: &str) -> RemoteField {
        RemoteField {
            business_key: bk.into(),
            label: label.into(),
            source: source.into(),
        }
    }

    #[test]
    fn fields_match_by_label_slug_or_explicit_name_and_wrong_sources_warn() {
        let mapping = ConnectorMapping::builtin();
        let list = vec![
            remote("Department", "cup.department-1", "XML"),
            remote("Cost Center", "cup.cost-center-7", "XML"),
            remote("Manager", "cup.manager-2", "USER"),
            remote("Phone", "cup.phone-4", "IDP"),
        ];
        let w = compare("entra", &mapping, &list);
        let about = |name: &str| {
            w.iter()
                .filter(|m| m.contains(&format!("{name:?}")))
                .count()
        };
        assert_eq!(about("department"), 0);
        assert_eq!(about("costCenter"), 0);
        assert!(w
            .iter()
            .any(|m| m.contains("\"manager\"") && m.contains("USER")));
        assert!(w
            .iter()
            .any(|m| m.contains("\"phone\"") && m.contains("IDP")));
        assert!(w
            .iter()
            .any(|m| m.contains("\"title\"") && m.contains("no Linchpin field")));
    }
}
