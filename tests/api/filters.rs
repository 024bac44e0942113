//! Filtering, sorting, paging and attribute selection over HTTP.

use serde_json::json;

use crate::errors::urlencode;
use crate::helpers::TestApp;

async fn people(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for (name, title, dept, mail, active) in [
        ("alice", "Engineer", "R&D", "alice@example.com", true),
        ("bob", "Manager", "Sales", "bob@example.org", false),
        ("carol", "Engineer", "Sales", "carol@example.com", true),
    ] {
        ids.push(
            app.create_user(json!({
                "userName": name, "title": title, "active": active,
                "emails": [{"value": mail, "type": "work"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": dept}
            }))
            .await,
        );
    }
    ids
}

async fn names(app: &TestApp, filter: &str) -> Vec<String> {
    let r = app
        .get(&format!("/Users?filter={}", urlencode(filter)))
        .await;
    r.assert_status(200);
    r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_whole_filter_grammar_works_over_http() {
    let app = TestApp::spawn().await;
    people(&app).await;
    for (filter, want) in [
        ("userName eq \"ALICE\"", vec!["alice"]),
        (
            "title eq \"Engineer\" and active eq true",
            vec!["alice", "carol"],
        ),
        (
            "title eq \"Manager\" or userName sw \"c\"",
            vec!["bob", "carol"],
        ),
        ("not (title eq \"Engineer\")", vec!["bob"]),
        (
            "emails[type eq \"work\" and value co \"@example.com\"]",
            vec!["alice", "carol"],
        ),
        ("emails.value ew \".org\"", vec!["bob"]),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"sales\"",
            vec!["bob", "carol"],
        ),
        ("department eq \"R&D\"", vec!["alice"]),
        (
            "meta.created gt \"2000-01-01T00:00:00Z\"",
            vec!["alice", "bob", "carol"],
        ),
        (
            "title pr and (userName eq \"bob\" or userName eq \"carol\")",
            vec!["bob", "carol"],
        ),
        ("nickName pr", vec![]),
    ] {
        assert_eq!(names(&app, filter).await, want, "{filter}");
    }
}

#[tokio::test]
async fn a_filter_without_match_is_an_empty_200() {
    let app = TestApp::spawn().await;
    let r = app.get("/Users?filter=userName%20eq%20%22nobody%22").await;
    r.assert_status(200);
    assert_eq!(
        r.body,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0,
               "itemsPerPage": 0, "startIndex": 1, "Resources": []})
    );
}

#[tokio::test]
async fn sort_and_page_with_attribute_selection() {
    let app = TestApp::spawn().await;
    people(&app).await;
    let r = app
        .get("/Users?sortBy=userName&sortOrder=descending&startIndex=2&count=1&attributes=userName")
        .await;
    assert_eq!(r.body["totalResults"], 3);
    assert_eq!(r.body["startIndex"], 2);
    let item = &r.body["Resources"][0];
    assert_eq!(item["userName"], "bob");
    let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["schemas", "id", "userName"]);
}

#[tokio::test]
async fn excluded_attributes_are_left_out_but_id_stays() {
    let app = TestApp::spawn().await;
    let ids = people(&app).await;
    let r = app
        .get(&format!(
            "/Users/{}?excludedAttributes=emails,title,id",
            ids[0]
        ))
        .await;
    assert!(r.body.get("emails").is_none() && r.body.get("title").is_none());
    assert_eq!(r.body["id"], json!(ids[0]), "id is returned always");
}

#[tokio::test]
async fn post_search_takes_the_query_in_the_body() {
    let app = TestApp::spawn().await;
    people(&app).await;
    let r = app
        .post(
            "/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "filter": "title eq \"Engineer\"", "attributes": ["userName"], "count": 1}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["totalResults"], 2);
    assert_eq!(r.body["Resources"].as_array().unwrap().len(), 1);
    let root = app
        .post("/.search", json!({"filter": "userName eq \"bob\""}))
        .await;
    assert_eq!(root.body["totalResults"], 1);
}
