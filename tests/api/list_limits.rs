//! List responses are capped in bytes (issue 8 item 5, `limits.max_response_bytes`): a page
//! that would be larger ends early, says so in `itemsPerPage`, and paging by it reaches
//! every resource, whether the list is plain, filtered or sorted.

use std::collections::BTreeSet;

use serde_json::json;

use crate::helpers::TestApp;

const CAP: usize = 64 * 1024;
const USERS: usize = 12;

async fn app_with_large_users() -> TestApp {
    let app = TestApp::spawn_with(|s| s.limits.max_response_bytes = CAP).await;
    for i in 0..USERS {
        // About 20 KiB each: three fit in a 64 KiB page.
        app.create_user(json!({"userName": format!("big{i:02}"), "title": "t".repeat(20 * 1024)}))
            .await;
    }
    app
}

/// Pages through `query` (without startIndex) by `itemsPerPage`; returns the ids seen and the
/// largest page.
async fn page_through(app: &TestApp, query: &str) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut start = 1;
    let mut largest = 0;
    loop {
        let r = app
            .get(&format!("/Users?{query}&count=100&startIndex={start}"))
            .await;
        r.assert_status(200);
        assert!(
            r.text.len() <= CAP + 1024,
            "a page of {} bytes",
            r.text.len()
        );
        assert_eq!(r.body["totalResults"], USERS, "{}", r.body["totalResults"]);
        let items = r.body["itemsPerPage"].as_u64().unwrap() as usize;
        let resources = r.body["Resources"].as_array().unwrap();
        assert_eq!(resources.len(), items);
        largest = largest.max(items);
        ids.extend(
            resources
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_owned()),
        );
        if items == 0 || ids.len() >= USERS {
            break;
        }
        start += items;
    }
    (ids, largest)
}

#[tokio::test]
async fn pages_over_the_byte_cap_end_early_and_paging_reaches_everyone() {
    let app = app_with_large_users().await;
    for query in [
        "attributes=userName,title",
        "filter=title%20pr",
        "filter=userName%20sw%20%22big%22&sortBy=userName&sortOrder=descending",
    ] {
        let (ids, largest) = page_through(&app, query).await;
        assert!(largest < USERS, "{query}: the cap shortened pages");
        assert!(largest >= 2, "{query}: pages carry what fits");
        assert_eq!(ids.len(), USERS, "{query}");
        assert_eq!(
            ids.iter().collect::<BTreeSet<_>>().len(),
            USERS,
            "{query}: no repeats"
        );
    }
    // Sorted pages come in order across page boundaries.
    let mut names = Vec::new();
    let mut start = 1;
    while names.len() < USERS {
        let r = app
            .get(&format!(
                "/Users?sortBy=userName&sortOrder=descending&startIndex={start}"
            ))
            .await;
        let page: Vec<String> = r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect();
        start += page.len();
        names.extend(page);
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(names, sorted);
}

#[tokio::test]
async fn a_resource_larger_than_the_cap_is_still_returned_alone() {
    let app = TestApp::spawn_with(|s| s.limits.max_response_bytes = CAP).await;
    for i in 0..2 {
        app.create_user(json!({"userName": format!("huge{i}"), "title": "h".repeat(CAP * 2)}))
            .await;
    }
    let r = app.get("/Users").await;
    r.assert_status(200);
    assert_eq!(r.body["itemsPerPage"], 1);
    assert_eq!(r.body["totalResults"], 2);
    let r = app.get("/Users?startIndex=2").await;
    assert_eq!(r.body["itemsPerPage"], 1);
    assert_eq!(r.body["Resources"][0]["userName"], "huge1");
}
