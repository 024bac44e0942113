//! SCIM server benchmark: loads users through `POST /Users`, then measures
//! `GET /Users?filter=userName eq "…"` at a fixed concurrency, on a fresh database.
//!
//! ```sh
//! cargo run --release --example bench -- --users 1000,100000 --concurrency 16 --lookups 50000
//! cargo run --release --example bench -- --users 1000 --database postgres://postgres@127.0.0.1/bench --instances 3
//! ```
//!
//! `--instances N` (PostgreSQL only) starts N servers on the one database, as several
//! instances behind a load balancer would run, and the client
//! sends request `i` to server `i mod N`.
//!
//! The server runs in this process on 127.0.0.1 and the client shares the machine, so the
//! numbers are a lower bound of what the server does alone. Nothing here asserts a number.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use usersync::app::Application;
use usersync::config::Settings;
use usersync::connectors::{generate_token, hash_hex, hash_token};
use usersync::store::SqliteSync;

struct Args {
    users: Vec<usize>,
    concurrency: usize,
    lookups: usize,
    database: Option<String>,
    sync: SqliteSync,
    instances: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        users: vec![10_000],
        concurrency: 16,
        lookups: 20_000,
        database: None,
        sync: SqliteSync::Full,
        instances: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--users" => {
                a.users = value()
                    .split(',')
                    .map(|n| n.trim().parse().expect("--users N[,N…]"))
                    .collect()
            }
            "--concurrency" => a.concurrency = value().parse().expect("--concurrency N"),
            "--lookups" => a.lookups = value().parse().expect("--lookups N"),
            "--database" => a.database = Some(value()),
            "--instances" => a.instances = value().parse().expect("--instances N"),
            "--sqlite-synchronous" => {
                a.sync = match value().as_str() {
                    "normal" => SqliteSync::Normal,
                    _ => SqliteSync::Full,
                }
            }
            "--help" | "-h" => {
                println!("bench [--users N[,N…]] [--concurrency 16] [--lookups 20000] [--database URL] [--sqlite-synchronous full|normal] [--instances N (PostgreSQL)]");
                std::process::exit(0);
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a.users.sort_unstable();
    a
}

/// Latencies in microseconds → (p50, p95, p99) in milliseconds.
fn percentiles(mut us: Vec<u64>) -> (f64, f64, f64) {
    us.sort_unstable();
    let at = |q: f64| {
        us.get(((us.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    (at(0.50), at(0.95), at(0.99))
}

/// Runs `total` requests with `concurrency` workers; returns (elapsed, latencies in µs).
async fn drive<F, Fut>(total: usize, concurrency: usize, make: F) -> (Duration, Vec<u64>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                let status = make(i).await;
                assert!(status < 300, "request {i} failed with {status}");
                lat.push(t.elapsed().as_micros() as u64);
            }
            lat
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    (start.elapsed(), all)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args();
    let dir = std::env::temp_dir().join(format!("usersync-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let mut settings = Settings::defaults();
    settings.listen = "127.0.0.1:0".into();
    settings.admin.listen = "127.0.0.1:0".into();
    settings.database = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    settings.store.sqlite_synchronous = args.sync;
    settings.log.level = "warn".into();
    let store = usersync::app::open_store(&settings).await?;
    let token = generate_token();
    store
        .create_connector(
            "bench",
            &hash_hex(&hash_token(&token)),
            OffsetDateTime::now_utc(),
        )
        .await?;
    if args.instances > 1 && !settings.database.starts_with("postgres") {
        anyhow::bail!("--instances needs --database postgres://… (SQLite has one writer process)");
    }
    let mut bases = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..args.instances.max(1) {
        let app = Application::build(settings.clone()).await?;
        bases.push(format!("http://{}/scim/v2/bench", app.local_addr()));
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        stops.push(tx);
    }
    let bases = Arc::new(bases);

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let auth = format!("Bearer {token}");
    println!(
        "usersync benchmark: {} concurrent connections, {} instance(s), database {}, sqlite_synchronous={:?}",
        args.concurrency,
        bases.len(),
        usersync::store::redact_url(&settings.database),
        args.sync
    );
    println!(
        "{:>10} | {:>9} {:>10} {:>8} {:>8} {:>8} | {:>10} {:>8} {:>8} {:>8}",
        "users",
        "load s",
        "creates/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "lookups/s",
        "p50 ms",
        "p95 ms",
        "p99 ms"
    );
    let mut loaded = 0usize;
    for &target in &args.users {
        let (c, bs, a) = (client.clone(), bases.clone(), auth.clone());
        let from = loaded;
        let (elapsed, lat) = drive(target - loaded, args.concurrency, move |i| {
            let (c, b, a) = (c.clone(), bs[i % bs.len()].clone(), a.clone());
            async move {
                let n = from + i;
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("user{n}@example.com"), "active": true,
                    "name": {"givenName": "User", "familyName": format!("Number {n}")},
                    "emails": [{"value": format!("user{n}@example.com"), "type": "work", "primary": true}],
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "employeeNumber": n.to_string()}
                });
                c.post(format!("{b}/Users"))
                    .header("Authorization", a)
                    .header("Content-Type", "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(599)
            }
        })
        .await;
        let created = target - loaded;
        loaded = target;
        let create_rate = created as f64 / elapsed.as_secs_f64();
        let load_s = elapsed.as_secs_f64();
        let (cp50, cp95, cp99) = percentiles(lat);
        if settings.database.starts_with("postgres") {
            // What autovacuum does after a bulk load (this machine's server may have it off):
            // without statistics PostgreSQL's planner guesses that a connector has a handful
            // of users and walks them all for every lookup.
            let pool = sqlx::AnyPool::connect(&settings.database).await?;
            sqlx::query("ANALYZE").execute(&pool).await?;
            pool.close().await;
        }
        let (c, bs, a) = (client.clone(), bases.clone(), auth.clone());
        let (elapsed, lat) = drive(args.lookups, args.concurrency, move |i| {
            let (c, b, a) = (c.clone(), bs[i % bs.len()].clone(), a.clone());
            // A spread of existing users (multiplicative hash over the loaded range).
            let n = (i.wrapping_mul(2_654_435_761)) % target;
            async move {
                c.get(format!(
                    "{b}/Users?filter=userName%20eq%20%22user{n}%40example.com%22"
                ))
                .header("Authorization", a)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(599)
            }
        })
        .await;
        let lookup_rate = args.lookups as f64 / elapsed.as_secs_f64();
        let (lp50, lp95, lp99) = percentiles(lat);
        println!("{target:>10} | {load_s:>9.1} {create_rate:>10.0} {cp50:>8.2} {cp95:>8.2} {cp99:>8.2} | {lookup_rate:>10.0} {lp50:>8.2} {lp95:>8.2} {lp99:>8.2}");
    }
    println!(
        "reproduce: cargo run --release --example bench -- --users {} --concurrency {} --lookups {}{}{}{}",
        args.users.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        args.concurrency,
        args.lookups,
        if args.sync == SqliteSync::Normal { " --sqlite-synchronous normal" } else { "" },
        args.database.as_deref().map(|d| format!(" --database {}", usersync::store::redact_url(d))).unwrap_or_default(),
        if bases.len() > 1 { format!(" --instances {}", bases.len()) } else { String::new() }
    );
    for tx in stops {
        let _ = tx.send(());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
