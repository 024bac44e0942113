//! Search tests, including the property that index narrowing never changes a result.

use proptest::prelude::*;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::*;
use crate::scim::filter::strategies::{arb_filter, arb_user_doc};
use crate::scim::query::RawQuery;
use crate::scim::resource::from_body;
use crate::scim::schema::SchemaRegistry;
use crate::store::{Store, StoreOptions};

const PAGING: Paging = Paging {
    default: 100,
    max: 1000,
};

async fn memory_store() -> Store {
    let s = Store::connect("sqlite::memory:", &StoreOptions::default())
        .await
        .unwrap();
    s.migrate().await.unwrap();
    s
}

/// Inserts raw documents as a client would POST them; returns how many were accepted.
async fn load(store: &Store, reg: &SchemaRegistry, docs: &[Value]) -> usize {
    let rt = reg.resource_type(ResourceKind::User);
    let mut n = 0;
    for (i, raw) in docs.iter().enumerate() {
        let Ok(mut doc) = from_body(reg, rt, raw) else {
            continue;
        };
        if !doc.contains_key("userName") {
            doc.insert("userName".into(), format!("generated-{i}").into());
        }
        // Use the generated id when it is free, so `id eq` filters can hit.
        let id = raw
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("id-{i}"));
        let now = OffsetDateTime::now_utc();
        if store
            .insert_resource(
                &crate::store::ResourceKey::new("c", ResourceKind::User, &id),
                &doc,
                &[],
                now,
            )
            .await
            .is_ok()
        {
            n += 1;
        }
    }
    n
}

fn ids(page: &Page) -> Vec<String> {
    page.items
        .iter()
        .map(|d| d["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The SQL narrowing only selects candidates; the evaluator decides. So the result of
    /// every filter must be the same with and without narrowing (docs/reference/design.md "Filters
    /// have one meaning").
    #[test]
    fn narrowing_never_changes_a_result(
        docs in prop::collection::vec(arb_user_doc(), 1..30),
        filters in prop::collection::vec(arb_filter(), 1..12),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let reg = SchemaRegistry::builtin();
            let store = memory_store().await;
            load(&store, &reg, &docs).await;
            let scope = Scope { store: &store, rt: reg.resource_type(ResourceKind::User), connector: "c", base: "http://h/scim/v2/c" };
            for f in filters {
                let q = ListQuery { filter: Some(f.clone()), start_index: 1, count: Some(1000), ..ListQuery::default() };
                let narrowed = search_with(scope, &q, PAGING, false, true).await.unwrap();
                let scanned = search_with(scope, &q, PAGING, false, false).await.unwrap();
                prop_assert_eq!(ids(&narrowed), ids(&scanned), "filter: {}", f);
                prop_assert_eq!(narrowed.total, scanned.total);
            }
            Ok(())
        })?;
    }
}

async fn five_users(store: &Store, reg: &SchemaRegistry) {
    let docs: Vec<Value> = ["erin", "Bob", "alice", "dave", "Carol"]
        .iter()
        .map(|n| json!({"userName": n, "active": true}))
        .collect();
    assert_eq!(load(store, reg, &docs).await, 5);
}

fn query(pairs: &[(&str, &str)], reg: &SchemaRegistry) -> ListQuery {
    RawQuery::from_pairs(pairs.iter().copied())
        .parse(
            reg,
            reg.resource_type(ResourceKind::User),
            &Default::default(),
        )
        .unwrap()
}

#[tokio::test]
async fn pages_are_stable_and_one_based() {
    let reg = SchemaRegistry::builtin();
    let store = memory_store().await;
    five_users(&store, &reg).await;
    let scope = Scope {
        store: &store,
        rt: reg.resource_type(ResourceKind::User),
        connector: "c",
        base: "b",
    };
    let mut seen = Vec::new();
    for start in ["1", "3", "5"] {
        let page = search(
            scope,
            &query(&[("startIndex", start), ("count", "2")], &reg),
            PAGING,
            false,
        )
        .await
        .unwrap();
        assert_eq!(page.total, 5);
        seen.extend(ids(&page));
    }
    assert_eq!(seen, ["id-0", "id-1", "id-2", "id-3", "id-4"]);
    // The same pages with a filter that matches everyone go through the evaluator path.
    let page = search(
        scope,
        &query(
            &[
                ("filter", "active eq true"),
                ("startIndex", "5"),
                ("count", "2"),
            ],
            &reg,
        ),
        PAGING,
        false,
    )
    .await
    .unwrap();
    assert_eq!((page.total, ids(&page)), (5, vec!["id-4".to_owned()]));
}

#[tokio::test]
async fn sorting_ignores_case_unless_case_exact_and_respects_order() {
    let reg = SchemaRegistry::builtin();
    let store = memory_store().await;
    five_users(&store, &reg).await;
    let scope = Scope {
        store: &store,
        rt: reg.resource_type(ResourceKind::User),
        connector: "c",
        base: "b",
    };
    let names = |p: &Page| {
        p.items
            .iter()
            .map(|d| d["userName"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let asc = search(
        scope,
        &query(&[("sortBy", "userName")], &reg),
        PAGING,
        false,
    )
    .await
    .unwrap();
    assert_eq!(names(&asc), ["alice", "Bob", "Carol", "dave", "erin"]);
    let desc = search(
        scope,
        &query(
            &[
                ("sortBy", "userName"),
                ("sortOrder", "descending"),
                ("count", "2"),
            ],
            &reg,
        ),
        PAGING,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        (desc.total, names(&desc)),
        (5, vec!["erin".to_owned(), "dave".to_owned()])
    );
}

/// Values shared by the focused generators below: case variants of the same names, so a
/// narrowing that forgets a case rule returns too few candidates.
const POOL: [&str; 8] = [
    "alice@example.com",
    "ALICE@Example.com",
    "Bob",
    "bob",
    "Émile",
    "ÉMILE",
    "e1",
    "E1",
];

fn pooled() -> impl Strategy<Value = String> {
    prop::sample::select(&POOL[..]).prop_map(str::to_owned)
}

/// Filters built mostly from the indexed terms, joined with and/or/not.
fn indexed_filter() -> impl Strategy<Value = Filter> {
    let leaf = prop_oneof![
        pooled().prop_map(|v| format!("userName eq \"{v}\"")),
        pooled().prop_map(|v| format!("externalId eq \"{v}\"")),
        pooled().prop_map(|v| format!("id eq \"{v}\"")),
        any::<bool>().prop_map(|b| format!("active eq {b}")),
        pooled().prop_map(|v| format!("emails.value eq \"{v}\"")),
        pooled().prop_map(|v| format!("emails eq \"{v}\"")),
        pooled().prop_map(|v| format!("emails[value eq \"{v}\" and type eq \"work\"]")),
        pooled().prop_map(|v| format!("title co \"{v}\"")),
    ]
    .prop_map(|s| crate::scim::filter::parse(&s).unwrap());
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(a.into(), b.into())),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(a.into(), b.into())),
            inner.prop_map(|a| Filter::Not(a.into())),
        ]
    })
}

fn pooled_user() -> impl Strategy<Value = Value> {
    (
        pooled(),
        pooled(),
        pooled(),
        any::<bool>(),
        pooled(),
        pooled(),
    )
        .prop_map(|(name, ext, id, active, mail, title)| {
            json!({"userName": name, "externalId": ext, "id": id, "active": active,
               "emails": [{"value": mail, "type": "work"}], "title": title})
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The same property as above, focused on the indexed attributes and their case rules.
    #[test]
    fn narrowing_of_indexed_terms_never_changes_a_result(
        docs in prop::collection::vec(pooled_user(), 1..12),
        filters in prop::collection::vec(indexed_filter(), 1..8),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let reg = SchemaRegistry::builtin();
            let store = memory_store().await;
            load(&store, &reg, &docs).await;
            let scope = Scope { store: &store, rt: reg.resource_type(ResourceKind::User), connector: "c", base: "b" };
            for f in filters {
                let q = ListQuery { filter: Some(f.clone()), start_index: 1, count: Some(1000), ..ListQuery::default() };
                let narrowed = search_with(scope, &q, PAGING, false, true).await.unwrap();
                let scanned = search_with(scope, &q, PAGING, false, false).await.unwrap();
                prop_assert_eq!(ids(&narrowed), ids(&scanned), "filter: {}", f);
            }
            Ok(())
        })?;
    }
}
