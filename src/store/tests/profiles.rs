//! Contract tests for manager keys, report marking, profile reads and target state.

use serde_json::json;

use super::{doc, now, queue_ids, store};
use crate::mapping::ManagerKey;
use crate::scim::schema::ResourceKind::User;
use crate::store::Backend;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn generation(s: &crate::store::Store, id: &str) -> i64 {
    s.queue_rows(None)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key.id == id)
        .map(|r| r.generation)
        .unwrap_or(0)
}

async fn a_manager_written_after_a_report_marks_the_report(b: Backend) {
    let (s, _db) = store(b).await;
    let report = doc(json!({"userName": "emp", ENT: {"manager": {"value": " E-42 "}}}));
    s.insert_resource(
        &crate::store::ResourceKey::new("c", User, "u-emp"),
        &report,
        &[],
        now(),
    )
    .await
    .unwrap();
    let other = doc(json!({"userName": "bystander"}));
    s.insert_resource(
        &crate::store::ResourceKey::new("c", User, "u-by"),
        &other,
        &[],
        now(),
    )
    .await
    .unwrap();
    let before = (generation(&s, "u-emp").await, generation(&s, "u-by").await);
    // The manager arrives with the employee number the report names (case and blanks aside).
    let boss = doc(json!({"userName": "boss", ENT: {"employeeNumber": "e-42"}}));
    s.insert_resource(
        &crate::store::ResourceKey::new("c", User, "u-boss"),
        &boss,
        &[],
        now(),
    )
    .await
    .unwrap();
    assert_eq!(generation(&s, "u-emp").await, before.0 + 1, "report marked");
    assert_eq!(generation(&s, "u-by").await, before.1, "others untouched");
    // Another connector's users are never marked.
    s.insert_resource(
        &crate::store::ResourceKey::new("other", User, "x"),
        &boss,
        &[],
        now(),
    )
    .await
    .unwrap();
    assert_eq!(generation(&s, "u-emp").await, before.0 + 1);
    // A change of the manager marks the report again; so does the manager's deletion.
    let renamed = doc(json!({"userName": "boss", ENT: {"employeeNumber": "E-43"}}));
    s.modify_resource(
        &crate::store::ResourceKey::new("c", User, "u-boss"),
        None,
        now(),
        move |_| Ok((renamed.clone(), vec![])),
    )
    .await
    .unwrap();
    assert_eq!(
        generation(&s, "u-emp").await,
        before.0 + 2,
        "old key matched"
    );
    let back = doc(json!({"userName": "boss", ENT: {"employeeNumber": "E-42"}}));
    s.modify_resource(
        &crate::store::ResourceKey::new("c", User, "u-boss"),
        None,
        now(),
        move |_| Ok((back.clone(), vec![])),
    )
    .await
    .unwrap();
    assert_eq!(
        generation(&s, "u-emp").await,
        before.0 + 3,
        "new key matched"
    );
    s.delete_resource(
        &crate::store::ResourceKey::new("c", User, "u-boss"),
        None,
        now(),
    )
    .await
    .unwrap();
    assert_eq!(
        generation(&s, "u-emp").await,
        before.0 + 4,
        "deletion marks too"
    );
    assert!(queue_ids(&s).await.contains(&"u-boss".to_owned()));
}

async fn users_are_found_by_each_manager_key(b: Backend) {
    let (s, _db) = store(b).await;
    let d = doc(json!({"userName": "Mia.Boss@X.org", "externalId": "ext-1",
        ENT: {"employeeNumber": " 007 ", "manager": {"value": "self"}}}));
    s.insert_resource(
        &crate::store::ResourceKey::new("c", User, "id-1"),
        &d,
        &[],
        now(),
    )
    .await
    .unwrap();
    for (key, value) in [
        (ManagerKey::Id, "id-1"),
        (ManagerKey::ExternalId, "ext-1"),
        (ManagerKey::EmployeeNumber, "007"),
        (ManagerKey::UserName, "mia.boss@x.org"),
    ] {
        let rows = s.users_by_key("c", key, &[value.to_owned()]).await.unwrap();
        assert_eq!(rows.len(), 1, "{key:?}");
        assert_eq!(rows[0].id, "id-1");
        assert_eq!(rows[0].employee_number.as_deref(), Some("007"));
        assert_eq!(rows[0].linked_username, None);
    }
    assert!(s
        .users_by_key("c", ManagerKey::ExternalId, &["EXT-1".to_owned()])
        .await
        .unwrap()
        .is_empty());
    let page = s.profile_page("c", 0, 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert!(s
        .profile_page("c", page[0].seq, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn the_feed_stamp_moves_with_users_and_links(b: Backend) {
    let (s, _db) = store(b).await;
    let empty = s.feed_stamp("c").await.unwrap();
    assert_eq!((empty.users, empty.changed_ms), (0, 0));
    s.insert_resource(
        &crate::store::ResourceKey::new("c", User, "u1"),
        &doc(json!({"userName": "a"})),
        &[],
        now(),
    )
    .await
    .unwrap();
    let one = s.feed_stamp("c").await.unwrap();
    assert_eq!(one.users, 1);
    assert!(one.changed_ms > 0);
    // A new identity link moves the stamp; delivery re-saving it does not.
    let link = crate::store::links::Link {
        connector: "c".into(),
        kind: User,
        scim_id: "u1".into(),
        target_name: "a".into(),
        target_key: None,
        status: crate::store::links::LinkStatus::Active,
        applied: None,
        note: None,
    };
    let later = now() + time::Duration::seconds(5);
    s.save_link(&link, later).await.unwrap();
    let linked = s.feed_stamp("c").await.unwrap();
    assert_eq!(linked.links, 1);
    assert!(linked.changed_ms > one.changed_ms);
    s.save_link(&link, later + time::Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(s.feed_stamp("c").await.unwrap(), linked);
    s.delete_resource(
        &crate::store::ResourceKey::new("c", User, "u1"),
        None,
        now(),
    )
    .await
    .unwrap();
    assert_eq!(s.feed_stamp("c").await.unwrap().users, 0);
}

async fn target_digests_are_saved_replaced_and_forgotten(b: Backend) {
    let (s, _db) = store(b).await;
    assert_eq!(s.target_digest("c", "u1", "webhook").await.unwrap(), None);
    s.save_target_digest("c", "u1", "webhook", "d1", now())
        .await
        .unwrap();
    s.save_target_digest("c", "u1", "webhook", "d2", now())
        .await
        .unwrap();
    assert_eq!(
        s.target_digest("c", "u1", "webhook")
            .await
            .unwrap()
            .as_deref(),
        Some("d2")
    );
    s.forget_target_digest("c", "u1", "webhook").await.unwrap();
    assert_eq!(s.target_digest("c", "u1", "webhook").await.unwrap(), None);
}

contract!(
    a_manager_written_after_a_report_marks_the_report,
    users_are_found_by_each_manager_key,
    the_feed_stamp_moves_with_users_and_links,
    target_digests_are_saved_replaced_and_forgotten,
);
