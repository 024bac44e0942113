//! Waking the other instances: on PostgreSQL, a change accepted by any instance wakes every
//! instance's delivery worker at once, through `LISTEN`/`NOTIFY` on one channel
//! (docs/delivery.md, "Several instances"). Polling (`delivery.poll_interval`) stays the
//! fallback: a notification is lost while an instance's listening connection is down.
//!
//! Marks are announced by one background task per process, after their commit: while a
//! `NOTIFY` is being sent, further marks coalesce into the next one, so a burst of SCIM writes
//! costs a few notifications, not one round trip each. The payload is the sending process's
//! instance name, so a process ignores its own notifications (its worker was woken directly).

use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::{mpsc, Notify};

/// The notification channel.
pub const CHANNEL: &str = "usersync_queue";

/// Starts the task that announces marks; returns its wake-up handle. The task ends when every
/// handle is dropped (the store is gone).
pub(crate) fn start_announcer(pool: AnyPool, instance: String) -> mpsc::Sender<()> {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(instance.clone())
                .execute(&pool)
                .await;
            if let Err(e) = sent {
                // The other instances find the keys at their next poll.
                tracing::debug!(error.message = %e, "could not notify the other instances");
                if pool.is_closed() {
                    return;
                }
            }
        }
    });
    tx
}

/// The listening task; it stops when this is dropped.
#[derive(Debug)]
pub struct Listening(tokio::task::JoinHandle<()>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Listens on [`CHANNEL`] over a connection of its own and wakes `wake` on every
/// notification of another instance, and after a reconnection (notifications sent while the
/// connection was down are lost; the woken worker looks for due keys at once).
pub(crate) fn listen(url: String, instance: String, wake: Arc<Notify>) -> Listening {
    Listening(tokio::spawn(async move {
        let mut listener = loop {
            match connect(&url).await {
                Ok(l) => break l,
                Err(e) => {
                    tracing::warn!(
                        error.message = %e,
                        "cannot listen for the other instances' changes; retrying (polling covers meanwhile)"
                    );
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        };
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) if n.payload() == instance => {}
                Ok(Some(_)) => wake.notify_one(),
                // The connection was lost; the next call reconnects and listens again.
                Ok(None) => wake.notify_one(),
                Err(e) => {
                    tracing::warn!(
                        error.message = %e,
                        "lost the connection that listens for the other instances' changes; \
                         reconnecting (polling covers meanwhile)"
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }))
}

async fn connect(url: &str) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
