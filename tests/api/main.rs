//! The integration test binary: a real server on a random port per test, a fresh database
//! per test (SQLite, or PostgreSQL with `USERSYNC_TEST_BACKEND=postgres`).

mod helpers;
mod process;

mod admin_api;
mod audit;
mod auth;
mod backpressure;
mod browser;
mod bulk;
mod checklist;
mod concurrency;
mod connectors;
mod console;
mod cost_limits;
mod crash;
mod cycles;
mod database;
mod delivery;
mod discovery;
mod errors;
mod etags;
mod filters;
mod groups;
mod identifiers;
mod leaks;
mod linchpin;
mod list_limits;
mod manager_lines;
mod managers;
mod metrics;
mod msref;
mod patch;
mod pull;
mod reconcile;
mod scale_out;
mod scripts;
mod server_limits;
mod snapshots;
mod sync_queue;
mod time_limit;
mod users;
