//! Memory of the largest list page (issue 8 item 5): loads users as large as
//! `limits.max_body_bytes` allows, then measures the process's peak resident memory while
//! `GET /Users?count=N` pages are served, one at a time and several at once, and while a
//! filter scans them all.
//!
//! ```sh
//! cargo run --release --example list_memory -- --users 100 --user-kib 900 --parallel 4
//! ```
//!
//! The server runs in this process; the client reads each response in chunks and drops
//! them, so the peak is the server's (plus the baseline of the process). The peak is Linux's
//! `VmHWM`, reset before each measurement by writing `5` to `/proc/self/clear_refs`.

use std::time::Instant;

use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use usersync::app::Application;
use usersync::config::Settings;
use usersync::connectors::{generate_token, hash_hex, hash_token};

struct Args {
    users: usize,
    user_kib: usize,
    parallel: usize,
    database: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        users: 100,
        user_kib: 900,
        parallel: 4,
        database: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--users" => a.users = value().parse().expect("--users N"),
            "--user-kib" => a.user_kib = value().parse().expect("--user-kib N"),
            "--parallel" => a.parallel = value().parse().expect("--parallel N"),
            "--database" => a.database = Some(value()),
            "--help" | "-h" => {
                println!(
                    "list_memory [--users 100] [--user-kib 900] [--parallel 4] [--database URL]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// A field of `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// Resets the peak (`VmHWM`) to the current resident size.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// GETs `url`, reading the body in chunks; returns (status, bytes, itemsPerPage).
async fn get(client: &reqwest::Client, url: &str, auth: &str) -> (u16, usize, Option<u64>) {
    let mut r = client
        .get(url)
        .header("Authorization", auth)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let mut bytes = 0usize;
    // `itemsPerPage` is near the start of the body: keep the first KiB to read it.
    let mut head = Vec::new();
    while let Some(chunk) = r.chunk().await.expect("body") {
        if head.len() < 1024 {
            head.extend_from_slice(&chunk[..chunk.len().min(1024 - head.len())]);
        }
        bytes += chunk.len();
    }
    let text = String::from_utf8_lossy(&head);
    let items = text
        .split("\"itemsPerPage\":")
        .nth(1)
        .and_then(|t| t.split([',', '}']).next())
        .and_then(|n| n.trim().parse().ok());
    (status, bytes, items)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args();
    let dir = std::env::temp_dir().join(format!("usersync-listmem-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let mut settings = Settings::defaults();
    settings.listen = "127.0.0.1:0".into();
    settings.admin.listen = "127.0.0.1:0".into();
    settings.database = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    settings.store.sqlite_synchronous = usersync::store::SqliteSync::Normal;
    settings.log.level = "warn".into();
    let store = usersync::app::open_store(&settings).await?;
    let token = generate_token();
    store
        .create_connector(
            "mem",
            &hash_hex(&hash_token(&token)),
            OffsetDateTime::now_utc(),
        )
        .await?;
    let app = Application::build(settings.clone()).await?;
    let base = format!("http://{}/scim/v2/mem", app.local_addr());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let auth = format!("Bearer {token}");
    let loaded = Instant::now();
    for i in 0..args.users {
        // One large text attribute: the largest user a 1 MiB body allows.
        let title: String = (0..args.user_kib * 1024)
            .map(|k| (b'a' + ((i + k) % 26) as u8) as char)
            .collect();
        let r = client
            .post(format!("{base}/Users"))
            .header("Authorization", &auth)
            .header("Content-Type", "application/scim+json")
            .body(json!({"userName": format!("big{i}"), "title": title}).to_string())
            .send()
            .await?;
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await?);
    }
    println!(
        "list memory: {} users of {} KiB (loaded in {:.1} s), database {}, limits.max_response_bytes={}",
        args.users,
        args.user_kib,
        loaded.elapsed().as_secs_f64(),
        usersync::store::redact_url(&settings.database),
        settings.limits.max_response_bytes
    );
    println!(
        "{:>34} | {:>8} {:>11} {:>10} {:>10}",
        "request", "status", "items", "body MiB", "peak MiB"
    );
    let page = format!("{base}/Users?count={}", args.users);
    let scan = format!(
        "{base}/Users?filter=title%20co%20%22zzzz%22&count={}",
        args.users
    );
    for (what, url, parallel) in [
        ("one page of all users", page.clone(), 1),
        ("the same page, concurrently", page, args.parallel),
        ("a filter scanning all users", scan, 1),
    ] {
        // Let freed memory settle, then measure from the current resident size.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let base_rss = status_mib("VmRSS:");
        reset_peak();
        let results =
            futures::future::join_all((0..parallel).map(|_| get(&client, &url, &auth))).await;
        let peak = status_mib("VmHWM:") - base_rss;
        let (status, bytes, items) = results[0];
        println!(
            "{:>34} | {status:>8} {:>11} {:>10.1} {peak:>10.1}",
            format!("{what} (x{parallel})"),
            items.map_or("?".to_owned(), |n| n.to_string()),
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
    println!(
        "reproduce: cargo run --release --example list_memory -- --users {} --user-kib {} --parallel {}",
        args.users, args.user_kib, args.parallel
    );
    let _ = tx.send(());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
