//! Prometheus metrics: one [`Metrics`](crate::metrics::Metrics) value per server (not a
//! global: the tests run many servers in one process), shared by the HTTP layer and the
//! delivery worker, encoded in the Prometheus text format (0.0.4) by `GET /metrics` on the
//! admin listener.
//!
//! A leaf: it knows label sets, buckets and the encoding, nothing of the crate, so `http/` and
//! `delivery/` can both import it. Its callers hand it only bounded, non-personal values:
//! connector names, route and call *templates*, status codes, outcome and error-class names,
//! resource kinds. Never a user name, id or e-mail: those would be personal data in a time
//! series database, and an unbounded number of series. The metrics, their labels and example
//! alerts are described in docs/metrics.md.

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::encode`]'s output: the Prometheus text format 0.0.4,
/// which every Prometheus-compatible scraper reads.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Request and call latency buckets (seconds): a cached lookup answers in about a
/// millisecond, a large write or list may take seconds; `limits.request_timeout` (and the
/// Confluence client's timeouts) cap the rest.
const REQUEST_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Commit-to-delivery buckets (seconds): milliseconds when Confluence keeps up, minutes to
/// hours while it is down or rate limiting (keys wait without spending retries).
const DELIVERY_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
    7200.0,
];

/// Feed generation buckets (seconds): a page of 500 users takes tens of milliseconds; a feed
/// of 100,000 users takes seconds.
const FEED_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// The labels of a SCIM request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    connector: String,
    route: String,
    method: &'static str,
    status: u16,
}

/// The labels of the SCIM request latency histogram (no status: fewer series).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    connector: String,
    route: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectorLabels {
    connector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    connector: String,
    outcome: &'static str,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommitLabels {
    connector: String,
    kind: &'static str,
    active: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    target: &'static str,
    call: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallOutcomeLabels {
    target: &'static str,
    call: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabels {
    connector: String,
    outcome: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

fn delivery_histogram() -> Histogram {
    Histogram::new(DELIVERY_BUCKETS)
}

fn feed_histogram() -> Histogram {
    Histogram::new(FEED_BUCKETS)
}

/// One finished SCIM request, as the HTTP middleware saw it.
#[derive(Debug, Clone, Copy)]
pub struct ScimRequest<'a> {
    /// The connector of the URL when it exists, else `unknown` (`none` outside `/scim/v2/`).
    pub connector: &'a str,
    /// The matched route template (`/scim/v2/{connector}/Users/{id}`), or `unmatched`.
    pub route: &'a str,
    /// The HTTP method (`GET`, …; `other` for anything unusual).
    pub method: &'static str,
    /// The status answered.
    pub status: u16,
    /// From the request's arrival to its answer's head (a streamed list body is not included).
    pub elapsed: Duration,
}

/// The sync queue of one connector, read at scrape time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueGauge {
    /// The connector.
    pub connector: String,
    /// Keys waiting for delivery (those waiting for a paused target included).
    pub pending: i64,
    /// Keys set aside because a target they need is paused.
    pub waiting: i64,
    /// Keys whose retries are exhausted.
    pub dead: i64,
    /// Age of the oldest pending key (since it became dirty); zero when none is pending.
    pub oldest_pending: Duration,
}

/// Every series of one server. Cheap to share (`Arc<Metrics>`); recording takes a read lock
/// and an atomic add.
pub struct Metrics {
    registry: Registry,
    scim_requests: Family<RequestLabels, Counter>,
    scim_duration: Histograms<RouteLabels>,
    queue_pending: Family<ConnectorLabels, Gauge>,
    queue_waiting: Family<ConnectorLabels, Gauge>,
    queue_dead: Family<ConnectorLabels, Gauge>,
    queue_oldest: Family<ConnectorLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    delivery_outcomes: Family<OutcomeLabels, Counter>,
    commit_to_delivery: Histograms<CommitLabels>,
    target_calls: Family<CallOutcomeLabels, Counter>,
    target_call_duration: Histograms<CallLabels>,
    feed_generations: Family<FeedLabels, Counter>,
    feed_duration: Histograms<ConnectorLabels>,
    /// One scrape at a time: the queue gauges are cleared and set anew by each scrape.
    scrape: tokio::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of series, every one registered under the `usersync_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("usersync");
        let m = Metrics {
            registry: Registry::default(),
            scim_requests: Family::default(),
            scim_duration: Family::new_with_constructor(request_histogram),
            queue_pending: Family::default(),
            queue_waiting: Family::default(),
            queue_dead: Family::default(),
            queue_oldest: Family::default(),
            delivery_outcomes: Family::default(),
            commit_to_delivery: Family::new_with_constructor(delivery_histogram),
            target_calls: Family::default(),
            target_call_duration: Family::new_with_constructor(request_histogram),
            feed_generations: Family::default(),
            feed_duration: Family::new_with_constructor(feed_histogram),
            scrape: tokio::sync::Mutex::new(()),
        };
        let r = &mut registry;
        r.register(
            "scim_requests",
            "SCIM requests answered, by connector, route template, method and status",
            m.scim_requests.clone(),
        );
        r.register(
            "scim_request_duration_seconds",
            "Time from a SCIM request's arrival to its answer, by connector, route template and method",
            m.scim_duration.clone(),
        );
        r.register(
            "queue_pending_keys",
            "Keys in the sync queue waiting for delivery (read at scrape time)",
            m.queue_pending.clone(),
        );
        r.register(
            "queue_waiting_keys",
            "Pending keys set aside because a target they need is paused (read at scrape time)",
            m.queue_waiting.clone(),
        );
        r.register(
            "queue_dead_keys",
            "Keys whose delivery retries are exhausted (read at scrape time)",
            m.queue_dead.clone(),
        );
        r.register(
            "queue_oldest_pending_age_seconds",
            "Age of the oldest pending key since it became dirty, 0 when none (read at scrape time)",
            m.queue_oldest.clone(),
        );
        r.register(
            "delivery_outcomes",
            "Processed keys, by connector, outcome (delivered, waiting, retrying, dead) and error class",
            m.delivery_outcomes.clone(),
        );
        r.register(
            "delivery_commit_to_delivered_seconds",
            "Time from the commit that made a key dirty to its successful delivery; active=\"false\" is deprovisioning",
            m.commit_to_delivery.clone(),
        );
        r.register(
            "target_calls",
            "Calls made to delivery targets, by target, call template and outcome (ok or error class)",
            m.target_calls.clone(),
        );
        r.register(
            "target_call_duration_seconds",
            "Latency of calls to delivery targets (Confluence, webhooks), by target and call template",
            m.target_call_duration.clone(),
        );
        r.register(
            "linchpin_feed_generations",
            "Linchpin feeds generated, by connector and outcome (complete, error, aborted)",
            m.feed_generations.clone(),
        );
        r.register(
            "linchpin_feed_duration_seconds",
            "Time to generate and send a complete Linchpin feed, by connector",
            m.feed_duration.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Records one answered SCIM request.
    pub fn scim_request(&self, r: &ScimRequest<'_>) {
        let route = RouteLabels {
            connector: r.connector.to_owned(),
            route: template_label(r.route),
            method: r.method,
        };
        self.scim_duration
            .get_or_create(&route)
            .observe(r.elapsed.as_secs_f64());
        let labels = RequestLabels {
            connector: route.connector,
            route: route.route,
            method: r.method,
            status: r.status,
        };
        self.scim_requests.get_or_create(&labels).inc();
    }

    /// Replaces the queue gauges with `rows` (every connector, zero rows included, so a
    /// connector that was deleted disappears and one with nothing queued shows 0).
    pub fn set_queue(&self, rows: &[QueueGauge]) {
        self.clear_queue();
        for q in rows {
            let l = ConnectorLabels {
                connector: q.connector.clone(),
            };
            self.queue_pending.get_or_create(&l).set(q.pending);
            self.queue_waiting.get_or_create(&l).set(q.waiting);
            self.queue_dead.get_or_create(&l).set(q.dead);
            self.queue_oldest
                .get_or_create(&l)
                .set(q.oldest_pending.as_secs_f64());
        }
    }

    /// Drops the queue gauges (the queue could not be read: absent series rather than stale
    /// ones, so an alert on `absent()` fires).
    pub fn clear_queue(&self) {
        self.queue_pending.clear();
        self.queue_waiting.clear();
        self.queue_dead.clear();
        self.queue_oldest.clear();
    }

    /// Records how a processed key ended: `outcome` is the worker's (`delivered`, `waiting`,
    /// `retrying`, `dead`), `class` the error class of a failure (`none` otherwise).
    pub fn delivery_outcome(&self, connector: &str, outcome: &'static str, class: &'static str) {
        self.delivery_outcomes
            .get_or_create(&OutcomeLabels {
                connector: connector.to_owned(),
                outcome,
                class,
            })
            .inc();
    }

    /// Records a successful delivery `since_commit` after the write that made the key dirty;
    /// `active` is false for deprovisioning (a user made inactive, a user or group deleted).
    pub fn delivered(
        &self,
        connector: &str,
        kind: &'static str,
        active: bool,
        since_commit: Duration,
    ) {
        self.commit_to_delivery
            .get_or_create(&CommitLabels {
                connector: connector.to_owned(),
                kind,
                active: if active { "true" } else { "false" },
            })
            .observe(since_commit.as_secs_f64());
    }

    /// Records one call to a delivery target: `call` is its method and path template (never
    /// a concrete path), `outcome` `ok` or the error class.
    pub fn target_call(
        &self,
        target: &'static str,
        call: &str,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        let labels = CallLabels {
            target,
            call: template_label(call),
        };
        self.target_call_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.target_calls
            .get_or_create(&CallOutcomeLabels {
                target,
                call: labels.call,
                outcome,
            })
            .inc();
    }

    /// Starts timing one Linchpin feed; the returned timer records it when dropped.
    pub fn feed_started(&self, connector: &str) -> FeedTimer {
        FeedTimer {
            generations: self.feed_generations.clone(),
            duration: self.feed_duration.clone(),
            connector: connector.to_owned(),
            started: Instant::now(),
            outcome: "aborted",
        }
    }

    /// Waits for the scrape in progress, if any (scrapes set the queue gauges anew).
    pub async fn scrape_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.scrape.lock().await
    }

    /// Every series in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail; an encoder error would be a bug in the crate.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!(error.message = %e, "could not encode the metrics");
        }
        out
    }
}

/// A route or call template as a label value, its `{name}` placeholders written `:name`
/// (`/scim/v2/:connector/Users/:id`). Braces are legal in label values, but common text
/// parsers (the one the tests use among them) cut a label set at the first `}`.
fn template_label(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    for c in template.chars() {
        match c {
            '{' => out.push(':'),
            '}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Times one Linchpin feed. Dropped at the end of the response body; `complete` or `error`
/// is set by the stream before, else the client hung up and the feed counts as `aborted`.
pub struct FeedTimer {
    generations: Family<FeedLabels, Counter>,
    duration: Histograms<ConnectorLabels>,
    connector: String,
    started: Instant,
    outcome: &'static str,
}

impl FeedTimer {
    /// The whole feed was sent (unless it already failed: a failed stream ends too).
    pub fn complete(&mut self) {
        if self.outcome == "aborted" {
            self.outcome = "complete";
        }
    }

    /// The feed stopped on an error (Linchpin gets a truncated document and imports nothing).
    pub fn failed(&mut self) {
        self.outcome = "error";
    }
}

impl Drop for FeedTimer {
    fn drop(&mut self) {
        let connector = std::mem::take(&mut self.connector);
        if self.outcome == "complete" {
            self.duration
                .get_or_create(&ConnectorLabels {
                    connector: connector.clone(),
                })
                .observe(self.started.elapsed().as_secs_f64());
        }
        self.generations
            .get_or_create(&FeedLabels {
                connector,
                outcome: self.outcome,
            })
            .inc();
    }
}

#[cfg(test)]
mod tests;
