//! Contract tests for queue priority and keys waiting for a paused target.

use std::time::Duration;

use serde_json::json;

use super::{doc, now, store};
use crate::scim::schema::ResourceKind::User;
use crate::store::queue::ClaimFilter;
use crate::store::ResourceKey;
use crate::store::{Backend, Store};

const LEASE: Duration = Duration::from_secs(30);

async fn users(s: &Store, n: usize) {
    for i in 0..n {
        s.insert_resource(
            &crate::store::ResourceKey::new("c", User, format!("u{i}")),
            &doc(json!({"userName": format!("u{i}")})),
            &[],
            now(),
        )
        .await
        .unwrap();
    }
}

fn key(id: &str) -> ResourceKey {
    ResourceKey {
        connector: "c".into(),
        kind: User,
        id: id.into(),
    }
}

fn filter(paused: &[String]) -> ClaimFilter<'_> {
    ClaimFilter {
        first_target: "confluence",
        paused,
    }
}

async fn deprovisioning_is_claimed_first_and_keeps_its_priority(b: Backend) {
    let (s, _db) = store(b).await;
    users(&s, 4).await;
    // u2 is deactivated after the others were marked; u3 deleted.
    s.modify_resource(
        &crate::store::ResourceKey::new("c", User, "u2"),
        None,
        now(),
        |_| Ok((doc(json!({"userName": "u2", "active": false})), vec![])),
    )
    .await
    .unwrap();
    s.delete_resource(
        &crate::store::ResourceKey::new("c", User, "u3"),
        None,
        now(),
    )
    .await
    .unwrap();
    // A later ordinary mark (a reconcile) does not make the deactivation wait.
    s.mark_dirty(&key("u2"), now()).await.unwrap();
    let claims = s.claim_due(now(), LEASE, 2).await.unwrap();
    let mut ids: Vec<&str> = claims.iter().map(|c| c.key.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["u2", "u3"]);
    let rows = s.queue_rows(None).await.unwrap();
    let priority = |id: &str| rows.iter().find(|r| r.key.id == id).unwrap().priority;
    assert_eq!((priority("u0"), priority("u2"), priority("u3")), (1, 0, 0));
}

async fn a_deferred_key_spends_no_attempt_and_waits_for_its_target(b: Backend) {
    let (s, _db) = store(b).await;
    users(&s, 3).await;
    let claims = s.claim_due(now(), LEASE, 10).await.unwrap();
    assert!(claims.iter().all(|c| c.attempts == 1));
    let later = now() + time::Duration::seconds(60);
    for c in &claims[..2] {
        s.defer_claim(
            c,
            later,
            "confluence",
            "waiting for confluence: rate limited",
        )
        .await
        .unwrap();
    }
    s.retry_claim(&claims[2], now(), "HTTP 409").await.unwrap();
    let rows = s.queue_rows(None).await.unwrap();
    let waiting: Vec<_> = rows.iter().filter(|r| r.waiting_on.is_some()).collect();
    assert_eq!(waiting.len(), 2);
    assert!(waiting
        .iter()
        .all(|r| r.attempts == 0 && r.waiting_on.as_deref() == Some("confluence")));
    assert_eq!(s.queue_stats().await.unwrap().waiting, 2);
    // While Confluence is paused, nothing that needs it is claimed: neither the waiting keys
    // nor the retried one (it waits for nothing, so for the first target).
    let paused = vec!["confluence".to_owned()];
    let none = s
        .claim_for_delivery(now(), LEASE, 10, filter(&paused))
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    // A paused webhook does not hold keys that wait for nothing back.
    let webhook = vec!["webhook/c".to_owned()];
    let free = s
        .claim_for_delivery(now(), LEASE, 10, filter(&webhook))
        .await
        .unwrap();
    assert_eq!(free.len(), 1, "the retried key");
    s.retry_claim(&free[0], later, "HTTP 409").await.unwrap();
    // One waiting key can be claimed as the probe, before its due time.
    let probe = s
        .claim_waiting(now(), LEASE, "confluence", "confluence")
        .await
        .unwrap()
        .expect("a probe key");
    assert!(s
        .claim_waiting(now(), LEASE, "webhook/c", "confluence")
        .await
        .unwrap()
        .is_none());
    s.defer_claim(&probe, later, "confluence", "still down")
        .await
        .unwrap();
    // The target answers: every key waiting for it is due now, and waits no more.
    assert_eq!(s.release_waiting("confluence", now()).await.unwrap(), 2);
    let due = s
        .claim_for_delivery(now(), LEASE, 10, filter(&[]))
        .await
        .unwrap();
    assert_eq!(due.len(), 2);
    assert!(due.iter().all(|c| c.attempts == 1), "{due:?}");
    assert_eq!(s.queue_stats().await.unwrap().waiting, 0);
}

async fn a_new_change_waits_for_no_paused_target(b: Backend) {
    let (s, _db) = store(b).await;
    users(&s, 1).await;
    let c = s.claim_due(now(), LEASE, 1).await.unwrap().remove(0);
    let later = now() + time::Duration::seconds(60);
    s.defer_claim(&c, later, "webhook/c", "waiting")
        .await
        .unwrap();
    s.mark_dirty(&key("u0"), now()).await.unwrap();
    let row = s.queue_rows(None).await.unwrap().remove(0);
    assert_eq!(row.waiting_on, None);
    assert!(row.next_attempt_at <= now());
    // So a paused webhook does not hold back the Confluence part of the new change.
    let webhook = vec!["webhook/c".to_owned()];
    assert_eq!(
        s.claim_for_delivery(now(), LEASE, 10, filter(&webhook))
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Two instances: the first stalls past its lease, the second claims the key. The stale
/// holder can neither renew, finish nor release the key; the new holder can.
async fn a_stale_holder_cannot_renew_or_finish_a_key_another_holds(b: Backend) {
    let (s, _db) = store(b).await;
    users(&s, 1).await;
    let short = Duration::from_secs(1);
    let stale = s.claim_due(now(), short, 10).await.unwrap().pop().unwrap();
    let later = now() + time::Duration::seconds(2);
    assert!(
        s.claim_due(now(), short, 10).await.unwrap().is_empty(),
        "held while the lease runs"
    );
    let fresh = s.claim_due(later, LEASE, 10).await.unwrap().pop().unwrap();
    assert_eq!(
        (fresh.key.clone(), fresh.generation),
        (key("u0"), stale.generation)
    );
    assert_ne!(fresh.token, stale.token, "every claim has its own token");

    assert!(!s
        .renew_claim(&stale, later + time::Duration::minutes(1))
        .await
        .unwrap());
    assert!(!s.complete_claim(&stale).await.unwrap(), "fenced");
    assert!(
        !s.retry_claim(&stale, later, "late").await.unwrap(),
        "fenced"
    );
    assert!(!s.bury_claim(&stale, "late").await.unwrap(), "fenced");
    let rows = s.queue_rows(Some("c")).await.unwrap();
    assert_eq!(rows.len(), 1, "the stale holder removed nothing");
    assert_eq!(
        (rows[0].state.as_str(), rows[0].last_error.as_deref()),
        ("pending", None)
    );
    assert!(
        s.claim_due(later, LEASE, 10).await.unwrap().is_empty(),
        "the new holder's lease is intact"
    );

    assert!(
        s.renew_claim(&fresh, later + LEASE).await.unwrap(),
        "the holder's heartbeat"
    );
    assert!(s.complete_claim(&fresh).await.unwrap());
    assert!(s.queue_rows(Some("c")).await.unwrap().is_empty());
}

/// A renewed lease keeps the key from other claimers past its first expiry.
async fn a_renewed_lease_keeps_the_key(b: Backend) {
    let (s, _db) = store(b).await;
    users(&s, 1).await;
    let c = s
        .claim_due(now(), Duration::from_secs(1), 10)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let later = now() + time::Duration::seconds(5);
    assert!(s.renew_claim(&c, later + LEASE).await.unwrap());
    assert!(
        s.claim_due(later, LEASE, 10).await.unwrap().is_empty(),
        "still held"
    );
    // Marked again while in flight: completing releases the lease and the claim's token,
    // and the newer generation is claimed afresh.
    s.mark_dirty(&key("u0"), now()).await.unwrap();
    assert!(s.complete_claim(&c).await.unwrap());
    let again = s.claim_due(now(), LEASE, 10).await.unwrap().pop().unwrap();
    assert_eq!(again.generation, c.generation + 1);
}

/// The metrics' per-connector counts (docs/metrics.md) and what a claim says about its key.
async fn queue_counts_per_connector_and_claims_carry_when_the_key_became_dirty(b: Backend) {
    let (s, _db) = store(b).await;
    users(&s, 3).await;
    let other = crate::store::ResourceKey::new("d", User, "x");
    s.insert_resource(&other, &doc(json!({"userName": "x"})), &[], now())
        .await
        .unwrap();
    let marked = now();
    // u1 deactivated: its key is deprovisioning.
    s.modify_resource(&key("u1"), None, marked, |_| {
        Ok((doc(json!({"userName": "u1", "active": false})), vec![]))
    })
    .await
    .unwrap();
    let claims = s.claim_due(now(), LEASE, 10).await.unwrap();
    assert_eq!(claims.len(), 4);
    for c in &claims {
        assert!(c.enqueued_at <= now(), "{c:?}");
        let deprovisioning = c.key.id == "u1";
        assert_eq!(c.priority == 0, deprovisioning, "{c:?}");
    }
    let u0 = claims.iter().find(|c| c.key.id == "u0").unwrap();
    s.bury_claim(u0, "gone for good").await.unwrap();
    let u2 = claims.iter().find(|c| c.key.id == "u2").unwrap();
    s.defer_claim(u2, now(), "confluence", "paused")
        .await
        .unwrap();
    let counts = s.queue_stats_by_connector().await.unwrap();
    let names: Vec<&str> = counts.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, ["c", "d"]);
    let (c, d) = (counts[0].1, counts[1].1);
    assert_eq!((c.pending, c.dead, c.waiting), (2, 1, 1));
    assert_eq!((d.pending, d.dead, d.waiting), (1, 0, 0));
    assert!(c.oldest_pending_ms.is_some() && d.oldest_pending_ms.is_some());
    let all = s.queue_stats().await.unwrap();
    assert_eq!((all.pending, all.dead, all.waiting), (3, 1, 1));
}

contract!(
    queue_counts_per_connector_and_claims_carry_when_the_key_became_dirty,
    a_stale_holder_cannot_renew_or_finish_a_key_another_holds,
    a_renewed_lease_keeps_the_key,
    deprovisioning_is_claimed_first_and_keeps_its_priority,
    a_deferred_key_spends_no_attempt_and_waits_for_its_target,
    a_new_change_waits_for_no_paused_target,
);
