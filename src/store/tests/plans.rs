//! The store's lookups stay lookups when a connector grows from a handful of resources to
//! tens of thousands, as it does during an IdP's first sync.
//!
//! PostgreSQL: the small connector is analyzed (as autovacuum does early in a sync), each
//! operation runs ten times on one connection (PostgreSQL switches a prepared statement to
//! a cached generic plan after five), then, in the same transaction, the connector grows by
//! 30,000 users, memberships and e-mails. The blocks each operation then touches are
//! counted (`pg_stat_get_xact_blocks_fetched`, this transaction's own count: exact, and free
//! of timing); a lookup touches a few, a scan of the grown connector hundreds.
//! - Before the growth is analyzed, the statements with `IN (…)` lists, which are planned at
//!   each execution (`store::dynamic`), must already be lookups.
//! - Once it is analyzed (autovacuum's next pass, done here in the transaction), which
//!   makes PostgreSQL re-plan its cached statements, every operation must be a lookup:
//!   this holds each query's shape to account.
//!
//! SQLite plans with fixed statistics, never with the table's current size, so the plan of
//! each statement the store sends is read (`EXPLAIN QUERY PLAN`): every table must be
//! searched by more of an index than the connector (and kind) alone.

use serde_json::json;
use sqlx::AnyConnection;

use super::{doc, now, store};
use crate::scim::filter;
use crate::scim::members::{MemberOp, MemberRef};
use crate::scim::schema::ResourceKind::{Group, User};
use crate::scim::schema::SchemaRegistry;
use crate::store::members::{self, GROUPS_OF_MEMBER};
use crate::store::narrow::{narrow, Narrowing};
use crate::store::resources::{self, select_sql};
use crate::store::{bind_args, Arg, Backend, Store};

/// Users, memberships and e-mails added to the connector before the measured run.
const GROWTH: i64 = 30_000;
/// Most blocks one lookup below may touch on PostgreSQL. A scan of the grown connector
/// touches several hundred (its heap alone is over 300 blocks).
const MAX_BLOCKS: i64 = 60;

fn member(id: &str) -> MemberRef {
    MemberRef {
        value: id.into(),
        kind: None,
        display: None,
    }
}

fn narrowing(filter: &str) -> Narrowing {
    let reg = SchemaRegistry::builtin();
    let f = filter::parse(filter).unwrap();
    narrow(&f, reg.resource_type(User)).unwrap()
}

/// The filters whose narrowing each index answers, and one `or` of two of them.
const FILTERS: [&str; 5] = [
    r#"userName eq "small3""#,
    r#"externalId eq "x3""#,
    r#"emails[value eq "small3@example.com"]"#,
    r#"id eq "u3""#,
    r#"userName eq "small3" or emails.value eq "small4@example.com""#,
];

/// Forty users (`u0`…, `small0`…, externalId `x0`…, e-mail `small0@example.com`…) and twenty
/// groups (`g0`…), `u{2k}` and `u{2k+1}` in `g{k}`: the first minute of a sync.
async fn seed(s: &Store) {
    for i in 0..40 {
        let d = doc(
            json!({"userName": format!("small{i}"), "externalId": format!("x{i}"),
            "emails": [{"value": format!("small{i}@example.com")}], "active": true}),
        );
        s.insert_resource(
            &crate::store::ResourceKey::new("c", User, format!("u{i}")),
            &d,
            &[],
            now(),
        )
        .await
        .unwrap();
    }
    for k in 0..20 {
        let refs = [
            member(&format!("u{}", 2 * k)),
            member(&format!("u{}", 2 * k + 1)),
        ];
        let d = doc(json!({"displayName": format!("g{k}")}));
        s.insert_resource(
            &crate::store::ResourceKey::new("c", Group, format!("g{k}")),
            &d,
            &refs,
            now(),
        )
        .await
        .unwrap();
    }
}

/// Adds [`GROWTH`] users (each with an e-mail, each in one of 300 new groups) inside the
/// caller's transaction, so no statistics are gathered on them.
async fn grow(conn: &mut AnyConnection, backend: Backend) {
    let numbers = match backend {
        Backend::Postgres => format!("SELECT g AS n FROM generate_series(1, {GROWTH}) g"),
        Backend::Sqlite => format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {GROWTH}) \
             SELECT n FROM s"
        ),
    };
    let statements = [
        format!(
            "INSERT INTO resources (connector, kind, id, name, name_lower, external_id, active, \
             doc, version, created_at, updated_at) SELECT 'c', 'User', 'big' || n, 'big' || n, \
             'big' || n, 'xbig' || n, TRUE, '{{}}', 1, 0, 0 FROM ({numbers}) t"
        ),
        format!(
            "INSERT INTO resources (connector, kind, id, name, name_lower, doc, version, \
             created_at, updated_at) SELECT 'c', 'Group', 'bg' || n, 'bg' || n, 'bg' || n, \
             '{{}}', 1, 0, 0 FROM ({numbers}) t WHERE n <= 300"
        ),
        format!(
            "INSERT INTO resource_emails (connector, resource_id, value_lower) \
             SELECT 'c', 'big' || n, 'big' || n || '@example.com' FROM ({numbers}) t"
        ),
        format!(
            "INSERT INTO group_members (connector, group_id, member_id, member_kind) \
             SELECT 'c', 'bg' || (n % 300 + 1), 'big' || n, 'User' FROM ({numbers}) t"
        ),
    ];
    for sql in statements {
        sqlx::query(&sql).execute(&mut *conn).await.unwrap();
    }
}

/// The operations whose statements carry `IN (…)` lists of two.
const LISTS: [&str; 4] = [
    "add members (id lookup)",
    "remove members",
    "members of groups",
    "groups of members",
];

/// The operations measured, each as the store runs it.
const OPS: [&str; 11] = [
    "add members (id lookup)",
    "remove members",
    "members of groups",
    "groups of members",
    "groups of a deleted member",
    "get by id",
    "find by name",
    "narrowed 0",
    "narrowed 1",
    "narrowed 2",
    "narrowed 3",
];

async fn run(op: &str, conn: &mut AnyConnection) {
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match op {
        "add members (id lookup)" => {
            let refs = [member("u6"), member("u7")];
            members::add(conn, "c", "g19", &refs, 0).await.unwrap();
        }
        "remove members" => {
            let op = MemberOp::Remove(ids(&["u0", "u1"]));
            members::apply(conn, "c", "g0", &op, None, 0).await.unwrap();
        }
        "members of groups" => {
            members::members_of(conn, "c", &ids(&["g0", "g1"]))
                .await
                .unwrap();
        }
        "groups of members" => {
            let got = members::groups_of(conn, "c", &ids(&["u3", "u5"]))
                .await
                .unwrap();
            assert_eq!(got["u5"], [("g2".to_string(), "g2".to_string())]);
        }
        "groups of a deleted member" => {
            members::remove_everywhere(conn, "c", "u9").await.unwrap();
        }
        "get by id" | "find by name" => {
            let (tail, value) = match op {
                "get by id" => ("AND id = $3", "u3"),
                _ => ("AND name_lower = $3", "small3"),
            };
            // The store's own statement, cached like the store caches it.
            let args = [
                Arg::Text("c".into()),
                Arg::Text("User".into()),
                Arg::Text(value.into()),
            ];
            let rows = bind_args(sqlx::query(&select_sql(tail)), &args)
                .fetch_all(&mut *conn)
                .await
                .unwrap();
            assert_eq!(rows.len(), 1, "{op}");
        }
        narrowed => {
            let i: usize = narrowed["narrowed ".len()..].parse().unwrap();
            let got = resources::narrowed_in(conn, "c", User, &narrowing(FILTERS[i]))
                .await
                .unwrap();
            assert!(!got.is_empty(), "{narrowed}: {}", FILTERS[i]);
        }
    }
}

async fn blocks(conn: &mut AnyConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(pg_stat_get_xact_blocks_fetched(c.oid)), 0)::BIGINT \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema()",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

async fn postgres_lookups_stay_lookups_after_the_connector_grows() {
    let (s, _db) = store(Backend::Postgres).await;
    seed(&s).await;
    // What autovacuum does early in a sync: statistics of the small connector.
    sqlx::query("ANALYZE").execute(s.writer()).await.unwrap();
    let mut tx = s.write_tx().await.unwrap();
    for _ in 0..10 {
        for op in OPS {
            run(op, &mut tx).await;
        }
    }
    grow(&mut tx, Backend::Postgres).await;
    for (phase, ops) in [("before ANALYZE", &LISTS[..]), ("after ANALYZE", &OPS[..])] {
        if phase == "after ANALYZE" {
            sqlx::query("ANALYZE").execute(&mut *tx).await.unwrap();
        }
        let mut touched = Vec::new();
        for op in ops {
            let before = blocks(&mut tx).await;
            run(op, &mut tx).await;
            touched.push((*op, blocks(&mut tx).await - before));
        }
        let too_many: Vec<_> = touched.iter().filter(|(_, b)| *b > MAX_BLOCKS).collect();
        assert!(
            too_many.is_empty(),
            "{phase}, over {MAX_BLOCKS} blocks: {too_many:?} (all: {touched:?}; filters: \
             {FILTERS:?})"
        );
    }
}

/// The statement of each operation, with arguments, as the store builds it on SQLite.
fn sqlite_statements() -> Vec<(String, String, Vec<Arg>)> {
    let text = |v: &[&str]| {
        v.iter()
            .map(|s| Arg::Text(s.to_string()))
            .collect::<Vec<_>>()
    };
    let mut out = vec![
        (
            "add members (id lookup)".into(),
            members::lookup_sql(2),
            text(&["c", "u6", "u7"]),
        ),
        (
            "remove members".into(),
            members::remove_sql(2),
            text(&["c", "g0", "u0", "u1"]),
        ),
        (
            "members of groups".into(),
            members::members_of_sql(2),
            text(&["c", "g0", "g1"]),
        ),
        (
            "groups of members: memberships".into(),
            members::memberships_sql(2),
            text(&["c", "u3", "u5"]),
        ),
        (
            "groups of members: names".into(),
            members::group_names_sql(2),
            text(&["c", "g0", "g1"]),
        ),
        (
            "groups of a deleted member".into(),
            GROUPS_OF_MEMBER.into(),
            text(&["c", "u9"]),
        ),
        (
            "get by id".into(),
            select_sql("AND id = $3"),
            text(&["c", "User", "u3"]),
        ),
        (
            "find by name".into(),
            select_sql("AND name_lower = $3"),
            text(&["c", "User", "small3"]),
        ),
    ];
    for f in FILTERS {
        let (sql, args) = resources::narrowed_sql(Backend::Sqlite, "c", User, &narrowing(f));
        out.push((f.to_string(), sql, args));
    }
    out
}

/// The plan's lines that read a table by no more than its connector and kind (or by
/// nothing): `SCAN t`, or `SEARCH t USING … (connector=? AND kind=?)`.
fn connector_walks(plan: &[String]) -> Vec<String> {
    plan.iter()
        .filter(|line| {
            let line = line.trim();
            if line.starts_with("SCAN ") {
                return !line.starts_with("SCAN CONSTANT ROW");
            }
            let Some(cols) = line
                .strip_prefix("SEARCH ")
                .and_then(|l| l.split_once('('))
                .map(|(_, c)| c.trim_end_matches(')'))
            else {
                return false;
            };
            cols.split(" AND ")
                .all(|c| c == "connector=?" || c == "kind=?" || c.starts_with("ANY("))
        })
        .cloned()
        .collect()
}

async fn sqlite_lookups_search_by_a_whole_key() {
    let (s, _db) = store(Backend::Sqlite).await;
    seed(&s).await;
    let mut tx = s.write_tx().await.unwrap();
    grow(&mut tx, Backend::Sqlite).await;
    for op in OPS {
        run(op, &mut tx).await; // Each still answers on the grown connector.
    }
    // The writer ran the migrations; a reader connection was opened before them.
    let mut reader = s.reader().acquire().await.unwrap();
    let mut bad = Vec::new();
    for conn in [&mut *tx, &mut *reader] {
        for (name, sql, args) in sqlite_statements() {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let rows = bind_args(sqlx::query(&explain), &args)
                .fetch_all(&mut *conn)
                .await
                .unwrap();
            let plan: Vec<String> = rows
                .iter()
                .map(|r| sqlx::Row::try_get::<String, _>(r, "detail").unwrap())
                .collect();
            let walks = connector_walks(&plan);
            if !walks.is_empty() {
                bad.push(format!("{name}: {walks:?} in {plan:?}"));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn a_connector_walk_is_told_from_a_lookup() {
    let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for walk in [
        "SCAN resources",
        "SEARCH r USING INDEX resources_scan (connector=? AND kind=?)",
        "SEARCH group_members USING COVERING INDEX sqlite_autoindex_group_members_1 (connector=?)",
    ] {
        assert_eq!(connector_walks(&lines(&[walk])).len(), 1, "{walk}");
    }
    for lookup in [
        "SEARCH r USING COVERING INDEX resources_id (connector=? AND kind=? AND id=?)",
        "SEARCH group_members USING INDEX group_members_member (connector=? AND member_id=?)",
        "MULTI-INDEX OR",
        "USE TEMP B-TREE FOR ORDER BY",
    ] {
        assert!(connector_walks(&lines(&[lookup])).is_empty(), "{lookup}");
    }
}

#[tokio::test]
async fn postgres() {
    postgres_lookups_stay_lookups_after_the_connector_grows().await;
}

#[tokio::test]
async fn sqlite() {
    sqlite_lookups_search_by_a_whole_key().await;
}
