//! `GET /rest/applinks/1.0/manifest`: the Application Links manifest every Atlassian Data
//! Center product serves, the usual read-only way to learn a node's version.
//!
//! Not a user/group endpoint (`M` in docs/emulator.md); added so clients can detect the feature
//! level. What is known: the path, that it is readable anonymously, and that its XML root
//! `<manifest>` carries `<typeId>confluence</typeId>` and `<version>8.5.4</version>` (public probes
//! and client code \[obs\]). The other element names, the JSON variant for
//! `Accept: application/json`, the build numbers and the id are **(assumed)**.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::config::ConfluenceVersion;
use super::extract::Ctx;

/// Server id of the emulated node (a real one is a UUID fixed per installation).
const SERVER_ID: &str = "5eed0000-e6a1-4c0f-8d1e-000000000001";

/// Build number shown for a feature level **(assumed values)**.
fn build_number(version: ConfluenceVersion) -> u32 {
    match version {
        ConfluenceVersion::V8_2 => 8802,
        ConfluenceVersion::V8_4 => 8804,
        ConfluenceVersion::V9_4 => 9404,
        ConfluenceVersion::V10_2 => 10204,
    }
}

/// Escapes text for an XML element.
fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Whether the caller asked for JSON and not XML.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            let accept = accept.to_ascii_lowercase();
            accept.contains("application/json") && !accept.contains("xml")
        })
}

/// The manifest; no permission needed. The version is the `manifest_version` knob, or the
/// feature level with `.0` (`9.4.0`).
#[tracing::instrument(skip_all)]
pub(crate) async fn manifest(ctx: Ctx, headers: HeaderMap) -> Response {
    let (version, build) = {
        let world = ctx.world();
        let level = world.knobs.version;
        let version = world
            .knobs
            .manifest_version
            .clone()
            .unwrap_or_else(|| format!("{}.0", level.as_str()));
        (version, build_number(level))
    };
    if wants_json(&headers) {
        return Json(json!({
            "id": SERVER_ID,
            "name": "Confluence",
            "typeId": "confluence",
            "version": version,
            "buildNumber": build,
            "publicSignup": false,
            "url": ctx.links.base,
        }))
        .into_response();
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
<manifest><id>{SERVER_ID}</id><name>Confluence</name><typeId>confluence</typeId>\
<version>{}</version><buildNumber>{build}</buildNumber><publicSignup>false</publicSignup>\
<url>{}</url></manifest>",
        xml_text(&version),
        xml_text(&ctx.links.base),
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml;charset=UTF-8"),
        )],
        body,
    )
        .into_response()
}
