//! Wiring: settings → store, schemas, connectors → router; start, serve, and stop gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::connectors::{self, Connectors};
use crate::http::{self, state::AppState};
use crate::scim::schema::SchemaRegistry;
use crate::store::{Store, StoreOptions};

/// A built application, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

/// Opens the store the settings name and applies migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let opts = StoreOptions {
        max_connections: settings.store.max_connections,
        acquire_timeout: settings.store.acquire_timeout.0,
        sqlite_sync: settings.store.sqlite_synchronous,
    };
    let store = Store::connect(&settings.database, &opts)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {} (setting `database`)",
                crate::store::redact_url(&settings.database)
            )
        })?;
    store
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    Ok(store)
}

impl Application {
    /// Opens the store, loads schemas and connectors, and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let settings = Arc::new(settings);
        let schemas = SchemaRegistry::load(Some(&settings.schemas_dir))
            .map_err(|e| anyhow::anyhow!(e))
            .context("cannot load the schema documents (setting `schemas_dir`)")?;
        crate::profiles::Profiles::from_env(&settings, &schemas)
            .map_err(anyhow::Error::msg)
            .context("the connectors' mapping rules are not valid")?;
        let store = open_store(&settings).await?;
        let connectors = Connectors::load(&settings, store.clone())
            .await
            .context("cannot read connectors from the database")?;
        let addr = settings.listen_addr()?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (setting `listen`)"))?;
        let state = AppState::new(settings, Arc::new(schemas), store, connectors);
        Ok(Application { listener, state })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let monitor = tokio::spawn(watch_saturation(self.state.clone()));
        let router = http::router(self.state.clone());
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("the HTTP server failed")?;
        monitor.abort();
        self.state.store.close().await;
        Ok(())
    }
}

/// How often the sync-queue depth is re-read for back-pressure.
const SATURATION_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

async fn watch_saturation(state: AppState) {
    let mut tick = tokio::time::interval(SATURATION_INTERVAL);
    loop {
        tick.tick().await;
        state.refresh_saturation().await;
    }
}

/// The embedded default: when no connector exists at all, create `default` and return its
/// token, to be printed once.
pub async fn ensure_default_connector(
    store: &Store,
    connectors: &Connectors,
) -> anyhow::Result<Option<String>> {
    if !connectors.list().is_empty() {
        return Ok(None);
    }
    let token = connectors::generate_token();
    let hash = connectors::hash_hex(&connectors::hash_token(&token));
    store
        .create_connector("default", &hash, OffsetDateTime::now_utc())
        .await
        .context("cannot create the default connector")?;
    connectors.reload().await?;
    Ok(Some(token))
}

/// Resolves when the process receives Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
