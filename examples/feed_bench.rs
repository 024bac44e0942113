//! Linchpin feed benchmark: loads N users directly through the store (one in ten is the
//! manager of the nine after it, referenced by SCIM id as Entra does), then times
//! `GET /linchpin/{connector}/profiles.xml` through the real server and reports the size, the
//! time and the peak memory of the process while the feed is served.
//!
//! ```sh
//! cargo run --release --example feed_bench -- --users 100000
//! ```
//!
//! Peak memory is `VmHWM` from `/proc/self/status`, reset through `/proc/self/clear_refs`
//! after loading, so it covers the feed alone (server and client share the process). The
//! target is under 2 s and under 100 MiB for 100,000 users; nothing here asserts it.
//! `--database postgres://…` runs it on PostgreSQL (an empty database; `ANALYZE` follows the
//! load); `--skip-load` reuses a database a previous run with `--database` filled.
//! `--manager-by employeeNumber` names managers by their employee number instead, as Okta and
//! OneLogin do: with no `refers_to` every page then asks every key (docs/mapping.md "Manager
//! resolution"); `--refers-to employeeNumber` pins the key.

use std::time::Instant;

use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use usersync::app::Application;
use usersync::config::{ConnectorSettings, Settings};
use usersync::scim::schema::ResourceKind;
use usersync::store::{SqliteSync, Store, StoreOptions};

const CONNECTOR: &str = "bench";
const KEY_ENV: &str = "USERSYNC_FEED_BENCH_KEY";
const KEY: &str = "feed-bench-key-0123456789abcdef";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

struct Args {
    users: usize,
    database: Option<String>,
    /// The database already holds the users (a previous run with `--database`).
    skip_load: bool,
    /// Managers referenced by employee number instead of SCIM id.
    by_employee_number: bool,
    /// `refers_to` of the connector (none by default).
    refers_to: Option<usersync::mapping::ManagerKey>,
}

fn parse_args() -> Args {
    let mut a = Args {
        users: 100_000,
        database: None,
        skip_load: false,
        by_employee_number: false,
        refers_to: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--users" => a.users = value().parse().expect("--users N"),
            "--database" => a.database = Some(value()),
            "--skip-load" => a.skip_load = true,
            "--manager-by" => match value().as_str() {
                "id" => a.by_employee_number = false,
                "employeeNumber" => a.by_employee_number = true,
                other => panic!("--manager-by id|employeeNumber, not {other}"),
            },
            "--refers-to" => {
                let key = value();
                a.refers_to = Some(
                    serde_json::from_value(serde_json::Value::String(key.clone()))
                        .unwrap_or_else(|_| panic!("--refers-to: unknown key {key}")),
                );
            }
            "--help" | "-h" => {
                println!("feed_bench [--users 100000] [--database URL (default: a temporary SQLite file)] [--skip-load] [--manager-by id|employeeNumber] [--refers-to KEY]");
                std::process::exit(0);
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// A field of `/proc/self/status` in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets `VmHWM` to the current resident size (Linux `clear_refs` value 5).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "n/a".to_owned())
}

fn user_doc(i: usize, manager: Option<&str>) -> usersync::scim::resource::Document {
    let mut enterprise = json!({
        "employeeNumber": format!("E{i:07}"),
        "department": format!("Department {}", i % 50),
        "division": "Engineering & Research",
        "organization": "Example Corp",
        "costCenter": format!("CC-{}", i % 200),
    });
    if let Some(m) = manager {
        enterprise["manager"] = json!({ "value": m });
    }
    json!({
        "userName": format!("user{i:07}@example.com"),
        "displayName": format!("User Number {i}"),
        "name": {"givenName": "User", "familyName": format!("Number {i}")},
        "title": if i % 10 == 0 { "Team Lead" } else { "Engineer" },
        "active": i % 97 != 0,
        "emails": [{"value": format!("user{i:07}@example.com"), "type": "work", "primary": true}],
        "phoneNumbers": [
            {"value": format!("+49 30 {i:07}"), "type": "work"},
            {"value": format!("+49 170 {i:07}"), "type": "mobile"}
        ],
        "addresses": [{"type": "work", "locality": "Berlin", "country": "DE"}],
        ENT: enterprise,
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

/// Bytes, user elements, resolved manager elements, seconds and the `ETag` of one GET.
async fn time_feed(
    client: &reqwest::Client,
    url: &str,
) -> (usize, usize, usize, f64, Option<String>) {
    let started = Instant::now();
    let mut res = client.get(url).send().await.expect("the feed answers");
    assert_eq!(res.status().as_u16(), 200, "feed status");
    let etag = res
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (mut bytes, mut users, mut managers) = (0usize, 0usize, 0usize);
    // The network may split an element between two chunks: each chunk is searched together
    // with the end of the previous one, counting only matches that end in the new chunk.
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = res.chunk().await.expect("a chunk") {
        bytes += chunk.len();
        let carried = buf.len();
        buf.extend_from_slice(&chunk);
        let count = |pattern: &[u8]| {
            buf.windows(pattern.len())
                .enumerate()
                .filter(|(i, w)| *w == pattern && i + pattern.len() > carried)
                .count()
        };
        users += count(b"</user>");
        managers += count(b"<manager>user0");
        let keep = buf.len().saturating_sub(16);
        buf.drain(..keep);
    }
    assert!(buf.ends_with(b"</users>\n"), "the feed is complete");
    (
        bytes,
        users,
        managers,
        started.elapsed().as_secs_f64(),
        etag,
    )
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    std::env::set_var(KEY_ENV, KEY);
    let dir = std::env::temp_dir().join(format!("usersync-feed-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let database = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));

    // Load through the store: the SCIM layer is measured by `examples/bench.rs`.
    let opts = StoreOptions {
        sqlite_sync: SqliteSync::Normal,
        ..StoreOptions::default()
    };
    let store = Store::connect(&database, &opts).await.expect("connect");
    store.migrate().await.expect("migrate");
    let ids: Vec<String> = (0..args.users)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let load = Instant::now();
    let now = OffsetDateTime::now_utc();
    let to_load = if args.skip_load { 0 } else { ids.len() };
    let numbers: Vec<String> = (0..ids.len()).map(|i| format!("E{i:07}")).collect();
    for (i, id) in ids.iter().enumerate().take(to_load) {
        let lead = i - i % 10;
        let manager = (i % 10 != 0).then(|| {
            if args.by_employee_number {
                numbers[lead].as_str()
            } else {
                ids[lead].as_str()
            }
        });
        store
            .insert_resource(
                &usersync::store::ResourceKey::new(CONNECTOR, ResourceKind::User, id),
                &user_doc(i, manager),
                &[],
                now,
            )
            .await
            .expect("insert");
    }
    let load_s = load.elapsed().as_secs_f64();
    store.close().await;
    if database.starts_with("postgres") {
        // What autovacuum does after a bulk load. Without statistics PostgreSQL's planner
        // guesses that a connector has a handful of users and scans them all for each
        // manager lookup (docs/mapping.md, "The Linchpin feed").
        let pool = sqlx::AnyPool::connect(&database).await.expect("connect");
        sqlx::query("ANALYZE")
            .execute(&pool)
            .await
            .expect("ANALYZE");
        pool.close().await;
    }

    let mut settings = Settings::defaults();
    settings.listen = "127.0.0.1:0".into();
    settings.admin.listen = "127.0.0.1:0".into();
    settings.database = database.clone();
    // Secrets are read from the environment once, by `Settings::load`; these settings are
    // built in code, so the feed key is handed over directly.
    settings.secrets.set(KEY_ENV, KEY);
    let mut connector = ConnectorSettings::default();
    connector.linchpin.feed_key_env = Some(KEY_ENV.to_owned());
    connector.mapping.manager.refers_to = args.refers_to;
    settings.connectors.insert(CONNECTOR.to_owned(), connector);
    let app = Application::build(settings).await.expect("build");
    let url = format!(
        "http://{}/linchpin/{CONNECTOR}/profiles.xml?key={KEY}",
        app.local_addr()
    );
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    let rss_before = status_kib("VmRSS:");
    let reset = reset_peak();
    let (bytes, users, managers, cold_s, etag) = time_feed(&client, &url).await;
    let peak = status_kib("VmHWM:");
    let (_, _, _, warm_s, _) = time_feed(&client, &url).await;
    let conditional = Instant::now();
    let not_modified = client
        .get(&url)
        .header("If-None-Match", etag.unwrap_or_default())
        .send()
        .await
        .expect("conditional GET");
    let conditional_ms = conditional.elapsed().as_secs_f64() * 1000.0;

    println!(
        "usersync Linchpin feed benchmark ({} users, {database})",
        args.users
    );
    println!("  load through the store: {load_s:.1} s");
    println!(
        "  feed: {users} user elements, {managers} with a resolved manager, {:.1} MiB",
        bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  managers named by {}, refers_to {}",
        if args.by_employee_number {
            "employeeNumber"
        } else {
            "SCIM id"
        },
        args.refers_to.map_or("unset", |k| k.as_str())
    );
    println!("  first GET:  {cold_s:.2} s");
    println!("  second GET: {warm_s:.2} s");
    println!(
        "  conditional GET: HTTP {} in {conditional_ms:.1} ms",
        not_modified.status().as_u16()
    );
    println!(
        "  memory: RSS before {} ; peak while serving (VmHWM{}) {}",
        mib(rss_before),
        if reset {
            ", reset after loading"
        } else {
            ", since start"
        },
        mib(peak)
    );
    println!(
        "  reproduce: cargo run --release --example feed_bench -- --users {}{}{}",
        args.users,
        if args.by_employee_number {
            " --manager-by employeeNumber"
        } else {
            ""
        },
        args.refers_to
            .map(|k| format!(" --refers-to {}", k.as_str()))
            .unwrap_or_default()
    );
    let _ = tx.send(());
    let _ = server.await;
    if args.database.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
