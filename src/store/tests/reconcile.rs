//! Contract tests for reconcile's lease, corrections and run records.

use std::time::Duration;

use serde_json::json;

use super::{doc, now, queue_ids, store};
use crate::scim::schema::ResourceKind::User;
use crate::store::links::{Link, LinkStatus};
use crate::store::queue::Priority;
use crate::store::reconcile::{Correction, ItemRecord, LinkCorrection, RunRecord};
use crate::store::{Backend, Store, StoreOptions};

const TTL: Duration = Duration::from_secs(30);

async fn only_one_holder_has_the_lease_until_it_is_released_or_lapses(b: Backend) {
    let (s, db) = store(b).await;
    // A second handle on the same database: another instance.
    let other = Store::connect(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    let t0 = now();
    assert_eq!(
        s.acquire_reconcile_lease("c", "one", "r1", TTL, t0)
            .await
            .unwrap(),
        None
    );
    let held = other
        .acquire_reconcile_lease("c", "two", "r2", TTL, t0)
        .await
        .unwrap()
        .expect("held by the first");
    assert_eq!((held.holder.as_str(), held.run_id.as_str()), ("one", "r1"));
    // Another connector is free.
    assert_eq!(
        other
            .acquire_reconcile_lease("d", "two", "r3", TTL, t0)
            .await
            .unwrap(),
        None
    );
    assert!(s
        .renew_reconcile_lease("c", "one", "r1", TTL, t0)
        .await
        .unwrap());
    assert!(!other
        .renew_reconcile_lease("c", "two", "r2", TTL, t0)
        .await
        .unwrap());
    // A holder that died: its lease lapses and is taken over, and it cannot renew it.
    let later = t0 + time::Duration::seconds(31);
    assert_eq!(
        other
            .acquire_reconcile_lease("c", "two", "r2", TTL, later)
            .await
            .unwrap(),
        None
    );
    assert!(!s
        .renew_reconcile_lease("c", "one", "r1", TTL, later)
        .await
        .unwrap());
    // Releasing someone else's lease does nothing; releasing one's own frees it.
    s.release_reconcile_lease("c", "one", "r1").await.unwrap();
    assert!(s
        .acquire_reconcile_lease("c", "one", "r4", TTL, later)
        .await
        .unwrap()
        .is_some());
    other
        .release_reconcile_lease("c", "two", "r2")
        .await
        .unwrap();
    assert_eq!(
        s.acquire_reconcile_lease("c", "one", "r4", TTL, later)
            .await
            .unwrap(),
        None
    );
    other.close().await;
}

async fn racing_instances_never_both_take_the_lease(b: Backend) {
    let (s, db) = store(b).await;
    let mut handles = vec![s.clone()];
    for _ in 0..3 {
        handles.push(
            Store::connect(&db.url, &StoreOptions::default())
                .await
                .unwrap(),
        );
    }
    for round in 0..10 {
        let t = now();
        let tasks: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let h = h.clone();
                tokio::spawn(async move {
                    h.acquire_reconcile_lease("c", &format!("i{i}"), &format!("r{round}"), TTL, t)
                        .await
                        .unwrap()
                        .is_none()
                })
            })
            .collect();
        let mut winners = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            if t.await.unwrap() {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        s.release_reconcile_lease("c", &format!("i{}", winners[0]), &format!("r{round}"))
            .await
            .unwrap();
    }
}

async fn a_correction_applies_only_to_the_link_as_it_was_read_and_marks_the_key(b: Backend) {
    let (s, _db) = store(b).await;
    for id in ["u1", "u2"] {
        s.insert_resource(
            &crate::store::ResourceKey::new("c", User, id),
            &doc(json!({"userName": id})),
            &[],
            now(),
        )
        .await
        .unwrap();
        s.save_link(
            &Link {
                connector: "c".into(),
                kind: User,
                scim_id: id.into(),
                target_name: id.into(),
                target_key: None,
                status: LinkStatus::Active,
                applied: Some(json!({"active": true})),
                note: None,
            },
            now(),
        )
        .await
        .unwrap();
    }
    let rows = s.queue_rows(None).await.unwrap();
    let before: Vec<i64> = rows.iter().map(|r| r.generation).collect();
    let snaps = s
        .user_link_snapshots("c", &["u1".into(), "u2".into(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(snaps.len(), 2);
    let read = snaps["u1"].applied.clone();
    let fix = |id: &str, expected: Option<String>| Correction {
        connector: "c".into(),
        scim_id: id.into(),
        link: Some(LinkCorrection {
            expected_status: "active".into(),
            expected_applied: expected,
            status: "active".into(),
            applied: Some(json!({"active": false})),
        }),
        mark: Some(Priority::Deprovision),
    };
    let done = s
        .apply_corrections(
            &[fix("u1", read), fix("u2", Some("{\"stale\":true}".into()))],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(done, [true, false], "u2's link changed since it was read");
    let u1 = s
        .link(&crate::store::ResourceKey::new("c", User, "u1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u1.applied, Some(json!({"active": false})));
    let u2 = s
        .link(&crate::store::ResourceKey::new("c", User, "u2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u2.applied, Some(json!({"active": true})), "left alone");
    let rows = s.queue_rows(None).await.unwrap();
    assert_eq!(rows.len(), 2, "both keys marked");
    for (r, gen) in rows.iter().zip(before) {
        assert_eq!(r.generation, gen + 1);
        assert_eq!(r.priority, Priority::Deprovision as i64);
    }
    // A link whose resource is gone is an orphan of the connector.
    s.delete_resource(
        &crate::store::ResourceKey::new("c", User, "u2"),
        None,
        now(),
    )
    .await
    .unwrap();
    let orphans = s.orphaned_user_links("c").await.unwrap();
    assert_eq!(
        orphans
            .iter()
            .map(|o| o.scim_id.as_str())
            .collect::<Vec<_>>(),
        ["u2"]
    );
    assert_eq!(queue_ids(&s).await.len(), 2);
}

async fn runs_are_recorded_with_their_items_and_pruned_by_age(b: Backend) {
    let (s, _db) = store(b).await;
    let old = now() - time::Duration::days(100);
    let mut run = RunRecord {
        id: "r-old".into(),
        connector: "c".into(),
        started_at: old,
        ended_at: None,
        started_by: "schedule".into(),
        dry_run: false,
        forced: false,
        status: "running".into(),
        summary: None,
        error: None,
    };
    s.insert_reconcile_run(&run).await.unwrap();
    run.ended_at = Some(old);
    run.status = "completed".into();
    run.summary = Some(json!({"counts": {"active": 1}}));
    let items: Vec<ItemRecord> = (0..450)
        .map(|i| ItemRecord {
            seq: i,
            class: "active".into(),
            username: format!("user{i}"),
            scim_id: (i % 2 == 0).then(|| format!("id{i}")),
            action: "converge".into(),
            outcome: "queued".into(),
            detail: "enabled in Confluence, inactive in the IdP".into(),
        })
        .collect();
    s.finish_reconcile_run(&run, &items).await.unwrap();
    let new = RunRecord {
        id: "r-new".into(),
        started_at: now(),
        started_by: "cli".into(),
        dry_run: true,
        ..run.clone()
    };
    s.insert_reconcile_run(&new).await.unwrap();
    let runs = s.reconcile_runs(Some("c"), 10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r-new", "r-old"]
    );
    assert!(runs[0].dry_run && !runs[1].dry_run);
    assert_eq!(runs[1].summary, Some(json!({"counts": {"active": 1}})));
    let back = s.reconcile_items("r-old").await.unwrap();
    assert_eq!(back, items);
    // Dry runs do not count for the schedule.
    let (last, status) = s.last_reconcile("c").await.unwrap().unwrap();
    assert_eq!(crate::store::to_ms(last), crate::store::to_ms(old));
    assert_eq!(status, "completed");
    assert_eq!(
        s.prune_reconcile_runs(now() - time::Duration::days(90))
            .await
            .unwrap(),
        1
    );
    assert!(s.reconcile_items("r-old").await.unwrap().is_empty());
    assert_eq!(s.reconcile_runs(None, 10).await.unwrap().len(), 1);
}

contract!(
    only_one_holder_has_the_lease_until_it_is_released_or_lapses,
    racing_instances_never_both_take_the_lease,
    a_correction_applies_only_to_the_link_as_it_was_read_and_marks_the_key,
    runs_are_recorded_with_their_items_and_pruned_by_age,
);
