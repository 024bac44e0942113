//! Fresh databases for tests: a temporary SQLite file or a new PostgreSQL database per test.
//!
//! PostgreSQL is reached at `USERSYNC_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432`); each call creates a database with a random name and
//! drops it when the guard is dropped, so tests never share state and can run in parallel.

use std::path::PathBuf;

use super::Backend;

/// A database that exists for as long as this guard does.
#[derive(Debug)]
pub struct TestDb {
    /// Connection URL.
    pub url: String,
    backend: Backend,
    sqlite_dir: Option<PathBuf>,
    pg_name: Option<String>,
}

/// The PostgreSQL server tests use.
pub fn postgres_base() -> String {
    std::env::var("USERSYNC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

impl TestDb {
    /// Creates an empty database of `backend`.
    pub async fn create(backend: Backend) -> TestDb {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("usersync-test-{tag}"));
                std::fs::create_dir_all(&dir).expect("create temp dir");
                TestDb {
                    url: format!("sqlite://{}", dir.join("test.db").display()),
                    backend,
                    sqlite_dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let name = format!("usersync_test_{tag}");
                let base = postgres_base();
                let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL is needed for this test at {base} (set USERSYNC_TEST_POSTGRES): {e}")
                    });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                TestDb {
                    url: format!("{base}/{name}"),
                    backend,
                    sqlite_dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.sqlite_dir {
            // Best effort: a leftover temp dir is harmless.
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(name) = self.pg_name.take() {
            // Dropping needs a connection; do it on a short-lived thread so Drop works inside
            // and outside a runtime. WITH (FORCE) ends connections a test left open.
            let base = postgres_base();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async move {
                        use sqlx::Connection;
                        if let Ok(mut c) =
                            sqlx::PgConnection::connect(&format!("{base}/postgres")).await
                        {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&mut c)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}
