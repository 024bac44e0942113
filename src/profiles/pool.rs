//! The script threads: where mappings that run Rhai scripts are computed.
//!
//! A connector's script may run until its deadline (`script.timeout_ms`) for every user it
//! maps; a page of the Linchpin feed maps hundreds. Run on Tokio's async threads, that would
//! stall every request sharing them (a looping script once held SCIM GETs for seconds); run
//! on Tokio's blocking pool (up to 512 threads), a flood of such mappings could take every
//! core. So mappings with scripts run here instead: a small fixed set of dedicated threads
//! (half the cores, at least one), fed by a queue. Async callers hand a closure over and
//! await its result; the async threads stay free, and scripts can never use more than their
//! share of the machine. Mappings without scripts are cheap and run in place
//! ([`map`] decides).
//!
//! The hop lives here, at the callers' side (`profiles/`, the delivery worker), so that
//! `mapping/` stays pure and synchronous.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The dedicated threads.
struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

/// Threads of the pool: half the cores, at least one, leaving the rest to requests.
fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() / 2)
        .unwrap_or(1)
        .max(1)
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("usersync-script-{i}"))
                .spawn(move || loop {
                    // The lock is held only to take a job, not to run it.
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match job {
                        // A panicking job (a bug) is caught so the thread lives on; its
                        // caller sees its result channel closed.
                        Ok(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error.message = %e, "cannot start a script thread");
            }
        }
        Pool {
            jobs: Mutex::new(tx),
        }
    })
}

/// Why a job gave no result.
#[derive(Debug, thiserror::Error)]
#[error("the mapping could not run on the script threads (it panicked, or they are gone)")]
pub struct PoolError;

/// Runs `f` on the script threads when `scripted` (its mapping runs scripts), else here and
/// now, and returns its result.
pub async fn map<T, F>(scripted: bool, f: F) -> Result<T, PoolError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if !scripted {
        return Ok(f());
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    let sent = match pool().jobs.lock() {
        Ok(jobs) => jobs.send(job).is_ok(),
        Err(poisoned) => poisoned.into_inner().send(job).is_ok(),
    };
    if !sent {
        return Err(PoolError);
    }
    rx.await.map_err(|_| PoolError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scripted_work_runs_on_a_script_thread_and_the_rest_in_place() {
        let name = || std::thread::current().name().map(str::to_owned);
        let there = map(true, name).await.unwrap();
        assert!(there.is_some_and(|n| n.starts_with("usersync-script-")));
        let here = map(false, name).await.unwrap();
        assert_eq!(here, name());
    }

    #[tokio::test]
    async fn a_panicking_job_reports_an_error_and_the_threads_live_on() {
        let r: Result<(), _> = map(true, || panic!("a bug")).await;
        assert!(r.is_err());
        assert_eq!(map(true, || 7).await.unwrap(), 7);
    }
}
