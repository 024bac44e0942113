//! Reconcile benchmark: N users in the store, each linked to its account in the emulator
//! (no latency), then a dry run and a real run of `usersync reconcile`, timed, with the
//! process's peak memory.
//!
//! ```sh
//! cargo run --release --example reconcile_bench -- --users 100000
//! ```
//!
//! Loading goes through the store (users, their links and applied state) and straight into
//! the emulator's state, so it is not what is measured. Before the runs, `--drift K` accounts
//! are disabled by hand, K are taken out of a managed group (`confluence-users`), K are put in
//! a group usersync does not manage (not drift), and K accounts usersync never managed are
//! added, so the real run has work to do (K defaults to 1 % of N).
//!
//! Peak memory is `VmHWM` from `/proc/self/status`, reset through `/proc/self/clear_refs`
//! after loading. The emulator runs in this process and holds the N accounts too: the line
//! "RSS before" is the baseline with the store and the emulator loaded, and the peak covers
//! the runs on top of it. The target is under 60 s and under 200 MiB for 100,000 users;
//! nothing here asserts it. `--database postgres://…` runs it on PostgreSQL (an empty
//! database).

use std::time::Instant;

use serde_json::json;
use time::OffsetDateTime;

use usersync::config::{ConnectorSettings, Settings};
use usersync::emulator::{Emulator, EmulatorConfig, SeedUser, UserEdit};
use usersync::mapping::DesiredUser;
use usersync::reconcile::progress::Silent;
use usersync::reconcile::report::RunReport;
use usersync::reconcile::{Reconciler, RunRequest, StartedBy};
use usersync::scim::schema::ResourceKind;
use usersync::store::links::{Link, LinkStatus};
use usersync::store::{SqliteSync, Store, StoreOptions};
use usersync::targets::confluence::{ConfluenceAuth, ConfluenceClient, ConfluenceConfig, Secret};

const CONNECTOR: &str = "bench";
const PAT: &str = "reconcile-bench-pat";

struct Args {
    users: usize,
    drift: Option<usize>,
    database: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        users: 100_000,
        drift: None,
        database: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--users" => a.users = value().parse().expect("--users N"),
            "--drift" => a.drift = Some(value().parse().expect("--drift K")),
            "--database" => a.database = Some(value()),
            "--help" | "-h" => {
                println!(
                    "reconcile_bench [--users 100000] [--drift K (default 1 % of N)] [--database URL]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resets the peak RSS to the current RSS (Linux 4.0+).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |k| format!("{:.0} MiB", k as f64 / 1024.0),
    )
}

fn name(i: usize) -> String {
    format!("user{i:06}")
}

async fn timed(r: &Reconciler, dry_run: bool, force: bool) -> (f64, RunReport, Option<u64>) {
    let reset = reset_peak();
    let started = Instant::now();
    let report = r
        .run(
            &RunRequest {
                connector: CONNECTOR.to_owned(),
                dry_run,
                force,
                started_by: StartedBy::Cli,
            },
            &Silent,
        )
        .await
        .expect("the run");
    let secs = started.elapsed().as_secs_f64();
    (secs, report, status_kib("VmHWM:").filter(|_| reset))
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let n = args.users;
    let drift = args.drift.unwrap_or(n / 100);
    let dir = std::env::temp_dir().join(format!("usersync-reconcile-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let database = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));

    // The store: N users, each with a live link whose applied state is what it should be.
    let load = Instant::now();
    let opts = StoreOptions {
        sqlite_sync: SqliteSync::Normal,
        ..StoreOptions::default()
    };
    let store = Store::connect(&database, &opts).await.expect("connect");
    store.migrate().await.expect("migrate");
    let now = OffsetDateTime::now_utc();
    store
        .create_connector(CONNECTOR, "0".repeat(64).as_str(), now)
        .await
        .expect("connector");
    for i in 0..n {
        let u = name(i);
        let id = uuid::Uuid::new_v4().to_string();
        let doc = json!({
            "userName": u,
            "displayName": format!("User {i}"),
            "emails": [{"value": format!("{u}@example.org"), "primary": true}],
            "active": true,
        });
        store
            .insert_resource(
                &usersync::store::ResourceKey::new(CONNECTOR, ResourceKind::User, &id),
                doc.as_object().expect("object"),
                &[],
                now,
            )
            .await
            .expect("insert");
        let applied = DesiredUser {
            username: u.clone(),
            full_name: format!("User {i}"),
            email: format!("{u}@example.org"),
            active: true,
            groups: ["confluence-users".to_owned()].into_iter().collect(),
        };
        store
            .save_link(
                &Link {
                    connector: CONNECTOR.to_owned(),
                    kind: ResourceKind::User,
                    scim_id: id,
                    target_name: u,
                    target_key: None,
                    status: LinkStatus::Active,
                    applied: serde_json::to_value(&applied).ok(),
                    note: None,
                },
                now,
            )
            .await
            .expect("link");
    }
    // Delivery would have emptied the queue; the bench measures reconcile, not delivery.
    if let Ok(pool) = sqlx::AnyPool::connect(&database).await {
        let _ = sqlx::query("DELETE FROM sync_queue").execute(&pool).await;
        if database.starts_with("postgres") {
            let _ = sqlx::query("ANALYZE").execute(&pool).await;
        }
        pool.close().await;
    }

    // The emulator: the same N accounts, in confluence-users.
    let emu = Emulator::new(EmulatorConfig::new(PAT));
    for i in 0..n {
        let u = name(i);
        let seed: SeedUser = serde_json::from_value(json!({
            "username": u,
            "fullName": format!("User {i}"),
            "email": format!("{u}@example.org"),
            "groups": ["confluence-users"],
        }))
        .expect("seed user");
        emu.add_user(&seed).expect("added");
    }
    for i in 0..drift {
        let off = UserEdit {
            active: Some(false),
            ..UserEdit::default()
        };
        emu.edit_user(&name(i * 7 % n), &off);
        emu.remove_member(&name((i * 7 + 3) % n), "confluence-users");
        // Noise: a group usersync does not manage is not compared.
        emu.add_member(&name((i * 7 + 5) % n), "hand-made");
        emu.add_user(
            &serde_json::from_value(json!({"username": format!("stray{i:06}")}))
                .expect("seed user"),
        )
        .expect("stray");
    }
    let load_s = load.elapsed().as_secs_f64();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(emu.clone().serve(listener, std::future::pending()));

    let mut settings = Settings::defaults();
    settings.database = database.clone();
    settings
        .connectors
        .insert(CONNECTOR.to_owned(), ConnectorSettings::default());
    let client = ConfluenceClient::new(ConfluenceConfig::new(
        url,
        ConfluenceAuth::Pat(Secret::new(PAT)),
    ))
    .expect("client");
    let runtime = usersync::runtime::Runtime::build(settings, store.clone())
        .await
        .expect("runtime");
    let reconciler = usersync::app::reconciler(store.clone(), client, &runtime);

    let rss_before = status_kib("VmRSS:");
    let (dry_s, dry, dry_peak) = timed(&reconciler, true, false).await;
    let (real_s, real, real_peak) = timed(&reconciler, false, false).await;
    let queued = store.queue_stats().await.map(|s| s.pending).unwrap_or(-1);

    println!("usersync reconcile benchmark ({n} users, {database})");
    println!("  load (store and emulator, not measured): {load_s:.1} s");
    println!(
        "  drift made by hand: {drift} accounts disabled, {drift} taken out of confluence-users, {drift} never-managed accounts ({drift} put in an unmanaged group: not drift)"
    );
    for (label, secs, r, peak) in [
        ("dry run", dry_s, &dry, dry_peak),
        ("real run", real_s, &real, real_peak),
    ] {
        println!(
            "  {label}: {secs:.1} s; {} accounts in {} pages, {} users compared, {} differences {:?}; peak memory (VmHWM) {}",
            r.accounts,
            r.pages,
            r.users,
            r.items.len(),
            r.counts,
            mib(peak)
        );
    }
    println!("  keys marked for delivery by the real run: {queued}");
    println!(
        "  RSS before the runs (store and emulator loaded): {}",
        mib(rss_before)
    );
    println!(
        "  reproduce: cargo run --release --example reconcile_bench -- --users {n} --drift {drift}{}",
        args.database
            .as_deref()
            .map(|d| format!(" --database {d}"))
            .unwrap_or_default()
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
