//! The webhook step against a tiny local axum receiver that verifies every signature.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::{now, FakeDir, Rig};
use crate::delivery::lookup::Fixed;
use crate::delivery::settings::{DeliverySettings, Provisioning};
use crate::delivery::{KeyOutcome, Worker};
use crate::mapping::{ConnectorMapping, MappingSettings};
use crate::profiles::ProfileTargets;
use crate::scim::schema::ResourceKind::User;
use crate::scim::schema::SchemaRegistry;
use crate::store::{Store, StoreOptions};
use crate::targets::linchpin::FeedSettings;
use crate::targets::webhook::{sign, WebhookClient, WebhookSettings};
use crate::values::Dur;

const SECRET: &str = "test-secret-0123456789-0123456789-abcdef";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// What the receiver answers next (then 200) and what it accepted.
#[derive(Default)]
struct Receiver {
    answers: VecDeque<(u16, Option<&'static str>)>,
    delay: Option<Duration>,
    accepted: Vec<Value>,
    refused_signatures: usize,
}

type Shared = Arc<Mutex<Receiver>>;

async fn receive(State(r): State<Shared>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let verified = sign::verify(
        SECRET.as_bytes(),
        header(sign::TIMESTAMP_HEADER),
        header(sign::SIGNATURE_HEADER),
        &body,
        time::OffsetDateTime::now_utc().unix_timestamp(),
        sign::DEFAULT_TOLERANCE_SECS,
    );
    let (answer, delay) = {
        let mut r = r.lock().unwrap();
        if verified.is_err() {
            r.refused_signatures += 1;
            return (StatusCode::UNAUTHORIZED, HeaderMap::new()).into_response();
        }
        (r.answers.pop_front(), r.delay)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let (status, retry_after) = answer.unwrap_or((200, None));
    if status == 200 {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        r.lock().unwrap().accepted.push(v);
    }
    let mut h = HeaderMap::new();
    if let Some(ra) = retry_after {
        h.insert("retry-after", ra.parse().unwrap());
    }
    (StatusCode::from_u16(status).unwrap(), h).into_response()
}

async fn receiver() -> (String, Shared) {
    let shared: Shared = Arc::default();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), shared)
}

async fn rig_with_hook(mapping: &str, url: &str, timeout: Duration) -> Rig {
    let store = Store::connect("sqlite::memory:", &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let dir = Arc::new(FakeDir::default());
    dir.0
        .lock()
        .unwrap()
        .groups
        .insert("confluence-users".into(), BTreeSet::new());
    let settings: MappingSettings = toml::from_str(mapping).unwrap();
    let mapping = ConnectorMapping::compile(&settings, &SchemaRegistry::builtin()).unwrap();
    let hook = WebhookSettings {
        url: url.to_owned(),
        secret_env: "UNUSED".into(),
        timeout: Dur(timeout),
    };
    let client = WebhookClient::new(&hook, SECRET.as_bytes().to_vec()).unwrap();
    let delivery = DeliverySettings {
        retry_schedule: vec![Dur(Duration::from_millis(0)); 3],
        jitter: 0.0,
        probe_interval: Dur(Duration::from_millis(20)),
        probe_interval_max: Dur(Duration::from_millis(20)),
        ..DeliverySettings::default()
    };
    let provisioning = [("c".to_owned(), Provisioning::default())]
        .into_iter()
        .collect();
    let connectors = Fixed::new(provisioning).with_targets(
        "c",
        ProfileTargets::new(mapping, FeedSettings::default(), None, Some(client)),
    );
    let worker =
        Worker::with_connectors(store.clone(), dir.clone(), delivery, Arc::new(connectors));
    Rig { store, worker, dir }
}

fn accepted(r: &Shared) -> Vec<Value> {
    r.lock().unwrap().accepted.clone()
}

#[tokio::test]
async fn a_changed_profile_is_posted_signed_and_an_unchanged_one_sends_nothing() {
    let (url, r) = receiver().await;
    let rig = rig_with_hook("", &url, Duration::from_secs(5)).await;
    rig.create(
        "u1",
        json!({"userName": "ada@x.org", "displayName": "Ada", "title": "Analyst"}),
    )
    .await;
    rig.deliver().await;
    let got = accepted(&r);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["username"], "ada@x.org");
    assert_eq!(got[0]["fields"]["title"], "Analyst");
    assert_eq!(got[0]["fields"]["department"], Value::Null);
    assert!(got[0]["fields"].get("manager").is_some());
    // Marked again without a change: nothing sent. A change of a mapped field: sent.
    rig.store
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
    rig.deliver().await;
    assert_eq!(accepted(&r).len(), 1);
    rig.set(
        "u1",
        json!({"userName": "ada@x.org", "displayName": "Ada", "title": "Lead"}),
    )
    .await;
    rig.deliver().await;
    assert_eq!(accepted(&r)[1]["fields"]["title"], "Lead");
    assert_eq!(r.lock().unwrap().refused_signatures, 0);
    // Deleted in SCIM: announced once, then forgotten.
    rig.store
        .delete_resource(
            &crate::store::ResourceKey::new("c", User, "u1"),
            None,
            now(),
        )
        .await
        .unwrap();
    rig.deliver().await;
    let last = accepted(&r).pop().unwrap();
    assert_eq!(last["deleted"], true);
    assert_eq!(last["username"], "ada@x.org");
    assert_eq!(
        rig.store.target_digest("c", "u1", "webhook").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_webhook_rate_limit_pauses_it_and_one_profiles_failures_are_retried_or_parked() {
    let (url, r) = receiver().await;
    let rig = rig_with_hook("", &url, Duration::from_millis(300)).await;
    r.lock()
        .unwrap()
        .answers
        .extend([(429, Some("0")), (503, None), (500, None)]);
    rig.create("u1", json!({"userName": "b@x.org"})).await;
    let key = crate::store::ResourceKey {
        connector: "c".into(),
        kind: User,
        id: "u1".into(),
    };
    // Claimed "a little later", whatever the key waits for.
    let claim = |rig: &Rig| {
        let store = rig.store.clone();
        async move {
            store
                .claim_due(
                    now() + time::Duration::seconds(5),
                    Duration::from_secs(30),
                    10,
                )
                .await
                .unwrap()
                .remove(0)
        }
    };
    // A 429 is the receiver's condition: the webhook pauses, the key spends no retry.
    let c = claim(&rig).await;
    assert_eq!(rig.worker.process(c).await, KeyOutcome::Waiting);
    let row = rig.store.queue_rows(None).await.unwrap().remove(0);
    assert_eq!(
        (row.attempts, row.waiting_on.as_deref()),
        (0, Some("webhook/c"))
    );
    assert!(rig.worker.health().down("webhook/c").is_some());
    // After the pause, a 503 and a 500 while the receiver answers its probe (its URL answers
    // GET with 405): failures of this profile, retried on the schedule.
    tokio::time::sleep(Duration::from_millis(30)).await;
    for _ in 0..2 {
        let c = claim(&rig).await;
        assert_eq!(rig.worker.process(c).await, KeyOutcome::Retrying);
    }
    assert!(rig.worker.health().down("webhook/c").is_none());
    let c = claim(&rig).await;
    assert_eq!(rig.worker.process(c).await, KeyOutcome::Delivered);
    let classes: Vec<Option<String>> = rig
        .store
        .attempts(&key, 20)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.target == "webhook")
        .map(|a| a.error_class)
        .collect();
    for class in ["rate_limited", "transient"] {
        assert!(
            classes.iter().any(|c| c.as_deref() == Some(class)),
            "{class}: {classes:?}"
        );
    }
    // A 4xx is permanent: parked as dead with the reason.
    r.lock().unwrap().answers.push_back((422, None));
    rig.set("u1", json!({"userName": "b@x.org", "title": "New"}))
        .await;
    rig.deliver().await;
    let rows = rig.store.queue_rows(None).await.unwrap();
    assert_eq!(rows[0].state, "dead");
    assert!(rows[0].last_error.as_deref().unwrap().contains("422"));
    // A receiver slower than the timeout, while it answers its probe at once: retried.
    r.lock().unwrap().delay = Some(Duration::from_secs(2));
    rig.store.revive_dead(Some("c"), now()).await.unwrap();
    let c = claim(&rig).await;
    assert_eq!(rig.worker.process(c).await, KeyOutcome::Retrying);
}

#[tokio::test]
async fn a_receiver_that_is_down_pauses_the_webhook_but_not_confluence() {
    // Nothing listens at this address: POSTs and the probe are refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let rig = rig_with_hook("", &url, Duration::from_secs(2)).await;
    rig.create("u1", json!({"userName": "d@x.org"})).await;
    rig.deliver().await;
    assert!(rig.dir.user("d@x.org").is_some(), "Confluence was served");
    let row = rig.store.queue_rows(None).await.unwrap().remove(0);
    assert_eq!(
        (row.state.as_str(), row.attempts, row.waiting_on.as_deref()),
        ("pending", 0, Some("webhook/c"))
    );
    // A deactivation still reaches Confluence at once; only the webhook part waits.
    rig.set("u1", json!({"userName": "d@x.org", "active": false}))
        .await;
    let calls = rig.deliver().await;
    assert!(calls.contains(&"disable d@x.org".to_owned()), "{calls:?}");
    assert!(!rig.dir.user("d@x.org").unwrap().active);
    // However long it stays down, the key is never dead and spends nothing.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        rig.deliver().await;
    }
    let row = rig.store.queue_rows(None).await.unwrap().remove(0);
    assert_eq!(
        (row.state.as_str(), row.attempts, row.waiting_on.as_deref()),
        ("pending", 0, Some("webhook/c"))
    );
}

#[tokio::test]
async fn a_manager_arriving_after_the_report_is_sent_with_the_report() {
    let (url, r) = receiver().await;
    let rig = rig_with_hook(
        "[manager]\nrefers_to = \"employeeNumber\"",
        &url,
        Duration::from_secs(5),
    )
    .await;
    rig.create(
        "emp",
        json!({"userName": "emp@x.org", ENT: {"manager": {"value": "E-1"}}}),
    )
    .await;
    rig.deliver().await;
    let first = accepted(&r);
    assert!(
        first[0]["fields"].get("manager").is_none(),
        "pending: left out, not cleared: {first:?}"
    );
    rig.create(
        "boss",
        json!({"userName": "boss@x.org", ENT: {"employeeNumber": "E-1"}}),
    )
    .await;
    rig.deliver().await;
    let emp: Vec<Value> = accepted(&r)
        .into_iter()
        .filter(|v| v["username"] == "emp@x.org")
        .collect();
    assert_eq!(emp.len(), 2, "the report was delivered again");
    assert_eq!(emp[1]["fields"]["manager"], "boss@x.org");
}

#[tokio::test]
async fn a_script_that_never_ends_does_not_block_delivery() {
    let (url, r) = receiver().await;
    let rig = rig_with_hook(
        "[script]\nmax_operations = 0\ntimeout_ms = 20\n\
         [[fields]]\nname = \"spin\"\ntransforms = [{ op = \"script\", code = \"loop {}\" }]",
        &url,
        Duration::from_secs(5),
    )
    .await;
    for i in 0..3 {
        rig.create(&format!("u{i}"), json!({"userName": format!("u{i}@x.org")}))
            .await;
    }
    let started = std::time::Instant::now();
    rig.deliver().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let got = accepted(&r);
    assert_eq!(got.len(), 3, "every user delivered");
    assert!(got.iter().all(|v| v["fields"].get("spin").is_none()));
    assert!(rig.store.queue_rows(None).await.unwrap().is_empty());
}
