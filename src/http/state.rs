//! Shared state of the HTTP layer.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use crate::auth::Authenticator;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::scim::filter;
use crate::scim::schema::SchemaRegistry;
use crate::search::Paging;
use crate::store::Store;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<StateInner>);

/// The contents of [`AppState`].
pub struct StateInner {
    /// Settings, validated.
    pub settings: Arc<Settings>,
    /// Schemas and resource types.
    pub schemas: Arc<SchemaRegistry>,
    /// The store.
    pub store: Store,
    /// Every connector: its authentication, mapping, Linchpin feed, webhook and
    /// provisioning, and the token registry.
    pub runtime: Runtime,
    /// Set while the sync queue is deeper than `backpressure.max_queue_depth`.
    pub queue_saturated: AtomicBool,
    /// Permits to run heavy request work (a large PATCH) on the blocking pool: half the
    /// cores, at least one, so a flood of costly requests from one connector can never
    /// occupy every core and starve the others' small requests.
    pub heavy_work: tokio::sync::Semaphore,
    /// This server's metrics (`/metrics` on the admin listener, docs/metrics.md); the
    /// application hands them to its delivery worker too.
    pub metrics: Arc<Metrics>,
    /// A Confluence client for the operations API's actions (sync now, dry run), when
    /// `[confluence]` is configured.
    pub confluence: Option<crate::targets::confluence::ConfluenceClient>,
    /// When this instance last answered an authenticated SCIM request, per connector (the
    /// connector list's "last SCIM request"; in memory, since this instance started).
    last_requests: Mutex<HashMap<String, OffsetDateTime>>,
}

impl AppState {
    /// The state of a server over `runtime`.
    pub fn new(runtime: Runtime) -> Self {
        AppState(Arc::new(StateInner {
            settings: runtime.settings().clone(),
            schemas: runtime.table().schemas().clone(),
            store: runtime.store().clone(),
            queue_saturated: AtomicBool::new(false),
            heavy_work: tokio::sync::Semaphore::new(heavy_permits()),
            metrics: Arc::new(Metrics::new()),
            confluence: runtime
                .table()
                .confluence()
                .and_then(|_| match runtime.table().confluence_client() {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::warn!(error.message = %e, "no Confluence client for the operations API");
                        None
                    }
                }),
            last_requests: Mutex::new(HashMap::new()),
            runtime,
        }))
    }

    /// Notes an authenticated SCIM request of `connector` now.
    pub fn note_request(&self, connector: &str) {
        let now = OffsetDateTime::now_utc();
        let mut map = self.last_requests.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(connector) {
            Some(at) => *at = now,
            None => {
                map.insert(connector.to_owned(), now);
            }
        }
    }

    /// When this instance last answered an authenticated SCIM request of `connector`.
    pub fn last_request(&self, connector: &str) -> Option<OffsetDateTime> {
        self.last_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(connector)
            .copied()
    }

    /// Authenticates requests of every connector.
    pub fn auth(&self) -> &Authenticator {
        self.runtime.authenticator()
    }

    /// Refuses a SCIM write with 429 while the sync queue is saturated.
    pub fn admit_write(&self) -> Result<(), crate::http::error::AppError> {
        if self.queue_saturated.load(Ordering::Relaxed) {
            return Err(crate::http::error::AppError::TooBusy {
                retry_after: self.settings.backpressure.retry_after.0.as_secs().max(1),
                reason: "the sync queue is over backpressure.max_queue_depth",
            });
        }
        Ok(())
    }

    /// Re-reads the queue depth and sets or clears the saturation flag. Called periodically
    /// by the application, so a write costs an atomic load, not a query.
    pub async fn refresh_saturation(&self) {
        match self.store.queue_stats().await {
            Ok(stats) => {
                let saturated = stats.pending > self.settings.backpressure.max_queue_depth;
                let was = self.queue_saturated.swap(saturated, Ordering::Relaxed);
                if saturated != was {
                    tracing::warn!(
                        queue.pending = stats.pending,
                        saturated,
                        "sync queue saturation changed"
                    );
                }
            }
            Err(e) => tracing::warn!(
                error.message = %crate::errors::error_chain(&self.store.explain(e)),
                "could not read the sync queue depth"
            ),
        }
    }

    /// Filter limits from the settings.
    pub fn filter_limits(&self) -> filter::Limits {
        filter::Limits {
            max_len: self.settings.limits.filter_max_len,
            max_depth: self.settings.limits.filter_max_depth,
            ..filter::Limits::default()
        }
    }

    /// Page sizes from the settings.
    pub fn paging(&self) -> Paging {
        Paging {
            default: self.settings.limits.default_page_size,
            max: self.settings.limits.max_page_size,
        }
    }
}

/// Half the cores, at least one.
fn heavy_permits() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() / 2)
        .unwrap_or(1)
        .max(1)
}

impl Deref for AppState {
    type Target = StateInner;

    fn deref(&self) -> &StateInner {
        &self.0
    }
}
