//! Worker and convergence tests against an in-memory directory that follows the Confluence
//! rules delivery relies on (idempotent disable/enable and membership, 409 on an existing
//! user or group, 404 on a missing group). End-to-end tests against the emulator are in the
//! integration suite.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::directory::{DirResult, Directory, RemoteUser};
use super::settings::{DeliverySettings, OnConflict, OnDelete, Provisioning};
use super::{KeyOutcome, Worker};
use crate::scim::members::MemberRef;
use crate::scim::resource::Document;
use crate::scim::schema::ResourceKind::{Group, User};
use crate::store::{Store, StoreOptions};
use crate::targets::{Call, ErrorClass, Failure, TargetError};
use crate::values::Dur;

#[derive(Debug, Clone, PartialEq, Eq)]
struct FakeUser {
    key: String,
    full_name: String,
    email: String,
    active: bool,
}

#[derive(Default)]
struct Fake {
    users: BTreeMap<String, FakeUser>,
    groups: BTreeMap<String, BTreeSet<String>>,
    calls: Vec<String>,
    fail_next: Vec<TargetError>,
    /// While set, every call (and the probe) fails with it: Confluence is down.
    down: Option<TargetError>,
    /// Calls about this user fail with this error, whatever else happens.
    fail_user: Option<(String, TargetError)>,
}

#[derive(Default)]
struct FakeDir(Mutex<Fake>);

impl FakeDir {
    fn with<T>(&self, call: String, f: impl FnOnce(&mut Fake) -> DirResult<T>) -> DirResult<T> {
        let mut s = self.0.lock().unwrap();
        s.calls.push(call);
        if let Some(e) = &s.down {
            return Err(e.clone());
        }
        if let Some((user, e)) = &s.fail_user {
            if s.calls
                .last()
                .is_some_and(|c| c.ends_with(&format!(" {user}")))
            {
                return Err(e.clone());
            }
        }
        if !s.fail_next.is_empty() {
            return Err(s.fail_next.remove(0));
        }
        f(&mut s)
    }
    fn calls(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap().calls)
    }
    fn user(&self, u: &str) -> Option<FakeUser> {
        self.0.lock().unwrap().users.get(u).cloned()
    }
    fn members(&self, g: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .groups
            .get(g)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }
    fn fail(&self, e: TargetError) {
        self.0.lock().unwrap().fail_next.push(e);
    }
    fn set_down(&self, e: Option<TargetError>) {
        self.0.lock().unwrap().down = e;
    }
}

/// A failure of `class`, as the Confluence client would classify it.
fn err(class: ErrorClass, status: Option<u16>, message: &str) -> TargetError {
    TargetError::new(
        class,
        Failure {
            call: Call::new("PUT", "/fake"),
            status,
            message: message.to_owned(),
            body: None,
        },
    )
}

fn not_found() -> TargetError {
    err(ErrorClass::NotFound, Some(404), "not found")
}

impl Directory for FakeDir {
    async fn probe(&self) -> DirResult<()> {
        match &self.0.lock().unwrap().down {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
    async fn get_user(&self, u: &str) -> DirResult<Option<RemoteUser>> {
        self.with(format!("get {u}"), |s| {
            Ok(s.users.get(u).map(|x| RemoteUser {
                username: u.to_owned(),
                user_key: x.key.clone(),
                display_name: x.full_name.clone(),
                active: x.active,
            }))
        })
    }
    async fn create_user(&self, u: &str, full_name: &str, email: &str) -> DirResult<String> {
        self.with(format!("create {u}"), |s| {
            if s.users.contains_key(u) {
                return Err(err(ErrorClass::Conflict, Some(409), "exists"));
            }
            let key = format!("key-{u}");
            let user = FakeUser {
                key: key.clone(),
                full_name: full_name.into(),
                email: email.into(),
                active: true,
            };
            s.users.insert(u.to_owned(), user);
            Ok(key)
        })
    }
    async fn update_user(&self, u: &str, full_name: &str, email: &str) -> DirResult<()> {
        self.with(format!("update {u}"), |s| {
            let x = s.users.get_mut(u).ok_or_else(not_found)?;
            x.full_name = full_name.into();
            x.email = email.into();
            Ok(())
        })
    }
    async fn set_active(&self, u: &str, active: bool) -> DirResult<()> {
        self.with(
            format!("{} {u}", if active { "enable" } else { "disable" }),
            |s| {
                s.users.get_mut(u).ok_or_else(not_found)?.active = active;
                Ok(())
            },
        )
    }
    async fn delete_user(&self, u: &str) -> DirResult<()> {
        self.with(format!("delete {u}"), |s| {
            s.users.remove(u).ok_or_else(not_found)?;
            for m in s.groups.values_mut() {
                m.remove(u);
            }
            Ok(())
        })
    }
    async fn user_groups(&self, u: &str) -> DirResult<Vec<String>> {
        self.with(format!("memberof {u}"), |s| {
            Ok(s.groups
                .iter()
                .filter(|(_, m)| m.contains(u))
                .map(|(g, _)| g.clone())
                .collect())
        })
    }
    async fn create_group(&self, g: &str) -> DirResult<()> {
        self.with(format!("create-group {g}"), |s| {
            if s.groups.contains_key(g) {
                return Err(err(ErrorClass::Conflict, Some(409), "exists"));
            }
            s.groups.insert(g.to_owned(), BTreeSet::new());
            Ok(())
        })
    }
    async fn delete_group(&self, g: &str) -> DirResult<()> {
        self.with(format!("delete-group {g}"), |s| {
            s.groups.remove(g).map(|_| ()).ok_or_else(not_found)
        })
    }
    async fn add_member(&self, u: &str, g: &str) -> DirResult<()> {
        self.with(format!("add {u} {g}"), |s| {
            if !s.users.contains_key(u) {
                return Err(not_found());
            }
            s.groups
                .get_mut(g)
                .ok_or_else(not_found)?
                .insert(u.to_owned());
            Ok(())
        })
    }
    async fn remove_member(&self, u: &str, g: &str) -> DirResult<()> {
        self.with(format!("remove {u} {g}"), |s| {
            s.groups.get_mut(g).ok_or_else(not_found)?.remove(u);
            Ok(())
        })
    }
}

/// How long the rig leaves a paused target alone.
const PROBE: Duration = Duration::from_millis(50);

struct Rig {
    store: Store,
    worker: Worker<std::sync::Arc<FakeDir>>,
    dir: std::sync::Arc<FakeDir>,
}

async fn rig(prov: Provisioning) -> Rig {
    let store = Store::connect("sqlite::memory:", &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let dir = std::sync::Arc::new(FakeDir::default());
    dir.0
        .lock()
        .unwrap()
        .groups
        .insert("confluence-users".into(), BTreeSet::new());
    let settings = DeliverySettings {
        retry_schedule: vec![Dur(Duration::from_millis(0)), Dur(Duration::from_millis(0))],
        jitter: 0.0,
        probe_interval: Dur(PROBE),
        probe_interval_max: Dur(PROBE),
        credentials_probe_interval: Dur(PROBE),
        ..DeliverySettings::default()
    };
    let provisioning = [("c".to_owned(), prov)].into_iter().collect();
    let worker = Worker::new(store.clone(), dir.clone(), settings, provisioning);
    Rig { store, worker, dir }
}

fn doc(v: serde_json::Value) -> Document {
    v.as_object().cloned().unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl Rig {
    async fn create(&self, id: &str, v: serde_json::Value) {
        self.store
            .insert_resource(
                &crate::store::ResourceKey::new("c", User, id),
                &doc(v),
                &[],
                now(),
            )
            .await
            .unwrap();
    }
    async fn set(&self, id: &str, v: serde_json::Value) {
        let d = doc(v);
        self.store
            .modify_resource(
                &crate::store::ResourceKey::new("c", User, id),
                None,
                now(),
                move |_| Ok((d.clone(), vec![])),
            )
            .await
            .unwrap();
    }
    async fn deliver(&self) -> Vec<String> {
        self.worker.drain().await.unwrap();
        self.dir.calls()
    }
}

#[tokio::test]
async fn a_new_user_is_created_with_default_groups_and_a_resend_makes_no_call() {
    let r = rig(Provisioning::default()).await;
    let body = json!({"userName": "Ada.Lovelace@Example.com", "displayName": "Ada Lovelace",
        "emails": [{"value": "ada@example.com", "primary": true}], "active": true});
    r.create("u1", body.clone()).await;
    let calls = r.deliver().await;
    assert_eq!(
        calls,
        [
            "get ada.lovelace@example.com",
            "create ada.lovelace@example.com",
            "add ada.lovelace@example.com confluence-users"
        ]
    );
    let u = r.dir.user("ada.lovelace@example.com").unwrap();
    assert_eq!(
        (u.full_name.as_str(), u.email.as_str(), u.active),
        ("Ada Lovelace", "ada@example.com", true)
    );
    // The same state marked again converges with zero calls.
    r.store
        .mark_dirty(
            &crate::store::ResourceKey {
                connector: "c".into(),
                kind: User,
                id: "u1".into(),
            },
            now(),
        )
        .await
        .unwrap();
    assert!(r.deliver().await.is_empty());
    assert!(r.store.queue_rows(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn updates_deactivation_and_reactivation_make_only_the_needed_calls() {
    let r = rig(Provisioning::default()).await;
    r.create("u1", json!({"userName": "bob@x.org", "displayName": "Bob"}))
        .await;
    r.deliver().await;
    r.set(
        "u1",
        json!({"userName": "bob@x.org", "displayName": "Robert"}),
    )
    .await;
    assert_eq!(r.deliver().await, ["update bob@x.org"]);
    r.set(
        "u1",
        json!({"userName": "bob@x.org", "displayName": "Robert", "active": false}),
    )
    .await;
    assert_eq!(r.deliver().await, ["disable bob@x.org"]);
    assert!(!r.dir.user("bob@x.org").unwrap().active);
    r.set(
        "u1",
        json!({"userName": "bob@x.org", "displayName": "Robert", "active": true}),
    )
    .await;
    assert_eq!(r.deliver().await, ["enable bob@x.org"]);
    // A userName change does not rename the account: the link keeps the derived username.
    r.set(
        "u1",
        json!({"userName": "robert@x.org", "displayName": "Robert", "active": true}),
    )
    .await;
    assert_eq!(r.deliver().await, ["update bob@x.org"]);
}

#[tokio::test]
async fn delete_disables_by_default_and_deletes_when_configured() {
    let r = rig(Provisioning::default()).await;
    r.create("u1", json!({"userName": "d@x.org"})).await;
    r.deliver().await;
    r.store
        .delete_resource(
            &crate::store::ResourceKey::new("c", User, "u1"),
            None,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(r.deliver().await, ["disable d@x.org"]);
    assert!(r.dir.user("d@x.org").is_some());

    let r = rig(Provisioning {
        on_delete: OnDelete::Delete,
        ..Provisioning::default()
    })
    .await;
    r.create("u1", json!({"userName": "d@x.org"})).await;
    r.deliver().await;
    r.store
        .delete_resource(
            &crate::store::ResourceKey::new("c", User, "u1"),
            None,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(r.deliver().await, ["delete d@x.org"]);
    assert!(r.dir.user("d@x.org").is_none());
}

#[tokio::test]
async fn deprovisioning_can_remove_group_memberships_and_reactivation_restores_them() {
    let r = rig(Provisioning {
        remove_groups_on_deprovision: true,
        ..Provisioning::default()
    })
    .await;
    r.create("u1", json!({"userName": "g@x.org"})).await;
    r.store
        .insert_resource(
            &crate::store::ResourceKey::new("c", Group, "g1"),
            &doc(json!({"displayName": "Editors"})),
            &[MemberRef {
                value: "u1".into(),
                kind: None,
                display: None,
            }],
            now(),
        )
        .await
        .unwrap();
    r.deliver().await;
    assert_eq!(r.dir.members("editors"), ["g@x.org"]);
    r.set("u1", json!({"userName": "g@x.org", "active": false}))
        .await;
    let calls = r.deliver().await;
    assert!(
        calls.contains(&"disable g@x.org".to_owned())
            && calls.contains(&"remove g@x.org editors".to_owned()),
        "{calls:?}"
    );
    assert!(r.dir.members("editors").is_empty() && r.dir.members("confluence-users").is_empty());
    r.set("u1", json!({"userName": "g@x.org", "active": true}))
        .await;
    r.deliver().await;
    assert_eq!(r.dir.members("editors"), ["g@x.org"]);
}

#[tokio::test]
async fn an_existing_account_is_refused_or_adopted_per_policy() {
    let r = rig(Provisioning::default()).await;
    r.dir.0.lock().unwrap().users.insert(
        "taken@x.org".into(),
        FakeUser {
            key: "k0".into(),
            full_name: "Old".into(),
            email: "old@x.org".into(),
            active: false,
        },
    );
    r.create(
        "u1",
        json!({"userName": "taken@x.org", "displayName": "New"}),
    )
    .await;
    assert_eq!(r.deliver().await, ["get taken@x.org"]);
    let rows = r.store.queue_rows(None).await.unwrap();
    assert_eq!(rows[0].state, "dead");
    assert!(rows[0].last_error.as_deref().unwrap().contains("refuse"));
    assert_eq!(
        r.dir.user("taken@x.org").unwrap().full_name,
        "Old",
        "left alone"
    );

    let r2 = rig(Provisioning {
        on_conflict: OnConflict::Adopt,
        ..Provisioning::default()
    })
    .await;
    r2.dir.0.lock().unwrap().users.insert(
        "taken@x.org".into(),
        FakeUser {
            key: "k0".into(),
            full_name: "Old".into(),
            email: "old@x.org".into(),
            active: false,
        },
    );
    r2.create(
        "u1",
        json!({"userName": "taken@x.org", "displayName": "New"}),
    )
    .await;
    r2.deliver().await;
    let u = r2.dir.user("taken@x.org").unwrap();
    assert_eq!(
        (u.key.as_str(), u.full_name.as_str(), u.active),
        ("k0", "New", true)
    );
}

#[tokio::test]
async fn transient_failures_retry_and_permanent_ones_park_the_key_as_dead() {
    let r = rig(Provisioning::default()).await;
    // A 503 on one call while the probe finds Confluence answering: this key's failure.
    r.dir.fail(err(ErrorClass::Transient, Some(503), "down"));
    r.create("u1", json!({"userName": "t@x.org"})).await;
    let claim = r
        .store
        .claim_due(now(), Duration::from_secs(30), 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(r.worker.process(claim).await, KeyOutcome::Retrying);
    r.deliver().await;
    assert!(r.dir.user("t@x.org").is_some(), "converged on retry");

    r.dir
        .fail(err(ErrorClass::Permanent, Some(400), "bad e-mail"));
    r.set("u1", json!({"userName": "t@x.org", "displayName": "T"}))
        .await;
    r.deliver().await;
    let rows = r.store.queue_rows(None).await.unwrap();
    assert_eq!(
        (rows[0].state.as_str(), rows[0].last_error.as_deref()),
        (
            "dead",
            Some("permanent failure: bad e-mail [PUT /fake, HTTP 400]")
        )
    );
    // Retryable after a fix: revive and deliver.
    r.store.revive_dead(Some("c"), now()).await.unwrap();
    assert_eq!(r.deliver().await, ["update t@x.org"]);
    let key = crate::store::ResourceKey {
        connector: "c".into(),
        kind: User,
        id: "u1".into(),
    };
    let attempts = r.store.attempts(&key, 10).await.unwrap();
    assert!(attempts
        .iter()
        .any(|a| a.error_class.as_deref() == Some("permanent") && a.status == Some(400)));
}

#[tokio::test]
async fn a_user_without_email_is_dead_with_the_reason_not_retried() {
    let r = rig(Provisioning::default()).await;
    r.create("u1", json!({"userName": "no-mail"})).await;
    assert!(r.deliver().await.is_empty());
    let rows = r.store.queue_rows(None).await.unwrap();
    assert_eq!(rows[0].state, "dead");
    assert!(rows[0].last_error.as_deref().unwrap().contains("e-mail"));
}

#[tokio::test]
async fn group_rename_moves_members_to_the_new_group() {
    let r = rig(Provisioning::default()).await;
    r.create("u1", json!({"userName": "m@x.org"})).await;
    let member = [MemberRef {
        value: "u1".into(),
        kind: None,
        display: None,
    }];
    r.store
        .insert_resource(
            &crate::store::ResourceKey::new("c", Group, "g1"),
            &doc(json!({"displayName": "Old Name"})),
            &member,
            now(),
        )
        .await
        .unwrap();
    r.deliver().await;
    assert_eq!(r.dir.members("old name"), ["m@x.org"]);
    let renamed = doc(json!({"displayName": "New Name"}));
    r.store
        .modify_resource(
            &crate::store::ResourceKey::new("c", Group, "g1"),
            None,
            now(),
            move |_| Ok((renamed.clone(), vec![])),
        )
        .await
        .unwrap();
    r.deliver().await;
    assert_eq!(r.dir.members("new name"), ["m@x.org"]);
    assert!(r.dir.members("old name").is_empty());
}

#[tokio::test]
async fn a_create_cut_short_by_a_crash_is_adopted_not_reported_as_a_conflict() {
    let r = rig(Provisioning::default()).await;
    r.create("u1", json!({"userName": "crash@x.org"})).await;
    // What a crash between Confluence's create and usersync's link save leaves behind: the
    // intent link (no applied state) and an account in Confluence.
    let intent = crate::store::links::Link {
        connector: "c".into(),
        kind: User,
        scim_id: "u1".into(),
        target_name: "crash@x.org".into(),
        target_key: None,
        status: crate::store::links::LinkStatus::Active,
        applied: None,
        note: None,
    };
    r.store.save_link(&intent, now()).await.unwrap();
    r.dir.0.lock().unwrap().users.insert(
        "crash@x.org".into(),
        FakeUser {
            key: "k9".into(),
            full_name: "crash@x.org".into(),
            email: "crash@x.org".into(),
            active: true,
        },
    );
    r.deliver().await;
    assert!(
        r.store.queue_rows(None).await.unwrap().is_empty(),
        "delivered, not dead"
    );
    let link = r
        .store
        .link(&crate::store::ResourceKey::new("c", User, "u1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.target_key.as_deref(), Some("k9"));
    assert_eq!(r.dir.members("confluence-users"), ["crash@x.org"]);
}

fn key(id: &str) -> crate::store::ResourceKey {
    crate::store::ResourceKey {
        connector: "c".into(),
        kind: User,
        id: id.into(),
    }
}

#[tokio::test]
async fn an_outage_spends_no_retry_and_its_end_releases_every_waiting_key_at_once() {
    let r = rig(Provisioning::default()).await;
    let refused = err(ErrorClass::Transient, None, "could not connect: refused");
    r.dir.set_down(Some(refused));
    for i in 0..6 {
        r.create(&format!("u{i}"), json!({"userName": format!("u{i}@x.org")}))
            .await;
    }
    // Far longer than the retry schedule (two immediate retries) allows.
    for _ in 0..8 {
        r.deliver().await;
        tokio::time::sleep(PROBE + Duration::from_millis(10)).await;
    }
    let down = r.worker.health().down("confluence").expect("paused");
    assert_eq!(down.class, ErrorClass::Transient);
    let rows = r.store.queue_rows(None).await.unwrap();
    assert_eq!(rows.len(), 6);
    for row in &rows {
        assert_eq!(row.state, "pending", "{row:?}");
        assert_eq!(row.attempts, 0, "no retry spent: {row:?}");
        assert!(row.waiting_on.is_none() || row.waiting_on.as_deref() == Some("confluence"));
    }
    // While paused, keys are not hammered: one probe key per pause (a slow machine may fit a
    // second into a drain), not six keys per round.
    let calls = r.dir.calls();
    assert!(calls.len() <= 2 * 8 + 4, "{} calls: {calls:?}", calls.len());
    // Confluence answers again: the next probe finds it, and every key goes at once.
    r.dir.set_down(None);
    r.deliver().await;
    assert!(r.worker.health().down("confluence").is_none());
    for i in 0..6 {
        assert!(r.dir.user(&format!("u{i}@x.org")).is_some(), "u{i}");
    }
    assert!(r.store.queue_rows(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn refused_credentials_pause_confluence_instead_of_burying_keys() {
    let r = rig(Provisioning::default()).await;
    let revoked = err(ErrorClass::Unauthorized, Some(401), "the token was refused");
    r.dir.set_down(Some(revoked));
    r.create("u1", json!({"userName": "a@x.org"})).await;
    for _ in 0..5 {
        r.deliver().await;
        tokio::time::sleep(PROBE + Duration::from_millis(10)).await;
    }
    let down = r.worker.health().down("confluence").expect("paused");
    assert_eq!(down.class, ErrorClass::Unauthorized);
    let row = r.store.queue_rows(None).await.unwrap().remove(0);
    assert_eq!((row.state.as_str(), row.attempts), ("pending", 0));
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("waiting for confluence"),
        "{:?}",
        row.last_error
    );
    // The administrator fixes the token: delivered at the next probe.
    r.dir.set_down(None);
    r.deliver().await;
    assert!(r.dir.user("a@x.org").is_some());
}

#[tokio::test]
async fn a_failure_only_one_key_meets_is_that_keys_and_confluence_stays_up() {
    let r = rig(Provisioning::default()).await;
    // Confluence answers 500 to everything about this one user, and works for the rest.
    r.dir.0.lock().unwrap().fail_user = Some((
        "bad@x.org".into(),
        err(ErrorClass::Transient, Some(500), "internal error"),
    ));
    r.create("bad", json!({"userName": "bad@x.org"})).await;
    r.create("good", json!({"userName": "good@x.org"})).await;
    r.deliver().await;
    assert!(r.dir.user("good@x.org").is_some());
    assert!(r.worker.health().down("confluence").is_none(), "not paused");
    // The bad key walked the schedule (two retries) to the dead state.
    let rows = r.store.queue_rows(None).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].key.id.as_str(), rows[0].state.as_str()),
        ("bad", "dead")
    );
    let attempts = r.store.attempts(&key("bad"), 20).await.unwrap();
    assert!(
        attempts
            .iter()
            .any(|a| a.call == "GET /rest/api/user/current" && a.error_class.is_none()),
        "the probe that cleared Confluence is recorded: {attempts:?}"
    );
}

#[tokio::test]
async fn a_rate_limit_pauses_confluence_for_its_retry_after_and_spends_nothing() {
    let r = rig(Provisioning::default()).await;
    r.create("u1", json!({"userName": "a@x.org"})).await;
    r.dir.fail(TargetError::RateLimited {
        retry_after: Some(Duration::from_secs(30)),
        failure: Failure {
            call: Call::new("GET", "/rest/api/user"),
            status: Some(429),
            message: "slow down".into(),
            body: None,
        },
    });
    let claim = r
        .store
        .claim_due(now(), Duration::from_secs(30), 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(r.worker.process(claim).await, KeyOutcome::Waiting);
    let row = r.store.queue_rows(None).await.unwrap().remove(0);
    assert_eq!(row.attempts, 0);
    assert_eq!(row.waiting_on.as_deref(), Some("confluence"));
    let wait = row.next_attempt_at - now();
    assert!(
        wait > time::Duration::seconds(25) && wait <= time::Duration::seconds(30),
        "due when Confluence said: {wait}"
    );
    // Nothing goes to Confluence meanwhile, not even new work.
    r.create("u2", json!({"userName": "b@x.org"})).await;
    r.deliver().await;
    assert!(r.dir.calls().iter().all(|c| !c.contains("b@x.org")));
}

#[tokio::test]
async fn deprovisioning_is_claimed_ahead_of_other_work() {
    let r = rig(Provisioning::default()).await;
    for i in 0..5 {
        r.create(&format!("u{i}"), json!({"userName": format!("u{i}@x.org")}))
            .await;
    }
    r.deliver().await;
    // Four ordinary changes, then a deactivation and a deletion.
    for i in 0..4 {
        r.set(
            &format!("u{i}"),
            json!({"userName": format!("u{i}@x.org"), "displayName": "New"}),
        )
        .await;
    }
    r.set("u3", json!({"userName": "u3@x.org", "active": false}))
        .await;
    r.store
        .delete_resource(
            &crate::store::ResourceKey::new("c", User, "u4"),
            None,
            now(),
        )
        .await
        .unwrap();
    let claims = r
        .store
        .claim_due(now(), Duration::from_secs(30), 2)
        .await
        .unwrap();
    let mut ids: Vec<&str> = claims.iter().map(|c| c.key.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["u3", "u4"]);
}

mod webhook;
