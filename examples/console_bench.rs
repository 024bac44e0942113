//! Web console and operations API page times with many users in the store: loads users
//! straight into the store (as SCIM creates would, audit rows included), signs in to the
//! console, and times each main page, one request at a time, on a fresh database.
//!
//! ```sh
//! cargo run --release --example console_bench -- --users 100000 --samples 30
//! cargo run --release --example console_bench -- --users 100000 --database postgres://postgres@127.0.0.1:5432/NEWDB
//! ```
//!
//! The server runs in this process and the client shares the machine. Nothing here asserts
//! a number.

use std::time::{Duration, Instant};

use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use usersync::app::Application;
use usersync::config::Settings;
use usersync::connectors::{generate_admin_token, generate_token, hash_hex, hash_token};
use usersync::store::admin::AdminRole;
use usersync::store::audit::AdminAction;
use usersync::store::ResourceKey;

struct Args {
    users: usize,
    samples: usize,
    database: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        users: 100_000,
        samples: 30,
        database: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--users" => a.users = value().parse().expect("--users N"),
            "--samples" => a.samples = value().parse().expect("--samples N"),
            "--database" => a.database = Some(value()),
            "--help" | "-h" => {
                println!("console_bench [--users 100000] [--samples 30] [--database URL]");
                std::process::exit(0);
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args();
    let dir = std::env::temp_dir().join(format!("usersync-console-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let mut settings = Settings::defaults();
    settings.listen = "127.0.0.1:0".into();
    settings.admin.listen = "127.0.0.1:0".into();
    settings.database = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    settings.log.level = "warn".into();
    let store = usersync::app::open_store(&settings).await?;
    let now = OffsetDateTime::now_utc();
    store
        .create_connector("bench", &hash_hex(&hash_token(&generate_token())), now)
        .await?;
    let admin = generate_admin_token();
    let audit = AdminAction {
        connector: String::new(),
        token: "(bench)".into(),
        action: "admin_token.create".into(),
        target_kind: None,
        target: Some("bench".into()),
        outcome: "ok".into(),
    };
    store
        .create_admin_token(
            "bench",
            AdminRole::Admin,
            &hash_hex(&hash_token(&admin)),
            now,
            &audit,
        )
        .await?;

    // Load: 16 writers, so the SQLite batcher groups commits as under SCIM load.
    let started = Instant::now();
    let mut tasks = Vec::new();
    let writers = 16;
    for w in 0..writers {
        let store = store.clone();
        let total = args.users;
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            while n < total {
                let doc = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("user{n}@example.com"), "active": true,
                    "displayName": format!("User Number {n}"), "externalId": format!("E{n}"),
                    "emails": [{"value": format!("user{n}@example.com"), "primary": true}],
                });
                let key = ResourceKey::user("bench", uuid::Uuid::new_v4().to_string());
                store
                    .insert_resource(
                        &key,
                        doc.as_object().unwrap(),
                        &[],
                        OffsetDateTime::now_utc(),
                    )
                    .await
                    .expect("insert");
                n += writers;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let load = started.elapsed();
    if settings.database.starts_with("postgres") {
        let pool = sqlx::AnyPool::connect(&settings.database).await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
        pool.close().await;
    }
    let one = store
        .find_by_name(
            "bench",
            usersync::scim::schema::ResourceKind::User,
            &format!("user{}@example.com", args.users / 2),
        )
        .await?
        .map(|r| r.id)
        .unwrap_or_default();

    let app = Application::build(settings.clone()).await?;
    let base = format!("http://{}", app.admin_addr().expect("admin listener"));
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // Sign in as a browser would.
    let login = client.get(format!("{base}/login")).send().await?;
    let login_cookie = login.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let html = login.text().await?;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let signed = client
        .post(format!("{base}/login"))
        .header("Cookie", &login_cookie)
        .form(&[("token", admin.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await?;
    let session = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .find(|c| c.starts_with("usersync_session="))
        .expect("signed in");

    println!(
        "usersync console benchmark: {} users loaded in {:.1} s ({:.0}/s), database {}",
        args.users,
        load.as_secs_f64(),
        args.users as f64 / load.as_secs_f64(),
        usersync::store::redact_url(&settings.database)
    );
    // Twice: with every user still queued (the worst case: delivery never ran), then with
    // the queue drained, as when delivery keeps up (the usual state).
    for queued in [true, false] {
        if !queued {
            let pool = sqlx::AnyPool::connect(&settings.database).await?;
            sqlx::query("DELETE FROM sync_queue").execute(&pool).await?;
            pool.close().await;
        }
        println!(
            "\n{} users, {}",
            args.users,
            if queued {
                "every one still in the sync queue"
            } else {
                "sync queue drained"
            }
        );
        measure(&client, &base, &session, &admin, &one, &args).await?;
    }
    println!(
        "\nreproduce: cargo run --release --example console_bench -- --users {} --samples {}",
        args.users, args.samples
    );
    let _ = tx.send(());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn measure(
    client: &reqwest::Client,
    base: &str,
    session: &str,
    admin: &str,
    one: &str,
    args: &Args,
) -> anyhow::Result<()> {
    println!(
        "{:<44} {:>9} {:>9} {:>9}",
        "page", "p50 ms", "p95 ms", "max ms"
    );
    let pages: Vec<(&str, String, bool)> = vec![
        ("console: dashboard /", "/".into(), true),
        (
            "console: users, first page",
            "/connectors/bench/users".into(),
            true,
        ),
        (
            "console: users, search q=<an e-mail> (exact)",
            format!(
                "/connectors/bench/users?q=user{}%40example.com",
                args.users / 3
            ),
            true,
        ),
        (
            "console: users, search q=user4242 (contains)",
            "/connectors/bench/users?q=user4242".into(),
            true,
        ),
        (
            "console: users, search q=E<n> (externalId)",
            format!("/connectors/bench/users?q=E{}", args.users - 1),
            true,
        ),
        (
            "console: a user's page",
            format!("/connectors/bench/users/{one}"),
            true,
        ),
        ("console: sync tab", "/connectors/bench/sync".into(), true),
        ("console: audit log", "/audit".into(), true),
        (
            "api: GET /connectors",
            "/admin/api/v1/connectors".into(),
            false,
        ),
        (
            "api: GET …/users?q=user4242",
            "/admin/api/v1/connectors/bench/users?q=user4242".into(),
            false,
        ),
        (
            "api: GET …/users/{id}/timeline",
            format!("/admin/api/v1/connectors/bench/users/{one}/timeline"),
            false,
        ),
    ];
    for (name, path, console) in pages {
        let mut times = Vec::with_capacity(args.samples);
        for _ in 0..args.samples {
            let mut req = client.get(format!("{base}{path}"));
            req = if console {
                req.header("Cookie", session)
            } else {
                req.header("Authorization", format!("Bearer {admin}"))
            };
            let t = Instant::now();
            let res = req.send().await?;
            let status = res.status().as_u16();
            let _ = res.bytes().await?;
            times.push(t.elapsed());
            assert_eq!(status, 200, "{path}");
        }
        times.sort_unstable();
        println!(
            "{name:<44} {:>9.1} {:>9.1} {:>9.1}",
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            percentile(&times, 1.0)
        );
    }
    Ok(())
}
