//! Password hashing behind a bound: argon2id takes ~19 MiB and tens of milliseconds of a
//! core per call, so an unbounded burst of sign-ins (or of wrong passcodes) would take every
//! blocking thread and gigabytes of memory. At most `concurrency` hashes run at once (about
//! one per core), each on one of `concurrency` threads of its own; a caller that cannot start
//! one within `queue_timeout` gets 503 with `Retry-After` instead of waiting without end.
//!
//! Own threads rather than `spawn_blocking`: the allocator keeps a freed 19 MiB block in the
//! arena of the thread that freed it, and the runtime's blocking pool has up to 512 threads —
//! a few hundred sign-ins left ~230 MiB resident (`parley-bench abuse`). A fixed set of
//! threads reuses its blocks: memory stays near `concurrency` × 19 MiB.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use parley_shared::ErrorCode;
use tokio::sync::Semaphore;

use crate::auth::crypto;
use crate::error::{ApiResult, AppError};

/// Seconds a refused caller is told to wait.
const RETRY_AFTER_SECS: u64 = 2;

type Job = Box<dyn FnOnce() + Send>;

/// Runs argon2 off the async runtime, a bounded number at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
    // Never held across an await.
    jobs: Arc<std::sync::Mutex<std::sync::mpsc::Sender<Job>>>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("queue_timeout", &self.queue_timeout)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// `concurrency` 0 means one per available core.
    pub fn new(concurrency: usize, queue_timeout: Duration) -> Self {
        let n = if concurrency == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            concurrency
        };
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..n {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    // The lock is held only to take the next job, not to run it.
                    let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return, // the hasher is gone
                    };
                    job();
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a hashing thread");
            }
        }
        Self {
            permits: Arc::new(Semaphore::new(n)),
            queue_timeout,
            jobs: Arc::new(std::sync::Mutex::new(tx)),
        }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(AppError::internal)?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _permit = permit;
            let _ = done.send(f());
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| AppError::internal("no hashing thread"))?;
        result
            .await
            .map_err(|_| AppError::internal("a hashing job was lost"))
    }

    /// True when `password` matches the PHC string `hash`.
    pub async fn verify(&self, password: String, hash: String) -> ApiResult<bool> {
        self.run(move || crypto::verify_password(&password, &hash))
            .await
    }

    /// A new argon2id PHC string for `password`.
    pub async fn hash(&self, password: String) -> ApiResult<String> {
        self.run(move || crypto::hash_password(&password))
            .await?
            .map_err(AppError::internal)
    }
}

fn busy() -> AppError {
    AppError {
        retry_after_secs: Some(RETRY_AFTER_SECS),
        ..AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            "the server is busy; try again in a moment",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_caller_that_cannot_start_in_time_gets_503_with_retry_after() {
        let h = PasswordHasher::new(1, Duration::from_millis(50));
        let held = h.permits.clone().acquire_owned().await.unwrap();
        let e = h
            .verify("x".into(), crypto::dummy_hash().into())
            .await
            .unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ServiceUnavailable
            )
        );
        assert_eq!(e.retry_after_secs, Some(RETRY_AFTER_SECS));
        drop(held);
        assert!(!h
            .verify("x".into(), crypto::dummy_hash().into())
            .await
            .unwrap());
    }
}
