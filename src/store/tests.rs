//! Store contract tests, run once on SQLite and once on PostgreSQL (a fresh database each).

use serde_json::json;
use time::OffsetDateTime;

use super::testdb::TestDb;
use super::ResourceKey;
use super::*;
use crate::scim::members::{MemberOp, MemberRef};
use crate::scim::resource::{Document, IfMatch};
use crate::scim::schema::ResourceKind::{self, Group, User};

pub(super) async fn store(backend: Backend) -> (Store, TestDb) {
    let db = TestDb::create(backend).await;
    let store = Store::connect(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (store, db)
}

pub(super) fn doc(v: serde_json::Value) -> Document {
    v.as_object().unwrap().clone()
}

pub(super) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn member(id: &str) -> MemberRef {
    MemberRef {
        value: id.into(),
        kind: None,
        display: None,
    }
}

pub(super) async fn queue_ids(s: &Store) -> Vec<String> {
    s.queue_rows(None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key.id)
        .collect()
}

async fn insert_and_read_back_round_trips_the_document(b: Backend) {
    let (s, _db) = store(b).await;
    let d = doc(
        json!({"userName": "Alice@Example.com", "emails": [{"value": "A@x.org"}], "active": true}),
    );
    let ins = s
        .insert_resource(
            &crate::store::ResourceKey::new("c1", User, "u1"),
            &d,
            &[],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(ins.resource.version, 1);
    let got = s
        .get_resource(&crate::store::ResourceKey::new("c1", User, "u1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.doc, d);
    assert_eq!(got.name, "Alice@Example.com");
    assert!(
        s.get_resource(&crate::store::ResourceKey::new("c2", User, "u1"))
            .await
            .unwrap()
            .is_none(),
        "connectors are isolated"
    );
}

async fn user_names_are_unique_per_connector_ignoring_case(b: Backend) {
    let (s, _db) = store(b).await;
    s.insert_resource(
        &crate::store::ResourceKey::new("c1", User, "u1"),
        &doc(json!({"userName": "alice"})),
        &[],
        now(),
    )
    .await
    .unwrap();
    let err = s
        .insert_resource(
            &crate::store::ResourceKey::new("c1", User, "u2"),
            &doc(json!({"userName": "ALICE"})),
            &[],
            now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref w) if w == "userName"),
        "{err:?}"
    );
    // Another connector may use the same name.
    s.insert_resource(
        &crate::store::ResourceKey::new("c2", User, "u3"),
        &doc(json!({"userName": "alice"})),
        &[],
        now(),
    )
    .await
    .unwrap();
    assert_eq!(
        queue_ids(&s).await.len(),
        2,
        "the failed insert left no queue row"
    );
}

async fn a_failed_write_leaves_neither_resource_nor_queue_row(b: Backend) {
    let (s, _db) = store(b).await;
    // Break the queue table: the resource insert in the same transaction must roll back.
    sqlx::query("ALTER TABLE sync_queue RENAME TO sync_queue_broken")
        .execute(s.writer())
        .await
        .unwrap();
    let res = s
        .insert_resource(
            &crate::store::ResourceKey::new("c1", User, "u1"),
            &doc(json!({"userName": "a"})),
            &[],
            now(),
        )
        .await;
    assert!(res.is_err());
    sqlx::query("ALTER TABLE sync_queue_broken RENAME TO sync_queue")
        .execute(s.writer())
        .await
        .unwrap();
    assert!(s
        .get_resource(&crate::store::ResourceKey::new("c1", User, "u1"))
        .await
        .unwrap()
        .is_none());
    assert!(queue_ids(&s).await.is_empty());
}

/// Connector `c1` has `rows` audit rows (one per committed write), and every chain verifies.
async fn assert_audit_whole(s: &Store, rows: usize) {
    let found = s
        .audit_query(&crate::store::audit::AuditQuery {
            connector: Some("c1".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), rows, "one audit row per committed write");
    let verified = s.audit_verify().await.unwrap();
    assert!(verified.bad.is_empty(), "{:?}", verified.bad);
}

/// Writes that arrive together share a transaction on SQLite, run without savepoints until
/// one fails (`store/batch.rs`): the failing writes must change nothing and fail alone,
/// every other write of the batch must be committed once (one queue row, one audit row, an
/// unbroken audit chain), and the writes after the fallback must commit as usual.
async fn failing_writes_among_concurrent_ones_fail_alone(b: Backend) {
    let (s, _db) = store(b).await;
    let key = |id: &str| crate::store::ResourceKey::new("c1", User, id);
    s.insert_resource(
        &key("first"),
        &doc(json!({"userName": "Taken"})),
        &[],
        now(),
    )
    .await
    .unwrap();
    for round in 0..2 {
        let writes = (0..48).map(|i| {
            let s = s.clone();
            // Every eighth write takes a name already in use (case differs): a conflict.
            let name = if i % 8 == 3 {
                "TAKEN".to_owned()
            } else {
                format!("user-{round}-{i}")
            };
            let id = format!("u-{round}-{i}");
            tokio::spawn(async move {
                let d =
                    doc(json!({"userName": name, "emails": [{"value": format!("{id}@x.org")}]}));
                (
                    id.clone(),
                    s.insert_resource(&key(&id), &d, &[], now()).await,
                )
            })
        });
        let results = futures_util::future::join_all(writes).await;
        let mut created = 0;
        for r in results {
            let (id, outcome) = r.unwrap();
            let stored = s.get_resource(&key(&id)).await.unwrap();
            match outcome {
                Ok(ins) => {
                    created += 1;
                    assert_eq!(stored.unwrap().seq, ins.resource.seq, "{id}");
                }
                Err(StoreError::Conflict(_)) => assert!(stored.is_none(), "{id} half-written"),
                Err(e) => panic!("{id}: {e}"),
            }
        }
        assert_eq!(created, 42, "round {round}");
    }
    let mut ids = queue_ids(&s).await;
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1 + 2 * 42);
    assert_audit_whole(&s, 1 + 2 * 42).await;
}

/// A batch keeps the audit chains' heads in memory (`store/heads.rs`): creates (one round
/// trip), updates, deletes and group creates with members (the statement-by-statement path)
/// mixed in the same batches must append exactly one row each, in order, and leave every
/// chain's head on its last row.
async fn mixed_writes_in_one_batch_keep_every_audit_chain_whole(b: Backend) {
    let (s, _db) = store(b).await;
    let key = |kind, id: &str| crate::store::ResourceKey::new("c1", kind, id);
    let mut expected_rows = 0;
    for round in 0..3 {
        let writes = (0..40).map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let id = format!("u-{round}-{i}");
                let d = doc(json!({"userName": id.clone()}));
                s.insert_resource(&key(User, &id), &d, &[], now())
                    .await
                    .unwrap();
                // The same batch or a later one: an update, then every fourth user deleted.
                let renamed = doc(json!({"userName": format!("{id}-r")}));
                set(&s, User, &id, &renamed, &[]).await;
                if i % 4 == 0 {
                    s.delete_resource(&key(User, &id), None, now())
                        .await
                        .unwrap();
                    return 3;
                }
                2
            })
        });
        let groups = (0..8).map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let id = format!("g-{round}-{i}");
                let d = doc(json!({"displayName": id.clone()}));
                let members = [member(&format!("u-{round}-{}", i + 1))];
                s.insert_resource(&key(Group, &id), &d, &members, now())
                    .await
                    .unwrap();
                1
            })
        });
        let (users, groups) = tokio::join!(
            futures_util::future::join_all(writes),
            futures_util::future::join_all(groups)
        );
        expected_rows += users
            .into_iter()
            .chain(groups)
            .map(|r| r.unwrap())
            .sum::<usize>();
    }
    assert_audit_whole(&s, expected_rows).await;
    // Each chain's head is its last row, hash included.
    let heads: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT chain, head_seq, head_hash FROM audit_chains ORDER BY chain")
            .fetch_all(s.reader())
            .await
            .unwrap();
    for (chain, head_seq, head_hash) in heads {
        let last: Option<(i64, String)> = sqlx::query_as(
            "SELECT chain_seq, hash FROM audit_log WHERE chain = $1 \
             ORDER BY chain_seq DESC LIMIT 1",
        )
        .bind(chain)
        .fetch_optional(s.reader())
        .await
        .unwrap();
        match last {
            Some((seq, hash)) => assert_eq!((head_seq, head_hash), (seq, hash), "chain {chain}"),
            None => assert_eq!(head_seq, 0, "chain {chain}"),
        }
    }
}

/// Sets the document and applies member ops, the way the HTTP layer's PUT does.
async fn set(
    s: &Store,
    kind: ResourceKind,
    id: &str,
    d: &Document,
    ops: &[MemberOp],
) -> UpdateOutcome {
    let (d, ops) = (d.clone(), ops.to_vec());
    s.modify_resource(
        &crate::store::ResourceKey::new("c1", kind, id),
        None,
        now(),
        move |_| Ok((d.clone(), ops.clone())),
    )
    .await
    .unwrap()
}

async fn updates_skip_unchanged_documents_and_can_be_refused(b: Backend) {
    let (s, _db) = store(b).await;
    let d = doc(json!({"userName": "a"}));
    s.insert_resource(
        &crate::store::ResourceKey::new("c1", User, "u1"),
        &d,
        &[],
        now(),
    )
    .await
    .unwrap();
    let out = set(&s, User, "u1", &d, &[]).await;
    assert!(matches!(out, UpdateOutcome::Unchanged(ref r) if r.version == 1));
    let d2 = doc(json!({"userName": "a", "title": "Eng"}));
    let out = set(&s, User, "u1", &d2, &[]).await;
    assert!(matches!(out, UpdateOutcome::Updated { ref resource, .. } if resource.version == 2));
    let refuse = |_: &StoredResource| Err(crate::scim::ScimError::precondition_failed("stale"));
    let out = s
        .modify_resource(
            &crate::store::ResourceKey::new("c1", User, "u1"),
            None,
            now(),
            refuse,
        )
        .await
        .unwrap();
    assert!(matches!(out, UpdateOutcome::Rejected(ref e) if e.status == 412));
    assert!(matches!(
        set(&s, User, "nope", &d, &[]).await,
        UpdateOutcome::NotFound
    ));
    assert_eq!(
        s.get_resource(&crate::store::ResourceKey::new("c1", User, "u1"))
            .await
            .unwrap()
            .unwrap()
            .doc,
        d2
    );
}

async fn membership_adds_skip_unknown_ids_and_follow_deletes(b: Backend) {
    let (s, _db) = store(b).await;
    for u in ["u1", "u2", "u3"] {
        s.insert_resource(
            &crate::store::ResourceKey::new("c1", User, u),
            &doc(json!({"userName": u})),
            &[],
            now(),
        )
        .await
        .unwrap();
    }
    let ins = s
        .insert_resource(
            &crate::store::ResourceKey::new("c1", Group, "g1"),
            &doc(json!({"displayName": "G"})),
            &[member("u1"), member("ghost")],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(ins.skipped_members, vec!["ghost".to_owned()]);
    let g = doc(json!({"displayName": "G"}));
    let ops = [
        MemberOp::Add(vec![member("u2"), member("u3")]),
        MemberOp::Remove(vec!["u1".into()]),
    ];
    let out = set(&s, Group, "g1", &g, &ops).await;
    assert!(matches!(out, UpdateOutcome::Updated { .. }));
    let ids = |m: &std::collections::HashMap<String, Vec<MemberRow>>| {
        m.get("g1")
            .map(|v| v.iter().map(|r| r.id.clone()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(
        ids(&s.members_of("c1", &["g1".into()]).await.unwrap()),
        ["u2", "u3"]
    );
    // Re-adding existing members changes nothing: no version bump.
    let out = set(&s, Group, "g1", &g, &[MemberOp::Add(vec![member("u2")])]).await;
    assert!(matches!(out, UpdateOutcome::Unchanged(_)));
    let out = set(
        &s,
        Group,
        "g1",
        &g,
        &[MemberOp::Replace(vec![member("u1")])],
    )
    .await;
    assert!(matches!(out, UpdateOutcome::Updated { .. }));
    assert_eq!(
        ids(&s.members_of("c1", &["g1".into()]).await.unwrap()),
        ["u1"]
    );
    // Deleting a member removes it from its groups and marks the group.
    assert_eq!(
        s.delete_resource(
            &crate::store::ResourceKey::new("c1", User, "u1"),
            None,
            now()
        )
        .await
        .unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(ids(&s.members_of("c1", &["g1".into()]).await.unwrap()).is_empty());
    let groups = s.groups_of("c1", &["u2".into()]).await.unwrap();
    assert!(groups.is_empty());
}

async fn deletes_honour_the_version_and_report_missing(b: Backend) {
    let (s, _db) = store(b).await;
    s.insert_resource(
        &crate::store::ResourceKey::new("c1", User, "u1"),
        &doc(json!({"userName": "a"})),
        &[],
        now(),
    )
    .await
    .unwrap();
    for stale in [IfMatch::Versions(vec![7]), IfMatch::Versions(vec![])] {
        assert_eq!(
            s.delete_resource(
                &crate::store::ResourceKey::new("c1", User, "u1"),
                Some(stale),
                now()
            )
            .await
            .unwrap(),
            DeleteOutcome::Stale
        );
    }
    assert_eq!(
        s.delete_resource(
            &crate::store::ResourceKey::new("c1", User, "u1"),
            Some(IfMatch::Versions(vec![7, 1])),
            now()
        )
        .await
        .unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        s.delete_resource(
            &crate::store::ResourceKey::new("c1", User, "u1"),
            None,
            now()
        )
        .await
        .unwrap(),
        DeleteOutcome::NotFound
    );
    // The key stays marked so delivery can deprovision.
    assert_eq!(queue_ids(&s).await, ["u1"]);
}

async fn a_claim_completes_only_its_generation(b: Backend) {
    let (s, _db) = store(b).await;
    s.insert_resource(
        &crate::store::ResourceKey::new("c1", User, "u1"),
        &doc(json!({"userName": "a"})),
        &[],
        now(),
    )
    .await
    .unwrap();
    let lease = std::time::Duration::from_secs(30);
    let claims = s.claim_due(now(), lease, 10).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert!(
        s.claim_due(now(), lease, 10).await.unwrap().is_empty(),
        "one in flight per key"
    );
    // A change arrives while the key is in flight.
    let key = ResourceKey {
        connector: "c1".into(),
        kind: User,
        id: "u1".into(),
    };
    s.mark_dirty(&key, now()).await.unwrap();
    s.complete_claim(&claims[0]).await.unwrap();
    let again = s.claim_due(now(), lease, 10).await.unwrap();
    assert_eq!(again.len(), 1, "the newer generation is still pending");
    s.bury_claim(&again[0], "HTTP 400 from Confluence")
        .await
        .unwrap();
    let rows = s.queue_rows(Some("c1")).await.unwrap();
    assert_eq!(
        (rows[0].state.as_str(), rows[0].last_error.as_deref()),
        ("dead", Some("HTTP 400 from Confluence"))
    );
    let stats = s.queue_stats().await.unwrap();
    assert_eq!((stats.pending, stats.dead), (0, 1));
    // A new change revives a dead key.
    s.mark_dirty(&key, now()).await.unwrap();
    assert_eq!(s.queue_stats().await.unwrap().pending, 1);
}

async fn connectors_store_hashes_and_rotate_with_grace(b: Backend) {
    let (s, _db) = store(b).await;
    let t0 = now();
    s.create_connector("entra", "h1", t0).await.unwrap();
    assert!(matches!(
        s.create_connector("entra", "h2", t0).await,
        Err(StoreError::Conflict(_))
    ));
    let grace = t0 + time::Duration::hours(1);
    assert!(s
        .rotate_connector_token("entra", "h2", t0, grace)
        .await
        .unwrap());
    assert!(!s
        .rotate_connector_token("nope", "h3", t0, grace)
        .await
        .unwrap());
    let cs = s.connectors().await.unwrap();
    assert_eq!(cs.len(), 1);
    let old = cs[0].tokens.iter().find(|t| t.hash == "h1").unwrap();
    let new = cs[0].tokens.iter().find(|t| t.hash == "h2").unwrap();
    assert_eq!(old.expires.map(to_ms), Some(to_ms(grace)));
    assert_eq!(new.expires, None);
}

async fn narrowed_queries_use_the_indexed_columns(b: Backend) {
    let (s, _db) = store(b).await;
    let reg = crate::scim::schema::SchemaRegistry::builtin();
    let rt = reg.resource_type(User);
    for (id, name, ext, active, email) in [
        ("u1", "Alice", "e1", true, "ALICE@x.org"),
        ("u2", "bob", "e2", false, "bob@x.org"),
    ] {
        let d = doc(
            json!({"userName": name, "externalId": ext, "active": active, "emails": [{"value": email}]}),
        );
        s.insert_resource(
            &crate::store::ResourceKey::new("c1", User, id),
            &d,
            &[],
            now(),
        )
        .await
        .unwrap();
    }
    let ids = |f: &str| {
        let f = crate::scim::filter::parse(f).unwrap();
        narrow::narrow(&f, rt).unwrap()
    };
    for (filter, want) in [
        ("userName eq \"ALICE\"", vec!["u1"]),
        ("externalId eq \"e2\"", vec!["u2"]),
        ("active eq false", vec!["u2"]),
        ("emails.value eq \"alice@X.org\"", vec!["u1"]),
        (
            "emails[value eq \"BOB@x.org\" and type eq \"work\"]",
            vec!["u2"],
        ),
        ("id eq \"u1\" or id eq \"u2\"", vec!["u1", "u2"]),
    ] {
        let got: Vec<String> = s
            .narrowed_resources("c1", User, &ids(filter))
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(got, want, "{filter}");
    }
}

/// Sets `name_lower` as a version before NFC comparison would have written it.
async fn unfold(s: &Store, id: &str, name_lower: &str) {
    sqlx::query("UPDATE resources SET name_lower = $1 WHERE id = $2")
        .bind(name_lower.to_owned())
        .bind(id.to_owned())
        .execute(s.writer())
        .await
        .unwrap();
}

async fn names_are_unique_in_nfc_and_old_rows_are_refolded_at_start(b: Backend) {
    let (s, _db) = store(b).await;
    let nfd = "Jose\u{301}@x.org";
    let nfc = "Jos\u{E9}@x.org";
    s.insert_resource(
        &crate::store::ResourceKey::new("c1", User, "u1"),
        &doc(json!({"userName": nfd})),
        &[],
        now(),
    )
    .await
    .unwrap();
    let again = s
        .insert_resource(
            &crate::store::ResourceKey::new("c1", User, "u2"),
            &doc(json!({"userName": nfc})),
            &[],
            now(),
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let found = s.find_by_name("c1", User, nfc).await.unwrap().unwrap();
    assert_eq!(found.id, "u1");

    // Rows written before names were compared in NFC: two spellings of one name, each
    // with its lower-cased spelling as key, and a third row whose old key is now wrong.
    unfold(&s, "u1", "jose\u{301}@x.org").await;
    s.insert_resource(
        &crate::store::ResourceKey::new("c1", User, "u2"),
        &doc(json!({"userName": nfc})),
        &[],
        now(),
    )
    .await
    .unwrap();
    s.insert_resource(
        &crate::store::ResourceKey::new("c1", User, "u3"),
        &doc(json!({"userName": "\u{C5}SA"})),
        &[],
        now(),
    )
    .await
    .unwrap();
    unfold(&s, "u3", "a\u{30A}sa").await;
    s.migrate().await.unwrap();
    let key = |id: &'static str| {
        let s = s.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT name_lower FROM resources WHERE id = $1")
                .bind(id)
                .fetch_one(s.reader())
                .await
                .unwrap()
        }
    };
    assert_eq!(key("u3").await, "\u{E5}sa", "refolded to NFC");
    // u1 cannot take the key u2 holds: it keeps its old one and stays readable and
    // deletable.
    assert_eq!(key("u1").await, "jose\u{301}@x.org");
    assert!(s
        .get_resource(&crate::store::ResourceKey::new("c1", User, "u1"))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        s.delete_resource(
            &crate::store::ResourceKey::new("c1", User, "u1"),
            None,
            now()
        )
        .await
        .unwrap(),
        DeleteOutcome::Deleted
    );
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_created_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::create(Backend::Sqlite).await;
    let s = Store::connect(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    s.migrate().await.unwrap();
    s.insert_resource(
        &crate::store::ResourceKey::new("c1", User, "u1"),
        &doc(json!({"userName": "a"})),
        &[],
        now(),
    )
    .await
    .unwrap();
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}: {mode:o}");
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

contract!(
    insert_and_read_back_round_trips_the_document,
    user_names_are_unique_per_connector_ignoring_case,
    a_failed_write_leaves_neither_resource_nor_queue_row,
    failing_writes_among_concurrent_ones_fail_alone,
    mixed_writes_in_one_batch_keep_every_audit_chain_whole,
    updates_skip_unchanged_documents_and_can_be_refused,
    membership_adds_skip_unknown_ids_and_follow_deletes,
    deletes_honour_the_version_and_report_missing,
    a_claim_completes_only_its_generation,
    connectors_store_hashes_and_rotate_with_grace,
    narrowed_queries_use_the_indexed_columns,
    names_are_unique_in_nfc_and_old_rows_are_refolded_at_start,
);

mod plans;
mod profiles;
mod queue;
mod reconcile;
