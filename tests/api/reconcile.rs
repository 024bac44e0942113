//! Reconcile end to end: users delivered to the emulator, drift made behind usersync's back
//! through the emulator's control API, then a run, then delivery; what Confluence and the
//! store hold afterwards is checked, and the emulator's call log shows what was sent.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use usersync::config::{Dur, Settings};
use usersync::delivery::settings::{OnDelete, Orphans};
use usersync::emulator::{CallRecord, ConfluenceVersion, Fault, SeedUser};
use usersync::reconcile::progress::Silent;
use usersync::reconcile::report::{Action, DriftClass, Outcome, RunReport, RunStatus};
use usersync::reconcile::{ReconcileError, Reconciler, RunRequest, StartedBy};
use usersync::scim::schema::ResourceKind;
use usersync::store::queue::Priority;
use usersync::store::ResourceKey;
use usersync::store::{Store, StoreOptions};
use usersync::targets::confluence::{ConfluenceAuth, ConfluenceClient, ConfluenceConfig, Secret};

use crate::helpers::{TestApp, CONFLUENCE_TOKEN, CONNECTOR, OTHER};
use crate::process::{cli as usersync, outcome, ConfigDir};

/// A server delivering to an emulator, with quick read retries.
async fn app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, |s| {
        s.reconcile.read_retry_delay = Dur(Duration::from_millis(10));
        configure(s);
    })
    .await
}

/// Both connectors of the test app (`idp`, `other`) with `orphans = "disable"`.
fn disable_orphans(s: &mut Settings) {
    for c in [CONNECTOR, OTHER] {
        s.connectors
            .entry(c.to_owned())
            .or_default()
            .provisioning
            .orphans = Orphans::Disable;
    }
}

fn client(app: &TestApp) -> ConfluenceClient {
    ConfluenceClient::new(ConfluenceConfig::new(
        app.confluence_url.clone().expect("an emulator"),
        ConfluenceAuth::Pat(Secret::new(CONFLUENCE_TOKEN)),
    ))
    .expect("client")
}

fn reconciler(app: &TestApp) -> Reconciler {
    reconciler_on(app, app.store.clone())
}

fn reconciler_on(app: &TestApp, store: Store) -> Reconciler {
    usersync::app::reconciler(store, client(app), &app.state.runtime)
}

fn request(dry_run: bool, force: bool) -> RunRequest {
    RunRequest {
        connector: CONNECTOR.to_owned(),
        dry_run,
        force,
        started_by: StartedBy::Cli,
    }
}

async fn run(app: &TestApp, dry_run: bool, force: bool) -> RunReport {
    reconciler(app)
        .run(&request(dry_run, force), &Silent)
        .await
        .expect("the run")
}

fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("{name}@example.com"),
        "displayName": name,
        "emails": [{"value": format!("{name}@example.com"), "primary": true}],
        "active": true
    })
}

fn username(name: &str) -> String {
    format!("{name}@example.com")
}

/// Drift behind usersync's back, through the emulator's control API.
async fn control(app: &TestApp, method: Method, path: &str, body: Option<Value>) {
    let url = format!(
        "{}/__emulator{path}",
        app.confluence_url.as_deref().expect("an emulator")
    );
    let mut req = app.client.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("control API");
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

async fn set_active(app: &TestApp, name: &str, active: bool) {
    control(
        app,
        Method::PATCH,
        &format!("/users/{}", username(name)),
        Some(json!({"active": active})),
    )
    .await;
}

/// Adds an account usersync never heard of.
async fn stray(app: &TestApp, name: &str) {
    control(
        app,
        Method::POST,
        "/users",
        Some(json!({"username": name, "groups": ["confluence-users"]})),
    )
    .await;
}

fn items(r: &RunReport) -> Vec<(DriftClass, &str, Action, Outcome)> {
    r.items
        .iter()
        .map(|i| (i.class, i.username.as_str(), i.action, i.outcome))
        .collect()
}

/// Calls that change something in Confluence.
fn writes(calls: &[CallRecord]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.method != "GET")
        .map(|c| format!("{} {}", c.method, c.path))
        .collect()
}

fn key(id: &str) -> ResourceKey {
    ResourceKey {
        connector: CONNECTOR.to_owned(),
        kind: ResourceKind::User,
        id: id.to_owned(),
    }
}

/// Every row usersync keeps about users, groups, links, the queue and delivery, as text: two
/// dumps are equal only when nothing in them changed (versions, timestamps, generations,
/// applied states included). Reconcile's own tables are left out: a dry run records itself.
async fn dump(app: &TestApp) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.db_url).await.expect("connect");
    let queries = [
        "SELECT 'r|'||connector||'|'||kind||'|'||id||'|'||CAST(version AS TEXT)||'|'||doc||'|'||CAST(updated_at AS TEXT) FROM resources",
        "SELECT 'l|'||connector||'|'||kind||'|'||scim_id||'|'||target_name||'|'||COALESCE(target_key, '')||'|'||status||'|'||COALESCE(applied, '')||'|'||COALESCE(note, '')||'|'||CAST(updated_at AS TEXT) FROM identity_links",
        "SELECT 'q|'||connector||'|'||kind||'|'||resource_id||'|'||CAST(generation AS TEXT)||'|'||state||'|'||CAST(attempts AS TEXT)||'|'||CAST(next_attempt_at AS TEXT)||'|'||COALESCE(CAST(lease_until AS TEXT), '')||'|'||COALESCE(last_error, '')||'|'||CAST(priority AS TEXT)||'|'||COALESCE(waiting_on, '') FROM sync_queue",
        "SELECT 'a|'||CAST(id AS TEXT)||'|'||resource_id||'|'||call FROM delivery_attempts",
        "SELECT 'm|'||connector||'|'||group_id||'|'||member_id FROM group_members",
        "SELECT 't|'||connector||'|'||scim_id||'|'||target||'|'||digest FROM target_state",
        "SELECT 'c|'||name FROM connectors",
        "SELECT 'k|'||connector||'|'||holder FROM reconcile_leases",
    ];
    let mut rows = Vec::new();
    for q in queries {
        let got: Vec<String> = sqlx::query_scalar(q)
            .fetch_all(&pool)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        rows.extend(got);
    }
    pool.close().await;
    rows.sort();
    rows
}

#[tokio::test]
async fn a_user_disabled_by_hand_is_enabled_again_through_delivery() {
    let app = app_with(|_| {}).await;
    let id = app.create_user(user("ada")).await;
    app.user("bob@example.com").await;
    app.deliver_all().await;
    set_active(&app, "ada", false).await;

    let r = run(&app, false, false).await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(
        items(&r),
        [(
            DriftClass::Active,
            "ada@example.com",
            Action::Converge,
            Outcome::Queued
        )]
    );
    assert_eq!(r.users, 2);
    assert_eq!(r.accounts, 3, "admin, ada, bob");
    assert_eq!(
        app.queued().await,
        std::slice::from_ref(&id),
        "only ada's key is marked"
    );
    app.confluence().clear_calls();
    app.deliver_all().await;
    assert!(app.confluence().user("ada@example.com").unwrap().active);
    assert_eq!(
        writes(&app.confluence().calls()),
        ["PUT /rest/api/admin/user/ada%40example.com/enable"],
        "one call, and nothing else"
    );
    // Through the normal path: the call is an attempt record of ada's key.
    let attempts = app.store.attempts(&key(&id), 10).await.unwrap();
    assert!(attempts
        .iter()
        .any(|a| a.call == "PUT /rest/api/admin/user/{username}/enable"));
    // Converged: the next run finds nothing.
    assert!(run(&app, false, false).await.items.is_empty());
}

#[tokio::test]
async fn a_leaver_enabled_by_hand_is_disabled_again_ahead_of_other_work() {
    let app = app_with(|_| {}).await;
    let id = app.create_user(user("bob")).await;
    app.deliver_all().await;
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .assert_status(200);
    app.deliver_all().await;
    assert!(!app.confluence().user("bob@example.com").unwrap().active);
    set_active(&app, "bob", true).await;

    let r = run(&app, false, false).await;
    assert_eq!(
        items(&r),
        [(
            DriftClass::Active,
            "bob@example.com",
            Action::Converge,
            Outcome::Queued
        )]
    );
    assert!(r.items[0].disables);
    assert_eq!(r.guard.disables, 1);
    let q = app.queue().await;
    assert_eq!(q[0].priority, Priority::Deprovision as i64, "claimed first");
    app.deliver_all().await;
    assert!(!app.confluence().user("bob@example.com").unwrap().active);
}

#[tokio::test]
async fn a_member_added_by_hand_to_a_managed_group_is_removed_and_one_in_an_unmanaged_group_is_left_alone(
) {
    let app = app_with(|_| {}).await;
    let ada = app.create_user(user("ada")).await;
    let grace = app.create_user(user("grace")).await;
    app.group("Editors", &[&ada]).await;
    app.deliver_all().await;
    assert_eq!(
        app.confluence().group_members("editors").unwrap(),
        ["ada@example.com"]
    );
    // grace (managed by usersync) and a local account added to the group usersync owns;
    // ada added to a group usersync knows nothing about.
    stray(&app, "local").await;
    for (group, member) in [
        ("editors", "grace@example.com"),
        ("editors", "local"),
        ("hand-made", "ada@example.com"),
    ] {
        control(
            &app,
            Method::PUT,
            &format!("/groups/{group}/members/{member}"),
            None,
        )
        .await;
    }

    let r = run(&app, false, false).await;
    let found = items(&r);
    assert!(found.contains(&(
        DriftClass::Membership,
        "grace@example.com",
        Action::Converge,
        Outcome::Queued
    )));
    assert!(found.contains(&(
        DriftClass::Membership,
        "local",
        Action::RemoveMember,
        Outcome::Done
    )));
    assert!(
        found.iter().all(|i| i.1 != "ada@example.com"),
        "ada is where she should be in every managed group: {found:?}"
    );
    assert_eq!(app.queued().await, [grace]);
    app.deliver_all().await;
    assert_eq!(
        app.confluence().group_members("editors").unwrap(),
        ["ada@example.com"]
    );
    assert_eq!(
        app.confluence().group_members("hand-made").unwrap(),
        ["ada@example.com"],
        "a group usersync does not manage is left alone"
    );
    assert!(run(&app, false, false)
        .await
        .items
        .iter()
        .all(|i| i.class != DriftClass::Membership));
}

#[tokio::test]
async fn an_orphan_is_reported_under_report_and_disabled_under_disable() {
    for policy in [Orphans::Report, Orphans::Disable] {
        let app = app_with(|s| {
            if policy == Orphans::Disable {
                disable_orphans(s);
            }
        })
        .await;
        let gone = app.create_user(user("gone")).await;
        app.create_user(user("ada")).await;
        app.deliver_all().await;
        // The IdP deletes "gone"; delivery disables the account; an admin enables it again.
        app.delete(&format!("/Users/{gone}"))
            .await
            .assert_status(204);
        app.deliver_all().await;
        set_active(&app, "gone", true).await;
        stray(&app, "stray").await;
        app.confluence().clear_calls();

        let r = run(&app, false, false).await;
        let (deleted_outcome, stray_outcome) = match policy {
            Orphans::Report => (Outcome::Reported, Outcome::Reported),
            Orphans::Disable => (Outcome::Queued, Outcome::Done),
        };
        assert_eq!(
            items(&r)
                .into_iter()
                .map(|(c, u, _, o)| (c, u, o))
                .collect::<Vec<_>>(),
            [
                (
                    DriftClass::OrphanDeleted,
                    "gone@example.com",
                    deleted_outcome
                ),
                (DriftClass::OrphanUnmanaged, "stray", stray_outcome),
            ],
            "{policy:?}"
        );
        assert_eq!(r.protected, 1, "the service account is never an orphan");
        app.deliver_all().await;
        let active = |u: &str| app.confluence().user(u).expect("still there").active;
        match policy {
            Orphans::Report => {
                assert!(active("gone@example.com") && active("stray"));
                assert!(writes(&app.confluence().calls()).is_empty());
            }
            Orphans::Disable => {
                assert!(!active("gone@example.com") && !active("stray"));
                assert!(active("admin") && active("ada@example.com"));
            }
        }
    }
}

#[tokio::test]
async fn an_account_usersync_never_managed_is_never_deleted() {
    // Even where every deletion policy says delete.
    let app = app_with(|s| {
        disable_orphans(s);
        for c in [CONNECTOR, OTHER] {
            s.connectors.get_mut(c).unwrap().provisioning.on_delete = OnDelete::Delete;
        }
        s.reconcile.protect = vec!["keep-*".to_owned()];
    })
    .await;
    app.create_user(user("ada")).await;
    app.deliver_all().await;
    for name in ["stray", "keep-me"] {
        stray(&app, name).await;
    }
    app.confluence().clear_calls();
    let r = run(&app, false, false).await;
    app.deliver_all().await;
    assert_eq!(
        items(&r),
        [(
            DriftClass::OrphanUnmanaged,
            "stray",
            Action::Disable,
            Outcome::Done
        )]
    );
    assert_eq!(
        writes(&app.confluence().calls()),
        ["PUT /rest/api/admin/user/stray/disable"],
        "disabled, never deleted; the protected account untouched"
    );
    assert!(app.confluence().user("stray").is_some_and(|u| !u.active));
    assert!(app.confluence().user("keep-me").is_some_and(|u| u.active));
}

#[tokio::test]
async fn the_guard_stops_a_run_that_would_disable_60_percent_of_accounts_and_force_passes_it() {
    let app = app_with(disable_orphans).await;
    for i in 0..39 {
        app.create_user(user(&format!("u{i:02}"))).await;
    }
    app.deliver_all().await;
    for i in 0..60 {
        app.confluence()
            .add_user(&SeedUser {
                username: format!("stray{i:02}"),
                ..serde_json::from_value(json!({"username": "x"})).unwrap()
            })
            .unwrap();
    }
    app.confluence().clear_calls();
    let before = dump(&app).await;

    let stopped = run(&app, false, false).await;
    assert_eq!(stopped.status, RunStatus::StoppedByGuard);
    assert_eq!(stopped.accounts, 100, "admin, 39 users, 60 strays");
    assert_eq!(
        (stopped.guard.disables, stopped.guard.limit),
        (60, 50),
        "60 % of the accounts, over the default (the larger of 50 and 5 %)"
    );
    assert!(stopped.guard.tripped && !stopped.guard.forced);
    assert!(stopped
        .items
        .iter()
        .all(|i| i.outcome == Outcome::NotApplied));
    assert!(stopped.error.as_deref().unwrap().contains("--force"));
    assert!(
        writes(&app.confluence().calls()).is_empty(),
        "stopped before any write"
    );
    assert_eq!(dump(&app).await, before);
    let recorded = app.store.reconcile_runs(Some(CONNECTOR), 1).await.unwrap();
    assert_eq!(recorded[0].status, "stopped_by_guard");

    let forced = run(&app, false, true).await;
    assert_eq!(forced.status, RunStatus::Completed);
    assert!(forced.guard.forced);
    let disabled = (0..60)
        .filter(|i| {
            app.confluence()
                .user(&format!("stray{i:02}"))
                .is_some_and(|u| !u.active)
        })
        .count();
    assert_eq!(disabled, 60);
    assert!(app.confluence().user("u00@example.com").unwrap().active);
}

#[tokio::test]
async fn a_dry_run_makes_no_write_call_and_changes_nothing_in_the_store() {
    let app = app_with(disable_orphans).await;
    let ada = app.create_user(user("ada")).await;
    let bob = app.create_user(user("bob")).await;
    app.create_user(user("cy")).await;
    app.create_user(user("dee")).await;
    app.group("Editors", &[&ada]).await;
    app.deliver_all().await;
    app.patch_ops(
        &format!("/Users/{bob}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    app.deliver_all().await;
    // Every kind of drift at once.
    set_active(&app, "ada", false).await;
    set_active(&app, "bob", true).await;
    control(
        &app,
        Method::PATCH,
        "/users/cy@example.com",
        Some(json!({"fullName": "Cy by hand"})),
    )
    .await;
    control(&app, Method::DELETE, "/users/dee@example.com", None).await;
    control(
        &app,
        Method::PUT,
        "/groups/editors/members/cy@example.com",
        None,
    )
    .await;
    stray(&app, "stray").await;
    app.confluence().clear_calls();
    let before = dump(&app).await;
    let runs_before = app.store.reconcile_runs(None, 100).await.unwrap().len();

    let r = run(&app, true, false).await;
    assert_eq!(r.status, RunStatus::DryRun);
    let classes: Vec<DriftClass> = r.items.iter().map(|i| i.class).collect();
    for c in [
        DriftClass::Active,
        DriftClass::Profile,
        DriftClass::Membership,
        DriftClass::Missing,
        DriftClass::OrphanUnmanaged,
    ] {
        assert!(classes.contains(&c), "{c:?} in {:?}", r.items);
    }
    assert!(r
        .items
        .iter()
        .all(|i| i.outcome == Outcome::Planned || i.outcome == Outcome::Reported));
    let calls = app.confluence().calls();
    assert!(!calls.is_empty());
    assert_eq!(writes(&calls), Vec::<String>::new(), "zero write calls");
    assert_eq!(dump(&app).await, before, "nothing changed in the store");
    // Only the run's own record was added.
    let runs = app.store.reconcile_runs(None, 100).await.unwrap();
    assert_eq!(runs.len(), runs_before + 1);
    assert!(runs[0].dry_run && runs[0].status == "dry_run");
    let recorded = app.store.reconcile_items(&runs[0].id).await.unwrap();
    assert_eq!(recorded.len(), r.items.len());
    assert!(recorded
        .iter()
        .all(|i| i.outcome == "planned" || i.outcome == "reported"));
    // The dry run's verdict matches the real run's.
    let real = run(&app, false, false).await;
    assert_eq!(
        real.items
            .iter()
            .map(|i| (i.class, &i.username))
            .collect::<Vec<_>>(),
        r.items
            .iter()
            .map(|i| (i.class, &i.username))
            .collect::<Vec<_>>()
    );
    app.deliver_all().await;
    let emu = app.confluence();
    assert!(emu.user("ada@example.com").unwrap().active);
    assert!(!emu.user("bob@example.com").unwrap().active);
    assert_eq!(emu.user("cy@example.com").unwrap().full_name, "cy");
    assert!(emu.user("dee@example.com").is_some(), "created again");
    assert_eq!(emu.group_members("editors").unwrap(), ["ada@example.com"]);
    assert!(run(&app, true, false).await.items.is_empty(), "converged");
}

#[tokio::test]
async fn a_read_error_on_page_3_aborts_the_run_with_no_write() {
    let app = app_with(|s| {
        s.reconcile.read_attempts = 3;
    })
    .await;
    for name in ["ada", "bob", "cy", "dee"] {
        app.create_user(user(name)).await;
    }
    app.deliver_all().await;
    set_active(&app, "ada", false).await;
    stray(&app, "stray").await;
    let mut knobs = app.confluence().knobs();
    knobs.max_page_limit = 2; // 6 accounts: 3 pages
    app.confluence().set_knobs(knobs);
    // A blip on page 3 is retried and the run goes on.
    app.confluence().arm_fault(
        Fault::status(503)
            .on("GET", "/rest/api/user/list")
            .on_page(3),
    );
    let ok = run(&app, true, false).await;
    assert_eq!(ok.accounts, 6);
    assert_eq!(
        ok.pages,
        3 + 3 + 1,
        "3 pages of accounts, 3 of confluence-users' 5 members, 1 of the administrators"
    );

    // A page that keeps failing ends the run before any write.
    app.confluence().arm_fault(
        Fault::status(500)
            .times(100)
            .on("GET", "/rest/api/user/list")
            .on_page(3),
    );
    app.confluence().clear_calls();
    let before = dump(&app).await;
    let err = reconciler(&app)
        .run(&request(false, false), &Silent)
        .await
        .expect_err("the run fails");
    assert!(matches!(err, ReconcileError::Read(_)), "{err}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    let calls = app.confluence().calls();
    assert!(writes(&calls).is_empty(), "no write: {:?}", writes(&calls));
    let page3 = calls
        .iter()
        .filter(|c| {
            c.path == "/rest/api/user/list" && c.query.as_deref().unwrap_or("").contains("start=4")
        })
        .count();
    assert_eq!(page3, 3, "page 3 tried reconcile.read_attempts times");
    assert_eq!(dump(&app).await, before);
    let runs = app.store.reconcile_runs(Some(CONNECTOR), 1).await.unwrap();
    assert_eq!(runs[0].status, "failed");
    assert!(runs[0]
        .error
        .as_deref()
        .unwrap()
        .contains("reading Confluence failed"));
    assert!(app
        .confluence()
        .user("ada@example.com")
        .is_some_and(|u| !u.active));
}

#[tokio::test]
async fn two_instances_never_run_the_same_connectors_reconcile_at_once() {
    let app = app_with(|_| {}).await;
    for name in ["ada", "bob", "cy"] {
        app.create_user(user(name)).await;
    }
    app.deliver_all().await;
    // Slow reads, so runs overlap in time: 4 accounts, one per page, 150 ms a call.
    let mut knobs = app.confluence().knobs();
    knobs.max_page_limit = 1;
    knobs.latency.global_ms = 150;
    app.confluence().set_knobs(knobs);
    // A second instance: its own store handle (its own pool) on the same database.
    let second = Store::connect(&app.db_url, &StoreOptions::default())
        .await
        .expect("second handle");
    let instances = [reconciler(&app), reconciler_on(&app, second.clone())];
    let mut tasks = Vec::new();
    for r in instances.iter().chain(instances.iter()) {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            r.run(&request(true, false), &Silent).await
        }));
    }
    let mut done = Vec::new();
    let mut busy = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => done.push(r),
            Err(ReconcileError::Busy { .. }) => busy += 1,
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(
        done.len(),
        1,
        "exactly one of four concurrent runs went ahead"
    );
    assert_eq!(busy, 3);
    // And the recorded runs never overlap.
    let runs = app
        .store
        .reconcile_runs(Some(CONNECTOR), 100)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "a refused run starts nothing");
    // Once it is over, the other instance may run.
    let next = instances[1]
        .run(&request(true, false), &Silent)
        .await
        .expect("the lease is free again");
    assert_eq!(next.accounts, 4);
    let runs = app
        .store
        .reconcile_runs(Some(CONNECTOR), 100)
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    let (a, b) = (&runs[1], &runs[0]);
    assert!(a.ended_at.unwrap() <= b.started_at, "one after the other");
    second.close().await;
}

#[tokio::test]
async fn serve_reconciles_every_connector_on_its_schedule() {
    let app = app_with(|s| {
        s.reconcile.every = Some(Dur(Duration::from_secs(1)));
    })
    .await;
    let id = app.create_user(user("ada")).await;
    app.deliver_all().await;
    set_active(&app, "ada", false).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let run = loop {
        let runs = app.store.reconcile_runs(Some(CONNECTOR), 10).await.unwrap();
        if let Some(r) = runs.into_iter().find(|r| r.status == "completed") {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled run within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run.started_by, "schedule");
    assert!(!run.dry_run);
    let items = app.store.reconcile_items(&run.id).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0].class.as_str(), items[0].outcome.as_str()),
        ("active", "queued")
    );
    assert!(app.queued().await.contains(&id));
    app.deliver_all().await;
    assert!(app.confluence().user("ada@example.com").unwrap().active);
}

/// Runs the `usersync` binary with a configuration file pointing at the test's database and
/// emulator; returns the exit code, stdout and stderr.
async fn cli(app: &TestApp, extra_toml: &str, args: &[&str]) -> (i32, String, String) {
    let (db, confluence) = (app.db_url.clone(), app.confluence_url.clone().unwrap());
    let (extra_toml, args): (String, Vec<String>) = (
        extra_toml.to_owned(),
        args.iter().map(|a| (*a).to_owned()).collect(),
    );
    // A separate process: the blocking wait runs off the runtime, which goes on serving the
    // emulator and the server.
    tokio::task::spawn_blocking(move || run_cli(&db, &confluence, &extra_toml, &args))
        .await
        .unwrap()
}

fn run_cli(db: &str, confluence: &str, extra_toml: &str, args: &[String]) -> (i32, String, String) {
    let config = ConfigDir::new(&format!(
        "database = \"{db}\"\n{extra_toml}\n[confluence]\nbase_url = \"{confluence}\"\ntoken_env = \"USERSYNC_TEST_CONFLUENCE_TOKEN\"\n"
    ));
    outcome(
        usersync(db)
            .arg("--config")
            .arg(config.file())
            .args(args)
            .env("USERSYNC_TEST_CONFLUENCE_TOKEN", CONFLUENCE_TOKEN)
            .env("RUST_LOG", "warn"),
    )
}

#[tokio::test]
async fn the_command_says_what_it_found_in_a_table_or_json_and_exits_0_1_or_2() {
    let app = app_with(|_| {}).await;
    let id = app.create_user(user("ada")).await;
    app.deliver_all().await;
    let reconcile = |extra: &'static str, args: &'static [&'static str]| cli(&app, extra, args);

    let (code, out, err) = reconcile("", &["reconcile", "--connector", "idp", "--dry-run"]).await;
    assert_eq!(code, 0, "nothing to report: {out}{err}");
    assert!(
        out.contains("reconcile dry run") && out.contains("missing account"),
        "{out}"
    );
    assert!(
        err.contains("reading Confluence accounts"),
        "plain progress lines: {err}"
    );

    set_active(&app, "ada", false).await;
    let (code, out, _) = reconcile(
        "",
        &["reconcile", "--connector", "idp", "--dry-run", "--json"],
    )
    .await;
    assert_eq!(code, 1, "a dry run found drift");
    let doc: Value = serde_json::from_str(&out).expect("JSON on stdout");
    let item = &doc["runs"][0]["items"][0];
    assert_eq!(item["class"], "active");
    assert_eq!(item["username"], "ada@example.com");
    assert_eq!(item["outcome"], "planned");
    assert_eq!(doc["runs"][0]["counts"]["active"], 1);

    // The guard: no account may be disabled without --force. ada leaves (not delivered
    // yet) while an admin enables her account again.
    app.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    set_active(&app, "ada", true).await;
    let (code, out, _) = reconcile(
        "[reconcile]\nmax_changes = 0",
        &["reconcile", "--connector", "idp"],
    )
    .await;
    assert_eq!(code, 2, "stopped by the guard: {out}");
    assert!(out.contains("STOPPED before any write"), "{out}");
    assert!(
        app.queued().await.contains(&id),
        "the SCIM change is still queued"
    );
    app.deliver_all().await;
    assert!(!app.confluence().user("ada@example.com").unwrap().active);

    let (code, out, _) = reconcile("", &["reconcile", "--connector", "nope"]).await;
    assert_eq!(code, 2, "{out}");

    // What was recorded, scheduled runs included, can be read back.
    let (code, out, _) = reconcile("", &["reconcile", "--history"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().count(),
        1 + 3,
        "a header and the three runs: {out}"
    );
    assert!(
        out.contains("stopped_by_guard") && out.contains("dry_run"),
        "{out}"
    );
    let stopped = app.store.reconcile_runs(Some(CONNECTOR), 1).await.unwrap();
    let (code, out, _) = cli(&app, "", &["reconcile", "--show", &stopped[0].id]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("not_applied") && out.contains("ada@example.com"),
        "{out}"
    );
    let (code, out, _) = reconcile("", &["reconcile", "--mark-only"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("marked 1 resources for delivery"), "{out}");
}

#[tokio::test]
async fn a_run_under_confluences_rate_limit_is_paced_and_completes() {
    let app = app_with(|_| {}).await;
    for name in ["ada", "bob", "cy"] {
        app.create_user(user(name)).await;
    }
    app.deliver_all().await;
    set_active(&app, "ada", false).await;
    let mut knobs = app.confluence().knobs();
    knobs.max_page_limit = 1;
    knobs.rate_limit = usersync::emulator::RateLimitKnobs {
        mode: usersync::emulator::RateLimitMode::Limit,
        capacity: 2,
        fill_rate: 20,
        interval_s: 1,
        exempt: vec![],
    };
    app.confluence().set_knobs(knobs);
    app.confluence().clear_calls();
    let r = run(&app, false, false).await;
    assert_eq!(r.accounts, 4);
    assert_eq!(
        items(&r),
        [(
            DriftClass::Active,
            "ada@example.com",
            Action::Converge,
            Outcome::Queued
        )]
    );
    let calls = app.confluence().calls();
    assert!(calls.len() >= 10, "one call per page: {}", calls.len());
    let limited = calls.iter().filter(|c| c.status == Some(429)).count();
    assert!(
        limited <= 1,
        "paced by the X-RateLimit headers, not by 429s: {limited} of {}",
        calls.len()
    );
}
