//! Pull connector benchmark: a full import of N users (default 100,000) from the Google
//! Workspace emulator, a second run that finds nothing to change, then on Microsoft Graph,
//! Okta and OneLogin a full import and an incremental run that finds `--changes` changed
//! users (default 10). `--only okta,onelogin` runs some of them.
//!
//! ```sh
//! cargo run --release --example pull_bench -- --users 100000 --changes 10
//! cargo run --release --example pull_bench -- --users 100000 --only okta,onelogin
//! ```
//!
//! The Okta and OneLogin users are stamped one emulated second apart (the emulators' clocks
//! are moved), as changes in a real directory are spread out; the incremental run comes ten
//! emulated minutes after the import, so it also reads again the users changed in the
//! connector's overlap (one minute) before the checkpoint.
//!
//! The emulators run in this process, so "RSS before" (store open, emulators loaded with
//! every user) is the baseline and the peak (`VmHWM`, reset through `/proc/self/clear_refs`
//! before each run) includes the emulators' answers. SQLite with `synchronous = NORMAL` in a
//! temporary directory unless `--database URL` (an empty database). Nothing here asserts a
//! number.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use usersync::config::pull::{
    ConnectorKind, GoogleSettings, GraphSettings, MaxDeletes, OktaSettings, OneloginSettings,
    PullSettings,
};
use usersync::config::{ConnectorSettings, Dur, Settings};
use usersync::emulator::google::GoogleEmulator;
use usersync::emulator::graph::GraphEmulator;
use usersync::emulator::okta::OktaEmulator;
use usersync::emulator::onelogin::OneloginEmulator;
use usersync::pull::{RunReport, RunRequest};
use usersync::runtime::Runtime;
use usersync::store::{SqliteSync, Store, StoreOptions};

const SA: &str = "bench@example-project.iam.gserviceaccount.com";
const ADMIN: &str = "admin@example.com";
const TENANT: &str = "11111111-2222-3333-4444-555555555555";

fn status_kib(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |k| format!("{:.0} MiB", k as f64 / 1024.0),
    )
}

async fn timed(rt: &Runtime, connector: &str) -> (f64, RunReport, Option<u64>) {
    let reset = reset_peak();
    let started = Instant::now();
    let report = usersync::pull::run(
        rt,
        &RunRequest {
            connector: connector.to_owned(),
            started_by: "bench".to_owned(),
            ..RunRequest::default()
        },
        Arc::new(|_, _| {}),
    )
    .await
    .expect("the run");
    (
        started.elapsed().as_secs_f64(),
        report,
        status_kib("VmHWM:").filter(|_| reset),
    )
}

fn line(label: &str, (secs, r, peak): &(f64, RunReport, Option<u64>)) {
    println!(
        "  {label}: {secs:.2} s; {:?} run: {} read, {} created, {} updated, {} deleted, {} unchanged; peak memory (VmHWM) {}",
        r.mode, r.read, r.created, r.updated, r.deleted, r.unchanged, mib(*peak)
    );
}

#[tokio::main]
async fn main() {
    let mut n = 100_000usize;
    let mut changes = 10usize;
    let mut database = None;
    let mut only: Vec<String> = ["google", "graph", "okta", "onelogin"]
        .map(str::to_owned)
        .to_vec();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--users" => n = value().parse().expect("--users N"),
            "--changes" => changes = value().parse().expect("--changes N"),
            "--database" => database = Some(value()),
            "--only" => only = value().split(',').map(str::to_owned).collect(),
            _ => {
                println!(
                    "pull_bench [--users 100000] [--changes 10] [--database URL] \
                     [--only google,graph,okta,onelogin]"
                );
                return;
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("usersync-pull-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let database =
        database.unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));

    let google = GoogleEmulator::new(
        SA,
        include_str!("../tests/api/fixtures/auth/key-a.pub.pem"),
        ADMIN,
    );
    let graph = GraphEmulator::new("bench-client", "bench-secret");
    let okta = OktaEmulator::new(Some("bench-okta-token"), None);
    let onelogin = OneloginEmulator::new("bench-client", "bench-secret");
    let run = |k: &str| only.iter().any(|o| o == k);
    for i in 0..n {
        let manager = (i >= 10).then_some(i / 10);
        let mut g = json!({
            "id": format!("{}", 100_000_000 + i),
            "primaryEmail": format!("user{i:06}@example.com"),
            "name": {"givenName": "User", "familyName": format!("{i:06}"), "fullName": format!("User {i:06}")},
            "suspended": false,
            "organizations": [{"primary": true, "title": "Engineer", "department": format!("D{}", i % 50)}],
        });
        if let Some(m) = manager {
            g["relations"] =
                json!([{"type": "manager", "value": format!("user{m:06}@example.com")}]);
        }
        if run("google") {
            google.upsert_user(g);
        }
        let mut u = json!({
            "id": format!("u-{i:06}"),
            "userPrincipalName": format!("user{i:06}@example.com"),
            "displayName": format!("User {i:06}"),
            "mail": format!("user{i:06}@example.com"),
            "accountEnabled": true,
            "jobTitle": "Engineer",
            "department": format!("D{}", i % 50),
        });
        if let Some(m) = manager {
            u["manager"] = json!(format!("u-{m:06}"));
        }
        if run("graph") {
            graph.upsert_user(u);
        }
        if run("okta") {
            okta.advance_clock(1);
            okta.upsert_user(json!({
                "id": format!("00u{i:06}"),
                "status": "ACTIVE",
                "profile": {
                    "login": format!("user{i:06}@example.com"),
                    "email": format!("user{i:06}@example.com"),
                    "firstName": "User", "lastName": format!("{i:06}"),
                    "title": "Engineer", "department": format!("D{}", i % 50),
                    "managerId": manager.map(|m| format!("00u{m:06}")),
                },
            }));
        }
        if run("onelogin") {
            onelogin.advance_clock(1);
            onelogin.upsert_user(json!({
                "id": 1_000_000 + i as i64,
                "username": format!("user{i:06}@example.com"),
                "email": format!("user{i:06}@example.com"),
                "firstname": "User", "lastname": format!("{i:06}"),
                "title": "Engineer", "department": format!("D{}", i % 50),
                "status": 1, "state": 1,
                "manager_user_id": manager.map(|m| 1_000_000 + m as i64),
            }));
        }
    }
    let gl = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let g_addr = gl.local_addr().expect("addr");
    tokio::spawn(google.clone().serve(gl, std::future::pending()));
    let ml = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let m_addr = ml.local_addr().expect("addr");
    tokio::spawn(graph.clone().serve(ml, std::future::pending()));
    let ol = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let o_addr = ol.local_addr().expect("addr");
    tokio::spawn(okta.clone().serve(ol, std::future::pending()));
    let nl = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let n_addr = nl.local_addr().expect("addr");
    tokio::spawn(onelogin.clone().serve(nl, std::future::pending()));

    let opts = StoreOptions {
        sqlite_sync: SqliteSync::Normal,
        ..StoreOptions::default()
    };
    let store = Store::connect(&database, &opts).await.expect("connect");
    store.migrate().await.expect("migrate");

    let mut settings = Settings::defaults();
    settings.database = database.clone();
    let pull = PullSettings {
        max_deletes: MaxDeletes::Percent(10.0),
        page_size: 500,
        ..PullSettings::default()
    };
    let key = json!({
        "type": "service_account",
        "private_key": include_str!("../tests/api/fixtures/auth/key-a.pem"),
        "client_email": SA,
        "token_uri": format!("http://{g_addr}/token"),
    });
    settings.secrets.set("BENCH_GOOGLE_KEY", key.to_string());
    settings.secrets.set("BENCH_GRAPH_SECRET", "bench-secret");
    settings.secrets.set("BENCH_OKTA_TOKEN", "bench-okta-token");
    settings.connectors.insert(
        "google".to_owned(),
        ConnectorSettings {
            kind: ConnectorKind::Google,
            pull: Some(pull.clone()),
            google: Some(GoogleSettings {
                key_env: "BENCH_GOOGLE_KEY".to_owned(),
                admin_email: ADMIN.to_owned(),
                customer: "my_customer".to_owned(),
                base_url: format!("http://{g_addr}"),
                token_url: None,
                custom_schemas: Vec::new(),
            }),
            ..ConnectorSettings::default()
        },
    );
    settings.connectors.insert(
        "graph".to_owned(),
        ConnectorSettings {
            kind: ConnectorKind::Graph,
            pull: Some(PullSettings {
                page_size: 999,
                ..pull.clone()
            }),
            graph: Some(GraphSettings {
                tenant_id: TENANT.to_owned(),
                client_id: "bench-client".to_owned(),
                client_secret_env: "BENCH_GRAPH_SECRET".to_owned(),
                base_url: format!("http://{m_addr}/v1.0"),
                token_url: Some(format!("http://{m_addr}/{TENANT}/oauth2/v2.0/token")),
            }),
            ..ConnectorSettings::default()
        },
    );
    let overlap = Dur(std::time::Duration::from_secs(60));
    settings.connectors.insert(
        "okta".to_owned(),
        ConnectorSettings {
            kind: ConnectorKind::Okta,
            pull: Some(PullSettings {
                page_size: 200,
                ..pull.clone()
            }),
            okta: Some(OktaSettings {
                org_url: format!("http://{o_addr}"),
                token_env: Some("BENCH_OKTA_TOKEN".to_owned()),
                client_id: None,
                private_key_env: None,
                key_id: None,
                token_url: None,
                overlap,
            }),
            ..ConnectorSettings::default()
        },
    );
    settings.connectors.insert(
        "onelogin".to_owned(),
        ConnectorSettings {
            kind: ConnectorKind::Onelogin,
            pull: Some(PullSettings {
                page_size: 999,
                ..pull
            }),
            onelogin: Some(OneloginSettings {
                base_url: format!("http://{n_addr}"),
                client_id: "bench-client".to_owned(),
                client_secret_env: "BENCH_GRAPH_SECRET".to_owned(),
                overlap,
            }),
            ..ConnectorSettings::default()
        },
    );
    let rt = Runtime::build(settings, store.clone())
        .await
        .expect("runtime");

    println!("usersync pull benchmark ({n} users, {database})");
    println!("  RSS before: {}", mib(status_kib("VmRSS:")));
    if run("google") {
        line("Google full import", &timed(&rt, "google").await);
        line("Google run, nothing changed", &timed(&rt, "google").await);
    }
    let step = n / changes.max(1);
    if run("graph") {
        let calls = graph.api_calls();
        line("Graph full import", &timed(&rt, "graph").await);
        println!("    Graph calls: {}", graph.api_calls() - calls);
        for i in 0..changes {
            graph.update_user(&format!("u-{:06}", i * step), json!({"jobTitle": "Lead"}));
        }
        let calls = graph.api_calls();
        line(
            &format!("Graph incremental, {changes} changes"),
            &timed(&rt, "graph").await,
        );
        println!("    Graph calls: {}", graph.api_calls() - calls);
    }
    if run("okta") {
        line("Okta full import", &timed(&rt, "okta").await);
        println!("    Okta pages: {}", okta.pages());
        okta.advance_clock(600);
        for i in 0..changes {
            okta.update_profile(&format!("00u{:06}", i * step), json!({"title": "Lead"}));
        }
        let pages = okta.pages();
        line(
            &format!("Okta incremental, {changes} changes"),
            &timed(&rt, "okta").await,
        );
        println!("    Okta pages: {}", okta.pages() - pages);
    }
    if run("onelogin") {
        line("OneLogin full import", &timed(&rt, "onelogin").await);
        println!("    OneLogin pages: {}", onelogin.pages());
        onelogin.advance_clock(600);
        for i in 0..changes {
            onelogin.update_user(1_000_000 + (i * step) as i64, json!({"title": "Lead"}));
        }
        let pages = onelogin.pages();
        line(
            &format!("OneLogin incremental, {changes} changes"),
            &timed(&rt, "onelogin").await,
        );
        println!("    OneLogin pages: {}", onelogin.pages() - pages);
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
