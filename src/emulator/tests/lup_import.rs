//! docs/emulator.md test scenario 8: Linchpin fields (L1) with the `dataSource` filter, the profile
//! read (L2), and the XML import job (L3) against a feed served by a tiny local axum server.

use std::sync::{Arc, Mutex};

use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use tokio::task::JoinHandle;

use super::{base_config, base_seed, Req, TestApp};
use crate::emulator::LupValue;

const BOM: &str = "\u{feff}";

/// Serves whatever `feed` holds at `/feed.xml`.
async fn feed_server(feed: Arc<Mutex<Vec<u8>>>) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the feed server");
    let addr = listener.local_addr().expect("feed address");
    let app = Router::new().route(
        "/feed.xml",
        get(move || {
            let feed = Arc::clone(&feed);
            async move {
                let bytes = feed.lock().map(|f| f.clone()).unwrap_or_default();
                ([(header::CONTENT_TYPE, "application/xml")], bytes)
            }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            panic!("feed server failed: {error}");
        }
    });
    (format!("http://{addr}/feed.xml"), task)
}

fn feed(people: &str) -> Vec<u8> {
    format!("{BOM}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<people>{people}</people>\n")
        .into_bytes()
}

/// An app whose import reads `url` with `<person>`/`<login>` tags.
fn import_app(url: &str) -> TestApp {
    let app = TestApp::new();
    let mut knobs = app.emu.knobs();
    knobs.lup.xml_url = Some(url.to_owned());
    knobs.lup.user_tag = "person".to_owned();
    knobs.lup.username_tag = "login".to_owned();
    app.emu.set_knobs(knobs);
    app
}

const GOOD_PEOPLE: &str = "
  <person><login>alice</login><department>Platform Engineering</department>
    <manager>carol</manager><skills>Rust; SCIM</skills><phone>+49 30 1234</phone></person>
  <person><login>Carol</login><department>Management</department><position>CTO</position></person>
  <person><login>ghost</login><department>Nowhere</department></person>";

#[tokio::test]
async fn fields_are_listed_in_the_linchpin_shape_and_filtered_by_data_source() {
    let mut config = base_config();
    let mut seed = base_seed();
    seed.lup_fields = Some(
        serde_json::from_value(json!([
            {"label": "Department", "dataSourceType": "XML"},
            {"label": "Cost Centre", "dataSourceType": "IDP"},
            {"label": "Skills", "fieldType": "MULTISELECT", "dataSourceType": "IDP",
             "options": ["Rust", "SCIM"], "category": "Expertise"}
        ]))
        .expect("fields parse"),
    );
    config.seed = Some(seed);
    let app = TestApp::with_config(config);

    let all = app
        .call(Req::get("/rest/cup/1.0/fields").admin())
        .await
        .json();
    assert_eq!(all.as_array().map(Vec::len), Some(3));
    let department = &all[0];
    assert_eq!(department["userFieldPK"], 1);
    assert_eq!(department["userFieldBK"], "cup.department-1");
    assert_eq!(department["localizedLabel"], "Department");
    assert_eq!(department["confluenceCUPField"], true);

    let idp = app
        .call(Req::get("/rest/cup/1.0/fields?dataSource=IDP").admin())
        .await
        .json();
    let labels: Vec<&str> = idp
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|f| f["localizedLabel"].as_str())
        .collect();
    assert_eq!(labels, vec!["Cost Centre", "Skills"]);
    assert_eq!(idp[1]["options"][1]["labelKey"], "SCIM");
    assert_eq!(idp[1]["localizedFieldCategoryLabel"], "Expertise");
    let xml = app
        .call(Req::get("/rest/cup/1.0/fields?dataSource=xml").admin())
        .await
        .json();
    assert_eq!(xml.as_array().map(Vec::len), Some(1));
    let bad = app
        .call(Req::get("/rest/cup/1.0/fields?dataSource=FTP").admin())
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_xml_import_sets_values_mirrors_details_and_marks_them_read_only() {
    let body = Arc::new(Mutex::new(feed(GOOD_PEOPLE)));
    let (url, server) = feed_server(Arc::clone(&body)).await;
    let app = import_app(&url);

    let report = app.emu.run_xml_import().await;
    assert!(report.successful, "{report:?}");
    assert_eq!(report.bom_present, Some(true));
    assert_eq!(report.users_in_feed, 3);
    assert_eq!(report.users_updated, 2);
    assert_eq!(report.unknown_users, vec!["ghost".to_owned()]);

    let alice = app.emu.lup_values("alice").expect("alice exists");
    assert_eq!(
        alice.get("Department"),
        Some(&LupValue::Single("Platform Engineering".to_owned()))
    );
    assert_eq!(
        alice.get("Manager"),
        Some(&LupValue::Single("carol".to_owned()))
    );
    assert_eq!(
        alice.get("Skills"),
        Some(&LupValue::Multi(vec!["Rust".to_owned(), "SCIM".to_owned()]))
    );
    assert_eq!(app.emu.lup_read_only("alice", "Department"), Some(true));
    let details = app.emu.user("alice").expect("alice").details;
    assert_eq!(details.department.as_deref(), Some("Platform Engineering"));
    assert_eq!(details.phone.as_deref(), Some("+49 30 1234"));
    assert_eq!(
        app.emu.user("carol").and_then(|c| c.details.position),
        Some("CTO".to_owned())
    );

    // L2 and the mobile profile show the result.
    let profile = app
        .call(Req::get("/rest/cup/1.0/profile/alice").admin())
        .await
        .json();
    assert_eq!(profile["username"], "alice");
    assert!(profile["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .any(|f| f["userFieldBK"] == "cup.manager-2" && f["value"] == "carol"));
    let mobile = app
        .call(Req::get("/rest/mobile/1.0/profile/alice").admin())
        .await
        .json();
    assert_eq!(mobile["department"], "Platform Engineering");

    // A later feed without the department leaves the value but makes it editable again.
    if let Ok(mut f) = body.lock() {
        *f = feed("<person><login>alice</login><manager>carol</manager></person>");
    }
    let report = app.emu.run_xml_import().await;
    assert!(report.successful);
    assert_eq!(report.users_updated, 0, "nothing changed");
    assert_eq!(app.emu.lup_read_only("alice", "Department"), Some(false));
    assert_eq!(app.emu.lup_read_only("alice", "Manager"), Some(true));
    assert!(app.emu.state_json()["lup"]["lastImport"]["successful"] == true);
    server.abort();
}

#[tokio::test]
async fn a_feed_with_a_duplicate_username_fails_as_a_whole() {
    let body = Arc::new(Mutex::new(feed(GOOD_PEOPLE)));
    let (url, server) = feed_server(Arc::clone(&body)).await;
    let app = import_app(&url);
    assert!(app.emu.run_xml_import().await.successful);

    if let Ok(mut f) = body.lock() {
        *f = feed(
            "<person><login>carol</login><department>Changed</department></person>
             <person><login>alice</login><department>Changed</department></person>
             <person><login>ALICE</login><department>Other</department></person>",
        );
    }
    let resp = app.call(Req::post("/__emulator/lup/xml-import")).await;
    assert_eq!(resp.status, StatusCode::OK);
    let report = resp.json();
    assert_eq!(report["successful"], false);
    assert!(report["errors"][0]
        .as_str()
        .is_some_and(|e| e.contains("duplicate") && e.contains("alice")));
    for user in ["alice", "carol"] {
        let department = app
            .emu
            .lup_values(user)
            .and_then(|v| v.get("Department").cloned());
        assert_ne!(
            department,
            Some(LupValue::Single("Changed".to_owned())),
            "{user}"
        );
    }
    server.abort();
}

#[tokio::test]
async fn an_import_without_a_reachable_feed_reports_an_error() {
    let app = TestApp::new();
    let report = app.emu.run_xml_import().await;
    assert!(!report.successful);
    assert!(report.errors[0].contains("lup.xml_url"));

    let app = import_app("http://127.0.0.1:9/feed.xml");
    let report = app.emu.run_xml_import().await;
    assert!(!report.successful);
    assert_eq!(report.bom_present, None);
}

#[tokio::test]
async fn a_feed_without_bom_is_accepted_and_reported_as_such() {
    let plain = "<people><person><login>alice</login><location>Berlin</location></person></people>";
    let body = Arc::new(Mutex::new(plain.as_bytes().to_vec()));
    let (url, server) = feed_server(body).await;
    let app = import_app(&url);
    let report = app.emu.run_xml_import().await;
    assert!(report.successful);
    assert_eq!(report.bom_present, Some(false));
    assert_eq!(
        app.emu.user("alice").and_then(|u| u.details.location),
        Some("Berlin".to_owned())
    );
    server.abort();
}

#[tokio::test]
async fn the_profile_endpoint_answers_404_for_unknown_users() {
    let app = TestApp::new();
    let resp = app
        .call(Req::get("/rest/cup/1.0/profile/ghost").admin())
        .await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    let empty = app
        .call(Req::get("/rest/cup/1.0/profile/alice").admin())
        .await
        .json();
    assert_eq!(empty["fields"], json!([]));
}
