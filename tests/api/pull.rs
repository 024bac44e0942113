//! Pull connectors against the Graph emulator and the Confluence emulator (docs/pull.md):
//! import, increments, suspension, deletion, the manager in the Linchpin feed, token
//! renewal, throttling, a failing page, the deletion guard, dry runs, the read-only SCIM
//! endpoint and one run at a time.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use usersync::config::pull::{ConnectorKind, GraphSettings, MaxDeletes, PullSettings};
use usersync::config::ConnectorSettings;
use usersync::emulator::graph::GraphEmulator;
use usersync::emulator::ConfluenceVersion;
use usersync::pull::{Mode, PullError, RunReport, RunRequest, RunStatus};
use usersync::scim::schema::ResourceKind;
use usersync::store::ResourceKey;

use crate::helpers::{TestApp, CONNECTOR, FEED_KEY, FEED_KEY_ENV};

const SECRET_ENV: &str = "USERSYNC_TEST_GRAPH_SECRET";
const SECRET: &str = "graph-client-secret";
const CLIENT: &str = "00000000-0000-0000-0000-0000000000c1";
const TENANT: &str = "11111111-2222-3333-4444-555555555555";

mod google;
mod okta;
mod onelogin;
mod runs;

/// A server whose connector pulls from an IdP emulator, and the emulator.
pub struct Pulled<E> {
    pub app: TestApp,
    pub idp: E,
    _stop: oneshot::Sender<()>,
}

async fn spawn(pull: PullSettings) -> Pulled<GraphEmulator> {
    spawn_configured(pull, |_| {}).await
}

pub async fn spawn_configured(
    pull: PullSettings,
    configure: impl FnOnce(&mut ConnectorSettings),
) -> Pulled<GraphEmulator> {
    let graph = GraphEmulator::new(CLIENT, SECRET);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(graph.clone().serve(listener, async move {
        let _ = rx.await;
    }));
    let c = ConnectorSettings {
        kind: ConnectorKind::Graph,
        pull: Some(pull),
        graph: Some(GraphSettings {
            tenant_id: TENANT.to_owned(),
            client_id: CLIENT.to_owned(),
            client_secret_env: SECRET_ENV.to_owned(),
            base_url: format!("http://{addr}/v1.0"),
            token_url: Some(format!("http://{addr}/{TENANT}/oauth2/v2.0/token")),
        }),
        ..ConnectorSettings::default()
    };
    let mut c = c;
    configure(&mut c);
    let app = spawn_app(vec![(SECRET_ENV, SECRET.to_owned())], c).await;
    Pulled {
        app,
        idp: graph,
        _stop: tx,
    }
}

/// A server with [`CONNECTOR`] declared by `connector`, with a feed key.
pub async fn spawn_app(
    secrets: Vec<(&'static str, String)>,
    connector: ConnectorSettings,
) -> TestApp {
    TestApp::spawn_with_confluence(ConfluenceVersion::V10_2, move |s| {
        for (k, v) in secrets {
            s.secrets.set(k, v);
        }
        s.secrets.set(FEED_KEY_ENV, FEED_KEY);
        let mut c = connector;
        c.linchpin.feed_key_env = Some(FEED_KEY_ENV.to_owned());
        s.connectors.insert(CONNECTOR.to_owned(), c);
    })
    .await
}

pub fn settings(max_deletes: MaxDeletes, page_size: u32) -> PullSettings {
    PullSettings {
        max_deletes,
        page_size,
        ..PullSettings::default()
    }
}

pub fn user(id: &str, name: &str, manager: Option<&str>) -> Value {
    let mut u = json!({
        "id": id,
        "userPrincipalName": format!("{name}@example.com"),
        "displayName": format!("{name} Example"),
        "givenName": name,
        "surname": "Example",
        "mail": format!("{name}@example.com"),
        "accountEnabled": true,
        "jobTitle": "Engineer",
        "department": "R&D",
        "employeeId": format!("E-{id}"),
        "businessPhones": ["+1 555 0100"],
    });
    if let Some(m) = manager {
        u["manager"] = json!(m);
    }
    u
}

impl<E> Pulled<E> {
    pub async fn run_with(
        &self,
        full: bool,
        dry_run: bool,
        force: bool,
    ) -> Result<RunReport, PullError> {
        let req = RunRequest {
            connector: CONNECTOR.to_owned(),
            full,
            dry_run,
            force,
            started_by: "test".to_owned(),
        };
        usersync::pull::run(&self.app.state.runtime, &req, Arc::new(|_, _| {})).await
    }

    pub async fn run(&self) -> RunReport {
        self.run_with(false, false, false).await.expect("pull run")
    }

    pub async fn stored(&self, id: &str) -> Option<Value> {
        self.app
            .store
            .get_resource(&ResourceKey::new(CONNECTOR, ResourceKind::User, id))
            .await
            .unwrap()
            .map(|r| Value::Object(r.doc))
    }

    pub async fn count(&self) -> usize {
        self.app.store.user_ids(CONNECTOR).await.unwrap().len()
    }

    pub async fn checkpoint(&self) -> Option<String> {
        self.app
            .store
            .pull_checkpoint(CONNECTOR)
            .await
            .unwrap()
            .map(|c| c.value)
    }

    pub async fn feed(&self) -> String {
        let r = self
            .app
            .client
            .get(self.app.feed_url())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.text().await.unwrap()
    }
}

/// Adds `manager2` and `manager3` fields: the second and third lines of managers
/// (docs/mapping.md "Lines of managers").
pub fn three_lines(c: &mut ConnectorSettings) {
    for (name, from) in [
        ("manager2", "manager.manager"),
        ("manager3", "manager.manager.manager"),
    ] {
        c.mapping.fields.push(
            toml::from_str(&format!("name = \"{name}\"\nfrom = \"{from}\"")).expect("a field"),
        );
    }
}

/// The three lines of managers of `username` in a feed.
pub fn lines_of(feed: &str, username: &str) -> [String; 3] {
    let user = element(feed, username);
    ["manager", "manager2", "manager3"].map(|e| {
        let open = format!("<{e}>");
        user.find(&open)
            .and_then(|at| {
                let from = at + open.len();
                user[from..]
                    .find(&format!("</{e}>"))
                    .map(|to| user[from..from + to].to_owned())
            })
            .unwrap_or_default()
    })
}

/// The `<user>` element of `username` in a feed.
pub fn element<'f>(feed: &'f str, username: &str) -> &'f str {
    let at = feed
        .find(&format!("<username>{username}</username>"))
        .unwrap_or_else(|| panic!("{username} in {feed}"));
    let start = feed[..at].rfind("<user>").unwrap_or(0);
    let end = feed[at..].find("</user>").map_or(feed.len(), |e| at + e);
    &feed[start..end]
}

#[tokio::test]
async fn import_change_suspend_and_delete_reach_confluence() {
    let p = spawn(settings(MaxDeletes::Count(5), 200)).await;
    p.idp.upsert_user(user("u-boss", "boss", None));
    p.idp.upsert_user(user("u-ada", "ada", Some("u-boss")));
    p.idp.upsert_user(user("u-bob", "bob", Some("u-boss")));

    let r = p.run().await;
    assert_eq!((r.mode, r.created, r.read), (Mode::Full, 3, 3), "{r:?}");
    assert!(r.run_id.is_some());
    let ada = p.stored("u-ada").await.expect("ada stored");
    assert_eq!(ada["userName"], "ada@example.com");
    assert_eq!(ada["externalId"], "u-ada");
    let ent = &ada["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ent["manager"]["value"], "u-boss");
    assert_eq!(ent["department"], "R&D");
    p.app.deliver_all().await;
    assert!(p.app.confluence().user("ada@example.com").unwrap().active);

    // An incremental change: only the changed user is written.
    p.idp.update_user("u-ada", json!({"jobTitle": "Lead"}));
    let r = p.run().await;
    assert_eq!(
        (r.mode, r.updated, r.created, r.read),
        (Mode::Incremental, 1, 0, 1),
        "{r:?}"
    );
    assert_eq!(p.stored("u-ada").await.unwrap()["title"], "Lead");

    // A suspension disables the Confluence account.
    p.idp.update_user("u-bob", json!({"accountEnabled": false}));
    let r = p.run().await;
    assert_eq!(r.updated, 1, "{r:?}");
    p.app.deliver_all().await;
    assert!(!p.app.confluence().user("bob@example.com").unwrap().active);

    // A deletion removes the stored user; delivery applies the connector's policy.
    p.idp.delete_user("u-bob");
    let r = p.run().await;
    assert_eq!((r.deleted, r.mode), (1, Mode::Incremental), "{r:?}");
    assert!(p.stored("u-bob").await.is_none());
    p.app.deliver_all().await;

    // Each run is recorded with its per-user changes.
    let runs = p.app.store.pull_runs(CONNECTOR, 10).await.unwrap();
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r.status == "done"));
    let changes = p.app.store.pull_changes(&runs[0].id).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].scim_id.as_str(), changes[0].change.as_str()),
        ("u-bob", "deleted")
    );

    // The audit trail names the pull as the writer of every change to the user.
    let q = usersync::store::audit::AuditQuery {
        connector: Some(CONNECTOR.to_owned()),
        resource_id: Some("u-bob".to_owned()),
        ..Default::default()
    };
    let rows = p.app.store.audit_query(&q).await.unwrap();
    let seen: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.actor_kind.as_str(),
                r.actor.as_str(),
                r.operation.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("system", "pull:graph", "delete"),
            ("system", "pull:graph", "update"),
            ("system", "pull:graph", "create"),
        ]
    );

    // Nothing changed: nothing written.
    let r = p.run().await;
    assert_eq!(
        (r.created, r.updated, r.deleted, r.read),
        (0, 0, 0, 0),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_manager_change_reaches_the_linchpin_feed() {
    let p = spawn(settings(MaxDeletes::Count(5), 200)).await;
    p.idp.upsert_user(user("u-boss", "boss", None));
    p.idp.upsert_user(user("u-carol", "carol", None));
    p.idp.upsert_user(user("u-ada", "ada", Some("u-boss")));
    p.run().await;
    p.app.deliver_all().await;
    let feed = p.feed().await;
    assert!(
        element(&feed, "ada@example.com").contains("<manager>boss@example.com</manager>"),
        "{feed}"
    );

    p.idp.set_manager("u-ada", Some("u-carol"));
    let r = p.run().await;
    assert_eq!(r.updated, 1, "{r:?}");
    p.app.deliver_all().await;
    let feed = p.feed().await;
    assert!(
        element(&feed, "ada@example.com").contains("<manager>carol@example.com</manager>"),
        "{feed}"
    );
}

#[tokio::test]
async fn an_expired_token_is_renewed_and_throttling_is_waited_out() {
    let p = spawn(settings(MaxDeletes::Count(5), 200)).await;
    p.idp.upsert_user(user("u-ada", "ada", None));
    p.run().await;
    assert_eq!(p.idp.token_requests(), 1);

    p.idp.expire_tokens();
    p.idp.throttle(2);
    p.idp.update_user("u-ada", json!({"department": "Sales"}));
    let started = std::time::Instant::now();
    let r = p.run().await;
    assert_eq!(r.updated, 1, "{r:?}");
    assert_eq!(p.idp.token_requests(), 2, "the token was renewed once");
    assert_eq!(p.idp.throttled(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After: 1 twice"
    );
}

#[tokio::test]
async fn a_failure_on_page_3_leaves_the_store_and_the_checkpoint_as_they_were() {
    let p = spawn(settings(MaxDeletes::Count(50), 2)).await;
    for i in 0..7 {
        p.idp
            .upsert_user(user(&format!("u-{i}"), &format!("user{i}"), None));
    }
    // A first run that fails on page 3 writes nothing at all.
    p.idp.fail_page(Some(3));
    let e = p.run_with(false, false, false).await.unwrap_err();
    assert!(e.to_string().contains("500"), "{e}");
    assert_eq!(p.count().await, 0);
    assert_eq!(p.checkpoint().await, None);
    assert!(p.app.queued().await.is_empty());

    p.idp.fail_page(None);
    p.run().await;
    let before = p.checkpoint().await.expect("checkpoint");
    let doc = p.stored("u-0").await;

    // An incremental round of 7 changes (4 pages of 2) failing on page 3.
    for i in 0..6 {
        p.idp
            .update_user(&format!("u-{i}"), json!({"jobTitle": "Changed"}));
    }
    p.idp.delete_user("u-6");
    p.idp.fail_page(Some(3));
    assert!(p.run_with(false, false, false).await.is_err());
    assert_eq!(p.checkpoint().await.as_deref(), Some(before.as_str()));
    assert_eq!(p.stored("u-0").await, doc);
    assert_eq!(p.count().await, 7, "no deletion");
    let runs = p.app.store.pull_runs(CONNECTOR, 1).await.unwrap();
    assert_eq!(runs[0].status, "failed");

    // Once the IdP answers, the same changes arrive.
    p.idp.fail_page(None);
    let r = p.run().await;
    assert_eq!((r.updated, r.deleted), (6, 1), "{r:?}");
}

#[tokio::test]
async fn the_deletion_guard_trips_and_force_passes_it() {
    let p = spawn(settings(MaxDeletes::Percent(20.0), 200)).await;
    for i in 0..10 {
        p.idp
            .upsert_user(user(&format!("u-{i}"), &format!("user{i}"), None));
    }
    p.run().await;
    let before = p.checkpoint().await;
    for i in 0..3 {
        p.idp.delete_user(&format!("u-{i}"));
    }
    let r = p.run().await;
    assert_eq!(r.status, RunStatus::Stopped, "{r:?}");
    assert!(r.reason.as_deref().unwrap().contains("--force"), "{r:?}");
    assert_eq!(p.count().await, 10);
    assert_eq!(p.checkpoint().await, before);
    assert_eq!(
        p.app.store.pull_runs(CONNECTOR, 1).await.unwrap()[0].status,
        "stopped"
    );

    let r = p.run_with(false, false, true).await.unwrap();
    assert_eq!((r.status, r.deleted), (RunStatus::Done, 3), "{r:?}");
    assert_eq!(p.count().await, 7);
}

#[tokio::test]
async fn a_dry_run_changes_nothing() {
    let p = spawn(settings(MaxDeletes::Count(5), 200)).await;
    p.idp.upsert_user(user("u-ada", "ada", None));
    p.idp.upsert_user(user("u-bob", "bob", None));
    let r = p.run_with(false, true, false).await.unwrap();
    assert!(r.dry_run && r.run_id.is_none());
    assert_eq!(r.created, 2, "{r:?}");
    assert_eq!(p.count().await, 0);
    assert_eq!(p.checkpoint().await, None);
    assert!(p
        .app
        .store
        .pull_runs(CONNECTOR, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(p.app.queued().await.is_empty());

    p.run().await;
    let before = p.checkpoint().await;
    p.idp.update_user("u-ada", json!({"jobTitle": "Lead"}));
    let r = p.run_with(false, true, false).await.unwrap();
    assert_eq!(r.updated, 1, "{r:?}");
    assert_eq!(p.checkpoint().await, before);
    assert_eq!(p.stored("u-ada").await.unwrap()["title"], "Engineer");
    // The real run still sees the change.
    assert_eq!(p.run().await.updated, 1);
}

#[tokio::test]
async fn an_expired_delta_link_starts_a_full_read_that_finds_deletions() {
    let p = spawn(settings(MaxDeletes::Count(5), 200)).await;
    p.idp.upsert_user(user("u-ada", "ada", None));
    p.idp.upsert_user(user("u-bob", "bob", None));
    p.run().await;
    p.idp.delete_user("u-bob");
    p.idp.expire_delta_links();
    let r = p.run().await;
    assert_eq!(
        (r.mode, r.deleted, r.unchanged),
        (Mode::Full, 1, 1),
        "{r:?}"
    );
    // And the new delta link works.
    p.idp.update_user("u-ada", json!({"jobTitle": "Lead"}));
    assert_eq!(p.run().await.mode, Mode::Incremental);
}

#[tokio::test]
async fn the_scim_endpoint_of_a_pull_connector_is_read_only() {
    let p = spawn(PullSettings::default()).await;
    p.idp.upsert_user(user("u-ada", "ada", None));
    p.run().await;
    // A token of the stored connector of the same name authenticates; writes are refused.
    let r = p
        .app
        .post(
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x@example.com"}),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("read-only"),
        "{:?}",
        r.body
    );
    let r = p.app.delete("/Users/u-ada").await;
    assert_eq!(r.status, 403);
    let r = p.app.get("/Users/u-ada").await;
    assert_eq!(r.status, 200);
    assert!(p.stored("u-ada").await.is_some());
}

#[tokio::test]
async fn one_run_at_a_time() {
    let p = spawn(PullSettings::default()).await;
    p.idp.upsert_user(user("u-ada", "ada", None));
    let lease = format!("pull:{CONNECTOR}");
    assert!(p
        .app
        .store
        .acquire_lease(
            &lease,
            "another-instance",
            Duration::from_secs(60),
            OffsetDateTime::now_utc()
        )
        .await
        .unwrap());
    assert!(matches!(
        p.run_with(false, false, false).await,
        Err(PullError::Busy)
    ));
    assert_eq!(p.count().await, 0);
    // A dry run reads only and takes no lease.
    assert_eq!(p.run_with(false, true, false).await.unwrap().created, 1);
}

#[tokio::test]
async fn a_three_line_manager_chain_reaches_the_feed_and_follows_a_moved_middle_manager() {
    let p = spawn_configured(settings(MaxDeletes::Count(5), 200), three_lines).await;
    p.idp.upsert_user(user("u-ceo", "ceo", None));
    p.idp.upsert_user(user("u-cto", "cto", Some("u-ceo")));
    p.idp.upsert_user(user("u-cfo", "cfo", Some("u-ceo")));
    p.idp.upsert_user(user("u-lead", "lead", Some("u-cto")));
    p.idp.upsert_user(user("u-ada", "ada", Some("u-lead")));
    p.run().await;
    let feed = p.feed().await;
    assert_eq!(
        lines_of(&feed, "ada@example.com"),
        ["lead@example.com", "cto@example.com", "ceo@example.com"],
        "{feed}"
    );
    // The team lead moves from the CTO to the CFO: only the lead changes in Graph, and ada's
    // second line follows.
    p.idp.set_manager("u-lead", Some("u-cfo"));
    let r = p.run().await;
    assert_eq!(r.updated, 1, "{r:?}");
    let ada = p
        .app
        .queue()
        .await
        .into_iter()
        .find(|q| q.key.id == "u-ada");
    assert!(
        ada.is_some_and(|q| q.generation >= 2),
        "ada is re-delivered"
    );
    let feed = p.feed().await;
    assert_eq!(
        lines_of(&feed, "ada@example.com"),
        ["lead@example.com", "cfo@example.com", "ceo@example.com"],
        "{feed}"
    );
}
