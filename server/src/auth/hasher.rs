//! Password hashing behind a bound: argon2id takes ~19 MiB and tens of milliseconds of a
//! core per call, so an unbounded burst of sign-ins (or of wrong passcodes) would take every
//! blocking thread and gigabytes of memory. At most `concurrency` hashes run at once (about
//! one per core); a caller that cannot start one within `queue_timeout` gets 503 with
//! `Retry-After` instead of waiting without end.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use parley_shared::ErrorCode;
use tokio::sync::Semaphore;

use crate::auth::crypto;
use crate::error::{ApiResult, AppError};

/// Seconds a refused caller is told to wait.
const RETRY_AFTER_SECS: u64 = 2;

/// Runs argon2 off the async runtime, a bounded number at a time.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl PasswordHasher {
    /// `concurrency` 0 means one per available core.
    pub fn new(concurrency: usize, queue_timeout: Duration) -> Self {
        let n = if concurrency == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            concurrency
        };
        Self {
            permits: Arc::new(Semaphore::new(n)),
            queue_timeout,
        }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(AppError::internal)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(AppError::internal)
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
