//! Deprovisioning latency: from the moment usersync answers an IdP's
//! `PATCH active=false` to the moment Confluence (the emulator) has disabled the account,
//! at idle and while other changes flow at a steady rate.
//!
//! ```sh
//! cargo run --release --example deprovision_bench -- --samples 100 --background-rate 100
//! ```
//!
//! With `--rate-limit N`, the busy phase runs under a storm: the emulator limits the service
//! account to N requests per second (a bucket of N), and every background change is a
//! `displayName` change that costs a Confluence call, more than the limit allows, so a backlog
//! builds up while the leavers are deactivated. The 429s Confluence answered and the keys left
//! dead are reported too.
//!
//! ```sh
//! cargo run --release --example deprovision_bench -- --samples 50 --background-rate 20 --rate-limit 5
//! ```
//!
//! The server, its delivery worker and the emulator run in this process on 127.0.0.1 and the
//! emulator answers at once, so this measures usersync's own part: commit, wake-up, claim,
//! convergence, the HTTP call. Nothing here asserts a number.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use usersync::app::Application;
use usersync::config::Settings;
use usersync::connectors::{generate_token, hash_hex, hash_token};
use usersync::emulator::{Emulator, EmulatorConfig, RateLimitKnobs, RateLimitMode};
use usersync::targets::confluence::{ConfluenceAuth, ConfluenceConfig, Secret};

struct Args {
    samples: usize,
    rate: u64,
    database: Option<String>,
    rate_limit: Option<u32>,
}

fn parse_args() -> Args {
    let mut a = Args {
        samples: 100,
        rate: 100,
        database: None,
        rate_limit: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--samples" => a.samples = value().parse().expect("--samples N"),
            "--background-rate" => {
                a.rate = value()
                    .parse()
                    .expect("--background-rate N (changes per second)")
            }
            "--database" => a.database = Some(value()),
            "--rate-limit" => {
                a.rate_limit = Some(
                    value()
                        .parse()
                        .expect("--rate-limit N (requests per second)"),
                )
            }
            "--help" | "-h" => {
                println!(
                    "deprovision_bench [--samples 100] [--background-rate 100] [--rate-limit N] [--database URL]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn percentiles(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let at = |q: f64| {
        ms.get(((ms.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    (at(0.5), at(0.99), ms.last().copied().unwrap_or(0.0))
}

struct Bench {
    client: reqwest::Client,
    base: String,
    auth: String,
    emulator: Emulator,
}

impl Bench {
    async fn create(&self, name: &str) -> String {
        let r = self
            .client
            .post(format!("{}/Users", self.base))
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/scim+json")
            .body(json!({"userName": name, "active": true}).to_string())
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), 201);
        let v: serde_json::Value = r.json().await.expect("json");
        v["id"].as_str().expect("id").to_owned()
    }

    async fn patch(&self, id: &str, ops: serde_json::Value) -> Result<u16, reqwest::Error> {
        let r = self
            .client
            .patch(format!("{}/Users/{id}", self.base))
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/scim+json")
            .body(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}).to_string())
            .send()
            .await?;
        Ok(r.status().as_u16())
    }

    /// Deactivates the user and returns the time until Confluence shows it disabled (`None`:
    /// not within 60 s).
    async fn deprovision(&self, id: &str, username: &str) -> Option<Duration> {
        let status = self
            .patch(
                id,
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            )
            .await;
        assert_eq!(status.ok(), Some(200), "deactivation answered");
        let answered = Instant::now();
        loop {
            if self.emulator.user(username).is_some_and(|u| !u.active) {
                return Some(answered.elapsed());
            }
            if answered.elapsed() > Duration::from_secs(60) {
                return None;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args();
    // `BENCH_LOG=usersync=info` (a tracing filter) shows the server's log on stderr.
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let dir = std::env::temp_dir().join(format!("usersync-deprov-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let emulator = Emulator::new(EmulatorConfig::new("bench-pat"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let confluence = format!("http://{}", listener.local_addr()?);
    tokio::spawn(emulator.clone().serve(listener, std::future::pending()));

    let mut settings = Settings::defaults();
    settings.listen = "127.0.0.1:0".into();
    settings.admin.listen = "127.0.0.1:0".into();
    settings.database = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
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
    let cfg = ConfluenceConfig::new(confluence, ConfluenceAuth::Pat(Secret::new("bench-pat")));
    let app = Application::build_with_confluence(settings.clone(), Some(cfg)).await?;
    let base = format!("http://{}/scim/v2/bench", app.local_addr());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let bench = Arc::new(Bench {
        client: reqwest::Client::new(),
        base,
        auth: format!("Bearer {token}"),
        emulator: emulator.clone(),
    });

    // Users to deprovision (two sets) and users that keep changing in the background.
    let background_users = 200usize;
    let mut targets = Vec::new();
    for n in 0..2 * args.samples {
        let name = format!("leaver{n}@example.com");
        targets.push((bench.create(&name).await, name));
    }
    let mut others = Vec::new();
    for n in 0..background_users {
        others.push(bench.create(&format!("stayer{n}@example.com")).await);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..2 * args.samples).any(|n| emulator.user(&format!("leaver{n}@example.com")).is_none())
    {
        assert!(Instant::now() < deadline, "initial delivery did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    println!(
        "deprovisioning latency (PATCH active=false answered -> Confluence account disabled), database {}",
        usersync::store::redact_url(&settings.database)
    );
    let mut idle = Vec::new();
    for (id, name) in &targets[..args.samples] {
        let took = bench.deprovision(id, name).await.expect("disabled at idle");
        idle.push(took.as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (p50, p99, max) = percentiles(idle);
    println!("  idle:                       p50 {p50:7.2} ms   p99 {p99:7.2} ms   max {max:7.2} ms   ({} samples)", args.samples);

    if let Some(limit) = args.rate_limit {
        let mut knobs = emulator.knobs();
        knobs.rate_limit = RateLimitKnobs {
            mode: RateLimitMode::Limit,
            capacity: limit,
            fill_rate: limit,
            interval_s: 1,
            exempt: vec![],
        };
        emulator.set_knobs(knobs);
        emulator.clear_calls();
    }
    // Under a storm every background change costs a Confluence call (a new full name).
    let field = if args.rate_limit.is_some() {
        "displayName"
    } else {
        "title"
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let load = {
        let (bench, stop, sent, others) =
            (bench.clone(), stop.clone(), sent.clone(), others.clone());
        let period = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            let mut tasks = Vec::new();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let (b, id) = (bench.clone(), others[n % others.len()].clone());
                let sent = sent.clone();
                tasks.push(tokio::spawn(async move {
                    if let Ok(200) = b.patch(&id, json!([{"op": "replace", "path": field, "value": format!("value {n}")}])).await {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }));
                n += 1;
            }
            // Let the changes in flight finish before the server stops.
            for t in tasks {
                let _ = t.await;
            }
        })
    };
    let started = Instant::now();
    let mut busy = Vec::new();
    let mut missed = 0usize;
    for (id, name) in &targets[args.samples..] {
        match bench.deprovision(id, name).await {
            Some(took) => busy.push(took.as_secs_f64() * 1000.0),
            None => missed += 1,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = load.await;
    let rate = sent.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    if std::env::var("BENCH_DUMP").is_ok() {
        let mut sorted = busy.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        eprintln!("busy samples (ms): {sorted:.0?}");
    }
    let (p50, p99, max) = percentiles(busy);
    let phase = match args.rate_limit {
        Some(limit) => format!("with {rate:4.0} changes/s, Confluence limited to {limit}/s:"),
        None => format!("with {rate:5.0} changes/s:      "),
    };
    println!(
        "  {phase} p50 {p50:7.2} ms   p99 {p99:7.2} ms   max {max:7.2} ms   ({} samples)",
        args.samples
    );
    if missed > 0 {
        println!(
            "  {missed} of {} deactivations had not landed after 60 s",
            args.samples
        );
    }
    if args.rate_limit.is_some() {
        let calls = emulator.calls();
        let refused = calls.iter().filter(|c| c.status == Some(429)).count();
        let stats = store.queue_stats().await?;
        println!(
            "  Confluence answered {} calls in that phase, {refused} of them 429; queue: {} pending, {} dead",
            calls.len(),
            stats.pending,
            stats.dead
        );
    }
    let limit = args
        .rate_limit
        .map(|l| format!(" --rate-limit {l}"))
        .unwrap_or_default();
    println!(
        "reproduce: cargo run --release --example deprovision_bench -- --samples {} --background-rate {}{limit}",
        args.samples, args.rate
    );
    let _ = tx.send(());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
