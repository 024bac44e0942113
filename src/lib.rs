//! usersync: a SCIM 2.0 provisioning server that delivers users and groups from an identity
//! provider to Confluence Data Center and Linchpin User Profiles.
//!
//! Read in this order: [`scim`] (the protocol, pure), [`store`] (one transaction per change,
//! with its sync-queue row), [`search`] (list queries), [`http`] (the SCIM endpoints), then
//! [`app`] (wiring) and [`cli`]. Delivery to Confluence goes through [`targets`].

/// Wiring: build, serve, shut down.
pub mod app;
/// Authentication of IdP requests per connector: static tokens, Basic, Entra JWTs, OAuth.
pub mod auth;
/// The command line.
pub mod cli;
/// Typed settings, file and environment.
pub mod config;
/// Connectors (IdP connections) and their credentials.
pub mod connectors;
/// The delivery worker: sync queue to Confluence.
pub mod delivery;
/// A faithful emulator of Confluence Data Center and Linchpin, for tests and trials.
pub mod emulator;
/// Error helpers shared by every module (an error with its causes on one line): a leaf.
pub mod errors;
/// SCIM endpoints and middleware.
pub mod http;
/// From SCIM resources to the state they should have in Confluence.
pub mod mapping;
/// Prometheus metrics, one set per server (a leaf: docs/metrics.md).
pub mod metrics;
/// Mapped profiles resolved against the store: the Linchpin feed, webhook and preview.
pub mod profiles;
/// Pull connectors: users read from an IdP's API (Graph, Google) on a schedule.
pub mod pull;
/// Full sync against Confluence: drift report, dry run, orphans, safety guard, schedule.
pub mod reconcile;
/// One runtime per connector (authentication, mapping, feed, webhook, provisioning), built
/// once from the settings and the store and shared by the server and every command.
pub mod runtime;
/// The SCIM protocol, pure.
pub mod scim;
/// List and search execution.
pub mod search;
/// SQLite and PostgreSQL persistence with the sync queue.
pub mod store;
/// Outbound targets: the Confluence REST client, the Linchpin feed, the signed webhook, and
/// their shared failure classes.
pub mod targets;
/// Logging setup.
pub mod telemetry;
/// Value types settings are written in (durations, one-or-many lists): a leaf.
pub mod values;
