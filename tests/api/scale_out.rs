//! Several real `usersync serve` processes on one PostgreSQL database and one Confluence
//! (the emulator): every change is delivered exactly once although instances claim from the
//! same queue, one is killed with SIGKILL and comes back, and a killed instance's claimed keys
//! are taken over when their lease lapses (docs/delivery.md, "Several instances").
//!
//! PostgreSQL only: SQLite is one process's database. Run with
//! `USERSYNC_TEST_BACKEND=postgres cargo nextest run --test api scale_out`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use usersync::emulator::{CallRecord, Emulator, EmulatorConfig, RouteLatency, RouteScope, Seed};
use usersync::store::testdb::TestDb;
use usersync::store::{Backend, Store, StoreOptions};

use crate::helpers::backend;
use crate::process::Serve;

const SCIM_TOKEN: &str = "scale-test-scim-token";
const ADMIN_PAT: &str = "scale-test-admin-pat";

fn skipped() -> bool {
    if backend() == Backend::Postgres {
        return false;
    }
    eprintln!(
        "skipped: several instances share a PostgreSQL database only; run with \
         USERSYNC_TEST_BACKEND=postgres"
    );
    true
}

/// How an instance is started.
struct Launch<'a> {
    database: &'a str,
    confluence: &'a str,
    /// The Confluence PAT of this instance's service account, so the emulator's call log
    /// says which instance made each call.
    pat: String,
    /// `delivery.lease`, when not the default.
    lease: Option<&'a str>,
    /// `delivery.enabled`.
    deliver: bool,
}

/// One `usersync serve` (SIGKILLed when dropped), not started yet.
fn instance(l: &Launch<'_>) -> Serve {
    let serve = Serve::new(l.database)
        .connector("scale", "SCALE_SCIM_TOKEN", SCIM_TOKEN)
        .confluence(l.confluence, "SCALE_CONFLUENCE_TOKEN", &l.pat)
        .set("delivery.enabled", l.deliver)
        .set("delivery.concurrency", 8)
        .set("store.max_connections", 12);
    match l.lease {
        Some(lease) => serve.set("delivery.lease", lease),
        None => serve,
    }
}

/// An emulator with one service account per instance (`svc-0`, `svc-1`…, PAT `pat-N`).
async fn emulator(instances: usize) -> (Emulator, String) {
    let users: Vec<serde_json::Value> = (0..instances)
        .map(|i| {
            json!({"username": format!("svc-{i}"), "pat": format!("pat-{i}"), "admin": true,
                   "sysadmin": true, "groups": ["confluence-administrators"]})
        })
        .collect();
    let seed: Seed = serde_json::from_value(json!({ "users": users })).unwrap();
    let mut config = EmulatorConfig::new(ADMIN_PAT);
    config.seed = Some(seed);
    let emulator = Emulator::try_new(config).expect("seed applies");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(emulator.clone().serve(listener, std::future::pending()));
    (emulator, url)
}

/// Keeps every call of the emulator's bounded log, by sequence number, read every 100 ms.
fn record_calls(emulator: &Emulator) -> Arc<Mutex<BTreeMap<u64, CallRecord>>> {
    let all = Arc::new(Mutex::new(BTreeMap::new()));
    let (e, into) = (emulator.clone(), all.clone());
    tokio::spawn(async move {
        loop {
            let calls = e.calls();
            into.lock()
                .unwrap()
                .extend(calls.into_iter().map(|c| (c.seq, c)));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    all
}

fn user_body(n: usize, version: usize, active: bool) -> serde_json::Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("scale{n}@example.com"),
        "displayName": format!("Scale {n} v{version}"),
        "active": active,
        "emails": [{"value": format!("scale{n}@example.com"), "type": "work", "primary": true}],
    })
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or_default()
}

const USERS: usize = 1250;
const UPDATES_PER_USER: usize = 3;

/// 5,000 SCIM writes (1,250 creates, then 3 updates per user, the last of which deactivates
/// every fifth user) spread over three instances (two delivering, one API only); one
/// delivering instance is killed with SIGKILL halfway and started again after the writes.
/// Every change reaches Confluence, every account is created exactly once, no key is left
/// claimed or dead. Then the deprovisioning latency across instances: a deactivation written
/// to the API-only instance is delivered by another (printed, not asserted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_deliver_every_change_once_through_a_kill() {
    if skipped() {
        return;
    }
    let db = TestDb::create(backend()).await;
    let (emulator, confluence) = emulator(3).await;
    // Every update takes a little while in Confluence, so claims are in flight at the kill.
    let mut knobs = emulator.knobs();
    knobs.latency.routes = vec![RouteLatency {
        scope: RouteScope {
            method: Some("PUT".into()),
            path: Some("/rest/api/admin/user/*".into()),
        },
        ms: 20,
    }];
    emulator.set_knobs(knobs);
    let calls = record_calls(&emulator);

    let launch = |i: usize| Launch {
        database: &db.url,
        confluence: &confluence,
        pat: format!("pat-{i}"),
        lease: Some("3s"),
        // Instance 2 only takes SCIM requests (an API tier): what it accepts is always
        // delivered by another instance.
        deliver: i != 2,
    };
    // Started together: the migrations run once, under the lock.
    let mut instances: Vec<Serve> = (0..3).map(|i| instance(&launch(i)).spawn()).collect();
    let ports: [u16; 3] = std::array::from_fn(|i| instances[i].port());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(32)
        .build()
        .unwrap();
    for i in &instances {
        i.ready().await;
    }

    // The writes, in two waves (a user is created before it is updated).
    let alive = Arc::new(Mutex::new([true, true, true]));
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ids: Arc<Mutex<HashMap<usize, String>>> = Arc::default();
    let total = USERS * (1 + UPDATES_PER_USER);
    let resent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let write = |k: usize| {
        let (client, alive, sent, ids) = (client.clone(), alive.clone(), sent.clone(), ids.clone());
        let resent = resent.clone();
        async move {
            let (n, version) = (k % USERS, k / USERS);
            let last = version == UPDATES_PER_USER;
            let body = user_body(n, version, !(last && n % 5 == 0)).to_string();
            // Round robin over the live instances, as a load balancer does; a request cut off
            // by the kill is sent again to another (as the IdP retries; a PUT is idempotent).
            let mut attempt = 0;
            let r = loop {
                let port = {
                    let alive = alive.lock().unwrap();
                    let live: Vec<usize> = (0..3).filter(|i| alive[*i]).collect();
                    ports[live[(k + attempt) % live.len()]]
                };
                let base = format!("http://127.0.0.1:{port}/scim/v2/scale/Users");
                let request = if version == 0 {
                    client.post(&base)
                } else {
                    let id = ids.lock().unwrap()[&n].clone();
                    client.put(format!("{base}/{id}"))
                };
                match request
                    .bearer_auth(SCIM_TOKEN)
                    .header("Content-Type", "application/scim+json")
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(r) => break r,
                    Err(_) if attempt < 3 && version > 0 => {
                        attempt += 1;
                        resent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => panic!("write {k} failed: {e}"),
                }
            };
            let status = r.status().as_u16();
            let doc: serde_json::Value = r.json().await.unwrap_or_default();
            assert!(status < 300, "write {k} answered {status}: {doc}");
            if version == 0 {
                let id = doc["id"].as_str().expect("an id").to_owned();
                ids.lock().unwrap().insert(n, id);
            }
            sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let started = Instant::now();
    futures::stream::iter(0..USERS)
        .map(write)
        .buffer_unordered(24)
        .collect::<Vec<()>>()
        .await;
    let killer = {
        let sent = sent.clone();
        let alive = alive.clone();
        let victim = instances.remove(1);
        tokio::spawn(async move {
            let mut victim = victim;
            while sent.load(std::sync::atomic::Ordering::Relaxed) < total / 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // The load balancer stops sending to it, then it dies mid-work.
            alive.lock().unwrap()[1] = false;
            victim.kill();
            victim
        })
    };
    futures::stream::iter(USERS..total)
        .map(write)
        .buffer_unordered(24)
        .collect::<Vec<()>>()
        .await;
    let writes_took = started.elapsed();
    let mut victim = killer.await.unwrap();
    // Started again later, on the same port.
    victim.restart().await;
    instances.insert(1, victim);
    alive.lock().unwrap()[1] = true;

    // Everything arrives: each user's last version, active as the IdP says, the queue empty.
    let store = Store::connect(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    let wanted = |n: usize| (format!("Scale {n} v{UPDATES_PER_USER}"), n % 5 != 0);
    let mut converged = false;
    for _ in 0..400 {
        let all_there = (0..USERS).all(|n| {
            emulator
                .user(&format!("scale{n}@example.com"))
                .is_some_and(|u| (u.full_name, u.active) == wanted(n))
        });
        if all_there && store.queue_rows(None).await.unwrap().is_empty() {
            converged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converge_took = started.elapsed();
    let rows = store.queue_rows(None).await.unwrap();
    let missing: Vec<usize> = (0..USERS)
        .filter(|n| {
            emulator
                .user(&format!("scale{n}@example.com"))
                .is_none_or(|u| (u.full_name, u.active) != wanted(*n))
        })
        .collect();
    assert!(
        converged,
        "not converged: {} users differ (first {:?}); {} queue rows left (first {:?})",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        rows.len(),
        rows.first()
    );
    tokio::time::sleep(Duration::from_millis(200)).await; // the last calls into the record
    let log: Vec<CallRecord> = calls.lock().unwrap().values().cloned().collect();
    let first_seq = log.first().map_or(0, |c| c.seq);
    assert_eq!(first_seq, 1, "no call was dropped from the record");
    let creates: Vec<&CallRecord> = log
        .iter()
        .filter(|c| c.method == "POST" && c.path == "/rest/api/admin/user")
        .collect();
    let created = creates
        .iter()
        .filter(|c| c.status.is_some_and(|s| (200..300).contains(&s)))
        .count();
    assert_eq!(
        created, USERS,
        "each Confluence account created exactly once"
    );
    assert_eq!(
        creates.len(),
        USERS,
        "no create was sent twice (a refused second create would show here)"
    );
    let by_instance = |svc: &str| {
        log.iter()
            .filter(|c| c.user.as_deref() == Some(svc))
            .count()
    };
    println!(
        "scale-out: {total} writes over 3 instances in {:.1}s ({} cut off by the kill and sent \
         again), converged after {:.1}s; Confluence calls by instance 0: {}, 1: {} (killed at \
         {} writes, restarted), 2: {} (API only)",
        writes_took.as_secs_f64(),
        resent.load(std::sync::atomic::Ordering::Relaxed),
        converge_took.as_secs_f64(),
        by_instance("svc-0"),
        by_instance("svc-1"),
        total / 2,
        by_instance("svc-2"),
    );
    assert_eq!(
        by_instance("svc-2"),
        0,
        "the API-only instance delivers nothing"
    );

    // Deprovisioning latency across instances: deactivations written to the API-only
    // instance, delivered by instance 0 or 1, woken by the NOTIFY of instance 2's commit.
    let mut knobs = emulator.knobs();
    knobs.latency.routes.clear();
    emulator.set_knobs(knobs);
    let mut latencies = Vec::new();
    let ids = ids.lock().unwrap().clone();
    for n in (0..USERS).filter(|n| n % 5 != 0).take(100) {
        let name = format!("scale{n}@example.com");
        let t = Instant::now();
        let r = client
            .patch(format!(
                "http://127.0.0.1:{}/scim/v2/scale/Users/{}",
                ports[2], ids[&n]
            ))
            .bearer_auth(SCIM_TOKEN)
            .header("Content-Type", "application/scim+json")
            .body(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": "active", "value": false}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        loop {
            if emulator.user(&name).is_some_and(|u| !u.active) {
                latencies.push(t.elapsed());
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "a deactivation written to the API-only instance was not delivered"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    latencies.sort();
    println!(
        "deprovisioning latency, written to instance 2, delivered by another \
         ({} samples): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 < 1000 ms)",
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0,
    );
    store.close().await;
}

/// A killed instance's claimed keys: another instance delivers them once their lease lapses,
/// with the default lease (10 s) well within 15 s of the kill.
#[tokio::test]
async fn a_killed_instances_claimed_keys_are_taken_over_within_the_lease() {
    if skipped() {
        return;
    }
    let db = TestDb::create(backend()).await;
    let (emulator, confluence) = emulator(2).await;
    // Creates hang in Confluence: the first instance claims the keys and is stuck in them.
    let mut knobs = emulator.knobs();
    knobs.latency.routes = vec![RouteLatency {
        scope: RouteScope {
            method: Some("POST".into()),
            path: Some("/rest/api/admin/user".into()),
        },
        ms: 60_000,
    }];
    emulator.set_knobs(knobs);
    let launch = |i: usize| Launch {
        database: &db.url,
        confluence: &confluence,
        pat: format!("pat-{i}"),
        lease: None,
        deliver: true,
    };
    let client = reqwest::Client::new();
    let mut first = instance(&launch(0)).start().await;
    for n in 0..3 {
        let r = client
            .post(format!("{}/Users", first.scim("scale")))
            .bearer_auth(SCIM_TOKEN)
            .header("Content-Type", "application/scim+json")
            .body(user_body(n, 0, true).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let store = Store::connect(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    // Wait until the first instance holds all three (claimed, its lookups answered).
    let mut held = false;
    for _ in 0..200 {
        let looked_up = emulator
            .calls()
            .iter()
            .filter(|c| c.method == "GET")
            .count();
        let claimed: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sync_queue WHERE claim_token IS NOT NULL")
                .fetch_one(&pool)
                .await
                .unwrap();
        if claimed == 3 && looked_up >= 3 {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        held,
        "the first instance claimed the keys and is creating the accounts"
    );
    first.kill();
    let killed = Instant::now();
    let mut knobs = emulator.knobs();
    knobs.latency.routes.clear();
    emulator.set_knobs(knobs);
    let _second = instance(&launch(1)).start().await;

    let mut took = None;
    for _ in 0..400 {
        let all = (0..3).all(|n| emulator.user(&format!("scale{n}@example.com")).is_some());
        if all && store.queue_rows(None).await.unwrap().is_empty() {
            took = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = took.expect("the second instance delivered the killed instance's keys");
    println!(
        "takeover: the killed instance's keys were delivered by another {:.1} s after the kill \
         (lease 10 s, renewed every 3.3 s)",
        took.as_secs_f64()
    );
    // The lapsed lease, not a restart, freed the keys; and the lease was short.
    assert!(
        took < Duration::from_secs(15),
        "took {took:?}: more than the lease plus margin"
    );
    let creators: Vec<Option<String>> = emulator
        .calls()
        .iter()
        .filter(|c| c.method == "POST" && c.path == "/rest/api/admin/user" && c.status.is_some())
        .map(|c| c.user.clone())
        .collect();
    assert!(
        creators.iter().all(|u| u.as_deref() == Some("svc-1")),
        "the second instance created the accounts: {creators:?}"
    );
    pool.close().await;
    store.close().await;
}
