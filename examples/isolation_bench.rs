//! Isolation benchmark (issue 8 item 3): the latency of a small `POST /Users` on connector
//! A while connector B sends, as fast as it can, the worst requests the limits allow.
//!
//! ```sh
//! cargo run --release --example isolation_bench -- --seconds 10 --attackers 4
//! ```
//!
//! Three phases of `--seconds` each, on one fresh database and one server:
//!
//! 1. `baseline`: A alone (one create at a time).
//! 2. `patch`: B's attackers each PATCH a user of their own holding
//!    `limits.max_values_per_attribute` e-mails with as many filtered operations as
//!    `limits.max_patch_cost` allows (each operation evaluates its filter on every e-mail).
//! 3. `put`: B's attackers each PUT a user replacing all its e-mails with fresh ones, the
//!    largest rewrite of one resource the limits allow (the single SQLite writer rewrites
//!    its e-mail index).
//!
//! The server runs in this process and shares the machine with the client, so numbers are
//! relative: compare the phases. Nothing here asserts a number.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use usersync::app::Application;
use usersync::config::Settings;
use usersync::connectors::{generate_token, hash_hex, hash_token};
use usersync::store::SqliteSync;

struct Args {
    seconds: u64,
    attackers: usize,
    database: Option<String>,
    sync: SqliteSync,
}

fn parse_args() -> Args {
    let mut a = Args {
        seconds: 10,
        attackers: 4,
        database: None,
        sync: SqliteSync::Full,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => a.seconds = value().parse().expect("--seconds N"),
            "--attackers" => a.attackers = value().parse().expect("--attackers N"),
            "--database" => a.database = Some(value()),
            "--sqlite-synchronous" => {
                a.sync = match value().as_str() {
                    "normal" => SqliteSync::Normal,
                    _ => SqliteSync::Full,
                }
            }
            "--help" | "-h" => {
                println!("isolation_bench [--seconds 10] [--attackers 4] [--database URL] [--sqlite-synchronous full|normal]");
                std::process::exit(0);
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// Latencies in microseconds → (p50, p99, max) in milliseconds.
fn percentiles(mut us: Vec<u64>) -> (f64, f64, f64) {
    us.sort_unstable();
    let at = |q: f64| {
        us.get(((us.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    (at(0.50), at(0.99), at(1.0))
}

#[derive(Clone)]
struct Conn {
    client: reqwest::Client,
    base: String,
    auth: String,
}

impl Conn {
    async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> u16 {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(599)
    }
}

fn emails(tag: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"value": format!("{tag}{i}@example.com"), "type": format!("t{i}")}))
            .collect(),
    )
}

/// A's small creates, one at a time, for `secs`: their latencies in µs.
async fn victim(a: &Conn, secs: u64, phase: &str, next: &AtomicUsize) -> Vec<u64> {
    let end = Instant::now() + Duration::from_secs(secs);
    let mut lat = Vec::new();
    while Instant::now() < end {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let body = json!({"userName": format!("{phase}-{n}@example.com"), "active": true,
                          "emails": [{"value": format!("{phase}-{n}@example.com"), "primary": true}]});
        let t = Instant::now();
        let status = a.send(reqwest::Method::POST, "/Users", &body).await;
        assert_eq!(status, 201, "a small create failed");
        lat.push(t.elapsed().as_micros() as u64);
    }
    lat
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args();
    let dir = std::env::temp_dir().join(format!("usersync-isolation-{}", uuid::Uuid::new_v4()));
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
    let limits = settings.limits.clone();
    let store = usersync::app::open_store(&settings).await?;
    let mut conns = Vec::new();
    for name in ["a", "b"] {
        let token = generate_token();
        store
            .create_connector(
                name,
                &hash_hex(&hash_token(&token)),
                OffsetDateTime::now_utc(),
            )
            .await?;
        conns.push(token);
    }
    let app = Application::build(settings.clone()).await?;
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.attackers + 2)
        .build()?;
    let conn = |name: &str, token: &str| Conn {
        client: client.clone(),
        base: format!("http://{addr}/scim/v2/{name}"),
        auth: format!("Bearer {token}"),
    };
    let a = conn("a", &conns[0]);
    let b = conn("b", &conns[1]);

    // B's targets: one user per attacker, holding the most e-mails allowed.
    let values = limits.max_values_per_attribute;
    let mut targets = Vec::new();
    for k in 0..args.attackers {
        let r = b
            .client
            .post(format!("{}/Users", b.base))
            .header("Authorization", &b.auth)
            .header("Content-Type", "application/scim+json")
            .body(
                json!({"userName": format!("target{k}"), "emails": emails("e", values)})
                    .to_string(),
            )
            .send()
            .await?;
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await?);
        let v: Value = r.json().await?;
        targets.push(v["id"].as_str().unwrap_or_default().to_owned());
    }
    // The most filtered operations one PATCH may carry: each costs 1 + its value + the
    // e-mails its filter is evaluated on.
    let per_op = 2 + values as u64;
    let ops = (limits.max_patch_cost / per_op) as usize;
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": (0..ops).map(|i| json!({"op": "replace",
            "path": format!("emails[type eq \"t{}\"].display", i % values), "value": format!("d{i}")}))
            .collect::<Vec<_>>()
    });
    println!(
        "isolation benchmark: {} attackers on connector b; limits: max_values_per_attribute={}, \
         max_patch_cost={}, max_body_bytes={}; database {}, sqlite_synchronous={:?}",
        args.attackers,
        values,
        limits.max_patch_cost,
        limits.max_body_bytes,
        usersync::store::redact_url(&settings.database),
        args.sync
    );
    println!(
        "worst PATCH: {ops} filtered operations on {values} e-mails ({} bytes); worst PUT: {values} new e-mails",
        patch.to_string().len()
    );
    println!(
        "{:>9} | {:>8} {:>9} {:>9} {:>9} | {:>10} {:>9}",
        "phase", "A creates", "p50 ms", "p99 ms", "max ms", "B requests", "B p50 ms"
    );
    let next = AtomicUsize::new(0);
    for phase in ["baseline", "patch", "put"] {
        let stop = Arc::new(AtomicBool::new(false));
        let mut attackers = Vec::new();
        if phase != "baseline" {
            for (k, id) in targets.iter().enumerate() {
                let (b, stop, id) = (b.clone(), stop.clone(), id.clone());
                let patch = patch.clone();
                let phase = phase.to_owned();
                attackers.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut round = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let status = if phase == "patch" {
                            b.send(reqwest::Method::PATCH, &format!("/Users/{id}"), &patch)
                                .await
                        } else {
                            round += 1;
                            let body = json!({"userName": format!("target{k}"),
                                              "emails": emails(&format!("r{round}-"), values)});
                            b.send(reqwest::Method::PUT, &format!("/Users/{id}"), &body)
                                .await
                        };
                        assert_eq!(status, 200, "an attacker's request was refused");
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    lat
                }));
            }
            // Let the attack reach its pace first.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let lat = victim(&a, args.seconds, phase, &next).await;
        stop.store(true, Ordering::Relaxed);
        let mut b_lat = Vec::new();
        for t in attackers {
            b_lat.extend(t.await?);
        }
        let creates = lat.len();
        let (p50, p99, max) = percentiles(lat);
        let b_n = b_lat.len();
        let (b50, _, _) = percentiles(b_lat);
        println!(
            "{phase:>9} | {creates:>9} {p50:>9.2} {p99:>9.2} {max:>9.2} | {b_n:>10} {b50:>9.2}"
        );
    }
    println!(
        "reproduce: cargo run --release --example isolation_bench -- --seconds {} --attackers {}{}",
        args.seconds,
        args.attackers,
        if args.sync == SqliteSync::Normal {
            " --sqlite-synchronous normal"
        } else {
            ""
        }
    );
    let _ = tx.send(());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
