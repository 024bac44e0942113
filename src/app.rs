//! Wiring: settings → store → the connectors' runtime (`runtime.rs`) → router, delivery
//! worker, reconcile schedule and pull schedule; start, serve, and stop gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::connectors;
use crate::delivery::Worker;
use crate::http::{self, state::AppState};
use crate::runtime::{ConnectorTable, Runtime};
use crate::store::{Store, StoreOptions};
use crate::targets::confluence::{ConfluenceClient, ConfluenceConfig};

/// A built application, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    /// The operations API's listener (`[admin]`), when enabled.
    admin_listener: Option<TcpListener>,
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
    /// Builds the connectors' runtime, opens the store, binds the listener, and prepares the
    /// Confluence client from `[confluence]` (its secret read at load).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let confluence = settings.confluence_config()?;
        Self::build_with_confluence(settings, confluence).await
    }

    /// [`Application::build`] with an explicit Confluence configuration (the embedded trial
    /// and tests point it at an emulator).
    pub async fn build_with_confluence(
        settings: Settings,
        confluence: Option<ConfluenceConfig>,
    ) -> anyhow::Result<Application> {
        // The per-connector warning is logged by the authenticator; a refusal stops here.
        settings
            .check_shared_state()
            .map_err(|e| anyhow::anyhow!(e.0))
            .context("state the instances must share is not shared")?;
        let settings = Arc::new(settings);
        let schemas = settings
            .load_schemas()
            .context("cannot load the schema documents (setting `schemas_dir`)")?;
        let table = ConnectorTable::build(settings.clone(), Arc::new(schemas), confluence)?;
        let store = open_store(&settings).await?;
        let runtime = Runtime::with_table(table, store).await?;
        let addr = settings.listen_addr()?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (setting `listen`)"))?;
        let admin_listener = if settings.admin.enabled {
            let addr = settings.admin.listen_addr()?;
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (setting `admin.listen`)"))?;
            Some(l)
        } else {
            None
        };
        if runtime.table().confluence().is_some() {
            // Fails here, at start, rather than later in the worker.
            runtime.table().confluence_client()?;
        }
        let state = AppState::new(runtime);
        Ok(Application {
            listener,
            admin_listener,
            state,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The operations API's bound address, when it is enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listener
            .as_ref()
            .map(|l| l.local_addr().expect("bound listener has an address"))
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
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let worker = self.worker().map(|w| {
            let mut rx = stop_rx.clone();
            tokio::spawn(w.run(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }))
        });
        let schedule = self.reconcile_schedule().map(|(reconciler, every)| {
            let mut rx = stop_rx.clone();
            tokio::spawn(crate::reconcile::schedule::run(
                reconciler,
                every,
                async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                },
            ))
        });
        let retention = {
            let mut rx = stop_rx.clone();
            tokio::spawn(crate::store::audit::run_retention(
                self.state.store.clone(),
                self.state.settings.audit.retention.0,
                async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                },
            ))
        };
        let pulls = {
            let mut rx = stop_rx.clone();
            tokio::spawn(crate::pull::schedule::run_all(
                self.state.runtime.clone(),
                async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                },
            ))
        };
        let router = http::router(self.state.clone());
        let server = &self.state.settings.server;
        let limits = http::serve::ConnLimits {
            max_connections: server.max_connections,
            header_read_timeout: server.header_read_timeout.0,
            idle_timeout: server.idle_timeout.0,
        };
        // One shutdown for both listeners.
        let (down_tx, down_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = down_tx.send(true);
        });
        let until_down = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|down| *down).await;
        };
        let admin = self.admin_listener.map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "operations API listening");
            }
            tokio::spawn(http::serve::serve(
                listener,
                http::admin::router(self.state.clone()),
                limits,
                until_down(down_rx.clone()),
            ))
        });
        http::serve::serve(self.listener, router, limits, until_down(down_rx))
            .await
            .context("the HTTP server failed")?;
        if let Some(admin) = admin {
            if let Ok(Err(e)) = admin.await {
                tracing::error!(error.message = %e, "the operations API's server failed");
            }
        }
        monitor.abort();
        let _ = stop_tx.send(true);
        if let Some(w) = worker {
            // The worker finishes the keys it holds; an interrupted one keeps its lease and
            // is delivered by the next start.
            let _ = w.await;
        }
        if let Some(s) = schedule {
            let _ = s.await;
        }
        let _ = retention.await;
        let _ = pulls.await;
        self.state.store.close().await;
        Ok(())
    }
}

/// How often the sync-queue depth is re-read for back-pressure.
const SATURATION_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

async fn watch_saturation(state: AppState) {
    let mut tick = tokio::time::interval(SATURATION_INTERVAL);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        state.refresh_saturation().await;
        ticks += 1;
        if ticks % MAPPINGS_EVERY_TICKS == 0 {
            // A mapping another instance saved is put in force here within seconds.
            if let Err(e) = state.runtime.reload_mappings().await {
                tracing::warn!(error.message = %e, "could not re-read the edited mappings");
            }
        }
    }
}

/// The edited mappings are looked at every this many saturation ticks (5 s).
const MAPPINGS_EVERY_TICKS: u64 = 10;

impl Application {
    /// The delivery worker, when delivery is enabled and Confluence configured.
    pub fn worker(&self) -> Option<Worker<ConfluenceClient>> {
        let settings = &self.state.settings;
        if !settings.delivery.enabled {
            tracing::info!("delivery is disabled (delivery.enabled = false)");
            return None;
        }
        let Some(client) = self.state.confluence.clone() else {
            tracing::warn!("no [confluence] configured: changes are queued but not delivered");
            return None;
        };
        Some(
            Worker::with_connectors(
                self.state.store.clone(),
                client,
                settings.delivery.clone(),
                self.state.runtime.lookup(),
            )
            .with_metrics(self.state.metrics.clone()),
        )
    }
}

impl Application {
    /// The reconcile schedule (`[reconcile] every`), when it is on and Confluence configured.
    /// Its runs share the Confluence client, so the worker and reconcile spend one rate limit.
    pub fn reconcile_schedule(
        &self,
    ) -> Option<(crate::reconcile::Reconciler, std::time::Duration)> {
        let settings = &self.state.settings;
        let every = settings.reconcile.every?.0;
        let Some(client) = self.state.confluence.clone() else {
            tracing::warn!("[reconcile] every is set but no [confluence] is configured: no scheduled reconcile");
            return None;
        };
        let reconciler = reconciler(self.state.store.clone(), client, &self.state.runtime);
        Some((reconciler, every))
    }
}

/// A reconciler over `store` and Confluence with the policies the runtime's settings
/// declare (`[reconcile]`, `delivery.max_retry_after`) and each connector's provisioning
/// and mapping from the runtime.
pub fn reconciler(
    store: Store,
    client: ConfluenceClient,
    runtime: &Runtime,
) -> crate::reconcile::Reconciler {
    let settings = runtime.settings();
    let options = crate::reconcile::Options {
        settings: settings.reconcile.clone(),
        max_retry_after: settings.delivery.max_retry_after.0,
    };
    crate::reconcile::Reconciler::new(store, client, options, runtime.lookup())
}

/// Opens the store the settings name (migrated) and builds the connectors' runtime over it:
/// what every command that needs connectors starts from.
pub async fn runtime(settings: Settings) -> anyhow::Result<Runtime> {
    let store = open_store(&settings).await?;
    Runtime::build(settings, store).await
}

/// The embedded default: when no connector exists at all, create `default` and return its
/// token, to be printed once.
pub async fn ensure_default_connector(runtime: &Runtime) -> anyhow::Result<Option<String>> {
    if !runtime.list().is_empty() {
        return Ok(None);
    }
    let token = connectors::generate_token();
    let hash = connectors::hash_hex(&connectors::hash_token(&token));
    match runtime
        .store()
        .create_connector("default", &hash, OffsetDateTime::now_utc())
        .await
    {
        Ok(_) => {}
        // Another instance starting on the same database created it first: its token was
        // printed there.
        Err(crate::store::StoreError::Conflict(_)) => {
            runtime.reload().await?;
            return Ok(None);
        }
        Err(e) => return Err(anyhow::Error::new(e).context("cannot create the default connector")),
    }
    runtime.reload().await?;
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
